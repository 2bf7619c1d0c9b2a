//! The pickle VM's data model and state: [`Value`]s on the stack, [`Obj`]ects in an arena,
//! the [`Budget`] bounding its work, the VM's reading and stack primitives, what it makes of
//! the torch globals it understands (tensors, storages, `OrderedDict`) and of every other
//! (a placeholder), [`unpickle`], and the [`Pickle`] it returns. The opcodes are in
//! [`super::pickle_ops`].

use std::collections::HashMap;

use super::archive::{le16, le32, le64};
use super::{bad, show, Result};

/// A value on the pickle stack: scalars inline, everything else an index into the arena
/// (so copies are O(1), shared objects stay shared, and cycles cannot leak).
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Obj(usize),
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StorageRef {
    /// Arena index of the key string.
    pub(super) key: usize,
    /// Arena index of the storage type's global.
    pub(super) kind: usize,
    pub(super) numel: i64,
}

#[derive(Debug, Clone)]
pub(super) struct TensorRef {
    pub(super) storage: StorageRef,
    /// `_rebuild_tensor_v3`'s dtype (a global such as `torch.uint16`), over an untyped
    /// storage; otherwise the storage type gives the dtype.
    pub(super) dtype: Option<usize>,
    pub(super) offset: i64,
    pub(super) size: Vec<i64>,
    pub(super) stride: Vec<i64>,
}

#[derive(Debug)]
pub(super) enum Obj {
    Str(String),
    Bytes,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Box<Global>),
    Storage(StorageRef),
    Tensor(Box<TensorRef>),
    /// Anything we do not build: an object made by calling (or instantiating) the global at
    /// that arena index, a set, an integer beyond 64 bits, ...
    Opaque(Opaque),
}

/// `module.name` of a global (boxed in [`Obj`], which stays 32 bytes: a pickle's every byte
/// can make an object).
#[derive(Debug)]
pub(super) struct Global {
    pub(super) module: String,
    pub(super) name: String,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Opaque {
    Object(usize),
    Unknown,
    Set,
    BigInt,
    PersistentId,
}

/// The globals whose calls the VM understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildTensor,
    RebuildParameter,
    RebuildFromTypeV2,
    OrderedDict,
    Dict,
    Other,
}

/// Bounds the VM's work and memory: every object, string byte and copied element is charged
/// against a budget proportional to the pickle's length, so a small hostile pickle cannot
/// build large structures (for example by copying a memoised tuple into many tensors).
#[derive(Debug)]
pub(super) struct Budget(usize);

impl Budget {
    pub(super) fn charge(&mut self, n: usize, pos: usize) -> Result<()> {
        match self.0.checked_sub(n.saturating_add(1)) {
            Some(left) => {
                self.0 = left;
                Ok(())
            }
            None => bad(format!(
                "data.pkl: builds more than a pickle of its size can legitimately hold (at byte {pos})"
            )),
        }
    }
}

pub(super) struct Vm<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) stack: Vec<Value>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u32, Value>,
    pub(super) objs: Vec<Obj>,
    pub(super) empty_tuple: Option<Value>,
    pub(super) budget: Budget,
}

/// The result of unpickling: the root value and the arena it points into.
pub struct Pickle {
    pub(super) root: Value,
    pub(super) objs: Vec<Obj>,
}

