//! Device selection.

use std::str::FromStr;

/// Where the encoders run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's CPU backend (Flex).
    Cpu,
    /// burn's CUDA backend (feature `cuda`); an error if unavailable.
    Cuda,
    /// CUDA when the feature is on and a GPU/driver works, else the CPU with a one-line
    /// notice on stderr.
    #[default]
    Auto,
}

impl FromStr for DeviceChoice {
    type Err = String;

    /// Parses `cpu`, `cuda` or `auto` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown device {other:?}: expected cpu, cuda or auto"
            )),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        })
    }
}

/// Numeric precision of the encoders' weights and activations.
///
/// `F16` loads the weights (f32, f16, bf16 or f64 in the file) and casts every float
/// parameter to IEEE half precision; inputs are cast to f16 on the device and embeddings are
/// returned as f32. The cast is checked: loading fails with [`super::EncodeError::Device`] if
/// the backend kept any parameter in another dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (the reference-parity path).
    #[default]
    F32,
    /// 16-bit IEEE half floats (burn `DType::F16`).
    F16,
}

impl FromStr for Precision {
    type Err = String;

    /// Parses `f32` / `fp32` / `float32` or `f16` / `fp16` / `half` / `float16`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "f16" | "fp16" | "half" | "float16" => Ok(Self::F16),
            other => Err(format!("unknown precision {other:?}: expected f32 or f16")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        })
    }
}

/// A short description of a caught panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
