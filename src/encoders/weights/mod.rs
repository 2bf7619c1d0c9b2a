//! Strict loading of safetensors checkpoints in Hugging Face layout.
//!
//! Our modules' field names mirror the checkpoint's tensor names, so the only translation
//! between a burn parameter path and a checkpoint name is this table:
//!
//! | burn module  | burn parameter | checkpoint name | data                         |
//! |--------------|----------------|-----------------|------------------------------|
//! | `LayerNorm`  | `gamma`        | `weight`        | as is                        |
//! | `LayerNorm`  | `beta`         | `bias`          | as is                        |
//! | `Linear`     | `weight`       | `weight`        | transposed: HF `[out, in]`, burn `[in, out]` |
//!
//! Files: safetensors (`model.safetensors`), or the files `torch.save` writes, read by our
//! own strict reader ([`super::pytorch`]) and turned into the same in-memory table: a state
//! dict (`pytorch_model.bin`) under its own names, or a PyTorch Lightning checkpoint
//! (`*.ckpt`) whose `state_dict` entry is renamed by [`lightning_name`] (Sat2Cap's GeoMoCo
//! prefixes) with its non-model entries dropped ([`WeightsFile::open_any`]).
//! [`find_weights`] picks the file of each tower in a weights folder.
//!
//! Loading is strict: every tensor a module expects must be in the file with the right shape,
//! and every tensor in the file must be claimed by a loaded module or be known-ignorable
//! ([`IGNORABLE`]); otherwise [`WeightsError::Mismatch`] lists ALL missing, misshaped and
//! unexpected tensors. f16 / bf16 / f64 tensors are converted to f32.
//!
//! The code: this file holds the in-memory table ([`WeightsFile`]) and the errors;
//! `files.rs` the weights folder's layout ([`find_weights`]) and the Lightning renames;
//! `loader.rs` the strict [`Loader`], `expected_tensors` and [`seeded_random`] weights.

mod files;
mod loader;

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::pytorch::{FileKind, PtError, TorchFile};

pub use files::{
    clip_weights_file, clipcap_weights_file, find_weights, lightning_name, sat2cap_weights_file,
    WeightsFiles,
};
#[cfg(feature = "testing")]
pub use files::{LIGHTNING_DROPPED, LIGHTNING_DROPPED_PREFIXES, LIGHTNING_RENAMES};
#[cfg(any(test, feature = "testing"))]
pub use loader::{expected_tensors, expected_tensors_renamed};
pub use loader::{seeded_random, Loader};

/// Tensors a checkpoint may hold that no module loads: CLIP's `logit_scale` and the
/// `position_ids` buffers that older transformers versions saved.
pub const IGNORABLE: &[&str] = &[
    "logit_scale",
    "text_model.embeddings.position_ids",
    "vision_model.embeddings.position_ids",
];

/// A tensor a module expects, in checkpoint naming and layout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedTensor {
    /// Checkpoint name, e.g. `vision_model.encoder.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// Checkpoint shape (PyTorch layout).
    pub shape: Vec<usize>,
}

/// Errors while reading or applying a weights file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid safetensors.
    #[error("{path} is not a valid safetensors file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The file's tensors do not match the model's.
    #[error("{path} does not match the model: {}", summary(.missing, .misshaped, .unexpected, .bad_dtype))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Expected tensors absent from the file.
        missing: Vec<ExpectedTensor>,
        /// `(name, expected shape, found shape)`.
        misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
        /// Tensors in the file that nothing loads (other than the ignorable ones, such as
        /// `logit_scale`).
        unexpected: Vec<String>,
        /// `(name, dtype)` of tensors whose dtype cannot be converted to f32.
        bad_dtype: Vec<(String, String)>,
    },
    /// The file is not a PyTorch file (`torch.save`'s zip format) that can be loaded.
    #[error("{path} is not a loadable PyTorch file: {message}")]
    PyTorch {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A weights folder holds several candidate files of the same rank (several `*.ckpt`).
    #[error("{} holds several checkpoints ({}): keep only the one to load", .dir.display(), .files.join(", "))]
    Ambiguous {
        /// The folder.
        dir: PathBuf,
        /// The candidates' file names, sorted.
        files: Vec<String>,
    },
    /// A tensor the model ties to another (GPT-2's `lm_head.weight` to
    /// `transformer.wte.weight`) holds other values in the file, so loading it would not
    /// give the model that was saved.
    #[error("{path}: {name} differs from {tied_to}, which this model ties it to (only {tied_to} is used)")]
    NotTied {
        /// The file.
        path: PathBuf,
        /// The tied tensor.
        name: String,
        /// The tensor it is tied to.
        tied_to: String,
    },
    /// burn refused a tensor that passed our checks (a bug).
    #[error("applying weights from {path} failed: {message}")]
    Apply {
        /// The file.
        path: PathBuf,
        /// What burn reported.
        message: String,
    },
}

impl WeightsError {
    /// Whether the user's files are at fault (a file that is missing, not a regular file,
    /// not safetensors, not a loadable PyTorch file, one of several checkpoints, or not this
    /// model's), rather than the machine (an I/O failure, a
    /// tensor the backend could not take).
    pub fn is_bad_input(&self) -> bool {
        match self {
            WeightsError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::IsADirectory
            ),
            WeightsError::Format { .. }
            | WeightsError::PyTorch { .. }
            | WeightsError::Ambiguous { .. }
            | WeightsError::Mismatch { .. }
            | WeightsError::NotTied { .. } => true,
            WeightsError::Apply { .. } => false,
        }
    }
}

