#!/usr/bin/env python3
"""sat2cap vs the tools users would pick instead (FAISS, USearch, hnswlib, LanceDB, DuckDB),
in one run.

Same vectors, same points, same queries, same ground truth for every system. Each peer builds an
HNSW graph with sat2cap's parameters (M = 16, ef_construction = 200, inner product over
L2-normalised vectors = cosine), is searched single-threaded, and for filtered queries gets two
honest strategies:

  * in-graph filter: FAISS SearchParametersHNSW(sel=IDSelectorBitmap), USearch
    search(..., filter/predicate) where its Python API has one, hnswlib knn_query(filter=callable);
  * brute force over the filtered ids: numpy dot over the candidate rows + argpartition.

and its cell reports whichever is faster at recall@10 >= 0.95 (or, if none reaches it, the best
recall). The filter id sets (exact haversine / bbox with antimeridian, numpy, f64) are computed
before the timed loop; their cost is reported in its own column ("mask ms") and NOT charged to the
peers' QPS -- this is the peers' best case (a user would have to pay it, or keep a spatial index
of their own). sat2cap's QPS includes its own spatial filtering (it reads the JSON filters).

LanceDB (IVF_HNSW_SQ + BTree indexes on lat/lon, `.where(sql, prefilter=True)`, pinned to one
core) and DuckDB (exact `ORDER BY array_inner_product(...) LIMIT k`, threads = 1) get the filter
as SQL and evaluate it themselves, inside the timed call; their cells use their own strategies
only.

sat2cap is driven through its CLI: `sat2cap import` and `sat2cap query --threads 1 [--ef E |
--effort X] [--exact]`; its QPS is the one it prints on stderr (search loop only, not JSON parsing/writing).

Usage (the binary: `cargo build --release --no-default-features --features cli --bin sat2cap`):
  OMP_NUM_THREADS=1 python benches/peers/run.py --sat2cap target/release/sat2cap \
      --dataset geonames --data /work/shared/data/geonames-minilm --work /tmp/peers-work \
      --json-out geonames.json
  python benches/peers/run.py --dataset synth --synth-n 100000 --synth-dim 512 ...
  python benches/peers/run.py --systems faiss,hnswlib,usearch,lancedb,duckdb ...  # no sat2cap
  python benches/peers/run.py --tables a.json [b.json ...]   # tables of saved runs, merged

Every result file starts with "schema": SCHEMA; --tables refuses files of another schema.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
           # LanceDB (read once, when its runtimes start): compute pool, I/O pool, and the tokio
           # runtime of its Python binding; they shrink its pools but do not make it one thread,
           # so its searches are also pinned to one core (LanceDB.__init__, README "LanceDB")
           "LANCE_CPU_THREADS", "LANCE_IO_THREADS", "TOKIO_WORKER_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import time

import numpy as np

R_EARTH = 6371.0088
BUCKETS = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001]
TARGET = 0.95
# Version of the result files this script writes (--json-out) and reads (--tables); the fields
# are described in benches/peers/README.md. Bump it when a field changes meaning or shape.
SCHEMA = 1


# ----------------------------------------------------------------------------------------- data
def load_geonames(d, per_bucket, qfile=None, tfile=None):
    x16 = np.load(os.path.join(d, "vectors.f16.npy"))
    lat, lon = [], []
    import csv
    with open(os.path.join(d, "places.csv"), newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            lat.append(float(row[1]))
            lon.append(float(row[2]))
    pts = np.stack([np.array(lat), np.array(lon)], 1)
    truth = {}
    with open(tfile or os.path.join(d, "truth.dev.jsonl")) as f:
        for line in f:
            t = json.loads(line)
            truth[t["id"]] = t["neighbors"]
    qs = []
    counts = {}
    with open(qfile or os.path.join(d, "queries.dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            b = bucket_of(q["selectivity"])
            if per_bucket and counts.get(b, 0) >= per_bucket:
                continue
            counts[b] = counts.get(b, 0) + 1
            qs.append(dict(id=q["id"], k=q["k"], filter=q["filter"], bucket=b,
                           vector=np.asarray(q["vector"], np.float32), truth=truth[q["id"]]))
    return x16, pts, qs, os.path.join(d, "vectors.f16.npy"), os.path.join(d, "places.csv")


def bucket_of(sel):
    return min(BUCKETS, key=lambda b: abs(math.log10(max(sel, 1e-9)) - math.log10(b)))


def haversine_km(lat0, lon0, lat, lon):
    p0, p = math.radians(lat0), np.radians(lat)
    dl = np.radians(lon - lon0)
    dp = p - p0
    a = np.sin(dp / 2) ** 2 + math.cos(p0) * np.cos(p) * np.sin(dl / 2) ** 2
    return 2 * R_EARTH * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def filter_mask(flt, pts):
    if flt is None:
        return None
    lat, lon = pts[:, 0], pts[:, 1]
    m = np.ones(len(pts), bool)
    if "bbox" in flt:
        w, s, e, n = flt["bbox"]
        m &= (lat >= s) & (lat <= n)
        m &= ((lon >= w) & (lon <= e)) if w <= e else ((lon >= w) | (lon <= e))
    if "radius" in flt:
        r = flt["radius"]
        m &= haversine_km(r["lat"], r["lon"], lat, lon) <= r["km"]
    return m


def make_synth(n, dim, seed, per_bucket, work):
    """Clustered, geo-correlated: cluster homes on the sphere, vectors = cluster dir +
    sub-cluster dir + smooth function of location + noise; radius filters around data points."""
    rng = np.random.default_rng(seed)
    nc, nsub = max(1, n // 300), 8
    home = np.stack([np.degrees(np.arcsin(rng.uniform(-1, 1, nc))), rng.uniform(-180, 180, nc)], 1)
    cdir = rng.standard_normal((nc, dim)).astype(np.float32)
    sdir = rng.standard_normal((nc, nsub, dim)).astype(np.float32) * 0.5
    c = rng.integers(0, nc, n)
    s = rng.integers(0, nsub, n)
    lat = np.clip(home[c, 0] + rng.normal(0, 3, n), -90, 90)
    lon = (home[c, 1] + rng.normal(0, 3, n) + 180) % 360 - 180
    geo = np.stack([np.sin(np.radians(lat)), np.cos(np.radians(lat)) * np.cos(np.radians(lon)),
                    np.cos(np.radians(lat)) * np.sin(np.radians(lon))], 1).astype(np.float32)
    gproj = rng.standard_normal((3, dim)).astype(np.float32) * 0.6
    x = cdir[c] + sdir[c, s] + geo @ gproj + rng.standard_normal((n, dim)).astype(np.float32) * 0.6
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x16 = x.astype(np.float16)
    lat, lon = np.round(lat, 6), np.round(lon, 6)  # what the CSV below holds
    pts = np.stack([lat, lon], 1)
    vpath = os.path.join(work, f"synth-{n}x{dim}.f16.npy")
    ppath = os.path.join(work, f"synth-{n}x{dim}.csv")
    np.save(vpath, x16)
    with open(ppath, "w") as f:
        f.write("id,lat,lon\n")
        for i in range(n):
            f.write(f"{i},{lat[i]:.6f},{lon[i]:.6f}\n")
    xf = x16.astype(np.float32)
    qs = []
    qid = 0
    for b in BUCKETS:
        for _ in range(per_bucket):
            j = int(rng.integers(0, n))
            v = xf[int(rng.integers(0, n))] + rng.standard_normal(dim).astype(np.float32) * 0.02
            v /= np.linalg.norm(v)
            if b >= 1.0:
                flt = None
            else:
                d = haversine_km(lat[j], lon[j], lat, lon)
                km = float(np.quantile(d, b)) + 1e-6
                flt = {"radius": {"lat": float(lat[j]), "lon": float(lon[j]), "km": km}}
            qs.append(dict(id=qid, k=10, filter=flt, bucket=b, vector=v))
            qid += 1
    for q in qs:  # exact truth over the f16 vectors as f32; ties by lower id
        m = filter_mask(q["filter"], pts)
        ids = np.arange(n) if m is None else np.flatnonzero(m)
        sc = xf[ids] @ q["vector"]
        o = np.lexsort((ids, -sc))[:q["k"]]
        q["truth"] = ids[o].tolist()
    return x16, pts, qs, vpath, ppath


# ---------------------------------------------------------------------------------- peers
def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Faiss:
    name = "faiss"

    def __init__(self):
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(1)

    def build(self, x, threads):
        f = self.faiss
        f.omp_set_num_threads(threads)
        self.index = f.IndexHNSWFlat(x.shape[1], 16, f.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 200
        self.index.add(x)
        f.omp_set_num_threads(1)

    def save(self, path):
        self.faiss.write_index(self.index, path)

    def load(self, path):
        self.index = self.faiss.read_index(path)

    def search(self, q, k, ef, mask):
        f = self.faiss
        if mask is None:
            p = f.SearchParametersHNSW(efSearch=ef)
            _, ids = self.index.search(q[None], k, params=p)
        else:
            bits = np.packbits(mask, bitorder="little")
            sel = f.IDSelectorBitmap(len(mask), f.swig_ptr(bits))
            p = f.SearchParametersHNSW(sel=sel, efSearch=ef)
            _, ids = self.index.search(q[None], k, params=p)
        return [int(i) for i in ids[0] if i >= 0]


class Hnswlib:
    name = "hnswlib"

    def __init__(self):
        import hnswlib
        self.h = hnswlib

    def build(self, x, threads):
        self.index = self.h.Index(space="ip", dim=x.shape[1])
        self.index.init_index(max_elements=len(x), M=16, ef_construction=200, random_seed=100)
        self.index.add_items(x, np.arange(len(x)), num_threads=threads)

    def save(self, path):
        self.index.save_index(path)

    def load(self, path, dim):
        self.index = self.h.Index(space="ip", dim=dim)
        self.index.load_index(path)

    def search(self, q, k, ef, mask):
        self.index.set_ef(max(ef, k))
        if mask is None:
            ids, _ = self.index.knn_query(q, k=k, num_threads=1)
        else:
            k = min(k, int(mask.sum()))  # hnswlib raises if it finds fewer than k
            if k == 0:
                return []
            try:
                ids, _ = self.index.knn_query(q, k=k, num_threads=1, filter=mask.__getitem__)
            except RuntimeError:  # fewer than k reachable matches
                return []
        return [int(i) for i in ids[0]]


class USearch:
    name = "usearch"

    def __init__(self):
        import usearch.index as ui
        self.ui = ui

    def build(self, x, threads):
        self.index = self.ui.Index(ndim=x.shape[1], metric="ip", dtype="f16", connectivity=16,
                                   expansion_add=200, expansion_search=64)
        self.index.add(np.arange(len(x)), x, threads=threads)

    def save(self, path):
        self.index.save(path)

    def load(self, path, dim):
        self.index = self.ui.Index.restore(path, view=False)

    def search(self, q, k, ef, mask):
        self.index.expansion_search = ef
        if mask is None:
            m = self.index.search(q, k, threads=1)
            return [int(i) for i in m.keys]
        # no predicate in its Python API: over-fetch and post-filter (only for wide filters)
        frac = float(mask.mean())
        count = min(len(mask), int(math.ceil(2 * k / max(frac, 1e-9))))
        if count > 8192:
            return []
        self.index.expansion_search = max(ef, count)
        m = self.index.search(q, count, threads=1)
        return [int(i) for i in m.keys if mask[int(i)]][:k]

    def exact_subset(self, xf, q, k, mask):
        """USearch's own SIMD exact search (usearch.index.search, exact=True) over the rows that
        pass the filter: its brute-force strategy, since its Python API has no predicate."""
        ids = np.arange(len(xf)) if mask is None else np.flatnonzero(mask)
        if len(ids) == 0:
            return []
        m = self.ui.search(xf[ids], q, min(k, len(ids)), self.ui.MetricKind.IP, exact=True,
                           threads=1)
        return ids[np.asarray(m.keys, dtype=np.int64)].tolist()


def usearch_has_filter():
    """USearch's Python `Index.search` has no predicate argument in the versions we checked; the
    filtered search lives in the C/C++/Rust APIs (`filtered_search`). Detect rather than assume."""
    try:
        import inspect
        import usearch.index as ui
        sig = inspect.signature(ui.Index.search)
        return any(p in sig.parameters for p in ("filter", "predicate", "filter_fn"))
    except Exception:
        return False


def where_sql(flt):
    """The filter as an SQL predicate on columns lat, lon (DataFusion for LanceDB, DuckDB), the
    same rows as filter_mask: bbox as BETWEENs (across the antimeridian: an OR of two longitude
    ranges); radius as the haversine (R_EARTH, same formula as haversine_km) ANDed with a bbox
    that surely contains the circle, so that an index or zonemap on lat/lon can prune first."""
    if flt is None:
        return None
    parts = []
    if "bbox" in flt:
        parts.append(_bbox_sql(*flt["bbox"]))
    if "radius" in flt:
        r = flt["radius"]
        la, lo, km = float(r["lat"]), float(r["lon"]), float(r["km"])
        box = _circle_bbox(la, lo, km)
        if box is not None:
            parts.append(_bbox_sql(*box))
        parts.append(
            f"2.0 * {R_EARTH!r} * asin(sqrt(pow(sin(radians(lat - ({la!r})) / 2.0), 2) + "
            f"cos(radians({la!r})) * cos(radians(lat)) * "
            f"pow(sin(radians(lon - ({lo!r})) / 2.0), 2)))"
            f" <= {km!r}")
    return " AND ".join(f"({p})" for p in parts)


def _bbox_sql(w, s, e, n):
    lat = f"lat BETWEEN {float(s)!r} AND {float(n)!r}"
    if w <= e:
        if w <= -180 and e >= 180:
            return lat
        return f"{lat} AND lon BETWEEN {float(w)!r} AND {float(e)!r}"
    return f"{lat} AND (lon >= {float(w)!r} OR lon <= {float(e)!r})"


def _circle_bbox(la, lo, km):
    """[w, s, e, n] containing every point within km of (la, lo) (w > e: across the
    antimeridian), with a margin of 1e-6 degrees; None when that is the whole globe."""
    r = km / R_EARTH
    eps = 1e-6
    if r >= math.pi:
        return None
    dlat = math.degrees(r) + eps
    s, n = la - dlat, la + dlat
    if s <= -90 or n >= 90:  # the circle holds a pole: every longitude
        return [-180.0, max(s, -90.0), 180.0, min(n, 90.0)]
    # widest longitude offset of a small circle that holds no pole: asin(sin r / cos lat0)
    dlon = math.degrees(math.asin(min(1.0, math.sin(r) / math.cos(math.radians(la))))) + eps
    w, e = lo - dlon, lo + dlon
    if dlon >= 180:
        return [-180.0, s, 180.0, n]
    if w < -180:
        w += 360
    if e > 180:
        e -= 360
    return [w, s, e, n]


def _pin_one_core():
    """Pin the calling thread to one core (threads it starts later inherit it); returns the
    previous set, for _unpin."""
    try:
        old = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {max(old)})
        return old
    except (AttributeError, OSError):
        return None


def _unpin(old):
    if old is not None:
        os.sched_setaffinity(0, old)


LANCE_BUILD = r"""
import os, sys, time, json, shutil
path, vpath, ppath, cores = sys.argv[1:5]
os.sched_setaffinity(0, {int(c) for c in cores.split(",")})  # before its runtimes start
import numpy as np, pyarrow as pa, lancedb
from lancedb.index import HnswSq, BTree
x = np.load(vpath)
pts = np.load(ppath)
n, dim = x.shape
tbl = pa.table({"id": pa.array(np.arange(n, dtype=np.int64)), "lat": pa.array(pts[:, 0]),
                "lon": pa.array(pts[:, 1]),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)})
