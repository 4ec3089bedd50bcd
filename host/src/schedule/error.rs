//! Everything that can be wrong with a schedule definition.

/// Why a schedule definition was rejected. Every message names the culprit
/// (the schedule, the field and the offending value) so that an operator can
/// fix the file or the command line without reading Corral's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule's name is not an identifier.
    #[error(
        "invalid schedule name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter (at most 64)"
    )]
    InvalidName(String),
    /// The workflow's name is not an identifier.
    #[error(
        "schedule `{schedule}`: invalid workflow name `{workflow}`: use lowercase letters, digits, `-` and `_`, starting with a letter (at most 64)"
    )]
    InvalidWorkflow {
        /// The schedule.
        schedule: String,
        /// The workflow name as given.
        workflow: String,
    },
    /// The cron expression does not parse, or never matches any date.
    #[error("schedule `{schedule}`: invalid cron expression `{cron}`: {reason}")]
    InvalidCron {
        /// The schedule.
        schedule: String,
        /// The expression as given.
        cron: String,
        /// What the cron parser reported.
        reason: String,
    },
    /// The time zone is not an IANA time zone name.
    #[error(
        "schedule `{schedule}`: unknown time zone `{timezone}`: use an IANA name such as `UTC` or `Europe/Berlin`"
    )]
    UnknownTimeZone {
        /// The schedule.
        schedule: String,
        /// The name as given.
        timezone: String,
    },
    /// `start` or `end` is not an RFC 3339 instant.
    #[error(
        "schedule `{schedule}`: invalid `{field}` `{value}`: expected an RFC 3339 instant with an offset, such as `2026-01-01T00:00:00Z` ({reason})"
    )]
    InvalidInstant {
        /// The schedule.
        schedule: String,
        /// `start` or `end`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What the parser reported.
        reason: String,
    },
    /// The window is empty: `end` is not after `start`.
    #[error("schedule `{schedule}`: `end` ({end}) must be after `start` ({start})")]
    InvalidWindow {
        /// The schedule.
        schedule: String,
        /// The window's start, RFC 3339.
        start: String,
        /// The window's end, RFC 3339.
        end: String,
    },
    /// `catch_up = "all"` with a maximum of 0.
    #[error(
        "schedule `{0}`: `catch_up_max` must be at least 1 (use `catch_up = \"skip\"` to run no missed fire)"
    )]
    ZeroCatchUpMax(String),
    /// `catch_up_max` was given with a policy other than `all`.
    #[error(
        "schedule `{schedule}`: `catch_up_max` only applies to `catch_up = \"all\"`, not `{catch_up}`"
    )]
    CatchUpMaxWithoutAll {
        /// The schedule.
        schedule: String,
        /// The policy that was given (`skip` or `latest`).
        catch_up: String,
    },
    /// The static input is not a JSON object.
    #[error("schedule `{0}`: `input` must be a table (a JSON object)")]
    InputNotObject(String),
    /// A policy name (from a command line) is not one of the known ones.
    #[error("unknown {what} `{value}`: expected one of {expected}")]
    UnknownPolicy {
        /// `catch-up policy` or `overlap policy`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// A `[[schedules]]` entry, or a stored schedule, does not have the
    /// schedule's shape (unknown key, wrong type, missing field).
    #[error("invalid schedule definition: {0}")]
    Format(String),
}
