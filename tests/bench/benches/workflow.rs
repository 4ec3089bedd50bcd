//! Micro-benchmarks of the pure workflow model (`corral::workflow`): no I/O,
//! no database, no wasm.
//!
//! - `plan/*`: [`corral::workflow::plan`] on a 100-step fan-out/fan-in
//!   workflow (`root`, 98 middle steps depending on it, `join` depending on
//!   all of them), at the states the runtime plans from: nothing done (the
//!   execution's first plan), root done (98 steps start, each with a merged
//!   input), half the middle steps done (nothing to decide: the common case
//!   after each step ends), all middle steps done (the join starts with 99
//!   merged outputs). The inputs are built the way `runtime/planner.rs`
//!   builds them from a snapshot: a state per step, the outputs of the
//!   succeeded steps, the execution input.
//! - `verdict/*`: [`Workflow::verdict`] and [`corral::workflow::execution_state`]
//!   on the same workflow, running and finished.
//! - `evaluate/*`: [`corral::workflow::evaluate`], one step's trigger rule
//!   over 98 and 1,000 upstream states.
//! - `parse/*`: [`Workflow::from_toml`] (parsing, defaults, validation and
//!   the version hash) of `plugins/etl/workflow.toml` and of the 100-step
//!   workflow written as TOML; `build/*`: [`WorkflowBuilder::build`] of the
//!   100-step workflow.
//! - `retry/*`: [`RetryPolicy::after_failure`] and
//!   [`RetryPolicy::delay_before`].
//!
//! Run: `cargo bench -p corral-bench --bench workflow` (add a filter such as
//! `-- plan/` to run a subset).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use corral::Workflow;
use corral::workflow::{
    Condition, FailureKind, RetryPolicy, Step, StepState, TriggerRule, WorkflowBuilder, evaluate,
    execution_state, plan,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

/// Steps between `root` and `join`.
const MIDDLE: usize = 98;

type Object = Map<String, Value>;

fn obj(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn middle_id(i: usize) -> String {
    format!("m{i:02}")
}

/// `root` -> 98 middle steps -> `join`, as a builder (not yet built).
fn fan_builder() -> WorkflowBuilder {
    Workflow::builder("fan")
        .step(Step::new("root", "bench/noop"))
        .steps((1..=MIDDLE).map(|i| {
            Step::new(middle_id(i), "bench/noop")
                .depends_on(["root"])
                .input("shard", i as u64)
        }))
        .step(
            Step::new("join", "bench/noop")
                .depends_on((1..=MIDDLE).map(middle_id))
                .trigger(TriggerRule::AllSucceeded),
        )
}

/// The same workflow in the TOML format.
fn fan_toml() -> String {
    let mut text = String::from(
        "name = \"fan\"\n\n[defaults]\ntimeout = \"30s\"\nretry = { max_attempts = 2 }\n\n\
         [[steps]]\nid = \"root\"\ntask = \"bench/noop\"\n",
    );
    for i in 1..=MIDDLE {
        text.push_str(&format!(
            "\n[[steps]]\nid = \"{}\"\ntask = \"bench/noop\"\ndepends_on = [\"root\"]\n\
             input = {{ shard = {i} }}\n",
            middle_id(i)
        ));
    }
    let all: Vec<String> = (1..=MIDDLE)
        .map(|i| format!("\"{}\"", middle_id(i)))
        .collect();
    text.push_str(&format!(
        "\n[[steps]]\nid = \"join\"\ntask = \"bench/noop\"\ndepends_on = [{}]\n\
         trigger = \"all_succeeded\"\n",
        all.join(", ")
    ));
    text
}

/// What the runtime's planner hands to `plan`: a state per step and the
/// outputs of the succeeded steps.
struct Snapshot {
    states: HashMap<String, StepState>,
    outputs: HashMap<String, Object>,
}

impl Snapshot {
    fn new(workflow: &Workflow) -> Self {
        let states = workflow
            .steps()
            .iter()
            .map(|s| (s.id.clone(), StepState::Pending))
            .collect();
        Self {
            states,
            outputs: HashMap::new(),
        }
    }

    fn succeed(mut self, id: &str, output: Value) -> Self {
        self.states.insert(id.to_owned(), StepState::Succeeded);
        self.outputs.insert(id.to_owned(), obj(output));
        self
    }

    fn set(mut self, id: &str, state: StepState) -> Self {
        self.states.insert(id.to_owned(), state);
        self
    }
}

fn bench_plan(c: &mut Criterion) {
    let wf = fan_builder().build().expect("fan workflow");
    let input = obj(json!({ "run": 1, "region": "eu", "date": "2026-01-01" }));
    let root_output = json!({ "rows": 1000, "file": "/data/sales.csv" });

    let nothing_done = Snapshot::new(&wf);
    let root_done = Snapshot::new(&wf).succeed("root", root_output.clone());
    // The running half is `running`, the other pending ones are `ready`:
    // nothing is pending but the join, which waits.
    let mut half_done = Snapshot::new(&wf).succeed("root", root_output.clone());
    for i in 1..=MIDDLE {
        half_done = if i <= MIDDLE / 2 {
            half_done.succeed(&middle_id(i), json!({ "shard": i, "total": i * 10 }))
        } else {
            half_done.set(&middle_id(i), StepState::Running)
        };
    }
    let mut middle_done = Snapshot::new(&wf).succeed("root", root_output);
    for i in 1..=MIDDLE {
        middle_done = middle_done.succeed(&middle_id(i), json!({ "shard": i, "total": i * 10 }));
    }

    // Check the scenarios do what their names say.
    let count = |s: &Snapshot| plan(&wf, &s.states, &s.outputs, &input).len();
    assert_eq!(count(&nothing_done), 1);
    assert_eq!(count(&root_done), MIDDLE);
    assert_eq!(count(&half_done), 0);
    assert_eq!(count(&middle_done), 1);

    let mut group = c.benchmark_group("plan");
    for (name, snapshot) in [
        ("100_steps/nothing_done", &nothing_done),
        ("100_steps/root_done", &root_done),
        ("100_steps/half_middle_done", &half_done),
        ("100_steps/all_middle_done", &middle_done),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                plan(
                    black_box(&wf),
                    black_box(&snapshot.states),
                    black_box(&snapshot.outputs),
                    black_box(&input),
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verdict");
    let mut finished = middle_done.states.clone();
    finished.insert("join".to_owned(), StepState::Succeeded);
    group.bench_function("100_steps/running", |b| {
        b.iter(|| black_box(&wf).verdict(black_box(&half_done.states)))
    });
    group.bench_function("100_steps/succeeded", |b| {
        b.iter(|| black_box(&wf).verdict(black_box(&finished)))
    });
    let states: Vec<StepState> = wf.steps().iter().map(|s| finished[&s.id]).collect();
    group.bench_function("execution_state/100_succeeded", |b| {
        b.iter(|| execution_state(black_box(&states).iter().copied()))
    });
    group.finish();
}

fn bench_evaluate(c: &mut Criterion) {
    let empty = Map::new();
    let input = obj(json!({ "grand_total": 42, "rows": 1000 }));
    let condition = Condition::exists("grand_total");
    let mut group = c.benchmark_group("evaluate");
    for n in [MIDDLE, 1000] {
        let succeeded = vec![StepState::Succeeded; n];
        let mut one_failed = succeeded.clone();
        one_failed[n - 1] = StepState::Failed;
        // Worst case for waiting: only the last upstream step is not over.
        let mut last_running = succeeded.clone();
        last_running[n - 1] = StepState::Running;
        let cases = [
            (
                "all_succeeded/run",
                TriggerRule::AllSucceeded,
                &succeeded,
                None,
            ),
            (
                "all_succeeded/skip",
                TriggerRule::AllSucceeded,
                &one_failed,
                None,
            ),
            (
                "all_succeeded/wait",
                TriggerRule::AllSucceeded,
                &last_running,
                None,
            ),
            ("all_done/run", TriggerRule::AllDone, &one_failed, None),
            ("any_failed/run", TriggerRule::AnyFailed, &one_failed, None),
            ("any_failed/skip", TriggerRule::AnyFailed, &succeeded, None),
            (
                "all_succeeded/condition",
                TriggerRule::AllSucceeded,
                &succeeded,
                Some(&condition),
            ),
        ];
        for (name, rule, upstream, condition) in cases {
            let input = if condition.is_some() { &input } else { &empty };
            group.bench_function(format!("{name}/{n}_upstream"), |b| {
                b.iter(|| {
                    evaluate(
                        black_box(rule),
                        black_box(condition),
                        black_box(upstream),
                        black_box(input),
                    )
                })
            });
        }
    }
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let etl_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/etl");
    let etl = std::fs::read_to_string(etl_dir.join("workflow.toml")).expect("etl workflow");
    let fan = fan_toml();
    assert_eq!(
        Workflow::from_toml(&etl, Some(&etl_dir))
            .expect("etl parses")
            .steps()
            .len(),
        3
    );
    assert_eq!(
        Workflow::from_toml(&fan, None)
            .expect("fan parses")
            .steps()
            .len(),
        MIDDLE + 2
    );

    let mut group = c.benchmark_group("parse");
    group.bench_function("from_toml/etl_3_steps", |b| {
        b.iter(|| Workflow::from_toml(black_box(&etl), Some(&etl_dir)).unwrap())
    });
    group.bench_function("from_toml/fan_100_steps", |b| {
        b.iter(|| Workflow::from_toml(black_box(&fan), None).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("build");
    group.bench_function("fan_100_steps", |b| {
        b.iter_batched(
            fan_builder,
            |builder| builder.build().unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("fan_100_steps/with_step_construction", |b| {
        b.iter(|| fan_builder().build().unwrap())
    });
    group.finish();
}

fn bench_retry(c: &mut Criterion) {
    let exponential =
        RetryPolicy::exponential(5, Duration::from_millis(200), Duration::from_secs(2))
            .with_jitter(0.1);
    let fixed = RetryPolicy::fixed(3, Duration::from_secs(1));
    let many = RetryPolicy::exponential(u32::MAX, Duration::from_secs(1), Duration::from_secs(60));
    let timeout = FailureKind::Timeout;
    let mut group = c.benchmark_group("retry");
    group.bench_function("after_failure/exponential_jitter/retry", |b| {
        b.iter(|| black_box(&exponential).after_failure(black_box(3), timeout, black_box(0.37)))
    });
    group.bench_function("after_failure/fixed/retry", |b| {
        b.iter(|| black_box(&fixed).after_failure(black_box(2), timeout, black_box(0.37)))
    });
    group.bench_function("after_failure/give_up", |b| {
        b.iter(|| black_box(&fixed).after_failure(black_box(3), timeout, black_box(0.37)))
    });
    group.bench_function("after_failure/interrupted", |b| {
        b.iter(|| {
            black_box(&exponential).after_failure(
                black_box(2),
                FailureKind::Interrupted,
                black_box(0.37),
            )
        })
    });
    group.bench_function("delay_before/exponential_capped", |b| {
        b.iter(|| black_box(&many).delay_before(black_box(1_000_000), black_box(0.5)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_plan, bench_evaluate, bench_parse, bench_retry
}
criterion_main!(benches);
