#!/usr/bin/env bash
# Search as the database grows: synthetic low-rank clustered sets of N rows x 512 (the
# `testing::synth` generator through bench_recall, exported with queries and exact truth in
# the geonames-minilm layout), imported by the CLI (build time and peak RSS), searched by
# bench_search (library and CLI batch, recall@10 and queries/s per bucket), then the first
# answer of a fresh process with the database's files evicted from the page cache (cold) and
# read whole into it first (warm), and `info` (open) cold.
#
#   cargo build --release --no-default-features --features cli --bin sat2cap
#   cargo build --release -p sat2cap-bench --bin bench_recall --bin bench_search
#   SIZES="100000 1000000" WORK=/tmp/scale benches/scale.sh
#
# FIRST_ONLY=1 runs only the first-answer part, on the databases an earlier run left in WORK
# (BIN_DIR=... then compares another build's binary on the same files).
set -u
R=${BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
WORK=${WORK:-/tmp/sat2cap-scale}
mkdir -p "$WORK" && cd "$WORK" || exit 1
evict() {
  python3 - "$1" <<'PY'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        fd = os.open(os.path.join(root, f), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
timed() { # label, command...: wall milliseconds, peak RSS and major faults of one process
  local label=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -o "$WORK/time.txt" -f "peak RSS %M KB, major faults %F" "$@" > /dev/null 2>&1
  t1=$(date +%s%N)
  echo "$label: $(( (t1 - t0) / 1000000 )) ms, $(cat "$WORK/time.txt")"
}
for N in ${SIZES:-100000 1000000}; do
  D=$WORK/synth-$N
  if [ ! -f "$D/truth.dev.jsonl" ]; then
    # bench_recall goes on to its own runs after writing the set: stop it there.
    "$R/bench_recall" --synth-n "$N" --synth-dim 512 --synth-queries 50 --export-synth "$D" > "recall-$N.log" 2>&1 &
    P=$!
    while kill -0 $P 2>/dev/null; do
      if grep -q "synthetic set written" "recall-$N.log"; then kill $P; break; fi
      sleep 2
    done
    wait $P 2>/dev/null
  fi
  if [ -z "${FIRST_ONLY:-}" ]; then
    rm -rf "db-$N"
    /usr/bin/time -f "import wall %e s, peak RSS %M KB" "$R/sat2cap" import --db "db-$N" \
      --collection places --vectors "$D/vectors.f16.npy" --points "$D/places.csv" 2>&1 | tail -2
    du -sh "db-$N"
    "$R/bench_search" --db "db-$N" --queries "$D" --sat2cap "$R/sat2cap"
  fi
  # One unfiltered query, one radius of the 0.01% bucket and one of the 50% bucket.
  grep -m1 '"selectivity": *1.0' "$D/queries.dev.jsonl" > "one-$N.jsonl"
  grep '"radius"' "$D/queries.dev.jsonl" | grep -m1 '"selectivity": *0.0001[,}]' > "one-r001-$N.jsonl"
  grep '"radius"' "$D/queries.dev.jsonl" | grep -m1 '"selectivity": *0.5[,}]' > "one-r50-$N.jsonl"
  for kind in one one-r001 one-r50; do
    for i in 1 2 3; do
      evict "db-$N"
      timed "$N $kind cold" "$R/sat2cap" query --db "db-$N" --collection places \
        --batch "$kind-$N.jsonl" --out "$WORK/first.jsonl" --threads 1
    done
    cat "db-$N"/* > /dev/null # warm: every page of the files in the page cache
    for i in 1 2 3; do
      timed "$N $kind warm" "$R/sat2cap" query --db "db-$N" --collection places \
        --batch "$kind-$N.jsonl" --out "$WORK/first.jsonl" --threads 1
    done
  done
  evict "db-$N"
  timed "$N info cold" "$R/sat2cap" info --db "db-$N"
done
