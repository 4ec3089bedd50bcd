//! A PostgreSQL tenant of a test's own, on the server named by
//! `CORRAL_TEST_POSTGRES_URL` (CI sets it). Without the variable the tests
//! that need it say so and pass; with it set and the server unreachable,
//! they fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corral::Runner;
use sqlx::{Connection, PgConnection};

/// The server URL, or `None` (with a note) when the tests should skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CORRAL_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("CORRAL_TEST_POSTGRES_URL is not set: skipping this PostgreSQL test");
            None
        }
    }
}

/// A tenant of this test's own, dropped when the guard goes.
pub struct Tenant {
    pub url: String,
    pub name: String,
}

impl Tenant {
    pub fn new(url: &str) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        Self {
            url: url.to_owned(),
            name,
        }
    }

    pub fn runner(&self) -> corral::RunnerBuilder {
        Runner::builder()
            .database_url(&self.url)
            .tenant(&self.name)
            .poll_interval(Duration::from_millis(100))
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("the PostgreSQL server is reachable")
    }

    /// A `corral serve` host in this tenant; returns it and its runner id.
    pub fn serve(&self, concurrency: usize) -> (Child, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .args([
                "serve",
                "--lease",
                "2s",
                "--grace",
                "5s",
                "--concurrency",
                &concurrency.to_string(),
            ])
            .env("CORRAL_DATABASE_URL", &self.url)
            .env("CORRAL_TENANT", &self.name)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("corral serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        // "corral serve: runner ID on URL (Ctrl-C to stop)"
        let id = first
            .split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_owned();
        assert!(!id.is_empty(), "unexpected first line of serve: {first:?}");
        // Keep draining stderr so the host never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (child, id)
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await.ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}
