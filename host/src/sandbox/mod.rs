//! The sandbox: runs one task attempt at a time per `Store`, never trusting
//! the guest.
//!
//! One [`Sandbox`] owns one wasmtime `Engine` (epoch interruption, pooling
//! allocator), the epoch clock thread, the compiled-artifact cache and the
//! halt switch. [`Sandbox::load_plugin`] validates, compiles (or loads from
//! the cache), links and describes a component once; [`Sandbox::run`] runs
//! one attempt in a fresh `Store` built from the request's grants and limits
//! and reports an [`Outcome`] for anything the guest does.
//!
//! # Limits the host enforces without the guest's help
//! - **Time**: the epoch callback stops guests running wasm within one epoch
//!   tick of their deadline; guests parked in host calls (WASI sleep, I/O)
//!   are raced against the deadline and the cancel token.
//! - **Memory**: growing linear memory past [`Limits::memory_bytes`] traps.
//! - **Output**: outputs over [`Limits::max_output_bytes`] are rejected;
//!   stdout/stderr and log lines past their caps are counted and dropped.
//!   An output string is copied out of the guest before its size is checked,
//!   so a guest can make the host hold at most one copy of its own memory.
//! - **Capabilities**: only granted directories and environment variables;
//!   no sockets, no name lookup, nothing inherited.
//! - **Disk**: each writable grant has a quota per attempt (default
//!   [`DEFAULT_MAX_BYTES`] of growth and [`DEFAULT_MAX_FILES`] entries
//!   created, see [`DirGrant`]); past it the guest gets `insufficient-space`.
//!   No guest can create a symlink that points outside its grant. See
//!   `fs_quota`.
//! - **Halting**: [`Sandbox::halt_all`] stops every in-flight attempt at once.

mod attempt;
mod bindings;
mod cache;
mod capture;
mod clock;
mod control;
mod error;
mod fs_quota;
mod grants;
mod outcome;
mod plugin;
mod state;
mod text;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::Instrument;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use attempt::AttemptRequest;
pub use cache::CompileSource;
pub use capture::Captured;
pub use control::AttemptControl;
pub use error::{GrantError, PluginError, SandboxError};
pub use fs_quota::GrantUsage;
pub use grants::{DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DirGrant, Grants, Limits};
pub(crate) use grants::{env_var_problem, parse_size};
pub use outcome::{AttemptReport, LogLine, Outcome, check_output};
pub use plugin::{
    MAX_DESCRIPTION_BYTES, MAX_TASKS, MAX_WORKFLOW_BYTES, MAX_WORKFLOWS, Plugin, PluginInfo,
    TaskInfo, WorkflowInfo, sha256_hex,
};
pub use text::{MAX_ERROR_BYTES, MAX_LOG_LINE_BYTES, MAX_PROGRESS_NOTE_BYTES, cap as cap_text};

use attempt::{CallError, classify, new_store, output_outcome, race, report, wasi_from_grants};
use bindings::{TaskPlugin, TaskPluginPre};
use cache::ArtifactCache;
use capture::CappedPipe;
use clock::EpochClock;
use control::Halt;
use fs_quota::FsQuota;
use state::StoreState;

/// How to build a [`Sandbox`]. `Default` suits a 2-core / 24 GiB host.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// How often the epoch clock ticks (default 5 ms): the granularity of
    /// timeouts and the latency of halting a busy guest.
    pub epoch_tick: Duration,
    /// Attempts that may hold an instance at once (default 1,000). Further
    /// attempts wait for a slot.
    pub max_concurrent_attempts: u32,
    /// The largest memory limit any attempt may be given (default 4 GiB).
    pub max_memory_bytes: u64,
    /// Use wasmtime's pooling allocator (default true): instance slots are
    /// reserved up front, which makes instantiation several times faster.
    pub pooling: bool,
    /// Directory of compiled artifacts (default none: compile on every load).
    /// It must be writable only by the operator: its files are loaded as
    /// native code.
    pub cache_dir: Option<PathBuf>,
    /// Meter fuel so that [`Limits::fuel`] can be used (default false; costs
    /// 15–35% of guest speed).
    pub fuel: bool,
    /// Maximum wasm stack per attempt, in bytes (default 1 MiB).
    pub max_wasm_stack: usize,
    /// How long a plugin's `describe` may take when it is loaded (default
    /// 10 s); a slower one fails the load with [`PluginError::Describe`].
    pub describe_timeout: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(5),
            max_concurrent_attempts: 1000,
            max_memory_bytes: 4 << 30,
            pooling: true,
            cache_dir: None,
            fuel: false,
            max_wasm_stack: 1 << 20,
            describe_timeout: plugin::DESCRIBE_TIMEOUT,
        }
    }
}

