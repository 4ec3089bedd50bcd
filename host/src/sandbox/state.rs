//! The data of one attempt's `Store`: WASI context, limits, and what the
//! guest reported through the `host` interface.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Level, corral};
use super::control::AttemptControl;
use super::fs_quota::{FsQuota, QuotaFs, QuotaFsView};
use super::grants::Limits;
use super::outcome::LogLine;
use super::text::{MAX_ERROR_BYTES, MAX_LOG_LINE_BYTES, MAX_PROGRESS_NOTE_BYTES, cap};

/// The guest asked for more memory than its limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {requested})")]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

/// Enforces the memory limit with a typed error, so the host can tell a
/// memory-limit trap from any other.
pub(crate) struct Limiter {
    memory_bytes: u64,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = desired as u64;
        if requested > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitHit {
                limit: self.memory_bytes,
                requested,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond
        // any real task and keeps a runaway guest from eating host memory.
        Ok(desired <= 1_000_000)
    }
}

/// Capped collection of structured log lines.
pub(crate) struct LogSink {
    pub(crate) lines: Vec<LogLine>,
    pub(crate) dropped: u64,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl LogSink {
    /// A line from the host itself about the attempt (e.g. a quota hit).
    /// Kept even past the caps, which bound the guest's lines: there is at
    /// most a handful per attempt.
    pub(crate) fn push_host(&mut self, level: Level, message: String) {
        tracing::warn!(target: "corral::sandbox", "{message}");
        self.bytes += message.len();
        self.lines.push(LogLine {
            level: level_name(level).to_owned(),
            message,
        });
    }

    fn push(&mut self, level: Level, message: String) {
        let message = cap(message, MAX_LOG_LINE_BYTES);
        if self.lines.len() >= self.max_lines || self.bytes + message.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        let level = level_name(level);
        match level {
            "error" => tracing::error!(target: "corral::guest", "{message}"),
            "warn" => tracing::warn!(target: "corral::guest", "{message}"),
            "info" => tracing::info!(target: "corral::guest", "{message}"),
            "debug" => tracing::debug!(target: "corral::guest", "{message}"),
            _ => tracing::trace!(target: "corral::guest", "{message}"),
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level: level.to_owned(),
            message,
        });
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Disk quotas of the writable grants.
    pub(crate) quota: FsQuota,
    pub(crate) limiter: Limiter,
    pub(crate) logs: LogSink,
    pub(crate) progress: Option<(f32, String)>,
    pub(crate) panic: Option<String>,
    control: AttemptControl,
    deadline: Instant,
}

impl StoreState {
    pub(crate) fn new(
        wasi: WasiCtx,
        quota: FsQuota,
        limits: &Limits,
        control: AttemptControl,
        deadline: Instant,
    ) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            quota,
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
            },
            logs: LogSink {
                lines: Vec::new(),
                dropped: 0,
                bytes: 0,
                max_lines: limits.max_log_lines,
                max_bytes: limits.max_log_bytes,
            },
            progress: None,
            panic: None,
            control,
            deadline,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl QuotaFsView for StoreState {
    fn quota_fs(&mut self) -> QuotaFs<'_> {
        QuotaFs {
            fs: wasmtime_wasi::filesystem::WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            quota: &mut self.quota,
        }
    }
}

impl corral::task::types::Host for StoreState {}

impl corral::task::host::Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        self.logs.push(level, message);
    }

    fn progress(&mut self, fraction: f32, note: String) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let note = cap(note, MAX_PROGRESS_NOTE_BYTES);
        tracing::debug!(target: "corral::guest", fraction, note, "progress");
        self.progress = Some((fraction, note));
    }

    fn cancelled(&mut self) -> bool {
        self.control.check(self.deadline).is_some()
    }

    fn panicked(&mut self, message: String) {
        // Keep the first report: a panic inside the panic hook must not
        // replace the original message.
        self.panic
            .get_or_insert_with(|| cap(message, MAX_ERROR_BYTES));
    }
}
