//! The runner: the embeddable engine and its lifecycle.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::RunnerError;
pub use crate::runtime::DeferPolicy;
use crate::runtime::{
    Catalog, DrainReport, Progress, RuntimeConfig, Shared, batch, commit, fire_due, planner,
    progress::ExecutionProgress, run_executor, run_lease_keeper, run_scheduler,
};
use crate::sandbox::{Grants, Limits, PluginInfo, Sandbox, SandboxConfig};
use crate::schedule::{Clock, Schedule, SystemClock};
use crate::store::{
    self, Added, Applied, AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus,
    NewWorkflow, Object, PluginPins, PluginRecord, ScheduleRecord, Snapshot, Store, TaskRunStatus,
    WorkflowRecord, now_ms,
};
use crate::workflow::{TaskCatalog, Workflow};

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
        let shared = Arc::new(Shared {
            catalog: Catalog::new(store.clone(), sandbox.clone()),
            runner_id,
            store,
            sandbox,
            config: RuntimeConfig {
                lease: self.lease,
                claim_batch: self.claim_batch,
                poll_interval: self.poll_interval,
                default_limits: self.default_limits,
                default_grants: self.default_grants,
                defer: self.defer,
            },
            running: Default::default(),
            left_running: Default::default(),
            claimed: Default::default(),
            others_alive: std::sync::atomic::AtomicU64::new(u64::MAX),
            stop_requested: Default::default(),
            slots: Arc::new(Semaphore::new(self.concurrency)),
            wake: Default::default(),
            progress: Progress::default(),
            writers: Default::default(),
            stop_claiming: CancellationToken::new(),
            stop_background: CancellationToken::new(),
        });
        let (grace, grace_rx) = watch::channel(None);
        let background = self.execute.then(|| Background {
            executor: tokio::spawn(run_executor(shared.clone(), grace_rx)),
            leases: tokio::spawn(run_lease_keeper(shared.clone())),
            scheduler: self
                .schedules
                .then(|| tokio::spawn(run_scheduler(shared.clone(), self.clock.clone()))),
        });
        tracing::info!(runner = %shared.runner_id, execute = self.execute, "runner started");
        Ok(Runner {
            clock: self.clock,
            shared,
            background: Mutex::new(background),
            grace,
        })
    }
}

struct Background {
    executor: JoinHandle<DrainReport>,
    leases: JoinHandle<()>,
    scheduler: Option<JoinHandle<()>>,
}

/// What [`Runner::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Attempts that finished within the grace period.
    pub finished: usize,
    /// Attempts halted when the grace period ran out; recorded as
    /// interrupted, they run again on the next runner.
    pub halted: usize,
    /// Whether the runner had already been shut down (nothing was done).
    pub already_shut_down: bool,
}

/// One step of an execution, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The step's id.
    pub id: String,
    /// Its state.
    pub status: TaskRunStatus,
    /// Attempts that counted.
    pub attempts: u32,
    /// Its last error.
    pub error: Option<String>,
    /// Its output, once succeeded.
    pub output: Option<Object>,
}

/// An execution, as reported by [`Runner::status`] and [`ExecutionHandle::wait`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionReport {
    /// Its id.
    pub id: String,
    /// The workflow.
    pub workflow: String,
    /// The workflow version it ran.
    pub workflow_version: String,
    /// Its state.
    pub status: ExecutionStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The result: the outputs of the succeeded steps that no other step
    /// depends on, merged in step order (later steps win on conflicts).
    pub output: Object,
    /// Every step.
    pub steps: Vec<StepReport>,
    /// The plugin registration its steps run, fixed when it was created
    /// (see [`PluginPins`]).
    pub plugins: PluginPins,
}

