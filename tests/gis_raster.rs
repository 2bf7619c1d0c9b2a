//! `sat2cap ingest-raster`: GeoTIFF / COG scenes cut into chips, placed where GDAL puts
//! them, the same vectors whatever the file's layout, bad files named with exit 2.
//!
//! Scenes are written here with the `tiff` crate (always) and with GDAL's own tools
//! (`gdal_translate`, `gdaladdo`, `gdaltransform`: Debian's gdal-bin, installed by .ci/run);
//! the GDAL checks skip with a note when the tools are missing, and fail instead when
//! `SAT2CAP_REQUIRE_TOOLS` is set (as CI sets it).
#![cfg(feature = "encoders")]

#[path = "common/cli.rs"]
mod cli;

use std::path::Path;
use std::process::Command;

use cli::{fails, ok, tool};
use sat2cap::jobs::{render_overhead, LandClass};
use sat2cap::{OpenOptions, Point};

fn run(cmd: &Path, args: &[&str], dir: &Path) {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} {args:?}: {}",
        cmd.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every chip of collection `overhead`: key -> (centre, vector).
fn chips(db: &Path) -> Vec<(String, Point, Vec<u16>)> {
    let db = sat2cap::Db::open(db, OpenOptions::read_only()).unwrap();
    let snap = db.snapshot();
    let view = snap.collection("overhead").unwrap();
    let mut out: Vec<(String, Point, Vec<u16>)> = view
        .iter()
        .map(|i| {
            let i = i.unwrap();
            let p: serde_json::Value = serde_json::from_str(i.payload.unwrap()).unwrap();
            let w = &p["window"];
            let key = format!("{},{},{}", w[0], w[1], w[2]);
            (key, i.point, i.vector.iter().map(|h| h.to_bits()).collect())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A 700 x 500 RGB picture: four synthetic land-cover tiles side by side, cropped.
fn picture() -> (u32, u32, Vec<u8>) {
    let (w, h) = (700u32, 500u32);
    let tiles: Vec<_> = (0..4)
        .map(|i| render_overhead(LandClass::ALL[i], i as u64, 350))
        .collect();
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let t = &tiles[((y / 350) * 2 + x / 350) as usize];
            rgb.extend_from_slice(&t.get_pixel(x % 350, y % 350).0);
        }
    }
    (w, h, rgb)
}

/// Writes `rgb` as a striped, deflated GeoTIFF in UTM 32N (1 m pixels) with the `tiff`
/// crate, the GeoTIFF tags written by hand.
fn write_geotiff(path: &Path, w: u32, h: u32, rgb: &[u8], geokeys: &[u16]) {
    use tiff::encoder::{colortype::RGB8, compression::DeflateLevel, Compression, TiffEncoder};
    use tiff::tags::Tag;
    let f = std::fs::File::create(path).unwrap();
    let mut enc = TiffEncoder::new(f)
        .unwrap()
        .with_compression(Compression::Deflate(DeflateLevel::default()));
    let mut img = enc.new_image::<RGB8>(w, h).unwrap();
    let e = img.encoder();
    e.write_tag(Tag::Unknown(33550), &[1.0f64, 1.0, 0.0][..])
        .unwrap();
    e.write_tag(
        Tag::Unknown(33922),
        &[0.0f64, 0.0, 0.0, 318_000.0, 5_155_000.0, 0.0][..],
    )
    .unwrap();
    e.write_tag(Tag::Unknown(34735), geokeys).unwrap();
    img.write_data(rgb).unwrap();
}

const UTM32N: [u16; 16] = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32632];