shutil.rmtree(path, ignore_errors=True)
t0 = time.perf_counter()
t = lancedb.connect(path).create_table("places", tbl)
# IVF_HNSW_SQ; partitions: LanceDB's default (its target partition size; one partition at this
# size: nprobes made no difference on geonames)
t.create_index("vector", config=HnswSq(distance_type="dot", m=16, ef_construction=200))
t.create_index("lat", config=BTree())
t.create_index("lon", config=BTree())
print(json.dumps({"build_s": time.perf_counter() - t0}))
"""


class LanceDB:
    """LanceDB: a table (id, lat, lon, vector f16), an IVF_HNSW_SQ index (dot, m 16,
    ef_construction 200) and BTree scalar indexes on lat and lon; filtered queries are
    `.where(sql, prefilter=True)` with where_sql (radius: haversine in SQL). Search is pinned
    to one core (env vars alone leave several threads busy: README)."""
    name = "lancedb"

    def __init__(self):
        # pin before the import: its background event loop thread and its runtimes' threads
        # are started from here (import, connect, first query) and inherit the one core
        self._aff = _pin_one_core()
        import lancedb
        self.ldb = lancedb

    def release(self):
        """Give the harness's thread its cores back (LanceDB's own threads stay pinned)."""
        _unpin(self._aff)

    def build(self, x, threads):
        # the index build runs in a child process with `threads` threads (its pool sizes are
        # read once per process; this one is set to 1 for search)
        env = dict(os.environ, LANCE_CPU_THREADS=str(threads),
                   TOKIO_WORKER_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))
        env.pop("LANCE_IO_THREADS", None)
        cores = ",".join(str(c) for c in sorted(self._aff or os.sched_getaffinity(0)))
        cmd = [sys.executable, "-c", LANCE_BUILD, self.path, self.vpath, self.ptspath, cores]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"lancedb build failed: {out.stderr[-2000:]}")
        self.load(self.path)

    def save(self, path):
        pass  # the table is its folder

    def load(self, path, dim=None):
        self.table = self.ldb.connect(path).open_table("places")

    def _query(self, q, k, where):
        b = self.table.search(q).distance_type("dot").limit(k).select(["id", "_distance"])
        if where is not None:
            b = b.where(where, prefilter=True)
        return b

    def search(self, q, k, ef, where, refine=None):
        b = self._query(q, k, where).ef(ef)
        if refine:
            b = b.refine_factor(refine)
        return b.to_arrow()["id"].to_pylist()

    def exact(self, q, k, where):
        """LanceDB's own exact search: bypass_vector_index (flat scan of the rows passing the
        prefilter, on the stored f16 vectors)."""
        return self._query(q, k, where).bypass_vector_index().to_arrow()["id"].to_pylist()


class DuckDB:
    """DuckDB, exact SQL: table t(id, lat, lon, vec FLOAT[dim]); SELECT id FROM t WHERE <filter>
    ORDER BY array_inner_product(vec, ?) DESC, id LIMIT k, with SET threads = 1."""
    name = "duckdb"

    def __init__(self):
        import duckdb
        self.duckdb = duckdb

    def build(self, x, threads):
        import pyarrow as pa
        for f in (self.path, self.path + ".wal"):
            if os.path.exists(f):
                os.remove(f)
        n, dim = x.shape
        tbl = pa.table({"id": pa.array(np.arange(n, dtype=np.int64)),
                        "lat": pa.array(self.pts[:, 0]), "lon": pa.array(self.pts[:, 1]),
                        "vec": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)})
        con = self.duckdb.connect(self.path)
        con.execute(f"SET threads = {int(threads)}")
        con.register("src", tbl)
        con.execute(f"CREATE TABLE t AS SELECT id, lat, lon, vec::FLOAT[{dim}] AS vec FROM src")
        con.execute("CHECKPOINT")
        con.close()
        self.load(self.path, dim)

    def save(self, path):
        pass  # the database file

    def load(self, path, dim):
        self.con = self.duckdb.connect(path, read_only=True)
        self.con.execute("SET threads = 1")
        self.dim = dim

    def exact(self, q, k, where):
        w = f" WHERE {where}" if where else ""
        sql = (f"SELECT id FROM t{w} ORDER BY array_inner_product(vec, $1::FLOAT[{self.dim}]) "
               f"DESC, id LIMIT {int(k)}")
        return [r[0] for r in self.con.execute(sql, [q]).fetchall()]

    def search(self, q, k, ef, where):  # no ANN index here (its vss extension is not bundled)
        return self.exact(q, k, where)


SQL_PEERS = ("lancedb", "duckdb")


def brute(xf, q, k, mask):
    ids = None
    if mask is None:
        sc = xf @ q
    elif mask.mean() > 0.05:  # wide filter: scan everything, mask out (cheaper than gathering)
        sc = xf @ q
        sc[~mask] = -np.inf
        k = min(k, int(mask.sum()))
    else:
        ids = np.flatnonzero(mask)
        if len(ids) == 0:
            return []
        sc = xf[ids] @ q
    kk = min(k, len(sc))
    top = np.argpartition(-sc, kk - 1)[:kk]
    top = top[np.argsort(-sc[top])]
    return (top if ids is None else ids[top]).tolist()


def recall(res, truth):
    if not truth:
        return 1.0
    return len(set(res) & set(truth)) / len(truth)


def time_cell(fn, qs, masks, cap_s):
    """Run fn over the bucket's queries; stop after cap_s of search time. -> (recall, qps, ran)."""
    rs, t = [], 0.0
    for q, m in zip(qs, masks):
        t0 = time.perf_counter()
        res = fn(q["vector"], q["k"], m)
        t += time.perf_counter() - t0
        rs.append(recall(res, q["truth"]))
        if t > cap_s:
            break
    return float(np.mean(rs)), len(rs) / max(t, 1e-9), len(rs)


