//! [`TaskError`]: why a task failed, and whether trying again may help.

use std::fmt;
use std::io;

/// Why a task failed.
///
/// Every error is either **permanent** (running the task again with the same
/// input will fail again: invalid input, a missing file, a bug) or
/// **retryable** (a transient condition: a timeout, a dropped connection). The
/// host retries only retryable failures, within the step's retry policy.
///
/// `?` converts common errors into a `TaskError`:
///
/// | source | kind |
/// |---|---|
/// | [`std::io::Error`] | retryable for transient kinds (`Interrupted`, `TimedOut`, `WouldBlock`, connection resets, …), permanent otherwise |
/// | [`serde_json::Error`] | permanent |
/// | [`std::num::ParseIntError`], [`std::num::ParseFloatError`], [`std::str::ParseBoolError`] | permanent |
/// | [`std::str::Utf8Error`], [`std::string::FromUtf8Error`] | permanent |
/// | [`String`], `&str` | permanent |
///
/// ```
/// use corral_guest::TaskError;
///
/// fn parse(text: &str) -> Result<u32, TaskError> {
///     let n: u32 = text.trim().parse()?;
///     if n == 0 {
///         return Err(TaskError::permanent("count must be positive"));
///     }
///     Ok(n)
/// }
///
/// assert_eq!(parse(" 7 ").unwrap(), 7);
/// let err = parse("seven").unwrap_err();
/// assert!(!err.is_retryable());
/// assert_eq!(err.message(), "invalid digit found in string");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    retryable: bool,
}

impl TaskError {
    /// A failure that will happen again if the task is retried with the same
    /// input (invalid input, missing data, a bug). The host does not retry it.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// A transient failure: running the task again may succeed. The host
    /// retries it according to the step's retry policy.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// Whether running the task again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with `context` (`"{context}: {message}"`),
    /// keeping whether the error is retryable.
    ///
    /// ```
    /// # use corral_guest::TaskError;
    /// let err = TaskError::retryable("connection reset").context("fetching rates");
    /// assert_eq!(err.message(), "fetching rates: connection reset");
    /// assert!(err.is_retryable());
    /// ```
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
            retryable: self.retryable,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

/// Whether an I/O error of this kind is worth retrying.
fn io_kind_is_transient(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        Interrupted
            | TimedOut
            | WouldBlock
            | ConnectionReset
            | ConnectionAborted
            | ConnectionRefused
            | NotConnected
            | BrokenPipe
            | AddrInUse
            | AddrNotAvailable
            | NetworkDown
            | NetworkUnreachable
            | HostUnreachable
            | ResourceBusy
    )
}

impl From<io::Error> for TaskError {
    /// Retryable for transient kinds (interrupted, timed out, would block,
    /// connection reset/aborted/refused, not connected, broken pipe, address
    /// in use/unavailable, network or host unreachable, resource busy);
    /// permanent otherwise (not found, permission denied, invalid data, …).
    fn from(err: io::Error) -> Self {
        let retryable = io_kind_is_transient(err.kind());
        Self {
            message: err.to_string(),
            retryable,
        }
    }
}

/// `From` impls for errors that are always permanent.
macro_rules! permanent_from {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for TaskError {
            /// Always a permanent error carrying the source's message.
            fn from(err: $ty) -> Self {
                Self::permanent(err.to_string())
            }
        }
    )*};
}

permanent_from!(
    serde_json::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::str::ParseBoolError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::fmt::Error,
);

impl From<String> for TaskError {
    /// A permanent error with this message.
    fn from(message: String) -> Self {
        Self::permanent(message)
    }
}

impl From<&str> for TaskError {
    /// A permanent error with this message.
    fn from(message: &str) -> Self {
        Self::permanent(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_split_by_kind() {
        let transient = io::Error::new(io::ErrorKind::TimedOut, "slow");
        assert!(TaskError::from(transient).is_retryable());
        let missing = io::Error::new(io::ErrorKind::NotFound, "gone");
        let err = TaskError::from(missing);
        assert!(!err.is_retryable());
        assert_eq!(err.message(), "gone");
    }

    #[test]
    fn strings_and_parse_errors_are_permanent() {
        assert!(!TaskError::from("nope").is_retryable());
        assert!(!TaskError::from(String::from("nope")).is_retryable());
        assert!(!TaskError::from("x".parse::<f64>().unwrap_err()).is_retryable());
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(!TaskError::from(json).is_retryable());
    }

    #[test]
    fn display_is_the_message() {
        assert_eq!(TaskError::retryable("later").to_string(), "later");
    }
}
