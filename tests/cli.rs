//! The `corral` binary from the outside: plugin registration, bad input,
//! `invoke` with real grants, exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::artifacts;
use serde_json::Value;

/// A scratch working directory with its own database and artifact cache.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn corral(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .current_dir(self.path())
            .env_remove("CORRAL_DATABASE_URL")
            .env("CORRAL_CACHE_DIR", self.path().join("cache"))
            .env("RUST_LOG", "warn")
            .output()
            .expect("corral runs")
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed command: the expected exit code, and one line on stderr that
/// contains `needle`.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "stderr: {err}"
    );
}

#[test]
fn plugin_add_registers_and_lists() {
    let w = Workdir::new();
    let out = w.corral(&["plugin", "add", artifacts::HELLO]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.starts_with("hello@0.1.0 sha256:"), "{line}");
    assert!(
        w.path().join("corral.db").is_file(),
        "the default database is ./corral.db"
    );

    let again = w.corral(&["plugin", "add", artifacts::HELLO]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("unchanged"));

    let list = w.corral(&["plugin", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let list: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let plugins = list.as_array().unwrap();
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0]["info"]["name"], "hello");
    assert_eq!(plugins[0]["info"]["tasks"][0]["name"], "greet");
}

#[test]
fn plugin_add_rejects_each_bad_input_kind() {
    let w = Workdir::new();
    let missing = w.corral(&["plugin", "add", "no-such-file.wasm"]);
    assert_fails(&missing, 1, "cannot read plugin file");

    let text = w.file("notes.wasm", b"this is not wasm at all");
    assert_fails(
        &w.corral(&["plugin", "add", text.to_str().unwrap()]),
        1,
        "not a WebAssembly file",
    );

    let core = w.file("core.wasm", b"\0asm\x01\0\0\0");
    assert_fails(
        &w.corral(&["plugin", "add", core.to_str().unwrap()]),
        1,
        "core WebAssembly module",
    );

    // A valid but empty component: it exports nothing of our world.
    let empty = w.file("empty.wasm", b"\0asm\x0d\0\x01\0");
    assert_fails(
        &w.corral(&["plugin", "add", empty.to_str().unwrap()]),
        1,
        "does not match the corral:task",
    );

    let broken = w.file("broken.wasm", b"\0asm\x0d\0\x01\0\xff\xff");
    assert_fails(
        &w.corral(&["plugin", "add", broken.to_str().unwrap()]),
        1,
        "invalid component",
    );

    // Nothing was stored by any of them.
    let list = w.corral(&["plugin", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&list)).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn invoke_runs_registered_plugins_and_files() {
    let w = Workdir::new();
    assert!(
        w.corral(&["plugin", "add", artifacts::HELLO])
            .status
            .success()
    );
    let out = w.corral(&["invoke", "hello", "greet", "--input", r#"{"name":"Grace"}"#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["greeting"], "hello, Grace");

    let out = w.corral(&[
        "invoke",
        artifacts::HELLO,
        "greet",
        "--input",
        r#"{"name":"Lin"}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    assert_fails(
        &w.corral(&["invoke", "nope", "greet"]),
        1,
        "no plugin `nope`",
    );
    assert_fails(
        &w.corral(&["invoke", "hello", "greet", "--input", "[1]"]),
        1,
        "JSON object",
    );
    assert_fails(
        &w.corral(&["invoke", "hello", "greet", "--input", "{"]),
        1,
        "not valid JSON",
    );
    assert_fails(
        &w.corral(&["invoke", "hello", "shout"]),
        1,
        "no task `shout`",
    );
}

#[test]
fn invoke_exit_codes_tell_failure_kinds_apart() {
    let w = Workdir::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["fail_permanent"], 10, "permanent failure"),
        (&["fail_retryable"], 11, "retryable"),
        (&["spin", "--timeout", "200ms"], 12, "timed out"),
        (&["alloc"], 15, "memory limit"),
        (&["stack_overflow"], 16, "trapped"),
        (&["huge_output", "--memory", "512MiB"], 17, "invalid output"),
        (&["panic"], 10, "deliberate panic"),
    ];
    for (args, code, needle) in cases {
        let mut all = vec!["invoke", artifacts::CHAOS];
        all.extend_from_slice(args);
        assert_fails(&w.corral(&all), *code, needle);
    }
}

#[test]
fn etl_pipeline_runs_through_invoke_with_real_grants() {
    let w = Workdir::new();
    let data = Path::new(artifacts::PLUGINS_DIR).join("etl/data");
    let out_dir = w.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let data_grant = format!("{}:/data", data.display());
    let out_grant = format!("{}:/out:rw", out_dir.display());
    let step = |task: &str, input: &str| {
        let out = w.corral(&[
            "invoke",
            artifacts::ETL,
            task,
            "--input",
            input,
            "--dir",
            &data_grant,
            "--dir",
            &out_grant,
        ]);
        assert!(out.status.success(), "{task}: {}", stderr(&out));
        stdout(&out)
    };
    let rows = step("extract", "{}");
    let totals = step("transform", &rows);
    let loaded: Value = serde_json::from_str(&step("load", &totals)).unwrap();
    assert!(loaded.is_object());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert!(report.is_object());

    // Without the writable grant, load cannot write its report.
    let ro = format!("{}:/out", out_dir.display());
    let out = w.corral(&[
        "invoke",
        artifacts::ETL,
        "load",
        "--input",
        &totals,
        "--dir",
        &ro,
    ]);
    assert!(!out.status.success());
}

#[test]
fn bad_grants_are_one_line_errors() {
    let w = Workdir::new();
    let out = w.corral(&[
        "invoke",
        artifacts::HELLO,
        "greet",
        "--dir",
        "/no/such/dir:/data",
    ]);
    assert_fails(&out, 1, "does not exist");
    let out = w.corral(&["invoke", artifacts::HELLO, "greet", "--dir", "nonsense"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap usage error: {}",
        stderr(&out)
    );
}

#[test]
fn a_huge_guest_failure_prints_a_capped_line() {
    let w = Workdir::new();
    for task in ["fail-huge", "panic-huge"] {
        let out = w.corral(&["invoke", artifacts::ROGUE, task]);
        let err = stderr(&out);
        assert!(
            err.len() < 100 << 10,
            "{task}: {} bytes on stderr for a 10 MiB message",
            err.len()
        );
        assert!(err.trim_end().ends_with("bytes cut]"), "{task}");
    }
}

#[test]
fn a_plugin_whose_shipped_workflow_is_rejected_stays_unregistered() {
    let w = Workdir::new();
    let out = w.corral(&["plugin", "add", artifacts::ROGUE_SHIPS_GRANTS]);
    assert_fails(&out, 1, "cannot set `grants`");
    assert!(stderr(&out).contains("nothing was registered"));
    let list = w.corral(&["plugin", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&list)).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn a_plugin_cannot_take_over_an_operators_workflow_through_the_cli() {
    let w = Workdir::new();
    assert!(
        w.corral(&["plugin", "add", artifacts::HELLO])
            .status
            .success()
    );
    let victim = w.file(
        "victim.toml",
        b"name = \"victim\"\n[[steps]]\nid = \"greet\"\ntask = \"hello/greet\"\n",
    );
    let applied = w.corral(&["workflow", "apply", victim.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let out = w.corral(&["plugin", "add", artifacts::ROGUE_SHIPS_VICTIM]);
    assert_fails(&out, 1, "workflow `victim` belongs to the operator");
    let run = w.corral(&["run", "victim", "--input", r#"{"name": "Ada"}"#]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("hello, Ada"), "{}", stdout(&run));
}

#[test]
fn invoke_file_bounds_describe_with_its_timeout_and_refuses_zero() {
    let w = Workdir::new();
    let slow = artifacts::ROGUE_SLOW_DESCRIBE;
    assert_fails(
        &w.corral(&["invoke", slow, "ok", "--timeout", "100ms"]),
        1,
        "timed out after 100ms",
    );
    let out = w.corral(&["invoke", slow, "ok", "--timeout", "5s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let zero = w.corral(&["invoke", slow, "ok", "--timeout", "0s"]);
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert!(
        stderr(&zero).contains("more than zero"),
        "{}",
        stderr(&zero)
    );
}

#[test]
fn guest_stdout_without_a_newline_does_not_run_into_the_next_line() {
    let w = Workdir::new();
    let out = w.corral(&["invoke", artifacts::ROGUE, "print-no-newline"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l == "no newline at the end"),
        "stderr: {err:?}"
    );
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let w = Workdir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args([
            "-vv",
            "invoke",
            artifacts::HELLO,
            "greet",
            "--input",
            r#"{"name":"x"}"#,
        ])
        .current_dir(w.path())
        .env_remove("CORRAL_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("CORRAL_CACHE_DIR", w.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("INFO"), "no log lines to check: {err}");
    assert!(!err.contains('\u{1b}'), "ANSI codes in: {err:?}");
}

#[test]
fn a_missing_plugin_file_is_reported_once() {
    let w = Workdir::new();
    let out = w.corral(&["plugin", "add", "no-such-file.wasm"]);
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last.matches("No such file or directory").count(),
        1,
        "stderr: {err}"
    );
}

#[test]
fn read_only_commands_leave_no_database_behind() {
    let w = Workdir::new();
    for args in [
        &["status", "0190f3a0-0000-7000-8000-000000000000"][..],
        &["executions"],
        &["logs", "0190f3a0-0000-7000-8000-000000000000"],
        &["plugin", "list"],
        &["workflow", "list"],
        &["schedule", "list"],
    ] {
        let out = w.corral(args);
        assert_fails(&out, 1, "no database at");
        assert!(
            !w.path().join("corral.db").exists(),
            "`corral {}` created a database",
            args.join(" ")
        );
    }
}

#[test]
fn invoke_enforces_a_disk_quota_given_on_dir() {
    let w = Workdir::new();
    let out_dir = w.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let grant = format!("{}:/out:rw,max_bytes=1MiB,max_files=5", out_dir.display());
    let out = w.corral(&[
        "invoke",
        artifacts::CHAOS,
        "fill_disk",
        "--input",
        r#"{"path": "/out/big.bin", "bytes": 209715200}"#,
        "--dir",
        &grant,
    ]);
    // The guest's own permanent failure, not a trap (`write()` on an open
    // file: wasi-libc reports EIO).
    assert_fails(&out, 10, "write failed after");
    let err = stderr(&out);
    assert!(
        err.contains("[warn] [corral host] disk quota: grant /out reached max_bytes = 1048576"),
        "{err}"
    );
    let on_disk = std::fs::metadata(out_dir.join("big.bin")).unwrap().len();
    assert!(
        on_disk <= 1 << 20 && on_disk > (1 << 20) - (64 << 10),
        "{on_disk}"
    );

    // --json reports what the attempt wrote.
    let out = w.corral(&[
        "--json",
        "invoke",
        artifacts::CHAOS,
        "create_files",
        "--input",
        r#"{"dir": "/out", "count": 100}"#,
        "--dir",
        &grant,
    ]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let usage = &report["fs_usage"][0];
    assert_eq!(usage["guest"], "/out");
    assert_eq!(usage["files_created"], 5);
    assert_eq!(usage["files_limit_hit"], true);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1 + 5);
}

#[test]
fn bad_quota_options_are_usage_errors_naming_them() {
    let w = Workdir::new();
    for (grant, needle) in [
        ("/tmp:/out:rw,max_bytes=lots", "max_bytes=lots"),
        ("/tmp:/out:rw,max_filez=3", "max_filez=3"),
        ("/tmp:/out,max_files=3", "read-only but has a quota"),
    ] {
        let out = w.corral(&["invoke", artifacts::HELLO, "greet", "--dir", grant]);
        assert_eq!(out.status.code(), Some(2), "{grant}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{grant}: {}", stderr(&out));
    }
}
