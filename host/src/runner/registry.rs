//! Registering plugins and workflows, and reading them back.

use std::path::PathBuf;

use super::Runner;
use crate::error::RunnerError;
use crate::sandbox::PluginInfo;
use crate::store::{Added, Applied, NewWorkflow, PluginRecord, WorkflowRecord, now_ms};
use crate::workflow::{TaskCatalog, Workflow};

/// The workflows `info` ships, parsed and checked as plugin-shipped ones
/// (no grants, no memory) and named as `describe` says.
fn shipped_workflows(info: &PluginInfo) -> Result<Vec<Workflow>, RunnerError> {
    info.workflows
        .iter()
        .map(|shipped| {
            let workflow = Workflow::from_plugin_toml(&shipped.definition)
                .map_err(|e| shipped_error(info, &shipped.name, e))?;
            if workflow.name() != shipped.name {
                return Err(RunnerError::ShippedWorkflow {
                    plugin: info.id(),
                    workflow: crate::sandbox::cap_text(shipped.name.clone(), 64),
                    reason: format!(
                        "its definition names it `{}`",
                        crate::sandbox::cap_text(workflow.name().to_owned(), 64)
                    ),
                });
            }
            Ok(workflow)
        })
        .collect()
}

fn shipped_error(info: &PluginInfo, name: &str, error: impl std::fmt::Display) -> RunnerError {
    RunnerError::ShippedWorkflow {
        plugin: info.id(),
        workflow: crate::sandbox::cap_text(name.to_owned(), 64),
        reason: error.to_string(),
    }
}

/// The registered plugins, as the workflow validator sees them: oldest
/// registration first (as [`Store::list_plugins`](crate::store::Plugins::list_plugins) lists them).
struct Registered(Vec<PluginInfo>);

fn task_names(info: &PluginInfo) -> Vec<String> {
    info.tasks.iter().map(|t| t.name.clone()).collect()
}

impl TaskCatalog for Registered {
    /// Those of the newest registration: what an unpinned step runs.
    fn tasks(&self, plugin: &str) -> Option<Vec<String>> {
        self.0.iter().rfind(|p| p.name == plugin).map(task_names)
    }

    fn tasks_at(&self, plugin: &str, version: &str) -> Option<Vec<String>> {
        let versions = || self.0.iter().filter(|p| p.name == plugin);
        versions()
            .find(|p| p.version == version)
            .or_else(|| versions().rfind(|p| crate::workflow::pin_selects(version, &p.version)))
            .map(task_names)
    }

    fn versions(&self, plugin: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.name == plugin)
            .map(|p| p.version.clone())
            .collect()
    }

    fn plugins(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name.clone()).collect()
    }
}

impl Runner {
    /// Validates and registers a plugin component with the workflows it
    /// ships, all or nothing: the component, its `describe` and every
    /// shipped workflow are checked before anything is stored, and the
    /// plugin and its workflows are stored in one transaction. A shipped
    /// workflow may only create a new name or update one this plugin owns:
    /// it never replaces an operator's workflow (or another plugin's).
    /// Registering the same bytes again changes nothing.
    pub async fn register_plugin(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(PluginInfo, String, Added), RunnerError> {
        self.check_running()?;
        let plugin = self.runtime.sandbox().load_plugin(bytes.clone()).await?;
        let info = plugin.info().clone();
        let shipped = shipped_workflows(&info)?;
        // Its workflows may use its own tasks: check them against what is
        // registered with this plugin's version in place of any other.
        let mut registered: Vec<PluginInfo> = self
            .runtime
            .store()
            .list_plugins()
            .await?
            .into_iter()
            .map(|p| p.info)
            .filter(|p| p.name != info.name)
            .collect();
        registered.push(info.clone());
        let catalog = Registered(registered);
        for workflow in &shipped {
            workflow
                .validate_tasks(&catalog)
                .map_err(|e| shipped_error(&info, workflow.name(), e))?;
        }
        let definitions: Vec<serde_json::Value> = shipped.iter().map(|w| w.to_stored()).collect();
        let new: Vec<NewWorkflow<'_>> = shipped
            .iter()
            .zip(&definitions)
            .map(|(workflow, definition)| NewWorkflow {
                name: workflow.name(),
                version: workflow.version(),
                definition,
            })
            .collect();
        let (added, _) = self
            .runtime
            .store()
            .register_plugin(&info, plugin.sha256(), &bytes, &new, now_ms())
            .await?;
        Ok((info, plugin.sha256().to_owned(), added))
    }

    /// Reads and registers a plugin file (see [`register_plugin`](Self::register_plugin)).
    pub async fn register_plugin_file(
        &self,
        path: impl Into<PathBuf>,
    ) -> Result<(PluginInfo, String, Added), RunnerError> {
        let path = path.into();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| crate::sandbox::PluginError::Read { path, source })?;
        self.register_plugin(bytes).await
    }

