//! A strict, safe reader of the files `torch.save` writes: `pytorch_model.bin` state dicts
//! and PyTorch Lightning `.ckpt` checkpoints, turned into safetensors bytes for
//! [`WeightsFile`](super::weights::WeightsFile).
//!
//! The container is the zip archive of `torch.save` (since PyTorch 1.6):
//! `<name>/data.pkl` (the pickled object), `<name>/data/<key>` (one entry per storage, raw
//! little-endian bytes), `<name>/byteorder`, `<name>/version`, ... Entries may be stored or
//! deflated; zip64 records (which PyTorch always writes) are read; encryption, other
//! compression methods, multi-disk archives and the legacy (pre-1.6) format are refused.
//! Every entry read is checked against its CRC-32 (unless the writer left it 0, as
//! `torch.serialization.config.save.compute_crc32 = False` does).
//!
//! `data.pkl` runs through a pickle VM of our own that never executes anything: it builds
//! plain values (dicts, lists, tuples, strings, numbers, `None`), `collections.OrderedDict`,
//! tensors from `torch._utils._rebuild_tensor_v2` (and `_rebuild_tensor`,
//! `_rebuild_parameter`, `torch._tensor._rebuild_from_type_v2`) over the persistent ids
//! `('storage', torch.<X>Storage, key, location, numel)`, and for EVERY other global
//! (Lightning's hyper-parameter objects, numpy scalars, `argparse.Namespace`, `os.system`,
//! ...) an opaque placeholder: the file still loads, only the state dict's tensors matter.
//! Work and memory are bounded by the size of the pickle (see `Budget` in `pickle.rs`);
//! nothing recurses over the data.
//!
//! Only the state dict's tensors that the caller keeps are checked in depth: a known
//! storage type, a contiguous layout, offset + elements within the storage, the storage
//! entry's length equal to what the pickle declares. Anything else is an error naming the
//! tensor.
//!
//! The code: `archive.rs` (the zip container), `pickle.rs` (the VM's values, state and
//! primitives, and what it makes of torch's globals), `pickle_ops.rs` (its opcodes),
//! `state_dict.rs` (finding the state dict, checking its tensors, writing safetensors) and
//! this file (errors, [`show`], `storages_in_pickle` for the fuzz target).

mod archive;
mod pickle;
mod pickle_ops;
mod state_dict;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "testing"))]
pub use archive::zip;
#[cfg(feature = "testing")]
pub use archive::Archive;
#[cfg(feature = "testing")]
pub use pickle::Pickle;
pub use state_dict::{FileKind, TorchFile};

#[cfg(any(test, feature = "testing"))]
use pickle::{unpickle, Obj, Value};
#[cfg(any(test, feature = "testing"))]
use state_dict::storage_dtype;

/// Why a PyTorch file could not be read.
#[derive(Debug)]
pub enum PtError {
    /// Reading the file failed (the machine, not the file's contents).
    Io(std::io::Error),
    /// The file is not a PyTorch file this reader supports (one line, no path).
    Format(String),
}

type Result<T> = std::result::Result<T, PtError>;

fn bad<T>(message: impl Into<String>) -> Result<T> {
    Err(PtError::Format(message.into()))
}

/// A name from the file, fit for a one-line message: control characters escaped, at most
/// 120 characters.
pub fn show(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 120 {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The storages a pickle names: `(key, bytes)` (an unknown storage type counts 1 byte an
/// element); empty if it does not unpickle. For the fuzz target, which wraps a bare pickle
/// in an archive holding exactly these storages.
#[cfg(any(test, feature = "testing"))]
pub fn storages_in_pickle(data: &[u8]) -> Vec<(String, u64)> {
    let Ok(p) = unpickle(data) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for o in &p.objs {
        if let Obj::Storage(s) = o {
            let elem = match p.objs.get(s.kind) {
                Some(Obj::Global(g)) => storage_dtype(&g.module, &g.name).map_or(1, |d| d.1),
                _ => 1,
            };
            let key = p.str(Value::Obj(s.key)).unwrap_or("").to_string();
            out.push((
                key,
                u64::try_from(s.numel).unwrap_or(0).saturating_mul(elem),
            ));
        }
    }
    out
}
