use super::*;
use crate::workflow::{Condition, StepState};
use serde_json::json;

const ETL: &str = r#"
name = "etl"
description = "Sales report"

[[steps]]
id = "extract"
task = "etl/extract"
timeout = "30s"
grants.dirs = [{ host = "plugins/etl/data", guest = "/data" }]

[[steps]]
id = "transform"
task = "etl/transform"
depends_on = ["extract"]
retry = { max_attempts = 3, backoff = "exponential", initial = "100ms", max = "5s", jitter = 0.1 }

[[steps]]
id = "load"
task = "etl/load"
depends_on = ["transform"]
trigger = "all_succeeded"
condition = { key = "grand_total", exists = true }   # or equals = <value>
memory = "128MiB"
input = { report_file = "report.json" }
grants = { dirs = [{ host = "out", guest = "/out", writable = true }], env = { TZ = "UTC" } }
"#;

/// The same workflow: other whitespace, comments, key order, step order,
/// and equivalent spellings of the same values.
const ETL_RESHUFFLED: &str = r#"
# the etl pipeline
description = "Sales report"
name = "etl"
[[steps]]
task = "etl/load"
id = "load"
grants.env.TZ = "UTC"
grants.dirs = [{ writable = true, guest = "/out", host = "./out" }]
input.report_file = "report.json"
memory = 134217728
condition = { exists = true, key = "grand_total" }
depends_on = ["transform"]
[[steps]]
id = "transform"
depends_on = ["extract"]
task = "etl/transform"
retry = { jitter = 0.1, max = "5000ms", initial = "100ms", max_attempts = 3 }
[[steps]]
id      =   "extract"
task    =   "etl/extract"
timeout =   "30 s"
grants  =   { dirs = [{ host = "plugins/etl/../etl/data", guest = "/data" }] }
"#;

fn base() -> &'static Path {
    Path::new("/srv/corral")
}

fn etl() -> Workflow {
    Workflow::from_toml(ETL, Some(base())).unwrap()
}

fn error(text: &str) -> String {
    Workflow::from_toml(text, Some(base()))
        .unwrap_err()
        .to_string()
}

fn with_step(step: &str) -> String {
    format!("name = \"w\"\n[[steps]]\nid = \"a\"\ntask = \"p/t\"\n{step}\n")
}

#[test]
fn parses_the_documented_example() {
    let wf = etl();
    assert_eq!(wf.name(), "etl");
    assert_eq!(wf.description(), Some("Sales report"));
    let extract = wf.step("extract").unwrap();
    assert_eq!(
        (extract.task.plugin(), extract.task.task()),
        ("etl", "extract")
    );
    assert_eq!(extract.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        extract.grants.dirs,
        [DirGrant::read_only("/srv/corral/plugins/etl/data", "/data")]
    );
    let transform = wf.step("transform").unwrap();
    assert_eq!(
        transform.retry,
        Some(
            RetryPolicy::exponential(3, Duration::from_millis(100), Duration::from_secs(5))
                .with_jitter(0.1)
        )
    );
    let load = wf.step("load").unwrap();
    assert_eq!(load.memory, Some(128 << 20));
    assert_eq!(load.condition, Some(Condition::exists("grand_total")));
    assert_eq!(load.input["report_file"], json!("report.json"));
    assert_eq!(
        load.grants.dirs,
        [DirGrant::writable("/srv/corral/out", "/out")]
    );
    assert_eq!(load.grants.env["TZ"], "UTC");
    let order: Vec<_> = wf
        .topological_order()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(order, ["extract", "transform", "load"]);
}

#[test]
fn builder_and_toml_give_the_same_workflow() {
    let built = Workflow::builder("etl")
        .description("Sales report")
        .base_dir(base())
        .step(
            Step::new("load", "etl/load")
                .depends_on(["transform"])
                .condition(Condition::exists("grand_total"))
                .memory(128 << 20)
                .input("report_file", "report.json")
                .dir(DirGrant::writable("out", "/out"))
                .env("TZ", "UTC"),
        )
        .step(
            Step::new("transform", "etl/transform")
                .depends_on(["extract"])
                .retry(
                    RetryPolicy::exponential(3, Duration::from_millis(100), Duration::from_secs(5))
                        .with_jitter(0.1),
                ),
        )
        .step(
            Step::new("extract", "etl/extract")
                .timeout(Duration::from_secs(30))
                .dir(DirGrant::read_only("plugins/etl/data", "/data")),
        )
        .build()
        .unwrap();
    assert_eq!(built, etl());
    assert_eq!(built.version(), etl().version());
}

