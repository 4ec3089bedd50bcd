//! When a failed attempt is tried again, and after how long.
//!
//! # Which failures are retried
//!
//! | [`FailureKind`] | sandbox `Outcome` | retried? | counts as an attempt? |
//! |---|---|---|---|
//! | `Error { retryable: true }` | `Failed { retryable: true }` | yes | yes |
//! | `Error { retryable: false }` | `Failed { retryable: false }` (incl. panics) | no | yes |
//! | `Timeout` | `TimedOut` | yes | yes |
//! | `MemoryLimit` | `MemoryLimitExceeded` | no | yes |
//! | `OutOfFuel` | `OutOfFuel` | no | yes |
//! | `Trap` | `Trapped` | no | yes |
//! | `InvalidOutput` | `InvalidOutput` | no | yes |
//! | `PluginError` | `PluginError` | no | yes |
//! | `Cancelled` | `Cancelled` | no | yes |
//! | `Interrupted` | `Halted` (shutdown, drop) | resumed | **no** |
//!
//! Why: a timeout is often a slow dependency, so it is worth another go. The
//! guest's own `retryable` flag is authoritative for its errors. Memory,
//! fuel, traps, bad output and plugin errors follow from the same code and
//! input, so running them again would fail the same way and only burn
//! capacity. An interrupted attempt was stopped by the host, not by the task:
//! it is resumed without using up an attempt and without backoff.

use std::time::Duration;

/// How an attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The task returned an error; the guest says whether a retry may help.
    Error {
        /// The guest's `retryable` flag.
        retryable: bool,
    },
    /// The attempt ran past its timeout.
    Timeout,
    /// The guest tried to grow its memory past the limit.
    MemoryLimit,
    /// The guest ran out of fuel.
    OutOfFuel,
    /// The guest trapped.
    Trap,
    /// The guest returned something that is not a JSON object (or too big).
    InvalidOutput,
    /// The plugin could not run the task at all.
    PluginError,
    /// The attempt's owner cancelled it.
    Cancelled,
    /// The host halted the attempt (shutdown or drop): not the task's fault.
    Interrupted,
}

impl FailureKind {
    /// Whether another attempt may succeed (see the module table).
    pub fn is_retryable(self) -> bool {
        match self {
            FailureKind::Error { retryable } => retryable,
            FailureKind::Timeout | FailureKind::Interrupted => true,
            FailureKind::MemoryLimit
            | FailureKind::OutOfFuel
            | FailureKind::Trap
            | FailureKind::InvalidOutput
            | FailureKind::PluginError
            | FailureKind::Cancelled => false,
        }
    }

    /// Whether the attempt uses up one of the policy's `max_attempts`. Only
    /// an interrupted attempt does not.
    pub fn counts_as_attempt(self) -> bool {
        self != FailureKind::Interrupted
    }
}

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed(Duration),
    /// `initial`, then multiplied by `factor` for each further retry, never
    /// more than `max`.
    Exponential {
        /// Delay before the first retry (the second attempt).
        initial: Duration,
        /// Cap on the delay.
        max: Duration,
        /// Growth per retry, at least 1 (usually 2).
        factor: f64,
    },
}

/// How often a step is attempted and how long to wait in between.
///
/// `Default` is a single attempt: retrying is opt-in because a task may not
/// be idempotent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included: 1 means no retry. At
    /// least 1.
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Fraction in `0.0..=1.0` by which each delay is randomly shortened, so
    /// that steps failing together do not retry together. The delay before a
    /// retry lies in `(base × (1 − jitter), base]`: never above the cap.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

