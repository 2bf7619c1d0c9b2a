//! Overhead-to-ground lookup: store ground photos (CLIP), then ask which ones an overhead tile
//! (Sat2Cap) predicts, within a radius.
//!
//! `cargo run --example overhead_to_ground`. Seeded RANDOM encoders unless SAT2CAP_WEIGHTS is
//! set (random: the ranking shows the pipeline, not meaning); `SAT2CAP_TINY_MODEL=1`: instant.

use sat2cap::encoders::Image;
use sat2cap::jobs::{render_ground, render_overhead, Embedder, LandClass, Model, ModelOptions};
use sat2cap::{Db, NewItem, OpenOptions, Point};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&ModelOptions {
        weights: std::env::var_os("SAT2CAP_WEIGHTS").map(Into::into),
        random: true,
        tiny: std::env::var_os("SAT2CAP_TINY_MODEL").is_some_and(|v| v == "1"),
        ..ModelOptions::default()
    })?;
    println!("encoders: {}", model.describe());
    let enc = model.encoders();
    let dir = tempfile::tempdir()?;
    let mut db = Db::open(dir.path().join("o2g.db"), OpenOptions::create_new())?;
    db.create_collection("ground", 512)?;
    // Eight photos along a line east of Lausanne, alternating classes.
    let mut photos = Vec::new();
    let mut points = Vec::new();
    for i in 0..8u64 {
        let class = LandClass::ALL[i as usize % 4];
        let img = render_ground(class, i, 160, 120);
        photos.push(Image::from_rgb8(160, 120, img.into_raw())?);
        points.push((Point::new(46.52, 6.60 + 0.01 * i as f64)?, class));
    }
    let vs = enc.encode_ground(&photos)?;
    for (i, (v, (p, class))) in vs.iter().zip(&points).enumerate() {
        let payload = format!("{{\"class\": \"{}\"}}", class.name());
        db.add(
            "ground",
            NewItem {
                id: i as u64,
                vector: v,
                point: *p,
                time: None,
                payload: Some(&payload),
            },
        )?;
    }
    db.commit()?;

    let tile = render_overhead(LandClass::Water, 99, 224);
    let q = enc.encode_overhead(&[Image::from_rgb8(224, 224, tile.into_raw())?], None)?;
    let snap = db.snapshot();
    println!("photos within 3 km of 46.52,6.62 predicted by a water tile:");
    let ground = snap.collection("ground")?;
    for h in ground
        .search(&q[0])
        .k(3)
        .within_radius(46.52, 6.62, 3.0)
        .run()?
        .hits
    {
        println!(
            "  id {}  cos {:+.4}  {:.4},{:.4}  {}",
            h.id,
            h.score,
            h.point.lat(),
            h.point.lon(),
            h.payload.unwrap_or_default()
        );
    }
    Ok(())
}
