//! The runtime as the runner sees it: [`Runtime`] starts the background
//! loops over a store and a sandbox, submits and cancels executions, and
//! stops everything — gracefully with [`Runtime::shutdown`], at once on
//! drop. Its shared state stays private to `runtime`.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::progress::ExecutionProgress;
use super::{
    Catalog, DrainReport, Progress, RuntimeConfig, RuntimeError, Shared, batch, commit, planner,
    run_executor, run_lease_keeper, run_scheduler,
};
use crate::sandbox::Sandbox;
use crate::schedule::Clock;
use crate::store::{ExecutionId, Object, Snapshot, Store, now_ms};
use crate::workflow::Workflow;

/// Which background loops a runtime runs.
pub(crate) struct Loops {
    /// Claim and execute work (with the lease keeper).
    pub(crate) execute: bool,
    /// Fire due schedules by this clock (only where work is executed).
    pub(crate) schedules: Option<Arc<dyn Clock>>,
}

/// The background work of one runner and the operations on it.
pub(crate) struct Runtime {
    shared: Arc<Shared>,
    background: Mutex<Option<Background>>,
    grace: watch::Sender<Option<Duration>>,
}

struct Background {
    executor: JoinHandle<DrainReport>,
    leases: JoinHandle<()>,
    scheduler: Option<JoinHandle<()>>,
}

/// A submitted execution, stored.
pub(crate) struct Submitted {
    /// Its id.
    pub(crate) id: ExecutionId,
    /// Its live progress, watched from before it was stored.
    pub(crate) progress: watch::Receiver<ExecutionProgress>,
}

impl Runtime {
    /// Starts the `loops` over `store` and `sandbox`, with `concurrency`
    /// attempt slots.
    pub(crate) fn start(
        runner_id: String,
        store: Arc<dyn Store>,
        sandbox: Sandbox,
        config: RuntimeConfig,
        concurrency: usize,
        loops: Loops,
    ) -> Self {
        let shared = Arc::new(Shared {
            catalog: Catalog::new(store.clone(), sandbox.clone()),
            runner_id,
            store,
            sandbox,
            config,
            running: Default::default(),
            left_running: Default::default(),
            claimed: Default::default(),
            others_alive: std::sync::atomic::AtomicU64::new(u64::MAX),
            stop_requested: Default::default(),
            slots: Arc::new(Semaphore::new(concurrency)),
            wake: Default::default(),
            progress: Progress::default(),
            writers: Default::default(),
            stop_claiming: CancellationToken::new(),
            stop_background: CancellationToken::new(),
        });
        let (grace, grace_rx) = watch::channel(None);
        let background = loops.execute.then(|| Background {
            executor: tokio::spawn(run_executor(shared.clone(), grace_rx)),
            leases: tokio::spawn(run_lease_keeper(shared.clone())),
            scheduler: loops
                .schedules
                .map(|clock| tokio::spawn(run_scheduler(shared.clone(), clock))),
        });
        Self {
            shared,
            background: Mutex::new(background),
            grace,
        }
    }

    /// The runner id recorded in claims and attempts.
    pub(crate) fn id(&self) -> &str {
        &self.shared.runner_id
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The sandbox attempts run in.
    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.shared.sandbox
    }

    /// A link that does not keep the runtime alive: for execution handles.
    pub(crate) fn link(&self) -> RuntimeLink {
        RuntimeLink {
            shared: Arc::downgrade(&self.shared),
            store: self.shared.store.clone(),
            poll: self.shared.config.poll_interval,
        }
    }

    /// Live progress of the execution `snapshot` shows.
    pub(crate) fn watch(&self, snapshot: &Snapshot) -> watch::Receiver<ExecutionProgress> {
        self.shared.progress.subscribe(snapshot)
    }

    /// Stores a new execution of the latest version of workflow `name`
    /// with its first plan, and wakes the claim loop if it has ready steps
    /// the commit did not claim.
    pub(crate) async fn submit(
        &self,
        name: &str,
        input: Object,
    ) -> Result<Submitted, RuntimeError> {
        let shared = &self.shared;
        let now = now_ms();
        let new = shared.new_execution(name, input, now).await?;
        let id = new.id.clone();
        // Watched from before it is stored (as it will be stored: no need to
        // read it back), so no progress published in between is missed.
        let progress = shared.progress.subscribe(&new.snapshot(now));
        let created = match shared.write(batch::Write::Create(new)).await {
            Some(batch::WriteResult::Created(result, ready)) => {
                result.map(|()| ready).map_err(RuntimeError::from)
            }
            // The batch's committer was dropped with its runner.
            _ => Err(RuntimeError::ShutDown),
        };
        let ready = match created {
            Ok(ready) => ready,
            Err(error) => {
                shared.progress.forget(&id);
                return Err(error);
            }
        };
        let span = tracing::info_span!("execution", execution = %id, workflow = %name);
        span.in_scope(|| tracing::info!("execution submitted"));
        if ready == batch::Ready::MaybeLeft {
            shared.wake.notify_one();
        }
        Ok(Submitted { id, progress })
    }

