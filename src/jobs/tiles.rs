//! Overhead tile files: where a tile is, from its name, and the JSON payload stored with it.
//!
//! Two layouts are understood:
//! - reference naming `{lat}_{lon}.(jpg|jpeg|png)` (e.g. `46.5197_6.6323.jpg`), any depth: the
//!   name gives the centre; the footprint is a square of `tile_deg` degrees (given, or inferred
//!   as the smallest spacing between the tile centres of the folder);
//! - an XYZ pyramid `z/x/y.(jpg|jpeg|png)` (web-mercator slippy-map indices): the footprint is
//!   the tile's exact bounds and the centre their midpoint.

use std::path::{Path, PathBuf};

use crate::geo::Point;
use crate::map::Footprint;

use super::JobError;

/// A tile file with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct TileFile {
    /// The file.
    pub path: PathBuf,
    /// Centre.
    pub center: Point,
    /// Footprint (for `{lat}_{lon}` names: filled by [`scan_tiles`]).
    pub footprint: Footprint,
}

/// The JSON payload of an overhead tile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TilePayload {
    /// The image file the embedding came from.
    pub path: String,
    /// `[west, south, east, north]` in degrees.
    pub footprint: [f64; 4],
    /// The tile's stable key (its path under the ingested folder, without extension: `{lat}_{lon}`
    /// or `z/x/y`); re-ingesting a tile with the same key skips or replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The capture time on the local wall clock (`YYYY-MM-DDTHH:MM:SS`, no offset), when the
    /// tile was ingested with one: the date and hour maps give the dynamic encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_time: Option<String>,
    /// For a chip of a scene (`path` is then the scene): its pixel window `[col, row, w, h]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<[u32; 4]>,
    /// For a chip: the scene's bands (1-based) that made its red, green and blue (or grey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<u16>>,
    /// For a chip: each band's sample values mapped to 0 and 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stretch: Option<Vec<[f32; 2]>>,
}

impl TilePayload {
    /// The image of this tile: its file's bytes, or for a chip its pixels cut from the scene
    /// again, as PNG bytes.
    pub(crate) fn image_bytes(&self) -> Result<Vec<u8>, String> {
        let path = std::path::Path::new(&self.path);
        match (&self.window, &self.bands, &self.stretch) {
            (Some(w), Some(b), Some(s)) => {
                let img = super::ingest::chip_image(path, *w, b, s)?;
                super::model::png_bytes(&img).map_err(|e| e.to_string())
            }
            (Some(_), _, _) => Err("a chip stored without its bands and stretch".into()),
            _ => crate::io::input::read_whole(path, crate::io::input::MAX_WHOLE_FILE)
                .map_err(|e| format!("{}: {e}", path.display())),
        }
    }
}