/// Runs plugin tasks in isolated, limited, haltable stores. Cheap to clone;
/// clones share the engine and the halt switch.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreState>,
    halt: Arc<Halt>,
    permits: Semaphore,
    in_flight: Arc<AtomicUsize>,
    loads: AtomicUsize,
    cache: Option<Arc<ArtifactCache>>,
    config: SandboxConfig,
    // Declared last so it is dropped after the engine handle above; it only
    // holds a weak reference anyway.
    clock: EpochClock,
}

/// An error the caller made when asking for an attempt (the guest never ran).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plugin offers no such task.
    #[error("plugin {plugin} has no task `{task}`; it offers: {available}")]
    UnknownTask {
        /// `name@version` of the plugin.
        plugin: String,
        /// The task asked for.
        task: String,
        /// The tasks it does offer.
        available: String,
    },
    /// A grant or limit cannot be honoured.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The memory limit is above the sandbox's maximum.
    #[error("memory limit of {requested} bytes is above this host's maximum of {max} bytes")]
    MemoryAboveMax {
        /// The requested limit.
        requested: u64,
        /// [`SandboxConfig::max_memory_bytes`].
        max: u64,
    },
}

enum Call<'a> {
    Describe,
    Run { task: &'a str, input: &'a str },
}

/// What one call left behind.
struct Called {
    result: Result<Returned, Outcome>,
    state: StoreState,
    stdout: CappedPipe,
    stderr: CappedPipe,
    started: Instant,
}

enum Returned {
    Info(bindings::PluginInfo),
    Run(Result<String, bindings::TaskError>),
}

impl Sandbox {
    /// Builds the engine, starts the epoch clock and opens the cache.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| fs_quota::add_to_linker(&mut linker))
            .and_then(|()| TaskPlugin::add_to_linker::<_, HasSelf<StoreState>>(&mut linker, |s| s))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(Arc::new(ArtifactCache::new(dir, &engine).map_err(
                |source| SandboxError::CacheDir {
                    path: dir.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let in_flight = Arc::new(AtomicUsize::new(0));
        let clock = EpochClock::start(&engine, config.epoch_tick, in_flight.clone())
            .map_err(SandboxError::Clock)?;
        let halt = Arc::new(Halt::new(engine.weak()));
        Ok(Self {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.max_concurrent_attempts as usize),
                in_flight,
                loads: AtomicUsize::new(0),
                engine,
                linker,
                halt,
                cache,
                config,
                clock,
            }),
        })
    }

