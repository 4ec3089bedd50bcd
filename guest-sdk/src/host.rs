//! Calls into the host: progress, cancellation, panic reports.
//!
//! Compiled for anything but `wasm32` (e.g. to unit-test task functions
//! natively), these calls print to stderr and `cancelled` is always `false`.

#[cfg(target_arch = "wasm32")]
use crate::bindings::corral::task::host as imports;

/// Reports progress to the host: `fraction` of the work done, in `0.0..=1.0`
/// (the host clamps it), and a short `note`. Also serves as a heartbeat.
///
/// ```no_run
/// corral_guest::progress(0.5, "halfway there");
/// ```
pub fn progress(fraction: f32, note: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    imports::progress(fraction, note.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[progress {:.0}%] {}", fraction * 100.0, note.as_ref());
}

/// Whether the host asked this attempt to stop (cancel, timeout or shutdown).
///
/// Long-running tasks may poll it to stop early and cleanly; the host halts
/// tasks that don't, so checking it is a courtesy, not a duty.
///
/// ```no_run
/// # fn step() {}
/// while !corral_guest::cancelled() {
///     step();
/// }
/// ```
pub fn cancelled() -> bool {
    #[cfg(target_arch = "wasm32")]
    return imports::cancelled();
    #[cfg(not(target_arch = "wasm32"))]
    false
}

/// Sends a log line to the host.
pub(crate) fn log(level: crate::log::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::corral::task::types::Level as Wit;
        use crate::log::Level;
        let level = match level {
            Level::Trace => Wit::Trace,
            Level::Debug => Wit::Debug,
            Level::Info => Wit::Info,
            Level::Warn => Wit::Warn,
            Level::Error => Wit::Error,
        };
        imports::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level}] {message}");
}

/// Tells the host that the task panicked, right before the guest traps.
#[cfg(target_arch = "wasm32")]
pub(crate) fn panicked(message: &str) {
    imports::panicked(message);
}