    /// Cancels execution `id` (see [`RuntimeLink::cancel`]).
    pub(crate) async fn cancel(&self, id: &str) -> Result<Snapshot, RuntimeError> {
        cancel(&self.shared, id).await
    }

    /// Fires the schedules due at `clock.now()`; how many executions started.
    pub(crate) async fn fire_due(&self, clock: &dyn Clock) -> Result<usize, RuntimeError> {
        super::fire_due(&self.shared, clock).await
    }

    /// Whether the runtime was stopped (its pool is closed).
    pub(crate) fn is_stopped(&self) -> bool {
        self.shared.store.is_closed()
    }

    /// Stops claiming, lets in-flight attempts finish within `grace`, halts
    /// the rest, joins the loops and closes the pool; `None` if it was
    /// stopped already.
    pub(crate) async fn shutdown(&self, grace: Duration) -> Option<DrainReport> {
        let background = self
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let shared = &self.shared;
        if shared.store.is_closed() {
            return None;
        }
        let mut report = DrainReport::default();
        if let Some(background) = background {
            let _ = shared.stop_requested.set(std::time::Instant::now());
            self.grace.send_replace(Some(grace));
            shared.stop_claiming.cancel();
            if grace.is_zero() {
                // Halt here rather than when the executor task next runs:
                // with busy guests queued on every worker thread, that can
                // be a whole round of their time slices away.
                shared.halt_all().await;
            }
            match background.executor.await {
                Ok(drained) => report = drained,
                Err(error) => tracing::error!(%error, "the executor task failed"),
            }
            shared.stop_background.cancel();
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
        // epoch clock thread now rather than when the runtime is dropped.
        shared.sandbox.stop();
        shared.store.close().await;
        Some(report)
    }
}

impl Drop for Runtime {
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
        let shared = &self.shared;
        if background.is_none() && shared.store.is_closed() {
            return;
        }
        shared.stop_claiming.cancel();
        shared.stop_background.cancel();
        shared.sandbox.halt_all();
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
        let closing = shared.store.close();
        shared.sandbox.stop();
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

/// What an execution handle keeps of the runtime: the store, and the
/// runtime itself only while it lives.
#[derive(Clone)]
pub(crate) struct RuntimeLink {
    shared: Weak<Shared>,
    store: Arc<dyn Store>,
    poll: Duration,
}

impl RuntimeLink {
    /// The store.
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// How often a waiter looks at the database when nothing here moved.
    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// The workflow version `snapshot` runs: from the runtime's catalog
    /// (parsed once) while it lives, else read from the store.
    pub(crate) async fn workflow_of(&self, snapshot: &Snapshot) -> Option<Arc<Workflow>> {
        let execution = &snapshot.execution;
        let (name, version) = (&execution.workflow, &execution.workflow_version);
        if let Some(shared) = self.shared.upgrade() {
            return shared.catalog.workflow(name, version).await.ok();
        }
        let record = self.store.workflow(name, Some(version)).await.ok()??;
        Workflow::from_stored(record.definition).ok().map(Arc::new)
    }

    /// Cancels execution `id`: steps not started are cancelled at once and
    /// running attempts halted (here at once, elsewhere at their next lease
    /// renewal). [`RuntimeError::ShutDown`] once the runtime is gone.
    pub(crate) async fn cancel(&self, id: &str) -> Result<Snapshot, RuntimeError> {
        let shared = self.shared.upgrade().ok_or(RuntimeError::ShutDown)?;
        cancel(&shared, id).await
    }
}

async fn cancel(shared: &Shared, id: &str) -> Result<Snapshot, RuntimeError> {
    let snapshot = commit::cancel(&*shared.store, id, now_ms(), &planner::cancel_only)
        .await?
        .ok_or_else(|| RuntimeError::UnknownExecution(id.to_owned()))?;
    shared.cancel_local(id);
    shared.progress.publish(&snapshot);
    Ok(snapshot)
}