fn summary(
    missing: &[ExpectedTensor],
    misshaped: &[(String, Vec<usize>, Vec<usize>)],
    unexpected: &[String],
    bad_dtype: &[(String, String)],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        parts.push(format!("missing [{}]", names.join(", ")));
    }
    if !misshaped.is_empty() {
        let names: Vec<String> = misshaped
            .iter()
            .map(|(n, e, f)| format!("{n} expected {e:?} found {f:?}"))
            .collect();
        parts.push(format!("misshaped [{}]", names.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected [{}]", unexpected.join(", ")));
    }
    if !bad_dtype.is_empty() {
        let names: Vec<String> = bad_dtype.iter().map(|(n, d)| format!("{n} {d}")).collect();
        parts.push(format!("unsupported dtype [{}]", names.join(", ")));
    }
    parts.join("; ")
}

/// A safetensors file read into memory.
pub struct WeightsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// name -> (dtype, shape, byte range), validated at open.
    index: BTreeMap<String, (Dtype, Vec<usize>)>,
}

impl std::fmt::Debug for WeightsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsFile")
            .field("path", &self.path)
            .field("tensors", &self.index.len())
            .finish()
    }
}

/// `path`'s metadata if it is a regular file: a FIFO would block a read, a device
/// (`/dev/zero`) never end it.
fn regular_file(path: &Path) -> Result<std::fs::Metadata, WeightsError> {
    let meta = std::fs::metadata(path).map_err(|source| io_error(path, source))?;
    if !meta.is_file() {
        return Err(io_error(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    Ok(meta)
}

fn io_error(path: &Path, source: std::io::Error) -> WeightsError {
    WeightsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl WeightsFile {
    /// Reads and validates a safetensors file.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        regular_file(path)?;
        let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
        Self::from_bytes(path, bytes)
    }

    /// Validates safetensors bytes (`path` only names the source in errors).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, WeightsError> {
        let index = {
            let st = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            st.tensors()
                .into_iter()
                .map(|(name, view)| (name, (view.dtype(), view.shape().to_vec())))
                .collect()
        };
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            index,
        })
    }

    /// Reads and validates a weights file of any supported format: `*.safetensors` as
    /// safetensors ([`WeightsFile::open`]), any other name as a `torch.save` file (a state
    /// dict such as `pytorch_model.bin`, or a Lightning `*.ckpt`: see
    /// [`WeightsFile::from_pytorch`]).
    pub fn open_any(path: &Path) -> Result<Self, WeightsError> {
        if path.extension().is_some_and(|e| e == "safetensors") {
            return Self::open(path);
        }
        let meta = regular_file(path)?;
        let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
        Self::from_pytorch(path, file, meta.len())
    }

    /// Reads a `torch.save` file of `len` bytes from `reader` (`path` only names it in
    /// errors): the state dict (the root dict, or a Lightning checkpoint's `state_dict`
    /// entry, renamed by [`lightning_name`]), every kept entry a contiguous f32 / f16 / bf16
    /// / f64 / integer tensor, in memory as a validated safetensors table. Only the kept
    /// tensors' storages are read. Nothing in the file is executed: other objects (a
    /// checkpoint's hyper-parameters, optimizer state, callbacks) are placeholders.
    pub fn from_pytorch<R: Read + Seek>(
        path: &Path,
        reader: R,
        len: u64,
    ) -> Result<Self, WeightsError> {
        let err = |e: PtError| match e {
            PtError::Io(source) => WeightsError::Io {
                path: path.to_path_buf(),
                source,
            },
            PtError::Format(message) => WeightsError::PyTorch {
                path: path.to_path_buf(),
                message,
            },
        };
        let file = TorchFile::open(reader, len).map_err(err)?;
        let bytes = match file.kind() {
            FileKind::Lightning => file.into_safetensors(lightning_name),
            FileKind::StateDict => file.into_safetensors(|k| Some(k.to_string())),
        }
        .map_err(err)?;
        Self::from_bytes(path, bytes).map_err(|e| match e {
            WeightsError::Format { path, message } => WeightsError::PyTorch {
                path,
                message: format!("its tensors do not form a valid table: {message}"),
            },
            e => e,
        })
    }

    /// [`WeightsFile::from_pytorch`] over bytes in memory.
    #[cfg(any(test, feature = "testing"))]
    pub fn from_pytorch_bytes(path: &Path, bytes: &[u8]) -> Result<Self, WeightsError> {
        Self::from_pytorch(path, std::io::Cursor::new(bytes), bytes.len() as u64)
    }

    /// The file's path.
    #[cfg(any(test, feature = "testing"))]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names and shapes of every tensor in the file.
    #[cfg(any(test, feature = "testing"))]
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.index
            .iter()
            .map(|(n, (_, s))| (n.as_str(), s.as_slice()))
    }

    /// Whether the file holds a tensor whose name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.index.keys().any(|k| k.starts_with(prefix))
    }

    /// Reads one tensor as f32 (converting f16 / bf16 / f64), with its shape.
    #[cfg(any(test, feature = "testing"))]
    pub fn read_tensor(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), WeightsError> {
        let shape = self
            .index
            .get(name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| WeightsError::Format {
                path: self.path.clone(),
                message: format!("no tensor {name}"),
            })?;
        let v = self
            .read_f32(name)
            .map_err(|message| WeightsError::Format {
                path: self.path.clone(),
                message,
            })?;
        Ok((v, shape))
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>, String> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| e.to_string())?;
        let view = st.tensor(name).map_err(|e| e.to_string())?;
        let data = view.data();
        let out = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => return Err(format!("dtype {other:?}")),
        };
        Ok(out)
    }
}
