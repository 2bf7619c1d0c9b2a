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
//! Loading is strict: every tensor a module expects must be in the file with the right shape,
//! and every tensor in the file must be claimed by a loaded module or be known-ignorable
//! ([`IGNORABLE`]); otherwise [`WeightsError::Mismatch`] lists ALL missing, misshaped and
//! unexpected tensors. f16 / bf16 / f64 tensors are converted to f32.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Module, ParamId};
use burn::store::{ModuleSnapshot, TensorSnapshot};
use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors};

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
    /// not safetensors, or not this model's), rather than the machine (an I/O failure, a
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
            WeightsError::Format { .. } | WeightsError::Mismatch { .. } => true,
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

/// One expected parameter: burn path, checkpoint name and how to convert.
struct Slot {
    burn_path: Vec<String>,
    container_stack: Vec<String>,
    hf: ExpectedTensor,
    transpose: bool,
}

fn slots<B: Backend, M: Module<B>>(module: &M) -> Vec<Slot> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|snap| {
            let burn_path = snap.path_stack.clone().unwrap_or_default();
            let container_stack = snap.container_stack.clone().unwrap_or_default();
            let module_type = snap.module_type().unwrap_or_default();
            let mut hf_path = burn_path.clone();
            let mut shape = snap.shape.to_vec();
            let mut transpose = false;
            if let Some(last) = hf_path.last_mut() {
                match (module_type.as_str(), last.as_str()) {
                    ("Struct:LayerNorm", "gamma") => *last = "weight".into(),
                    ("Struct:LayerNorm", "beta") => *last = "bias".into(),
                    ("Struct:Linear", "weight") if shape.len() == 2 => {
                        shape.reverse();
                        transpose = true;
                    }
                    _ => {}
                }
            }
            Slot {
                burn_path,
                container_stack,
                hf: ExpectedTensor {
                    name: hf_path.join("."),
                    shape,
                },
                transpose,
            }
        })
        .collect()
}

/// The tensors (checkpoint names and PyTorch-layout shapes) that `module` expects, sorted.
#[cfg(any(test, feature = "testing"))]
pub fn expected_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<ExpectedTensor> {
    let mut v: Vec<ExpectedTensor> = slots::<B, M>(module).into_iter().map(|s| s.hf).collect();
    v.sort();
    v
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

impl WeightsFile {
    /// Reads and validates a safetensors file.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let io = |source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Only a regular file: a FIFO would block, a device (`/dev/zero`) never end.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let bytes = std::fs::read(path).map_err(io)?;
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

fn convertible(d: Dtype) -> bool {
    matches!(d, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

/// A row-major `rows x cols` matrix, transposed (checkpoint `[out, in]` -> burn `[in, out]`).
fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            if let (Some(dst), Some(&v)) = (t.get_mut(c * rows + r), values.get(r * cols + c)) {
                *dst = v;
            }
        }
    }
    t
}

/// Loads several modules from one file, collecting every problem before failing.
///
/// ```no_run
/// # use sat2cap::encoders::weights::{Loader, WeightsFile};
/// # use sat2cap::encoders::clip_vision::ClipVisionModel;
/// # use sat2cap::encoders::{ClipVisionConfig, CpuBackend};
/// # fn f() -> Result<(), sat2cap::encoders::weights::WeightsError> {
/// let device = Default::default();
/// let file = WeightsFile::open(std::path::Path::new("clip/model.safetensors"))?;
/// let mut loader = Loader::new(&file);
/// let vision = loader.load(ClipVisionModel::<CpuBackend>::init(&ClipVisionConfig::vit_b32(), &device));
/// loader.finish()?; // errors unless every tensor matched
/// # Ok(()) }
/// ```
pub struct Loader<'a> {
    file: &'a WeightsFile,
    claimed: BTreeSet<String>,
    missing: Vec<ExpectedTensor>,
    misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    bad_dtype: Vec<(String, String)>,
    apply_errors: Vec<String>,
}

impl<'a> Loader<'a> {
    /// A loader over `file`.
    pub fn new(file: &'a WeightsFile) -> Self {
        Self {
            file,
            claimed: BTreeSet::new(),
            missing: Vec::new(),
            misshaped: Vec::new(),
            bad_dtype: Vec::new(),
            apply_errors: Vec::new(),
        }
    }

