//! The catalog: one JSON file naming the shards of a sharded collection, each an ordinary
//! sat2cap database folder holding the rows of one region.
//!
//! ```json
//! { "format": "sat2cap-catalog", "version": 1, "collection": "tiles", "dim": 512,
//!   "scheme": { "by": "quadkey", "level": 4 }, "rows": 144563,
//!   "properties": { "model": "sat2cap-vit-b32" },
//!   "shards": [ { "name": "q1202", "path": "shards/q1202.db", "region": [0.0, 40.97, 22.5, 55.77],
//!                 "extent": [5.9, 45.8, 10.5, 47.8], "rows": 9120 } ] }
//! ```
//!
//! `region` is where the shard's rows may lie (the tile), `extent` the box of the rows it
//! holds (west, south, east, north in degrees; `null` for an empty shard); the planner skips
//! a shard whose extent a filter misses. Paths are relative to the catalog's folder and may
//! not leave it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use sat2cap::{BBox, Db, OpenOptions};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The value of the catalog's `format` field.
pub const FORMAT: &str = "sat2cap-catalog";
/// The catalog version this build reads and writes.
pub const VERSION: u32 = 1;
/// The catalog's file name inside its folder.
pub const FILE_NAME: &str = "catalog.json";

/// How rows were split into shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "lowercase", deny_unknown_fields)]
pub enum Scheme {
    /// One shard per Web Mercator tile of `level` holding rows.
    Quadkey {
        /// The tile level.
        level: u8,
    },
}

/// One shard: a database folder and what the catalog knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// A name unique in the catalog (the quadkey with a `q` in front).
    pub name: String,
    /// The database folder, relative to the catalog's folder.
    pub path: String,
    /// Where the shard's rows may lie: `[west, south, east, north]`.
    pub region: [f64; 4],
    /// The box of the rows the shard holds (`None`: no rows).
    pub extent: Option<[f64; 4]>,
    /// The earliest and latest time of the rows that have one (`None`: none has one, or the
    /// catalog does not say; then time conditions do not prune the shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<[i64; 2]>,
    /// Live rows in the shard's collection.
    pub rows: u64,
}

/// The box and the span of times of a shard's rows, gathered a row at a time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RowSpan {
    extent: Option<[f64; 4]>,
    times: Option<[i64; 2]>,
}

impl RowSpan {
    /// Takes in a row at `point`, with `time`.
    pub(crate) fn add(&mut self, point: sat2cap::Point, time: Option<i64>) {
        let (lat, lon) = (point.lat(), point.lon());
        self.extent = Some(self.extent.map_or([lon, lat, lon, lat], |e| {
            [e[0].min(lon), e[1].min(lat), e[2].max(lon), e[3].max(lat)]
        }));
        if let Some(t) = time {
            self.times = Some(self.times.map_or([t, t], |[a, b]| [a.min(t), b.max(t)]));
        }
    }

    /// The box of the rows (`None`: no row) and the first and last time among them
    /// (`None`: none has one).
    pub(crate) fn get(&self) -> (Option<[f64; 4]>, Option<[i64; 2]>) {
        (self.extent, self.times)
    }
}

