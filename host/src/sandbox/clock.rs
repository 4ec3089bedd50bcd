//! The epoch clock: an OS thread that ticks the engine's epoch.
//!
//! An OS thread rather than a tokio task, because a runtime whose workers are
//! all busy running guests could starve a task, and then no guest would ever
//! reach its next epoch check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::Engine;

/// Ticks an engine's epoch every `period` until stopped or dropped.
pub(crate) struct EpochClock {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl EpochClock {
    /// Starts the thread. It holds only a weak reference to the engine, so
    /// it also ends by itself once the engine is gone.
    pub(crate) fn start(engine: &Engine, period: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let thread = thread::Builder::new()
            .name("corral-epoch-clock".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Acquire) {
                        thread::park_timeout(period);
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread and waits for it to end. Idempotent.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            // The loop body is a park and an atomic add: joining waits
            // microseconds, never on a guest.
            let _ = thread.join();
        }
    }

    /// Whether the thread still ticks.
    pub(crate) fn is_running(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }
}

impl Drop for EpochClock {
    fn drop(&mut self) {
        self.stop();
    }
}
