//! Standard output and standard error that never panic: a closed pipe or a full disk on
//! stdout is remembered and reported once at exit (exit code 1), instead of `println!`'s
//! panic; a failed write to stderr is dropped (there is nowhere left to say it). When the
//! command committed something before the output failed, the report says so.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static FAILED: OnceLock<String> = OnceLock::new();
static COMMITTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Writes `text` and a newline to stdout.
pub fn line(text: &str) {
    if FAILED.get().is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}") {
        let _ = FAILED.set(e.to_string());
    }
}

/// Writes `text` and a newline to stderr, ignoring failure.
pub fn err_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Records that the command committed `what` (e.g. "the import of 2000 rows into 'c'"): an
/// output failure after it says that it is committed all the same.
pub fn committed(what: String) {
    match COMMITTED.lock() {
        Ok(mut v) => v.push(what),
        Err(p) => p.into_inner().push(what),
    }
}

/// Flushes stdout; the first write error, if any, as the message to print.
pub fn finish() -> Result<(), String> {
    if let Err(e) = std::io::stdout().lock().flush() {
        let _ = FAILED.set(e.to_string());
    }
    match FAILED.get() {
        Some(e) => {
            let done = match COMMITTED.lock() {
                Ok(v) => v.clone(),
                Err(p) => p.into_inner().clone(),
            };
            Err(if done.is_empty() {
                format!("cannot write the output: {e}")
            } else {
                format!(
                    "cannot write the output: {e} ({} committed all the same)",
                    done.join(", ")
                )
            })
        }
        None => Ok(()),
    }
}

/// `println!` through [`line`].
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::line(&format!($($t)*))
    };
}
pub(crate) use out;

/// `eprintln!` through [`err_line`].
macro_rules! note {
    ($($t:tt)*) => {
        $crate::output::err_line(&format!($($t)*))
    };
}
pub(crate) use note;
