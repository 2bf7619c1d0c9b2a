//! Ingest of ground-level photos listed in a metadata CSV.

use super::*;

/// One row of a ground-photo metadata CSV.
#[derive(Debug, Clone, PartialEq)]
struct GroundRow {
    /// Image file (relative paths are under the photo folder).
    path: PathBuf,
    /// Where it was taken.
    point: Point,
    /// When (unix seconds), if given.
    time: Option<i64>,
    /// Where it is listed: `FILE line N`.
    line: String,
}

/// Reads `path,lat,lon[,datetime]` rows (header required). Bad rows are returned as
/// `(row description, why)`; the good ones go on.
fn read_ground_csv(
    csv_path: &Path,
    photo_dir: &Path,
) -> Result<(Vec<GroundRow>, Vec<Failure>), JobError> {
    let table = crate::io::text::CsvTable::open(csv_path).map_err(JobError::input)?;
    let (Some(cp), Some(clat), Some(clon)) = (
        table.column("path"),
        table.column("lat"),
        table.column("lon"),
    ) else {
        return Err(JobError::input(format!(
            "{}: header must name columns path,lat,lon[,datetime]",
            csv_path.display()
        )));
    };
    let cdt = table.column("datetime");
    let mut rows = Vec::new();
    let bad = table
        .rows(|line, rec| {
            let get = |c: usize| rec.get(c).unwrap_or("");
            let p = get(cp);
            if p.is_empty() {
                return Err("empty path".into());
            }
            let lat: f64 = get(clat)
                .parse()
                .map_err(|_| format!("bad lat '{}'", get(clat)))?;
            let lon: f64 = get(clon)
                .parse()
                .map_err(|_| format!("bad lon '{}'", get(clon)))?;
            let point = Point::new(lat, lon).map_err(|e| e.to_string())?;
            let time = match cdt.map(get).filter(|s| !s.is_empty()) {
                Some(s) => Some(crate::time::parse(s).map_err(|e| e.to_string())?),
                None => None,
            };
            rows.push(GroundRow {
                path: photo_dir.join(p),
                point,
                time,
                line: line.to_string(),
            });
            Ok(())
        })
        .map_err(JobError::input)?;
    Ok((rows, bad))
}

/// Ingests ground-level photos listed in `meta_csv` (paths relative to `dir`) with CLIP. A
/// photo's key is its path under `dir`: photos already present are skipped (or replaced).
pub fn ingest_ground(
    db: &mut Db,
    enc: &dyn Embedder,
    dir: &Path,
    meta_csv: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    if !dir.is_dir() {
        return Err(JobError::input(format!(
            "photo folder {} does not exist",
            dir.display()
        )));
    }
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (listed, bad) = read_ground_csv(meta_csv, dir)?;
    let mut report = IngestReport::default();
    for (what, why) in bad {
        opts.bad(&mut report, what, why)?;
    }
    let mut rows = Vec::with_capacity(listed.len());
    for g in listed {
        match crate::io::input::outside(dir, &g.path) {
            Some(why) if !opts.allow_outside => opts.bad(
                &mut report,
                g.line.clone(),
                format!("{why} (--allow-outside allows it)"),
            )?,
            _ => rows.push(g),
        }
    }
    if rows.is_empty() {
        return Err(JobError::input(format!(
            "no usable rows in {} ({} bad)",
            meta_csv.display(),
            report.failed.len()
        )));
    }
    let model = enc.fingerprint(EncoderKind::ClipImage);
    let derive = |p: &str| Some(photo_key(dir, Path::new(p)));
    let target = prepare(db, opts, &model, &|p| payload_key(p, "path", &derive))?;
    let files = rows
        .into_iter()
        .map(|g| {
            let key = photo_key(dir, &g.path);
            let payload =
                serde_json::json!({"path": g.path.display().to_string(), "key": key}).to_string();
            FileRow {
                id: None,
                failed: format!("{} ({})", g.line, g.path.display()),
                key,
                name: g.line,
                path: g.path,
                point: g.point,
                time: g.time,
                payload,
            }
        })
        .collect();
    ingest_files(
        db,
        enc,
        opts,
        &model,
        target,
        files,
        false,
        &mut report,
        progress,
    )?;
    Ok(report)
}

/// The stable key of a photo: its path under the photo folder, `/`-separated (the path as
/// written in the CSV, normalised), or the whole path when it lies outside the folder.
fn photo_key(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<_> = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if rel.is_absolute() {
        rel.display().to_string()
    } else {
        parts.join("/")
    }
}
