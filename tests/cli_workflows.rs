//! The `corral` binary's workflow commands from the outside: `workflow
//! apply|list|show`, `run` (attached and detached), `status`, `executions`,
//! `logs`, `cancel` and `serve` as a real child process.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::artifacts;
use corral::Workflow;
use serde_json::{Value, json};

/// A scratch working directory with its own `./corral.db` and artifact cache.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A working directory with the three test plugins registered.
    fn with_plugins() -> Self {
        let w = Self::new();
        for plugin in [artifacts::HELLO, artifacts::CHAOS, artifacts::ETL] {
            let out = w.corral(&["plugin", "add", plugin]);
            assert!(out.status.success(), "plugin add: {}", stderr(&out));
        }
        w
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("CORRAL_DATABASE_URL")
            .env("CORRAL_CACHE_DIR", self.path().join("cache"))
            .env("RUST_LOG", "warn");
        command
    }

    fn corral(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("corral runs")
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.corral(args);
        assert!(
            out.status.success(),
            "corral {args:?} failed ({:?}): {}",
            out.status,
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs a command with `--json` that must succeed; its stdout as JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("corral {all:?} printed no JSON ({e}): {text}"))
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `toml` to `name` and applies it; stdout.
    fn apply(&self, name: &str, toml: &str) -> String {
        self.file(name, toml);
        self.ok(&["workflow", "apply", name])
    }

    fn executions(&self) -> Vec<Value> {
        match self.json(&["executions"]) {
            Value::Array(list) => list,
            other => panic!("executions --json is not an array: {other}"),
        }
    }

    fn status(&self, id: &str) -> Value {
        self.json(&["status", id])
    }

    /// Polls `status ID --json` until `check` holds.
    fn wait_for(&self, id: &str, within: Duration, what: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id);
            if check(&status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not within {within:?}: {what}; last status: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `corral serve` with its stderr in `serve.log`.
    fn serve(&self, args: &[&str]) -> Serve {
        let log = self.path().join("serve.log");
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("corral serve starts");
        Serve { child, log }
    }
}

/// A running `corral serve`; killed if a test fails before stopping it.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status within `within`.
    fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "corral serve did not exit within {within:?} of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed command: exit code not 0, and one last line `error: …` on
/// stderr that contains every needle.
fn assert_fails(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "expected a failure exit, got {:?}; stdout: {}; stderr: {err}",
        out.status,
        stdout(out)
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "last stderr line: {err}");
    for needle in needles {
        assert!(last.contains(needle), "`{needle}` not in: {last}");
    }
}

