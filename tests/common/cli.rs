//! Driving the real `sat2cap` binary from a test, and the outside tools the GIS tests
//! check files with. Included by path (`#[path = "common/cli.rs"] mod cli;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The path of a command-line tool, or `None` (with a note) when it is missing; a missing
/// tool fails the test instead when `SAT2CAP_REQUIRE_TOOLS` is set (as CI sets it).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SAT2CAP_REQUIRE_TOOLS").is_none(),
            "{name} is required (SAT2CAP_REQUIRE_TOOLS is set): see .ci/run"
        );
        eprintln!("note: {name} not found; the check that needs it is skipped");
    }
    found
}

/// Runs `sat2cap` in `dir` with the tiny test encoders and no weights from the environment.
pub fn sat2cap(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sat2cap"))
        .args(args)
        .current_dir(dir)
        .env("SAT2CAP_TINY_MODEL", "1")
        .env_remove("SAT2CAP_WEIGHTS")
        .output()
        .expect("run sat2cap")
}

/// Runs a command that must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = sat2cap(dir, args);
    assert!(
        o.status.success(),
        "sat2cap {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command that must fail with exit 2, its stderr holding every `want`.
pub fn fails(dir: &Path, args: &[&str], want: &[&str]) {
    let o = sat2cap(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "sat2cap {args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "sat2cap {args:?}: '{w}' not in {err}");
    }
}

/// Parses JSON, or fails naming the text.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}
