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

/// Checks a task's output text exactly as the host does with what a guest's
/// `run` returns: over `max_bytes` bytes ([`Limits::max_output_bytes`]) it is
/// rejected before it is parsed; otherwise it must be one JSON object, and
/// becomes [`Outcome::Succeeded`]. Anything else is
/// [`Outcome::InvalidOutput`] with the reason; no text makes it panic.
///
/// Nesting is bounded by `serde_json`'s recursion limit (128 levels): deeper
/// text is rejected as invalid JSON, so an accepted output can be parsed,
/// serialized, stored and read back without exhausting the stack.
///
/// [`Limits::max_output_bytes`]: super::Limits::max_output_bytes
pub fn check_output(text: &str, max_bytes: usize) -> Outcome {
    if text.len() > max_bytes {
        return Outcome::InvalidOutput {
            reason: format!(
                "output is {} bytes, more than the limit of {max_bytes} bytes",
                text.len()
            ),
        };
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(output)) => Outcome::Succeeded { output },
        Ok(other) => Outcome::InvalidOutput {
            reason: format!("output is not a JSON object but {}", json_kind(&other)),
        },
        Err(e) => Outcome::InvalidOutput {
            reason: format!("output is not valid JSON: {e}"),
        },
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(outcome: Outcome) -> String {
        match outcome {
            Outcome::InvalidOutput { reason } => reason,
            other => panic!("expected invalid output, got {other:?}"),
        }
    }

    /// Found by the `guest_output` fuzz target: serde_json's default number
    /// parser is not correctly rounded, so a number written back as the
    /// shortest text that names it (what the store keeps) could read back
    /// one ULP off, and a step's output changed on its way to the next
    /// step. With `float_roundtrip` every number survives the trip.
    #[test]
    fn numbers_survive_the_stores_round_trip() {
        for text in [
            r#"{"x":111111111111111149448}"#,
            r#"{"x":[1.1111111111111115e20, 0.30000000000000004, 5e-324, 1.7976931348623157e308]}"#,
            r#"{"x":2.2250738585072011e-308, "y": 9007199254740993}"#,
        ] {
            let Outcome::Succeeded { output } = check_output(text, 1 << 20) else {
                panic!("{text} rejected");
            };
            let stored = serde_json::to_string(&output).unwrap();
            let back: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&stored).unwrap();
            assert_eq!(back, output, "{text} changed on the way: {stored}");
        }
    }

    #[test]
    fn output_limit_is_inclusive() {
        let text = r#"{"a":1}"#;
        assert!(check_output(text, text.len()).is_success());
        let r = reason(check_output(text, text.len() - 1));
        assert!(r.contains("7 bytes, more than the limit of 6"), "{r}");
        assert!(reason(check_output("", 0)).contains("not valid JSON"));
        assert!(reason(check_output("[1]", 10)).contains("an array"));
        assert!(reason(check_output("null", 10)).contains("null"));
    }

    /// `{"x":` + `[` × n + `]` × n + `}`: n + 1 containers.
    fn nested(n: usize) -> String {
        format!("{{\"x\":{}{}}}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn nesting_is_bounded_by_serde_json_recursion_limit() {
        // 127 levels are accepted, 128 are not: the limit protects every
        // later parse of the output too (the store reads it back as text).
        assert!(check_output(&nested(126), usize::MAX).is_success());
        assert!(reason(check_output(&nested(127), usize::MAX)).contains("recursion limit"));
        // Far deeper (2 MiB of openers, closed or not) is an error, not a
        // stack overflow.
        let deep = nested(1 << 20);
        assert!(reason(check_output(&deep, usize::MAX)).contains("recursion limit"));
        let open = "[".repeat(2 << 20);
        assert!(reason(check_output(&open, usize::MAX)).contains("recursion limit"));
    }

    #[test]
    fn accepted_output_survives_the_stores_text_round_trip() {
        let text = nested(126);
        let Outcome::Succeeded { output } = check_output(&text, usize::MAX) else {
            panic!("not accepted");
        };
        let stored = serde_json::to_string(&output).unwrap();
        let back: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&stored).unwrap();
        assert_eq!(back, output);
    }
}
