//! Backend dispatch: the same models on burn Flex (CPU) or burn CUDA.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use super::clip_text::ClipTextModel;
use super::clip_vision::ClipVisionModel;
use super::device::{panic_message, DeviceChoice, Precision};
use super::dynamic::{GeoNet, Meta, Sat2CapDynamic};
use super::weights::{clip_weights_file, sat2cap_weights_file, seeded_random, Loader, WeightsFile};
use super::{CpuBackend, EncodeError, EncodersConfig};

/// Models on one backend.
pub(crate) struct Models<B: Backend> {
    text: ClipTextModel<B>,
    ground: ClipVisionModel<B>,
    overhead: ClipVisionModel<B>,
    dynamic: Option<Sat2CapDynamic<B>>,
    device: B::Device,
    /// dtype of the towers' parameters and activations (the GeoNet stays f32: it is tiny
    /// and its output is added to the overhead embedding after casting that to f32).
    dtype: FloatDType,
}

fn float_dtype(p: Precision) -> FloatDType {
    match p {
        Precision::F32 => FloatDType::F32,
        Precision::F16 => FloatDType::F16,
    }
}

/// Casts every float parameter of a module (burn keeps a tensor's dtype from its data, so
/// loading f16 weights or asking for a half-precision backend does not make a half model).
struct CastFloats(FloatDType);

impl<B: Backend> ModuleMapper<B> for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype))
    }
}

/// Counts float parameters whose dtype is not the expected one.
struct DtypeCheck {
    expected: DType,
    total: usize,
    wrong: Vec<DType>,
}

impl<B: Backend> ModuleVisitor<B> for DtypeCheck {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.total += 1;
        let d = param.val().dtype();
        if d != self.expected {
            self.wrong.push(d);
        }
    }
}

/// Casts `module` to `dtype` and checks that every float parameter now has it.
fn cast_module<B: Backend, M: Module<B>>(module: M, dtype: FloatDType) -> Result<M, EncodeError> {
    let module = if dtype == FloatDType::F32 {
        module
    } else {
        module.map(&mut CastFloats(dtype))
    };
    let mut check = DtypeCheck {
        expected: dtype.into(),
        total: 0,
        wrong: Vec::new(),
    };
    module.visit(&mut check);
    if let Some(d) = check.wrong.first() {
        return Err(EncodeError::Device(format!(
            "{} of {} parameters are {d:?} after casting to {dtype:?}",
            check.wrong.len(),
            check.total
        )));
    }
    Ok(module)
}

fn to_rows(t: TensorData) -> Result<Vec<Vec<f32>>, EncodeError> {
    let shape = t.shape.clone();
    let v = t
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| EncodeError::Backend(format!("{e:?}")))?;
    let cols = shape.get(1).copied().unwrap_or(0).max(1);
    Ok(v.chunks(cols).map(|c| c.to_vec()).collect())
}

pub(crate) fn guard<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, EncodeError>,
) -> Result<T, EncodeError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(EncodeError::Backend(format!(
            "{what}: {}",
            panic_message(&*p)
        ))),
    }
}

impl<B: Backend> Models<B> {
    fn random(seed: u64, config: &EncodersConfig, device: B::Device) -> Result<Self, EncodeError> {
        // Distinct streams per tower: the ground and overhead towers share tensor names.
        Self {
            text: seeded_random(ClipTextModel::init(&config.text, &device), seed),
            ground: seeded_random(ClipVisionModel::init(&config.ground, &device), seed ^ 1),
            overhead: seeded_random(ClipVisionModel::init(&config.overhead, &device), seed ^ 2),
            dynamic: Some(seeded_random(
                Sat2CapDynamic {
                    geo_encoder: GeoNet::init(&config.geo, &device),
                },
                seed ^ 3,
            )),
            device,
            dtype: FloatDType::F32,
        }
        .with_precision(config.precision)
    }

    /// Casts the three towers to `precision` (checked; a no-op for f32), then fuses each
    /// attention's q, k and v projections into one product.
    fn with_precision(self, precision: Precision) -> Result<Self, EncodeError> {
        let dtype = float_dtype(precision);
        let mut text = cast_module(self.text, dtype)?;
        let mut ground = cast_module(self.ground, dtype)?;
        let mut overhead = cast_module(self.overhead, dtype)?;
        guard("fusing q, k and v", || {
            text.text_model.encoder.fuse_qkv();
            ground.vision_model.encoder.fuse_qkv();
            overhead.vision_model.encoder.fuse_qkv();
            Ok(())
        })?;
        Ok(Self {
            text,
            ground,
            overhead,
            dynamic: match self.dynamic {
                Some(d) => Some(cast_module(d, FloatDType::F32)?),
                None => None,
            },
            device: self.device,
            dtype,
        })
    }

