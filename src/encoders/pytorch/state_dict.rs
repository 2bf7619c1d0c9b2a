//! State dicts: [`TorchFile`] finds the state dict in a `torch.save` file (a plain one or a
//! Lightning checkpoint's, [`FileKind`]), checks each kept tensor ([`Placed`]: dtype,
//! layout, bounds, storage length) and writes the kept tensors as safetensors bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use safetensors::Dtype;

use super::archive::Archive;
use super::pickle::{unpickle, Obj, Pickle, Value};
use super::{bad, show, PtError, Result};

/// What kind of file held the state dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A plain state dict (`torch.save(model.state_dict())`, a Hugging Face
    /// `pytorch_model.bin`).
    StateDict,
    /// A PyTorch Lightning checkpoint: a dict whose `state_dict` entry is the model's.
    Lightning,
}

/// Storage types: safetensors dtype and element size.
pub(super) fn storage_dtype(module: &str, name: &str) -> Option<(Dtype, u64)> {
    if (module, name) == ("torch.storage", "UntypedStorage") {
        return Some((Dtype::U8, 1));
    }
    if module != "torch" {
        return None;
    }
    Some(match name {
        "DoubleStorage" => (Dtype::F64, 8),
        "FloatStorage" => (Dtype::F32, 4),
        "HalfStorage" => (Dtype::F16, 2),
        "BFloat16Storage" => (Dtype::BF16, 2),
        "LongStorage" => (Dtype::I64, 8),
        "IntStorage" => (Dtype::I32, 4),
        "ShortStorage" => (Dtype::I16, 2),
        "CharStorage" => (Dtype::I8, 1),
        "ByteStorage" | "UntypedStorage" => (Dtype::U8, 1),
        "BoolStorage" => (Dtype::BOOL, 1),
        _ => return None,
    })
}

/// `_rebuild_tensor_v3` dtypes (`torch.<name>`): safetensors dtype and element size.
fn torch_dtype(module: &str, name: &str) -> Option<(Dtype, u64)> {
    if module != "torch" {
        return None;
    }
    Some(match name {
        "float64" => (Dtype::F64, 8),
        "float32" => (Dtype::F32, 4),
        "float16" => (Dtype::F16, 2),
        "bfloat16" => (Dtype::BF16, 2),
        "int64" => (Dtype::I64, 8),
        "int32" => (Dtype::I32, 4),
        "int16" => (Dtype::I16, 2),
        "int8" => (Dtype::I8, 1),
        "uint64" => (Dtype::U64, 8),
        "uint32" => (Dtype::U32, 4),
        "uint16" => (Dtype::U16, 2),
        "uint8" => (Dtype::U8, 1),
        "bool" => (Dtype::BOOL, 1),
        "float8_e4m3fn" => (Dtype::F8_E4M3, 1),
        "float8_e5m2" => (Dtype::F8_E5M2, 1),
        _ => return None,
    })
}

/// A kept tensor, checked: where its bytes are and what they are.
struct Placed {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// The storage's zip entry.
    entry: String,
    /// Byte range within the storage.
    start: u64,
    len: u64,
}

/// A `torch.save` file: the archive and its unpickled object.
pub struct TorchFile<R> {
    archive: Archive<R>,
    prefix: String,
    pickle: Pickle,
    /// The state dict: `(key, value)` in file order.
    state: Vec<(String, Value)>,
    kind: FileKind,
}

