//! Stopping guests that do not cooperate: the halt switch of the whole
//! sandbox and the cancel switch of one attempt.
//!
//! Both work the same way: a flag that the epoch callback of every store
//! checks at its next tick (guests running wasm), an engine epoch increment
//! so that check happens at once, and a cancellation token that ends host
//! calls a guest is parked in (sleep, poll, I/O).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use wasmtime::EngineWeak;

/// Why the host stopped an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Stop {
    /// The whole sandbox was halted.
    #[error("the sandbox was halted")]
    Halted,
    /// This attempt was cancelled.
    #[error("the attempt was cancelled")]
    Cancelled,
    /// The attempt's deadline passed.
    #[error("the attempt timed out")]
    TimedOut,
}

/// The sandbox-wide halt switch.
pub(crate) struct Halt {
    halted: AtomicBool,
    token: CancellationToken,
    engine: EngineWeak,
}

impl Halt {
    pub(crate) fn new(engine: EngineWeak) -> Self {
        Self {
            halted: AtomicBool::new(false),
            token: CancellationToken::new(),
            engine,
        }
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Flag, epoch bump, token: in this order, so that a guest woken by the
    /// epoch or the token already sees the flag.
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        if let Some(engine) = self.engine.upgrade() {
            engine.increment_epoch();
        }
        self.token.cancel();
    }
}

/// A handle that stops one attempt (or several: clones share the switch).
///
/// Get one from [`Sandbox::control`](super::Sandbox::control), pass it to
/// [`Sandbox::run`](super::Sandbox::run), and call
/// [`cancel`](Self::cancel) from anywhere to end the attempt with
/// [`Outcome::Cancelled`](super::Outcome::Cancelled).
#[derive(Clone)]
pub struct AttemptControl {
    inner: Arc<ControlInner>,
}

struct ControlInner {
    cancelled: AtomicBool,
    token: CancellationToken,
    halt: Arc<Halt>,
}

impl AttemptControl {
    pub(crate) fn new(halt: Arc<Halt>) -> Self {
        let token = halt.token.child_token();
        Self {
            inner: Arc::new(ControlInner {
                cancelled: AtomicBool::new(false),
                token,
                halt,
            }),
        }
    }

    /// Cancels the attempt(s) run with this control. Takes effect within one
    /// epoch tick for guests running wasm and at once for guests parked in a
    /// host call. Cancelling twice is harmless.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        if let Some(engine) = self.inner.halt.engine.upgrade() {
            engine.increment_epoch();
        }
        self.inner.token.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called or the sandbox was halted.
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Resolves once the attempt must stop.
    pub(crate) async fn stopped(&self) -> Stop {
        self.inner.token.cancelled().await;
        self.reason().unwrap_or(Stop::Cancelled)
    }

    /// Halt beats cancel beats timeout.
    pub(crate) fn reason(&self) -> Option<Stop> {
        if self.inner.halt.is_halted() {
            Some(Stop::Halted)
        } else if self.inner.cancelled.load(Ordering::Acquire) {
            Some(Stop::Cancelled)
        } else {
            None
        }
    }

    /// The reason to stop now, given the attempt's deadline.
    pub(crate) fn check(&self, deadline: Instant) -> Option<Stop> {
        self.reason()
            .or_else(|| (Instant::now() >= deadline).then_some(Stop::TimedOut))
    }
}

impl std::fmt::Debug for AttemptControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptControl")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