    /// Every registered plugin version, by name, oldest registration first.
    pub async fn plugins(&self) -> Result<Vec<PluginRecord>, RunnerError> {
        Ok(self.runtime.store().list_plugins().await?)
    }

    /// The registered versions of plugin `name`, oldest first (the last is
    /// what new executions of unpinned steps run); with `version`, only
    /// that one. [`RunnerError::UnknownPlugin`] when there is none.
    pub async fn plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<PluginRecord>, RunnerError> {
        let versions: Vec<PluginRecord> = self
            .plugins()
            .await?
            .into_iter()
            .filter(|p| p.info.name == name && version.is_none_or(|v| p.info.version == v))
            .collect();
        if versions.is_empty() {
            let reference = match version {
                Some(version) => format!("{name}@{version}"),
                None => name.to_owned(),
            };
            return Err(RunnerError::UnknownPlugin(reference));
        }
        Ok(versions)
    }

    /// The component of plugin `name` (its newest registration) or
    /// `name@version`, with its record: what `corral invoke NAME` runs and
    /// what a host downloads. [`RunnerError::UnknownPlugin`] when there is
    /// none.
    pub async fn plugin_component(
        &self,
        reference: &str,
    ) -> Result<(PluginRecord, Vec<u8>), RunnerError> {
        self.runtime
            .store()
            .plugin(reference)
            .await?
            .ok_or_else(|| RunnerError::UnknownPlugin(reference.to_owned()))
    }

    /// Removes the registration `name@version`. Refused, removing nothing,
    /// while an execution that has not ended runs it
    /// ([`StoreError::PluginInUse`](crate::store::StoreError::PluginInUse));
    /// [`RunnerError::UnknownPlugin`] when it is not registered. Hosts that
    /// loaded it keep their compiled copy until they stop, but no new
    /// execution can pin it.
    pub async fn remove_plugin(&self, name: &str, version: &str) -> Result<(), RunnerError> {
        self.check_running()?;
        if self.runtime.store().remove_plugin(name, version).await? {
            Ok(())
        } else {
            Err(RunnerError::UnknownPlugin(format!("{name}@{version}")))
        }
    }

    /// The latest version of every stored workflow, by name.
    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>, RunnerError> {
        Ok(self.runtime.store().list_workflows().await?)
    }

    /// Workflow `name` at `version`, or its latest version;
    /// [`RunnerError::UnknownWorkflow`] when there is none.
    pub async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<WorkflowRecord, RunnerError> {
        self.runtime
            .store()
            .workflow(name, version)
            .await?
            .ok_or_else(|| {
                RunnerError::UnknownWorkflow(match version {
                    Some(version) => format!("{name}@{version}"),
                    None => name.to_owned(),
                })
            })
    }

    /// Checks a workflow's tasks against the registered plugins and stores
    /// it. Nothing is stored if a check fails.
    pub async fn apply_workflow(&self, workflow: &Workflow) -> Result<Applied, RunnerError> {
        self.check_running()?;
        let plugins = self.runtime.store().list_plugins().await?;
        workflow.validate_tasks(&Registered(plugins.into_iter().map(|p| p.info).collect()))?;
        let definition = workflow.to_stored();
        Ok(self
            .runtime
            .store()
            .apply_workflow(workflow.name(), workflow.version(), &definition, now_ms())
            .await?)
    }
}