impl ExecutionReport {
    fn new(snapshot: Snapshot, workflow: Option<&Workflow>) -> Self {
        let is_sink = |id: &str| {
            workflow.is_none_or(|w| {
                w.downstream(id)
                    .is_none_or(|downstream| downstream.is_empty())
            })
        };
        let mut output = Object::new();
        let order: Vec<String> = match workflow {
            Some(w) => w.topological_order().iter().map(|s| s.id.clone()).collect(),
            None => snapshot.runs.iter().map(|r| r.step_id.clone()).collect(),
        };
        for id in &order {
            let run = snapshot.runs.iter().find(|r| &r.step_id == id);
            if let Some(out) = run.and_then(|r| r.output.as_ref()).filter(|_| is_sink(id)) {
                output.extend(out.clone());
            }
        }
        let mut runs = snapshot.runs;
        runs.sort_by_key(|r| order.iter().position(|id| *id == r.step_id));
        let execution = snapshot.execution;
        Self {
            id: execution.id,
            workflow: execution.workflow,
            workflow_version: execution.workflow_version,
            status: execution.status,
            error: execution.error,
            output,
            steps: runs
                .into_iter()
                .map(|r| StepReport {
                    id: r.step_id,
                    status: r.status,
                    attempts: r.attempts,
                    error: r.error,
                    output: r.output,
                })
                .collect(),
            plugins: execution.plugins,
        }
    }
}

/// Runs workflows: submits executions, executes task runs in the sandbox,
/// records everything in the database.
///
/// **Stop it with [`shutdown`](Runner::shutdown)**: that lets in-flight
/// attempts finish within a grace period, records the rest as interrupted
/// and closes the database. Dropping a runner without it still leaves
/// nothing behind — every guest is halted at once, every background task is
/// aborted and the pool is closed — but the attempts it halts keep their
/// claims until their lease expires, and only then run elsewhere.
///
/// ```no_run
/// # async fn demo() -> Result<(), corral::RunnerError> {
/// use std::time::Duration;
/// use corral::{Runner, Workflow};
///
/// let runner = Runner::builder().database_url("sqlite://corral.db").build().await?;
/// runner.register_plugin_file("plugins/target/wasm32-wasip2/release/hello.wasm").await?;
/// runner.apply_workflow(&Workflow::from_toml(r#"
///     name = "greet"
///     [[steps]]
///     id = "greet"
///     task = "hello/greet"
/// "#, None)?).await?;
/// let execution = runner.execute("greet", serde_json::json!({"name": "Ada"})).await?;
/// let report = execution.wait().await?;
/// assert_eq!(report.output["greeting"], "hello, Ada");
/// runner.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
#[must_use = "a Runner works in the background until `shutdown` is called; dropping it halts every guest at once"]
pub struct Runner {
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    background: Mutex<Option<Background>>,
    grace: watch::Sender<Option<Duration>>,
}

/// A submitted execution: its id, its live progress, its result.
#[derive(Clone)]
pub struct ExecutionHandle {
    id: String,
    store: Arc<dyn Store>,
    poll: Duration,
    progress: watch::Receiver<ExecutionProgress>,
    shared: Weak<Shared>,
}

impl std::fmt::Debug for ExecutionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl ExecutionHandle {
    /// The execution's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A watch of the execution's state and its steps' states, updated as
    /// this runner records changes.
    pub fn progress(&self) -> watch::Receiver<ExecutionProgress> {
        self.progress.clone()
    }

