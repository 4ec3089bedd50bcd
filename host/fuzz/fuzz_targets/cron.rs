//! Cron schedule parsing and fire-time computation.
//!
//! Input: up to five lines: the cron expression, a time zone name, `now`,
//! `start` and `end` (RFC 3339; an empty or invalid `now` is 2026-01-01, an
//! invalid `start`/`end` is none).
//!
//! Properties: nothing panics; every computation terminates (libFuzzer's
//! `-timeout` catches a loop); `next_fire` and `upcoming` return whole
//! seconds after `now`, strictly increasing, inside the window; walking
//! backwards (`due_fires`, what the firing loop does) finds exactly the
//! fires that walking forwards (`upcoming`, what `schedule show` prints)
//! found over the same interval.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, Timelike as _, Utc};
use corral::schedule::{CatchUp, Schedule};
use libfuzzer_sys::fuzz_target;

const LOOK_AHEAD: usize = 8;

fn instant(line: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(line?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let cron = lines.next().unwrap_or_default();
    let timezone = lines.next().unwrap_or_default();
    let now = instant(lines.next())
        .unwrap_or_else(|| DateTime::from_timestamp(1_767_225_600, 0).unwrap());
    let start = instant(lines.next());
    let end = instant(lines.next());

    let Ok(mut schedule) = Schedule::new("fuzz", "wf", cron) else {
        return;
    };
    if !timezone.is_empty() {
        match schedule.clone().with_timezone(timezone) {
            Ok(s) => schedule = s,
            Err(_) => return,
        }
    }
    let Ok(schedule) = schedule.with_window(start, end) else {
        return;
    };
    let in_window = |t: DateTime<Utc>| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e);

    let next = schedule.next_fire(now);
    let upcoming = schedule.upcoming(now, LOOK_AHEAD);
    assert_eq!(next, upcoming.first().copied());
    assert!(upcoming.len() <= LOOK_AHEAD);
    let mut previous = now;
    for &t in &upcoming {
        assert!(t > previous, "{t} after {previous}");
        assert_eq!(t.nanosecond(), 0);
        assert!(in_window(t), "{t} outside the window");
        previous = t;
    }

    // The same interval walked backwards, every fire counted as missed.
    let until = upcoming.last().copied().unwrap_or(now);
    let all = schedule
        .clone()
        .with_catch_up(CatchUp::All {
            max: LOOK_AHEAD as u32 + 1,
        })
        .unwrap();
    let due = all.due_fires(Some(now), now, until, Duration::ZERO);
    assert_eq!(due, upcoming, "backwards vs forwards from {now} to {until}");

    // And the firing loop's usual call, with a large tolerance: bounded.
    let due = schedule.due_fires(None, now, until, Duration::from_secs(u64::MAX));
    assert!(due.len() <= corral::schedule::MAX_ON_TIME_FIRES);
});
