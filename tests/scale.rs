//! Several hosts on one PostgreSQL database: real `corral serve` child
//! processes share the work, lose none of it when one is killed, hear
//! cancels from each other, and a dropped runner leaves no connection.
//!
//! Needs `CORRAL_TEST_POSTGRES_URL` (CI sets it). Without it these tests
//! say so and pass; with it set and the server unreachable they fail.
//! Every test works in a tenant (schema) of its own, dropped at the end.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::postgres::{Tenant, postgres_url};
use common::{artifacts, eventually};
use corral::Runner;
use corral::store::{ExecutionFilter, ExecutionStatus};
use serde_json::json;
use sqlx::{PgConnection, Row};

/// Root, six parallel steps, a join: eight attempts per execution.
const FAN: &str = r#"
name = "fan"
[[steps]]
id = "root"
task = "chaos/echo"
input = { root = true }
[[steps]]
id = "f1"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "f2"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "f3"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "f4"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "f5"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "f6"
task = "chaos/sleep"
depends_on = ["root"]
[[steps]]
id = "join"
task = "chaos/echo"
depends_on = ["f1", "f2", "f3", "f4", "f5", "f6"]
input = { joined = true }
"#;

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
}

async fn submit(client: &Runner, n: usize, nap: f64) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let handle = client
            .execute("fan", json!({ "seconds": nap }))
            .await
            .unwrap();
        ids.push(handle.id().to_string());
    }
    ids
}

async fn wait_all_succeeded(client: &Runner, n: usize, within: Duration) {
    eventually(within, "every execution succeeded", async || {
        let filter = ExecutionFilter {
            status: Some(ExecutionStatus::Succeeded),
            limit: Some(10_000),
            ..Default::default()
        };
        client.list_executions(&filter).await.unwrap().len() == n
    })
    .await;
    let all = client
        .list_executions(&ExecutionFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.iter().all(|e| e.status == ExecutionStatus::Succeeded));
}

/// Every step succeeded exactly once: counted in the database.
async fn assert_each_step_succeeded_once(tenant: &Tenant, executions: usize) {
    let mut conn = tenant.connect().await;
    let table = format!("\"{}\".attempts", tenant.name);
    let twice: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT execution_id, step_id FROM {table} WHERE outcome = 'succeeded'
         GROUP BY execution_id, step_id HAVING count(*) > 1) twice"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(twice, 0, "some step succeeded more than once");
    let succeeded: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE outcome = 'succeeded'"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(succeeded as usize, executions * 8);
}

