//! The registry: plugins and the workflows that run them, as the runner
//! registers and reads them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Applied, NewWorkflow, PluginPin, StoreError, WorkflowOwner, WorkflowRecord, now_ms};
use crate::sandbox::PluginInfo;

/// A registered plugin, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// What the plugin said about itself.
    pub info: PluginInfo,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was registered (RFC 3339, UTC).
    pub added_at: String,
}

/// Whether [`Plugins::add_plugin`] changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new `name@version` was stored.
    New,
    /// The very same bytes were already registered; nothing changed.
    Unchanged,
}

/// Registered plugins: their components and what they said about
/// themselves. Every method commits before it returns.
#[async_trait::async_trait]
pub trait Plugins: Send + Sync {
    /// Registers a plugin's bytes under `info.name@info.version`.
    async fn add_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Added, StoreError> {
        self.register_plugin(info, sha256, bytes, &[], now_ms())
            .await
            .map(|(added, _)| added)
    }

    /// Registers a plugin's bytes under `info.name@info.version` and stores
    /// the workflows it ships, owned by the plugin, all in one transaction:
    /// if any part fails (another plugin's bytes under that version, a
    /// workflow name owned by someone else), nothing is stored.
    async fn register_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
        workflows: &[NewWorkflow<'_>],
        now_ms: i64,
    ) -> Result<(Added, Vec<Applied>), StoreError>;

    /// All registered plugins, by name then registration time.
    async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;

    /// The plugin `name` (its newest registration) or `name@version`, with
    /// its bytes; `None` if there is no such plugin.
    async fn plugin(&self, reference: &str) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError>;

    /// The registration a new execution of plugin `name` runs: with no
    /// `version`, the newest registered one; with one, the registration of
    /// exactly that version, else the newest whose version continues it
    /// after a `.` (`0.2` picks the newest of `0.2.0`, `0.2.7`, ...).
    /// `None` when nothing matches.
    async fn resolve_plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<PluginPin>, StoreError>;

    /// Removes the registration `name@version`; `false` if there was none.
    /// Fails with [`StoreError::PluginInUse`], removing nothing, while an
    /// execution that has not ended runs it.
    async fn remove_plugin(&self, name: &str, version: &str) -> Result<bool, StoreError>;
}

/// Stored workflows, by name and version. Every method commits before it
/// returns.
#[async_trait::async_trait]
pub trait Workflows: Send + Sync {
    /// Stores a workflow version as the operator's (see
    /// [`apply_workflow_as`](Workflows::apply_workflow_as)).
    async fn apply_workflow(
        &self,
        name: &str,
        version: &str,
        definition: &Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let workflow = NewWorkflow {
            name,
            version,
            definition,
        };
        self.apply_workflow_as(&workflow, &WorkflowOwner::Operator, now_ms)
            .await
    }

    /// Stores a workflow version owned by `owner`; a no-op when its version
    /// is already the latest of its name and `owner` owns it. Fails with
    /// [`StoreError::WorkflowOwned`], storing nothing, when `owner` may not
    /// update the name (see [`WorkflowOwner`]).
    async fn apply_workflow_as(
        &self,
        workflow: &NewWorkflow<'_>,
        owner: &WorkflowOwner,
        now_ms: i64,
    ) -> Result<Applied, StoreError>;

    /// The workflow `name` at `version`, or its latest version.
    async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<WorkflowRecord>, StoreError>;

    /// The latest version of every workflow, by name.
    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError>;
}
