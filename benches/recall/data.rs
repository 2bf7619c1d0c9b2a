//! The datasets: geonames-minilm from disk, the synthetic sets, their queries and truth.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use half::f16;
use sat2cap::geo::{haversine_km, Point};
use sat2cap::index::flat::top_k;
use sat2cap::query::filter::{BBox, Filter, Radius};
use sat2cap::testing::synth::query_near;

pub(crate) struct Query {
    pub(crate) vector: Vec<f32>,
    pub(crate) filter: Filter,
    pub(crate) selectivity: f64,
    pub(crate) truth: Vec<u32>,
}

pub(crate) const BUCKETS: [f64; 6] = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001];

pub(crate) fn bucket_of(s: f64) -> usize {
    let mut best = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        if (s.max(1e-9).ln() - b.ln()).abs() < (s.max(1e-9).ln() - BUCKETS[best].ln()).abs() {
            best = i;
        }
    }
    best
}

/// Recall of `got` against `truth` (1.0 when there is no truth).
pub(crate) fn recall(got: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<u32> = truth.iter().copied().collect();
    got.iter().filter(|r| t.contains(r)).count() as f64 / truth.len() as f64
}

pub(crate) fn read_npy_f16(path: &Path) -> Result<(Vec<f16>, usize, usize), String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an npy file".into());
    }
    let (hlen, hstart) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(bytes.get(hstart..hstart + hlen).ok_or("short header")?);
    if !header.contains("'<f2'") || header.contains("'fortran_order': True") {
        return Err(format!("unsupported npy header {header}"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let [n, d] = dims[..] else {
        return Err(format!("shape {shape}"));
    };
    let data = bytes.get(hstart + hlen..).ok_or("no data")?;
    if data.len() != n * d * 2 {
        return Err("data length".into());
    }
    let v = data
        .chunks_exact(2)
        .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    Ok((v, n, d))
}

/// Vectors, dimension, locations and queries of a data set.
pub(crate) type Loaded = (Vec<f16>, usize, Vec<Point>, Vec<Query>);

pub(crate) fn load_geonames(dir: &Path) -> Result<Loaded, String> {
    let (vectors, n, dim) = read_npy_f16(&dir.join("vectors.f16.npy"))?;
    let csv = std::fs::read_to_string(dir.join("places.csv")).map_err(|e| e.to_string())?;
    let mut points = vec![None; n];
    for line in csv.lines().skip(1) {
        let mut it = line.split(',');
        let (Some(id), Some(lat), Some(lon)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(id), Ok(lat), Ok(lon)) = (id.parse::<usize>(), lat.parse(), lon.parse()) else {
            continue;
        };
        if id < n {
            points[id] = Point::new(lat, lon).ok();
        }
    }
    let points: Vec<Point> = points
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or("places.csv misses rows")?;
    let truth_file = std::fs::File::open(dir.join("truth.dev.jsonl")).map_err(|e| e.to_string())?;
    let mut truth = BTreeMap::new();
    for line in BufReader::new(truth_file).lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let ids: Vec<u32> = v["neighbors"]
            .as_array()
            .ok_or("neighbors")?
            .iter()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect();
        truth.insert(v["id"].as_u64().ok_or("id")?, ids);
    }
    let qf = std::fs::File::open(dir.join("queries.dev.jsonl")).map_err(|e| e.to_string())?;
    let mut queries = Vec::new();
    for line in BufReader::new(qf).lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let id = v["id"].as_u64().ok_or("id")?;
        let vector: Vec<f32> = v["vector"]
            .as_array()
            .ok_or("vector")?
            .iter()
            .filter_map(|x| x.as_f64().map(|x| x as f32))
            .collect();
        let f = &v["filter"];
        let filter = if let Some(b) = f.get("bbox").and_then(|b| b.as_array()) {
            let e: Vec<f64> = b.iter().filter_map(|x| x.as_f64()).collect();
            if e.len() != 4 {
                return Err("bbox".into());
            }
            Filter::new().bbox(BBox::new(e[0], e[1], e[2], e[3]).map_err(|e| e.to_string())?)
        } else if let Some(r) = f.get("radius") {
            let g = |k: &str| r[k].as_f64().ok_or(format!("radius.{k}"));
            Filter::new()
                .radius(Radius::new(g("lat")?, g("lon")?, g("km")?).map_err(|e| e.to_string())?)
        } else {
            Filter::new()
        };
        queries.push(Query {
            vector,
            filter,
            selectivity: v["selectivity"].as_f64().unwrap_or(1.0),
            truth: truth.get(&id).cloned().unwrap_or_default(),
        });
    }
    Ok((vectors, dim, points, queries))
}

