#!/usr/bin/env bash
# The GPU check of the encoders, for the lent device machine (docs/BENCHMARKS.md, "GPU
# check"). Run from the repository root with $OUT set; everything goes to $OUT.
#   1. nvidia-smi
#   2. sat2cap's bench binary (release, --features cuda, built elsewhere and carried in
#      gpu-bin/): CPU-vs-CUDA parity (f32, f16), then CUDA throughput f32 + f16 at
#      batches 1, 32, 256
#   3. the PyTorch anchor (benches/gpu/torch_encoders.py), same shapes and table
# Each step has its own time limit so that one hang does not eat the session.
set -u
OUT=${OUT:?set OUT}
BIN=${BENCH_BIN:-gpu-bin/bench_encoders}
PY=${TORCH_PYTHON:-$( [ -x /opt/torch/.venv/bin/python ] && echo /opt/torch/.venv/bin/python || echo python3 )}
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
export RUST_BACKTRACE=1
mkdir -p "$OUT"
{
  date -u; uname -a
  nvidia-smi || echo "nvidia-smi failed: $?"
} > "$OUT/00-nvidia-smi.txt" 2>&1

if [ -x "$BIN" ]; then
  timeout 240 "$BIN" --device cuda --parity --parity-only --precision f32,f16 \
    > "$OUT/10-parity.md" 2> "$OUT/10-parity.stderr"
  echo "exit $?" >> "$OUT/10-parity.stderr"
  timeout 300 "$BIN" --device cuda --precision f32,f16 --batches 1,32,256 --iters 10 --warmup 3 \
    > "$OUT/20-sat2cap-throughput.md" 2> "$OUT/20-sat2cap-throughput.stderr"
  echo "exit $?" >> "$OUT/20-sat2cap-throughput.stderr"
else
  echo "no executable $BIN (build it: docs/BENCHMARKS.md)" > "$OUT/10-parity.stderr"
fi

timeout 180 "$PY" benches/gpu/torch_encoders.py --device cuda --dtypes f32,f16 --batches 1,32,256 \
  > "$OUT/30-torch-throughput.md" 2> "$OUT/30-torch-throughput.stderr"
echo "exit $?" >> "$OUT/30-torch-throughput.stderr"

cat "$OUT"/10-parity.md "$OUT"/20-sat2cap-throughput.md "$OUT"/30-torch-throughput.md 2>/dev/null \
  > "$OUT/summary.md"
cat "$OUT/summary.md"