async fn attempts_by_runner(tenant: &Tenant) -> Vec<(String, i64)> {
    let mut conn = tenant.connect().await;
    let rows = sqlx::query(&format!(
        "SELECT runner_id, count(*) AS n FROM \"{}\".attempts GROUP BY runner_id ORDER BY runner_id",
        tenant.name
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|r| (r.get("runner_id"), r.get("n")))
        .collect()
}

async fn set_up(tenant: &Tenant) -> Runner {
    let client = tenant
        .runner()
        .execute(false)
        .build()
        .await
        .expect("connects to PostgreSQL");
    client.register_plugin_file(artifacts::CHAOS).await.unwrap();
    client
        .apply_workflow(&corral::Workflow::from_toml(FAN, None).unwrap())
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_share_300_executions_and_run_each_step_once() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let client = set_up(&tenant).await;
    let hosts: Vec<(Child, String)> = (0..3).map(|_| tenant.serve(16)).collect();

    let ids = submit(&client, 300, 0.0).await;
    wait_all_succeeded(&client, ids.len(), Duration::from_secs(240)).await;

    assert_each_step_succeeded_once(&tenant, ids.len()).await;
    let by_runner = attempts_by_runner(&tenant).await;
    for (_, id) in &hosts {
        let did = by_runner
            .iter()
            .find(|(r, _)| r == id)
            .map_or(0, |(_, n)| *n);
        assert!(did > 0, "host {id} did no work: {by_runner:?}");
    }
    client.shutdown(Duration::ZERO).await;
    for (mut child, _) in hosts {
        terminate(&mut child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_midway_loses_no_work() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let client = set_up(&tenant).await;
    let mut hosts: Vec<(Child, String)> = (0..3).map(|_| tenant.serve(16)).collect();

    // Sleeping fan steps keep every host busy with attempts in flight.
    let ids = submit(&client, 100, 0.3).await;
    let victim = hosts[0].1.clone();
    eventually(
        Duration::from_secs(60),
        "the victim host has work in flight",
        async || {
            let mut conn = tenant.connect().await;
            let running: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\".task_runs WHERE status = 'running' AND claimed_by = $1",
            tenant.name
        ))
        .bind(&victim)
        .fetch_one(&mut conn)
        .await
        .unwrap();
            running >= 4
        },
    )
    .await;
    hosts[0].0.kill().unwrap(); // SIGKILL
    hosts[0].0.wait().unwrap();

    wait_all_succeeded(&client, ids.len(), Duration::from_secs(240)).await;
    assert_each_step_succeeded_once(&tenant, ids.len()).await;

    // The victim's unfinished attempts are interrupted and ran again elsewhere.
    let mut conn = tenant.connect().await;
    let table = format!("\"{}\".attempts", tenant.name);
    let interrupted: Vec<(String, String)> = sqlx::query(&format!(
        "SELECT execution_id, step_id FROM {table} WHERE runner_id = $1 AND outcome = 'interrupted'"
    ))
    .bind(&victim)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("execution_id"), r.get("step_id")))
    .collect();
    assert!(
        !interrupted.is_empty(),
        "the killed host's attempts were not recorded as interrupted"
    );
    for (execution, step) in &interrupted {
        let redone: String = sqlx::query_scalar(&format!(
            "SELECT runner_id FROM {table} WHERE execution_id = $1 AND step_id = $2 AND outcome = 'succeeded'"
        ))
        .bind(execution)
        .bind(step)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_ne!(
            redone, victim,
            "an interrupted attempt was finished by its dead host"
        );
    }
    let unfinished: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE finished_at IS NULL"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(unfinished, 0, "attempts left without an end");
    client.shutdown(Duration::ZERO).await;
    for (mut child, _) in hosts.into_iter().skip(1) {
        terminate(&mut child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_one_host_stops_an_attempt_on_another() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let client = tenant
        .runner()
        .execute(false)
        .build()
        .await
        .expect("connects to PostgreSQL");
    client.register_plugin_file(artifacts::CHAOS).await.unwrap();
    let spin =
        "name = \"spin\"\n[[steps]]\nid = \"spin\"\ntask = \"chaos/spin\"\ntimeout = \"5m\"\n";
    client
        .apply_workflow(&corral::Workflow::from_toml(spin, None).unwrap())
        .await
        .unwrap();
    let (mut host, host_id) = tenant.serve(4);
    let handle = client.execute("spin", json!({})).await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the spin runs on the other host",
        async || {
            let report = client.status(handle.id()).await.unwrap();
            report.steps[0].status == corral::store::TaskRunStatus::Running
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cancelled_at = Instant::now();
    client.cancel(handle.id()).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), handle.wait())
        .await
        .expect("cancelled in time")
        .unwrap();
    assert_eq!(report.status, ExecutionStatus::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        cancelled_at.elapsed()
    );
    let attempts = client.attempts(handle.id(), None).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].runner_id, host_id);
    assert_eq!(attempts[0].outcome.as_deref(), Some("cancelled"));
    client.shutdown(Duration::ZERO).await;
    terminate(&mut host);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_runner_leaves_no_connection_in_pg_stat_activity() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let runner = tenant
        .runner()
        .concurrency(4)
        .build()
        .await
        .expect("connects to PostgreSQL");
    runner.register_plugin_file(artifacts::CHAOS).await.unwrap();
    let naps = "name = \"naps\"\n[[steps]]\nid = \"a\"\ntask = \"chaos/sleep\"\n[[steps]]\nid = \"b\"\ntask = \"chaos/spin\"\ntimeout = \"5m\"\n";
    runner
        .apply_workflow(&corral::Workflow::from_toml(naps, None).unwrap())
        .await
        .unwrap();
    runner.execute("naps", json!({})).await.unwrap();
    eventually(Duration::from_secs(30), "two guests running", async || {
        runner.attempts_in_flight() == 2
    })
    .await;
    let name = format!("corral-{}", runner.id());
    let mut conn = tenant.connect().await;
    let count = async |conn: &mut PgConnection| -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&name)
            .fetch_one(conn)
            .await
            .unwrap()
    };
    assert!(
        count(&mut conn).await > 0,
        "the runner's connections are not named {name}"
    );

    drop(runner);

    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let open = count(&mut conn).await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections of {name} still open 1 s after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_fire_a_per_second_schedule_once_per_fire_time() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let client = tenant
        .runner()
        .execute(false)
        .build()
        .await
        .expect("connects to PostgreSQL");
    client.register_plugin_file(artifacts::HELLO).await.unwrap();
    let greet = "name = \"greet\"\n[[steps]]\nid = \"greet\"\ntask = \"hello/greet\"\ninput = { name = \"tick\" }\n";
    client
        .apply_workflow(&corral::Workflow::from_toml(greet, None).unwrap())
        .await
        .unwrap();
    let tick = corral::schedule::Schedule::new("tick", "greet", "* * * * * *").unwrap();
    client.add_schedule(&tick).await.unwrap();
    let hosts: Vec<(Child, String)> = (0..3).map(|_| tenant.serve(4)).collect();
    tokio::time::sleep(Duration::from_secs(11)).await;
    for (mut child, _) in hosts {
        terminate(&mut child);
    }
    let mut conn = tenant.connect().await;
    let rows = sqlx::query(&format!(
        "SELECT fire_time, count(*) AS n FROM \"{}\".executions WHERE schedule = 'tick'
         GROUP BY fire_time ORDER BY fire_time",
        tenant.name
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let counts: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.get("fire_time"), r.get("n")))
        .collect();
    assert!(
        counts.len() >= 9,
        "only {} fire times in 11 s: {counts:?}",
        counts.len()
    );
    assert!(
        counts.iter().all(|(_, n)| *n == 1),
        "a fire time started several executions: {counts:?}"
    );
    for pair in counts.windows(2) {
        assert_eq!(
            pair[1].0 - pair[0].0,
            1000,
            "a second was skipped: {counts:?}"
        );
    }
    client.shutdown(Duration::ZERO).await;
}
