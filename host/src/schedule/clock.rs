//! Where "now" comes from: the system clock in production, a hand-moved one
//! in tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current instant. The scheduler takes one as a dependency
/// so that tests can move time instead of waiting for it.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's wall clock ([`Utc::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to ([`set`](ManualClock::set),
/// [`advance`](ManualClock::advance)). Shareable between threads; share it
/// with an [`Arc`] to move the time a scheduler under test sees.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `now` (backwards too, to simulate a clock step).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Moves the clock forward by `by` and returns the new instant.
    ///
    /// # Panics
    ///
    /// If the result is beyond chrono's range (about 262,000 years).
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.lock();
        *now = TimeDelta::from_std(by)
            .ok()
            .and_then(|by| now.checked_add_signed(by))
            .expect("ManualClock advanced beyond chrono's range");
        *now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // The value is a plain instant: a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is still good.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(t0());
        assert_eq!(clock.now(), t0());
        assert_eq!(clock.now(), t0());
        let later = clock.advance(Duration::from_millis(1500));
        assert_eq!(later, t0() + TimeDelta::milliseconds(1500));
        assert_eq!(clock.now(), later);
        clock.set(t0());
        assert_eq!(clock.now(), t0());
    }

    #[test]
    fn manual_clock_is_shared_through_arc_and_dyn() {
        let clock = Arc::new(ManualClock::new(t0()));
        let as_dyn: Arc<dyn Clock> = clock.clone();
        clock.advance(Duration::from_secs(60));
        assert_eq!(as_dyn.now(), t0() + TimeDelta::minutes(1));
        let by_ref: &dyn Clock = &*clock;
        assert_eq!(by_ref.now(), t0() + TimeDelta::minutes(1));
    }

    #[test]
    fn system_clock_is_close_to_utc_now() {
        let before = Utc::now();
        let now = SystemClock.now();
        assert!(now >= before && now <= Utc::now());
    }
}
