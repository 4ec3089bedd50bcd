//! Fire-time computation: which fire times are due, and when the next one
//! is. Pure functions of the schedule and the instants they are given.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike as _, Utc};

use super::model::{CatchUp, Schedule};

/// A reasonable on-time tolerance for a firing loop that ticks every
/// 500 ms–1 s: a fire noticed at most this late still counts as on time.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5);

/// At most this many on-time fires are returned by one
/// [`Schedule::due_fires`] call (the most recent ones). Only reachable with
/// a tolerance far larger than a tick, e.g. a per-second schedule and a
/// tolerance of over 16 minutes.
pub const MAX_ON_TIME_FIRES: usize = 1000;

const SECOND: TimeDelta = TimeDelta::seconds(1);

/// `t` rounded down to a whole second.
fn floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// `t` rounded up to a whole second.
fn ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.nanosecond() == 0 {
        t
    } else {
        floor(t) + SECOND
    }
}

impl Schedule {
    /// The fire times that should produce an execution now, oldest first.
    ///
    /// - `last_fired`: the latest fire time already handled (fired or
    ///   deliberately skipped by the overlap rule), if any;
    /// - `active_since`: when the schedule was created or, if it was paused
    ///   and resumed since, the resume instant: nothing at or before it is
    ///   due;
    /// - `now`: the clock's current instant;
    /// - `tolerance`: how late a fire may be noticed and still be on time,
    ///   normally a few ticks of the firing loop ([`DEFAULT_TOLERANCE`]).
    ///
    /// A fire time `t` is *due* if `anchor < t <= now` with `anchor =
    /// max(last_fired, active_since)`, and `start <= t <= end` when the
    /// window is bounded. A due fire is *on time* if `now - t <= tolerance`,
    /// *missed* otherwise. The result is every on-time fire plus, by the
    /// catch-up policy: `Skip` no missed fire; `Latest` the most recent
    /// missed fire, only when no fire is on time; `All { max }` the `max`
    /// most recent missed fires. The caller records the greatest returned
    /// time as the new `last_fired`.
    ///
    /// Cost: the fire times are walked backwards from `now`, so the work is
    /// bounded by the returned fires plus one, never by the length of an
    /// outage; at most [`MAX_ON_TIME_FIRES`] on-time fires are returned.
    pub fn due_fires(
        &self,
        last_fired: Option<DateTime<Utc>>,
        active_since: DateTime<Utc>,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Vec<DateTime<Utc>> {
        let anchor = last_fired.map_or(active_since, |l| l.max(active_since));
        // Fire times are whole seconds: `t > after` and `t <= until`.
        let mut after = floor(anchor);
        if let Some(start) = self.start {
            after = after.max(ceil(start) - SECOND);
        }
        let mut until = floor(now);
        if let Some(end) = self.end {
            until = until.min(floor(end));
        }
        if until <= after {
            return Vec::new();
        }
        // On time: `t >= now - tolerance`, i.e. `t > on_time_after`.
        let on_time_after = TimeDelta::from_std(tolerance)
            .ok()
            .and_then(|tol| now.checked_sub_signed(tol))
            .map_or(DateTime::<Utc>::MIN_UTC, |t| ceil(t) - SECOND);
        let max_missed = match self.catch_up {
            CatchUp::Skip => 0,
            CatchUp::Latest => 1,
            CatchUp::All { max } => max as usize,
        };

        let mut on_time = Vec::new();
        let mut missed = Vec::new();
        for t in self.fires_back_from(until) {
            if t <= after {
                break;
            }
            if t > on_time_after {
                on_time.push(t);
                if on_time.len() == MAX_ON_TIME_FIRES {
                    break;
                }
            } else {
                let superseded = self.catch_up == CatchUp::Latest && !on_time.is_empty();
                if superseded || missed.len() == max_missed {
                    break;
                }
                missed.push(t);
            }
        }
        missed.reverse();
        on_time.reverse();
        missed.extend(on_time);
        missed
    }

    /// The first fire time strictly after `after` within the window, if
    /// any (none once past `end`). For `schedule list`/`show`.
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = floor(after);
        if let Some(start) = self.start {
            from = from.max(ceil(start) - SECOND);
        }
        let next = self
            .parsed
            .find_next_occurrence(&from.with_timezone(&self.timezone), false)
            .ok()?
            .with_timezone(&Utc);
        match self.end {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The next `n` fire times strictly after `after`, in order (fewer if
    /// the window ends first).
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::with_capacity(n.min(64));
        let mut cursor = after;
        while fires.len() < n {
            match self.next_fire(cursor) {
                Some(t) => {
                    fires.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        fires
    }

    /// Fire times at or before `until` (a whole second), latest first,
    /// ignoring the window. Ends at the parser's search limit.
    fn fires_back_from(&self, until: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut cursor = Some((until.with_timezone(&self.timezone), true));
        std::iter::from_fn(move || {
            let (from, inclusive) = cursor.take()?;
            let found = self
                .parsed
                .find_previous_occurrence(&from, inclusive)
                .ok()?;
            cursor = Some((found, false));
            Some(found.with_timezone(&Utc))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone as _;
    use chrono_tz::{America, Europe, Tz};

    use super::*;
    use crate::schedule::{Clock, ManualClock};

    const TOL: Duration = DEFAULT_TOLERANCE;
    const NONE: Vec<DateTime<Utc>> = Vec::new();

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule(cron: &str, tz: &str, catch_up: CatchUp) -> Schedule {
        Schedule::new("s", "w", cron)
            .unwrap()
            .with_timezone(tz)
            .unwrap()
            .with_catch_up(catch_up)
            .unwrap()
    }

    /// Runs a firing loop: ticks `clock` by `tick` until `until`, calling
    /// `due_fires` each tick and recording the greatest fire as
    /// `last_fired`. Returns every fire in order.
    fn run_loop(
        s: &Schedule,
        clock: &ManualClock,
        active_since: DateTime<Utc>,
        last_fired: &mut Option<DateTime<Utc>>,
        tick: Duration,
        until: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut fired = Vec::new();
        while clock.now() < until {
            clock.advance(tick);
            let due = s.due_fires(*last_fired, active_since, clock.now(), TOL);
            if let Some(&latest) = due.last() {
                *last_fired = Some(latest);
            }
            fired.extend(due);
        }
        fired
    }

    #[test]
    fn three_day_outage_of_a_daily_job_by_policy() {
        let last = utc(2026, 3, 1, 2, 0, 0);
        let now = utc(2026, 3, 4, 12, 0, 0);
        let created = utc(2026, 2, 1, 0, 0, 0);
        let days = [
            utc(2026, 3, 2, 2, 0, 0),
            utc(2026, 3, 3, 2, 0, 0),
            utc(2026, 3, 4, 2, 0, 0),
        ];
        let due = |c| schedule("0 2 * * *", "UTC", c).due_fires(Some(last), created, now, TOL);
        assert_eq!(due(CatchUp::Skip), NONE);
        assert_eq!(due(CatchUp::Latest), vec![days[2]]);
        assert_eq!(due(CatchUp::all()), days.to_vec());
        assert_eq!(due(CatchUp::All { max: 3 }), days.to_vec());
        assert_eq!(due(CatchUp::All { max: 2 }), days[1..].to_vec());
        assert_eq!(due(CatchUp::All { max: 1 }), days[2..].to_vec());
    }

    #[test]
    fn outage_then_loop_resumes_each_policy_without_doubles() {
        // The host is down from 1 March 02:00:30 to 4 March 12:00, then
        // ticks every second until 6 March 03:00.
        for (policy, caught_up) in [
            (CatchUp::Skip, 0),
            (CatchUp::Latest, 1),
            (CatchUp::all(), 3),
        ] {
            let s = schedule("0 2 * * *", "UTC", policy);
            let clock = ManualClock::new(utc(2026, 3, 4, 12, 0, 0));
            let mut last = Some(utc(2026, 3, 1, 2, 0, 0));
            let created = utc(2026, 2, 1, 0, 0, 0);
            let fired = run_loop(
                &s,
                &clock,
                created,
                &mut last,
                Duration::from_secs(1),
                utc(2026, 3, 6, 3, 0, 0),
            );
            assert_eq!(fired.len(), caught_up + 2, "{policy}: {fired:?}");
            assert_eq!(
                &fired[caught_up..],
                &[utc(2026, 3, 5, 2, 0, 0), utc(2026, 3, 6, 2, 0, 0)]
            );
            assert!(fired.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn per_second_schedule_fires_each_second_once_with_half_second_ticks() {
        let t0 = utc(2026, 6, 1, 12, 0, 0);
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::all()] {
            let s = schedule("* * * * * *", "UTC", policy);
            let clock = Arc::new(ManualClock::new(t0 + TimeDelta::milliseconds(300)));
            let mut last = None;
            let fired = run_loop(
                &s,
                &clock,
                t0,
                &mut last,
                Duration::from_millis(500),
                t0 + TimeDelta::seconds(20),
            );
            let expected: Vec<_> = (1..=20).map(|i| t0 + TimeDelta::seconds(i)).collect();
            assert_eq!(fired, expected, "{policy}");
        }
    }

    #[test]
    fn a_late_tick_within_tolerance_loses_nothing() {
        let t0 = utc(2026, 6, 1, 12, 0, 0);
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::all()] {
            let s = schedule("* * * * * *", "UTC", policy);
            // Last fired t0, next tick 4.5 s later (a stall).
            let due = s.due_fires(Some(t0), t0, t0 + TimeDelta::milliseconds(4500), TOL);
            let expected: Vec<_> = (1..=4).map(|i| t0 + TimeDelta::seconds(i)).collect();
            assert_eq!(due, expected, "{policy}");
        }
    }

    #[test]
    fn tolerance_boundary_is_inclusive() {
        let s = schedule("0 * * * *", "UTC", CatchUp::Skip);
        let fire = utc(2026, 1, 1, 10, 0, 0);
        let before = fire - TimeDelta::minutes(5);
        assert_eq!(
            s.due_fires(Some(before), before, fire + TimeDelta::seconds(5), TOL),
            vec![fire]
        );
        assert_eq!(
            s.due_fires(
                Some(before),
                before,
                fire + TimeDelta::milliseconds(5001),
                TOL
            ),
            NONE
        );
        assert_eq!(s.due_fires(Some(before), before, fire, TOL), vec![fire]);
        assert_eq!(
            s.due_fires(Some(before), before, fire - TimeDelta::milliseconds(1), TOL),
            NONE
        );
        // Zero tolerance: only a fire noticed at its exact second is on time.
        assert_eq!(
            s.due_fires(
                Some(before),
                before,
                fire + TimeDelta::milliseconds(999),
                Duration::ZERO
            ),
            NONE
        );
        assert_eq!(
            s.due_fires(Some(before), before, fire, Duration::ZERO),
            vec![fire]
        );
    }

    #[test]
    fn per_second_schedule_over_a_three_day_outage_is_bounded() {
        let t0 = utc(2026, 6, 1, 0, 0, 0);
        let now = t0 + TimeDelta::days(3) + TimeDelta::milliseconds(200);
        let started = std::time::Instant::now();
        let on_time: Vec<_> = (-5..=0)
            .map(|i| t0 + TimeDelta::days(3) + TimeDelta::seconds(i))
            .collect();

        let skip = schedule("* * * * * *", "UTC", CatchUp::Skip).due_fires(Some(t0), t0, now, TOL);
        assert_eq!(skip, on_time[1..]);
        let latest =
            schedule("* * * * * *", "UTC", CatchUp::Latest).due_fires(Some(t0), t0, now, TOL);
        assert_eq!(latest, on_time[1..]);
        let all = schedule("* * * * * *", "UTC", CatchUp::All { max: 100 }).due_fires(
            Some(t0),
            t0,
            now,
            TOL,
        );
        assert_eq!(all.len(), 105);
        assert_eq!(all[100..], on_time[1..]);
        assert_eq!(all[0], on_time[1] - TimeDelta::seconds(100));
        assert!(all.windows(2).all(|w| w[1] - w[0] == TimeDelta::seconds(1)));
        // 259,200 due fire times, none enumerated.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn latest_runs_the_missed_one_only_when_none_is_on_time() {
        let s = schedule("*/10 * * * *", "UTC", CatchUp::Latest);
        let last = utc(2026, 1, 1, 0, 0, 0);
        // 00:10 and 00:20 missed, 00:30 on time: only 00:30.
        assert_eq!(
            s.due_fires(Some(last), last, utc(2026, 1, 1, 0, 30, 2), TOL),
            vec![utc(2026, 1, 1, 0, 30, 0)]
        );
        // Nothing on time: the latest missed, 00:20.
        assert_eq!(
            s.due_fires(Some(last), last, utc(2026, 1, 1, 0, 29, 0), TOL),
            vec![utc(2026, 1, 1, 0, 20, 0)]
        );
        // All keeps missed and on-time ones.
        let s = schedule("*/10 * * * *", "UTC", CatchUp::all());
        assert_eq!(
            s.due_fires(Some(last), last, utc(2026, 1, 1, 0, 30, 2), TOL)
                .len(),
            3
        );
    }

    #[test]
    fn anchor_is_exclusive_and_never_before_active_since() {
        let s = schedule("0 * * * *", "UTC", CatchUp::all());
        let fire = utc(2026, 1, 1, 10, 0, 0);
        // Created exactly at a fire time: that fire is not due.
        assert_eq!(
            s.due_fires(None, fire, fire + TimeDelta::seconds(1), TOL),
            NONE
        );
        // Created a little after, with sub-second precision.
        let created = fire + TimeDelta::milliseconds(1);
        assert_eq!(
            s.due_fires(None, created, fire + TimeDelta::hours(1), TOL),
            vec![fire + TimeDelta::hours(1)]
        );
        // Already fired: not again, even if the loop asks twice.
        assert_eq!(
            s.due_fires(Some(fire), created, fire + TimeDelta::seconds(2), TOL),
            NONE
        );
        // A `last_fired` older than `active_since` does not reach back.
        let since = fire + TimeDelta::minutes(30);
        assert_eq!(
            s.due_fires(
                Some(fire - TimeDelta::days(1)),
                since,
                fire + TimeDelta::minutes(59),
                TOL
            ),
            NONE
        );
        // `now` before the anchor (a clock stepped back): nothing.
        assert_eq!(
            s.due_fires(Some(fire), fire, fire - TimeDelta::hours(3), TOL),
            NONE
        );
    }

    #[test]
    fn window_start_and_end_are_respected() {
        let start = utc(2026, 1, 1, 10, 0, 0);
        let end = utc(2026, 1, 1, 12, 0, 0);
        let s = schedule("0 * * * *", "UTC", CatchUp::all())
            .with_window(Some(start), Some(end))
            .unwrap();
        let created = utc(2026, 1, 1, 0, 0, 0);
        // Everything due from before start to long after end: 10, 11, 12 (both ends inclusive).
        assert_eq!(
            s.due_fires(None, created, utc(2026, 1, 2, 0, 0, 0), TOL),
            vec![start, utc(2026, 1, 1, 11, 0, 0), end]
        );
        assert_eq!(
            s.due_fires(None, created, start - TimeDelta::seconds(1), TOL),
            NONE
        );
        assert_eq!(
            s.due_fires(Some(end), created, utc(2026, 1, 2, 0, 0, 0), TOL),
            NONE
        );
        assert_eq!(s.next_fire(created), Some(start));
        assert_eq!(s.next_fire(start), Some(utc(2026, 1, 1, 11, 0, 0)));
        assert_eq!(s.next_fire(end), None);
        assert_eq!(
            s.upcoming(created, 10),
            vec![start, utc(2026, 1, 1, 11, 0, 0), end]
        );
        // A start between fire times, with sub-second precision.
        let s = schedule("0 * * * *", "UTC", CatchUp::all())
            .with_window(Some(start + TimeDelta::milliseconds(1)), None)
            .unwrap();
        assert_eq!(s.next_fire(created), Some(utc(2026, 1, 1, 11, 0, 0)));
        assert_eq!(
            s.due_fires(None, created, utc(2026, 1, 1, 11, 0, 1), TOL),
            vec![utc(2026, 1, 1, 11, 0, 0)]
        );
    }

    #[test]
    fn next_fire_and_upcoming() {
        let s = schedule("15 3 * * *", "Asia/Kolkata", CatchUp::Skip);
        // 03:15 IST = 21:45 UTC the day before.
        assert_eq!(
            s.next_fire(utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 1, 21, 45, 0))
        );
        assert_eq!(
            s.next_fire(utc(2026, 1, 1, 21, 45, 0)),
            Some(utc(2026, 1, 2, 21, 45, 0))
        );
        assert_eq!(
            s.next_fire(utc(2026, 1, 1, 21, 44, 59) + TimeDelta::milliseconds(999)),
            Some(utc(2026, 1, 1, 21, 45, 0))
        );
        assert_eq!(s.upcoming(utc(2026, 1, 1, 0, 0, 0), 3).len(), 3);
    }

    /// Every fire time in `(from, to]`, walked forwards.
    fn forward(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(next) = s.next_fire(t).filter(|n| *n <= to) {
            out.push(next);
            t = next;
        }
        out
    }

    /// Every fire time in `(from, to]`, through `due_fires` (walked backwards).
    fn backward(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let s = s
            .clone()
            .with_catch_up(CatchUp::All { max: u32::MAX })
            .unwrap();
        s.due_fires(Some(from), from, to, Duration::ZERO)
    }

    #[test]
    fn dst_berlin_spring_forward_fixed_time_fires_once_after_the_gap() {
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = schedule("30 2 * * *", "Europe/Berlin", CatchUp::all());
        let from = utc(2026, 3, 27, 12, 0, 0);
        let to = utc(2026, 3, 31, 0, 0, 0);
        let expected = vec![
            utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
            utc(2026, 3, 29, 1, 0, 0),  // 03:00 CEST, the first instant after the gap
            utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
        ];
        assert_eq!(forward(&s, from, to), expected);
        assert_eq!(backward(&s, from, to), expected);
    }

    #[test]
    fn dst_berlin_fall_back_fixed_time_fires_once() {
        // 25 October 2026: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let s = schedule("30 2 * * *", "Europe/Berlin", CatchUp::all());
        let from = utc(2026, 10, 23, 12, 0, 0);
        let to = utc(2026, 10, 27, 0, 0, 0);
        let expected = vec![
            utc(2026, 10, 24, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST, the first of the two; not 01:30 UTC
            utc(2026, 10, 26, 1, 30, 0), // 02:30 CET
        ];
        assert_eq!(forward(&s, from, to), expected);
        assert_eq!(backward(&s, from, to), expected);
        // A loop ticking through the repeated hour fires it once.
        let clock = ManualClock::new(utc(2026, 10, 24, 23, 0, 0));
        let mut last = Some(utc(2026, 10, 24, 0, 30, 0));
        let fired = run_loop(
            &s,
            &clock,
            from,
            &mut last,
            Duration::from_secs(1),
            utc(2026, 10, 25, 3, 0, 0),
        );
        assert_eq!(fired, vec![utc(2026, 10, 25, 0, 30, 0)]);
    }

    #[test]
    fn dst_berlin_interval_job_skips_the_gap_and_keeps_cadence_in_the_overlap() {
        let s = schedule("*/30 * * * *", "Europe/Berlin", CatchUp::all());
        // Spring: 01:30 CET, then 03:00 CEST (02:00 and 02:30 do not exist).
        let spring = forward(&s, utc(2026, 3, 29, 0, 0, 0), utc(2026, 3, 29, 1, 30, 0));
        assert_eq!(
            spring,
            vec![
                utc(2026, 3, 29, 0, 30, 0),
                utc(2026, 3, 29, 1, 0, 0),
                utc(2026, 3, 29, 1, 30, 0)
            ]
        );
        assert_eq!(
            backward(&s, utc(2026, 3, 29, 0, 0, 0), utc(2026, 3, 29, 1, 30, 0)),
            spring
        );
        // Fall: every 30 real minutes through both 02:xx hours.
        let from = utc(2026, 10, 24, 23, 0, 0);
        let to = utc(2026, 10, 25, 3, 0, 0);
        let fall = forward(&s, from, to);
        let expected: Vec<_> = (1..=8).map(|i| from + TimeDelta::minutes(30 * i)).collect();
        assert_eq!(fall, expected);
        assert_eq!(backward(&s, from, to), expected);
    }

    #[test]
    fn dst_new_york() {
        // 8 March 2026: 02:00 EST jumps to 03:00 EDT.
        let s = schedule("30 2 * * *", "America/New_York", CatchUp::all());
        let (from, to) = (utc(2026, 3, 7, 0, 0, 0), utc(2026, 3, 10, 0, 0, 0));
        let expected = vec![
            local(America::New_York, 2026, 3, 7, 2, 30),
            utc(2026, 3, 8, 7, 0, 0), // 03:00 EDT
            local(America::New_York, 2026, 3, 9, 2, 30),
        ];
        assert_eq!(forward(&s, from, to), expected);
        assert_eq!(backward(&s, from, to), expected);
        // 1 November 2026: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice.
        let s = schedule("30 1 * * *", "America/New_York", CatchUp::all());
        let (from, to) = (utc(2026, 10, 31, 0, 0, 0), utc(2026, 11, 3, 0, 0, 0));
        let expected = vec![
            utc(2026, 10, 31, 5, 30, 0), // 01:30 EDT
            utc(2026, 11, 1, 5, 30, 0),  // 01:30 EDT, once
            utc(2026, 11, 2, 6, 30, 0),  // 01:30 EST
        ];
        assert_eq!(forward(&s, from, to), expected);
        assert_eq!(backward(&s, from, to), expected);
    }

    #[test]
    fn forward_and_backward_walks_agree_across_dst() {
        let patterns = [
            "0 * * * *",
            "*/7 * * * *",
            "0 2 * * *",
            "0 3 * * *",
            "0 30 2 * * *",
            "*/20 * 1-3 * * *",
            "0 0 * * SUN",
        ];
        for tz in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "UTC",
        ] {
            for pattern in patterns {
                let s = schedule(pattern, tz, CatchUp::all());
                for (from, to) in [
                    (utc(2026, 3, 27, 0, 0, 0), utc(2026, 3, 31, 0, 0, 0)),
                    (utc(2026, 3, 6, 0, 0, 0), utc(2026, 3, 10, 0, 0, 0)),
                    (utc(2026, 10, 23, 0, 0, 0), utc(2026, 10, 27, 0, 0, 0)),
                    (utc(2026, 10, 30, 0, 0, 0), utc(2026, 11, 3, 0, 0, 0)),
                    (utc(2026, 4, 3, 0, 0, 0), utc(2026, 4, 7, 0, 0, 0)),
                ] {
                    let f = forward(&s, from, to);
                    assert_eq!(backward(&s, from, to), f, "{pattern} in {tz} from {from}");
                    assert!(
                        f.windows(2).all(|w| w[0] < w[1]),
                        "{pattern} in {tz}: {f:?}"
                    );
                }
            }
        }
        let _ = Europe::Berlin;
    }

    #[test]
    fn pause_then_resume_discards_the_paused_interval() {
        // Fired 1 March 02:00, paused that noon, resumed 4 March noon: the
        // firing loop passes the resume instant as `active_since`.
        let last = Some(utc(2026, 3, 1, 2, 0, 0));
        let resumed = utc(2026, 3, 4, 12, 0, 0);
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::all()] {
            let s = schedule("0 2 * * *", "UTC", policy);
            assert_eq!(
                s.due_fires(last, resumed, resumed + TimeDelta::seconds(1), TOL),
                NONE,
                "{policy}"
            );
            // The first fire after the resume runs normally.
            let next = utc(2026, 3, 5, 2, 0, 0);
            assert_eq!(
                s.due_fires(last, resumed, next + TimeDelta::seconds(1), TOL),
                vec![next]
            );
        }
        // Passing the creation instant instead makes the pause count as an
        // outage, governed by the catch-up policy.
        let created = utc(2026, 2, 1, 0, 0, 0);
        let s = schedule("0 2 * * *", "UTC", CatchUp::all());
        assert_eq!(s.due_fires(last, created, resumed, TOL).len(), 3);
    }
}
