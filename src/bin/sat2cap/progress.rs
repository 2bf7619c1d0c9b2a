//! Progress bars on stderr with rate and ETA (drawn only when stderr is a terminal): the
//! tool's [`Progress`] observer.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sat2cap::{Progress, Unit};

fn styled(label: &str, len: Option<u64>, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(label.to_string());
    pb
}

fn bar(label: &str, total: Option<u64>, unit: Unit) -> ProgressBar {
    match unit {
        Unit::Items => styled(
            label,
            total,
            "{prefix:>16} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        ),
        Unit::Bytes => styled(
            label,
            total,
            "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        // A step whose parts are large (a compaction): redrawn every 200 ms so the elapsed
        // time moves.
        Unit::Rows => {
            let pb = styled(
                label,
                total,
                "{prefix:>16} {spinner} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta} ({elapsed})",
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            pb
        }
    }
}

/// Where notes go: stderr (warnings, narration next to a JSON report) or stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notes {
    /// On stderr, as `sat2cap: ...` lines.
    Stderr,
    /// On stdout, as they are (the demo's narration).
    Stdout,
    /// On stderr, as they are (the demo's narration next to its JSON report).
    #[cfg(feature = "encoders")]
    StderrPlain,
}

/// Draws one bar per step of the library's progress.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
    notes: Notes,
}

impl Bars {
    /// Bars, with notes going to `notes`.
    pub fn new(notes: Notes) -> Bars {
        Bars {
            current: Mutex::new(None),
            notes,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Option<ProgressBar>) -> T) -> T {
        match self.current.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

impl Progress for Bars {
    fn begin(&self, step: &str, total: Option<u64>, unit: Unit) {
        self.with(|c| {
            if let Some(old) = c.take() {
                old.finish_and_clear();
            }
            *c = Some(bar(step, total, unit));
        });
    }

    fn advance(&self, n: u64) {
        self.with(|c| {
            if let Some(pb) = c {
                pb.inc(n);
            }
        });
    }

    fn end(&self) {
        self.with(|c| {
            if let Some(pb) = c.take() {
                pb.finish_and_clear();
            }
        });
    }

    fn note(&self, message: &str) {
        let print = || match self.notes {
            Notes::Stderr => crate::output::err_line(&format!("sat2cap: {message}")),
            #[cfg(feature = "encoders")]
            Notes::StderrPlain => crate::output::err_line(message),
            Notes::Stdout => crate::output::line(message),
        };
        self.with(|c| match c {
            Some(pb) => pb.suspend(print),
            None => print(),
        });
    }
}
