//! Runs the fuzz-target bodies (`sat2cap::testing::fuzz`) on every file of
//! `fuzz/corpus/<target>/` plus a bounded number of seeded random and mutated inputs, so the
//! fuzz targets are exercised by plain `cargo test`.
//! `SAT2CAP_WRITE_CORPUS=1 cargo test --test fuzz_replay write_seed_corpus` regenerates the
//! committed seed corpus of the storage targets; the io targets (`npy_header`, `npy_file`,
//! `points_csv`, `query_jsonl`, `time_parse`, `text_lines`) have hand-made
//! seeds plus what cargo-fuzz runs produced. The index / query and encoder targets
//! (`graph_section`, `filter_plan`; `safetensors_load`, `image_preprocess`, `tokenizer` with
//! feature `encoders`) get their seeds from `write_seed_corpus` too (generated valid inputs
//! plus hand-made edge cases); `pytorch_load`'s seeds are written by
//! tools/make_pytorch_fixtures.py (files `torch.save` wrote, bare pickles, hostile files).

use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::storage::Directory;
use sat2cap::testing::{fuzz, MemDirectory};
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// Valid files: (segments, manifests, tombstones) from a few small databases.
type Files = Vec<Vec<u8>>;

fn valid_files() -> (Files, Files, Files) {
    let (mut s, mut m, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for dim in [1usize, 3, 16] {
        let mem = MemDirectory::new();
        let mut db = Db::open_in(
            Arc::new(mem.clone()),
            OpenOptions::create_new().indexes(IndexOptions::none()),
        )
        .unwrap();
        db.create_collection("c", dim).unwrap();
        db.create_collection("other", 2).unwrap();
        for id in 0..(dim as u64 + 2) {
            let v: Vec<f32> = (0..dim).map(|j| (j as f32 + id as f32) - 1.5).collect();
            let p = "x".repeat(id as usize);
            db.add(
                "c",
                NewItem {
                    id: id * 5,
                    vector: &v,
                    // Out of id order on the Hilbert curve: the segments get an id-order
                    // section.
                    point: Point::new(-90.0 + id as f64, 179.0 - (id as f64 * 97.0) % 350.0)
                        .unwrap(),
                    time: (id % 2 == 1).then_some(-(id as i64)),
                    payload: (dim > 1 && id % 2 == 0).then_some(p.as_str()),
                },
            )
            .unwrap();
        }
        db.commit().unwrap();
        db.delete("c", 5).unwrap();
        db.commit().unwrap();
        for name in mem.list().unwrap() {
            let b = (*mem.read(&name).unwrap()).as_ref().to_vec();
            if name.ends_with(".s2seg") {
                s.push(b);
            } else if name.ends_with(".s2tomb") {
                t.push(b);
            } else if name == "MANIFEST" {
                m.push(b);
            }
        }
    }
    let spatial = s.iter().any(|b| {
        sat2cap::storage::Segment::open(
            Arc::new(sat2cap::storage::AlignedBytes::from_slice(b)),
            "v",
        )
        .is_ok_and(|seg| seg.id_order().is_some())
    });
    assert!(spatial, "no valid segment with an id-order section");
    (s, m, t)
}

fn mutate(r: &mut ChaCha8Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..r.random_range(1..4) {
        match r.random_range(0..4) {
            0 if !b.is_empty() => {
                let i = r.random_range(0..b.len());
                b[i] ^= 1 << r.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let n = r.random_range(0..b.len());
                b.truncate(n);
            }
            2 if b.len() >= 8 => {
                // Overwrite a u64 with an extreme value.
                let i = r.random_range(0..b.len() - 7);
                let v = [0u64, 1, u64::MAX, u64::MAX / 2, 1 << 32][r.random_range(0..5)];
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => b.push(r.random()),
        }
    }
    b
}

fn replay(target: &str, f: fn(&[u8]), valid: &[Vec<u8>], seed: u64, rounds: usize) {
    let files = corpus(target);
    assert!(!files.is_empty(), "no committed corpus for {target}");
    for c in &files {
        f(c);
    }
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    for v in valid {
        f(v);
    }
    let bases: Vec<&Vec<u8>> = valid.iter().chain(files.iter()).collect();
    for _ in 0..rounds {
        let base = bases[r.random_range(0..bases.len())];
        f(&mutate(&mut r, base));
    }
    for _ in 0..rounds / 10 {
        let n = r.random_range(0..300);
        let b: Vec<u8> = (0..n).map(|_| r.random()).collect();
        f(&b);
    }
}

#[test]
fn replay_segment_open() {
    let (s, _, _) = valid_files();
    replay("segment_open", fuzz::segment_open, &s, 1, 3000);
}

#[test]
fn replay_manifest_parse() {
    let (_, m, _) = valid_files();
    replay("manifest_parse", fuzz::manifest_parse, &m, 2, 3000);
}

#[test]
fn replay_tombstone_parse() {
    let (_, _, t) = valid_files();
    replay("tombstone_parse", fuzz::tombstone_parse, &t, 3, 3000);
}

#[test]
fn replay_db_ops() {
    replay("db_ops", fuzz::db_ops, &[], 4, 60);
}

/// The committed corpus of `target` as bases for mutation (the io targets have hand-made
/// seeds: valid files plus known-bad ones).
fn replay_io(target: &str, f: fn(&[u8]), seed: u64, rounds: usize) {
    replay(target, f, &[], seed, rounds);
}

#[test]
fn replay_npy_header() {
    replay_io("npy_header", sat2cap::testing::fuzz::npy_header, 5, 3000);
}

#[test]
fn replay_npy_file() {
    replay_io("npy_file", sat2cap::testing::fuzz::npy_file, 6, 600);
}

#[test]
fn replay_points_csv() {
    replay_io("points_csv", sat2cap::testing::fuzz::points_csv, 7, 3000);
}

#[test]
fn replay_query_jsonl() {
    replay_io("query_jsonl", sat2cap::testing::fuzz::query_jsonl, 8, 3000);
}

#[test]
fn replay_text_lines() {
    replay_io("text_lines", sat2cap::testing::fuzz::text_lines, 10, 3000);
}

#[test]
fn replay_time_parse() {
    replay_io("time_parse", sat2cap::testing::fuzz::time_parse, 9, 3000);
}

/// Valid graph sections over `fuzz::query::graph_vectors`: built by HNSW, and written by
/// hand with upper levels (and an empty graph).
fn valid_graphs() -> Vec<Vec<u8>> {
    use sat2cap::index::hnsw::layout::{write, GraphHeader, LevelLists, NO_ENTRY};
    use sat2cap::index::hnsw::{build_graph, HnswParams};
    use sat2cap::testing::fuzz::query::{graph_vectors, GRAPH_DIM};
    let params = HnswParams {
        m: 4,
        ef_construction: 8,
        ef_search: 8,
    };
    let mut out = Vec::new();
    for n in [0u32, 1, 2, 7, 40] {
        out.push(build_graph(&graph_vectors(n), GRAPH_DIM, &params).unwrap());
    }
    let header = |n, entry| GraphHeader {
        n,
        dim: GRAPH_DIM as u32,
        m: 2,
        entry,
        ef_construction: 2,
    };
    // Three levels over 8 rows: 0..8, {1, 3, 5}, {3}.
    let ring = |r: u32| vec![(r + 1) % 8, (r + 7) % 8];
    let levels = [
        LevelLists {
            nodes: Vec::new(),
            adjacency: (0..8).map(ring).collect(),
        },
        LevelLists {
            nodes: vec![1, 3, 5],
            adjacency: vec![vec![3], vec![1, 5], vec![3]],
        },
        LevelLists {
            nodes: vec![3],
            adjacency: vec![Vec::new()],
        },
    ];
    out.push(write(header(8, 3), &levels).unwrap());
    // Level 0 only, no edges at all.
    out.push(
        write(
            header(8, 0),
            &[LevelLists {
                nodes: Vec::new(),
                adjacency: vec![Vec::new(); 8],
            }],
        )
        .unwrap(),
    );
    out.push(write(header(0, NO_ENTRY), &[]).unwrap());
    for g in &out {
        let n = u32::from_le_bytes(g[8..12].try_into().unwrap());
        sat2cap::index::hnsw::GraphView::parse(g, n).expect("seed graphs are valid");
    }
    out
}

/// Walk hints sections over 8 rows, which `graph_section` also reads its bytes as: the
/// current version (with the sample rows' int8 copy) and version 1 (without), with and
/// without a slack, and one over every row with a sample of none.
fn valid_hints() -> Vec<Vec<u8>> {
    use sat2cap::index::hnsw::{write_hints, RoutingSample};
    use sat2cap::testing::fuzz::query::{graph_vectors, GRAPH_DIM};
    let vectors = graph_vectors(8);
    let sample = RoutingSample::build(&vectors, GRAPH_DIM, 8, 1);
    let v2 = write_hints(Some(0.25), &sample, &vectors, GRAPH_DIM);
    // Version 1: the same header and sample, ending after the prefixes.
    let mut v1 = v2[..32 + 8 * 4 + 8 * GRAPH_DIM * 2].to_vec();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    let none = RoutingSample::build(&vectors, GRAPH_DIM, 8, 0);
    let out = vec![
        v2,
        v1,
        write_hints(None, &sample, &vectors, GRAPH_DIM),
        write_hints(Some(0.0), &none, &vectors, GRAPH_DIM),
    ];
    for h in &out {
        let s = RoutingSample::from_hints(h, 8, GRAPH_DIM).expect("seed hints are valid");
        assert!(s.matches(h, &vectors, GRAPH_DIM, 8));
    }
    assert!(RoutingSample::from_hints(&out[0], 8, GRAPH_DIM)
        .unwrap()
        .int8_rows(&out[0], GRAPH_DIM)
        .is_some());
    out
}

#[test]
fn replay_graph_section() {
    let mut valid = valid_graphs();
    valid.extend(valid_hints());
    replay(
        "graph_section",
        sat2cap::testing::fuzz::graph_section,
        &valid,
        10,
        3000,
    );
}

/// Query lines for `filter_plan` (4-d collection): every filter kind, antimeridian, poles,
/// time strings, and invalid requests.
fn plan_lines() -> Vec<Vec<u8>> {
    [
        r#"{"id":1,"k":5,"vector":[0.1,0.2,0.3,0.4]}"#,
        r#"{"id":2,"k":10,"vector":[1,0,0,0],"filter":null}"#,
        r#"{"id":3,"k":10,"vector":[0,1,0,0],"filter":{"bbox":[-30,-20,40,50]}}"#,
        r#"{"id":4,"k":3,"vector":[0,0,1,0],"filter":{"bbox":[170,-90,-170,90]}}"#,
        r#"{"id":5,"k":500,"vector":[0,0,0,1],"filter":{"bbox":[-180,-90,180,90]}}"#,
        r#"{"id":6,"k":10,"vector":[1,1,1,1],"filter":{"radius":{"lat":90,"lon":0,"km":2000}}}"#,
        r#"{"id":7,"k":10,"vector":[1,-1,1,-1],"filter":{"radius":{"lat":0,"lon":179.5,"km":3000}}}"#,
        r#"{"id":8,"k":10,"vector":[-1,0,0,0],"filter":{"radius":{"lat":10,"lon":10,"km":0}}}"#,
        r#"{"id":9,"k":20,"vector":[0.5,0.5,0,0],"filter":{"polygon":[[170,-10],[-170,-10],[-170,10],[170,10]]}}"#,
        r#"{"id":10,"k":20,"vector":[0.5,0,0.5,0],"filter":{"polygon":[[0,0],[60,0],[30,60]]}}"#,
        r#"{"id":11,"k":50,"vector":[0,0.5,0,0.5],"filter":{"time":[0,2000000000]}}"#,
        r#"{"id":12,"k":50,"vector":[0.3,0,0,0.1],"filter":{"time":["1970-01-01","2033-05-18T03:33:20Z"]}}"#,
        r#"{"id":13,"k":30,"vector":[0.3,0.2,0.1,0],"filter":{"bbox":[-180,-60,180,60],"time":[-2000000000,1000000000]}}"#,
        r#"{"id":14,"k":30,"vector":[0.2,0.1,0,0.3],"filter":{"bbox":[-180,-90,180,90],"radius":{"lat":-45,"lon":-120,"km":8000},"time":[1000000000,3000000000]}}"#,
        r#"{"id":15,"k":1000000,"vector":[1,2,3,4],"filter":{"radius":{"lat":0,"lon":0,"km":20037}}}"#,
        r#"{"id":16,"k":0,"vector":[1,2,3,4]}"#,
        r#"{"id":17,"k":3,"vector":[0,0,0,0]}"#,
        r#"{"id":18,"k":3,"vector":[1,2]}"#,
        r#"{"id":19,"k":3,"vector":[]}"#,
        r#"{"id":20,"k":3,"vector":[1,2,3,4],"filter":{"bbox":[0,10,0,20]}}"#,
        r#"{"id":21,"k":3,"vector":[1,2,3,4],"filter":{"time":[5,4]}}"#,
        r#"{"id":22,"k":18446744073709551615,"vector":[3e38,3e38,-3e38,1e-45]}"#,
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect()
}

#[test]
fn replay_filter_plan() {
    replay(
        "filter_plan",
        sat2cap::testing::fuzz::filter_plan,
        &plan_lines(),
        11,
        400,
    );
}

#[cfg(feature = "encoders")]
fn valid_checkpoints() -> Vec<Vec<u8>> {
    use safetensors::Dtype;
    use sat2cap::testing::fuzz::encoders::safetensors_seed;
    vec![
        safetensors_seed(Dtype::F32, false),
        safetensors_seed(Dtype::F16, true),
        safetensors_seed(Dtype::BF16, false),
        safetensors_seed(Dtype::F64, false),
    ]
}

#[cfg(feature = "encoders")]
#[test]
fn replay_safetensors_load() {
    // The seeds load (so the body's success path runs).
    for f in valid_checkpoints() {
        let file = sat2cap::encoders::weights::WeightsFile::from_bytes(
            std::path::Path::new("seed"),
            f.clone(),
        )
        .unwrap();
        assert!(file.tensors().count() > 10);
        sat2cap::testing::fuzz::safetensors_load(&f);
    }
    replay(
        "safetensors_load",
        sat2cap::testing::fuzz::safetensors_load,
        &valid_checkpoints(),
        12,
        300,
    );
}

#[cfg(feature = "encoders")]
fn valid_images() -> Vec<Vec<u8>> {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    let rgb = RgbImage::from_fn(7, 5, |x, y| Rgb([x as u8 * 30, y as u8 * 50, 200]));
    let tall = RgbImage::from_fn(1, 40, |_, y| Rgb([y as u8, 0, 255 - y as u8]));
    let mut out = Vec::new();
    let enc = |img: DynamicImage, f: ImageFormat| {
        let mut b = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut b), f).unwrap();
        b
    };
    out.push(enc(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png));
    out.push(enc(DynamicImage::ImageRgb8(tall), ImageFormat::Png));
    out.push(enc(
        DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(3, 3, |x, y| {
            image::Rgba([x as u16 * 9000, y as u16 * 9000, 1, 65535])
        })),
        ImageFormat::Png,
    ));
    out.push(enc(
        DynamicImage::ImageLuma8(image::GrayImage::from_fn(4, 2, |x, _| {
            image::Luma([x as u8 * 60])
        })),
        ImageFormat::Png,
    ));
    out.push(enc(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Jpeg));
    out.push(enc(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::WebP));
    out.push(enc(DynamicImage::ImageRgb8(rgb), ImageFormat::Tiff));
    for b in &out {
        sat2cap::encoders::Image::decode(b).expect("seed images decode");
    }
    out
}

