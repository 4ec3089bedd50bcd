//! PostgreSQL faults a runner must survive: being dropped outside any
//! runtime (also while its thread unwinds), and its own connections killed
//! by the server again and again while steps run.
//!
//! Needs `CORRAL_TEST_POSTGRES_URL` (CI sets it); see `common::postgres`.

mod common;

use std::time::{Duration, Instant};

use common::artifacts;
use common::postgres::{Tenant, postgres_url};
use corral::store::{ExecutionStatus, TaskRunStatus};
use serde_json::json;
use sqlx::PgConnection;

async fn connections_named(conn: &mut PgConnection, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
        .expect("pg_stat_activity is readable")
}

/// The outside lifecycle suite's finding: 17 of 20 short-lived PostgreSQL
/// runners dropped from a plain thread panicked ("there is no reactor
/// running"), and one dropped while its thread unwound aborted the process.
#[test]
fn dropping_postgres_runners_outside_a_runtime_never_panics() {
    let Some(url) = postgres_url() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new(&url);
    let mut names = Vec::new();
    for round in 0..20 {
        let runner = rt
            .block_on(tenant.runner().build())
            .expect("connects to PostgreSQL");
        names.push(format!("corral-{}", runner.id()));
        let dropped = std::thread::spawn(move || {
            if round % 2 == 0 {
                drop(runner);
            } else {
                // Dropped while the thread unwinds: a panic in the runner's
                // destructor now would abort the whole test process.
                let _runner = runner;
                panic!("the task holding the runner failed");
            }
        })
        .join();
        match dropped {
            Ok(()) => assert_eq!(round % 2, 0),
            Err(payload) => {
                let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
                assert_eq!(message, "the task holding the runner failed");
            }
        }
    }
    rt.block_on(async {
        let mut conn = tenant.connect().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        for name in &names {
            while connections_named(&mut conn, name).await > 0 {
                assert!(Instant::now() < deadline, "{name} left connections open");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
}

/// Root, eight parallel sleeps, a join, eight more, a last step.
fn waves() -> String {
    let mut toml = String::from(
        "name = \"waves\"\n[[steps]]\nid = \"root\"\ntask = \"chaos/echo\"\ninput = { root = true }\n",
    );
    for (wave, after) in [("a", "root"), ("b", "join")] {
        for i in 0..8 {
            toml.push_str(&format!(
                "[[steps]]\nid = \"{wave}{i}\"\ntask = \"chaos/sleep\"\ndepends_on = [\"{after}\"]\ninput = {{ seconds = 0.15 }}\n"
            ));
        }
        let ids: Vec<String> = (0..8).map(|i| format!("\"{wave}{i}\"")).collect();
        let next = if wave == "a" { "join" } else { "last" };
        toml.push_str(&format!(
            "[[steps]]\nid = \"{next}\"\ntask = \"chaos/echo\"\ndepends_on = [{}]\n",
            ids.join(", ")
        ));
    }
    toml
}

/// The outside lifecycle suite's findings: a connection killed while a
/// fresh host loaded a workflow failed the whole execution, and two failed
/// recordings of an attempt's end left its step `running` for ever (the
/// lease keeper renewed every claim of the host, in flight or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_neither_fail_nor_strand_work() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    let client = tenant.runner().execute(false).build().await.unwrap();
    client.register_plugin_file(artifacts::CHAOS).await.unwrap();
    client
        .apply_workflow(&corral::Workflow::from_toml(&waves(), None).unwrap())
        .await
        .unwrap();
    // A fresh host: nothing of the workflow or the plugin is loaded yet.
    let host = tenant
        .runner()
        .lease(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let name = format!("corral-{}", host.id());
    let id = client
        .execute("waves", json!({}))
        .await
        .unwrap()
        .id()
        .to_owned();
    // Kill every connection of the host every 10 ms for 1.5 s.
    let mut killer = tenant.connect().await;
    let until = Instant::now() + Duration::from_millis(1500);
    let mut killed = 0_i64;
    while Instant::now() < until {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
        )
        .bind(&name)
        .fetch_one(&mut killer)
        .await
        .unwrap();
        killed += n;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(killed > 0, "no connection of {name} was killed");
    // Well within the lease: a stranded step would only come back after it.
    let report = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let report = client.status(&id).await.unwrap();
            if report.status.is_final() {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the execution ends without restarting the host");
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    for step in &report.steps {
        assert_eq!(step.status, TaskRunStatus::Succeeded, "{step:?}");
        assert_eq!(step.attempts, 1, "step {} ran more than once", step.id);
    }
    let attempts = client.attempts(&id, None).await.unwrap();
    for step in &report.steps {
        let succeeded = attempts
            .iter()
            .filter(|a| a.step_id == step.id && a.outcome.as_deref() == Some("succeeded"))
            .count();
        assert_eq!(succeeded, 1, "step {} succeeded {succeeded} times", step.id);
    }
    host.shutdown(Duration::from_secs(5)).await;
    client.shutdown(Duration::ZERO).await;
}
