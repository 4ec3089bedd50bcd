//! Schedules: a workflow started on a cron expression, in a time zone, with
//! a static input and rules for missed and overlapping fires. Everything
//! here is pure (no I/O, no database, no async): the firing loop asks
//! [`Schedule::due_fires`] what to start and records what it started.
//!
//! # Three ways to define a schedule, one validated value
//!
//! - a `[[schedules]]` entry of a workflow file ([`ScheduleSpec`], then
//!   [`Schedule::from_spec`] or [`Schedule::from_toml_table`]);
//! - [`Schedule::new`] and its `with_*` setters (Rust, the CLI);
//! - deserializing a stored schedule (validated again).
//!
//! # The TOML format
//!
//! ```toml
//! [[schedules]]                    # in the workflow's file: the workflow is implied
//! name = "nightly"                 # required: lowercase letters, digits, - and _, starting with a letter
//! cron = "30 2 * * *"              # required
//! timezone = "Europe/Berlin"
//! input = { region = "eu" }
//! catch_up = "all"
//! catch_up_max = 7
//! overlap = "skip"
//! start = 2026-01-01T00:00:00Z
//! end = "2027-01-01T00:00:00+01:00"
//! ```
//!
//! Unknown keys are errors.
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `name` | string | required | unique on the host; same rule as workflow names |
//! | `cron` | string | required | 5 fields (`min hour dom month dow`, minute precision), 6 fields (seconds first), or `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`. Names (`MON`, `JAN`), ranges, steps, lists, `L`, `W`, `#` accepted; day of month and day of week are OR-ed as in Vixie cron. An expression that never matches is an error |
//! | `timezone` | IANA name | `"UTC"` | the zone the expression is evaluated in |
//! | `input` | table | `{}` | static input of every execution it starts |
//! | `catch_up` | `"skip"`, `"latest"`, `"all"` | `"skip"` | what to do with missed fires, below |
//! | `catch_up_max` | integer ≥ 1 | 100 | with `catch_up = "all"` only: most missed fires run |
//! | `overlap` | `"allow"`, `"skip"` | `"allow"` | whether a fire may start while the schedule's previous execution runs |
//! | `start` | RFC 3339 instant (string or TOML date-time, with offset) | none | no fire before it (inclusive) |
//! | `end` | RFC 3339 instant | none | no fire after it (inclusive); must be after `start` |
//!
//! # When a schedule fires
//!
//! Fire times are whole seconds. A fire time `t` is **due** when
//! `anchor < t <= now` and `start <= t <= end`, where `anchor` is the later
//! of the last fire time handled and the instant the schedule became active
//! (created, or last resumed). A due fire is **on time** when it is at most
//! `tolerance` old (`now - t <= tolerance`; the firing loop passes a few of
//! its ticks, [`DEFAULT_TOLERANCE`] = 5 s), and **missed** otherwise —
//! typically because no host was running.
//!
//! On-time fires always run, whatever the policy. Missed fires:
//!
//! | `catch_up` | missed fires that run |
//! |---|---|
//! | `skip` | none: the schedule waits for its next fire |
//! | `latest` | the most recent missed one, once — unless a fire is on time, which supersedes it |
//! | `all` | every missed one, oldest first, but only the `catch_up_max` most recent: a long outage does not replay ancient runs |
//!
//! Example, a daily `0 2 * * *` schedule whose hosts were down for 3 days
//! and come back at noon: `skip` runs nothing until tomorrow 02:00,
//! `latest` runs today's 02:00 once, `all` runs the three 02:00s in order.
//!
//! **Pause/resume**: a paused schedule does not fire, and the time it was
//! paused is not missed time: on resume the firing loop passes the resume
//! instant as `active_since`, so fires that fell due while paused are
//! dropped whatever `catch_up` says. (Passing the creation instant instead
//! would treat the pause like an outage.)
//!
//! **Overlap**: with `overlap = "allow"` every fire starts an execution,
//! even if earlier executions of the schedule are still running. With
//! `overlap = "skip"`, a fire that comes while an execution started by the
//! same schedule is still running starts nothing; it is recorded as skipped
//! and is not retried later. Catch-up fires returned together are started
//! in order and, under `skip`, only the first one starts.
//!
//! # Time zones and daylight saving time
//!
//! The expression is matched against the wall clock of `timezone`. On the
//! days the clocks change (tested with Europe/Berlin and America/New_York):
//!
//! - **Spring forward** (a local hour does not exist): a *fixed-time*
//!   schedule (single values in the second, minute and hour fields, e.g.
//!   `30 2 * * *`) whose time falls in the gap fires once, at the first
//!   instant after the gap (03:00 local); an *interval* schedule (wildcards,
//!   steps, ranges or lists in those fields, e.g. `*/15 * * * *`) has no
//!   fires in the missing hour.
//! - **Fall back** (a local hour happens twice): a fixed-time schedule fires
//!   once, at the first occurrence; an interval schedule fires in both, so it
//!   keeps its cadence in real time.
//!
//! # Bounds
//!
//! [`Schedule::due_fires`] walks fire times backwards from `now` and stops
//! as soon as the policy has what it needs, so its work is proportional to
//! the fires it returns (at most `catch_up_max` missed plus
//! [`MAX_ON_TIME_FIRES`] on-time), never to the length of an outage: a
//! per-second schedule after a 3-day outage (259,200 due fire times) costs
//! at most 100 steps back with `all`, about 6 with `skip` or `latest`.

mod clock;
mod error;
mod fire;
mod model;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ScheduleError;
pub use fire::{DEFAULT_TOLERANCE, MAX_ON_TIME_FIRES};
pub use model::{
    CatchUp, CatchUpKind, DEFAULT_CATCH_UP_MAX, DEFAULT_TIMEZONE, Overlap, Schedule, ScheduleSpec,
};
