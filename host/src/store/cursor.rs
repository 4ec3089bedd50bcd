//! Paging through executions: [`ExecutionCursor`] marks where a page of
//! [`list_executions`](super::Reads::list_executions) ended, so the next
//! page starts right after it however many executions were added since.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ExecutionId, ExecutionRecord};

/// A position in the newest-first order of executions: the `(created_at,
/// id)` of the last execution of a page. A position, not an offset: paging
/// on never repeats an execution, nor skips one that existed when the
/// first page was read. Executions created meanwhile sort before the
/// cursor as a rule (they are newer); one stamped by a host whose clock
/// lags may land on a later page instead.
///
/// Its text form (see [`Display`](fmt::Display) and [`FromStr`]) is what
/// `corral executions --before` takes; treat it as opaque.
///
/// ```
/// use corral::store::ExecutionCursor;
///
/// let cursor: ExecutionCursor = "1767225600000.0194f1e2-aaaa".parse()?;
/// assert_eq!(cursor.to_string(), "1767225600000.0194f1e2-aaaa");
/// assert!("yesterday".parse::<ExecutionCursor>().is_err());
/// # Ok::<(), corral::store::CursorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecutionCursor {
    /// When the last execution of the page was created (ms since the Unix
    /// epoch).
    pub created_at_ms: i64,
    /// Its id.
    pub id: ExecutionId,
}

/// Longest id a cursor may carry: far more than any execution id (a UUID
/// is 36 characters), so a hostile cursor cannot make a large query.
const MAX_CURSOR_ID: usize = 128;

/// A cursor's text is not one this host wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor `{text}`: expected MILLISECONDS.ID as printed by a previous page (`next`)")]
pub struct CursorError {
    /// The rejected text, cut to 64 characters.
    pub text: String,
}

impl ExecutionCursor {
    /// The cursor after `execution`: the next page starts with the
    /// execution just older than it.
    pub fn after(execution: &ExecutionRecord) -> Self {
        Self {
            created_at_ms: execution.created_at_ms,
            id: execution.id.clone(),
        }
    }
}

impl fmt::Display for ExecutionCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at_ms, self.id)
    }
}

impl FromStr for ExecutionCursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || CursorError {
            text: text.chars().take(64).collect(),
        };
        let (ms, id) = text.split_once('.').ok_or_else(invalid)?;
        let created_at_ms = ms.parse::<i64>().map_err(|_| invalid())?;
        if id.is_empty() || id.len() > MAX_CURSOR_ID || created_at_ms < 0 {
            return Err(invalid());
        }
        Ok(Self {
            created_at_ms,
            id: id.into(),
        })
    }
}

impl Serialize for ExecutionCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExecutionCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_keeps_dots_in_ids() {
        let cursor = ExecutionCursor {
            created_at_ms: 42,
            id: "a.b-c".into(),
        };
        assert_eq!(cursor.to_string().parse::<ExecutionCursor>(), Ok(cursor));
    }

    #[test]
    fn hostile_text_is_refused() {
        let long = format!("1.{}", "x".repeat(MAX_CURSOR_ID + 1));
        for text in [
            "",
            "1",
            "1.",
            ".id",
            "-5.id",
            "x.id",
            "99999999999999999999.id",
            &long,
        ] {
            let error = text.parse::<ExecutionCursor>().unwrap_err();
            assert!(error.text.chars().count() <= 64, "{text}");
        }
    }
}
