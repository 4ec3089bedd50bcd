//! [`RunnerBuilder`]: a runner's settings, each with a default suited to
//! one host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Runner;
use crate::error::RunnerError;
use crate::runtime::{DeferPolicy, Loops, Runtime, RuntimeConfig};
use crate::sandbox::{Grants, Limits, Sandbox, SandboxConfig};
use crate::schedule::{Clock, SystemClock};
use crate::store;

/// Builds a [`Runner`]. Every setting has a default suited to one host.
#[derive(Debug, Clone)]
pub struct RunnerBuilder {
    database_url: String,
    sandbox: SandboxConfig,
    concurrency: usize,
    lease: Duration,
    claim_batch: u32,
    poll_interval: Duration,
    default_limits: Limits,
    default_grants: Grants,
    execute: bool,
    schedules: bool,
    clock: Arc<dyn Clock>,
    tenant: Option<String>,
    create_database: bool,
    defer: DeferPolicy,
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl Default for RunnerBuilder {
    fn default() -> Self {
        Self {
            database_url: store::DEFAULT_DATABASE_URL.to_owned(),
            sandbox: SandboxConfig::default(),
            concurrency: 16,
            lease: Duration::from_secs(30),
            claim_batch: 32,
            poll_interval: Duration::from_millis(250),
            default_limits: Limits::default(),
            default_grants: Grants::default(),
            execute: true,
            schedules: true,
            clock: Arc::new(SystemClock),
            tenant: None,
            create_database: true,
            defer: DeferPolicy::default(),
        }
    }
}

impl RunnerBuilder {
    /// The database (default `sqlite://corral.db`).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }

    /// How many attempts run at once on this runner (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The epoch tick: granularity of timeouts and halting (default 5 ms).
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.sandbox.epoch_tick = tick;
        self
    }

    /// Directory of compiled plugin artifacts (default: none).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sandbox.cache_dir = Some(dir.into());
        self
    }

    /// Every sandbox setting at once.
    pub fn sandbox_config(mut self, config: SandboxConfig) -> Self {
        self.sandbox = config;
        self
    }

    /// Limits of attempts whose step and task set none (default [`Limits::default`]).
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.default_limits = limits;
        self
    }

    /// Grants every attempt gets, under its step's own (default none).
    pub fn default_grants(mut self, grants: Grants) -> Self {
        self.default_grants = grants;
        self
    }

    /// How long a claim holds without renewal (default 30 s). A runner that
    /// dies loses its claims after this long; they then run elsewhere.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// Most task runs claimed in one query (default 32).
    pub fn claim_batch(mut self, n: u32) -> Self {
        self.claim_batch = n.max(1);
        self
    }

    /// How often to look for work when nothing woke the runner (default
    /// 250 ms): bounds the delay of retries' backoff and of work submitted
    /// by other processes.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The tenant (default none): on PostgreSQL, everything lives in the
    /// schema of that name, created if missing; two tenants on one database
    /// never see each other's plugins, workflows or executions. Names are
    /// lowercase letters, digits and `_`. SQLite has no tenants.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Whether a SQLite database file that does not exist is created
    /// (default true). A runner that only reads passes false, so that a
    /// wrong path is an error ([`StoreError::NoDatabase`](crate::store::StoreError::NoDatabase))
    /// rather than a new empty database.
    pub fn create_database(mut self, create: bool) -> Self {
        self.create_database = create;
        self
    }

    /// How long a plugin's `describe` may take when this runner loads it
    /// (default 10 s).
    pub fn describe_timeout(mut self, timeout: Duration) -> Self {
        self.sandbox.describe_timeout = timeout;
        self
    }

    /// How long a step whose plugin this runner cannot load is left to
    /// other runners before it fails (default [`DeferPolicy::default`]).
    pub fn plugin_deferral(mut self, policy: DeferPolicy) -> Self {
        self.defer = policy;
        self
    }

    /// Whether this runner fires due schedules (default true; only a runner
    /// that executes work fires them). Any number of runners may: each fire
    /// time still starts one execution.
    pub fn schedules(mut self, fire: bool) -> Self {
        self.schedules = fire;
        self
    }

    /// The clock schedules are fired by (default the system clock); tests
    /// move a [`ManualClock`](crate::schedule::ManualClock) instead.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether this runner executes work (default true). A runner that does
    /// not only submits, inspects and cancels: what the CLI's `status` or
    /// `run --detach` use.
    pub fn execute(mut self, execute: bool) -> Self {
        self.execute = execute;
        self
    }

    /// Opens the database (migrating it), builds the sandbox and starts the
    /// background work: the executor and the lease keeper.
    pub async fn build(self) -> Result<Runner, RunnerError> {
        let runner_id = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let options = store::ConnectOptions {
            tenant: self.tenant.clone(),
            // Lets an operator find this runner's connections, e.g. in
            // PostgreSQL's pg_stat_activity.
            application_name: format!("corral-{runner_id}"),
            create: self.create_database,
        };
        let store = store::connect_with(&self.database_url, &options).await?;
        let sandbox = Sandbox::new(SandboxConfig {
            max_concurrent_attempts: self
                .sandbox
                .max_concurrent_attempts
                .max(u32::try_from(self.concurrency + 8).unwrap_or(u32::MAX)),
            ..self.sandbox
        })?;
        let config = RuntimeConfig {
            lease: self.lease,
            claim_batch: self.claim_batch,
            poll_interval: self.poll_interval,
            default_limits: self.default_limits,
            default_grants: self.default_grants,
            defer: self.defer,
        };
        let loops = Loops {
            execute: self.execute,
            schedules: (self.execute && self.schedules).then(|| self.clock.clone()),
        };
        let runtime = Runtime::start(runner_id, store, sandbox, config, self.concurrency, loops);
        tracing::info!(runner = %runtime.id(), execute = self.execute, "runner started");
        Ok(Runner {
            clock: self.clock,
            runtime,
        })
    }
}
