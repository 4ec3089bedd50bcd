//! PostgreSQL, with 1 and with 3 hosts (runners in this process sharing a
//! fresh tenant; everything submitted through the first): the end-to-end
//! throughput of `throughput.rs` and the scheduling latency of
//! `scheduling.rs`. Skipped (rows "not measured") without a server URL.

use crate::Settings;
use crate::db::Backend;
use crate::report::Row;
use crate::{scheduling, throughput};

const SCENARIO: &str = "postgresql";

/// `CORRAL_BENCH_POSTGRES_URL`, else `CORRAL_TEST_POSTGRES_URL` (what CI sets).
pub fn url() -> Option<String> {
    ["CORRAL_BENCH_POSTGRES_URL", "CORRAL_TEST_POSTGRES_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
}

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let Some(url) = url() else {
        eprintln!("  no PostgreSQL URL: skipped");
        return Ok(s
            .postgres_hosts
            .iter()
            .map(|hosts| {
                Row::new(
                    SCENARIO,
                    format!("{}: throughput and scheduling latency", host_count(*hosts)),
                    "-",
                )
                .note(
                    "not measured: no PostgreSQL URL \
                     (CORRAL_BENCH_POSTGRES_URL or CORRAL_TEST_POSTGRES_URL)",
                )
            })
            .collect());
    };
    let backend = Backend::Postgres { url };
    let [one, fan] = throughput::workflows()?;
    let mut rows = Vec::new();
    for &hosts in &s.postgres_hosts {
        let who = host_count(hosts);
        for (workflow, executions, clients) in [
            (&one, s.postgres_one_step_executions, 1),
            (&one, s.postgres_one_step_executions, s.submit_clients),
            (&fan, s.postgres_fan_executions, 1),
        ] {
            eprintln!("  {who}: {executions} x {}", workflow.name());
            let rates =
                throughput::rates(&backend, hosts, clients, s, workflow, executions).await?;
            let what = format!(
                "{who}: {executions} x {}-step, {}",
                workflow.steps().len(),
                throughput::clients_text(clients)
            );
            rows.push(Row::new(SCENARIO, format!("{what}: steps/s"), "1/s").samples(rates.steps));
            rows.push(
                Row::new(SCENARIO, format!("{what}: executions/s"), "1/s")
                    .samples(rates.executions),
            );
            // The corral process only: the server's CPU is not counted.
            rows.push(throughput::cpu_row(SCENARIO, &what, rates.cpu_ms_per_step));
        }
        eprintln!("  {who}: scheduling latency");
        let latency =
            scheduling::latency(&backend, hosts, s, s.postgres_scheduling_executions, 1).await?;
        rows.extend(scheduling::rows(
            SCENARIO,
            &format!("{who}, 1 execution at a time"),
            &latency,
        ));
    }
    Ok(rows)
}

fn host_count(hosts: usize) -> String {
    match hosts {
        1 => "1 host".into(),
        n => format!("{n} hosts"),
    }
}
