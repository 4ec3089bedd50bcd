//! Halt latency through the `Runner` on SQLite: with spinning and sleeping
//! guests in flight, (a) `shutdown(Duration::ZERO)` from call to return and
//! (b) `drop(runner)` until every guest has stopped and the pool is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corral::sandbox::SandboxConfig;
use corral::workflow::Step;
use corral::{Runner, Workflow};

use crate::Settings;
use crate::db::Backend;
use crate::report::{Row, Target};

const SCENARIO: &str = "shutdown (Runner, SQLite)";

/// How often the watcher thread looks at the runner / the tokio runtime.
const WATCH: Duration = Duration::from_micros(100);

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let tick_ms = SandboxConfig::default().epoch_tick.as_secs_f64() * 1e3;
    let target = Target::AtMost(2.0 * tick_ms + 5.0);
    let guests = format!(
        "{} spinning + {} sleeping",
        s.halt_spinning, s.halt_sleeping
    );
    let (mut total, mut halted, mut dropped, mut drop_call) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.shutdown_repeats {
        let (all, guests_gone) = shutdown_once(s).await?;
        total.push(all);
        halted.push(guests_gone);
    }
    for _ in 0..s.shutdown_repeats {
        let (all, call) = drop_once(s).await?;
        dropped.push(all);
        drop_call.push(call);
    }
    let max = |v: &[f64]| vec![v.iter().copied().fold(0.0, f64::max)];
    let tick = format!("epoch tick {tick_ms} ms");
    Ok(vec![
        Row::new(
            SCENARIO,
            format!(
                "shutdown(0) with {guests} in flight: call -> return \
                 (all halted, all recorded as interrupted, pool closed), p50"
            ),
            "ms",
        )
        .samples(total.clone())
        .target(target)
        .note(tick.clone()),
        Row::new(
            SCENARIO,
            "shutdown(0) call -> return, max over repeats",
            "ms",
        )
        .samples(max(&total))
        .target(target),
        Row::new(
            SCENARIO,
            "of which shutdown(0) call -> every guest returned (attempts_in_flight = 0), p50",
            "ms",
        )
        .samples(halted)
        .note("polled every 0.1 ms from a thread"),
        Row::new(
            SCENARIO,
            format!(
                "drop(runner) with {guests} in flight -> every tokio task of the runner ended \
                 (attempt tasks, so every guest; background loops; pool close) \
                 and is_closed(), p50"
            ),
            "ms",
        )
        .samples(dropped.clone())
        .target(target)
        .note(format!(
            "{tick}; tokio alive tasks back to the pre-runner count, polled every 0.1 ms; \
             attempts are not recorded (lease expiry returns them)"
        )),
        Row::new(
            SCENARIO,
            "drop(runner) -> all stopped, max over repeats",
            "ms",
        )
        .samples(max(&dropped))
        .target(target),
        Row::new(SCENARIO, "of which the drop(runner) call itself", "ms").samples(drop_call),
        Row::new(SCENARIO, "epoch tick period (floor)", "ms").samples(vec![tick_ms]),
    ])
}

/// `n` spinning and `m` sleeping steps, all independent, 120 s timeouts.
fn workflow(s: &Settings) -> anyhow::Result<Workflow> {
    let timeout = Duration::from_secs(120);
    let spin = (0..s.halt_spinning)
        .map(|i| Step::new(format!("spin{i:03}"), "chaos/spin").timeout(timeout));
    let sleep = (0..s.halt_sleeping).map(|i| {
        Step::new(format!("nap{i:03}"), "chaos/sleep")
            .input("seconds", 60)
            .timeout(timeout)
    });
    Ok(Workflow::builder("busy").steps(spin.chain(sleep)).build()?)
}

/// A runner on a fresh SQLite file with every guest of [`workflow`] in
/// flight (+200 ms so each is in its loop or its sleep).
async fn start(s: &Settings) -> anyhow::Result<(Runner, crate::db::FreshDb)> {
    let fresh = Backend::Sqlite.fresh()?;
    let total = s.halt_spinning + s.halt_sleeping;
    // Room for every guest plus one claim batch, so that all of them are
    // claimed in full batches without waiting for free slots.
    let concurrency = s.shutdown_concurrency.max(total);
    let mut hosts = fresh.hosts(1, s, concurrency, &workflow(s)?).await?;
    let runner = hosts.remove(0);
    let id = runner
        .execute("busy", serde_json::json!({}))
        .await?
        .id()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while runner.attempts_in_flight() < total {
        if Instant::now() > deadline {
            let mut states = std::collections::BTreeMap::new();
            for step in runner.status(&id).await?.steps {
                *states.entry(format!("{:?}", step.status)).or_insert(0) += 1;
            }
            anyhow::bail!(
                "only {} of {total} attempts started within 60 s; steps by state: {states:?}",
                runner.attempts_in_flight()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok((runner, fresh))
}

/// (call -> return, call -> no attempt in flight) of `shutdown(ZERO)`, ms.
async fn shutdown_once(s: &Settings) -> anyhow::Result<(f64, f64)> {
    let (runner, _fresh) = start(s).await?;
    let runner = Arc::new(runner);
    let store = runner.store().clone();
    let started = Instant::now();
    let watcher = {
        let runner = runner.clone();
        std::thread::spawn(move || {
            while runner.attempts_in_flight() > 0 {
                std::thread::sleep(WATCH);
            }
            Instant::now()
        })
    };
    let report = runner.shutdown(Duration::ZERO).await;
    let total = started.elapsed();
    let guests_gone = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the watcher thread panicked"))?;
    anyhow::ensure!(store.is_closed(), "the pool is open after shutdown");
    let expected = s.halt_spinning + s.halt_sleeping;
    anyhow::ensure!(
        report.halted == expected && report.finished == 0,
        "expected {expected} halted: {report:?}"
    );
    assert_cpu_idle().await?;
    Ok((ms(total), ms(guests_gone.duration_since(started))))
}

/// (drop -> all stopped and pool closed, the drop call), ms.
async fn drop_once(s: &Settings) -> anyhow::Result<(f64, f64)> {
    let rt = tokio::runtime::Handle::current();
    let baseline = rt.metrics().num_alive_tasks();
    let (runner, _fresh) = start(s).await?;
    let store = runner.store().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let watcher = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            // `is_closed` turns true in `drop` itself: nothing is measured
            // before the drop.
            while !(store.is_closed() && rt.metrics().num_alive_tasks() <= baseline) {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                std::thread::sleep(WATCH);
            }
            Some(Instant::now())
        })
    };
    drop(runner);
    let call = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !watcher.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let done = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the watcher thread panicked"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "10 s after drop: {} tokio tasks alive (baseline {baseline}), pool closed: {}",
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                store.is_closed()
            )
        })?;
    assert_cpu_idle().await?;
    Ok((ms(done.duration_since(started)), ms(call)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Checks that the process uses under 20% of a core over 300 ms: a guest
/// still spinning would burn a whole one.
async fn assert_cpu_idle() -> anyhow::Result<()> {
    let window = Duration::from_millis(300);
    let before = cpu_time()?;
    tokio::time::sleep(window).await;
    let used = cpu_time()? - before;
    anyhow::ensure!(
        used < window.as_secs_f64() / 5.0,
        "{used:.3} s of CPU in {window:?} after the halt: guests still running?"
    );
    Ok(())
}

/// User + system CPU seconds of this process (`/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn cpu_time() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
            .parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after ')'.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
