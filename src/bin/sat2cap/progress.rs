//! Progress bars on stderr with rate and ETA (drawn only when stderr is a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn styled(label: &str, len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(label.to_string());
    pb
}

/// Items done / total, items per second, ETA (length set later with `set_length`).
pub fn bar(label: &str) -> ProgressBar {
    styled(
        label,
        0,
        "{prefix:>16} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    )
}

/// Bytes done / total, bytes per second, ETA.
pub fn bytes_bar(label: &str, total: u64) -> ProgressBar {
    styled(
        label,
        total,
        "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
}

/// For a step with no finer progress than its parts (e.g. compaction, one collection at a
/// time): rows done / total with rate and ETA, redrawn every 200 ms so the elapsed time moves.
pub fn rows_bar(label: &str, total: u64) -> ProgressBar {
    let pb = styled(
        label,
        total,
        "{prefix:>16} {spinner} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta} ({elapsed})",
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}