fn version_of(path: &Path) -> String {
    Workflow::from_toml_file(path)
        .expect("workflow parses")
        .version()
        .to_owned()
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step `{id}` in {report:#}"))
}

/// The repository's etl workflow, copied next to a copy of its data and an
/// empty `out/`, so that its relative grants resolve in the work dir.
fn etl_copy(w: &Workdir) -> PathBuf {
    let source = Path::new(artifacts::PLUGINS_DIR).join("etl");
    let dir = w.path().join("etl");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::copy(source.join("data/sales.csv"), dir.join("data/sales.csv")).unwrap();
    let file = dir.join("workflow.toml");
    std::fs::copy(source.join("workflow.toml"), &file).unwrap();
    file
}

const GREET: &str = r#"
name = "greet"
[[steps]]
id = "greet"
task = "hello/greet"
"#;

const GREET_V2: &str = r#"
name = "greet"
description = "now with a description"
[[steps]]
id = "greet"
task = "hello/greet"
"#;

const FAILING: &str = r#"
name = "failing"
[[steps]]
id = "fine"
task = "chaos/noop"
[[steps]]
id = "boom"
task = "chaos/fail_permanent"
depends_on = ["fine"]
"#;

const SPIN: &str = r#"
name = "spin"
[[steps]]
id = "spin"
task = "chaos/spin"
timeout = "60s"
[[steps]]
id = "after"
task = "chaos/echo"
depends_on = ["spin"]
"#;

// ---------------------------------------------------------------------------

#[test]
fn workflow_apply_reports_changes_and_rejects_bad_files() {
    let w = Workdir::with_plugins();

    let file = w.file("greet.toml", GREET);
    let v1 = version_of(&file);
    assert_eq!(
        w.ok(&["workflow", "apply", "greet.toml"]),
        format!("created greet@{v1}\n")
    );
    assert_eq!(
        w.ok(&["workflow", "apply", "greet.toml"]),
        format!("unchanged greet@{v1}\n")
    );
    w.file("greet.toml", GREET_V2);
    let v2 = version_of(&file);
    let updated = w.ok(&["workflow", "apply", "greet.toml"]);
    assert!(
        updated.starts_with("updated greet") && updated.contains(&v1) && updated.contains(&v2),
        "{updated}"
    );

    let etl = etl_copy(&w);
    let etl_version = version_of(&etl);
    let applied = w.json(&["workflow", "apply", etl.to_str().unwrap()]);
    assert_eq!(applied["name"], "etl");
    assert_eq!(applied["version"], etl_version.as_str());
    assert_eq!(applied["applied"]["change"], "created");

    // list, text and JSON
    let list = w.ok(&["workflow", "list"]);
    assert!(
        list.contains("greet") && list.contains(&v2) && list.contains("etl"),
        "{list}"
    );
    assert!(
        !list.contains(&v1),
        "only the latest version is listed: {list}"
    );
    let listed = w.json(&["workflow", "list"]);
    let mut names: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_owned(),
                w["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("etl".to_owned(), etl_version.clone()),
            ("greet".to_owned(), v2.clone())
        ]
    );

    // show, text and JSON, latest and older versions
    let show = w.ok(&["workflow", "show", "etl"]);
    assert!(show.contains(&format!("etl@{etl_version}")), "{show}");
    for step in ["extract", "transform", "load"] {
        assert!(show.contains(step), "{show}");
    }
    let shown = w.json(&["workflow", "show", "etl"]);
    assert_eq!(shown["name"], "etl");
    assert_eq!(shown["version"], etl_version.as_str());
    assert_eq!(shown["definition"]["steps"].as_array().unwrap().len(), 3);
    let old = w.json(&["workflow", "show", &format!("greet@{v1}")]);
    assert_eq!(old["version"], v1.as_str());
    assert_fails(&w.corral(&["workflow", "show", "nope"]), &["nope"]);

    // Bad files: one-line errors naming the culprit, nothing stored.
    let before = w.json(&["workflow", "list"]);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "syntax.toml",
            "name = \"greet\"\n[[steps]\nid = 1\n",
            &["line 2"],
        ),
        (
            "unknown_key.toml",
            "name = \"greet\"\ncolour = \"red\"\n[[steps]]\nid = \"a\"\ntask = \"chaos/echo\"\n",
            &["colour"],
        ),
        (
            "cycle.toml",
            r#"
            name = "greet"
            [[steps]]
            id = "a"
            task = "chaos/echo"
            depends_on = ["b"]
            [[steps]]
            id = "b"
            task = "chaos/echo"
            depends_on = ["a"]
            "#,
            &["cycle", "a -> b -> a"],
        ),
        (
            "unknown_task.toml",
            r#"
            name = "newcomer"
            [[steps]]
            id = "greet"
            task = "hello/nope"
            "#,
            &["`greet`", "`nope`"],
        ),
        (
            "unknown_plugin.toml",
            r#"
            name = "greet"
            [[steps]]
            id = "greet"
            task = "ghost/greet"
            "#,
            &["`ghost`"],
        ),
    ];
    for (name, toml, needles) in cases {
        w.file(name, toml);
        assert_fails(&w.corral(&["workflow", "apply", name]), needles);
        assert_eq!(
            w.json(&["workflow", "list"]),
            before,
            "{name} stored something"
        );
    }
    assert_fails(
        &w.corral(&["workflow", "apply", "missing.toml"]),
        &["missing.toml"],
    );
    assert_eq!(w.json(&["workflow", "list"]), before);
}