#[test]
fn version_ignores_form_but_not_meaning() {
    let wf = etl();
    let same = Workflow::from_toml(ETL_RESHUFFLED, Some(base())).unwrap();
    assert_eq!(same, wf);
    assert_eq!(same.version(), wf.version());
    assert_eq!(wf.version().len(), 16);
    assert!(wf.version().chars().all(|c| c.is_ascii_hexdigit()));

    for (from, to) in [
        ("timeout = \"30s\"", "timeout = \"31s\""),
        ("jitter = 0.1", "jitter = 0.2"),
        ("report.json", "report2.json"),
        ("writable = true", "writable = false"),
        ("\"Sales report\"", "\"Sales\""),
        ("trigger = \"all_succeeded\"", "trigger = \"all_done\""),
    ] {
        let changed = Workflow::from_toml(&ETL.replace(from, to), Some(base())).unwrap();
        assert_ne!(changed.version(), wf.version(), "{from} -> {to}");
    }
    // Another base directory is another grant, hence another version.
    let moved = Workflow::from_toml(ETL, Some(Path::new("/elsewhere"))).unwrap();
    assert_ne!(moved.version(), wf.version());
}

#[test]
fn toml_round_trip() {
    let wf = etl();
    let text = wf.to_toml().unwrap();
    assert!(
        text.starts_with(&format!("# version {}", wf.version())),
        "{text}"
    );
    let back = Workflow::from_toml(&text, None).unwrap();
    assert_eq!(back, wf);
    assert_eq!(back.version(), wf.version());
    // Written in execution order.
    let extract = text.find("id = \"extract\"").unwrap();
    let load = text.find("id = \"load\"").unwrap();
    assert!(extract < load, "{text}");
}

#[test]
fn json_round_trip_revalidates() {
    let wf = etl();
    let json = serde_json::to_value(&wf).unwrap();
    assert_eq!(json["version"], json!(wf.version()));
    assert_eq!(json["steps"][1]["memory"], json!("128MiB"));
    let back: Workflow = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, wf);
    assert_eq!(back.version(), wf.version());

    let mut tampered = json.clone();
    tampered["steps"][0]["timeout"] = json!("1h");
    let err = serde_json::from_value::<Workflow>(tampered)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("has version {}", wf.version())),
        "{err}"
    );

    let mut cyclic = json;
    cyclic["steps"][0]["depends_on"] = json!(["load"]);
    let err = serde_json::from_value::<Workflow>(cyclic)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dependency cycle"), "{err}");
}

#[test]
fn json_keeps_null_conditions_that_toml_cannot_write() {
    let wf = Workflow::builder("w")
        .step(Step::new("a", "p/t").condition(Condition::equals("x", Value::Null)))
        .build()
        .unwrap();
    let back: Workflow = serde_json::from_str(&serde_json::to_string(&wf).unwrap()).unwrap();
    assert_eq!(back, wf);
    let err = wf.to_toml().unwrap_err().to_string();
    assert!(err.starts_with("cannot serialize workflow `w`"), "{err}");
}

#[test]
fn unknown_keys_report_line_and_column() {
    let text = "name = \"w\"\n[[steps]]\nid = \"a\"\ntask = \"p/t\"\nretries = 3\n";
    let err = Workflow::from_toml(text, None).unwrap_err();
    let WorkflowError::Toml {
        line,
        column,
        message,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*line, *column), (5, 1));
    assert!(message.contains("unknown field `retries`"), "{message}");
    assert!(
        err.to_string()
            .starts_with("invalid workflow TOML at line 5, column 1")
    );

    let err = error(&with_step(
        "grants.dirs = [{ host = \"/d\", guest = \"/d\", writeable = true }]",
    ));
    assert!(err.contains("unknown field `writeable`"), "{err}");
    let err = error(&with_step("retry = { attempts = 3 }"));
    assert!(err.contains("unknown field `attempts`"), "{err}");
    let err = error("name = \"w\"\nsteps = []\nowner = \"me\"\n");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn wrong_types_and_syntax_report_line_and_column() {
    let err = error(&with_step("timeout = 30"));
    assert!(err.starts_with("invalid workflow TOML at line 5"), "{err}");
    let err = error(&with_step("trigger = \"sometimes\""));
    assert!(
        err.contains("line 5") && err.contains("all_succeeded"),
        "{err}"
    );
    let err = error("name = \"w\"\n[[steps]\n");
    assert!(err.starts_with("invalid workflow TOML at line 2"), "{err}");
    let err = error("name = \"w\"\n[[steps]]\nid = \"a\"\n");
    assert!(err.contains("missing field `task`"), "{err}");
}