/// A catalog file, read and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The collection every shard holds.
    pub collection: String,
    /// Its vector dimension.
    pub dim: usize,
    /// How the rows were split.
    pub scheme: Scheme,
    /// Rows over all shards.
    pub rows: u64,
    /// The collection's properties (which model made the vectors), the same in every shard.
    pub properties: BTreeMap<String, String>,
    /// The shards, in quadkey order.
    pub shards: Vec<Shard>,
    /// The folder the catalog file is in, absolute (not stored).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The catalog file, absolute (not stored).
    #[serde(skip)]
    pub file: PathBuf,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Catalog {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// The box of `[west, south, east, north]`; a box of zero width or height (the extent of
/// one row, or of rows on one meridian or parallel) is widened by one ulp so that it holds
/// its points rather than being empty.
fn boxed(b: &[f64; 4]) -> Option<BBox> {
    let [mut w, mut s, mut e, mut n] = *b;
    if w == e {
        if e < 180.0 {
            e = e.next_up();
        } else {
            w = w.next_down();
        }
    }
    if s == n {
        if n < 90.0 {
            n = n.next_up();
        } else {
            s = s.next_down();
        }
    }
    BBox::new(w, s, e, n).ok()
}

impl Catalog {
    /// Reads the catalog at `path`: a catalog file, or a folder holding `catalog.json`.
    /// Every field is checked (format, version, boxes, unique names, paths that stay inside
    /// the folder, row counts adding up); the shards are opened only when searched.
    pub fn open(path: impl AsRef<Path>) -> Result<Catalog, Error> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        let io = |source| Error::Io {
            path: file.clone(),
            source,
        };
        // A FIFO or a device would block or never end: only a regular file is read. A path
        // that does not exist or cannot be looked at is bad input, like a malformed file.
        let meta = std::fs::metadata(&file).map_err(|e| bad(&file, e))?;
        if !meta.is_file() {
            return Err(bad(&file, "not a regular file"));
        }
        let text = std::fs::read_to_string(&file).map_err(io)?;
        let mut cat: Catalog = serde_json::from_str(&text).map_err(|e| {
            bad(
                &file,
                format_args!("line {}, column {}: {e}", e.line(), e.column()),
            )
        })?;
        // Absolute, so that a plan carrying shard paths means the same files in a scheduler
        // or executor started in another folder.
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        cat.dir = std::path::absolute(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        cat.file = cat.dir.join(file.file_name().unwrap_or(FILE_NAME.as_ref()));
        cat.check().map_err(|m| bad(&file, m))?;
        Ok(cat)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "field `format` is {:?}, not {FORMAT:?}",
                self.format
            ));
        }
        if self.version != VERSION {
            return Err(format!(
                "catalog version {} (this build reads version {VERSION})",
                self.version
            ));
        }
        if !(1..=4096).contains(&self.dim) {
            return Err(format!("field `dim` is {}, not in 1..=4096", self.dim));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut paths = std::collections::BTreeSet::new();
        let mut total = 0u64;
        for (i, s) in self.shards.iter().enumerate() {
            let at = format!("shards[{i}] ({:?})", s.name);
            if s.name.is_empty() || !names.insert(s.name.as_str()) {
                return Err(format!("{at}: empty or repeated `name`"));
            }
            relative_path(&s.path).map_err(|m| format!("{at}: `path` {:?} {m}", s.path))?;
            // Two entries naming one folder would search it twice.
            let folder: PathBuf = Path::new(&s.path).components().collect();
            if !paths.insert(folder) {
                return Err(format!(
                    "{at}: `path` {:?} names a folder already listed",
                    s.path
                ));
            }
            // Pruning reads the extent: a shard must have rows and say where they are.
            if s.rows == 0 {
                return Err(format!("{at}: `rows` is 0 (a shard holds rows)"));
            }
            if s.extent.is_none() {
                return Err(format!("{at}: no `extent` (the box of its rows)"));
            }
            if boxed(&s.region).is_none() {
                return Err(format!(
                    "{at}: `region` {:?} is not a lon/lat box",
                    s.region
                ));
            }
            if let Some(e) = &s.extent {
                if boxed(e).is_none() {
                    return Err(format!("{at}: `extent` {e:?} is not a lon/lat box"));
                }
            }
            if let Some([t0, t1]) = s.times {
                if t0 > t1 || t0 == i64::MIN {
                    return Err(format!(
                        "{at}: `times` [{t0}, {t1}] is not a span of times (first <= last, \
                         both above {})",
                        i64::MIN
                    ));
                }
            }
            total = total
                .checked_add(s.rows)
                .ok_or_else(|| format!("{at}: `rows` overflow"))?;
        }
        if total != self.rows {
            return Err(format!(
                "field `rows` is {} but the shards hold {total}",
                self.rows
            ));
        }
        Ok(())
    }

    /// The folder of shard `i`'s database.
    pub fn shard_path(&self, i: usize) -> PathBuf {
        self.dir.join(&self.shards[i].path)
    }

    /// Opens shard `i` read-only and checks it holds what the catalog says: the collection,
    /// its dimension and the row count.
    pub fn open_shard(&self, i: usize) -> Result<Db, Error> {
        let path = self.shard_path(i);
        let shard = &self.shards[i];
        let db = Db::open(&path, OpenOptions::read_only()).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        {
            let snap = db.snapshot();
            let coll = snap
                .collection(&self.collection)
                .map_err(|e| bad(&path, format_args!("shard {:?}: {e}", shard.name)))?;
            if coll.dim() != self.dim || coll.len() as u64 != shard.rows {
                return Err(bad(
                    &path,
                    format_args!(
                        "shard {:?} holds {} rows of dimension {}; the catalog says {} of {}",
                        shard.name,
                        coll.len(),
                        coll.dim(),
                        shard.rows,
                        self.dim
                    ),
                ));
            }
        }
        Ok(db)
    }

    /// The vector of the item with id `id`, from the first shard holding it (shards opened
    /// through the search's cache of open databases).
    pub fn vector_of(&self, id: u64) -> Result<Option<Vec<f32>>, Error> {
        for i in 0..self.shards.len() {
            let path = self.shard_path(i);
            let db = crate::exec::open_shard(&path)?;
            let snap = db.snapshot();
            let shard_err = |e: &dyn std::fmt::Display| Error::Shard {
                path: path.clone(),
                msg: e.to_string(),
            };
            let coll = snap
                .collection(&self.collection)
                .map_err(|e| shard_err(&e))?;
            if let Some(item) = coll.get(id).map_err(|e| shard_err(&e))? {
                return Ok(Some(item.vector.iter().map(|v| v.to_f32()).collect()));
            }
        }
        Ok(None)
    }

    /// The shards a filter may find rows in: those with rows whose extent it does not rule
    /// out ([`sat2cap::Filter::may_pass_within`]) and whose span of times, when the catalog
    /// gives one, it does not rule out either ([`sat2cap::Filter::may_pass_during`]).
    pub fn prune(&self, filter: &sat2cap::Filter) -> Vec<usize> {
        self.shards
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                // Checked when read: every shard has a valid extent. One without would be
                // searched, never skipped.
                s.extent
                    .as_ref()
                    .and_then(boxed)
                    .is_none_or(|e| filter.may_pass_within(&e))
                    && s.times.is_none_or(|[a, b]| filter.may_pass_during(a, b))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Writes the catalog to `dir/catalog.json` (through a temporary file and a rename).
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let file = dir.join(FILE_NAME);
        let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
        let mut text = serde_json::to_string_pretty(self).map_err(|e| bad(&file, e))?;
        text.push('\n');
        let io = |source| Error::Io {
            path: file.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &file).map_err(io)
    }
}

