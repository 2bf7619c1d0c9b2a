//! Standard output that never panics: a closed pipe or a full disk is remembered and
//! reported once at exit (exit code 1), instead of `println!`'s panic.

use std::io::Write;
use std::sync::OnceLock;

static FAILED: OnceLock<String> = OnceLock::new();

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

/// Flushes stdout; the first write error, if any.
pub fn finish() -> Result<(), String> {
    if let Err(e) = std::io::stdout().lock().flush() {
        let _ = FAILED.set(e.to_string());
    }
    match FAILED.get() {
        Some(e) => Err(e.clone()),
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
