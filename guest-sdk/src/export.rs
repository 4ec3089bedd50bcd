//! The machinery behind [`crate::plugin!`] and [`crate::task`]: task
//! descriptors, `describe`, and `run` dispatch. Not part of the public API.

use serde_json::Value;

use crate::bindings::corral::task::types::{
    PluginInfo, TaskError as WitTaskError, TaskInfo, WorkflowInfo,
};
use crate::{Context, TaskError};

/// A task function: reads its input from the context, sets its output there.
pub type TaskFn = fn(&mut Context) -> Result<(), TaskError>;

/// What `#[task]` records about a task function.
#[derive(Debug, Clone, Copy)]
pub struct TaskDef {
    /// The task's name, unique within the plugin.
    pub name: &'static str,
    /// One line saying what the task does.
    pub description: &'static str,
    /// Default timeout of one attempt, in milliseconds.
    pub default_timeout_ms: Option<u64>,
    /// Suggested maximum number of attempts.
    pub max_attempts: Option<u32>,
    /// The task function.
    pub run: TaskFn,
}

/// What `plugin!` records about a plugin.
#[derive(Debug, Clone, Copy)]
pub struct PluginDef {
    /// The plugin's name.
    pub name: &'static str,
    /// The plugin's version (semver).
    pub version: &'static str,
    /// The tasks, in declaration order.
    pub tasks: &'static [TaskDef],
    /// Shipped workflows: (name, TOML definition).
    pub workflows: &'static [(&'static str, &'static str)],
}

/// Fails compilation (when evaluated in a `const`) if two tasks share a name.
pub const fn check_unique_task_names(tasks: &[TaskDef]) {
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i + 1;
        while j < tasks.len() {
            if str_eq(tasks[i].name, tasks[j].name) {
                panic!(
                    "two tasks of this plugin have the same name; rename one with #[task(name = \"...\")]"
                );
            }
            j += 1;
        }
        i += 1;
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The `describe` export.
pub fn describe(plugin: &PluginDef) -> PluginInfo {
    PluginInfo {
        name: plugin.name.to_owned(),
        version: plugin.version.to_owned(),
        tasks: plugin
            .tasks
            .iter()
            .map(|task| TaskInfo {
                name: task.name.to_owned(),
                description: task.description.to_owned(),
                default_timeout_ms: task.default_timeout_ms,
                max_attempts: task.max_attempts,
            })
            .collect(),
        workflows: plugin
            .workflows
            .iter()
            .map(|(name, definition)| WorkflowInfo {
                name: (*name).to_owned(),
                definition: (*definition).to_owned(),
            })
            .collect(),
    }
}

/// The `run` export: finds the task, runs it, encodes its output.
pub fn run(plugin: &PluginDef, task: String, input: String) -> Result<String, WitTaskError> {
    install_panic_hook();
    let result = run_task(plugin, &task, input).map_err(|err| WitTaskError {
        retryable: err.is_retryable(),
        message: err.message().to_owned(),
    });
    // std's stdout is line-buffered and the instance never exits: without
    // a flush, a last line without a newline would never reach the host.
    {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
    result
}

fn run_task(plugin: &PluginDef, task: &str, input: String) -> Result<String, TaskError> {
    let def = plugin
        .tasks
        .iter()
        .find(|def| def.name == task)
        .ok_or_else(|| {
            let offered: Vec<&str> = plugin.tasks.iter().map(|def| def.name).collect();
            TaskError::permanent(format!(
                "unknown task `{task}`; this plugin offers: {}",
                offered.join(", ")
            ))
        })?;
    let mut ctx = Context::from_json(&input)?;
    drop(input);
    (def.run)(&mut ctx)?;
    encode(&Value::Object(ctx.into_output()))
        .map_err(|err| TaskError::permanent(format!("task output cannot be encoded: {err}")))
}

/// JSON text of `output`, allocated once at its exact size: a large output
/// then needs its own size in memory once more, not up to twice that.
fn encode(output: &Value) -> serde_json::Result<String> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, output)?;
    let mut text = Vec::with_capacity(count.0);
    serde_json::to_writer(&mut text, output)?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8(text).expect("serde_json emits UTF-8"))
}

/// Makes a panic reach the host as the attempt's failure message.
///
/// `wasm32-wasip2` aborts on panic, so the message would otherwise only be
/// visible on stderr; the hook sends `"<message> (at <file>:<line>:<col>)"`
/// through the `panicked` import, then runs the default hook (stderr).
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let payload = info.payload_as_str().unwrap_or("Box<dyn Any>");
                let message = match info.location() {
                    Some(at) => {
                        format!("{payload} (at {}:{}:{})", at.file(), at.line(), at.column())
                    }
                    None => payload.to_owned(),
                };
                crate::host::panicked(&message);
                previous(info);
            }));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shout(ctx: &mut Context) -> Result<(), TaskError> {
        let word: String = ctx.get("word")?;
        ctx.set("loud", word.to_uppercase())
    }

    fn flaky(_: &mut Context) -> Result<(), TaskError> {
        Err(TaskError::retryable("try again"))
    }

    const TASKS: &[TaskDef] = &[
        TaskDef {
            name: "shout",
            description: "Shouts",
            default_timeout_ms: Some(1000),
            max_attempts: None,
            run: shout,
        },
        TaskDef {
            name: "flaky",
            description: "",
            default_timeout_ms: None,
            max_attempts: Some(3),
            run: flaky,
        },
    ];
    const PLUGIN: PluginDef = PluginDef {
        name: "test",
        version: "0.1.0",
        tasks: TASKS,
        workflows: &[("wf", "name = 'wf'")],
    };
    const _: () = check_unique_task_names(TASKS);

    fn call(task: &str, input: &str) -> Result<String, WitTaskError> {
        run(&PLUGIN, task.into(), input.into())
    }

    #[test]
    fn runs_and_returns_only_the_output() {
        assert_eq!(
            call("shout", r#"{"word":"hi","x":1}"#).unwrap(),
            r#"{"loud":"HI"}"#
        );
    }

    #[test]
    fn errors_keep_their_kind() {
        let err = call("flaky", "{}").unwrap_err();
        assert!(err.retryable);
        assert_eq!(err.message, "try again");
        let err = call("shout", "{}").unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.message, "missing input `word`");
    }

    #[test]
    fn unknown_task_lists_the_offer() {
        let err = call("nope", "{}").unwrap_err();
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "unknown task `nope`; this plugin offers: shout, flaky"
        );
    }

    #[test]
    fn input_must_be_an_object() {
        let err = call("shout", "42").unwrap_err();
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "task input must be a JSON object, got a number"
        );
    }

    #[test]
    fn describes_tasks_and_workflows() {
        let info = describe(&PLUGIN);
        assert_eq!(info.name, "test");
        assert_eq!(info.tasks.len(), 2);
        assert_eq!(info.tasks[0].default_timeout_ms, Some(1000));
        assert_eq!(info.tasks[1].max_attempts, Some(3));
        assert_eq!(info.workflows[0].name, "wf");
    }
}