    /// Waits until the execution ends and returns its report. Works for
    /// executions run by other processes too (it polls the database).
    pub async fn wait(&self) -> Result<ExecutionReport, RunnerError> {
        let mut progress = self.progress.clone();
        loop {
            let snapshot = self
                .store
                .execution(&self.id)
                .await?
                .ok_or_else(|| RunnerError::UnknownExecution(self.id.clone()))?;
            if snapshot.execution.status.is_final() {
                let shared = self.shared.upgrade();
                let workflow = workflow_of(&*self.store, shared.as_deref(), &snapshot).await;
                return Ok(ExecutionReport::new(snapshot, workflow.as_deref()));
            }
            tokio::select! {
                _ = progress.changed() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Cancels the execution (see [`Runner::cancel`]).
    pub async fn cancel(&self) -> Result<(), RunnerError> {
        let shared = self.shared.upgrade().ok_or(RunnerError::ShutDown)?;
        cancel(&shared, &self.id).await.map(drop)
    }
}

/// The workflow version `snapshot` runs: from the runner's catalog (parsed
/// once) while the runner lives, else read from the store.
async fn workflow_of(
    store: &dyn Store,
    shared: Option<&Shared>,
    snapshot: &Snapshot,
) -> Option<Arc<Workflow>> {
    let (name, version) = (
        &snapshot.execution.workflow,
        &snapshot.execution.workflow_version,
    );
    if let Some(shared) = shared {
        return shared.catalog.workflow(name, version).await.ok();
    }
    let record = store.workflow(name, Some(version)).await.ok()??;
    Workflow::from_stored(record.definition).ok().map(Arc::new)
}

/// The workflows `info` ships, parsed and checked as plugin-shipped ones
/// (no grants, no memory) and named as `describe` says.
fn shipped_workflows(info: &PluginInfo) -> Result<Vec<Workflow>, RunnerError> {
    info.workflows
        .iter()
        .map(|shipped| {
            let workflow = Workflow::from_plugin_toml(&shipped.definition)
                .map_err(|e| shipped_error(info, &shipped.name, e))?;
            if workflow.name() != shipped.name {
                return Err(RunnerError::ShippedWorkflow {
                    plugin: info.id(),
                    workflow: crate::sandbox::cap_text(shipped.name.clone(), 64),
                    reason: format!(
                        "its definition names it `{}`",
                        crate::sandbox::cap_text(workflow.name().to_owned(), 64)
                    ),
                });
            }
            Ok(workflow)
        })
        .collect()
}

fn shipped_error(info: &PluginInfo, name: &str, error: impl std::fmt::Display) -> RunnerError {
    RunnerError::ShippedWorkflow {
        plugin: info.id(),
        workflow: crate::sandbox::cap_text(name.to_owned(), 64),
        reason: error.to_string(),
    }
}

/// The registered plugins, as the workflow validator sees them: oldest
/// registration first (as [`Store::list_plugins`] lists them).
struct Registered(Vec<PluginInfo>);

fn task_names(info: &PluginInfo) -> Vec<String> {
    info.tasks.iter().map(|t| t.name.clone()).collect()
}

impl TaskCatalog for Registered {
    /// Those of the newest registration: what an unpinned step runs.
    fn tasks(&self, plugin: &str) -> Option<Vec<String>> {
        self.0.iter().rfind(|p| p.name == plugin).map(task_names)
    }

    fn tasks_at(&self, plugin: &str, version: &str) -> Option<Vec<String>> {
        let versions = || self.0.iter().filter(|p| p.name == plugin);
        versions()
            .find(|p| p.version == version)
            .or_else(|| versions().rfind(|p| crate::workflow::pin_selects(version, &p.version)))
            .map(task_names)
    }

    fn versions(&self, plugin: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.name == plugin)
            .map(|p| p.version.clone())
            .collect()
    }

    fn plugins(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name.clone()).collect()
    }
}

impl Runner {
    /// A builder with the defaults.
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder::default()
    }

    /// This runner's id, as recorded in claims and attempts.
    pub fn id(&self) -> &str {
        &self.shared.runner_id
    }

    /// How many attempts are running in this runner's sandbox right now.
    pub fn attempts_in_flight(&self) -> usize {
        self.shared.sandbox.in_flight()
    }

