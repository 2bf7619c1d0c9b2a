//! The Python literal subset an `.npy` header is written in: a dict of strings, integers,
//! booleans, `None`, tuples and lists, parsed as Python would read it (not by searching for
//! substrings), with the byte offset of whatever is not.

/// A value of the Python literal subset an `.npy` header uses.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Str(String),
    /// The digits, as written (an optional `-` then ASCII digits).
    Int(String),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
}

impl Literal {
    /// The value as Python would print it.
    pub(super) fn show(&self) -> String {
        let items = |v: &[Literal]| v.iter().map(Literal::show).collect::<Vec<_>>().join(", ");
        match self {
            Literal::Str(s) => format!("'{s}'"),
            Literal::Int(n) => n.clone(),
            Literal::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Literal::None => "None".to_string(),
            Literal::Tuple(v) if v.len() == 1 => format!("({},)", items(v)),
            Literal::Tuple(v) => format!("({})", items(v)),
            Literal::List(v) => format!("[{}]", items(v)),
        }
    }
}

/// Where (byte offset in the header text) and why the header is not a dict literal.
#[derive(Debug)]
pub(super) struct LiteralError {
    pub(super) at: usize,
    pub(super) what: String,
}

/// Nesting allowed in a header value (numpy writes depth 2 at most: a dict of tuples).
const MAX_DEPTH: usize = 16;

/// A cursor over the header text.
struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn err<T>(&self, what: impl Into<String>) -> Result<T, LiteralError> {
        Err(LiteralError {
            at: self.pos,
            what: what.into(),
        })
    }

    fn skip_space(&mut self) {
        while self
            .text
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), LiteralError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected '{}'", c as char))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, LiteralError> {
        if depth > MAX_DEPTH {
            return self.err("values nested too deeply");
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => {
                self.pos += 1;
                let (items, trailing) = self.items(b')', depth)?;
                if items.len() == 1 && !trailing {
                    // `(x)` is x in Python, not a tuple.
                    return Ok(items.into_iter().next().unwrap_or(Literal::None));
                }
                Ok(Literal::Tuple(items))
            }
            Some(b'[') => {
                self.pos += 1;
                Ok(Literal::List(self.items(b']', depth)?.0))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let from = self.pos;
                self.pos += 1;
                while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.text[from..self.pos]).unwrap_or("");
                if digits == "-" {
                    return self.err("a '-' without digits");
                }
                Ok(Literal::Int(digits.to_string()))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let from = self.pos;
                while self
                    .text
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.pos += 1;
                }
                match &self.text[from..self.pos] {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::None),
                    w => {
                        self.pos = from;
                        self.err(format!("unknown name {}", String::from_utf8_lossy(w)))
                    }
                }
            }
            Some(c) => self.err(format!("unexpected '{}'", c as char)),
            None => self.err("the header ends inside a value"),
        }
    }

    /// Comma-separated values up to `close`; whether a comma trailed the last one.
    fn items(&mut self, close: u8, depth: usize) -> Result<(Vec<Literal>, bool), LiteralError> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing));
            }
            items.push(self.value(depth + 1)?);
            trailing = false;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing = true;
                }
                Some(c) if c == close => {}
                _ => return self.err(format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    /// A quoted string (no escapes: numpy's keys and dtypes have none).
    fn string(&mut self, quote: u8) -> Result<Literal, LiteralError> {
        let from = self.pos + 1;
        let Some(len) = self.text[from..].iter().position(|&c| c == quote) else {
            return self.err("string not closed");
        };
        let raw = &self.text[from..from + len];
        if raw.contains(&b'\\') {
            return self.err("escapes in strings are not supported");
        }
        self.pos = from + len + 1;
        Ok(Literal::Str(String::from_utf8_lossy(raw).into_owned()))
    }
}

/// Parses a header's Python dict literal, such as
/// `{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }` followed by spaces and a
/// newline: keys are strings, each at most once; nothing may follow the closing brace.
pub(super) fn parse_dict(text: &str) -> Result<Vec<(String, Literal)>, LiteralError> {
    let mut lx = Lexer {
        text: text.as_bytes(),
        pos: 0,
    };
    lx.expect(b'{')?;
    let mut out: Vec<(String, Literal)> = Vec::new();
    loop {
        if lx.peek() == Some(b'}') {
            lx.pos += 1;
            break;
        }
        let key_at = lx.pos;
        let key = match lx.value(1)? {
            Literal::Str(k) => k,
            other => {
                lx.pos = key_at;
                return lx.err(format!("key {} is not a string", other.show()));
            }
        };
        if out.iter().any(|(k, _)| *k == key) {
            lx.pos = key_at;
            return lx.err(format!("key '{key}' appears twice"));
        }
        lx.expect(b':')?;
        let v = lx.value(1)?;
        out.push((key, v));
        match lx.peek() {
            Some(b',') => lx.pos += 1,
            Some(b'}') => {}
            _ => return lx.err("expected ',' or '}'"),
        }
    }
    if lx.peek().is_some() {
        return lx.err("text after the closing '}'");
    }
    Ok(out)
}
