//! A loaded plugin: validated, compiled, linked and described.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bindings::{self, TaskPluginPre};
use super::cache::CompileSource;
use super::error::PluginError;
use super::state::StoreState;

/// What a plugin says about itself (its `describe` export), validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Version, `MAJOR.MINOR.PATCH` with an optional `-pre` or `+build` suffix.
    pub version: String,
    /// The tasks it offers, names unique.
    pub tasks: Vec<TaskInfo>,
    /// Workflows it ships, as TOML text.
    #[serde(default)]
    pub workflows: Vec<WorkflowInfo>,
}

/// One task a plugin offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Name, unique within the plugin.
    pub name: String,
    /// One line saying what it does.
    pub description: String,
    /// Default timeout of an attempt, if the plugin suggests one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_timeout_ms: Option<u64>,
    /// Suggested maximum number of attempts, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// A workflow shipped by a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    /// The workflow's name.
    pub name: String,
    /// Its definition, in Corral's TOML workflow format.
    pub definition: String,
}

impl PluginInfo {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The task called `name`, if the plugin offers it.
    pub fn task(&self, name: &str) -> Option<&TaskInfo> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Names of all tasks, comma-separated (for error messages).
    pub fn task_names(&self) -> String {
        self.tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::InvalidInfo(msg));
        if !is_identifier(&self.name) {
            return bad(format!(
                "name `{}` must be lowercase letters, digits, `-` or `_`, starting with a letter, at most 64 bytes",
                echo(&self.name)
            ));
        }
        if !is_version(&self.version) {
            return bad(format!(
                "version `{}` is not semver MAJOR.MINOR.PATCH (such as 0.1.0, no leading zeros; at most 64 bytes)",
                echo(&self.version)
            ));
        }
        if self.tasks.is_empty() {
            return bad("it offers no task".into());
        }
        if self.tasks.len() > MAX_TASKS {
            return bad(format!(
                "it offers {} tasks, more than the limit of {MAX_TASKS}",
                self.tasks.len()
            ));
        }
        if self.workflows.len() > MAX_WORKFLOWS {
            return bad(format!(
                "it ships {} workflows, more than the limit of {MAX_WORKFLOWS}",
                self.workflows.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for task in &self.tasks {
            if !is_identifier(&task.name) {
                return bad(format!(
                    "task name `{}` is not a valid identifier",
                    echo(&task.name)
                ));
            }
            if !seen.insert(task.name.as_str()) {
                return bad(format!("task `{}` is declared twice", task.name));
            }
            if task.description.len() > MAX_DESCRIPTION_BYTES {
                return bad(format!(
                    "the description of task `{}` is {} bytes, more than the limit of {MAX_DESCRIPTION_BYTES}",
                    task.name,
                    task.description.len()
                ));
            }
            if task.description.contains(['\n', '\r']) {
                return bad(format!(
                    "the description of task `{}` is more than one line",
                    task.name
                ));
            }
        }
        for workflow in &self.workflows {
            if workflow.definition.len() > MAX_WORKFLOW_BYTES {
                return bad(format!(
                    "shipped workflow `{}` is {} bytes, more than the limit of {MAX_WORKFLOW_BYTES}",
                    echo(&workflow.name),
                    workflow.definition.len()
                ));
            }
        }
        Ok(())
    }
}

/// Most tasks one plugin may offer.
pub const MAX_TASKS: usize = 1_000;
/// Most workflows one plugin may ship.
pub const MAX_WORKFLOWS: usize = 100;
/// Longest task description, in bytes; a description is one line.
pub const MAX_DESCRIPTION_BYTES: usize = 1 << 10;
/// Longest shipped workflow definition (TOML text), in bytes.
pub const MAX_WORKFLOW_BYTES: usize = 256 << 10;

/// A guest-given name as quoted in an error: its first 64 bytes at most.
fn echo(text: &str) -> String {
    super::text::cap(text.to_owned(), 64)
}

fn is_identifier(s: &str) -> bool {
    corral_names::is_name(s)
}

fn is_version(s: &str) -> bool {
    corral_names::is_version(s)
}

impl From<bindings::PluginInfo> for PluginInfo {
    fn from(info: bindings::PluginInfo) -> Self {
        Self {
            name: info.name,
            version: info.version,
            tasks: info
                .tasks
                .into_iter()
                .map(|t| TaskInfo {
                    name: t.name,
                    description: t.description,
                    default_timeout_ms: t.default_timeout_ms,
                    max_attempts: t.max_attempts,
                })
                .collect(),
            workflows: info
                .workflows
                .into_iter()
                .map(|w| WorkflowInfo {
                    name: w.name,
                    definition: w.definition,
                })
                .collect(),
        }
    }
}

/// A plugin ready to run: compiled, linked against the host (one
/// `InstancePre`), and described. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) info: PluginInfo,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    pub(crate) source: CompileSource,
    pub(crate) pre: TaskPluginPre<StoreState>,
}

impl Plugin {
    /// What the plugin said about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Hex SHA-256 of the component bytes: the plugin's identity.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this load compiled the component or found it in the cache.
    pub fn compile_source(&self) -> CompileSource {
        self.source
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.info.id())
            .field("sha256", &self.sha256)
            .field("source", &self.source)
            .finish()
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Tells a component from a core module from anything else, by header.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), PluginError> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(PluginError::NotWasm);
    }
    if bytes[6..8] != COMPONENT_LAYER {
        return Err(PluginError::CoreModule);
    }
    Ok(())
}

/// Budget for `describe` at load time: it must be cheap.
pub(crate) const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn validated(info: bindings::PluginInfo) -> Result<PluginInfo, PluginError> {
    let info = PluginInfo::from(info);
    info.validate()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(PluginError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(PluginError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn identifiers_and_versions() {
        assert!(is_identifier("etl"));
        assert!(is_identifier("log_flood-2"));
        assert!(!is_identifier("Etl"));
        assert!(!is_identifier("2etl"));
        assert!(!is_identifier(""));
        assert!(is_version("0.1.0"));
        assert!(is_version("1.2.3-beta.1"));
        assert!(!is_version("1.2"));
        assert!(!is_version("a.b.c"));
    }
}