/// Checks a shard path: relative, normal components only (no `..`, no root, no prefix), not
/// an object-store URL yet.
fn relative_path(p: &str) -> Result<(), &'static str> {
    if p.contains("://") {
        return Err("is a URL; shards on object storage are not supported yet");
    }
    let path = Path::new(p);
    if p.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("must be a relative path inside the catalog's folder");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::boxed;
    use sat2cap::{Filter, Point, Radius};

    /// The extent of one row (or of rows on one meridian or parallel) is a box that holds
    /// them, on the antimeridian and the poles too: pruning never drops such a shard.
    #[test]
    fn a_degenerate_extent_holds_its_points() {
        for (lat, lon) in [(10.0, 20.0), (90.0, 180.0), (-90.0, -180.0), (0.0, 180.0)] {
            let b = boxed(&[lon, lat, lon, lat]).expect("a box");
            let p = Point::new(lat, lon).unwrap();
            assert!(b.contains(p), "{lat},{lon}");
            let near = Filter::new().radius(Radius::new(lat, lon, 1.0).unwrap());
            assert!(near.may_pass_within(&b), "{lat},{lon}");
        }
        let line = boxed(&[5.0, -3.0, 5.0, 4.0]).expect("a meridian segment");
        assert!(line.contains(Point::new(0.0, 5.0).unwrap()));
    }
}
