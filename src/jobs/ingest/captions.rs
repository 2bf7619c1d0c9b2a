//! Ingest of a caption bank: one caption a line.

use super::*;

/// The longest caption, in bytes (CLIP reads the first 77 tokens of it).
const MAX_CAPTION_BYTES: usize = 4096;

/// The captions of a caption-bank file: one per non-empty line, `#` lines are comments (a
/// byte-order mark at the start is dropped). A line that is not UTF-8 or longer than
/// 4096 bytes is an error naming it.
pub fn read_captions(path: &Path) -> Result<Vec<String>, JobError> {
    let input = crate::io::text::open(path)
        .map_err(|e| JobError::input(format!("cannot read {}: {e}", path.display())))?;
    let mut v = Vec::new();
    for (no, line) in crate::io::text::lines(input) {
        let line = line.map_err(|e| JobError::input(format!("{}:{no}: {e}", path.display())))?;
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.len() > MAX_CAPTION_BYTES {
            return Err(JobError::input(format!(
                "{}:{no}: caption of {} bytes, the limit is {MAX_CAPTION_BYTES}",
                path.display(),
                l.len()
            )));
        }
        v.push(l.to_string());
    }
    if v.is_empty() {
        return Err(JobError::input(format!(
            "no captions in {}",
            path.display()
        )));
    }
    Ok(v)
}

/// Ingests captions (CLIP text embeddings) at the dummy point (0, 0), no time, payload
/// `{"caption": text}`. A caption's key is its text: captions already present are skipped
/// (or replaced).
pub fn ingest_captions(
    db: &mut Db,
    enc: &dyn Embedder,
    captions: &[String],
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    let mut report = IngestReport::default();
    let coll = &opts.collection;
    let model = enc.fingerprint(EncoderKind::ClipText);
    let mut target = prepare(db, opts, &model, &|p| {
        payload_key(p, "caption", &|c| Some(c.to_string()))
    })?;
    let origin = Point::new(0.0, 0.0).map_err(JobError::runtime)?;
    let mut todo = Vec::new();
    for c in captions {
        if let Some(slot) = target.slot(c, &format!("caption \"{c}\""), opts.replace, &mut report) {
            todo.push((c, slot));
        }
    }
    progress.begin("encode captions", Some(todo.len() as u64), Unit::Items);
    for chunk in todo.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(|(c, _)| c.as_str()).collect();
        let vs = enc.embed_text(&refs).map_err(JobError::runtime)?;
        for ((c, slot), v) in chunk.iter().zip(vs) {
            let payload = serde_json::json!({ "caption": c }).to_string();
            let item = NewItem {
                id: 0,
                vector: &v,
                point: origin,
                time: None,
                payload: Some(&payload),
            };
            target.add(db, coll, *slot, item, &mut report)?;
        }
        progress.advance(chunk.len() as u64);
    }
    progress.end();
    commit(db, &target, &mut report, &model)?;
    Ok(report)
}
