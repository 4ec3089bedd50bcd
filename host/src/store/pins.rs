//! The stored form of an execution's [`PluginPins`]: a JSON object by
//! plugin name, in a nullable text column (NULL for executions from before
//! pinning, which read back as no pins).

use super::{PluginPins, StoreError};

/// The column's value for `pins`: NULL when there are none, so an
/// execution without pins looks the same as one from before pinning.
pub(super) fn pins_text(pins: &PluginPins) -> Option<String> {
    if pins.is_empty() {
        return None;
    }
    serde_json::to_string(pins).ok()
}

/// The pins a column holds.
pub(super) fn pins(text: Option<String>) -> Result<PluginPins, StoreError> {
    match text {
        None => Ok(PluginPins::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "execution plugins",
            reason: e.to_string(),
        }),
    }
}

/// [`StoreError::PluginInUse`] when `count` executions that have not ended
/// (`example` among them) run `name@version`.
pub(super) fn refuse_if_in_use(
    name: &str,
    version: &str,
    (count, example): (i64, Option<String>),
) -> Result<(), StoreError> {
    match (count, example) {
        (1.., Some(example)) => Err(StoreError::PluginInUse {
            name: name.to_owned(),
            version: version.to_owned(),
            count: u64::try_from(count).unwrap_or_default(),
            example,
        }),
        _ => Ok(()),
    }
}
