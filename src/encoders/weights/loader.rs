//! Applying a weights file to burn modules: each parameter's checkpoint name and layout
//! (the naming table in the [`weights`](super) module docs), the strict [`Loader`] that
//! collects every problem before failing, `expected_tensors` and [`seeded_random`].

use std::collections::BTreeSet;

use burn::module::{Module, ParamId};
use burn::store::{ModuleSnapshot, TensorSnapshot};
use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use safetensors::Dtype;

use super::{ExpectedTensor, WeightsError, WeightsFile, IGNORABLE};

/// One expected parameter: burn path, checkpoint name and how to convert.
struct Slot {
    burn_path: Vec<String>,
    container_stack: Vec<String>,
    hf: ExpectedTensor,
    transpose: bool,
}

fn slots<B: Backend, M: Module<B>>(module: &M) -> Vec<Slot> {
    slots_renamed::<B, M>(module, &|n| n.to_string())
}

/// [`slots`], each checkpoint name passed through `rename`.
fn slots_renamed<B: Backend, M: Module<B>>(
    module: &M,
    rename: &dyn Fn(&str) -> String,
) -> Vec<Slot> {
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
                    name: rename(&hf_path.join(".")),
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
    expected_tensors_renamed::<B, M>(module, &|n| n.to_string())
}

/// [`expected_tensors`] with each name passed through `rename` (as [`Loader::load_renamed`]).
#[cfg(any(test, feature = "testing"))]
pub fn expected_tensors_renamed<B: Backend, M: Module<B>>(
    module: &M,
    rename: &dyn Fn(&str) -> String,
) -> Vec<ExpectedTensor> {
    let mut v: Vec<ExpectedTensor> = slots_renamed::<B, M>(module, rename)
        .into_iter()
        .map(|s| s.hf)
        .collect();
    v.sort();
    v
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
    untied: Vec<(String, String)>,
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
            untied: Vec::new(),
        }
    }

    /// Loads every parameter of `module` from the file (names per the table in the module
    /// docs). Problems are recorded and reported by [`Loader::finish`]; the returned module
    /// must not be used if `finish` fails.
    pub fn load<B: Backend, M: Module<B>>(&mut self, module: M) -> M {
        self.load_renamed(module, &|n| n.to_string())
    }

    /// [`Loader::load`] for a module whose checkpoint names are not its field paths: each
    /// name (after the table in the module docs) is passed through `rename`, e.g.
    /// `clip_project.model.l0.weight` -> `clip_project.model.0.weight` for an
    /// `nn.Sequential`'s numbered children.
    pub fn load_renamed<B: Backend, M: Module<B>>(
        &mut self,
        mut module: M,
        rename: &dyn Fn(&str) -> String,
    ) -> M {
        let mut snapshots = Vec::new();
        for slot in slots_renamed::<B, M>(&module, rename) {
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

    /// Accepts `name` if the file holds it, without loading it: a buffer the reference
    /// saved that the model recomputes (GPT-2's causal mask `attn.bias`, `attn.masked_bias`).
    pub fn ignore(&mut self, name: &str) {
        if self.file.index.contains_key(name) {
            self.claimed.insert(name.to_string());
        }
    }

    /// A tensor the model ties to another one it loads (`tied_to`, e.g. GPT-2's
    /// `lm_head.weight` and `transformer.wte.weight`): optional in the file, but when present
    /// it must have the same shape (else misshaped) and the same values (else
    /// [`WeightsError::NotTied`]), since only `tied_to` is used.
    pub fn tied(&mut self, name: &str, tied_to: &str) {
        let (Some((_, shape)), Some((_, to_shape))) =
            (self.file.index.get(name), self.file.index.get(tied_to))
        else {
            return;
        };
        self.claimed.insert(name.to_string());
        if shape != to_shape {
            self.misshaped
                .push((name.to_string(), to_shape.clone(), shape.clone()));
            return;
        }
        match (self.file.read_f32(name), self.file.read_f32(tied_to)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => self.untied.push((name.to_string(), tied_to.to_string())),
            (Err(e), _) | (_, Err(e)) => self.apply_errors.push(format!("{name}: {e}")),
        }
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
        if let Some((name, tied_to)) = self.untied.into_iter().next() {
            return Err(WeightsError::NotTied {
                path: self.file.path.clone(),
                name,
                tied_to,
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