# ---------------------------------------------------------------------- fresh-process probes
PROBE = r"""
import os, sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import numpy as np
import run as R
kind, path, dim = sys.argv[2], sys.argv[3], int(sys.argv[4])
q = np.load(sys.argv[5])
t1 = time.perf_counter()
p = {"faiss": R.Faiss, "hnswlib": R.Hnswlib, "usearch": R.USearch, "lancedb": R.LanceDB,
     "duckdb": R.DuckDB}[kind]()
if kind == "faiss":
    p.load(path)
else:
    p.load(path, dim)
t2 = time.perf_counter()
p.search(q, 10, 64, None)
t3 = time.perf_counter()
print(json.dumps({"rss_kib": R.rss_kib(), "import_s": t1 - t0, "load_s": t2 - t1,
                  "first_query_s": t3 - t2}))
"""


def probe_peer(kind, path, dim, qpath):
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, os.path.abspath(__file__), kind, path,
                          str(dim), qpath], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    d = json.loads(out.stdout.strip().splitlines()[-1])
    d["process_wall_s"] = wall
    return d


# ------------------------------------------------------------------------------------ sat2cap
def dir_size(p):
    tot = 0
    for root, _, files in os.walk(p):
        for f in files:
            tot += os.path.getsize(os.path.join(root, f))
    return tot


