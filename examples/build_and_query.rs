//! Build a small database and query it with filters (storage + search only; no encoders).
//!
//! `cargo run --example build_and_query`
//!
//! 2,000 seeded random 64-d vectors at random places around Lake Geneva (one commit: one
//! segment, with an HNSW graph and the int8 copy); then the top 5 most similar to item 0
//! inside a box, and within 5 km of Lausanne.

use rand::{Rng, SeedableRng};
use sat2cap::{BBox, Db, Filter, NewItem, OpenOptions, Point, Radius, SearchResults};

fn print(res: &SearchResults) {
    for h in &res.hits {
        println!(
            "  id {:>4}  cos {:+.3}  {:.4},{:.4}",
            h.id,
            h.score,
            h.point.lat(),
            h.point.lon()
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("example.db");
    let mut db = Db::open(&path, OpenOptions::create_new())?;
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

    let snap = Db::open(&path, OpenOptions::read_only())?.snapshot();
    let tiles = snap.collection("tiles")?;
    println!("{} items of dimension {}", tiles.len(), tiles.dim());
    let in_box = Filter::new().bbox(BBox::new(6.5, 46.4, 6.8, 46.6)?);
    println!("top 5 like item 0 inside 6.5,46.4,6.8,46.6:");
    print(&tiles.search(&first).k(5).filter(in_box).run()?);
    let near = Filter::new().radius(Radius::new(46.5197, 6.6323, 5.0)?);
    println!("top 5 like item 0 within 5 km of Lausanne:");
    let res = tiles.search(&first).k(5).filter(near).run()?;
    print(&res);
    println!("plan: {:?}", res.explain.first().map(|p| &p.plan));
    Ok(())
}
