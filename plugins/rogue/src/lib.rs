//! Hostile plugins, written against the raw bindings (not the guest SDK,
//! which would refuse most of this at compile time). Each cargo feature
//! builds one variant; `tests/artifacts` builds them all as
//! `rogue-<feature>.wasm`.

#[cfg(not(feature = "impostor"))]
mod contract {
    wit_bindgen::generate!({ path: "../../wit", world: "corral:task/task-plugin" });

    use corral::task::host;
    use corral::task::types::{PluginInfo, TaskError, TaskInfo, WorkflowInfo};

    struct Rogue;

    /// The tasks of every variant: each abuses one thing the host keeps.
    const TASKS: &[(&str, &str)] = &[
        ("ok", "Returns its input"),
        ("fail-huge", "Fails, retryably, with a 10 MiB message"),
        ("panic-huge", "Panics with a 10 MiB message"),
        ("log-huge", "Logs one 10 MiB line"),
        ("note-huge", "Reports progress with a 10 MiB note"),
        ("print-no-newline", "Prints to stdout without a final newline"),
        ("version", "Returns {\"version\": the plugin's version}"),
    ];

    /// The version `describe` gives: the feature `v2` builds the same
    /// plugin as a later version, to test which registration runs.
    const VERSION: &str = if cfg!(feature = "v2") {
        "0.2.0"
    } else {
        "0.1.0"
    };

    fn task(name: &str, description: String) -> TaskInfo {
        TaskInfo {
            name: name.to_owned(),
            description,
            default_timeout_ms: None,
            max_attempts: None,
        }
    }

    fn shipped(name: &str, extra: &str) -> WorkflowInfo {
        WorkflowInfo {
            name: name.to_owned(),
            definition: format!(
                "name = \"{name}\"\n[[steps]]\nid = \"only\"\ntask = \"rogue/ok\"\n{extra}"
            ),
        }
    }

    impl exports::corral::task::plugin::Guest for Rogue {
        fn describe() -> PluginInfo {
            let mut tasks: Vec<TaskInfo> = TASKS
                .iter()
                .map(|(name, description)| task(name, (*description).to_owned()))
                .collect();
            let mut workflows = Vec::new();
            if cfg!(feature = "huge-description") {
                tasks[0].description = "x".repeat(10 << 20);
            }
            if cfg!(feature = "multiline-description") {
                tasks[0].description = "first line\nsecond line".to_owned();
            }
            if cfg!(feature = "many-tasks") {
                tasks.extend((0..100_000).map(|i| task(&format!("t{i}"), String::new())));
            }
            if cfg!(feature = "ships-grants") {
                workflows.push(shipped("rogue-fine", ""));
                workflows.push(shipped(
                    "rogue-greedy",
                    "grants.dirs = [{ host = \"/\", guest = \"/host\", writable = true }]\n",
                ));
            }
            if cfg!(feature = "ships-victim") {
                workflows.push(shipped("victim", ""));
            }
            if cfg!(feature = "slow-describe") {
                // Busy for ~300 ms: loads within a generous describe
                // timeout, fails a tight one.
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(300) {
                    std::hint::black_box(());
                }
            }
            PluginInfo {
                name: "rogue".to_owned(),
                version: VERSION.to_owned(),
                tasks,
                workflows,
            }
        }

        fn run(task: String, input: String) -> Result<String, TaskError> {
            const HUGE: usize = 10 << 20;
            match task.as_str() {
                "fail-huge" => {
                    return Err(TaskError {
                        message: "e".repeat(HUGE),
                        retryable: true,
                    });
                }
                "panic-huge" => {
                    host::panicked(&"p".repeat(HUGE));
                    std::process::abort();
                }
                "log-huge" => host::log(corral::task::types::Level::Info, &"l".repeat(HUGE)),
                "note-huge" => host::progress(0.5, &"n".repeat(HUGE)),
                "version" => return Ok(format!("{{\"version\":\"{VERSION}\"}}")),
                "print-no-newline" => {
                    use std::io::Write as _;
                    print!("no newline at the end");
                    let _ = std::io::stdout().flush();
                }
                _ => host::log(corral::task::types::Level::Info, "rogue ran"),
            }
            Ok(input)
        }
    }

    export!(Rogue);
}

#[cfg(feature = "impostor")]
mod impostor {
    wit_bindgen::generate!({ path: "impostor-wit", world: "corral:task/task-plugin" });

    struct Impostor;

    impl exports::corral::task::plugin::Guest for Impostor {
        fn describe() -> String {
            "not plugin info".to_owned()
        }

        fn run(_task: String, input: String) -> String {
            input
        }
    }

    export!(Impostor);
}