    fn load(dir: &Path, config: &EncodersConfig, device: B::Device) -> Result<Self, EncodeError> {
        // Each tower's file: model.safetensors, else pytorch_model.bin (else, for sat2cap/,
        // the one *.ckpt); found just before it is read, so errors come in tower order.
        let clip_file = WeightsFile::open_any(&clip_weights_file(dir)?)?;
        let mut loader = Loader::new(&clip_file);
        let text = loader.load(ClipTextModel::init(&config.text, &device));
        let ground = loader.load(ClipVisionModel::init(&config.ground, &device));
        loader.finish()?;
        drop(clip_file);

        let sat_file = WeightsFile::open_any(&sat2cap_weights_file(dir)?)?;
        let mut loader = Loader::new(&sat_file);
        let overhead = loader.load(ClipVisionModel::init(&config.overhead, &device));
        let dynamic = if sat_file.has_prefix("geo_encoder.") {
            Some(loader.load(Sat2CapDynamic {
                geo_encoder: GeoNet::init(&config.geo, &device),
            }))
        } else {
            None
        };
        loader.finish()?;
        Self {
            text,
            ground,
            overhead,
            dynamic,
            device,
            dtype: FloatDType::F32,
        }
        .with_precision(config.precision)
    }

    fn text(&self, ids: &[Vec<u32>], eos: u32) -> Result<Vec<Vec<f32>>, EncodeError> {
        // With the causal mask, positions after the last end token cannot change the pooled
        // outputs: run only up to it.
        let keep = ids
            .iter()
            .map(|r| r.iter().position(|&i| i == eos).map_or(r.len(), |p| p + 1))
            .max()
            .unwrap_or(0);
        let cut: Vec<Vec<u32>> = ids
            .iter()
            .map(|r| r[..keep.min(r.len())].to_vec())
            .collect();
        guard("text", || {
            let out = self
                .text
                .forward_ids(&cut, eos, &self.device)
                .map_err(|e| EncodeError::Input(e.to_string()))?;
            to_rows(out.cast(FloatDType::F32).into_data())
        })
    }

    /// The pixel batch on the device, in the models' dtype (cast explicitly: a tensor's
    /// dtype follows its data, f32 here).
    fn pixels(&self, pixels: Vec<Vec<f32>>, size: usize) -> Tensor<B, 4> {
        let b = pixels.len();
        let flat: Vec<f32> = pixels.into_iter().flatten().collect();
        Tensor::<B, 4>::from_data(TensorData::new(flat, [b, 3, size, size]), &self.device)
            .cast(self.dtype)
    }

    fn ground(&self, pixels: Vec<Vec<f32>>, size: usize) -> Result<Vec<Vec<f32>>, EncodeError> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        guard("ground", || {
            let x = self.pixels(pixels, size);
            to_rows(self.ground.forward(x).cast(FloatDType::F32).into_data())
        })
    }

    fn overhead(
        &self,
        pixels: Vec<Vec<f32>>,
        size: usize,
        meta: Option<&[Meta]>,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        guard("overhead", || {
            let x = self.pixels(pixels, size);
            let mut emb = self.overhead.forward(x).cast(FloatDType::F32);
            if let Some(meta) = meta {
                let dynamic = self.dynamic.as_ref().ok_or(EncodeError::NoDynamicEncoder)?;
                let geo = dynamic
                    .geo_encoder
                    .forward_meta(meta, &self.device)
                    .map_err(|source| EncodeError::Meta { index: 0, source })?;
                // geomoco.py forward: geo_embeddings + unnormalized_overhead_img_embeddings
                emb = emb + geo;
            }
            to_rows(emb.into_data())
        })
    }
}