impl TilePayload {
    /// Parses a stored payload (`None` if it is not a tile payload).
    pub fn parse(payload: Option<&str>) -> Option<TilePayload> {
        serde_json::from_str(payload?).ok()
    }
    /// The footprint.
    pub fn footprint(&self) -> Footprint {
        let [west, south, east, north] = self.footprint;
        Footprint {
            west,
            south,
            east,
            north,
        }
    }
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// The stable key of tile file `path` under folder `dir`: its relative path without extension,
/// with `/` separators (`46.52_6.63`, `15/17000/11500`, `2019/46.52_6.63`).
pub fn tile_key(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses a `{lat}_{lon}` file stem.
pub fn parse_lat_lon_name(stem: &str) -> Option<Point> {
    let (a, b) = stem.split_once('_')?;
    Point::new(a.parse().ok()?, b.parse().ok()?).ok()
}

/// Bounds of web-mercator tile `z/x/y`.
pub fn xyz_footprint(z: u32, x: u64, y: u64) -> Option<Footprint> {
    if z > 30 || x >= 1u64 << z || y >= 1u64 << z {
        return None;
    }
    let n = (1u64 << z) as f64;
    let lon = |x: f64| x / n * 360.0 - 180.0;
    let lat = |y: f64| {
        (std::f64::consts::PI * (1.0 - 2.0 * y / n))
            .sinh()
            .atan()
            .to_degrees()
    };
    Some(Footprint {
        west: lon(x as f64),
        east: lon(x as f64 + 1.0),
        north: lat(y as f64),
        south: lat(y as f64 + 1.0),
    })
}

fn xyz_of(root: &Path, path: &Path) -> Option<Footprint> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    if parts.len() < 3 {
        return None;
    }
    let n = parts.len();
    let z: u32 = parts[n - 3].parse().ok()?;
    let x: u64 = parts[n - 2].parse().ok()?;
    let y: u64 = Path::new(parts[n - 1])
        .file_stem()?
        .to_str()?
        .parse()
        .ok()?;
    xyz_footprint(z, x, y)
}

/// The smallest tile side accepted: 1e-6 degree (about 0.1 m).
pub const MIN_TILE_DEG: f64 = 1e-6;

/// A file a scan skipped, and why.
pub type Skipped = (PathBuf, &'static str);

/// Why an image is not a tile: its name places it nowhere.
const NO_PLACE: &str = "name gives no place ({lat}_{lon} or z/x/y)";

/// Deepest folder nesting a tile walk enters (an XYZ pyramid needs 3, a year above it 4).
const MAX_DEPTH: usize = 32;

/// What a walk has seen: folders (canonical, so a symlink loop or a second link to a folder
/// is entered once, and one outside the root never) and files (canonical, so a tile linked
/// twice is read once).
#[derive(Default)]
struct Seen {
    /// The walk's root (canonical): folders outside it (a symlink out) are not entered.
    root: Option<PathBuf>,
    dirs: std::collections::HashSet<PathBuf>,
    files: std::collections::HashSet<PathBuf>,
}

/// The image files under `dir`, sorted: regular files only (a FIFO or a device would block
/// the reader; they are listed in `skipped`), each file and folder once.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    skipped: &mut Vec<Skipped>,
    seen: &mut Seen,
    depth: usize,
) -> Result<(), JobError> {
    let io =
        |p: &Path, e: std::io::Error| JobError::runtime(format!("reading {}: {e}", p.display()));
    let real = std::fs::canonicalize(dir).map_err(|e| io(dir, e))?;
    let root = seen.root.get_or_insert_with(|| real.clone()).clone();
    if !real.starts_with(&root) {
        skipped.push((
            dir.to_path_buf(),
            "a folder outside the tile folder: not entered",
        ));
        return Ok(());
    }
    if !seen.dirs.insert(real) {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(JobError::input(format!(
            "{}: folders nested deeper than {MAX_DEPTH} levels",
            dir.display()
        )));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| io(dir, e))?;
    entries.sort();
    for p in entries {
        // Follows symlinks; a dangling one is skipped like any unreadable entry.
        let Ok(meta) = std::fs::metadata(&p) else {
            if is_image(&p) {
                skipped.push((p, "unreadable (a dangling symlink?)"));
            }
            continue;
        };
        if meta.is_dir() {
            walk(&p, out, skipped, seen, depth + 1)?;
        } else if is_image(&p) {
            if !meta.is_file() {
                skipped.push((p, "not a regular file"));
            } else if seen
                .files
                .insert(std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone()))
            {
                out.push(p);
            } else {
                skipped.push((p, "the same file as a tile listed before (a link)"));
            }
        }
    }
    Ok(())
}