#[test]
fn a_scene_becomes_chips_with_their_places() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h, rgb) = picture();
    write_geotiff(&d.join("scene.tif"), w, h, &rgb, &UTM32N);
    let out = ok(
        d,
        &[
            "ingest-raster",
            "scene.tif",
            "--db",
            "db",
            "--random-weights",
            "--json",
        ],
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 700 x 500 px in chips of 224: 3 x 2, the margins said.
    assert_eq!(r["added"], 6);
    assert!(
        r["skipped"]
            .to_string()
            .contains("the last 28 columns and 52 rows"),
        "{r}"
    );
    let c = chips(&d.join("db"));
    assert_eq!(
        c.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        [
            "0,0,224",
            "0,224,224",
            "224,0,224",
            "224,224,224",
            "448,0,224",
            "448,224,224"
        ]
    );
    // The centre of chip (0, 0) is pixel (112, 112): 318112 E, 5154888 N in UTM 32N.
    let p = c[0].1;
    assert!(
        (p.lon() - 6.628_530_387_657_57).abs() < 1e-9
            && (p.lat() - 46.522_970_463_160_9).abs() < 1e-9,
        "{p:?}"
    );
    // Again: every chip present, skipped; --replace re-encodes them to the same vectors.
    let again: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "ingest-raster",
            "scene.tif",
            "--db",
            "db",
            "--random-weights",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(
        (again["added"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(6))
    );
    ok(
        d,
        &[
            "ingest-raster",
            "scene.tif",
            "--db",
            "db",
            "--random-weights",
            "--replace",
        ],
    );
    assert_eq!(chips(&d.join("db")), c);
    // Chips of 100 m at 1 m pixels: 224 x 100 / 1 / 224 = 100 px.
    ok(
        d,
        &[
            "ingest-raster",
            "scene.tif",
            "--db",
            "db2",
            "--random-weights",
            "--gsd",
            "0.446428571",
        ],
    );
    assert_eq!(chips(&d.join("db2")).len(), 7 * 5);
}

#[test]
fn gdal_layouts_give_the_same_chips_where_gdal_puts_them() {
    let (Some(translate), Some(addo), Some(transform)) = (
        tool("gdal_translate"),
        tool("gdaladdo"),
        tool("gdaltransform"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h, rgb) = picture();
    write_geotiff(&d.join("base.tif"), w, h, &rgb, &UTM32N);
    let variants: &[(&str, &[&str])] = &[
        (
            "tiled_deflate.tif",
            &["-co", "TILED=YES", "-co", "COMPRESS=DEFLATE"],
        ),
        ("striped_lzw.tif", &["-co", "COMPRESS=LZW"]),
        (
            "planar.tif",
            &[
                "-co",
                "INTERLEAVE=BAND",
                "-co",
                "TILED=YES",
                "-co",
                "BLOCKXSIZE=128",
                "-co",
                "BLOCKYSIZE=64",
            ],
        ),
        ("none.tif", &["-co", "COMPRESS=NONE", "-co", "BLOCKYSIZE=7"]),
        (
            "cog.tif",
            &[
                "-of",
                "COG",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "BLOCKSIZE=256",
            ],
        ),
        (
            "u16.tif",
            &["-ot", "UInt16", "-scale", "0", "255", "0", "2550"],
        ),
    ];
    let mut all = Vec::new();
    for (name, opts) in variants {
        let mut args = vec!["-q"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["base.tif", name]);
        run(&translate, &args, d);
        if *name == "tiled_deflate.tif" {
            run(&addo, &["-q", "tiled_deflate.tif", "2", "4"], d);
        }
        let db = format!("db_{name}");
        let mut a = vec!["ingest-raster", name, "--db", &db, "--random-weights"];
        if *name == "u16.tif" {
            a.extend_from_slice(&["--range", "0,2550"]);
        }
        ok(d, &a);
        all.push((name, chips(&d.join(&db))));
    }
    let (_, first) = &all[0];
    assert_eq!(first.len(), 6);
    for (name, c) in &all {
        assert_eq!(
            c, first,
            "{name}: other chips or vectors than the tiled deflate file"
        );
    }
    // Each chip's centre is where gdaltransform puts its centre pixel.
    for (key, p, _) in first {
        let v: Vec<f64> = key.split(',').map(|x| x.parse().unwrap()).collect();
        let (px, py) = (v[0] + v[2] / 2.0, v[1] + v[2] / 2.0);
        let out = Command::new(&transform)
            .args(["-t_srs", "EPSG:4326", "-output_xy", "base.tif"])
            .current_dir(d)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{px} {py}\n").as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let xy: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(
            (p.lon() - xy[0]).abs() < 1e-9 && (p.lat() - xy[1]).abs() < 1e-9,
            "{key}: {p:?} vs {xy:?}"
        );
    }
    // Other CRSs: the chip centres follow gdaltransform there too (Web Mercator, UTM south,
    // geographic), and nodata chips are skipped.
    for (srs, ullr) in [
        ("EPSG:3857", ["724000", "5864000", "724700", "5863500"]),
        ("EPSG:32733", ["500000", "8000000", "500700", "7999500"]),
        ("EPSG:4326", ["179.9", "-16.0", "180.6", "-16.5"]),
    ] {
        let name = format!("crs_{}.tif", srs.replace(':', "_"));
        let mut args = vec!["-q", "-a_srs", srs, "-a_ullr"];
        args.extend_from_slice(&ullr);
        args.extend_from_slice(&["base.tif", &name]);
        run(&translate, &args, d);
        let db = format!("db_{name}");
        ok(
            d,
            &["ingest-raster", &name, "--db", &db, "--random-weights"],
        );
        let c = chips(&d.join(&db));
        assert_eq!(c.len(), 6, "{srs}");
        let out = Command::new(&transform)
            .args(["-t_srs", "EPSG:4326", "-output_xy", &name])
            .current_dir(d)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write;
                ch.stdin.take().unwrap().write_all(b"336 336\n")?;
                ch.wait_with_output()
            })
            .unwrap();
        let xy: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let p = c.iter().find(|x| x.0 == "224,224,224").unwrap().1;
        let lon = if xy[0] > 180.0 { xy[0] - 360.0 } else { xy[0] };
        assert!(
            (p.lon() - lon).abs() < 1e-9 && (p.lat() - xy[1]).abs() < 1e-9,
            "{srs}: {p:?} vs {xy:?}"
        );
    }
    run(
        &translate,
        &[
            "-q",
            "-a_nodata",
            "0",
            "-scale",
            "0",
            "255",
            "0",
            "0",
            "-srcwin",
            "0",
            "0",
            "700",
            "250",
            "base.tif",
            "dark.tif",
        ],
        d,
    );
    fails(
        d,
        &[
            "ingest-raster",
            "dark.tif",
            "--db",
            "db_dark2",
            "--random-weights",
            "--chip-px",
            "100",
        ],
        &["no chips could be added"],
    );
}

