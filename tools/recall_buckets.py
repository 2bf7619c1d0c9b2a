#!/usr/bin/env python3
"""Recall@k of `sat2cap query` results against exact truth, per selectivity bucket.

usage: recall_buckets.py QUERIES.jsonl TRUTH.jsonl RESULTS.jsonl
Buckets: the nearest (in log space) of 0.01%, 0.1%, 1%, 10%, 50%, 100% to each query's
"selectivity" field (no filter = 100%).
Prints a Markdown table; exits 1 if any bucket is under --min (default 0.95).
"""
import json
import math
import sys

BUCKETS = [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0]


def load(path):
    with open(path) as f:
        return {json.loads(l)["id"]: json.loads(l) for l in f if l.strip()}


def main(argv):
    minimum = 0.95
    if "--min" in argv:
        i = argv.index("--min")
        minimum = float(argv[i + 1])
        del argv[i : i + 2]
    queries, truth, results = (load(p) for p in argv[1:4])
    buckets = {}
    for qid, q in queries.items():
        sel = q.get("selectivity") or 1.0
        b = min(BUCKETS, key=lambda x: abs(math.log10(x) - math.log10(max(sel, 1e-9))))
        if not q.get("filter"):
            b = 1.0
        want = truth[qid]["neighbors"]
        got = set(results[qid]["neighbors"]) if qid in results else set()
        hit = sum(1 for x in want if x in got)
        n, found, total = buckets.get(b, (0, 0, 0))
        buckets[b] = (n + 1, found + hit, total + len(want))
    print("| selectivity | queries | recall@10 |")
    print("|---|---|---|")
    ok = True
    for b in sorted(buckets, reverse=True):
        n, found, total = buckets[b]
        r = found / total if total else 1.0
        ok &= r >= minimum
        print(f"| {b * 100:g}% | {n} | {r:.4f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
