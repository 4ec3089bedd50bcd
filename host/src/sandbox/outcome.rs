//! What one attempt ended with.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::capture::Captured;
use super::fs_quota::GrantUsage;

/// How an attempt ended. Every way a guest can behave maps to exactly one
/// variant; none of them panics or hangs the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The task returned a JSON object.
    Succeeded {
        /// The task's output object.
        output: serde_json::Map<String, serde_json::Value>,
    },
    /// The task returned an error, or panicked (then `message` starts with
    /// `panicked`).
    Failed {
        /// The guest's reason.
        message: String,
        /// Whether the guest said a retry may succeed.
        retryable: bool,
    },
    /// The attempt ran past its timeout and was stopped.
    TimedOut {
        /// The timeout that was exceeded.
        #[serde(rename = "timeout_ms", with = "duration_ms")]
        timeout: Duration,
    },
    /// The attempt was cancelled by its owner (e.g. the execution was cancelled).
    Cancelled,
    /// The whole sandbox was halted (shutdown or drop) while the attempt ran.
    Halted,
    /// The guest tried to grow its memory past the limit.
    MemoryLimitExceeded {
        /// The limit in bytes.
        limit: u64,
        /// The size in bytes the guest asked for.
        requested: u64,
    },
    /// The guest ran out of fuel (only when fuel metering was requested).
    OutOfFuel,
    /// The guest trapped: stack overflow, `unreachable`, out-of-bounds
    /// access, or a trap raised by the host on its behalf.
    Trapped {
        /// What trapped, as wasmtime reports it.
        message: String,
    },
    /// The guest returned something that is not an acceptable output.
    InvalidOutput {
        /// Why the output was rejected.
        reason: String,
    },
    /// The plugin could not run the task at all: it does not match the
    /// `corral:task` world or could not be instantiated.
    PluginError {
        /// What went wrong.
        message: String,
    },
}

impl Outcome {
    /// A short, stable name of the variant (`succeeded`, `timed_out`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::TimedOut { .. } => "timed_out",
            Outcome::Cancelled => "cancelled",
            Outcome::Halted => "halted",
            Outcome::MemoryLimitExceeded { .. } => "memory_limit_exceeded",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::Trapped { .. } => "trapped",
            Outcome::InvalidOutput { .. } => "invalid_output",
            Outcome::PluginError { .. } => "plugin_error",
        }
    }

    /// Whether the attempt succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Succeeded { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded { .. } => write!(f, "succeeded"),
            Outcome::Failed {
                message,
                retryable: true,
            } => {
                write!(f, "failed (retryable): {message}")
            }
            Outcome::Failed {
                message,
                retryable: false,
            } => write!(f, "failed: {message}"),
            Outcome::TimedOut { timeout } => {
                write!(
                    f,
                    "timed out after {}",
                    humantime::format_duration(*timeout)
                )
            }
            Outcome::Cancelled => write!(f, "cancelled"),
            Outcome::Halted => write!(f, "halted by the host"),
            Outcome::MemoryLimitExceeded { limit, requested } => write!(
                f,
                "memory limit exceeded: the guest asked for {requested} bytes, the limit is {limit}"
            ),
            Outcome::OutOfFuel => write!(f, "ran out of fuel"),
            Outcome::Trapped { message } => write!(f, "trapped: {message}"),
            Outcome::InvalidOutput { reason } => write!(f, "invalid output: {reason}"),
            Outcome::PluginError { message } => write!(f, "plugin error: {message}"),
        }
    }
}

/// Everything an attempt produced: its outcome and what the guest wrote.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// How the attempt ended.
    pub outcome: Outcome,
    /// Structured log lines from `corral_guest::log`, capped; plus, past
    /// the cap if need be, one `warn` line from the host (starting with
    /// `[corral host]`) for each grant whose disk quota was hit.
    pub logs: Vec<LogLine>,
    /// How many log lines were dropped past the cap.
    pub logs_dropped: u64,
    /// Captured stdout, capped.
    pub stdout: Captured,
    /// Captured stderr, capped.
    pub stderr: Captured,
    /// Last progress the guest reported: fraction and note.
    pub progress: Option<(f32, String)>,
    /// Wall-clock duration of the attempt, instantiation included.
    pub duration: Duration,
    /// What the attempt wrote to each writable grant, in grant order
    /// (empty without writable grants).
    pub fs_usage: Vec<GrantUsage>,
}

/// One structured log line of a guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity: `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