/// The image files under `dir` (sorted) that are named as tiles, and the image files that are
/// not, or are not regular files (reported, skipped). Symlinks are followed, each folder and
/// file is visited once. `tile_deg`: footprint size for `{lat}_{lon}` names (inferred if
/// `None`).
pub fn scan_tiles(
    dir: &Path,
    tile_deg: Option<f64>,
) -> Result<(Vec<TileFile>, Vec<Skipped>), JobError> {
    if !dir.is_dir() {
        return Err(JobError::input(format!(
            "tile folder {} does not exist",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    walk(dir, &mut files, &mut skipped, &mut Seen::default(), 0)?;
    let mut named = Vec::new();
    let mut pending = Vec::new();
    for p in files {
        if let Some(fp) = xyz_of(dir, &p) {
            let c = Point::new((fp.north + fp.south) / 2.0, (fp.west + fp.east) / 2.0);
            match c {
                Ok(center) => named.push(TileFile {
                    path: p,
                    center,
                    footprint: fp,
                }),
                Err(_) => skipped.push((p, NO_PLACE)),
            }
        } else if let Some(c) = p
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(parse_lat_lon_name)
        {
            pending.push((p, c));
        } else {
            skipped.push((p, NO_PLACE));
        }
    }
    let deg = match tile_deg {
        Some(d) if d.is_finite() && (MIN_TILE_DEG..=10.0).contains(&d) => d,
        Some(d) => {
            return Err(JobError::input(format!(
                "tile side {d} degrees outside [{MIN_TILE_DEG}, 10]"
            )))
        }
        None => infer_spacing(&pending.iter().map(|(_, c)| *c).collect::<Vec<_>>()),
    };
    for (p, c) in pending {
        named.push(TileFile {
            path: p,
            center: c,
            footprint: Footprint::around(c, deg / 2.0, deg / 2.0),
        });
    }
    Ok((named, skipped))
}

/// The smallest positive spacing between distinct latitudes or longitudes of the centres,
/// longitudes measured on the circle (179.99 and -179.99 are 0.02 degree apart); 0.01
/// degree when there is a single tile.
pub fn infer_spacing(centers: &[Point]) -> f64 {
    let mut best = f64::INFINITY;
    for key in [0, 1] {
        let mut v: Vec<f64> = centers
            .iter()
            .map(|p| if key == 0 { p.lat() } else { p.lon() })
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup_by(|a, b| (*a - *b).abs() <= 1e-9);
        let mut gaps: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).collect();
        if key == 1 && v.len() > 1 {
            // Across the antimeridian: from the easternmost round to the westernmost.
            gaps.push(v[0] + 360.0 - v[v.len() - 1]);
        }
        for d in gaps {
            if d > 1e-9 {
                best = best.min(d);
            }
        }
    }
    if best.is_finite() {
        best
    } else {
        0.01
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_xyz_bounds() {
        let p = parse_lat_lon_name("46.5197_6.6323").unwrap();
        assert!((p.lat() - 46.5197).abs() < 1e-9 && (p.lon() - 6.6323).abs() < 1e-9);
        assert!(parse_lat_lon_name("-33.9_-70.6").is_some());
        assert!(parse_lat_lon_name("95_6").is_none());
        assert!(parse_lat_lon_name("tile").is_none());
        let f = xyz_footprint(0, 0, 0).unwrap();
        assert_eq!((f.west, f.east), (-180.0, 180.0));
        assert!((f.north - 85.051_128_78).abs() < 1e-6 && (f.south + 85.051_128_78).abs() < 1e-6);
        let f = xyz_footprint(1, 1, 0).unwrap();
        assert_eq!((f.west, f.east, f.south), (0.0, 180.0, 0.0));
        assert!(xyz_footprint(1, 2, 0).is_none());
        assert!(xyz_footprint(31, 0, 0).is_none());
    }

    #[test]
    fn scans_both_layouts_and_infers_spacing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("12/2143/1450")).unwrap();
        std::fs::write(d.path().join("12/2143/1450.png"), b"x").unwrap();
        std::fs::write(d.path().join("46.50_6.60.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("46.52_6.60.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("notes.png"), b"x").unwrap();
        std::fs::write(d.path().join("readme.txt"), b"x").unwrap();
        let (tiles, skipped) = scan_tiles(d.path(), None).unwrap();
        assert_eq!(tiles.len(), 3);
        assert_eq!(
            skipped.len(),
            1,
            "notes.png has no place; .txt is not an image"
        );
        let named = tiles
            .iter()
            .find(|t| t.path.ends_with("46.50_6.60.jpg"))
            .unwrap();
        assert!((named.footprint.north - named.footprint.south - 0.02).abs() < 1e-9);
        let xyz = tiles.iter().find(|t| t.path.ends_with("1450.png")).unwrap();
        let f = xyz_footprint(12, 2143, 1450).unwrap();
        assert_eq!(xyz.footprint, f);
        assert!(f.west < xyz.center.lon() && xyz.center.lon() < f.east);
        assert!(scan_tiles(&d.path().join("missing"), None).is_err());
        assert!(scan_tiles(d.path(), Some(-1.0)).is_err());
    }
}
