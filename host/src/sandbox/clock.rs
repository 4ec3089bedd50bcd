//! The epoch clock: an OS thread that ticks the engine's epoch.
//!
//! An OS thread rather than a tokio task, because a runtime whose workers are
//! all busy running guests could starve a task, and then no guest would ever
//! reach its next epoch check.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::Engine;

/// Ticks an engine's epoch every `period` until stopped (and no store is
/// in flight any more) or dropped.
pub(crate) struct EpochClock {
    stop: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl EpochClock {
    /// Starts the thread. It holds only a weak reference to the engine, so
    /// it also ends by itself once the engine is gone.
    ///
    /// `in_flight` counts the stores that may be running guest code: a
    /// stop waits for it to reach zero, because a guest that was yielding
    /// in its epoch callback when it was halted only sees the halt at the
    /// next tick (its new deadline is one tick past the halt's increment).
    pub(crate) fn start(
        engine: &Engine,
        period: Duration,
        in_flight: Arc<AtomicUsize>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let thread = thread::Builder::new()
            .name("corral-epoch-clock".into())
            .spawn({
                let (stop, in_flight) = (stop.clone(), in_flight.clone());
                move || {
                    while !(stop.load(Ordering::Acquire) && in_flight.load(Ordering::Acquire) == 0)
                    {
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
            in_flight,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Asks the thread to stop once no store is in flight, and waits for it
    /// when none is now; otherwise it ends by itself after the last one.
    /// Idempotent.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let mut guard = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = guard.as_ref() {
            thread.thread().unpark();
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && let Some(thread) = guard.take()
        {
            // The loop body is a park and an atomic add: joining waits a
            // tick at most, never on a guest.
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
        // The sandbox is gone, so no store is in flight: the thread ends.
        self.stop.store(true, Ordering::Release);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
