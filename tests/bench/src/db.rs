//! Fresh databases for the end-to-end scenarios — a temp SQLite file, or a
//! new tenant (schema) on a PostgreSQL server, dropped afterwards — and the
//! runners ("hosts") that share one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use corral::{Runner, Workflow};

use crate::Settings;

/// Where the end-to-end scenarios keep their data.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A new SQLite file in a temp dir per run.
    Sqlite,
    /// A new tenant per run on the PostgreSQL server at `url`.
    Postgres { url: String },
}

/// A fresh, empty database for one run; [`FreshDb::remove`] drops its
/// PostgreSQL tenant afterwards.
pub struct FreshDb {
    url: String,
    tenant: Option<String>,
    /// Whether a runner connected (and so created the tenant's schema).
    used: AtomicBool,
    /// Holds the SQLite file and the hosts' compiled-plugin cache.
    dir: tempfile::TempDir,
}

impl Backend {
    pub fn fresh(&self) -> anyhow::Result<FreshDb> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir()?;
        Ok(match self {
            Backend::Sqlite => FreshDb {
                url: format!("sqlite://{}", dir.path().join("corral.db").display()),
                tenant: None,
                used: AtomicBool::new(false),
                dir,
            },
            Backend::Postgres { url } => FreshDb {
                url: url.clone(),
                tenant: Some(format!(
                    "corral_bench_{}_{}_{}",
                    std::process::id(),
                    chrono::Utc::now().timestamp_millis(),
                    RUNS.fetch_add(1, Ordering::Relaxed)
                )),
                used: AtomicBool::new(false),
                dir,
            },
        })
    }
}

impl FreshDb {
    /// `n` runners on this database that execute work (schedules off),
    /// sharing one compiled-plugin cache dir; the chaos plugin registered
    /// and `workflow` applied through the first.
    pub async fn hosts(
        &self,
        n: usize,
        s: &Settings,
        concurrency: usize,
        workflow: &Workflow,
    ) -> anyhow::Result<Vec<Runner>> {
        let mut hosts = Vec::with_capacity(n);
        // One after the other: the first creates and migrates the tenant.
        for _ in 0..n {
            let mut builder = Runner::builder()
                .database_url(&self.url)
                .concurrency(concurrency)
                .poll_interval(Duration::from_millis(s.poll_interval_ms))
                .cache_dir(self.dir.path().join("cache"))
                .execute(true)
                .schedules(false);
            if let Some(tenant) = &self.tenant {
                builder = builder.tenant(tenant);
            }
            let runner = builder.build().await.with_context(|| match &self.tenant {
                Some(_) => "cannot start a runner on the PostgreSQL server named by \
                            CORRAL_BENCH_POSTGRES_URL / CORRAL_TEST_POSTGRES_URL"
                    .to_owned(),
                None => format!("cannot start a runner on {}", self.url),
            })?;
            self.used.store(true, Ordering::Relaxed);
            hosts.push(runner);
        }
        hosts[0]
            .register_plugin_file(corral_test_artifacts::CHAOS)
            .await?;
        hosts[0].apply_workflow(workflow).await?;
        Ok(hosts)
    }
}

/// Shuts every host down (5 s grace; they are idle by then).
pub async fn shutdown(hosts: Vec<Runner>) {
    for host in hosts {
        host.shutdown(Duration::from_secs(5)).await;
    }
}

impl FreshDb {
    /// Drops the PostgreSQL tenant's schema, if a runner created one.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        let Some(tenant) = self.tenant.take().filter(|_| *self.used.get_mut()) else {
            return Ok(());
        };
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{tenant}\" CASCADE"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}

/// Waits for every handle in order; each execution must have succeeded.
/// Returns their ids.
pub async fn wait_succeeded(handles: Vec<corral::ExecutionHandle>) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(handles.len());
    for handle in handles {
        let report = handle.wait().await?;
        anyhow::ensure!(
            report.status == corral::store::ExecutionStatus::Succeeded,
            "execution {} ended {:?}: {:?}",
            report.id,
            report.status,
            report.error
        );
        ids.push(report.id.into());
    }
    Ok(ids)
}
