//! Loaded plugins and workflows, cached per runner.
//!
//! Plugins are compiled once per host (and their compiled code is cached on
//! disk by the sandbox); workflow versions are immutable, so a cache entry
//! never goes stale.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

use super::RuntimeError;
use crate::sandbox::{Plugin, PluginError, Sandbox};
use crate::store::{PluginPin, Store};
use crate::workflow::Workflow;

pub(crate) struct Catalog {
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    /// By SHA-256 of the component: a cell per digest, so concurrent first
    /// uses compile the plugin once. Registrations are immutable, so an
    /// entry never goes stale.
    plugins: DashMap<String, Arc<OnceCell<Plugin>>>,
    /// Why a plugin could not be loaded here, by SHA-256 of its bytes: the
    /// same bytes fail the same way on the same host, so `describe` is not
    /// run again for every claim of its steps.
    unloadable: DashMap<String, Arc<PluginError>>,
    /// By (name, version).
    workflows: DashMap<(String, String), Arc<Workflow>>,
}

impl Catalog {
    pub(crate) fn new(store: Arc<dyn Store>, sandbox: Sandbox) -> Self {
        Self {
            store,
            sandbox,
            plugins: DashMap::new(),
            unloadable: DashMap::new(),
            workflows: DashMap::new(),
        }
    }

    /// Plugin `name` at the registration `pin` names, loaded; with no pin
    /// (an execution from before pinning), its newest registration.
    pub(crate) async fn plugin(
        &self,
        name: &str,
        pin: Option<&PluginPin>,
    ) -> Result<Plugin, RuntimeError> {
        let pin = match pin {
            Some(pin) => pin.clone(),
            None => self
                .store
                .resolve_plugin(name, None)
                .await?
                .ok_or_else(|| RuntimeError::UnknownPlugin(name.to_owned()))?,
        };
        let cell = self.plugins.entry(pin.sha256.clone()).or_default().clone();
        let plugin = cell
            .get_or_try_init(|| async {
                if let Some(earlier) = self.unloadable.get(&pin.sha256) {
                    return Err(RuntimeError::from(PluginError::Earlier(earlier.clone())));
                }
                let reference = format!("{name}@{}", pin.version);
                let gone = || RuntimeError::PinnedPluginGone {
                    plugin: reference.clone(),
                    sha256: pin.sha256.clone(),
                };
                let (record, bytes) = self.store.plugin(&reference).await?.ok_or_else(gone)?;
                if record.sha256 != pin.sha256 {
                    return Err(gone());
                }
                match self.sandbox.load_plugin(bytes).await {
                    Ok(plugin) => Ok(plugin),
                    // Halted mid-load says nothing about the plugin.
                    Err(error) if self.sandbox.is_halted() => Err(RuntimeError::from(error)),
                    Err(error) => {
                        let error = Arc::new(error);
                        self.unloadable.insert(pin.sha256.clone(), error.clone());
                        Err(RuntimeError::from(PluginError::Earlier(error)))
                    }
                }
            })
            .await?;
        Ok(plugin.clone())
    }

    /// Workflow `name` at `version`.
    pub(crate) async fn workflow(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Arc<Workflow>, RuntimeError> {
        let key = (name.to_owned(), version.to_owned());
        if let Some(workflow) = self.workflows.get(&key) {
            return Ok(workflow.clone());
        }
        let record = self
            .store
            .workflow(name, Some(version))
            .await?
            .ok_or_else(|| RuntimeError::UnknownWorkflow(format!("{name}@{version}")))?;
        let workflow =
            Arc::new(Workflow::from_stored(record.definition).map_err(RuntimeError::Workflow)?);
        self.workflows.insert(key, workflow.clone());
        Ok(workflow)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sandbox::{PluginInfo, SandboxConfig, TaskInfo};

    #[tokio::test]
    async fn a_load_failure_is_remembered_for_those_bytes() {
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let bytes = std::fs::read(corral_test_artifacts::ROGUE_SLOW_DESCRIBE).unwrap();
        let info = PluginInfo {
            name: "rogue".into(),
            version: "0.1.0".into(),
            tasks: vec![TaskInfo {
                name: "ok".into(),
                description: String::new(),
                default_timeout_ms: None,
                max_attempts: None,
            }],
            workflows: Vec::new(),
        };
        let sha256 = crate::sandbox::sha256_hex(&bytes);
        store.add_plugin(&info, &sha256, &bytes).await.unwrap();
        let sandbox = Sandbox::new(SandboxConfig {
            describe_timeout: Duration::from_millis(50),
            max_concurrent_attempts: 4,
            ..SandboxConfig::default()
        })
        .unwrap();
        let catalog = Catalog::new(store, sandbox.clone());
        for _ in 0..3 {
            let error = catalog
                .plugin("rogue", None)
                .await
                .expect_err("describe times out");
            assert!(error.to_string().contains("timed out"), "{error}");
        }
        assert_eq!(
            sandbox.loads_started(),
            1,
            "describe ran again for the same bytes"
        );
    }
}
