//! Where the weights come from: the file of each tower in a weights folder
//! ([`find_weights`]: safetensors, else a `pytorch_model.bin`, else the one Lightning
//! `*.ckpt` for Sat2Cap) and the names a Lightning checkpoint's state-dict entries load
//! under ([`lightning_name`]).

use std::path::{Path, PathBuf};

use super::WeightsError;
use crate::encoders::pytorch::show;

/// Prefix renames from a Sat2Cap (GeoMoCo) Lightning checkpoint's state dict to ours, as
/// tools/convert_sat2cap_ckpt.py does them.
pub const LIGHTNING_RENAMES: &[(&str, &str)] = &[
    ("imo_encoder.vision_model.vision_model.", "vision_model."),
    (
        "imo_encoder.vision_model.visual_projection.",
        "visual_projection.",
    ),
];

/// State-dict entries of a Lightning checkpoint that are not ours and are dropped: the MoCo
/// queue and its pointer.
pub const LIGHTNING_DROPPED: &[&str] = &["queue", "queue_ptr"];

/// Prefixes of a Lightning checkpoint's state-dict entries that are not ours and are
/// dropped: the frozen ground-level CLIP image tower, the CLIP text tower, the temperature.
pub const LIGHTNING_DROPPED_PREFIXES: &[&str] = &["img_encoder.", "text_model.", "temp_layer."];

/// The name a Lightning checkpoint's state-dict entry loads under, or `None` when it is
/// dropped ([`LIGHTNING_DROPPED`], [`LIGHTNING_DROPPED_PREFIXES`]). `geo_encoder.*` and
/// every other name stay as they are (so an unknown entry is an unexpected tensor for the
/// strict [`Loader`](super::Loader)); `*.position_ids` buffers become names in
/// [`IGNORABLE`](super::IGNORABLE).
pub fn lightning_name(key: &str) -> Option<String> {
    if LIGHTNING_DROPPED.contains(&key)
        || LIGHTNING_DROPPED_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
    {
        return None;
    }
    for (old, new) in LIGHTNING_RENAMES {
        if let Some(rest) = key.strip_prefix(old) {
            return Some(format!("{new}{rest}"));
        }
    }
    Some(key.to_string())
}

/// The weights file of each tower in a weights folder ([`find_weights`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsFiles {
    /// `clip/model.safetensors`, else `clip/pytorch_model.bin`: the text and ground towers.
    pub clip: PathBuf,
    /// `sat2cap/model.safetensors`, else `sat2cap/pytorch_model.bin`, else the one
    /// `sat2cap/*.ckpt`: the overhead tower (+ GeoNet).
    pub sat2cap: PathBuf,
}

/// Whether a directory entry exists (a dangling symlink or a FIFO counts: opening it then
/// says what is wrong with it).
fn present(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn not_found(path: PathBuf, also: &str) -> WeightsError {
    WeightsError::Io {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such file (nor {also} beside it)"),
        ),
    }
}

/// The CLIP weights in `dir`: `clip/model.safetensors`, else `clip/pytorch_model.bin`.
pub fn clip_weights_file(dir: &Path) -> Result<PathBuf, WeightsError> {
    let d = dir.join("clip");
    for name in ["model.safetensors", "pytorch_model.bin"] {
        if present(&d.join(name)) {
            return Ok(d.join(name));
        }
    }
    Err(not_found(d.join("model.safetensors"), "pytorch_model.bin"))
}

/// The Sat2Cap weights in `dir`: `sat2cap/model.safetensors`, else
/// `sat2cap/pytorch_model.bin`, else the one `sat2cap/*.ckpt` (several are
/// [`WeightsError::Ambiguous`]).
pub fn sat2cap_weights_file(dir: &Path) -> Result<PathBuf, WeightsError> {
    let d = dir.join("sat2cap");
    for name in ["model.safetensors", "pytorch_model.bin"] {
        if present(&d.join(name)) {
            return Ok(d.join(name));
        }
    }
    let missing = not_found(d.join("model.safetensors"), "pytorch_model.bin or a *.ckpt");
    the_one(d, "ckpt", missing)
}

/// The one file of `d` whose name ends `.{ext}`: `missing` if none, `Ambiguous` if several.
fn the_one(d: PathBuf, ext: &str, missing: WeightsError) -> Result<PathBuf, WeightsError> {
    let entries = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing),
        Err(source) => return Err(WeightsError::Io { path: d, source }),
    };
    let mut found = Vec::new();
    for e in entries {
        let e = e.map_err(|source| WeightsError::Io {
            path: d.clone(),
            source,
        })?;
        let name = e.file_name();
        if Path::new(&name).extension().is_some_and(|x| x == ext) {
            found.push(name);
        }
    }
    found.sort();
    match &found[..] {
        [] => Err(missing),
        [one] => Ok(d.join(one)),
        _ => Err(WeightsError::Ambiguous {
            dir: d,
            files: found.iter().map(|n| show(&n.to_string_lossy())).collect(),
        }),
    }
}

/// The ClipCap captioner's weights in `dir`: `clipcap/model.safetensors`, else
/// `clipcap/pytorch_model.bin`, else the one `clipcap/*.pt` (the published
/// `coco_weights.pt` / `conceptual_weights.pt`; several are [`WeightsError::Ambiguous`]).
pub fn clipcap_weights_file(dir: &Path) -> Result<PathBuf, WeightsError> {
    let d = dir.join("clipcap");
    for name in ["model.safetensors", "pytorch_model.bin"] {
        if present(&d.join(name)) {
            return Ok(d.join(name));
        }
    }
    let missing = not_found(d.join("model.safetensors"), "pytorch_model.bin or a *.pt");
    the_one(d, "pt", missing)
}

/// The weights files [`Encoders::load`](crate::encoders::Encoders::load) reads from `dir`
/// (the files to fingerprint): see [`WeightsFiles`].
pub fn find_weights(dir: &Path) -> Result<WeightsFiles, WeightsError> {
    Ok(WeightsFiles {
        clip: clip_weights_file(dir)?,
        sat2cap: sat2cap_weights_file(dir)?,
    })
}
