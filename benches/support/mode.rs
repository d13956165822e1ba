//! Whether a bench binary measures or only shows that it still runs.
//!
//! `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test) runs the same
//! binaries without it, on a debug build. There the full workloads took minutes of CI time to
//! print figures nobody reads, so each bench runs its whole path on a smaller workload instead.

/// Whether this run measures (`cargo bench`, or the binary run with `--bench`). Read once: the
/// sizes below are asked for inside measured loops.
pub fn measuring() -> bool {
    static MEASURING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MEASURING.get_or_init(|| std::env::args().any(|arg| arg == "--bench"))
}

/// `full` when measuring, else `smoke`.
pub fn sized<T>(full: T, smoke: T) -> T {
    if measuring() {
        full
    } else {
        smoke
    }
}

/// Says so when this run does not measure, so its printed figures are not read as results.
pub fn announce() {
    if !measuring() {
        println!(
            "(no --bench: a smoke run on a small workload; the figures below are not measurements)"
        );
    }
}
