//! Building a workflow in Rust.

use std::path::PathBuf;

use super::defaults::Defaults;
use super::error::WorkflowError;
use super::model::{Step, Workflow, resolve_grants};
use super::validate::validate;

/// Collects a workflow's parts; [`WorkflowBuilder::build`] validates them
/// exactly like a TOML file.
///
/// ```
/// use std::time::Duration;
/// use corral::workflow::{RetryPolicy, Step, Workflow};
///
/// let wf = Workflow::builder("etl")
///     .step(Step::new("extract", "etl/extract"))
///     .step(
///         Step::new("load", "etl/load")
///             .depends_on(["extract"])
///             .retry(RetryPolicy::exponential(3, Duration::from_millis(100), Duration::from_secs(5))),
///     )
///     .build()?;
/// assert_eq!(wf.topological_order()[1].id, "load");
/// # Ok::<(), corral::workflow::WorkflowError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "call `build` to get the workflow"]
pub struct WorkflowBuilder {
    name: String,
    description: Option<String>,
    defaults: Defaults,
    steps: Vec<Step>,
    base_dir: Option<PathBuf>,
}

impl Workflow {
    /// Starts a workflow called `name`.
    pub fn builder(name: impl Into<String>) -> WorkflowBuilder {
        WorkflowBuilder {
            name: name.into(),
            description: None,
            defaults: Defaults::default(),
            steps: Vec::new(),
            base_dir: None,
        }
    }
}

impl WorkflowBuilder {
    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the workflow-wide defaults.
    pub fn defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.steps.extend(steps);
        self
    }

    /// Resolves relative host paths in grants against `dir` (lexically);
    /// without it they are an error, as the process's working directory is
    /// no stable anchor for a stored definition.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Validates and returns the workflow.
    pub fn build(mut self) -> Result<Workflow, WorkflowError> {
        if let Some(base) = &self.base_dir {
            resolve_grants(&mut self.defaults.grants, base);
            for step in &mut self.steps {
                step.resolve_paths(base);
            }
        }
        validate(self.name, self.description, self.defaults, self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::DirGrant;

    #[test]
    fn base_dir_resolves_relative_grants() {
        let wf = Workflow::builder("w")
            .base_dir("/srv/etl")
            .step(Step::new("a", "p/t").dir(DirGrant::read_only("data", "/data")))
            .build()
            .unwrap();
        assert_eq!(
            wf.step("a").unwrap().grants.dirs[0].host,
            PathBuf::from("/srv/etl/data")
        );
    }

    #[test]
    fn step_order_does_not_matter() {
        let a = Workflow::builder("w")
            .step(Step::new("a", "p/t"))
            .step(Step::new("b", "p/t").depends_on(["a"]))
            .build()
            .unwrap();
        let b = Workflow::builder("w")
            .step(Step::new("b", "p/t").depends_on(["a"]))
            .step(Step::new("a", "p/t"))
            .build()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.version(), b.version());
    }

    #[test]
    fn description_changes_the_version() {
        let plain = Workflow::builder("w")
            .step(Step::new("a", "p/t"))
            .build()
            .unwrap();
        let described = Workflow::builder("w")
            .description("d")
            .step(Step::new("a", "p/t"))
            .build()
            .unwrap();
        assert_ne!(plain.version(), described.version());
        assert_eq!(plain.version().len(), 16);
    }
}
