#!/usr/bin/env bash
# sat2cap's CPU encoders against PyTorch on this machine: the same ViT-B/32 shapes (random
# weights; images 224 px without preprocessing, texts of 77 tokens), the same thread count,
# f32, in interleaved rounds (sat2cap, then PyTorch, ROUNDS times) so that both see the same
# machine load. Each prints its own table; compare rows of the same round.
#
#   cargo build --release -p sat2cap-bench --features encoders --bin bench_encoders
#   PY=/path/to/venv/bin/python benches/encoders_vs_torch.sh
#
# PY needs torch and transformers (benches/gpu/torch_encoders.py); BIN defaults to the
# release bench_encoders of this checkout's target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-1,32}
ITERS=${ITERS:-3}
PY=${PY:-python3}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/bench_encoders}
for r in $(seq "$ROUNDS"); do
  echo "### round $r: sat2cap (burn Flex, $THREADS threads)"
  RAYON_NUM_THREADS=$THREADS "$BIN" --device cpu --precision f32 --batches "$BATCHES" \
    --iters "$ITERS" --warmup 1
  echo "### round $r: PyTorch ($THREADS threads)"
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS "$PY" benches/gpu/torch_encoders.py \
    --device cpu --dtypes f32 --batches "$BATCHES" --warmup 1 --iters "$ITERS" --threads "$THREADS"
done
