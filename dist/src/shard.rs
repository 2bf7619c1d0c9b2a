//! `shard`: splits one database's collection into a catalog of shard databases, one per
//! Web Mercator tile holding rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sat2cap::{Db, OpenOptions, Progress, Unit};

use crate::catalog::{Catalog, RowSpan, Scheme, Shard, FORMAT, VERSION};
use crate::quadkey::{Tile, MAX_LEVEL};
use crate::Error;

/// Rows a shard writer holds in memory before it spills them to a segment file.
const SPILL_ROWS: usize = 1 << 18;

/// What to shard.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// The collection to split (`None`: the source's only collection).
    pub collection: Option<String>,
    /// The quadkey level: up to `4^level` shards.
    pub level: u8,
}

/// Splits `src`'s collection into one database per quadkey tile of `opts.level` holding
/// rows, under the new folder `out`, and writes `out/catalog.json`. Every row keeps its id,
/// fp16 vector (bit for bit), location, time and payload; the collection's properties are
/// copied to every shard. All or nothing: the shards are written under a temporary folder
/// beside `out` that is renamed to `out` at the end, so a failure leaves no `out`; `out`
/// must not exist (re-sharding is sharding again into a new folder).
///
/// Memory: 16 bytes a row for the sort by tile, plus one shard's pending rows at a time
/// (spilled to disk every 262,144 rows).
pub fn shard(
    src: &Path,
    out: &Path,
    opts: &ShardOptions,
    progress: &dyn Progress,
) -> Result<Catalog, Error> {
    if opts.level > MAX_LEVEL {
        return Err(Error::Input(format!(
            "--level {} is deeper than {MAX_LEVEL}",
            opts.level
        )));
    }
    let tmp = new_folder(out)?;
    let db = Db::open(src, OpenOptions::read_only()).map_err(|source| Error::Open {
        path: src.to_path_buf(),
        source,
    })?;
    let snap = db.snapshot();
    let name = match &opts.collection {
        Some(n) => n.clone(),
        None => {
            let names: Vec<&str> = snap.collection_names().collect();
            match names[..] {
                [one] => one.to_string(),
                _ => {
                    return Err(Error::Input(format!(
                        "{} has {} collections ({}); name one with --collection",
                        src.display(),
                        names.len(),
                        names.join(", ")
                    )))
                }
            }
        }
    };
    let coll = snap
        .collection(&name)
        .map_err(|e| Error::Input(format!("{}: {e}", src.display())))?;

    progress.begin("reading locations", Some(coll.len() as u64), Unit::Rows);
    let mut order: Vec<(u64, u64)> = Vec::with_capacity(coll.len());
    for item in coll.iter() {
        let item = item.map_err(|e| read_err(src, &e))?;
        let tile = Tile::containing(item.point.lat(), item.point.lon(), opts.level);
        order.push((tile.z_order(), item.id));
        progress.advance(1);
    }
    progress.end();
    order.sort_unstable();

    let r = write_shards(src, &coll, &name, &order, opts.level, &tmp, progress);
    publish(r, &tmp, out)
}

/// The temporary folder a new catalog folder `out` is written in (beside it, removed if a
/// failed run left it); `out` must not exist.
pub(crate) fn new_folder(out: &Path) -> Result<PathBuf, Error> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::Input(format!(
            "{} already exists; write the catalog into a new folder",
            out.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| Error::Input(format!("{} names no folder", out.display())))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let tmp = std::path::absolute(&tmp).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    Ok(tmp)
}

/// Writes the catalog `cat` built in `tmp` and renames `tmp` to `out`; on any failure
/// (`cat` itself, or this) `tmp` is removed and no `out` is left.
pub(crate) fn publish(
    cat: Result<Catalog, Error>,
    tmp: &Path,
    out: &Path,
) -> Result<Catalog, Error> {
    let r = cat.and_then(|cat| {
        cat.write(tmp)?;
        std::fs::rename(tmp, out).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
        Catalog::open(out)
    });
    if r.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    r
}

/// A row of the source database that does not read: a damaged database (exit 1).
fn read_err(src: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Shard {
        path: src.to_path_buf(),
        msg: e.to_string(),
    }
}

fn write_shards(
    src: &Path,
    coll: &sat2cap::Collection<'_>,
    name: &str,
    order: &[(u64, u64)],
    level: u8,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Catalog, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir.join("shards")).map_err(io(dir))?;
    let props: BTreeMap<String, String> = coll.properties().clone();
    let mut shards = Vec::new();
    progress.begin("writing shards", Some(order.len() as u64), Unit::Rows);
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        let first = coll
            .get(group[0].1)
            .map_err(|e| read_err(src, &e))?
            .ok_or_else(|| read_err(src, &format_args!("row {} vanished", group[0].1)))?;
        let tile = Tile::containing(first.point.lat(), first.point.lon(), level);
        let shard_name = format!("q{}", tile.quadkey());
        let rel = format!("shards/{shard_name}.db");
        let path = dir.join(&rel);
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let mut db = Db::open(&path, OpenOptions::create_new()).map_err(open_err)?;
        let write_err = |e: &dyn std::fmt::Display| Error::Shard {
            path: path.clone(),
            msg: e.to_string(),
        };
        db.create_collection(name, coll.dim())
            .map_err(|e| write_err(&e))?;
        for (k, v) in &props {
            db.set_property(name, k, Some(v))
                .map_err(|e| write_err(&e))?;
        }
        let mut span = RowSpan::default();
        for &(_, id) in group {
            let item = coll
                .get(id)
                .map_err(|e| read_err(src, &e))?
                .ok_or_else(|| read_err(src, &format_args!("row {id} vanished")))?;
            span.add(item.point, item.time);
            db.add_f16(name, &item).map_err(|e| write_err(&e))?;
            if db.pending_len() >= SPILL_ROWS {
                db.spill().map_err(|e| write_err(&e))?;
            }
            progress.advance(1);
        }
        db.commit().map_err(|e| write_err(&e))?;
        let (extent, times) = span.get();
        shards.push(Shard {
            name: shard_name,
            path: rel,
            region: tile.region().edges(),
            extent,
            times,
            rows: group.len() as u64,
        });
    }
    progress.end();
    Ok(Catalog {
        format: FORMAT.to_string(),
        version: VERSION,
        collection: name.to_string(),
        dim: coll.dim(),
        scheme: Scheme::Quadkey { level },
        rows: order.len() as u64,
        properties: props,
        shards,
        dir: dir.to_path_buf(),
        file: dir.join(crate::catalog::FILE_NAME),
    })
}
