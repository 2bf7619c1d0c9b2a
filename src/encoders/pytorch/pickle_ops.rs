//! The pickle VM's opcodes: [`Vm::run`]'s dispatch loop (protocols 0 to 5, the copyreg
//! extension registry and out-of-band buffers refused) and its helpers for integers, the memo
//! and filling lists and dicts.

use super::pickle::{Global, Known, Obj, Opaque, Pickle, Value, Vm};
use super::{show, Result};

impl Vm<'_> {
    fn big_int(&mut self, bytes: &[u8]) -> Result<Value> {
        if bytes.len() <= 8 {
            let mut a = [0u8; 8];
            a[..bytes.len()].copy_from_slice(bytes);
            if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                for x in &mut a[bytes.len()..] {
                    *x = 0xff;
                }
            }
            Ok(Value::Int(i64::from_le_bytes(a)))
        } else {
            self.new_obj(Obj::Opaque(Opaque::BigInt), 0)
        }
    }

    fn text_int(&mut self, s: &str) -> Result<Value> {
        let s = s.trim_end_matches('L');
        match s {
            "00" => return Ok(Value::Bool(false)),
            "01" => return Ok(Value::Bool(true)),
            _ => {}
        }
        match s.parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_)
                if !s.is_empty()
                    && s.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                self.new_obj(Obj::Opaque(Opaque::BigInt), 0)
            }
            Err(_) => self.err(format!("bad integer {}", show(s))),
        }
    }

    fn memo_get(&mut self, idx: u32) -> Result<()> {
        match self.memo.get(&idx) {
            Some(&v) => {
                self.push(v);
                Ok(())
            }
            None => self.err(format!("memo entry {idx} was never stored")),
        }
    }

    fn memo_put(&mut self, idx: u32) -> Result<()> {
        let v = self.top()?;
        self.budget.charge(0, self.pos)?;
        self.memo.insert(idx, v);
        Ok(())
    }

    fn set_items(&mut self, target: Value, pairs: Vec<Value>) -> Result<()> {
        if !pairs.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of values");
        }
        if let Value::Obj(i) = target {
            if let Some(Obj::Dict(d)) = self.objs.get_mut(i) {
                d.extend(pairs.chunks_exact(2).map(|p| (p[0], p[1])));
                return Ok(());
            }
        }
        // Items of an object we do not model (a dict subclass such as Lightning's
        // AttributeDict): dropped.
        Ok(())
    }

    fn append(&mut self, target: Value, values: Vec<Value>) {
        if let Value::Obj(i) = target {
            if let Some(Obj::List(l)) = self.objs.get_mut(i) {
                l.extend(values);
            }
        }
    }

    pub(super) fn run(mut self) -> Result<Pickle> {
        loop {
            let op = self.byte()?;
            match op {
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        root,
                        objs: self.objs,
                    });
                }
                0x80 => {
                    let v = self.byte()?;
                    if v > 5 {
                        return self.err(format!("pickle protocol {v}"));
                    }
                }
                0x95 => {
                    self.u64()?;
                }
                b'(' => {
                    self.budget.charge(0, self.pos)?;
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.budget.charge(0, self.pos)?;
                    self.push(v);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'I' | b'L' => {
                    let s = self.line()?;
                    let v = self.text_int(s)?;
                    self.push(v);
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.byte()?;
                    let b = self.take(u64::from(n))?;
                    let v = self.big_int(b)?;
                    self.push(v);
                }
                0x8b => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return self.err("LONG4 with a negative length");
                    }
                    let b = self.take(n as u64)?;
                    let v = self.big_int(b)?;
                    self.push(v);
                }
                b'F' => {
                    let s = self.line()?;
                    match s.trim().parse::<f64>() {
                        Ok(f) => self.push(Value::Float(f)),
                        Err(_) => return self.err(format!("bad float {}", show(s))),
                    }
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'S' | b'V' => {
                    // Protocol 0 strings: kept as written (quotes and escapes not undone).
                    let s = self.line()?;
                    let s = s.trim_matches(|c| c == '\'' || c == '"');
                    let v = self.str(s.as_bytes())?;
                    self.push(v);
                }
                b'T' | b'X' | b'B' => {
                    let n = self.u32()?;
                    let b = self.take(u64::from(n))?;
                    let v = if op == b'B' {
                        self.new_obj(Obj::Bytes, 0)?
                    } else {
                        self.str(b)?
                    };
                    self.push(v);
                }
                b'U' | 0x8c | b'C' => {
                    let n = self.byte()?;
                    let b = self.take(u64::from(n))?;
                    let v = if op == b'C' {
                        self.new_obj(Obj::Bytes, 0)?
                    } else {
                        self.str(b)?
                    };
                    self.push(v);
                }
                0x8d | 0x8e | 0x96 => {
                    let n = self.u64()?;
                    let b = self.take(n)?;
                    let v = if op == 0x8d {
                        self.str(b)?
                    } else {
                        self.new_obj(Obj::Bytes, 0)?
                    };
                    self.push(v);
                }
                b')' => {
                    // Immutable: one shared empty tuple, as in Python.
                    let v = match self.empty_tuple {
                        Some(v) => v,
                        None => {
                            let v = self.new_obj(Obj::Tuple(Vec::new()), 0)?;
                            self.empty_tuple = Some(v);
                            v
                        }
                    };
                    self.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.new_obj(Obj::Tuple(items), 0)?;
                    self.push(v);
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.new_obj(Obj::Tuple(items), 0)?;
                    self.push(v);
                }
                b']' => {
                    let v = self.new_obj(Obj::List(Vec::new()), 0)?;
                    self.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.new_obj(Obj::List(items), 0)?;
                    self.push(v);
                }
                b'a' => {
                    let v = self.pop()?;
                    let target = self.top()?;
                    self.append(target, vec![v]);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.append(target, items);
                }
                b'}' => {
                    let v = self.new_obj(Obj::Dict(Vec::new()), 0)?;
                    self.push(v);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return self.err("DICT with an odd number of values");
                    }
                    let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                    let v = self.new_obj(Obj::Dict(pairs), 0)?;
                    self.push(v);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.set_items(target, items)?;
                }
                0x8f => {
                    let v = self.new_obj(Obj::Opaque(Opaque::Set), 0)?;
                    self.push(v);
                }
                0x90 => {
                    self.pop_mark()?;
                    self.top()?;
                }
                0x91 => {
                    self.pop_mark()?;
                    let v = self.new_obj(Obj::Opaque(Opaque::Set), 0)?;
                    self.push(v);
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    let n = module.len() + name.len();
                    let v = self.new_obj(Obj::Global(Box::new(Global { module, name })), n)?;
                    self.push(v);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.as_str(module), self.as_str(name))
                    else {
                        return self.err("STACK_GLOBAL without two strings");
                    };
                    let (module, name) = (module.to_string(), name.to_string());
                    let n = module.len() + name.len();
                    let v = self.new_obj(Obj::Global(Box::new(Global { module, name })), n)?;
                    self.push(v);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args, 0)?;
                    self.push(v);
                }
                b'b' => {
                    // The state sets attributes we do not model: the object stays as it is.
                    self.pop()?;
                    self.top()?;
                }
                0x81 => {
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    let v = match self.known(cls) {
                        Some(Known::OrderedDict) | Some(Known::Dict) => {
                            self.new_obj(Obj::Dict(Vec::new()), 0)?
                        }
                        _ => self.opaque_of(cls)?,
                    };
                    self.push(v);
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.opaque_of(cls)?;
                    self.push(v);
                }
                b'i' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.pop_mark()?;
                    let n = module.len() + name.len();
                    let cls = self.new_obj(Obj::Global(Box::new(Global { module, name })), n)?;
                    let v = self.opaque_of(cls)?;
                    self.push(v);
                }
                b'o' => {
                    let items = self.pop_mark()?;
                    let cls = items.first().copied().unwrap_or(Value::None);
                    let v = self.opaque_of(cls)?;
                    self.push(v);
                }
                b'p' => {
                    let s = self.line()?;
                    let Ok(idx) = s.parse::<u32>() else {
                        return self.err(format!("bad memo index {}", show(s)));
                    };
                    self.memo_put(idx)?;
                }
                b'q' => {
                    let idx = self.byte()?;
                    self.memo_put(u32::from(idx))?;
                }
                b'r' => {
                    let idx = self.u32()?;
                    self.memo_put(idx)?;
                }
                0x94 => {
                    let idx = self.memo.len() as u32;
                    self.memo_put(idx)?;
                }
                b'g' => {
                    let s = self.line()?;
                    let Ok(idx) = s.parse::<u32>() else {
                        return self.err(format!("bad memo index {}", show(s)));
                    };
                    self.budget.charge(0, self.pos)?;
                    self.memo_get(idx)?;
                }
                b'h' => {
                    let idx = self.byte()?;
                    self.memo_get(u32::from(idx))?;
                }
                b'j' => {
                    let idx = self.u32()?;
                    self.memo_get(idx)?;
                }
                b'P' => {
                    let s = self.line()?;
                    let pid = self.str(s.as_bytes())?;
                    let v = self.persistent(pid)?;
                    self.push(v);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v);
                }
                0x82..=0x84 => {
                    return self
                        .err("the copyreg extension registry (EXT opcodes) is not supported")
                }
                0x97 | 0x98 => {
                    return self.err("out-of-band buffers (pickle protocol 5) are not supported")
                }
                other => return self.err(format!("unknown pickle opcode 0x{other:02x}")),
            }
        }
    }
}