#[test]
fn bad_values_name_the_step() {
    let err = error(&with_step("timeout = \"5 parsecs\""));
    assert!(
        err.starts_with("step `a`: invalid timeout `5 parsecs`: "),
        "{err}"
    );
    let err = error(&with_step("retry = { initial = \"soon\" }"));
    assert!(
        err.starts_with("step `a`: invalid retry.initial `soon`"),
        "{err}"
    );
    let err = error(&with_step("memory = \"lots\""));
    assert!(err.starts_with("step `a`: invalid memory `lots`"), "{err}");
    let err = error(&with_step("retry = { max_attempts = 0 }"));
    assert!(err.contains("max_attempts must be at least 1"), "{err}");
    let err = error(&with_step("retry = { jitter = 2.0 }"));
    assert!(err.contains("jitter 2 must be a fraction"), "{err}");
    let err = error(&with_step(
        "retry = { backoff = \"exponential\", delay = \"1s\" }",
    ));
    assert!(
        err.contains("`delay` applies to backoff = \"fixed\""),
        "{err}"
    );
    let err = error(&with_step("retry = { backoff = \"fixed\", max = \"1s\" }"));
    assert!(err.contains("apply to backoff = \"exponential\""), "{err}");
    let err = error(&with_step(
        "condition = { key = \"k\", exists = true, equals = 1 }",
    ));
    assert!(
        err.starts_with("step `a`: invalid condition: give `key` and exactly one"),
        "{err}"
    );
    let err = error(
        "name = \"w\"\n[defaults]\ntimeout = \"forever\"\n[[steps]]\nid = \"a\"\ntask = \"p/t\"\n",
    );
    assert!(
        err.starts_with("defaults: invalid timeout `forever`"),
        "{err}"
    );
}

#[test]
fn retry_table_defaults() {
    let wf = Workflow::from_toml(&with_step("retry = { delay = \"2s\" }"), None).unwrap();
    assert_eq!(
        wf.step("a").unwrap().retry,
        Some(RetryPolicy::fixed(3, Duration::from_secs(2)))
    );
    let wf = Workflow::from_toml(&with_step("retry = { max_attempts = 5 }"), None).unwrap();
    assert_eq!(wf.step("a").unwrap().retry, Some(RetryPolicy::attempts(5)));
}

#[test]
fn memory_sizes() {
    for (text, bytes) in [
        ("\"128MiB\"", 128 << 20),
        ("\"128 MiB\"", 128 << 20),
        ("\"100MB\"", 100_000_000),
        ("\"1GiB\"", 1 << 30),
        ("65536", 65536),
    ] {
        let wf = Workflow::from_toml(&with_step(&format!("memory = {text}")), None).unwrap();
        assert_eq!(wf.step("a").unwrap().memory, Some(bytes), "{text}");
    }
    assert!(error(&with_step("memory = -1")).contains("invalid memory `-1`"));
    assert_eq!(format_memory(128 << 20), "128MiB");
    assert_eq!(format_memory(3 << 30), "3GiB");
    assert_eq!(format_memory(1536), "1536");
    assert_eq!(format_memory(2048), "2KiB");
    assert_eq!(format_memory(0), "0");
}

#[test]
fn relative_host_paths_need_a_base() {
    let text = with_step("grants.dirs = [{ host = \"data\", guest = \"/data\" }]");
    let err = Workflow::from_toml(&text, None).unwrap_err().to_string();
    assert!(
        err.starts_with("step `a`: host path `data` is relative"),
        "{err}"
    );
    let abs = with_step("grants.dirs = [{ host = \"/srv/data\", guest = \"/data\" }]");
    Workflow::from_toml(&abs, None).unwrap();
}

#[test]
fn version_cannot_be_written() {
    let err = error(&format!("version = \"abc\"\n{}", with_step("")));
    assert!(err.starts_with("`version` cannot be set"), "{err}");
}