#[test]
fn run_prints_the_result_and_exits_by_the_outcome() {
    let w = Workdir::with_plugins();
    w.apply("greet.toml", GREET);
    w.apply("failing.toml", FAILING);

    let out = w.corral(&["run", "greet", "--input", r#"{"name":"Ada"}"#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("stdout is not the result JSON ({e}): {}", stdout(&out)));
    assert_eq!(result, json!({"greeting": "hello, Ada"}));
    w.file("input.json", r#"{"name": "Lin"}"#);
    let out = w.ok(&["run", "greet", "--input-file", "input.json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["greeting"],
        "hello, Lin"
    );

    // --json: the whole report.
    let report = w.json(&["run", "greet", "--input", r#"{"name":"Bo"}"#]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"]["greeting"], "hello, Bo");
    assert_eq!(step(&report, "greet")["attempts"], 1);

    // A failing workflow: exit ≠ 0, one line naming the failed step.
    let out = w.corral(&["run", "failing"]);
    assert_fails(&out, &["`boom`", "chaos: permanent failure"]);
    assert_eq!(w.executions().len(), 4);
    let failed = w.json(&["executions", "--status", "failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed:#}");
    assert_eq!(failed[0]["workflow"], "failing");

    // Bad input or an unknown workflow: nothing new is stored.
    assert_fails(
        &w.corral(&["run", "greet", "--input", "{not json"]),
        &["JSON"],
    );
    assert_fails(
        &w.corral(&["run", "greet", "--input", "[1, 2]"]),
        &["object"],
    );
    assert_fails(
        &w.corral(&["run", "greet", "--input-file", "no-such-input.json"]),
        &["no-such-input.json"],
    );
    assert_fails(
        &w.corral(&["run", "no_such_workflow"]),
        &["no_such_workflow"],
    );
    assert_fails(
        &w.corral(&["run", "no_such_workflow", "--detach"]),
        &["no_such_workflow"],
    );
    assert_fails(
        &w.corral(&["run", "greet", "--detach", "--input", "42"]),
        &["object"],
    );
    assert_eq!(
        w.executions().len(),
        4,
        "a rejected run created an execution"
    );
}

#[test]
fn detached_executions_run_under_serve_and_can_be_inspected() {
    let w = Workdir::with_plugins();
    w.apply("greet.toml", GREET);
    w.apply("failing.toml", FAILING);

    let id = w.ok(&["run", "greet", "--detach", "--input", r#"{"name":"Ada"}"#]);
    let id = id.trim().to_owned();
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "{id:?}"
    );
    let failing = w.ok(&["run", "failing", "--detach"]).trim().to_owned();

    // Nobody runs it yet.
    let text = w.ok(&["status", &id]);
    assert!(text.contains(&id) && text.contains("running"), "{text}");
    let status = w.status(&id);
    assert_eq!(status["status"], "running");
    assert_eq!(status["workflow"], "greet");
    let waiting = step(&status, "greet")["status"].clone();
    assert!(
        waiting == "ready" || waiting == "pending",
        "nothing should run it yet: {status:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.status(&id)["status"], "running", "nobody runs it yet");

    let mut serve = w.serve(&["--lease", "2s"]);
    w.wait_for(&id, Duration::from_secs(30), "greet succeeded", |s| {
        s["status"] == "succeeded"
    });
    w.wait_for(&failing, Duration::from_secs(30), "failing ended", |s| {
        s["status"] == "failed"
    });
    let exit = serve.terminate(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "serve log:\n{}", serve.log());

    let report = w.status(&id);
    assert_eq!(report["output"]["greeting"], "hello, Ada");
    assert_eq!(step(&report, "greet")["status"], "succeeded");
    let report = w.status(&failing);
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`boom`"),
        "{report:#}"
    );

    // logs: every step's attempts.
    let logs = w.ok(&["logs", &failing]);
    assert!(
        logs.contains("== fine attempt 1") && logs.contains("succeeded"),
        "{logs}"
    );
    assert!(
        logs.contains("== boom attempt 1") && logs.contains("chaos: permanent failure"),
        "{logs}"
    );
    let only_boom = w.ok(&["logs", &failing, "boom"]);
    assert!(
        only_boom.contains("== boom attempt 1") && !only_boom.contains("== fine"),
        "{only_boom}"
    );
    let attempts = w.json(&["logs", &id]);
    let attempts = attempts.as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["step_id"], "greet");
    assert_eq!(attempts[0]["outcome"], "succeeded");

    // executions, filtered
    let listed = w.json(&["executions", "--workflow", "greet", "--status", "succeeded"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let none = w.json(&[
        "executions",
        "--workflow",
        "failing",
        "--status",
        "succeeded",
    ]);
    assert_eq!(none, json!([]));
    let text = w.ok(&["executions"]);
    assert!(text.contains(&id) && text.contains(&failing), "{text}");

    // executions, one page at a time: stderr says how to go on.
    let all = w.json(&["executions"]);
    let mut paged = Vec::new();
    let mut args = vec!["executions".to_owned(), "--limit".into(), "1".into()];
    loop {
        let mut with_json: Vec<&str> = args.iter().map(String::as_str).collect();
        with_json.push("--json");
        let out = w.corral(&with_json);
        assert!(out.status.success(), "{}", stderr(&out));
        let page: Value = serde_json::from_str(&stdout(&out)).unwrap();
        paged.extend(page.as_array().unwrap().iter().cloned());
        let Some(cursor) = stderr(&out)
            .lines()
            .find_map(|l| l.strip_prefix("more: repeat with --before "))
            .map(str::to_owned)
        else {
            break;
        };
        args.truncate(3);
        args.extend(["--before".into(), cursor]);
    }
    assert_eq!(Value::Array(paged), all);
    let bad = w.corral(&["executions", "--before", "yesterday"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid cursor `yesterday`"),
        "{}",
        stderr(&bad)
    );

    // Unknown ids.
    for args in [
        &["cancel", "no-such-id"][..],
        &["status", "no-such-id"],
        &["logs", "no-such-id"],
    ] {
        assert_fails(&w.corral(args), &["no-such-id"]);
    }
    assert_eq!(w.executions().len(), 2);
}

#[test]
fn cancel_reaches_the_serve_host_running_the_attempt() {
    let w = Workdir::with_plugins();
    w.apply("spin.toml", SPIN);
    let mut serve = w.serve(&[]);
    let id = w.ok(&["run", "spin", "--detach"]).trim().to_owned();
    w.wait_for(&id, Duration::from_secs(30), "the spin step runs", |s| {
        step(s, "spin")["status"] == "running"
    });
    std::thread::sleep(Duration::from_millis(200));

    let cancelled = w.json(&["cancel", &id]);
    assert_eq!(cancelled["id"], id.as_str());
    assert_eq!(step(&cancelled, "after")["status"], "cancelled");

    w.wait_for(
        &id,
        Duration::from_secs(5),
        "the execution is cancelled",
        |s| s["status"] == "cancelled",
    );
    let report = w.status(&id);
    assert_eq!(step(&report, "spin")["status"], "cancelled", "{report:#}");
    assert_eq!(step(&report, "after")["status"], "cancelled", "{report:#}");
    let attempts = w.json(&["logs", &id, "spin"]);
    assert_eq!(attempts[0]["outcome"], "cancelled", "{attempts:#}");

    // Nothing left in flight: serve stops at once, without needing its grace.
    let exit = serve.terminate(Duration::from_secs(5));
    assert_eq!(exit.code(), Some(0), "serve log:\n{}", serve.log());
    let log = serve.log();
    assert!(log.contains("0 halted"), "{log}");
}

#[test]
fn every_command_prints_json_with_json() {
    let w = Workdir::new();
    let mut outputs: Vec<(String, Value)> = Vec::new();
    let mut record = |args: &[&str]| {
        let value = w.json(args);
        outputs.push((args.join(" "), value.clone()));
        value
    };

    let added = record(&["plugin", "add", artifacts::HELLO]);
    assert_eq!(added["name"], "hello");
    record(&["plugin", "add", artifacts::CHAOS]);
    record(&["plugin", "list"]);
    w.file("greet.toml", GREET);
    record(&["workflow", "apply", "greet.toml"]);
    record(&["workflow", "list"]);
    record(&["workflow", "show", "greet"]);
    let ran = record(&["run", "greet", "--input", r#"{"name":"Ada"}"#]);
    assert_eq!(ran["status"], "succeeded");
    let id = ran["id"].as_str().unwrap().to_owned();
    record(&["status", &id]);
    record(&["executions"]);
    record(&["logs", &id]);
    record(&["logs", &id, "greet"]);
    record(&["cancel", &id]);
    let detached = record(&["run", "greet", "--detach"]);
    let detached = detached["id"].as_str().unwrap().to_owned();
    let cancelled = record(&["cancel", &detached]);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
    record(&["invoke", "hello", "greet", "--input", r#"{"name":"Lin"}"#]);

    // serve: its shutdown report.
    let out_path = w.path().join("serve.stdout");
    let mut serve = Serve {
        child: w
            .command(&["serve", "--json"])
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(w.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
        log: w.path().join("serve.log"),
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(serve.terminate(Duration::from_secs(10)).code(), Some(0));
    let text = std::fs::read_to_string(&out_path).unwrap();
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("serve --json printed no JSON ({e}): {text}"));
    outputs.push(("serve".to_owned(), value));

    for (command, value) in &outputs {
        assert!(value.is_object() || value.is_array(), "{command}: {value}");
    }
    // The finished execution was not changed by its cancel.
    assert_eq!(w.status(&id)["status"], "succeeded");
}

const BUSY: &str = r#"
name = "busy"
[[steps]]
id = "burn"
task = "chaos/burn"
input = { ms = 1500 }
timeout = "30s"
[[steps]]
id = "done"
task = "chaos/echo"
depends_on = ["burn"]
input = { done = true }
"#;

fn outcomes(w: &Workdir, id: &str, step: &str) -> Vec<String> {
    w.json(&["logs", id, step])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or("running").to_owned())
        .collect()
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn serve_halts_what_outlives_its_grace_and_the_next_serve_resumes_it() {
    let w = Workdir::with_plugins();
    w.apply("busy.toml", BUSY);
    let id = w.ok(&["run", "busy", "--detach"]).trim().to_owned();

    let mut serve = w.serve(&["--grace", "100ms", "--lease", "2s"]);
    w.wait_for(&id, Duration::from_secs(30), "the burn step runs", |s| {
        step(s, "burn")["status"] == "running"
    });
    std::thread::sleep(Duration::from_millis(200));
    signal(&serve.child, libc::SIGINT);
    let exit = serve.terminate(Duration::from_secs(5));
    assert_eq!(exit.code(), Some(0), "serve log:\n{}", serve.log());
    assert!(serve.log().contains("1 halted"), "{}", serve.log());

    // Interrupted: back in the queue, not counted as an attempt.
    let report = w.status(&id);
    assert_eq!(report["status"], "running", "{report:#}");
    let burn = step(&report, "burn");
    assert!(
        burn["status"] == "ready" || burn["status"] == "pending",
        "{report:#}"
    );
    assert_eq!(burn["attempts"], 0, "{report:#}");
    assert_eq!(outcomes(&w, &id, "burn"), ["interrupted"]);

    let mut serve = w.serve(&["--lease", "2s"]);
    w.wait_for(
        &id,
        Duration::from_secs(30),
        "the next serve finishes it",
        |s| s["status"] == "succeeded",
    );
    assert_eq!(serve.terminate(Duration::from_secs(10)).code(), Some(0));
    let report = w.status(&id);
    assert_eq!(report["output"]["done"], true, "{report:#}");
    assert_eq!(step(&report, "burn")["attempts"], 1, "{report:#}");
    assert_eq!(outcomes(&w, &id, "burn"), ["interrupted", "succeeded"]);
    assert_eq!(outcomes(&w, &id, "done"), ["succeeded"]);
}

#[test]
fn ctrl_c_on_run_leaves_the_execution_to_serve() {
    let w = Workdir::with_plugins();
    w.apply("busy.toml", BUSY);
    let err_log = w.path().join("run.stderr");
    let mut run = w
        .command(&["run", "busy", "--grace", "100ms"])
        .stdout(Stdio::piped())
        .stderr(File::create(&err_log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let running = w.executions();
        if let Some(e) = running.first() {
            let id = e["id"].as_str().unwrap().to_owned();
            if step(&w.status(&id), "burn")["status"] == "running" {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the burn step never ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(200));
    signal(&run, libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("corral run did not stop within 5 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&err_log).unwrap();
    assert!(
        !status.success() && status.code().is_some(),
        "{status:?}: {err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("interrupted") && last.contains(&id),
        "{err}"
    );
    assert_eq!(w.status(&id)["status"], "running");
    assert_eq!(outcomes(&w, &id, "burn"), ["interrupted"]);

    let mut serve = w.serve(&[]);
    w.wait_for(&id, Duration::from_secs(30), "serve finishes it", |s| {
        s["status"] == "succeeded"
    });
    assert_eq!(serve.terminate(Duration::from_secs(10)).code(), Some(0));
    assert_eq!(outcomes(&w, &id, "burn"), ["interrupted", "succeeded"]);
}

#[test]
fn etl_runs_end_to_end_from_its_workflow_file() {
    let w = Workdir::with_plugins();
    etl_copy(&w);
    let applied = w.ok(&["workflow", "apply", "etl/workflow.toml"]);
    assert!(applied.starts_with("created etl@"), "{applied}");
    let out = w.corral(&["run", "etl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["grand_total"]["count"], 20, "{result:#}");
    assert_eq!(result["report_path"], "/out/report.json");
    let report = w.path().join("etl/out/report.json");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(written["grand_total"], result["grand_total"]);
}

#[test]
fn cancel_from_another_process_stops_an_attached_run() {
    let w = Workdir::with_plugins();
    w.apply("spin.toml", SPIN);
    let err_log = w.path().join("run.stderr");
    let mut run = w
        .command(&["run", "spin"])
        .stdout(Stdio::piped())
        .stderr(File::create(&err_log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        if let Some(e) = w.executions().first() {
            let id = e["id"].as_str().unwrap().to_owned();
            if step(&w.status(&id), "spin")["status"] == "running" {
                break id;
            }
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("the spin step never ran");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    w.ok(&["cancel", &id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("corral run still runs 5 s after its execution was cancelled");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&err_log).unwrap();
    assert!(
        !status.success() && status.code().is_some(),
        "{status:?}: {err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("cancelled"),
        "{err}"
    );
    let report = w.status(&id);
    assert_eq!(report["status"], "cancelled", "{report:#}");
    assert_eq!(step(&report, "spin")["status"], "cancelled", "{report:#}");
}

const CHAIN: &str = r#"
name = "chain"
[[steps]]
id = "one"
task = "chaos/echo"
[[steps]]
id = "two"
task = "chaos/echo"
depends_on = ["one"]
[[steps]]
id = "three"
task = "chaos/echo"
depends_on = ["two"]
input = { done = true }
"#;

/// Not on a terminal, `run` prints plain lines of step changes on stderr,
/// down to every step's final state. (Intermediate states may be
/// coalesced when a step changes faster than the view; the final ones
/// cannot be.)
#[test]
fn run_without_a_terminal_prints_each_steps_final_state() {
    let w = Workdir::with_plugins();
    w.apply("chain.toml", CHAIN);
    for round in 0..10 {
        let out = w.corral(&["run", "chain"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            serde_json::from_str::<Value>(&stdout(&out)).unwrap()["done"],
            true
        );
        let err = stderr(&out);
        for step in ["one", "two", "three"] {
            let line = format!("step {step}: succeeded");
            assert!(
                err.lines().any(|l| l == line),
                "round {round}: no line `{line}` in:\n{err}"
            );
        }
    }
}
