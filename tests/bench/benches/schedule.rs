//! Micro-benchmarks of cron schedules (`corral::schedule`): pure, no I/O.
//!
//! - `schedule/parse/*`: building a [`Schedule`] from a cron expression
//!   ([`Schedule::new`], with a time zone) and from a `[[schedules]]` TOML
//!   table ([`Schedule::from_toml_table`]);
//! - `schedule/next_fire/*` and `schedule/upcoming/*`: the next fire time(s)
//!   after an instant, for a daily schedule in Europe/Berlin, a 15-minute one
//!   in UTC and a per-second one;
//! - `schedule/due_fires/*`: what the firing loop asks on each tick: an
//!   ordinary tick (one fire on time, or none), and after a 3-day outage of a
//!   per-second schedule (259,200 due fire times) with `catch_up` skip,
//!   latest and all (max 100): the cost must follow the fires returned, not
//!   the outage.
//!
//! Run: `cargo bench -p corral-bench --bench schedule`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use corral::Workflow;
use corral::schedule::{CatchUp, DEFAULT_TOLERANCE, Schedule};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const NIGHTLY_TOML: &str = r#"
name = "etl"

[[steps]]
id = "extract"
task = "etl/extract"

[[schedules]]
name = "nightly"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
input = { region = "eu" }
catch_up = "all"
catch_up_max = 7
overlap = "skip"
start = 2026-01-01T00:00:00Z
"#;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn schedule(cron: &str) -> Schedule {
    Schedule::new("bench", "etl", cron).expect("valid schedule")
}

fn bench_parse(c: &mut Criterion) {
    let (_, tables) = Workflow::from_toml_with_schedules(NIGHTLY_TOML, None).expect("workflow");
    let table = tables.into_iter().next().expect("one schedule");
    Schedule::from_toml_table(table.clone(), "etl").expect("valid schedule table");

    let mut group = c.benchmark_group("schedule/parse");
    group.bench_function("new/daily_utc", |b| {
        b.iter(|| Schedule::new("nightly", "etl", black_box("30 2 * * *")).unwrap())
    });
    group.bench_function("new/weekdays_list_step_berlin", |b| {
        b.iter(|| {
            Schedule::new("office", "etl", black_box("0 */15 8-18 * * MON-FRI"))
                .unwrap()
                .with_timezone(black_box("Europe/Berlin"))
                .unwrap()
        })
    });
    group.bench_function("from_toml_table", |b| {
        b.iter_batched(
            || table.clone(),
            |table| Schedule::from_toml_table(table, "etl").unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_next(c: &mut Criterion) {
    let nightly = schedule("30 2 * * *")
        .with_timezone("Europe/Berlin")
        .unwrap();
    let quarter = schedule("*/15 * * * *");
    let second = schedule("* * * * * *");
    let now = at(2026, 3, 14, 11, 7, 42);

    let mut group = c.benchmark_group("schedule/next_fire");
    for (name, s) in [
        ("daily_berlin", &nightly),
        ("every_15_min", &quarter),
        ("every_second", &second),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(s).next_fire(black_box(now)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("schedule/upcoming");
    assert_eq!(nightly.upcoming(now, 10).len(), 10);
    group.bench_function("10/daily_berlin", |b| {
        b.iter(|| black_box(&nightly).upcoming(black_box(now), 10))
    });
    group.bench_function("10/every_15_min", |b| {
        b.iter(|| black_box(&quarter).upcoming(black_box(now), 10))
    });
    group.finish();
}

fn bench_due(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule/due_fires");

    // An ordinary tick of the firing loop, 1 s after a minute's fire.
    let minutely = schedule("* * * * *");
    let created = at(2026, 3, 1, 0, 0, 0);
    let now = at(2026, 3, 14, 11, 8, 1);
    let last = Some(at(2026, 3, 14, 11, 7, 0));
    assert_eq!(
        minutely
            .due_fires(last, created, now, DEFAULT_TOLERANCE)
            .len(),
        1
    );
    group.bench_function("tick/every_minute/one_on_time", |b| {
        b.iter(|| {
            black_box(&minutely).due_fires(
                black_box(last),
                created,
                black_box(now),
                DEFAULT_TOLERANCE,
            )
        })
    });
    let handled = Some(at(2026, 3, 14, 11, 8, 0));
    assert!(
        minutely
            .due_fires(handled, created, now, DEFAULT_TOLERANCE)
            .is_empty()
    );
    group.bench_function("tick/every_minute/nothing_due", |b| {
        b.iter(|| {
            black_box(&minutely).due_fires(
                black_box(handled),
                created,
                black_box(now),
                DEFAULT_TOLERANCE,
            )
        })
    });

    // A per-second schedule whose hosts were down for 3 days.
    let back = now;
    let down_since = Some(back - TimeDelta::days(3));
    for (name, catch_up, expected) in [
        ("skip", CatchUp::Skip, 5),
        ("latest", CatchUp::Latest, 5),
        ("all_max_100", CatchUp::All { max: 100 }, 105),
    ] {
        let s = schedule("* * * * * *").with_catch_up(catch_up).unwrap();
        let fires = s.due_fires(down_since, created, back, DEFAULT_TOLERANCE);
        assert!(
            fires.len().abs_diff(expected) <= 1,
            "{name}: {} fires",
            fires.len()
        );
        group.bench_function(format!("outage_3_days/every_second/{name}"), |b| {
            b.iter(|| {
                black_box(&s).due_fires(
                    black_box(down_since),
                    created,
                    black_box(back),
                    DEFAULT_TOLERANCE,
                )
            })
        });
    }
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
    targets = bench_parse, bench_next, bench_due
}
criterion_main!(benches);