    /// The configuration this sandbox was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Reads and loads a plugin file (see [`load_plugin`](Self::load_plugin)).
    pub async fn load_plugin_file(&self, path: impl Into<PathBuf>) -> Result<Plugin, PluginError> {
        let path = path.into();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| PluginError::Read { path, source })?;
        self.load_plugin(bytes).await
    }

    /// Validates and prepares a plugin: checks that `bytes` are a component,
    /// compiles it (or loads it from the artifact cache), links it against
    /// the host, and calls `describe` in a sandbox without grants.
    pub async fn load_plugin(&self, bytes: Vec<u8>) -> Result<Plugin, PluginError> {
        self.inner.loads.fetch_add(1, Ordering::Relaxed);
        plugin::check_header(&bytes)?;
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len();
        let engine = self.inner.engine.clone();
        let cache = self.inner.cache.clone();
        let hash = sha256.clone();
        // Compiling is CPU-bound (~0.4 s/MB): keep it off the async workers.
        let (component, source) = tokio::task::spawn_blocking(move || match cache {
            Some(cache) => cache.load_or_compile(&engine, &hash, &bytes),
            None => wasmtime::component::Component::new(&engine, &bytes)
                .map(|c| (c, CompileSource::Compiled)),
        })
        .await
        .map_err(|e| PluginError::Compile(e.to_string()))?
        .map_err(|e| PluginError::Compile(text::cap(format!("{e:#}"), MAX_ERROR_BYTES)))?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .and_then(TaskPluginPre::new)
            // The component's import names are the guest's: capped.
            .map_err(|e| {
                PluginError::WorldMismatch(text::cap(format!("{e:#}"), MAX_ERROR_BYTES))
            })?;
        let limits = Limits {
            timeout: self.inner.config.describe_timeout,
            ..Limits::default()
        };
        let control = self.control();
        let called = self
            .call(&pre, Call::Describe, &Grants::default(), &limits, &control)
            .await
            .map_err(|e| PluginError::Describe(e.to_string()))?;
        let info = match called.result {
            Ok(Returned::Info(info)) => plugin::validated(info)?,
            Ok(Returned::Run(_)) => unreachable!("describe returns plugin info"),
            // Imports were checked when linking; an instantiation that still
            // fails without a trap is an export with the contract's name and
            // another type: the component targets another world.
            Err(Outcome::PluginError { message }) => {
                return Err(PluginError::WorldMismatch(message));
            }
            Err(outcome) => return Err(PluginError::Describe(outcome.to_string())),
        };
        Ok(Plugin {
            info,
            sha256,
            size,
            source,
            pre,
        })
    }

    /// A fresh control for one attempt (or a group of attempts to be
    /// cancelled together).
    pub fn control(&self) -> AttemptControl {
        AttemptControl::new(self.inner.halt.clone())
    }

    /// Runs one attempt of `request.task` in a fresh store. Errors only for
    /// requests that cannot start (unknown task, bad grants); everything the
    /// guest does ends up in [`AttemptReport::outcome`].
    pub async fn run(
        &self,
        plugin: &Plugin,
        request: &AttemptRequest,
        control: &AttemptControl,
    ) -> Result<AttemptReport, RunError> {
        if plugin.info.task(&request.task).is_none() {
            return Err(RunError::UnknownTask {
                plugin: plugin.info.id(),
                task: request.task.clone(),
                available: plugin.info.task_names(),
            });
        }
        if request.limits.memory_bytes > self.inner.config.max_memory_bytes {
            return Err(RunError::MemoryAboveMax {
                requested: request.limits.memory_bytes,
                max: self.inner.config.max_memory_bytes,
            });
        }
        if request.limits.fuel.is_some() && !self.inner.config.fuel {
            return Err(GrantError::FuelDisabled.into());
        }
        request.grants.validate()?;
        let input = serde_json::Value::Object(request.input.clone()).to_string();
        let call = Call::Run {
            task: &request.task,
            input: &input,
        };
        let span = tracing::info_span!("attempt", plugin = %plugin.info.id(), task = %request.task);
        let called = self
            .call(&plugin.pre, call, &request.grants, &request.limits, control)
            .instrument(span.clone())
            .await?;
        let outcome = match called.result {
            Ok(Returned::Run(result)) => output_outcome(result, &request.limits),
            Ok(Returned::Info(_)) => unreachable!("run returns the task's result"),
            Err(outcome) => outcome,
        };
        span.in_scope(|| tracing::info!(outcome = outcome.kind(), "attempt ended"));
        Ok(report(
            outcome,
            called.state,
            &called.stdout,
            &called.stderr,
            called.started,
        ))
    }

    /// Instantiates `pre` in a fresh store and makes one call, raced against
    /// the control and the deadline.
    async fn call(
        &self,
        pre: &TaskPluginPre<StoreState>,
        call: Call<'_>,
        grants: &Grants,
        limits: &Limits,
        control: &AttemptControl,
    ) -> Result<Called, GrantError> {
        let _in_flight = InFlight::enter(&self.inner.in_flight);
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let stdout = CappedPipe::new(limits.max_stdio_bytes);
        let stderr = CappedPipe::new(limits.max_stdio_bytes);
        let wasi = wasi_from_grants(grants, &stdout, &stderr)?;
        let state = StoreState::new(
            wasi,
            FsQuota::new(grants),
            limits,
            control.clone(),
            deadline,
        );
        // Declared before the store so it is dropped after it: the pool
        // slot is only freed when the store goes.
        let acquire = async {
            self.inner
                .permits
                .acquire()
                .await
                .map_err(wasmtime::Error::new)
        };
        let _permit = match race(control, deadline, acquire).await {
            Ok(permit) => permit,
            Err(error) => {
                let result = Err(classify(error, &state, limits));
                return Ok(Called {
                    result,
                    state,
                    stdout,
                    stderr,
                    started,
                });
            }
        };
        let mut store = new_store(&self.inner.engine, state, limits, control, deadline)?;
        let result = invoke(&mut store, pre, call, control, deadline)
            .await
            .map_err(|error| classify(error, store.data(), limits));
        Ok(Called {
            result,
            state: store.into_data(),
            stdout,
            stderr,
            started,
        })
    }

    /// Stops every in-flight attempt at once and makes every later attempt
    /// end as [`Outcome::Halted`] without running: sets the halt flag, bumps
    /// the epoch (guests running wasm stop at their next instruction check)
    /// and cancels the token (guests parked in host calls stop at once).
    /// Irreversible; calling it again is harmless.
    pub fn halt_all(&self) {
        self.inner.halt.halt();
    }

    /// Halts every attempt (see [`halt_all`](Self::halt_all)) and stops the
    /// epoch clock thread once no attempt is in flight any more (a halted
    /// guest may need one more tick to see the halt): for a sandbox that
    /// will run nothing again (its runner shut down). Idempotent.
    pub fn stop(&self) {
        self.halt_all();
        self.inner.clock.stop();
    }

    /// Whether the epoch clock thread still ticks (until [`stop`](Self::stop)
    /// or the last clone of the sandbox is dropped).
    pub fn clock_running(&self) -> bool {
        self.inner.clock.is_running()
    }

    /// Whether [`halt_all`](Self::halt_all) was called.
    pub fn is_halted(&self) -> bool {
        self.inner.halt.is_halted()
    }

    /// How many plugin loads ([`load_plugin`](Self::load_plugin)) this
    /// sandbox has started: each compiles (or reads the cache) and runs
    /// `describe`.
    pub fn loads_started(&self) -> usize {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// How many attempts (and `describe` calls) are running right now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }
}

