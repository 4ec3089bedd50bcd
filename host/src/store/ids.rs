//! Typed ids: an [`ExecutionId`] is not any string, and a task run is
//! named by a [`RunKey`], not by a pair of strings whose order one must
//! remember.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The id of an execution: a UUIDv7 for executions this host creates
/// (time-ordered, so ids sort by creation), any text for older or
/// foreign ones. It reads as a `&str` wherever one is expected.
///
/// ```
/// use corral::store::ExecutionId;
///
/// let id = ExecutionId::generate();
/// assert_eq!(id.len(), 36);
/// let same: ExecutionId = id.to_string().into();
/// assert_eq!(same, id);
/// assert_eq!(ExecutionId::from("e-1"), "e-1");
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct ExecutionId(String);

impl ExecutionId {
    /// A new, unique, time-ordered id (UUIDv7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for ExecutionId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ExecutionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ExecutionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ExecutionId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ExecutionId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<ExecutionId> for String {
    fn from(id: ExecutionId) -> Self {
        id.0
    }
}

impl PartialEq<str> for ExecutionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ExecutionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ExecutionId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<ExecutionId> for String {
    fn eq(&self, other: &ExecutionId) -> bool {
        *self == other.0
    }
}

impl PartialEq<ExecutionId> for &str {
    fn eq(&self, other: &ExecutionId) -> bool {
        *self == other.0
    }
}

/// One task run: a step of an execution. What leases, claims and the
/// attempts in flight are keyed by; read from rows with columns
/// `execution_id` and `step_id`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::FromRow,
)]
pub struct RunKey {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The step.
    pub step_id: String,
}

impl RunKey {
    /// The run of step `step_id` in execution `execution_id`.
    pub fn new(execution_id: impl Into<ExecutionId>, step_id: impl Into<String>) -> Self {
        Self {
            execution_id: execution_id.into(),
            step_id: step_id.into(),
        }
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.execution_id, self.step_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_time_ordered() {
        let ids: Vec<ExecutionId> = (0..1000).map(|_| ExecutionId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
    }

    #[test]
    fn ids_serialise_as_plain_strings() {
        let key = RunKey::new("e-1", "extract");
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"execution_id": "e-1", "step_id": "extract"})
        );
        assert_eq!(serde_json::from_value::<RunKey>(json).unwrap(), key);
        assert_eq!(key.to_string(), "e-1/extract");
    }
}