/// The models on the chosen backend.
pub(crate) enum Engine {
    Cpu(Box<Models<CpuBackend>>),
    #[cfg(feature = "cuda")]
    Cuda(Box<Models<burn::backend::Cuda>>),
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<burn::backend::cuda::CudaDevice, String> {
    use burn::backend::Cuda;
    let device = burn::backend::cuda::CudaDevice::default();
    let probe = catch_unwind(|| {
        let t = Tensor::<Cuda, 1>::from_data(TensorData::new(vec![1f32, 2.0], [2]), &device);
        (t * 2.0).into_data().to_vec::<f32>().ok()
    });
    match probe {
        Ok(Some(v)) if v == [2.0, 4.0] => Ok(device),
        Ok(other) => Err(format!("CUDA probe returned {other:?}")),
        Err(p) => Err(panic_message(&*p)),
    }
}

pub(crate) enum Resolved {
    /// The CPU, with why not the GPU when `auto` fell back.
    Cpu(Option<String>),
    #[cfg(feature = "cuda")]
    Cuda(burn::backend::cuda::CudaDevice),
}

pub(crate) fn resolve(choice: DeviceChoice) -> Result<Resolved, EncodeError> {
    match choice {
        DeviceChoice::Cpu => Ok(Resolved::Cpu(None)),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => cuda_device()
            .map(Resolved::Cuda)
            .map_err(EncodeError::Device),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda => Err(EncodeError::Device(
            "this build has no CUDA support (feature `cuda`)".into(),
        )),
        #[cfg(feature = "cuda")]
        DeviceChoice::Auto => match cuda_device() {
            Ok(d) => Ok(Resolved::Cuda(d)),
            Err(e) => Ok(Resolved::Cpu(Some(format!("CUDA unavailable: {e}")))),
        },
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Auto => Ok(Resolved::Cpu(Some(
            "built without the `cuda` feature".into(),
        ))),
    }
}

const CPU_NAME: &str = "cpu (burn flex)";

/// The CPU's device name, with why `auto` did not pick the GPU.
pub(crate) fn cpu_name(why: Option<String>) -> String {
    match why {
        None => CPU_NAME.into(),
        Some(w) => format!("{CPU_NAME}; auto chose the CPU: {w}"),
    }
}

impl Engine {
    pub(crate) fn load(
        dir: &Path,
        choice: DeviceChoice,
        config: &EncodersConfig,
    ) -> Result<(Self, String), EncodeError> {
        match resolve(choice)? {
            Resolved::Cpu(why) => Ok((
                Engine::Cpu(Box::new(Models::load(dir, config, Default::default())?)),
                cpu_name(why),
            )),
            #[cfg(feature = "cuda")]
            Resolved::Cuda(d) => Ok((
                Engine::Cuda(Box::new(guard("cuda load", || {
                    Models::load(dir, config, d.clone())
                })?)),
                format!("cuda ({d:?})"),
            )),
        }
    }

    pub(crate) fn random(
        seed: u64,
        choice: DeviceChoice,
        config: &EncodersConfig,
    ) -> Result<(Self, String), EncodeError> {
        match resolve(choice)? {
            Resolved::Cpu(why) => Ok((
                Engine::Cpu(Box::new(Models::random(seed, config, Default::default())?)),
                cpu_name(why),
            )),
            #[cfg(feature = "cuda")]
            Resolved::Cuda(d) => Ok((
                Engine::Cuda(Box::new(guard("cuda init", || {
                    Models::random(seed, config, d.clone())
                })?)),
                format!("cuda ({d:?})"),
            )),
        }
    }

    pub(crate) fn has_dynamic(&self) -> bool {
        match self {
            Engine::Cpu(m) => m.dynamic.is_some(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.dynamic.is_some(),
        }
    }

    pub(crate) fn text(&self, ids: &[Vec<u32>], eos: u32) -> Result<Vec<Vec<f32>>, EncodeError> {
        match self {
            Engine::Cpu(m) => m.text(ids, eos),
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.text(ids, eos),
        }
    }

    pub(crate) fn ground(
        &self,
        pixels: Vec<Vec<f32>>,
        size: usize,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        match self {
            Engine::Cpu(m) => m.ground(pixels, size),
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.ground(pixels, size),
        }
    }

    pub(crate) fn overhead(
        &self,
        pixels: Vec<Vec<f32>>,
        size: usize,
        meta: Option<&[Meta]>,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        match self {
            Engine::Cpu(m) => m.overhead(pixels, size, meta),
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.overhead(pixels, size, meta),
        }
    }
}