#[test]
fn plugin_workflows_cannot_grant_capabilities() {
    let err = Workflow::from_plugin_toml(ETL).unwrap_err().to_string();
    assert!(
        err.starts_with("step `extract`: a workflow shipped by a plugin cannot set `grants`"),
        "{err}"
    );
    let err = Workflow::from_plugin_toml(&with_step("memory = \"1GiB\"")).unwrap_err();
    assert!(err.to_string().contains("cannot set `memory`"), "{err}");
    let text = "name = \"w\"\n[defaults.grants]\nenv = { A = \"1\" }\n[[steps]]\nid = \"a\"\ntask = \"p/t\"\n";
    let err = Workflow::from_plugin_toml(text).unwrap_err();
    assert!(
        err.to_string().starts_with("defaults: a workflow shipped"),
        "{err}"
    );
    let ok = with_step("timeout = \"10s\"\nretry = { max_attempts = 2 }\ndepends_on = []");
    Workflow::from_plugin_toml(&ok).unwrap();
}

#[test]
fn defaults_table() {
    let text = r#"
name = "w"
[defaults]
timeout = "1m"
memory = "64MiB"
retry = { max_attempts = 2, delay = "5s" }
grants = { dirs = [{ host = "data", guest = "/data" }], env = { TZ = "UTC" } }
[[steps]]
id = "a"
task = "p/t"
"#;
    let wf = Workflow::from_toml(text, Some(base())).unwrap();
    let d = wf.defaults();
    assert_eq!(d.timeout, Some(Duration::from_secs(60)));
    assert_eq!(d.memory, Some(64 << 20));
    assert_eq!(d.retry, Some(RetryPolicy::fixed(2, Duration::from_secs(5))));
    assert_eq!(
        d.grants.dirs,
        [DirGrant::read_only("/srv/corral/data", "/data")]
    );
    let back = Workflow::from_toml(&wf.to_toml().unwrap(), None).unwrap();
    assert_eq!(back, wf);
}

#[test]
fn the_etl_example_file() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.parent().unwrap().join("plugins/etl");
    let wf = Workflow::from_toml_file(dir.join("workflow.toml")).unwrap();
    let grants: Vec<_> = wf
        .topological_order()
        .iter()
        .flat_map(|s| s.grants.dirs.clone())
        .collect();
    assert_eq!(
        grants,
        [
            DirGrant::read_only(dir.join("data"), "/data"),
            DirGrant::writable(dir.join("out"), "/out")
        ]
    );
    let mut catalog = BTreeMap::new();
    catalog.insert(
        "etl".to_owned(),
        vec![
            "extract".to_owned(),
            "transform".to_owned(),
            "load".to_owned(),
        ],
    );
    wf.validate_tasks(&catalog).unwrap();
    // Runs end to end through the planner when every step succeeds.
    let mut states = std::collections::HashMap::new();
    let outputs = std::collections::HashMap::new();
    for _ in 0..3 {
        let actions = crate::workflow::plan(&wf, &states, &outputs, &Map::new());
        assert_eq!(actions.len(), 1);
        let state = match actions[0].1 {
            crate::workflow::Action::Run(_) => StepState::Succeeded,
            _ => StepState::Skipped,
        };
        states.insert(actions[0].0.clone(), state);
    }
    // `load` was skipped: no `grand_total` (the outputs are empty here),
    // which its condition asks for. A skip does not fail the execution.
    assert_eq!(states["load"], StepState::Skipped);
    assert_eq!(
        wf.verdict(&states),
        Some(crate::workflow::Verdict::Succeeded)
    );
}

#[test]
fn reads_files_relative_to_their_directory() {
    let dir = std::env::temp_dir().join(format!("corral-wf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("w.toml");
    std::fs::write(
        &file,
        with_step("grants.dirs = [{ host = \"data\", guest = \"/data\" }]"),
    )
    .unwrap();
    let wf = Workflow::from_toml_file(&file).unwrap();
    assert_eq!(wf.step("a").unwrap().grants.dirs[0].host, dir.join("data"));
    std::fs::remove_dir_all(&dir).unwrap();
    let err = Workflow::from_toml_file(dir.join("missing.toml")).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot read workflow file"),
        "{err}"
    );
}

#[test]
fn toml_dates_in_inputs_become_strings() {
    let wf = Workflow::from_toml(
        &with_step("input = { day = 1979-05-27, at = [1979-05-27T07:32:00Z] }"),
        None,
    )
    .unwrap();
    let input = &wf.step("a").unwrap().input;
    assert_eq!(input["day"], json!("1979-05-27"));
    assert_eq!(input["at"], json!(["1979-05-27T07:32:00Z"]));
}

#[test]
fn stored_form_round_trips() {
    let wf = etl();
    let stored = wf.to_stored();
    assert_eq!(stored, serde_json::to_value(&wf).unwrap());
    assert_eq!(stored["version"], json!(wf.version()));
    let back = Workflow::from_stored(stored.clone()).unwrap();
    assert_eq!(back, wf);
    assert_eq!(back.version(), wf.version());
    let mut edited = stored;
    edited["description"] = json!("changed");
    let err = Workflow::from_stored(edited).unwrap_err();
    assert!(
        matches!(err, WorkflowError::VersionMismatch { .. }),
        "{err}"
    );
    let err = Workflow::from_stored(json!({"name": "w", "stepz": []})).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("stored workflow is not a valid definition: unknown field `stepz`"),
        "{err}"
    );
}