impl<R: Read + Seek> TorchFile<R> {
    /// Reads the archive's directory and unpickles `data.pkl`; finds the state dict (the
    /// root dict, or its `state_dict` entry for a Lightning checkpoint).
    pub fn open(reader: R, len: u64) -> Result<Self> {
        let mut archive = Archive::open(reader, len)?;
        let pkls: Vec<String> = archive
            .names()
            .filter(|n| {
                n.strip_suffix("/data.pkl")
                    .is_some_and(|p| !p.is_empty() && !p.contains('/'))
            })
            .map(str::to_string)
            .collect();
        let pkl = match &pkls[..] {
            [one] => one.clone(),
            [] => {
                return bad(if archive.names().any(|n| n.ends_with("/constants.pkl")) {
                    "a TorchScript archive (torch.jit.save), not a torch.save file"
                } else {
                    "a zip archive without <name>/data.pkl: not a torch.save file"
                })
            }
            _ => return bad("a zip archive with several <name>/data.pkl entries"),
        };
        let prefix = pkl.trim_end_matches("data.pkl").to_string();
        let byteorder = format!("{prefix}byteorder");
        if let Some(size) = archive.size(&byteorder) {
            if size > 16 {
                return bad("the byteorder entry is not 'little' or 'big'");
            }
            let b = archive.read(&byteorder)?;
            match &b[..] {
                b"little" => {}
                b"big" => {
                    return bad("a big-endian file (byteorder 'big'), which is not supported")
                }
                _ => return bad("the byteorder entry is not 'little' or 'big'"),
            }
        }
        let data = archive.read(&pkl)?;
        let pickle = unpickle(&data)?;
        drop(data);
        let Some(root) = pickle.dict(pickle.root) else {
            return bad(format!(
                "data.pkl holds {}, not a dict of tensors",
                pickle.describe(pickle.root)
            ));
        };
        let (dict, kind) = match pickle.get(root, "state_dict") {
            Some(sd) => match pickle.dict(sd) {
                Some(d) => (d, FileKind::Lightning),
                None => {
                    return bad(format!(
                        "the checkpoint's state_dict is {}, not a dict",
                        pickle.describe(sd)
                    ))
                }
            },
            None => (root, FileKind::StateDict),
        };
        let mut state = Vec::with_capacity(dict.len());
        let mut seen = std::collections::HashSet::new();
        for (k, v) in dict {
            let Some(key) = pickle.str(*k) else {
                return bad(format!(
                    "the state dict has a key that is {}, not a string",
                    pickle.describe(*k)
                ));
            };
            if key.chars().any(char::is_control) {
                return bad(format!(
                    "the state dict key {} holds control characters",
                    show(key)
                ));
            }
            if !seen.insert(key) {
                return bad(format!("the state dict key {} appears twice", show(key)));
            }
            state.push((key.to_string(), *v));
        }
        drop(seen);
        Ok(Self {
            archive,
            prefix,
            pickle,
            state,
            kind,
        })
    }

    /// Whether the state dict came from a Lightning checkpoint.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The state dict's keys and what each value is (`"a tensor"`, `"a dict"`, ...).
    #[cfg(any(test, feature = "testing"))]
    pub fn entries(&self) -> Vec<(String, String)> {
        self.state
            .iter()
            .map(|(k, v)| (k.clone(), self.pickle.describe(*v)))
            .collect()
    }

    fn place(&self, key: &str, out: String, v: Value) -> Result<Placed> {
        let name = show(key);
        let t = match self.pickle.obj(v) {
            Some(Obj::Tensor(t)) => t,
            _ => {
                return bad(format!(
                    "state dict entry {name} is {}, not a tensor",
                    self.pickle.describe(v)
                ))
            }
        };
        let global = |i: usize| match self.pickle.objs.get(i) {
            Some(Obj::Global(g)) => Some((g.module.as_str(), g.name.as_str())),
            _ => None,
        };
        let Some((_, storage_elem)) = global(t.storage.kind).and_then(|(m, n)| storage_dtype(m, n))
        else {
            return bad(format!(
                "tensor {name}: storage type {} is not supported",
                self.pickle.global_name(t.storage.kind)
            ));
        };
        let (dtype, elem) = match t.dtype {
            None => global(t.storage.kind).and_then(|(m, n)| storage_dtype(m, n)),
            Some(d) => global(d).and_then(|(m, n)| torch_dtype(m, n)),
        }
        .ok_or_else(|| {
            PtError::Format(format!(
                "tensor {name}: dtype {} is not supported",
                t.dtype
                    .map_or_else(String::new, |d| self.pickle.global_name(d))
            ))
        })?;
        let key_str = self.pickle.str(Value::Obj(t.storage.key)).unwrap_or("");
        let mut shape = Vec::with_capacity(t.size.len());
        let mut numel: u64 = 1;
        for &d in &t.size {
            let Ok(d) = u64::try_from(d) else {
                return bad(format!("tensor {name}: negative size {:?}", t.size));
            };
            numel = match numel.checked_mul(d) {
                Some(n) => n,
                None => return bad(format!("tensor {name}: size {:?} overflows", t.size)),
            };
            shape.push(d as usize);
        }
        if numel > 0 {
            let mut expected: i64 = 1;
            for (&s, &st) in t.size.iter().zip(&t.stride).rev() {
                if s != 1 && st != expected {
                    return bad(format!(
                        "tensor {name} is not contiguous (size {:?}, stride {:?}): save it with .contiguous()",
                        t.size, t.stride
                    ));
                }
                expected = expected.saturating_mul(s);
            }
        }
        let (Ok(offset), Ok(storage_numel)) =
            (u64::try_from(t.offset), u64::try_from(t.storage.numel))
        else {
            return bad(format!("tensor {name}: negative storage offset or length"));
        };
        let Some(storage_bytes) = storage_numel.checked_mul(storage_elem) else {
            return bad(format!("tensor {name}: storage length overflows"));
        };
        let (start, len) = (offset.checked_mul(elem), numel.checked_mul(elem));
        let end = start.zip(len).and_then(|(s, l)| s.checked_add(l));
        let Some(((start, len), _)) = start.zip(len).zip(end).filter(|(_, e)| *e <= storage_bytes)
        else {
            return bad(format!(
                "tensor {name} needs elements {offset}..{} of storage {}, which has {}",
                offset.saturating_add(numel),
                show(key_str),
                storage_bytes / elem
            ));
        };
        let entry = format!("{}data/{key_str}", self.prefix);
        let Some(stored) = self.archive.size(&entry) else {
            return bad(format!(
                "tensor {name}: its storage {} is not in the archive",
                show(key_str)
            ));
        };
        if storage_bytes != stored {
            return bad(format!(
                "tensor {name}: storage {} holds {stored} bytes, but the pickle declares {storage_numel} elements of {storage_elem} bytes",
                show(key_str)
            ));
        }
        Ok(Placed {
            name: out,
            dtype,
            shape,
            entry,
            start,
            len,
        })
    }

