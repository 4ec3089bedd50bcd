//! Loaded plugins and workflows, cached per runner.
//!
//! Plugins are compiled once per host (and their compiled code is cached on
//! disk by the sandbox); workflow versions are immutable, so a cache entry
//! never goes stale.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

use crate::error::RunnerError;
use crate::sandbox::{Plugin, Sandbox};
use crate::store::Store;
use crate::workflow::Workflow;

pub(crate) struct Catalog {
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    /// By plugin name: the registration `plugin(name)` returned when loaded.
    /// A cell per name, so concurrent first uses compile the plugin once.
    plugins: DashMap<String, Arc<OnceCell<Plugin>>>,
    /// By (name, version).
    workflows: DashMap<(String, String), Arc<Workflow>>,
}

impl Catalog {
    pub(crate) fn new(store: Arc<dyn Store>, sandbox: Sandbox) -> Self {
        Self {
            store,
            sandbox,
            plugins: DashMap::new(),
            workflows: DashMap::new(),
        }
    }

    /// The newest registered version of plugin `name`, loaded.
    pub(crate) async fn plugin(&self, name: &str) -> Result<Plugin, RunnerError> {
        let cell = self.plugins.entry(name.to_owned()).or_default().clone();
        let plugin = cell
            .get_or_try_init(|| async {
                let (_, bytes) = self
                    .store
                    .plugin(name)
                    .await?
                    .ok_or_else(|| RunnerError::UnknownPlugin(name.to_owned()))?;
                Ok::<_, RunnerError>(self.sandbox.load_plugin(bytes).await?)
            })
            .await?;
        Ok(plugin.clone())
    }

    /// Forgets a plugin so the next use loads its newest registration.
    pub(crate) fn forget_plugin(&self, name: &str) {
        self.plugins.remove(name);
    }

    /// Workflow `name` at `version`.
    pub(crate) async fn workflow(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Arc<Workflow>, RunnerError> {
        let key = (name.to_owned(), version.to_owned());
        if let Some(workflow) = self.workflows.get(&key) {
            return Ok(workflow.clone());
        }
        let record = self
            .store
            .workflow(name, Some(version))
            .await?
            .ok_or_else(|| RunnerError::UnknownWorkflow(format!("{name}@{version}")))?;
        let workflow =
            Arc::new(Workflow::from_stored(record.definition).map_err(RunnerError::Workflow)?);
        self.workflows.insert(key, workflow.clone());
        Ok(workflow)
    }
}
