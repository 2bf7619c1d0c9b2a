#!/usr/bin/env bash
# The import against hnswlib's build, in one run on the same rows and thread count: sat2cap's
# import (f16 rows, Hilbert order, int8 copy, R-tree, the graph by hnsw_rs, walk hints,
# written and committed) at several `--ef-construction`, hnswlib's `add_items` (M 16) at the
# same, each with its wall time and peak RSS; then each sat2cap database's default recall and
# queries/s with no filter (bench_search: the graph's quality at that setting), and, where
# `perf` is installed, where the import's CPU time goes at the default setting (hnsw_rs's
# own insertion, the distance, the rest).
#
#   cargo build --release --no-default-features --features cli --bin sat2cap
#   cargo build --release -p sat2cap-bench --bin bench_search
#   PY=venv-peers/bin/python D=shared/data/geonames-minilm Q=q-synth8 benches/build.sh
#
# PY: a Python with numpy and hnswlib (benches/peers/requirements.txt); D: a folder in the
# geonames-minilm layout (vectors.f16.npy, places.csv, queries.dev.jsonl, truth.dev.jsonl);
# Q: more query folders for bench_search (optional); EFC: the ef_construction values
# (default "200 100 50 32"); THREADS: hnswlib's threads (default 2: the import uses every
# core, and this machine has 2); WORK: scratch folder (default /tmp/sat2cap-build).
set -u
R=${BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
D=$(cd "${D:?D: the data folder}" && pwd)
PY=${PY:-python3}
WORK=${WORK:-/tmp/sat2cap-build}
THREADS=${THREADS:-2}
EFC=${EFC:-200 100 50 32}
QUERIES=(--queries "$D")
for q in ${Q:-}; do QUERIES+=(--queries "$(cd "$q" && pwd)"); done
mkdir -p "$WORK" || exit 1
echo "| system | ef_construction | build (s) | peak RSS (MB) |"
echo "|---|---:|---:|---:|"
for e in $EFC; do
  rm -rf "$WORK/db-$e"
  /usr/bin/time -o "$WORK/time.txt" -f "%e %M" "$R/sat2cap" import --db "$WORK/db-$e" \
    --collection places --vectors "$D/vectors.f16.npy" --points "$D/places.csv" \
    --ef-construction "$e" > /dev/null 2> "$WORK/import-$e.err" \
    || { echo "sat2cap import failed:"; cat "$WORK/import-$e.err"; exit 1; }
  read -r s kb < "$WORK/time.txt"
  echo "| sat2cap import | $e | $s | $((kb / 1024)) |"
  /usr/bin/time -o "$WORK/time.txt" -f "%e %M" "$PY" - "$D/vectors.f16.npy" "$e" "$THREADS" \
    > "$WORK/hnswlib.out" <<'PY' || { echo "hnswlib failed"; exit 1; }
import sys, time
import numpy as np, hnswlib
x = np.load(sys.argv[1]).astype(np.float32)
t = time.perf_counter()
idx = hnswlib.Index(space="ip", dim=x.shape[1])
idx.init_index(max_elements=len(x), M=16, ef_construction=int(sys.argv[2]), random_seed=100)
idx.add_items(x, np.arange(len(x)), num_threads=int(sys.argv[3]))
print(f"{time.perf_counter() - t:.1f}")
PY
  read -r _ kb < "$WORK/time.txt"
  echo "| hnswlib add_items ($THREADS threads) | $e | $(cat "$WORK/hnswlib.out") | $((kb / 1024)) |"
done
echo
echo "Unfiltered default search over each database (bench_search, one thread):"
echo
echo "| ef_construction | query set | recall@10 | q/s |"
echo "|---:|---|---:|---:|"
for e in $EFC; do
  "$R/bench_search" --db "$WORK/db-$e" "${QUERIES[@]}" 2>/dev/null \
    | awk -F'|' -v e="$e" '$3 ~ /none/ { gsub(/ /, "", $2); gsub(/ /, "", $6); gsub(/ /, "", $8); printf "| %s | %s | %s | %s |\n", e, $2, $6, $8 }'
done
command -v perf > /dev/null || { echo; echo "perf is not installed: no profile"; exit 0; }
e=${EFC%% *}
rm -rf "$WORK/db-perf"
perf record -F 400 -o "$WORK/perf.data" "$R/sat2cap" import --db "$WORK/db-perf" \
  --collection places --vectors "$D/vectors.f16.npy" --points "$D/places.csv" \
  --ef-construction "$e" > /dev/null 2>&1 || { echo "perf record failed"; exit 0; }
echo
echo "Where the import's CPU time goes (perf, ef_construction $e, share of samples):"
echo
echo "| part | share |"
echo "|---|---:|"
perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio 2>/dev/null | awk '
  /^ +[0-9.]+%/ {
    p = $1 + 0; s = $0
    if (s ~ /hnsw_rs/) own += p
    else if (s ~ /dot_f16_f16|CosineF16/) dist += p
    else if (s ~ /binary_heap|hashbrown|Arc<|malloc|_int_|free|RwLock|parking_lot/) book += p
    else rest += p
  }
  END {
    printf "| hnsw_rs functions | %.1f%% |\n", own
    printf "| heaps, hash maps, Arc and allocation (called by hnsw_rs) | %.1f%% |\n", book
    printf "| the distance (sat2cap'"'"'s f16 dot product) | %.1f%% |\n", dist
    printf "| everything else of the import | %.1f%% |\n", rest
  }'
echo
echo "The hottest instructions of hnsw_rs's search_layer (perf annotate; share of that function's"
echo "samples; \`perf annotate -i $WORK/perf.data -s ...\` shows the source lines around them):"
perf annotate -i "$WORK/perf.data" --stdio -s 'hnsw_rs::hnsw::Hnsw<T,D>::search_layer' 2>/dev/null \
  | grep -E '^ +[0-9]+\.[0-9]+ :' | sort -rn | head -4