    /// Loads every parameter of `module` from the file (names per the table in the module
    /// docs). Problems are recorded and reported by [`Loader::finish`]; the returned module
    /// must not be used if `finish` fails.
    pub fn load<B: Backend, M: Module<B>>(&mut self, mut module: M) -> M {
        let mut snapshots = Vec::new();
        for slot in slots::<B, M>(&module) {
            let name = slot.hf.name.clone();
            let Some((dtype, shape)) = self.file.index.get(&name) else {
                self.missing.push(slot.hf);
                continue;
            };
            self.claimed.insert(name.clone());
            if *shape != slot.hf.shape {
                self.misshaped
                    .push((name, slot.hf.shape.clone(), shape.clone()));
                continue;
            }
            if !convertible(*dtype) {
                self.bad_dtype.push((name, format!("{dtype:?}")));
                continue;
            }
            let mut values = match self.file.read_f32(&name) {
                Ok(v) => v,
                Err(e) => {
                    self.apply_errors.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let mut burn_shape = shape.clone();
            if slot.transpose {
                values = transposed(&values, shape[0], shape[1]);
                burn_shape.reverse();
            }
            snapshots.push(TensorSnapshot::from_data(
                TensorData::new(values, burn_shape),
                slot.burn_path,
                slot.container_stack,
                ParamId::new(),
            ));
        }
        if self.is_clean() {
            let expected = snapshots.len();
            let result = module.apply(snapshots, None, None, false);
            if !result.errors.is_empty() || !result.missing.is_empty() {
                self.apply_errors.push(format!(
                    "errors {:?}, missing {:?}",
                    result.errors, result.missing
                ));
            } else if result.applied.len() != expected {
                self.apply_errors.push(format!(
                    "applied {} of {expected} tensors",
                    result.applied.len()
                ));
            }
        }
        module
    }

    fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.misshaped.is_empty()
            && self.bad_dtype.is_empty()
            && self.apply_errors.is_empty()
    }

    /// Fails with every missing / misshaped / unexpected tensor, or succeeds if the file and
    /// the loaded modules match exactly (up to [`IGNORABLE`]).
    pub fn finish(self) -> Result<(), WeightsError> {
        let unexpected: Vec<String> = self
            .file
            .index
            .keys()
            .filter(|k| !self.claimed.contains(*k) && !IGNORABLE.contains(&k.as_str()))
            .cloned()
            .collect();
        if !self.missing.is_empty()
            || !self.misshaped.is_empty()
            || !unexpected.is_empty()
            || !self.bad_dtype.is_empty()
        {
            return Err(WeightsError::Mismatch {
                path: self.file.path.clone(),
                missing: self.missing,
                misshaped: self.misshaped,
                unexpected,
                bad_dtype: self.bad_dtype,
            });
        }
        if !self.apply_errors.is_empty() {
            return Err(WeightsError::Apply {
                path: self.file.path.clone(),
                message: self.apply_errors.join("; "),
            });
        }
        Ok(())
    }
}

/// Overwrites every parameter of `module` with seeded pseudo-random values, independent of
/// burn's global RNG, thread scheduling and initialisation order (each tensor's stream is
/// derived from `seed` and its checkpoint name). LayerNorm weights are 1 and biases 0;
/// other tensors are uniform in `+-1/sqrt(fan_in)` (fan_in: all but the first checkpoint
/// dimension; 0.02 * sqrt(3) for 1-d tensors and embeddings).
pub fn seeded_random<B: Backend, M: Module<B>>(mut module: M, seed: u64) -> M {
    use rand::{Rng, SeedableRng};
    let mut snapshots = Vec::new();
    for slot in slots::<B, M>(&module) {
        let name = &slot.hf.name;
        let n: usize = slot.hf.shape.iter().product();
        let is_norm = name.contains("norm") || name.contains("layrnorm");
        let values: Vec<f32> = if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else if is_norm || name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            // FNV-1a of the name, mixed with the seed.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in name.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h ^ seed);
            let fan_in: usize = slot.hf.shape.iter().skip(1).product();
            let bound = if slot.hf.shape.len() < 2 || name.contains("embedding.weight") {
                0.02 * 3f32.sqrt()
            } else {
                1.0 / (fan_in.max(1) as f32).sqrt()
            };
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        let mut shape = slot.hf.shape.clone();
        let mut values = values;
        if slot.transpose {
            // Values were drawn in checkpoint layout [out, in]; store as burn's [in, out].
            values = transposed(&values, shape[0], shape[1]);
            shape.reverse();
        }
        snapshots.push(TensorSnapshot::from_data(
            TensorData::new(values, shape),
            slot.burn_path,
            slot.container_stack,
            ParamId::new(),
        ));
    }
    let _ = module.apply(snapshots, None, None, false);
    module
}