pub(crate) fn synth_queries(
    data: &sat2cap::testing::synth::SynthData,
    per_bucket: usize,
) -> Vec<Query> {
    let n = data.points.len();
    let mut out = Vec::new();
    for (b, &frac) in BUCKETS.iter().enumerate() {
        for i in 0..per_bucket {
            let vector = query_near(data, i * 13 + b, (b * 100_000 + i) as u64);
            let filter = if frac >= 1.0 {
                Filter::new()
            } else {
                // A circle around a data point holding about frac * n rows.
                let c = data.points[(i * 7919 + b * 31) % n];
                let mut d: Vec<f64> = data.points.iter().map(|&p| haversine_km(c, p)).collect();
                let target = ((n as f64 * frac) as usize).clamp(1, n);
                d.select_nth_unstable_by(target - 1, f64::total_cmp);
                let inner = d[target - 1];
                // Halfway to the next farther row, so that no row sits on the boundary (where
                // another haversine implementation could round the other way).
                let outer = d[target..].iter().copied().fold(f64::INFINITY, f64::min);
                let km = if outer.is_finite() && outer > inner {
                    (inner + outer) / 2.0
                } else {
                    inner
                };
                match Radius::new(c.lat(), c.lon(), km) {
                    Ok(r) => Filter::new().radius(r),
                    Err(_) => continue,
                }
            };
            let keep: Vec<u32> = (0..n as u32)
                .filter(|&r| filter.matches(data.points[r as usize], None))
                .collect();
            let truth = top_k(&data.vectors, data.dim, &vector, keep.iter().copied(), 10)
                .iter()
                .map(|h| h.row)
                .collect();
            out.push(Query {
                vector,
                filter,
                selectivity: keep.len() as f64 / n as f64,
                truth,
            });
        }
    }
    out
}

/// Writes `data` and `queries` in the geonames-minilm layout (see its README).
pub(crate) fn export_synth(
    dir: &Path,
    data: &sat2cap::testing::synth::SynthData,
    queries: &[Query],
) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let n = data.points.len();
    let header = format!(
        "{{'descr': '<f2', 'fortran_order': False, 'shape': ({n}, {}), }}",
        data.dim
    );
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut npy = Vec::with_capacity(128 + data.vectors.len() * 2);
    npy.extend_from_slice(b"\x93NUMPY\x01\x00");
    let hlen = (header.len() + pad % 64 + 1) as u16;
    npy.extend_from_slice(&hlen.to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend(std::iter::repeat_n(b' ', pad % 64));
    npy.push(b'\n');
    for v in &data.vectors {
        npy.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    std::fs::write(dir.join("vectors.f16.npy"), npy)?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("places.csv"))?);
    writeln!(csv, "id,lat,lon,name,admin1,admin2,cc")?;
    for (i, p) in data.points.iter().enumerate() {
        writeln!(csv, "{i},{:.6},{:.6},synth{i},,,", p.lat(), p.lon())?;
    }
    csv.flush()?;
    let mut qf = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.dev.jsonl"))?);
    let mut tf = std::io::BufWriter::new(std::fs::File::create(dir.join("truth.dev.jsonl"))?);
    for (id, q) in queries.iter().enumerate() {
        // The synthetic queries' filters are single radii.
        let filter = match q.filter.predicates() {
            [sat2cap::Predicate::Radius(r)] => {
                serde_json::json!({"radius": {"lat": r.center().lat(), "lon": r.center().lon(), "km": r.radius_km()}})
            }
            _ => serde_json::Value::Null,
        };
        let line = serde_json::json!({"id": id, "text": "", "k": 10, "filter": filter,
            "selectivity": q.selectivity, "vector": q.vector});
        writeln!(qf, "{line}")?;
        writeln!(
            tf,
            "{}",
            serde_json::json!({"id": id, "neighbors": q.truth})
        )?;
    }
    qf.flush()?;
    tf.flush()
}