    /// The store this runner uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    fn check_running(&self) -> Result<(), RunnerError> {
        if self.shared.store.is_closed() {
            Err(RunnerError::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Validates and registers a plugin component with the workflows it
    /// ships, all or nothing: the component, its `describe` and every
    /// shipped workflow are checked before anything is stored, and the
    /// plugin and its workflows are stored in one transaction. A shipped
    /// workflow may only create a new name or update one this plugin owns:
    /// it never replaces an operator's workflow (or another plugin's).
    /// Registering the same bytes again changes nothing.
    pub async fn register_plugin(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(PluginInfo, String, Added), RunnerError> {
        self.check_running()?;
        let plugin = self.shared.sandbox.load_plugin(bytes.clone()).await?;
        let info = plugin.info().clone();
        let shipped = shipped_workflows(&info)?;
        // Its workflows may use its own tasks: check them against what is
        // registered with this plugin's version in place of any other.
        let mut registered: Vec<PluginInfo> = self
            .shared
            .store
            .list_plugins()
            .await?
            .into_iter()
            .map(|p| p.info)
            .filter(|p| p.name != info.name)
            .collect();
        registered.push(info.clone());
        let catalog = Registered(registered);
        for workflow in &shipped {
            workflow
                .validate_tasks(&catalog)
                .map_err(|e| shipped_error(&info, workflow.name(), e))?;
        }
        let definitions: Vec<serde_json::Value> = shipped.iter().map(|w| w.to_stored()).collect();
        let new: Vec<NewWorkflow<'_>> = shipped
            .iter()
            .zip(&definitions)
            .map(|(workflow, definition)| NewWorkflow {
                name: workflow.name(),
                version: workflow.version(),
                definition,
            })
            .collect();
        let (added, _) = self
            .shared
            .store
            .register_plugin(&info, plugin.sha256(), &bytes, &new, now_ms())
            .await?;
        Ok((info, plugin.sha256().to_owned(), added))
    }

    /// Reads and registers a plugin file (see [`register_plugin`](Self::register_plugin)).
    pub async fn register_plugin_file(
        &self,
        path: impl Into<PathBuf>,
    ) -> Result<(PluginInfo, String, Added), RunnerError> {
        let path = path.into();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| crate::sandbox::PluginError::Read { path, source })?;
        self.register_plugin(bytes).await
    }

    /// Every registered plugin version, by name, oldest registration first.
    pub async fn plugins(&self) -> Result<Vec<PluginRecord>, RunnerError> {
        Ok(self.shared.store.list_plugins().await?)
    }

    /// The registered versions of plugin `name`, oldest first (the last is
    /// what new executions of unpinned steps run); with `version`, only
    /// that one. [`RunnerError::UnknownPlugin`] when there is none.
    pub async fn plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<PluginRecord>, RunnerError> {
        let versions: Vec<PluginRecord> = self
            .plugins()
            .await?
            .into_iter()
            .filter(|p| p.info.name == name && version.is_none_or(|v| p.info.version == v))
            .collect();
        if versions.is_empty() {
            let reference = match version {
                Some(version) => format!("{name}@{version}"),
                None => name.to_owned(),
            };
            return Err(RunnerError::UnknownPlugin(reference));
        }
        Ok(versions)
    }

    /// Removes the registration `name@version`. Refused, removing nothing,
    /// while an execution that has not ended runs it
    /// ([`StoreError::PluginInUse`](crate::store::StoreError::PluginInUse));
    /// [`RunnerError::UnknownPlugin`] when it is not registered. Hosts that
    /// loaded it keep their compiled copy until they stop, but no new
    /// execution can pin it.
    pub async fn remove_plugin(&self, name: &str, version: &str) -> Result<(), RunnerError> {
        self.check_running()?;
        if self.shared.store.remove_plugin(name, version).await? {
            Ok(())
        } else {
            Err(RunnerError::UnknownPlugin(format!("{name}@{version}")))
        }
    }

    /// The latest version of every stored workflow, by name.
    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>, RunnerError> {
        Ok(self.shared.store.list_workflows().await?)
    }

    /// Workflow `name` at `version`, or its latest version;
    /// [`RunnerError::UnknownWorkflow`] when there is none.
    pub async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<WorkflowRecord, RunnerError> {
        self.shared
            .store
            .workflow(name, version)
            .await?
            .ok_or_else(|| {
                RunnerError::UnknownWorkflow(match version {
                    Some(version) => format!("{name}@{version}"),
                    None => name.to_owned(),
                })
            })
    }

    /// Checks a workflow's tasks against the registered plugins and stores
    /// it. Nothing is stored if a check fails.
    pub async fn apply_workflow(&self, workflow: &Workflow) -> Result<Applied, RunnerError> {
        self.check_running()?;
        let plugins = self.shared.store.list_plugins().await?;
        workflow.validate_tasks(&Registered(plugins.into_iter().map(|p| p.info).collect()))?;
        let definition = workflow.to_stored();
        Ok(self
            .shared
            .store
            .apply_workflow(workflow.name(), workflow.version(), &definition, now_ms())
            .await?)
    }

    /// Starts an execution of the latest version of workflow `name`.
    /// `input` must be a JSON object.
    pub async fn execute(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<ExecutionHandle, RunnerError> {
        self.check_running()?;
        let serde_json::Value::Object(input) = input else {
            return Err(RunnerError::InvalidInput(
                "the execution input must be a JSON object".into(),
            ));
        };
        let now = now_ms();
        let new = self.shared.new_execution(name, input, now).await?;
        let id = new.id.clone();
        // Watched from before it is stored (as it will be stored: no need to
        // read it back), so no progress published in between is missed.
        let handle = self.handle_on(id.clone(), &new.snapshot(now));
        let created = match self.shared.write(batch::Write::Create(new)).await {
            Some(batch::WriteResult::Created(result, ready)) => {
                result.map(|()| ready).map_err(RunnerError::from)
            }
            // The batch's committer was dropped with its runner.
            _ => Err(RunnerError::ShutDown),
        };
        let ready = match created {
            Ok(ready) => ready,
            Err(error) => {
                self.shared.progress.forget(&id);
                return Err(error);
            }
        };
        let span = tracing::info_span!("execution", execution = %id, workflow = %name);
        span.in_scope(|| tracing::info!("execution submitted"));
        if ready == batch::Ready::MaybeLeft {
            self.shared.wake.notify_one();
        }
        Ok(handle)
    }

    /// A handle on an existing execution.
    pub async fn handle(&self, id: String) -> Result<ExecutionHandle, RunnerError> {
        let snapshot = self
            .shared
            .store
            .execution(&id)
            .await?
            .ok_or_else(|| RunnerError::UnknownExecution(id.clone()))?;
        Ok(self.handle_on(id, &snapshot))
    }

    fn handle_on(&self, id: String, snapshot: &Snapshot) -> ExecutionHandle {
        ExecutionHandle {
            id,
            store: self.shared.store.clone(),
            poll: self.shared.config.poll_interval,
            progress: self.shared.progress.subscribe(snapshot),
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The execution `id` and its steps.
    pub async fn status(&self, id: &str) -> Result<ExecutionReport, RunnerError> {
        let snapshot = self
            .shared
            .store
            .execution(id)
            .await?
            .ok_or_else(|| RunnerError::UnknownExecution(id.to_owned()))?;
        let workflow = workflow_of(&*self.shared.store, Some(&self.shared), &snapshot).await;
        Ok(ExecutionReport::new(snapshot, workflow.as_deref()))
    }

    /// Executions, newest first.
    pub async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, RunnerError> {
        Ok(self.shared.store.list_executions(filter).await?)
    }

    /// Attempts of an execution (of one step if given), with captured output.
    pub async fn attempts(
        &self,
        id: &str,
        step: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, RunnerError> {
        let snapshot = self
            .shared
            .store
            .execution(id)
            .await?
            .ok_or_else(|| RunnerError::UnknownExecution(id.to_owned()))?;
        if let Some(step) = step.filter(|s| !snapshot.runs.iter().any(|r| r.step_id == *s)) {
            return Err(RunnerError::UnknownStep(step.to_owned()));
        }
        Ok(self.shared.store.attempts(id, step).await?)
    }

    /// Cancels an execution: steps not started are cancelled at once, and
    /// running attempts are halted — here at once, on other runners within
    /// their next lease renewal.
    pub async fn cancel(&self, id: &str) -> Result<ExecutionReport, RunnerError> {
        self.check_running()?;
        let snapshot = cancel(&self.shared, id).await?;
        let workflow = workflow_of(&*self.shared.store, Some(&self.shared), &snapshot).await;
        Ok(ExecutionReport::new(snapshot, workflow.as_deref()))
    }

    /// Stores a schedule (replacing one of the same name, which keeps its
    /// last fire and paused state). Its workflow must exist.
    pub async fn add_schedule(&self, schedule: &Schedule) -> Result<Applied, RunnerError> {
        self.check_running()?;
        if self
            .shared
            .store
            .workflow(schedule.workflow(), None)
            .await?
            .is_none()
        {
            return Err(RunnerError::UnknownWorkflow(schedule.workflow().to_owned()));
        }
        let definition = serde_json::to_value(schedule)
            .map_err(|e| RunnerError::InvalidInput(format!("cannot store schedule: {e}")))?;
        let applied = self
            .shared
            .store
            .put_schedule(
                schedule.name(),
                schedule.workflow(),
                &definition,
                self.clock_ms(),
            )
            .await?;
        Ok(applied)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>, RunnerError> {
        Ok(self.shared.store.list_schedules().await?)
    }

    /// The schedule `name`.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleRecord, RunnerError> {
        self.shared
            .store
            .schedule(name)
            .await?
            .ok_or_else(|| RunnerError::UnknownSchedule(name.to_owned()))
    }

    /// Pauses (`true`) or resumes (`false`) a schedule. Fire times that pass
    /// while it is paused are never fired.
    pub async fn pause_schedule(&self, name: &str, paused: bool) -> Result<(), RunnerError> {
        self.check_running()?;
        match self
            .shared
            .store
            .set_schedule_paused(name, paused, self.clock_ms())
            .await?
        {
            true => Ok(()),
            false => Err(RunnerError::UnknownSchedule(name.to_owned())),
        }
    }

    /// Removes a schedule; the executions it started stay.
    pub async fn remove_schedule(&self, name: &str) -> Result<(), RunnerError> {
        self.check_running()?;
        match self.shared.store.remove_schedule(name).await? {
            true => Ok(()),
            false => Err(RunnerError::UnknownSchedule(name.to_owned())),
        }
    }

    /// Fires the schedules that are due now by this runner's clock, as the
    /// background loop does every 250 ms; returns how many executions
    /// started. For tests and for embedders that drive time themselves.
    pub async fn fire_due_schedules(&self) -> Result<usize, RunnerError> {
        self.check_running()?;
        fire_due(&self.shared, &*self.clock).await
    }

    fn clock_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Stops the runner gracefully: stops claiming, lets in-flight attempts
    /// finish within `grace`, halts the rest (recorded as interrupted: they
    /// go back to the queue without using up a retry), joins every
    /// background task and closes the database pool. Calling it again does
    /// nothing.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let background = self
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if self.shared.store.is_closed() {
            return ShutdownReport {
                already_shut_down: true,
                ..ShutdownReport::default()
            };
        }
        let mut report = ShutdownReport::default();
        if let Some(background) = background {
            let _ = self.shared.stop_requested.set(std::time::Instant::now());
            self.grace.send_replace(Some(grace));
            self.shared.stop_claiming.cancel();
            if grace.is_zero() {
                // Halt here rather than when the executor task next runs:
                // with busy guests queued on every worker thread, that can
                // be a whole round of their time slices away.
                self.shared.halt_all().await;
            }
            match background.executor.await {
                Ok(drained) => {
                    report.finished = drained.finished;
                    report.halted = drained.halted;
                }
                Err(error) => tracing::error!(%error, "the executor task failed"),
            }
            self.shared.stop_background.cancel();
            if let Err(error) = background.leases.await {
                tracing::error!(%error, "the lease keeper task failed");
            }
            if let Some(scheduler) = background.scheduler
                && let Err(error) = scheduler.await
            {
                tracing::error!(%error, "the scheduler task failed");
            }
            // No goodbye in the runners table: it would cost shutdown a
            // write transaction, and this runner's heartbeat ages out of
            // the others' count within three lease-keeper periods anyway.
        }
        // Nothing runs here any more: halt (for good measure) and stop the
        // epoch clock thread now rather than when the Runner is dropped.
        self.shared.sandbox.stop();
        self.shared.store.close().await;
        tracing::info!(runner = %self.shared.runner_id, ?report, "runner shut down");
        report
    }
}

async fn cancel(shared: &Shared, id: &str) -> Result<Snapshot, RunnerError> {
    let snapshot = commit::cancel(&*shared.store, id, now_ms(), &planner::cancel_only)
        .await?
        .ok_or_else(|| RunnerError::UnknownExecution(id.to_owned()))?;
    shared.cancel_local(id);
    shared.progress.publish(&snapshot);
    Ok(snapshot)
}

impl Drop for Runner {
    /// Halts without grace and without blocking: halt flag, epoch bump and
    /// cancel token stop every guest; the background tasks are aborted (their
    /// attempt tasks with them); the pool is marked closed at once and its
    /// connections are closed on the side.
    fn drop(&mut self) {
        let background = self
            .background
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if background.is_none() && self.shared.store.is_closed() {
            return;
        }
        self.shared.stop_claiming.cancel();
        self.shared.stop_background.cancel();
        self.shared.sandbox.halt_all();
        if let Some(background) = background {
            background.executor.abort();
            background.leases.abort();
            if let Some(scheduler) = background.scheduler {
                scheduler.abort();
            }
        }
        // Marks the pool closed without polling anything, so this cannot
        // panic for want of a runtime (a timer, a reactor); the rest of the
        // closing runs on the caller's runtime if there is one, else on a
        // thread of its own.
        let closing = self.shared.store.close();
        self.shared.sandbox.stop();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(closing);
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("corral-pool-close".into())
                    .spawn(move || {
                        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            rt.block_on(closing);
                        }
                    });
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot close the database pool in the background");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_the_epoch_clock() {
        let runner = Runner::builder()
            .database_url("sqlite::memory:")
            .build()
            .await
            .unwrap();
        assert!(runner.shared.sandbox.clock_running());
        runner.shutdown(Duration::ZERO).await;
        assert!(
            !runner.shared.sandbox.clock_running(),
            "the clock ticks on until the Runner is dropped"
        );
    }
}