    /// The state dict as safetensors bytes: every entry for which `rename(key)` gives a name
    /// (which must be a tensor, and is checked), under that name; the others are dropped.
    pub fn into_safetensors(mut self, rename: impl Fn(&str) -> Option<String>) -> Result<Vec<u8>> {
        let mut placed = Vec::new();
        for (key, v) in &self.state {
            if let Some(out) = rename(key) {
                placed.push(self.place(key, out, *v)?);
            }
        }
        placed.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = placed.windows(2).find(|w| w[0].name == w[1].name) {
            return bad(format!(
                "two state dict entries become {}",
                show(&w[0].name)
            ));
        }
        // Every storage's declarations must agree (one dtype, one length per entry).
        let mut storages: HashMap<&str, Dtype> = HashMap::new();
        for p in &placed {
            if *storages.entry(p.entry.as_str()).or_insert(p.dtype) != p.dtype {
                return bad(format!(
                    "storage {} is read as two different types",
                    show(&p.entry)
                ));
            }
        }
        drop(storages);
        // Tensors may share a storage (a tied head: GPT-2's `lm_head.weight` is
        // `transformer.wte.weight` in ClipCap's published files), and each is copied out; so
        // that aliases cannot blow up memory, the copies may need at most twice the bytes the
        // file's storages hold.
        let stored: u64 = self
            .archive
            .entries
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{}data/", self.prefix)))
            .map(|(_, e)| e.size)
            .fold(0u64, u64::saturating_add);
        let total = placed.iter().map(|p| p.len).fold(0u64, u64::saturating_add);
        if total > stored.saturating_mul(2) {
            return bad(format!(
                "the kept tensors need {total} bytes, more than twice what the file's storages hold ({stored}): too many tensors share storage"
            ));
        }
        let mut header = serde_json::Map::new();
        let mut at = 0u64;
        for p in &placed {
            header.insert(
                p.name.clone(),
                serde_json::json!({
                    "dtype": p.dtype,
                    "shape": p.shape,
                    "data_offsets": [at, at + p.len],
                }),
            );
            at += p.len;
        }
        let mut header = serde_json::Value::Object(header).to_string().into_bytes();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let Ok(total_usize) = usize::try_from(total) else {
            return bad("too large for this machine");
        };
        let base = 8 + header.len();
        let mut out = Vec::with_capacity(base + total_usize);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.resize(base + total_usize, 0);
        // Read each storage once, copy its tensors out.
        let mut by_entry: BTreeMap<&str, Vec<(usize, &Placed)>> = BTreeMap::new();
        let mut at = base;
        for p in &placed {
            by_entry.entry(&p.entry).or_default().push((at, p));
            at += p.len as usize;
        }
        for (entry, tensors) in by_entry {
            let data = self.archive.read(entry)?;
            for (dst, p) in tensors {
                let (s, n) = (p.start as usize, p.len as usize);
                match (data.get(s..s + n), out.get_mut(dst..dst + n)) {
                    (Some(src), Some(dst)) => dst.copy_from_slice(src),
                    _ => {
                        return bad(format!(
                            "tensor {}: its bytes lie outside storage {}",
                            show(&p.name),
                            show(entry)
                        ))
                    }
                }
            }
        }
        Ok(out)
    }
}