impl RetryPolicy {
    /// The backoff used when only a number of attempts is given (the TOML
    /// `retry = { max_attempts = 3 }`, a task's suggestion): 1 s doubling up
    /// to 1 min.
    pub const DEFAULT_BACKOFF: Backoff = Backoff::Exponential {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
        factor: 2.0,
    };

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::attempts(1)
    }

    /// `max_attempts` attempts with [`RetryPolicy::DEFAULT_BACKOFF`] and no
    /// jitter.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            backoff: Self::DEFAULT_BACKOFF,
            jitter: 0.0,
        }
    }

    /// `max_attempts` attempts, `delay` apart.
    pub fn fixed(max_attempts: u32, delay: Duration) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::Fixed(delay),
            jitter: 0.0,
        }
    }

    /// `max_attempts` attempts, waiting `initial`, doubling each time up to
    /// `max`.
    pub fn exponential(max_attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::Exponential {
                initial,
                max,
                factor: 2.0,
            },
            jitter: 0.0,
        }
    }

    /// The same policy with `jitter` (a fraction in `0.0..=1.0`).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Why this policy cannot be honoured, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        if self.max_attempts == 0 {
            return Some("max_attempts must be at least 1 (1 means no retry)".to_owned());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Some(format!(
                "jitter {} must be a fraction between 0 and 1",
                self.jitter
            ));
        }
        if let Backoff::Exponential {
            initial,
            max,
            factor,
        } = self.backoff
        {
            if initial.is_zero() {
                return Some("initial must be greater than zero".to_owned());
            }
            if max < initial {
                return Some(format!(
                    "max ({}) must not be less than initial ({})",
                    humantime::format_duration(max),
                    humantime::format_duration(initial)
                ));
            }
            if !(factor.is_finite() && factor >= 1.0) {
                return Some(format!("factor {factor} must be a number of at least 1"));
            }
        }
        None
    }

    /// The delay before attempt `next_attempt` (1-based; the first attempt
    /// has none). `sample` is a uniform random number in `[0, 1)` that
    /// drives the jitter; pass `0.0` for no jitter. Values outside the range
    /// are clamped, so any random source is safe.
    pub fn delay_before(&self, next_attempt: u32, sample: f64) -> Duration {
        if next_attempt <= 1 {
            return Duration::ZERO;
        }
        let base = match self.backoff {
            Backoff::Fixed(delay) => delay,
            Backoff::Exponential {
                initial,
                max,
                factor,
            } => {
                let retries = i32::try_from(next_attempt - 2).unwrap_or(i32::MAX);
                let secs = initial.as_secs_f64() * factor.powi(retries);
                // Huge exponents overflow to infinity: that is the cap.
                Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
            }
        };
        let sample = if sample.is_nan() {
            0.0
        } else {
            sample.clamp(0.0, 1.0)
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter * sample)
    }

    /// Whether attempt number `attempt` (1-based, interrupted attempts not
    /// counted), which failed with `failure`, should be followed by another.
    /// An interrupted attempt is always resumed.
    pub fn should_retry(&self, attempt: u32, failure: FailureKind) -> bool {
        if !failure.counts_as_attempt() {
            return true;
        }
        failure.is_retryable() && attempt < self.max_attempts
    }

    /// What to do after attempt `attempt` failed with `failure`: the
    /// executor's single entry point, combining [`RetryPolicy::should_retry`]
    /// and [`RetryPolicy::delay_before`].
    pub fn after_failure(&self, attempt: u32, failure: FailureKind, sample: f64) -> NextAttempt {
        if !failure.counts_as_attempt() {
            NextAttempt::Resume { attempt }
        } else if self.should_retry(attempt, failure) {
            let next = attempt.saturating_add(1);
            NextAttempt::Retry {
                attempt: next,
                after: self.delay_before(next, sample),
            }
        } else {
            NextAttempt::GiveUp
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Run the same attempt number again, right away (it was interrupted).
    Resume {
        /// The attempt number to reuse.
        attempt: u32,
    },
    /// Run attempt `attempt` once `after` has passed.
    Retry {
        /// The next attempt's number.
        attempt: u32,
        /// The backoff delay.
        after: Duration,
    },
    /// The step has failed for good.
    GiveUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let p = RetryPolicy::exponential(10, MS(100), Duration::from_secs(1));
        let delays: Vec<_> = (1..=7).map(|n| p.delay_before(n, 0.0)).collect();
        assert_eq!(
            delays,
            [
                MS(0),
                MS(100),
                MS(200),
                MS(400),
                MS(800),
                MS(1000),
                MS(1000)
            ]
        );
        // Absurd attempt numbers overflow the float and land on the cap.
        assert_eq!(p.delay_before(u32::MAX, 0.0), MS(1000));
    }

    #[test]
    fn fixed_is_constant() {
        let p = RetryPolicy::fixed(3, MS(250));
        assert_eq!(p.delay_before(2, 0.0), MS(250));
        assert_eq!(p.delay_before(3, 0.0), MS(250));
        assert_eq!(p.delay_before(1, 0.5), MS(0));
    }

    #[test]
    fn jitter_shortens_within_bounds_and_never_exceeds_the_cap() {
        let p = RetryPolicy::exponential(10, MS(100), MS(1000)).with_jitter(0.2);
        for i in 0..100 {
            let sample = f64::from(i) / 100.0;
            for n in 2..8 {
                let base = p.with_jitter(0.0).delay_before(n, 0.0);
                let d = p.delay_before(n, sample);
                assert!(d <= base && d >= base.mul_f64(0.8), "{d:?} vs {base:?}");
                assert!(d <= MS(1000));
            }
        }
        assert_eq!(p.delay_before(2, 0.5), MS(90));
        // Out-of-range samples are clamped rather than trusted.
        assert_eq!(p.delay_before(2, 7.0), MS(80));
        assert_eq!(p.delay_before(2, -1.0), MS(100));
        assert_eq!(p.delay_before(2, f64::NAN), MS(100));
    }

    #[test]
    fn retries_until_attempts_run_out() {
        let p = RetryPolicy::attempts(3);
        let err = FailureKind::Error { retryable: true };
        assert!(p.should_retry(1, err));
        assert!(p.should_retry(2, err));
        assert!(!p.should_retry(3, err));
        assert!(!RetryPolicy::none().should_retry(1, err));
    }

    #[test]
    fn retryability_by_kind() {
        let p = RetryPolicy::attempts(5);
        assert!(p.should_retry(1, FailureKind::Timeout));
        assert!(!p.should_retry(1, FailureKind::Error { retryable: false }));
        for kind in [
            FailureKind::MemoryLimit,
            FailureKind::OutOfFuel,
            FailureKind::Trap,
            FailureKind::InvalidOutput,
            FailureKind::PluginError,
            FailureKind::Cancelled,
        ] {
            assert!(!p.should_retry(1, kind), "{kind:?}");
        }
    }

    #[test]
    fn interrupted_attempts_are_resumed_without_counting() {
        let p = RetryPolicy::none();
        assert!(p.should_retry(1, FailureKind::Interrupted));
        assert!(!FailureKind::Interrupted.counts_as_attempt());
        assert_eq!(
            p.after_failure(1, FailureKind::Interrupted, 0.0),
            NextAttempt::Resume { attempt: 1 }
        );
    }

    #[test]
    fn after_failure_combines_decision_and_delay() {
        let p = RetryPolicy::fixed(2, MS(10));
        let err = FailureKind::Error { retryable: true };
        assert_eq!(
            p.after_failure(1, err, 0.0),
            NextAttempt::Retry {
                attempt: 2,
                after: MS(10)
            }
        );
        assert_eq!(p.after_failure(2, err, 0.0), NextAttempt::GiveUp);
        assert_eq!(
            p.after_failure(1, FailureKind::Trap, 0.0),
            NextAttempt::GiveUp
        );
    }

    #[test]
    fn problems() {
        assert!(
            RetryPolicy::attempts(0)
                .problem()
                .unwrap()
                .contains("max_attempts")
        );
        assert!(
            RetryPolicy::attempts(2)
                .with_jitter(1.5)
                .problem()
                .unwrap()
                .contains("jitter")
        );
        assert!(
            RetryPolicy::attempts(2)
                .with_jitter(f64::NAN)
                .problem()
                .is_some()
        );
        assert!(
            RetryPolicy::exponential(2, MS(0), MS(5))
                .problem()
                .is_some()
        );
        assert!(
            RetryPolicy::exponential(2, MS(10), MS(5))
                .problem()
                .unwrap()
                .contains("max")
        );
        let mut p = RetryPolicy::attempts(2);
        p.backoff = Backoff::Exponential {
            initial: MS(1),
            max: MS(2),
            factor: 0.5,
        };
        assert!(p.problem().unwrap().contains("factor"));
        assert!(
            RetryPolicy::fixed(2, MS(0))
                .with_jitter(1.0)
                .problem()
                .is_none()
        );
    }
}