async fn invoke(
    store: &mut wasmtime::Store<StoreState>,
    pre: &TaskPluginPre<StoreState>,
    call: Call<'_>,
    control: &AttemptControl,
    deadline: Instant,
) -> Result<Returned, CallError> {
    // A failure to instantiate that is not a trap or a limit means the
    // component cannot run here at all: a plugin error, not a task error.
    let instance = race(control, deadline, pre.instantiate_async(&mut *store))
        .await
        .map_err(CallError::into_instantiation)?;
    let exports = instance.corral_task_plugin();
    match call {
        Call::Describe => race(control, deadline, exports.call_describe(&mut *store))
            .await
            .map(Returned::Info),
        Call::Run { task, input } => race(
            control,
            deadline,
            exports.call_run(&mut *store, task, input),
        )
        .await
        .map(Returned::Run),
    }
}

/// Counts an attempt as in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn engine_config(config: &SandboxConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        // Plain WASIp2 host: the component-model-async machinery only adds
        // cost to every call (measured 885 ns -> 198 ns per empty call).
        .concurrency_support(false)
        .consume_fuel(config.fuel)
        .max_wasm_stack(config.max_wasm_stack);
    if config.pooling {
        let n = config.max_concurrent_attempts;
        let mut pool = PoolingAllocationConfig::new();
        // A Rust wasip2 component is 3 core instances with 1 memory and 2
        // tables; leave headroom for bigger components.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(2 << 20)
            .pagemap_scan(Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}