def write_batch(path, qs):
    with open(path, "w") as f:
        for q in qs:
            f.write(json.dumps({"id": q["id"], "k": q["k"], "vector": [float(v) for v in q["vector"]],
                                "filter": q["filter"]}) + "\n")


def run_timed(cmd, env=None):
    """Run cmd under /usr/bin/time -v (in `env`, default this process's); -> (stderr text,
    wall seconds, max RSS KiB)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return p.stderr, wall, int(m.group(1)) if m else -1


def sat2cap_query(bin_, db, batch, out, extra):
    err, wall, rss = run_timed([bin_, "query", "--db", db, "--collection", "c", "--batch", batch,
                                "--out", out, "--threads", "1"] + extra)
    # The summary line: "queries: N, searches: S s (Q queries/s); whole batch: W s (B
    # queries/s: reading R s, preparing P s, writing X s)". The cell's QPS is the searches'
    # (the search loop, like the peers' timed calls); the whole batch's is kept beside it.
    m = re.search(r"searches: [0-9.]+ s \(([0-9.]+) queries/s\)", err)
    bm = re.search(r"whole batch: [0-9.]+ s \(([0-9.]+) queries/s", err)
    pm = re.search(r"preparing ([0-9.]+) s", err)
    if not m:
        raise RuntimeError(f"no 'searches: ... queries/s' in sat2cap's summary: {err[-600:]}")
    sat2cap_query.last_prep_s = float(pm.group(1)) if pm else float("nan")
    sat2cap_query.last_batch_qps = float(bm.group(1)) if bm else float("nan")
    res = {}
    with open(out) as f:
        for line in f:
            r = json.loads(line)
            res[r["id"]] = r["neighbors"]
    return float(m.group(1)) if m else float("nan"), res, wall, rss


def run_peer(name, p, a, tag, xf, dim, byb, masks, preds, bf, efs, qpath, vpath, ptspath, pts):
    """Build (or load) one peer, probe it in a fresh process, sweep it over the buckets."""
    buckets = list(byb)
    ext = {"lancedb": "lance", "duckdb": "duckdb"}.get(name, "index")
    path = os.path.join(a.work, f"{tag}.{name}.{ext}")
    p.path, p.vpath, p.ptspath, p.pts = path, vpath, ptspath, pts
    if a.reuse_index and os.path.exists(path):  # searched again, e.g. on a quieter machine
        p.load(path) if name == "faiss" else p.load(path, dim)
        build_s = None
    else:
        t = time.perf_counter()
        p.build(xf, a.build_threads)
        build_s = time.perf_counter() - t
        p.save(path)
    size = dir_size(path) if os.path.isdir(path) else os.path.getsize(path)
    probe = probe_peer(name, path, dim, qpath)
    sysrep = {"build_s": build_s, "build_threads": a.build_threads, "index_bytes": size,
              "probe": probe, "buckets": {}}
    print(f"  {name}: build {build_s} s, {size/2**20:.1f} MiB, probe {probe}", flush=True)
    if name in SQL_PEERS:
        return sweep_sql_peer(name, p, a, sysrep, byb, preds, efs)
    in_graph = name != "usearch" or usearch_has_filter()  # else: over-fetch + post-filter
    for b in buckets:
        filtered = b < 1.0
        sweep = []
        if filtered and not in_graph and b < 0.1:
            sweep = None
        else:
            for ef in efs:
                rec, qps, ran = time_cell(lambda v, k, m: p.search(v, k, ef, m), byb[b],
                                          masks[b], a.cap_s)
                sweep.append({"ef": ef, "recall": rec, "qps": qps, "ran": ran})
                print(f"    {name} {b:>7.2%} ef {ef:5d}: recall {rec:.3f} qps {qps:8.1f}"
                      f" ({ran}/{len(byb[b])})", flush=True)
                if rec >= TARGET or ran < len(byb[b]):
                    break
                if filtered and qps < bf[str(b)]["qps"]:
                    break  # already slower than the exact scan: a wider beam cannot win
        sysrep["buckets"][str(b)] = {"graph_sweep": sweep}
        if name == "usearch":
            rec, qps, ran = time_cell(lambda v, k, m: p.exact_subset(xf, v, k, m), byb[b],
                                      masks[b], a.cap_s)
            sysrep["buckets"][str(b)]["own_exact"] = {"recall": rec, "qps": qps, "ran": ran}
            print(f"    usearch {b:>7.2%} exact over filtered rows: recall {rec:.3f}"
                  f" qps {qps:8.1f}", flush=True)
    return sysrep


def sweep_sql_peer(name, p, a, sysrep, byb, preds, efs):
    """LanceDB / DuckDB: the filter is theirs to evaluate (SQL, in the timed call). Per bucket:
    `own_exact` (LanceDB bypass_vector_index; DuckDB's ORDER BY ... LIMIT) and, for LanceDB,
    the ef sweep of its IVF_HNSW_SQ index without and then with refine_factor (each stops at
    the first ef reaching TARGET, or, filtered, once slower than its own exact search). Their
    cells are chosen among their own strategies only (not the numpy brute force)."""
    q0 = next(iter(byb.values()))[0]  # untimed warm-up: the first search loads index / pages
    p.exact(q0["vector"], q0["k"], None)
    if name == "lancedb":
        p.search(q0["vector"], q0["k"], max(efs), None)
    for b in byb:
        cell = {}
        rec, qps, ran = time_cell(lambda v, k, w: p.exact(v, k, w), byb[b], preds[b], a.cap_s)
        cell["own_exact"] = {"recall": rec, "qps": qps, "ran": ran}
        print(f"    {name} {b:>7.2%} own exact: recall {rec:.3f} qps {qps:8.1f}"
              f" ({ran}/{len(byb[b])})", flush=True)
        if name != "lancedb":
            cell["graph_sweep"] = None
            sysrep["buckets"][str(b)] = cell
            continue
        sweep = []
        k = max(q["k"] for q in byb[b])
        for rf in [None] + ([a.lance_refine] if a.lance_refine else []):
            for ef in efs:
                if rf and ef < k * rf:
                    continue  # LanceDB requires ef >= k * refine_factor
                rec, qps, ran = time_cell(lambda v, k, w: p.search(v, k, ef, w, rf), byb[b],
                                          preds[b], a.cap_s)
                sweep.append({"ef": ef, "refine_factor": rf, "recall": rec, "qps": qps,
                              "ran": ran})
                print(f"    {name} {b:>7.2%} ef {ef:5d} refine {rf}: recall {rec:.3f}"
                      f" qps {qps:8.1f} ({ran}/{len(byb[b])})", flush=True)
                if rec >= TARGET or ran < len(byb[b]):
                    break
                if b < 1.0 and qps < cell["own_exact"]["qps"]:
                    break
        cell["graph_sweep"] = sweep
        sysrep["buckets"][str(b)] = cell
    return sysrep


# ---------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["geonames", "synth"], default="geonames")
    ap.add_argument("--data", default="/work/shared/data/geonames-minilm")
    ap.add_argument("--queries", default=None,
                    help="geonames: queries file (default DATA/queries.dev.jsonl), e.g. the "
                         "held-out ones of make_text_queries.py")
    ap.add_argument("--truth", default=None, help="geonames: its truth (default "
                                                   "DATA/truth.dev.jsonl)")
    ap.add_argument("--synth-n", type=int, default=100_000)
    ap.add_argument("--synth-dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--per-bucket", type=int, default=100, help="queries per bucket (0 = all)")
    ap.add_argument("--work", default="/tmp/peers-work")
    ap.add_argument("--sat2cap", default=None, help="path of the sat2cap binary (omit to skip)")
    ap.add_argument("--systems", default="faiss,usearch,hnswlib,sat2cap",
                    help="comma list of faiss, usearch, hnswlib, lancedb, duckdb, sat2cap")
    ap.add_argument("--lance-refine", type=int, default=4,
                    help="LanceDB: refine_factor of its second ef sweep (0: no second sweep)")
    ap.add_argument("--efs", default="16,32,64,91,128,152,181,215,256,304,362,431,512,724,1024",
                    help="the ef sweep of every graph (steps of 2^(1/4) from 128 to 512, where "
                         "the unfiltered and 50%% buckets reach the recall target)")
    ap.add_argument("--efforts", default="0.25,0.35,0.5,0.59,0.7,0.77,0.84,0.92",
                    help="sat2cap: walk efforts (multiples of the data's hop slack) swept below "
                         "its default of 1, rising, until one reaches the recall target")
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--cap-s", type=float, default=5.0, help="search seconds per cell, then stop")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--reuse-index", action="store_true",
                    help="load the peers' indexes saved in WORK by an earlier run (build time: "
                         "merge with that run's JSON via --tables)")
    ap.add_argument("--import-log", default=None,
                    help="skip `sat2cap import`: WORK/<dataset>.sat2cap.db was imported earlier "
                         "(same flags) under /usr/bin/time -v, whose stderr is this file")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    efs = [int(e) for e in a.efs.split(",")]
    efforts = sorted(float(e) for e in a.efforts.split(",") if e)
    if any(not 0 < e <= 64 for e in efforts):
        sys.exit(f"run.py: --efforts {a.efforts}: each must be a number in (0, 64]")

    t0 = time.perf_counter()
    if a.dataset == "geonames":
        x16, pts, qs, vpath, ppath = load_geonames(a.data, a.per_bucket, a.queries, a.truth)
        tag = "geonames"
    else:
        x16, pts, qs, vpath, ppath = make_synth(a.synth_n, a.synth_dim, a.seed, a.per_bucket,
                                                a.work)
        tag = f"synth-{a.synth_n}x{a.synth_dim}"
    xf = x16.astype(np.float32)
    n, dim = xf.shape
    print(f"# {tag}: n={n} dim={dim} queries={len(qs)} (prep {time.perf_counter()-t0:.1f} s)",
          flush=True)

    buckets = sorted({q["bucket"] for q in qs}, reverse=True)
    byb = {b: [q for q in qs if q["bucket"] == b] for b in buckets}
    masks, mask_ms = {}, {}
    for b in buckets:
        t = time.perf_counter()
        masks[b] = [filter_mask(q["filter"], pts) for q in byb[b]]
        # a filter that every row passes is the unfiltered query (the peers see the full mask)
        masks[b] = [None if m is not None and m.all() else m for m in masks[b]]
        mask_ms[b] = (time.perf_counter() - t) * 1e3 / len(byb[b])
    qpath = os.path.join(a.work, f"{tag}-q0.npy")
    np.save(qpath, qs[0]["vector"])

    report = {"schema": SCHEMA, "dataset": tag, "n": n, "dim": dim, "buckets": buckets,
              "queries_per_bucket": {str(b): len(byb[b]) for b in buckets},
              "mask_ms": {str(b): mask_ms[b] for b in buckets}, "systems": {},
              "loadavg_start": os.getloadavg()}

    # brute force is shared by all peers (same numpy code, exact)
    bf = {}
    for b in buckets:
        rec, qps, ran = time_cell(lambda v, k, m: brute(xf, v, k, m), byb[b], masks[b], a.cap_s)
        bf[str(b)] = {"recall": rec, "qps": qps, "ran": ran}
        print(f"  brute  {b:>7.2%}: recall {rec:.3f} qps {qps:8.1f}", flush=True)
    report["brute_force"] = bf

    # the SQL peers get the filters as SQL (built here, untimed; evaluating them is theirs)
    preds = {b: [None if m is None else where_sql(q["filter"])
                 for q, m in zip(byb[b], masks[b])] for b in buckets}
    ptspath = os.path.join(a.work, f"{tag}-pts.npy")
    np.save(ptspath, pts)

    for name in [s for s in a.systems.split(",") if s]:
        if name == "sat2cap":
            continue
        cls = {"faiss": Faiss, "hnswlib": Hnswlib, "usearch": USearch, "lancedb": LanceDB,
               "duckdb": DuckDB}[name]
        try:
            p = cls()
        except Exception as e:  # a missing wheel: say so, go on
            print(f"  {name}: unavailable ({e})", flush=True)
            report["systems"][name] = {"error": str(e)}
            continue
        try:
            report["systems"][name] = run_peer(name, p, a, tag, xf, dim, byb, masks, preds, bf,
                                               efs, qpath, vpath, ptspath, pts)
        finally:
            if hasattr(p, "release"):
                p.release()

    if a.sat2cap and "sat2cap" in a.systems.split(","):
        db = os.path.join(a.work, f"{tag}.sat2cap.db")
        if a.import_log:  # the same import, run earlier under /usr/bin/time -v into this db
            err = open(a.import_log).read()
            mm = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err)
            wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(mm.group(1).split(":"))))
            rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
        else:
            shutil.rmtree(db, ignore_errors=True)
            # The import builds with --build-threads threads, like the peers' builds (this
            # process's RAYON_NUM_THREADS=1, set above for the searches, would make it one).
            env = dict(os.environ, RAYON_NUM_THREADS=str(a.build_threads))
            err, wall, rss = run_timed([a.sat2cap, "import", "--db", db, "--collection", "c",
                                        "--vectors", vpath, "--points", ppath, "--batch",
                                        str(max(n, 1)), "--m", "16", "--ef-construction", "200"],
                                       env=env)
        srep = {"build_s": wall, "build_threads": a.build_threads,
                "import_max_rss_kib": rss, "index_bytes": dir_size(db),
                "import_stderr": err[-600:], "buckets": {}}
        print(f"  sat2cap: import {wall:.1f} s, {srep['index_bytes']/2**20:.1f} MiB", flush=True)
        one = os.path.join(a.work, f"{tag}-one.jsonl")
        write_batch(one, qs[:1])
        opens = []
        for _ in range(5):
            _, _, w1, r1 = sat2cap_query(a.sat2cap, db, one, one + ".out", [])
            opens.append((w1, r1, sat2cap_query.last_prep_s))
        srep["first_answer_process_wall_s"] = min(o[0] for o in opens)
        srep["one_query_max_rss_kib"] = opens[0][1]
        srep["prepare_s"] = min(o[2] for o in opens)
        for b in buckets:
            bp = os.path.join(a.work, f"{tag}-b{b}.jsonl")
            write_batch(bp, byb[b])
            cell = {}
            # --warm-up: one untimed pass first, so that the QPS is steady state like the
            # peers' (whose indexes sit on the heap, faulted in by their load); --resident:
            # the int8 rows copied onto the heap too (huge pages), as the peers' indexes
            # are; the cold start is what "process start to first answer" measures.
            warm = ["--warm-up", "--resident"]
            runs = [("default", warm)] + \
                   [(f"ef{ef}", warm + ["--ef", str(ef)]) for ef in efs] + \
                   [(f"effort{e:g}", warm + ["--effort", f"{e:g}"]) for e in efforts] + \
                   [("exact", warm + ["--exact"])]
            # Each sweep (ef, effort) stops at its first setting reaching the target.
            swept = set()
            for label, extra in runs:
                family = sweep_of(label)
                if family in swept:
                    continue
                qps, res, w, r = sat2cap_query(a.sat2cap, db, bp, bp + ".out", extra)
                rec = float(np.mean([recall(res.get(q["id"], []), q["truth"]) for q in byb[b]]))
                cell[label] = {"recall": rec, "qps": qps, "max_rss_kib": r, "wall_s": w,
                               "batch_qps": sat2cap_query.last_batch_qps}
                print(f"    sat2cap {b:>7.2%} {label:8s}: recall {rec:.3f} qps {qps:8.1f}"
                      f" rss {r} KiB", flush=True)
                if family in ("ef", "effort") and rec >= TARGET:
                    swept.add(family)
            srep["buckets"][str(b)] = cell
        report["systems"]["sat2cap"] = srep

    report["loadavg_end"] = os.getloadavg()
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
    print_tables(report)


def load_report(path):
    """A result file written by --json-out; exits (status 1, one line) unless its "schema" is
    SCHEMA: a file of another schema would be merged field by field into wrong tables."""
    try:
        with open(path) as f:
            rep = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"run.py: {path}: cannot read a result file: {e}")
    found = rep.get("schema") if isinstance(rep, dict) else None
    if found != SCHEMA:
        what = "has no \"schema\" field" if found is None else f"has schema {found!r}"
        sys.exit(f"run.py: {path} {what}; this script reads schema {SCHEMA} only "
                 f"(benches/peers/README.md)")
    return rep


def best_peer_cell(rep, name, b):
    """Best honest strategy of a peer in a bucket: fastest of (graph at the smallest ef reaching
    TARGET, brute force) among those reaching TARGET; else the highest recall. The SQL peers
    (LanceDB, DuckDB) are measured on their own strategies only: no numpy brute force."""
    s = rep["systems"][name]
    cands = []
    sw = s["buckets"][str(b)]["graph_sweep"]
    if sw:
        # a sweep is one or more runs of rising ef (LanceDB: without, then with refine_factor),
        # each stopped at its first ef reaching TARGET: the fastest of those, else best recall
        ok = [c for c in sw if c["recall"] >= TARGET]
        c = max(ok, key=lambda c: c["qps"]) if ok else max(sw, key=lambda c: c["recall"])
        how = "graph ef %d" % c["ef"]
        if c.get("refine_factor"):
            how += " refine %d" % c["refine_factor"]
        cands.append((how, c))
    if name not in SQL_PEERS:
        cands.append(("numpy brute", rep["brute_force"][str(b)]))
    if "own_exact" in s["buckets"][str(b)]:
        cands.append(({"lancedb": "flat", "duckdb": "SQL exact"}.get(name, "own exact"),
                      s["buckets"][str(b)]["own_exact"]))
    ok = [c for c in cands if c[1]["recall"] >= TARGET]
    if ok:
        return max(ok, key=lambda c: c[1]["qps"])
    return max(cands, key=lambda c: c[1]["recall"])


def sat2cap_cell(rep, b):
    cell = rep["systems"]["sat2cap"]["buckets"][str(b)]
    d = cell["default"]
    return d


def sweep_of(label):
    """The sweep a sat2cap run belongs to, by its label's letters: "ef512" -> "ef",
    "effort0.5" -> "effort", "default", "exact"."""
    return re.match(r"[a-z]+", label).group(0)


def print_tables(rep):
    peers = [p for p in rep["systems"] if p != "sat2cap" and "error" not in rep["systems"][p]]
    print(f"\n### {rep['dataset']} (n = {rep['n']}, dim = {rep['dim']})\n")
    hdr = ["selectivity", "queries", "mask ms"] + peers
    has = "sat2cap" in rep["systems"]
    if has:
        hdr += ["sat2cap (planner default)", "sat2cap best --ef / --effort >= 0.95",
                "sat2cap --exact",
                "sat2cap / best peer QPS: default / best mode",
                "same, peers charged their filter masks"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for b in rep["buckets"]:
        row = [f"{b:.2%}", str(rep["queries_per_bucket"][str(b)]), f"{rep['mask_ms'][str(b)]:.2f}"]
        best = None
        mask_s = rep["mask_ms"][str(b)] / 1e3
        # The peer's QPS had it also computed its filter's id set per query (the mask
        # column), which sat2cap's QPS includes for its own filters.
        best_charged = None
        for p in peers:
            how, c = best_peer_cell(rep, p, b)
            row.append(f"{c['recall']:.3f} / {c['qps']:.0f} ({how})")
            if c["recall"] >= TARGET and (best is None or c["qps"] > best):
                best = c["qps"]
            if c["recall"] >= TARGET and c["qps"] > 0:
                charged = 1.0 / (1.0 / c["qps"] + mask_s)
                best_charged = max(best_charged or 0.0, charged)
        if has:
            cell = rep["systems"]["sat2cap"]["buckets"][str(b)]
            d = cell["default"]
            row.append(f"{d['recall']:.3f} / {d['qps']:.0f}")
            # Of each sweep, its first setting reaching the target; the faster of the two.
            picks = []
            for family in ("ef", "effort"):
                swp = [(k, v) for k, v in cell.items()
                       if sweep_of(k) == family]
                ok = [(k, v) for k, v in swp if v["recall"] >= TARGET]
                if ok:
                    picks.append(ok[0])
                elif swp:
                    picks.append(max(swp, key=lambda kv: kv[1]["recall"]))
            ok = [kv for kv in picks if kv[1]["recall"] >= TARGET]
            if ok:
                k, v = max(ok, key=lambda kv: kv[1]["qps"])
            elif picks:
                k, v = max(picks, key=lambda kv: kv[1]["recall"])
            else:
                k, v = "-", {"recall": float("nan"), "qps": float("nan")}
            row.append(f"{v['recall']:.3f} / {v['qps']:.0f} ({k})")
            e = cell["exact"]
            row.append(f"{e['recall']:.3f} / {e['qps']:.0f}")
            cands = [c for c in (d, v, e) if c["recall"] >= TARGET]
            ours = max((c["qps"] for c in cands), default=float("nan"))
            dflt = d["qps"] if d["recall"] >= TARGET else float("nan")
            row.append(f"{dflt / best:.2f}x / {ours / best:.2f}x" if best else "n/a")
            row.append(f"{dflt / best_charged:.2f}x / {ours / best_charged:.2f}x"
                       if best_charged else "n/a")
        print("| " + " | ".join(row) + " |")
    print("\n| system | build (s) | index on disk (MiB) | RSS after load (MiB) | load (ms) | "
          "load + first query (ms) | process start to first answer (ms) |")
    print("|---|---|---|---|---|---|---|")
    for p in peers:
        s = rep["systems"][p]
        pr = s["probe"]
        print(f"| {p} | {s['build_s'] or float('nan'):.1f} ({s['build_threads']} thr) | "
              f"{s['index_bytes']/2**20:.1f} | {pr['rss_kib']/1024:.0f} | {pr['load_s']*1e3:.0f} | "
              f"{(pr['load_s']+pr['first_query_s'])*1e3:.0f} | "
              f"{pr['process_wall_s']*1e3:.0f} (python {pr['import_s']*1e3:.0f} of it) |")
    if has:
        s = rep["systems"]["sat2cap"]
        print(f"| sat2cap | {s['build_s']:.1f} (import, {s.get('build_threads', '?')} thr) | {s['index_bytes']/2**20:.1f} | "
              f"{s['one_query_max_rss_kib']/1024:.0f} (max RSS, 1-query run) | - | - | "
              f"{s['first_answer_process_wall_s']*1e3:.0f} (whole `sat2cap query` process; "
              f"segment prepare {s.get('prepare_s', float('nan'))*1e3:.0f} of it) |")
    print(f"\nload average: start {rep['loadavg_start']}, end {rep['loadavg_end']}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--tables":
        # merge reports of the same dataset made by separate runs (e.g. peers, then sat2cap)
        reps = [load_report(p) for p in sys.argv[2:]]
        rep = reps[0]
        for r in reps[1:]:
            for k, v in r["systems"].items():
                if v.get("build_s") is None and k in rep["systems"]:
                    v["build_s"] = rep["systems"][k]["build_s"]  # --reuse-index run
                rep["systems"][k] = v
            rep["brute_force"] = r["brute_force"]  # the last run's numpy brute force
        rep["loadavg_end"] = reps[-1]["loadavg_end"]
        print_tables(rep)
    else:
        main()
