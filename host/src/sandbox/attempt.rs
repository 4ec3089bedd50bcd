//! One attempt: a fresh `Store`, instantiation from the plugin's
//! `InstancePre`, one call of `run`, and the classification of whatever
//! happened into an [`Outcome`].

use std::future::Future;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::time::sleep_until;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::Level;
use super::capture::CappedPipe;
use super::control::{AttemptControl, Stop};
use super::error::GrantError;
use super::grants::{Grants, Limits};
use super::outcome::{AttemptReport, Outcome, check_output};
use super::state::{MemoryLimitHit, StoreState};
use super::text::{MAX_ERROR_BYTES, cap};

/// What to run: a task of a plugin, its input, and the sandbox it gets.
#[derive(Debug, Clone, Default)]
pub struct AttemptRequest {
    /// The task's name within the plugin.
    pub task: String,
    /// The task's input object.
    pub input: Map<String, Value>,
    /// Directories and environment the guest may see.
    pub grants: Grants,
    /// Memory, time and output limits.
    pub limits: Limits,
}

/// Why a call into the guest did not return normally.
pub(crate) enum CallError {
    /// The host stopped it.
    Stopped(Stop),
    /// wasmtime reported an error (trap, limit, link failure).
    Wasm(wasmtime::Error),
    /// Instantiation failed for a reason other than a trap or a stop.
    Instantiation(wasmtime::Error),
}

impl CallError {
    pub(crate) fn into_instantiation(self) -> Self {
        match self {
            CallError::Wasm(e)
                if e.downcast_ref::<Trap>().is_none()
                    && e.downcast_ref::<Stop>().is_none()
                    && e.downcast_ref::<MemoryLimitHit>().is_none() =>
            {
                CallError::Instantiation(e)
            }
            other => other,
        }
    }
}

/// Runs `call` until it finishes, the attempt is stopped, or the deadline
/// passes, whichever comes first. Guests running wasm are stopped by the
/// epoch callback; this race ends guests parked in host calls, which epochs
/// never reach. The stop branch comes first so a halt wins every tie.
pub(crate) async fn race<T>(
    control: &AttemptControl,
    deadline: Instant,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, CallError> {
    tokio::select! {
        biased;
        stop = control.stopped() => Err(CallError::Stopped(stop)),
        result = call => result.map_err(CallError::Wasm),
        () = sleep_until(deadline.into()) => Err(CallError::Stopped(Stop::TimedOut)),
    }
}

/// Builds the WASI context from grants only: nothing is inherited from the
/// host process, and sockets and name lookup are off.
pub(crate) fn wasi_from_grants(
    grants: &Grants,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
) -> Result<wasmtime_wasi::WasiCtx, GrantError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (key, value) in &grants.env {
        builder.env(key, value);
    }
    for dir in &grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| GrantError::Open {
                path: dir.host.clone(),
                reason: e.to_string(),
            })?;
    }
    Ok(builder.build())
}

/// A fresh store for one attempt, with its limits and epoch callback.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    state: StoreState,
    limits: &Limits,
    control: &AttemptControl,
    deadline: Instant,
) -> Result<Store<StoreState>, GrantError> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(|_| GrantError::FuelDisabled)?;
    }
    store.set_epoch_deadline(1);
    let control = control.clone();
    store.epoch_deadline_callback(move |_| match control.check(deadline) {
        Some(stop) => Err(wasmtime::Error::new(stop)),
        // A custom yield: plain `Yield` starves tokio's timers under
        // busy guests (wasmtime#10667).
        None => Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        )),
    });
    Ok(store)
}

/// Turns a failed call into an outcome, using what the guest reported.
pub(crate) fn classify(error: CallError, state: &StoreState, limits: &Limits) -> Outcome {
    let error = match error {
        CallError::Stopped(stop) => return stop_outcome(stop, limits),
        CallError::Wasm(error) => error,
        CallError::Instantiation(error) => {
            return Outcome::PluginError {
                message: cap(format!("cannot instantiate: {error:#}"), MAX_ERROR_BYTES),
            };
        }
    };
    if let Some(stop) = error.downcast_ref::<Stop>() {
        return stop_outcome(*stop, limits);
    }
    if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
        return Outcome::MemoryLimitExceeded {
            limit: hit.limit,
            requested: hit.requested,
        };
    }
    if let Some(message) = &state.panic {
        return Outcome::Failed {
            message: message.clone(),
            retryable: false,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(trap) => Outcome::Trapped {
            message: trap.to_string(),
        },
        // wasmtime's text may quote the guest (names from its name
        // section in a backtrace): capped like the guest's own messages.
        None => Outcome::Trapped {
            message: cap(format!("{error:#}"), MAX_ERROR_BYTES),
        },
    }
}

fn stop_outcome(stop: Stop, limits: &Limits) -> Outcome {
    match stop {
        Stop::Halted => Outcome::Halted,
        Stop::Cancelled => Outcome::Cancelled,
        Stop::TimedOut => Outcome::TimedOut {
            timeout: limits.timeout,
        },
    }
}

/// Checks what `run` returned.
pub(crate) fn output_outcome(
    result: Result<String, super::bindings::TaskError>,
    limits: &Limits,
) -> Outcome {
    match result {
        Err(error) => Outcome::Failed {
            message: cap(error.message, MAX_ERROR_BYTES),
            retryable: error.retryable,
        },
        Ok(text) => check_output(&text, limits.max_output_bytes),
    }
}

/// Assembles the report from the store's state once the call is over.
pub(crate) fn report(
    outcome: Outcome,
    state: StoreState,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
    started: Instant,
) -> AttemptReport {
    let mut state = state;
    let fs_usage = state.quota.usage();
    for message in fs_usage.iter().filter_map(|usage| usage.limit_message()) {
        state.logs.push_host(Level::Warn, message);
    }
    AttemptReport {
        outcome,
        fs_usage,
        logs: state.logs.lines,
        logs_dropped: state.logs.dropped,
        stdout: stdout.captured(),
        stderr: stderr.captured(),
        progress: state.progress,
        duration: started.elapsed(),
    }
}