#[cfg(feature = "encoders")]
#[test]
fn replay_image_preprocess() {
    use sat2cap::testing::fuzz::encoders::png_declaring;
    let mut seeds = valid_images();
    seeds.push(png_declaring(12_000, 12_000));
    seeds.push(png_declaring(100_000, 3));
    replay(
        "image_preprocess",
        sat2cap::testing::fuzz::image_preprocess,
        &seeds,
        13,
        300,
    );
}

#[cfg(feature = "encoders")]
fn token_texts() -> Vec<Vec<u8>> {
    [
        "a busy city street lined with skyscrapers",
        "",
        "   \t\n ",
        "A PHOTO of a Lake, at 06:00!!",
        "&amp;&lt;b&gt; &#39;quoted&#x27; &nbsp; &#0; &#xD800; &#99999999; &bogus; &",
        "<|startoftext|>hi<|endoftext|> <|ENDOFTEXT|>",
        "naïve café 東京タワー 🛰️🌍 Ωmega",
        "don't we'll they're I'm you've she'd it's",
        "1234567890 3.14159 -273.15",
        "\u{0}\u{7f}\u{80}\u{ffff}",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain([
        "word ".repeat(120).into_bytes(),
        "a".repeat(600).into_bytes(),
        "ab".repeat(300).into_bytes(),
    ])
    .collect()
}

#[cfg(feature = "encoders")]
#[test]
fn replay_tokenizer() {
    replay(
        "tokenizer",
        sat2cap::testing::fuzz::tokenizer,
        &token_texts(),
        14,
        3000,
    );
}

/// The committed seeds (made by torch itself: tools/make_pytorch_fixtures.py) as bases.
#[cfg(feature = "encoders")]
#[test]
fn replay_pytorch_load() {
    replay(
        "pytorch_load",
        sat2cap::testing::fuzz::pytorch_load,
        &[],
        15,
        3000,
    );
}

#[test]
fn write_seed_corpus() {
    if std::env::var("SAT2CAP_WRITE_CORPUS").is_err() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let (s, m, t) = valid_files();
    let mut r = ChaCha8Rng::seed_from_u64(99);
    for (target, files) in [
        ("segment_open", s),
        ("manifest_parse", m),
        ("tombstone_parse", t),
    ] {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, f) in files.iter().enumerate().take(3) {
            std::fs::write(d.join(format!("valid-{i}")), f).unwrap();
            std::fs::write(d.join(format!("mutated-{i}")), mutate(&mut r, f)).unwrap();
        }
    }
    let d = root.join("db_ops");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..4 {
        let b: Vec<u8> = (0..200).map(|_| r.random()).collect();
        std::fs::write(d.join(format!("random-{i}")), b).unwrap();
    }
    #[cfg_attr(not(feature = "encoders"), allow(unused_mut))]
    let mut sets: Vec<(&str, Vec<Vec<u8>>, usize)> = vec![
        ("graph_section", valid_graphs(), 4),
        ("filter_plan", plan_lines(), 4),
    ];
    #[cfg(feature = "encoders")]
    {
        use sat2cap::testing::fuzz::encoders::png_declaring;
        let mut images = valid_images();
        images.push(png_declaring(12_000, 12_000));
        images.push(png_declaring(100_000, 3));
        sets.push(("safetensors_load", valid_checkpoints(), 4));
        sets.push(("image_preprocess", images, 4));
        sets.push(("tokenizer", token_texts(), 0));
    }
    for (target, files, mutated) in sets {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, f) in files.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:02}")), f).unwrap();
        }
        for i in 0..mutated {
            let base = &files[r.random_range(0..files.len())];
            std::fs::write(d.join(format!("mutated-{i}")), mutate(&mut r, base)).unwrap();
        }
    }
    let d = root.join("graph_section");
    for (i, h) in valid_hints().iter().enumerate() {
        std::fs::write(d.join(format!("hints-{i:02}")), h).unwrap();
    }
}

