//! A zero-shot map of two prompts over a synthetic region, with the built-in encoders.
//!
//! `cargo run --example make_map [-- OUT_PREFIX]` (default `target/example-map`): writes
//! OUT_PREFIX.png / .geojson / .csv / .pgw. Uses seeded RANDOM encoders (no weights needed;
//! set SAT2CAP_WEIGHTS for real ones): with random weights the map shows the pipeline, not
//! meaning. `SAT2CAP_TINY_MODEL=1` makes it instant (tiny test shapes).

use sat2cap::encoders::Image;
use sat2cap::jobs::{
    render_overhead, write_map, Embedder, Footprint, MapCell, MapPanel, Model, ModelOptions,
    Region, LAUSANNE,
};
use sat2cap::Point;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/example-map".into());
    let model = Model::load(&ModelOptions {
        weights: std::env::var_os("SAT2CAP_WEIGHTS").map(Into::into),
        random: true,
        tiny: std::env::var_os("SAT2CAP_TINY_MODEL").is_some_and(|v| v == "1"),
        ..ModelOptions::default()
    })?;
    println!("encoders: {}", model.describe());
    let enc = model.encoders();
    let region = Region::new(
        "Lausanne",
        Point::new(LAUSANNE.0, LAUSANNE.1)?,
        4,
        4,
        0.01,
        3,
    );
    let images: Vec<Image> = region
        .tiles
        .iter()
        .map(|t| {
            let img = render_overhead(t.class, t.row as u64 * 31 + t.col as u64, 224);
            Image::from_rgb8(224, 224, img.into_raw())
        })
        .collect::<Result<_, _>>()?;
    let tiles = enc.encode_overhead(&images, None)?;
    let prompts = ["a lake with boats", "a town with busy streets"];
    let texts = enc.encode_text(&prompts)?;
    let mut panels = Vec::new();
    for (p, q) in prompts.iter().zip(&texts) {
        let cells: Vec<MapCell> = region
            .tiles
            .iter()
            .zip(&tiles)
            .enumerate()
            .map(|(i, (t, v))| MapCell {
                id: i as u64,
                center: t.center,
                footprint: Footprint::around(t.center, 0.005, 0.005),
                score: v.iter().zip(q).map(|(a, b)| a * b).sum(),
            })
            .collect();
        panels.push(MapPanel::new(*p, cells));
    }
    let files = write_map(
        std::path::Path::new(&prefix),
        "make_map example",
        &panels,
        None,
    )?;
    println!(
        "wrote {} ({} x {} px), {}, {}, {}",
        files.png.display(),
        files.width,
        files.height,
        files.geojson.display(),
        files.csv.display(),
        files.pgw.display()
    );
    Ok(())
}
