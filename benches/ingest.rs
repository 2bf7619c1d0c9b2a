//! Ingest throughput against the encoder's own: renders N overhead tiles (256 px JPEG, the
//! demo's synthetic land cover), then times, in one run,
//! - the overhead encoder alone on prepared pixel tensors (batches of 32): its images/s;
//! - `ingest-tiles` with the reading and preparing done in the model's thread (serial);
//! - `ingest-tiles` as it runs: a worker reads and prepares the next batches while the
//!   model encodes (pipelined);
//! and prints the ingests' tiles/s as a fraction of the encoder's.
//!
//! ```text
//! cargo run --release -p sat2cap-bench --features encoders --bin bench_ingest -- [--tiles 2000] [--dir DIR]
//! ```
//! Full-size ViT-B/32 with seeded random weights on the CPU (the throughput does not depend
//! on the weights).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sat2cap::encoders::{EncodeError, Meta};
use sat2cap::jobs::{
    ingest_tiles, render_overhead, Embedder, EncoderKind, IngestOptions, LandClass, Model,
    ModelFingerprint, ModelOptions, TileOptions,
};
use sat2cap::{Db, OpenOptions, Silent};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// The model with the default (serial) preparing: files are decoded in the model's thread.
struct Serial<'a>(&'a Model);

impl Embedder for Serial<'_> {
    fn fingerprint(&self, e: EncoderKind) -> ModelFingerprint {
        self.0.fingerprint(e)
    }
    fn embed_text(&self, t: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.0.embed_text(t)
    }
    fn embed_ground(&self, f: &[&[u8]]) -> Vec<Result<Vec<f32>, EncodeError>> {
        self.0.embed_ground(f)
    }
    fn embed_overhead(
        &self,
        f: &[&[u8]],
        m: Option<&[Meta]>,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        self.0.embed_overhead(f, m)
    }
    fn has_dynamic(&self) -> bool {
        self.0.has_dynamic()
    }
    fn is_random(&self) -> bool {
        self.0.is_random()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

fn render(dir: &Path, n: usize) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let side = (n as f64).sqrt().ceil() as usize;
    for i in 0..n {
        let (r, c) = (i / side, i % side);
        let name = dir.join(format!(
            "{:.4}_{:.4}.jpg",
            46.0 + 0.001 * r as f64,
            6.0 + 0.001 * c as f64
        ));
        if !name.exists() {
            render_overhead(LandClass::ALL[i % 4], i as u64, 256).save(&name)?;
        }
    }
    Ok(())
}

fn ingest(dir: &Path, enc: &dyn Embedder) -> Res<(usize, f64)> {
    let tmp = tempfile::tempdir()?;
    let mut db = Db::open(tmp.path().join("db"), OpenOptions::create_if_missing())?;
    let t = Instant::now();
    let r = ingest_tiles(
        &mut db,
        enc,
        dir,
        &TileOptions {
            common: IngestOptions {
                collection: "overhead".into(),
                ..IngestOptions::default()
            },
            time: None,
            wall: None,
            tile_deg: None,
            part: None,
        },
        &Silent,
    )?;
    Ok((r.added, t.elapsed().as_secs_f64()))
}

fn main() -> Res<()> {
    let n: usize = arg("--tiles").map_or(Ok(2000), |v| v.parse())?;
    let dir = arg("--dir").map_or_else(
        || PathBuf::from(format!("target/bench-ingest-{n}")),
        PathBuf::from,
    );
    render(&dir, n)?;
    let model = Model::load(&ModelOptions::random())?;
    // The encoder alone, on prepared tensors (preparing not timed).
    let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)?
        .take(256.min(n))
        .map(|e| std::fs::read(e?.path()).map_err(Into::into))
        .collect::<Res<_>>()?;
    let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let prepared = model
        .prepare(&refs, true)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    for chunk in prepared.chunks(32) {
        model.embed_prepared(chunk, true);
    }
    let encoder = prepared.len() as f64 / t.elapsed().as_secs_f64();
    let (added, serial) = ingest(&dir, &Serial(&model))?;
    let (_, piped) = ingest(&dir, &model)?;
    println!(
        "{n} tiles of 256 px (JPEG), ViT-B/32 (random weights), {}",
        model.describe()
    );
    println!("| path | tiles/s | of the encoder |");
    println!("|---|---:|---:|");
    println!("| encoder alone (prepared tensors, batches of 32) | {encoder:.1} | 1.00 |");
    for (what, secs) in [
        ("ingest-tiles, serial preparing", serial),
        ("ingest-tiles, pipelined", piped),
    ] {
        let r = added as f64 / secs;
        println!("| {what} | {r:.1} | {:.2} |", r / encoder);
    }
    Ok(())
}