impl<'a> Vm<'a> {
    pub(super) fn err<T>(&self, what: impl std::fmt::Display) -> Result<T> {
        bad(format!("data.pkl: {what} (at byte {})", self.pos))
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.err("the pickle ends without STOP"),
        }
    }

    pub(super) fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return self.err(format!("{n} bytes wanted, {left} left"));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        Ok(le16(self.take(2)?, 0))
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(le32(self.take(4)?, 0))
    }

    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(le64(self.take(8)?, 0))
    }

    /// A text argument up to `\n` (protocol 0 opcodes).
    pub(super) fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("a text argument without its newline");
        };
        self.pos += n + 1;
        match std::str::from_utf8(&rest[..n]) {
            Ok(s) => Ok(s),
            Err(_) => self.err("a text argument that is not UTF-8"),
        }
    }

    pub(super) fn new_obj(&mut self, o: Obj, size: usize) -> Result<Value> {
        self.budget.charge(size, self.pos)?;
        self.objs.push(o);
        Ok(Value::Obj(self.objs.len() - 1))
    }

    pub(super) fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    pub(super) fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return self.err("stack underflow");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    pub(super) fn top(&self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return self.err("stack underflow");
        }
        match self.stack.last() {
            Some(&v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    pub(super) fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(m) = self.marks.pop() else {
            return self.err("no MARK to pop to");
        };
        if m > self.stack.len() {
            return self.err("stack underflow");
        }
        Ok(self.stack.split_off(m))
    }

    pub(super) fn str(&mut self, bytes: &[u8]) -> Result<Value> {
        let s = String::from_utf8_lossy(bytes).into_owned();
        let n = s.len();
        self.new_obj(Obj::Str(s), n)
    }

    pub(super) fn as_str(&self, v: Value) -> Option<&str> {
        match v {
            Value::Obj(i) => match self.objs.get(i) {
                Some(Obj::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    fn tuple(&self, v: Value) -> Option<&[Value]> {
        match v {
            Value::Obj(i) => match self.objs.get(i) {
                Some(Obj::Tuple(t)) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn known(&self, v: Value) -> Option<Known> {
        let Value::Obj(i) = v else { return None };
        let Some(Obj::Global(g)) = self.objs.get(i) else {
            return None;
        };
        Some(match (g.module.as_str(), g.name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") => Known::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor_v3") => Known::RebuildTensorV3,
            ("torch._utils", "_rebuild_tensor") => Known::RebuildTensor,
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => Known::RebuildParameter,
            ("torch._tensor", "_rebuild_from_type_v2") => Known::RebuildFromTypeV2,
            ("collections", "OrderedDict") => Known::OrderedDict,
            ("builtins", "dict") | ("__builtin__", "dict") => Known::Dict,
            _ => Known::Other,
        })
    }

    pub(super) fn opaque_of(&mut self, callable: Value) -> Result<Value> {
        let o = match callable {
            Value::Obj(i) if matches!(self.objs.get(i), Some(Obj::Global(_))) => Opaque::Object(i),
            _ => Opaque::Unknown,
        };
        self.new_obj(Obj::Opaque(o), 0)
    }

    /// `callable(*args)` for the globals we understand, a placeholder for every other.
    pub(super) fn reduce(&mut self, callable: Value, args: Value, depth: u32) -> Result<Value> {
        match self.known(callable) {
            Some(Known::RebuildTensorV2) | Some(Known::RebuildTensor) => {
                self.rebuild_tensor(args, false)
            }
            Some(Known::RebuildTensorV3) => self.rebuild_tensor(args, true),
            Some(Known::RebuildParameter) => match self.tuple(args).and_then(|t| t.first()) {
                Some(&data) => Ok(data),
                None => self.err("_rebuild_parameter without arguments"),
            },
            Some(Known::RebuildFromTypeV2) => {
                // (func, new_type, args, state): the tensor is func(*args).
                let (func, fargs) = match self.tuple(args) {
                    Some([func, _, fargs, ..]) => (*func, *fargs),
                    _ => return self.err("malformed _rebuild_from_type_v2 arguments"),
                };
                if depth > 4 {
                    return self.err("_rebuild_from_type_v2 nested too deeply");
                }
                self.reduce(func, fargs, depth + 1)
            }
            Some(Known::OrderedDict) | Some(Known::Dict) => {
                // OrderedDict() or OrderedDict([(key, value), ...]).
                let mut items = Vec::new();
                if let Some(&first) = self.tuple(args).and_then(|t| t.first()) {
                    let len = match first {
                        Value::Obj(i) => match self.objs.get(i) {
                            Some(Obj::List(l)) | Some(Obj::Tuple(l)) => l.len(),
                            _ => 0,
                        },
                        _ => 0,
                    };
                    self.budget.charge(len, self.pos)?;
                    let list: Vec<Value> = match first {
                        Value::Obj(i) => match self.objs.get(i) {
                            Some(Obj::List(l)) | Some(Obj::Tuple(l)) => l.clone(),
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    for item in list {
                        if let Some(&[k, v]) = self.tuple(item) {
                            items.push((k, v));
                        } else if let Value::Obj(i) = item {
                            if let Some(Obj::List(l)) = self.objs.get(i) {
                                if let [k, v] = l[..] {
                                    items.push((k, v));
                                }
                            }
                        }
                    }
                }
                let n = items.len();
                self.new_obj(Obj::Dict(items), n)
            }
            _ => self.opaque_of(callable),
        }
    }

    fn ints(&self, v: Value, what: &str) -> Result<Vec<i64>> {
        let Some(t) = self.tuple(v) else {
            return self.err(format!("tensor {what} is not a tuple"));
        };
        t.iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                _ => self.err(format!("tensor {what} holds a non-integer")),
            })
            .collect()
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`, the legacy 4-argument `_rebuild_tensor`, and (`v3`)
    /// `_rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad,
    /// backward_hooks, dtype[, metadata])`, which torch writes over an untyped storage for
    /// dtypes without a storage class of their own (uint16, float8, ...).
    fn rebuild_tensor(&mut self, args: Value, v3: bool) -> Result<Value> {
        let dtype = if v3 {
            match self.tuple(args).and_then(|t| t.get(6)) {
                Some(&Value::Obj(i)) if matches!(self.objs.get(i), Some(Obj::Global(_))) => Some(i),
                _ => return self.err("_rebuild_tensor_v3 without a dtype"),
            }
        } else {
            None
        };
        let (storage, offset, size, stride) = match self.tuple(args) {
            Some([storage, offset, size, stride, ..]) => (*storage, *offset, *size, *stride),
            _ => return self.err("malformed _rebuild_tensor_v2 arguments"),
        };
        let storage = match storage {
            Value::Obj(i) => match self.objs.get(i) {
                Some(Obj::Storage(s)) => *s,
                _ => return self.err("_rebuild_tensor_v2 over something that is not a storage"),
            },
            _ => return self.err("_rebuild_tensor_v2 over something that is not a storage"),
        };
        let Value::Int(offset) = offset else {
            return self.err("tensor storage offset is not an integer");
        };
        let size = self.ints(size, "size")?;
        let stride = self.ints(stride, "stride")?;
        if size.len() != stride.len() {
            return self.err(format!(
                "tensor with {} sizes and {} strides",
                size.len(),
                stride.len()
            ));
        }
        let n = size.len() + stride.len();
        self.new_obj(
            Obj::Tensor(Box::new(TensorRef {
                storage,
                dtype,
                offset,
                size,
                stride,
            })),
            n,
        )
    }

    /// A persistent id: torch's storage tuples, a placeholder for anything else.
    pub(super) fn persistent(&mut self, pid: Value) -> Result<Value> {
        if let Some(&[tag, kind, key, _location, numel]) = self.tuple(pid) {
            let is_storage = self.as_str(tag) == Some("storage");
            let kind_ok =
                matches!(kind, Value::Obj(i) if matches!(self.objs.get(i), Some(Obj::Global(_))));
            if let (true, true, Value::Obj(k), Some(_), Value::Int(numel)) =
                (is_storage, kind_ok, key, self.as_str(key), numel)
            {
                if let Value::Obj(kind) = kind {
                    return self.new_obj(
                        Obj::Storage(StorageRef {
                            key: k,
                            kind,
                            numel,
                        }),
                        0,
                    );
                }
            }
        }
        self.new_obj(Obj::Opaque(Opaque::PersistentId), 0)
    }
}

/// Unpickles `data` without executing anything.
pub(super) fn unpickle(data: &[u8]) -> Result<Pickle> {
    Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objs: Vec::new(),
        empty_tuple: None,
        budget: Budget(data.len().saturating_mul(8).saturating_add(4096)),
    }
    .run()
}

impl Pickle {
    pub(super) fn obj(&self, v: Value) -> Option<&Obj> {
        match v {
            Value::Obj(i) => self.objs.get(i),
            _ => None,
        }
    }

    pub(super) fn str(&self, v: Value) -> Option<&str> {
        match self.obj(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub(super) fn dict(&self, v: Value) -> Option<&[(Value, Value)]> {
        match self.obj(v) {
            Some(Obj::Dict(d)) => Some(d),
            _ => None,
        }
    }

    pub(super) fn global_name(&self, i: usize) -> String {
        match self.objs.get(i) {
            Some(Obj::Global(g)) => show(&format!("{}.{}", g.module, g.name)),
            _ => "?".into(),
        }
    }

    /// What a value is, for messages.
    pub(super) fn describe(&self, v: Value) -> String {
        match v {
            Value::None => "None".into(),
            Value::Bool(b) => format!("the bool {b}"),
            Value::Int(i) => format!("the int {i}"),
            Value::Float(f) => format!("the float {f}"),
            Value::Obj(_) => match self.obj(v) {
                Some(Obj::Str(_)) => "a string".into(),
                Some(Obj::Bytes) => "bytes".into(),
                Some(Obj::Tuple(_)) => "a tuple".into(),
                Some(Obj::List(_)) => "a list".into(),
                Some(Obj::Dict(_)) => "a dict".into(),
                Some(Obj::Global(_)) => match v {
                    Value::Obj(i) => format!("the global {}", self.global_name(i)),
                    _ => "a global".into(),
                },
                Some(Obj::Storage(_)) => "a bare storage".into(),
                Some(Obj::Tensor(_)) => "a tensor".into(),
                Some(Obj::Opaque(Opaque::Object(g))) => {
                    format!("an object made by {} (not run)", self.global_name(*g))
                }
                Some(Obj::Opaque(Opaque::Set)) => "a set".into(),
                Some(Obj::Opaque(Opaque::BigInt)) => "an integer beyond 64 bits".into(),
                Some(Obj::Opaque(Opaque::PersistentId)) => "an unknown persistent id".into(),
                Some(Obj::Opaque(Opaque::Unknown)) | None => "an unknown object".into(),
            },
        }
    }

    /// The last value under a string key of a dict.
    pub(super) fn get(&self, dict: &[(Value, Value)], key: &str) -> Option<Value> {
        dict.iter()
            .rev()
            .find(|(k, _)| self.str(*k) == Some(key))
            .map(|(_, v)| *v)
    }
}