/// Hand-made areas and examples: holes, labels, the antimeridian cut and uncut, a pole.
#[cfg(feature = "encoders")]
#[test]
fn replay_geojson_area() {
    replay_io(
        "geojson_area",
        sat2cap::testing::fuzz::geojson_area,
        16,
        3000,
    );
}

/// Small scenes GDAL wrote (striped, tiled deflate, band-interleaved LZW, float with NaN
/// nodata in Web Mercator, 16-bit PackBits across the antimeridian, a COG).
#[cfg(feature = "encoders")]
#[test]
fn replay_geotiff_scene() {
    replay_io(
        "geotiff_scene",
        sat2cap::testing::fuzz::geotiff_scene,
        17,
        1500,
    );
}

/// Files sat2cap exported (float16, float32), pyarrow wrote (lon / lat, zstd) and geopandas
/// wrote (gzip with the bbox covering, lz4), one without rows, and a `geo` metadata text.
#[test]
fn replay_geoparquet_file() {
    replay_io("geoparquet_file", fuzz::geoparquet_file, 18, 3000);
}

/// WKB as shapely writes it: points (2-D, big-endian Z, EWKB with an SRID, empty), polygons
/// (a hole, ISO Z), the antimeridian multipolygon, other types, a truncated polygon.
#[test]
fn replay_wkb_geometry() {
    replay_io("wkb_geometry", fuzz::wkb_geometry, 19, 3000);
}