#[test]
fn the_stored_format_number_is_read_and_checked() {
    let stored = etl().to_stored();
    assert!(
        stored.get("format").is_none(),
        "format 1 is written as no key"
    );
    let mut tagged = stored.clone();
    tagged["format"] = json!(1);
    assert_eq!(Workflow::from_stored(tagged).unwrap(), etl());
    let mut newer = stored.clone();
    newer["format"] = json!(STORED_FORMAT + 1);
    newer["field_of_the_future"] = json!(true);
    let err = Workflow::from_stored(newer).unwrap_err();
    assert!(
        matches!(
            err,
            WorkflowError::NewerFormat {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
    for bad in [json!(0), json!("1"), json!(1.5), json!(-1)] {
        let mut odd = stored.clone();
        odd["format"] = bad.clone();
        let err = Workflow::from_stored(odd).unwrap_err();
        assert!(
            matches!(err, WorkflowError::Stored(ref m) if m.contains("`format`")),
            "{bad}: {err}"
        );
    }
}

#[test]
fn disk_quotas_parse_and_survive_every_round_trip() {
    let text = with_step(
        r#"grants.dirs = [
    { host = "/o", guest = "/out", writable = true, max_bytes = "1GiB", max_files = 10000 },
    { host = "/s", guest = "/small", writable = true, max_bytes = 4096 },
    { host = "/p", guest = "/plain", writable = true },
]"#,
    );
    let wf = Workflow::from_toml(&text, Some(base())).unwrap();
    let dirs = &wf.step("a").unwrap().grants.dirs;
    let find = |guest: &str| dirs.iter().find(|d| d.guest == guest).unwrap().clone();
    assert_eq!(
        find("/out"),
        DirGrant::writable("/o", "/out")
            .with_max_bytes(1 << 30)
            .with_max_files(10_000)
    );
    assert_eq!(
        find("/small"),
        DirGrant::writable("/s", "/small").with_max_bytes(4096)
    );
    assert_eq!(find("/plain"), DirGrant::writable("/p", "/plain"));
    // TOML, the stored JSON form, and serde all keep them.
    let again = Workflow::from_toml(&wf.to_toml().unwrap(), Some(base())).unwrap();
    assert_eq!(again, wf);
    assert!(wf.to_toml().unwrap().contains(r#"max_bytes = "1GiB""#));
    let stored = Workflow::from_stored(wf.to_stored()).unwrap();
    assert_eq!(stored, wf);
    assert_eq!(stored.version(), wf.version());
    // A quota is part of the content.
    let without = Workflow::from_toml(
        &with_step(r#"grants.dirs = [{ host = "/o", guest = "/out", writable = true }]"#),
        Some(base()),
    )
    .unwrap();
    let with = Workflow::from_toml(
        &with_step(
            r#"grants.dirs = [{ host = "/o", guest = "/out", writable = true, max_files = 1 }]"#,
        ),
        Some(base()),
    )
    .unwrap();
    assert_ne!(without.version(), with.version());
}

#[test]
fn bad_disk_quotas_are_named() {
    let e = error(&with_step(
        r#"grants.dirs = [{ host = "/o", guest = "/out", writable = true, max_bytes = "lots" }]"#,
    ));
    assert!(
        e.contains("step `a`") && e.contains("invalid max_bytes `lots` for `/out`"),
        "{e}"
    );
    let e = error(&with_step(
        r#"grants.dirs = [{ host = "/d", guest = "/data", max_files = 5 }]"#,
    ));
    assert!(
        e.contains("`/data` is read-only but has max_bytes or max_files"),
        "{e}"
    );
    let e = error(&with_step(
        r#"grants.dirs = [{ host = "/o", guest = "/out", writable = true, max_files = -1 }]"#,
    ));
    // A type error: reported by serde with its place, like other keys.
    assert!(e.contains("line 5") && e.contains("`-1`"), "{e}");
}