#[test]
fn bad_scenes_are_named_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h, rgb) = picture();
    write_geotiff(&d.join("ok.tif"), w, h, &rgb, &UTM32N);
    let bytes = std::fs::read(d.join("ok.tif")).unwrap();
    std::fs::write(d.join("truncated.tif"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(d.join("text.tif"), "not a tiff").unwrap();
    write_geotiff(
        &d.join("nocrs.tif"),
        w,
        h,
        &rgb,
        &[1, 1, 0, 1, 1024, 0, 1, 1],
    );
    write_geotiff(
        &d.join("unknown.tif"),
        w,
        h,
        &rgb,
        &[1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 1],
    );
    write_geotiff(
        &d.join("user.tif"),
        w,
        h,
        &rgb,
        &[1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32767],
    );
    // A header that says 100000 x 100000 in one strip.
    let mut huge = Vec::new();
    huge.extend_from_slice(b"II*\0\x08\0\0\0");
    let entries: &[(u16, u16, u32, u32)] = &[
        (256, 4, 1, 100_000),
        (257, 4, 1, 100_000),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 200),
        (277, 3, 1, 1),
        (278, 4, 1, 100_000),
        (279, 4, 1, 10_000_000),
    ];
    huge.extend_from_slice(&(entries.len() as u16 + 3).to_le_bytes());
    let mut tail = Vec::new();
    for (tag, ty, count, value) in entries {
        huge.extend_from_slice(&tag.to_le_bytes());
        huge.extend_from_slice(&ty.to_le_bytes());
        huge.extend_from_slice(&count.to_le_bytes());
        huge.extend_from_slice(&value.to_le_bytes());
    }
    let extra_at = 8 + 2 + 12 * (entries.len() + 3) + 4;
    let doubles = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (tag, ty, data) in [
        (33550u16, 12u16, doubles(&[1.0, 1.0, 0.0])),
        (33922, 12, doubles(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0])),
        (
            34735,
            3,
            UTM32N.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    ] {
        let count = if ty == 12 {
            data.len() / 8
        } else {
            data.len() / 2
        };
        huge.extend_from_slice(&tag.to_le_bytes());
        huge.extend_from_slice(&ty.to_le_bytes());
        huge.extend_from_slice(&(count as u32).to_le_bytes());
        huge.extend_from_slice(&((extra_at + tail.len()) as u32).to_le_bytes());
        tail.extend_from_slice(&data);
    }
    huge.extend_from_slice(&0u32.to_le_bytes());
    huge.extend_from_slice(&tail);
    huge.resize(4096, 0);
    std::fs::write(d.join("huge.tif"), &huge).unwrap();
    for (file, extra, want) in [
        ("truncated.tif", &[][..], &["truncated.tif"][..]),
        ("text.tif", &[], &["text.tif", "not a TIFF"]),
        ("nocrs.tif", &[], &["nocrs.tif", "no CRS"]),
        ("unknown.tif", &[], &["unknown.tif", "EPSG:1"]),
        ("user.tif", &[], &["user.tif", "user-defined"]),
        ("huge.tif", &[], &["huge.tif"]),
        ("missing.tif", &[], &["missing.tif", "no such file"]),
        ("ok.tif", &["--bands", "1,2,5"], &["band 5", "1..=3"]),
        ("ok.tif", &["--bands", "1,2"], &["2 bands"]),
        ("ok.tif", &["--chip-px", "600"], &["smaller than one chip"]),
        ("ok.tif", &["--range", "5,1"], &["--range"]),
        ("ok.tif", &["--max-nodata", "2"], &["--max-nodata"]),
    ] {
        let mut a = vec!["ingest-raster", file, "--db", "db", "--random-weights"];
        a.extend_from_slice(extra);
        fails(d, &a, want);
    }
    // Nothing was created by the failures.
    assert!(!d.join("db").exists());
}
