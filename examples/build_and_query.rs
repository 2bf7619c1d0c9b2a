//! Build a small database and query it with filters (storage + search only; no encoders).
//!
//! `cargo run --example build_and_query`
//!
//! 2,000 seeded random 64-d vectors at random places around Lake Geneva; then the top 5 most
//! similar to item 0 inside a box, and within 5 km of Lausanne.

use rand::{Rng, SeedableRng};
use sat2cap::geo::Point;
use sat2cap::jobs::topk::top_k;
use sat2cap::query::filter::{BBox, Filter, Radius};
use sat2cap::{Db, DbOptions, NewItem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("example.db");
    let mut db = Db::create(&path, DbOptions::default())?;
    db.create_collection("tiles", 64)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut first = Vec::new();
    for id in 0..2000u64 {
        let v: Vec<f32> = (0..64).map(|_| rng.random_range(-1.0..1.0)).collect();
        let p = Point::new(rng.random_range(46.2..46.6), rng.random_range(6.1..6.9))?;
        let payload = format!("{{\"path\": \"tiles/{id}.jpg\"}}");
        db.add(
            "tiles",
            NewItem {
                id,
                vector: &v,
                point: p,
                time: None,
                payload: Some(&payload),
            },
        )?;
        if id == 0 {
            first = v;
        }
    }
    db.commit()?;
    drop(db);

    let snap = Db::open_snapshot(&path)?;
    let tiles = snap.collection("tiles")?;
    println!("{} items of dimension {}", tiles.len(), tiles.dim());
    let in_box = Filter::new().bbox(BBox::new(6.5, 46.4, 6.8, 46.6)?);
    println!("top 5 like item 0 inside 6.5,46.4,6.8,46.6:");
    for m in top_k(tiles, &first, 5, &in_box)? {
        println!(
            "  id {:>4}  cos {:+.3}  {:.4},{:.4}",
            m.id, m.score, m.lat, m.lon
        );
    }
    let near = Filter::new().radius(Radius::new(46.5197, 6.6323, 5.0)?);
    println!("top 5 like item 0 within 5 km of Lausanne:");
    for m in top_k(tiles, &first, 5, &near)? {
        println!(
            "  id {:>4}  cos {:+.3}  {:.4},{:.4}",
            m.id, m.score, m.lat, m.lon
        );
    }
    Ok(())
}
