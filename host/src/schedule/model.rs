//! The schedule definition: [`Schedule`] (validated), its TOML shape
//! [`ScheduleSpec`] and its policies [`CatchUp`] and [`Overlap`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::error::ScheduleError;

/// `catch_up_max` when `catch_up = "all"` does not give one.
pub const DEFAULT_CATCH_UP_MAX: u32 = 100;

/// The time zone of a schedule that does not name one.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// What to do with fire times that were missed (more than the firing loop's
/// tolerance in the past when they were noticed, typically because no host
/// was running). On-time fires always run, whatever the policy; see the
/// [module documentation](super) for the precise rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run no missed fire: wait for the next one that is on time. The
    /// default.
    #[default]
    Skip,
    /// Run the most recent missed fire once, unless a fire is on time
    /// (which then supersedes it).
    Latest,
    /// Run every missed fire, oldest first, but at most the `max` most
    /// recent ones.
    All {
        /// How many missed fires to run at most (≥ 1); older ones are
        /// dropped.
        max: u32,
    },
}

impl CatchUp {
    /// `All` with [`DEFAULT_CATCH_UP_MAX`].
    pub const fn all() -> Self {
        CatchUp::All {
            max: DEFAULT_CATCH_UP_MAX,
        }
    }

    /// The policy's kind, without its maximum.
    pub const fn kind(self) -> CatchUpKind {
        match self {
            CatchUp::Skip => CatchUpKind::Skip,
            CatchUp::Latest => CatchUpKind::Latest,
            CatchUp::All { .. } => CatchUpKind::All,
        }
    }

    /// Builds a policy from its TOML/CLI parts (`catch_up`, `catch_up_max`):
    /// a maximum is only allowed with `All` and must be at least 1; `All`
    /// without one gets [`DEFAULT_CATCH_UP_MAX`]. `schedule` is only used in
    /// error messages.
    pub fn from_parts(
        schedule: &str,
        kind: CatchUpKind,
        max: Option<u32>,
    ) -> Result<Self, ScheduleError> {
        match (kind, max) {
            (CatchUpKind::Skip, None) => Ok(CatchUp::Skip),
            (CatchUpKind::Latest, None) => Ok(CatchUp::Latest),
            (CatchUpKind::All, None) => Ok(CatchUp::all()),
            (CatchUpKind::All, Some(0)) => Err(ScheduleError::ZeroCatchUpMax(schedule.to_owned())),
            (CatchUpKind::All, Some(max)) => Ok(CatchUp::All { max }),
            (kind, Some(_)) => Err(ScheduleError::CatchUpMaxWithoutAll {
                schedule: schedule.to_owned(),
                catch_up: kind.to_string(),
            }),
        }
    }

    /// The `catch_up_max` to write out: only for `All`.
    pub const fn max(self) -> Option<u32> {
        match self {
            CatchUp::All { max } => Some(max),
            _ => None,
        }
    }
}

impl fmt::Display for CatchUp {
    /// `skip`, `latest` or `all (max N)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatchUp::All { max } => write!(f, "all (max {max})"),
            other => other.kind().fmt(f),
        }
    }
}

/// The name of a [`CatchUp`] policy, as written in `catch_up = "..."` or on
/// a command line (`--catch-up`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpKind {
    /// `skip`.
    #[default]
    Skip,
    /// `latest`.
    Latest,
    /// `all`.
    All,
}

impl fmt::Display for CatchUpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatchUpKind::Skip => "skip",
            CatchUpKind::Latest => "latest",
            CatchUpKind::All => "all",
        })
    }
}

impl FromStr for CatchUpKind {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(CatchUpKind::Skip),
            "latest" => Ok(CatchUpKind::Latest),
            "all" => Ok(CatchUpKind::All),
            _ => Err(ScheduleError::UnknownPolicy {
                what: "catch-up policy",
                value: s.to_owned(),
                expected: "`skip`, `latest`, `all`",
            }),
        }
    }
}

/// Whether a fire may start an execution while an earlier execution started
/// by the same schedule is still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Start it anyway: executions of one schedule may run concurrently.
    /// The default.
    #[default]
    Allow,
    /// Do not start it: the fire is recorded as skipped and produces no
    /// execution.
    Skip,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
        })
    }
}

impl FromStr for Overlap {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Overlap::Allow),
            "skip" => Ok(Overlap::Skip),
            _ => Err(ScheduleError::UnknownPolicy {
                what: "overlap policy",
                value: s.to_owned(),
                expected: "`allow`, `skip`",
            }),
        }
    }
}

/// One `[[schedules]]` entry of a workflow file, as written: the workflow is
/// the enclosing file's. Unknown keys are errors. Turn it into a
/// [`Schedule`] with [`Schedule::from_spec`].
///
/// `start` and `end` accept an RFC 3339 string or a TOML offset date-time
/// (`start = 2026-01-01T00:00:00Z`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The schedule's name, unique on the host.
    pub name: String,
    /// The cron expression: 5 fields (minute precision) or 6 (seconds
    /// first), or an alias such as `@daily`.
    pub cron: String,
    /// IANA time zone the expression is evaluated in; `UTC` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Static input of every execution it starts; `{}` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
    /// `skip` (default), `latest` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUpKind>,
    /// With `catch_up = "all"` only: how many missed fires to run at most
    /// (default [`DEFAULT_CATCH_UP_MAX`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_max: Option<u32>,
    /// `allow` (default) or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// First instant at which it may fire (inclusive), RFC 3339.
    #[serde(
        default,
        deserialize_with = "instant_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<String>,
    /// Last instant at which it may fire (inclusive), RFC 3339.
    #[serde(
        default,
        deserialize_with = "instant_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<String>,
}

/// Accepts a string or a TOML date-time for `start`/`end`.
fn instant_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match Option::<toml::Value>::deserialize(d)? {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(toml::Value::Datetime(dt)) => Ok(Some(dt.to_string())),
        Some(other) => Err(D::Error::custom(format!(
            "expected an RFC 3339 instant such as \"2026-01-01T00:00:00Z\", found {}",
            other.type_str()
        ))),
    }
}

impl ScheduleSpec {
    /// Reads one `[[schedules]]` entry already parsed as a TOML table.
    pub fn from_toml_table(table: toml::Table) -> Result<Self, ScheduleError> {
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ScheduleError::Format(e.message().trim_end().to_owned()))
    }
}

/// A validated schedule: a workflow, a cron expression evaluated in a time
/// zone, a static input and the catch-up and overlap policies. The only ways
/// to make one ([`Schedule::new`] and its setters, [`Schedule::from_spec`],
/// deserializing) validate it, so a `Schedule` always has a parsable
/// expression that matches some date, a known zone and a non-empty window.
///
/// Serializes (serde) to the [`ScheduleSpec`] fields plus `workflow`, with
/// every default written out; deserializing validates again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "StoredSchedule", into = "StoredSchedule")]
pub struct Schedule {
    pub(super) name: String,
    pub(super) workflow: String,
    pub(super) cron: String,
    pub(super) parsed: Cron,
    pub(super) timezone: Tz,
    pub(super) input: Map<String, Value>,
    pub(super) catch_up: CatchUp,
    pub(super) overlap: Overlap,
    pub(super) start: Option<DateTime<Utc>>,
    pub(super) end: Option<DateTime<Utc>>,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.workflow == other.workflow
            && self.cron == other.cron
            && self.timezone == other.timezone
            && self.input == other.input
            && self.catch_up == other.catch_up
            && self.overlap == other.overlap
            && self.start == other.start
            && self.end == other.end
    }
}

/// Lowercase ASCII letters, digits, `-` and `_`, starting with a letter, at
/// most 64 bytes: the workflow name rule.
pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 64
}

/// Parses a cron expression: 5 or 6 fields (no year field), aliases
/// accepted; an expression that never matches (`0 0 30 2 *`) is rejected.
fn parse_cron(schedule: &str, cron: &str) -> Result<Cron, ScheduleError> {
    let invalid = |reason: String| ScheduleError::InvalidCron {
        schedule: schedule.to_owned(),
        cron: cron.to_owned(),
        reason,
    };
    let parsed = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| invalid(e.to_string()))?;
    // A field that allows no value at all (a lone `,` parses as one) never
    // matches, and the probe below would only find that out after stepping
    // second by second or minute by minute for millennia: reject it first.
    let p = &parsed.pattern;
    let none_of = |n: u32, matches: &dyn Fn(u32) -> Result<bool, croner::errors::CronError>| {
        !(0..n).any(|v| matches(v).unwrap_or(false))
    };
    if none_of(60, &|v| p.second_match(v))
        || none_of(60, &|v| p.minute_match(v))
        || none_of(24, &|v| p.hour_match(v))
        || none_of(13, &|v| p.month_match(v))
    {
        return Err(invalid(
            "it never matches any date (a field allows no value)".to_owned(),
        ));
    }
    // The parser's own search is bounded (a year's worth of steps, or its
    // year limit), so a pattern that never matches fails here, once.
    let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    match parsed.find_next_occurrence(&probe, true) {
        Ok(_) => Ok(parsed),
        Err(_) => Err(invalid("it never matches any date".to_owned())),
    }
}

fn parse_timezone(schedule: &str, timezone: &str) -> Result<Tz, ScheduleError> {
    timezone
        .parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone {
            schedule: schedule.to_owned(),
            timezone: timezone.to_owned(),
        })
}

fn parse_instant(
    schedule: &str,
    field: &'static str,
    value: &str,
) -> Result<DateTime<Utc>, ScheduleError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ScheduleError::InvalidInstant {
            schedule: schedule.to_owned(),
            field,
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Schedule {
    /// A schedule of `workflow` on `cron`, with every default: time zone
    /// UTC, input `{}`, `catch_up` skip, `overlap` allow, no window. Change
    /// them with the `with_*` setters.
    pub fn new(
        name: impl Into<String>,
        workflow: impl Into<String>,
        cron: impl Into<String>,
    ) -> Result<Self, ScheduleError> {
        let name = name.into();
        let workflow = workflow.into();
        let cron = cron.into();
        if !is_identifier(&name) {
            return Err(ScheduleError::InvalidName(name));
        }
        if !is_identifier(&workflow) {
            return Err(ScheduleError::InvalidWorkflow {
                schedule: name,
                workflow,
            });
        }
        let parsed = parse_cron(&name, &cron)?;
        Ok(Schedule {
            name,
            workflow,
            cron,
            parsed,
            timezone: Tz::UTC,
            input: Map::new(),
            catch_up: CatchUp::Skip,
            overlap: Overlap::Allow,
            start: None,
            end: None,
        })
    }

    /// Evaluates the expression in the IANA time zone `timezone`.
    pub fn with_timezone(mut self, timezone: &str) -> Result<Self, ScheduleError> {
        self.timezone = parse_timezone(&self.name, timezone)?;
        Ok(self)
    }

    /// Sets the static input; it must be a JSON object.
    pub fn with_input(mut self, input: Value) -> Result<Self, ScheduleError> {
        match input {
            Value::Object(map) => {
                self.input = map;
                Ok(self)
            }
            _ => Err(ScheduleError::InputNotObject(self.name)),
        }
    }

    /// Sets the catch-up policy (`All { max: 0 }` is rejected).
    pub fn with_catch_up(mut self, catch_up: CatchUp) -> Result<Self, ScheduleError> {
        if catch_up == (CatchUp::All { max: 0 }) {
            return Err(ScheduleError::ZeroCatchUpMax(self.name));
        }
        self.catch_up = catch_up;
        Ok(self)
    }

    /// Sets the overlap policy.
    pub fn with_overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// Restricts firing to `start ..= end` (either side optional); `end`
    /// must be after `start`.
    pub fn with_window(
        mut self,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Self, ScheduleError> {
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            return Err(ScheduleError::InvalidWindow {
                schedule: self.name,
                start: rfc3339(s),
                end: rfc3339(e),
            });
        }
        self.start = start;
        self.end = end;
        Ok(self)
    }

    /// Validates one `[[schedules]]` entry of the workflow `workflow`.
    pub fn from_spec(spec: ScheduleSpec, workflow: &str) -> Result<Self, ScheduleError> {
        let ScheduleSpec {
            name,
            cron,
            timezone,
            input,
            catch_up,
            catch_up_max,
            overlap,
            start,
            end,
        } = spec;
        let schedule = Schedule::new(name, workflow, cron)?;
        let catch_up =
            CatchUp::from_parts(&schedule.name, catch_up.unwrap_or_default(), catch_up_max)?;
        let start = start
            .map(|s| parse_instant(&schedule.name, "start", &s))
            .transpose()?;
        let end = end
            .map(|s| parse_instant(&schedule.name, "end", &s))
            .transpose()?;
        schedule
            .with_timezone(timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE))?
            .with_input(Value::Object(input.unwrap_or_default()))?
            .with_catch_up(catch_up)?
            .with_overlap(overlap.unwrap_or_default())
            .with_window(start, end)
    }

    /// Validates one `[[schedules]]` entry, already parsed as a TOML table,
    /// of the workflow `workflow`.
    pub fn from_toml_table(table: toml::Table, workflow: &str) -> Result<Self, ScheduleError> {
        Schedule::from_spec(ScheduleSpec::from_toml_table(table)?, workflow)
    }

    /// The `[[schedules]]` entry for this schedule (the workflow is not part
    /// of it), with every default written out.
    pub fn to_spec(&self) -> ScheduleSpec {
        ScheduleSpec {
            name: self.name.clone(),
            cron: self.cron.clone(),
            timezone: Some(self.timezone.name().to_owned()),
            input: Some(self.input.clone()),
            catch_up: Some(self.catch_up.kind()),
            catch_up_max: self.catch_up.max(),
            overlap: Some(self.overlap),
            start: self.start.map(rfc3339),
            end: self.end.map(rfc3339),
        }
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The workflow it starts.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The cron expression, as written.
    pub fn cron(&self) -> &str {
        &self.cron
    }

    /// The time zone the expression is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The static input of the executions it starts.
    pub fn input(&self) -> &Map<String, Value> {
        &self.input
    }

    /// The catch-up policy.
    pub fn catch_up(&self) -> CatchUp {
        self.catch_up
    }

    /// The overlap policy.
    pub fn overlap(&self) -> Overlap {
        self.overlap
    }

    /// The first instant at which it may fire, if bounded.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.start
    }

    /// The last instant at which it may fire, if bounded.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.end
    }
}

/// The serde shape of a [`Schedule`]: the spec plus `workflow`, defaults
/// written out.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSchedule {
    name: String,
    workflow: String,
    cron: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    input: Map<String, Value>,
    #[serde(default)]
    catch_up: CatchUpKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catch_up_max: Option<u32>,
    #[serde(default)]
    overlap: Overlap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<DateTime<Utc>>,
}

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_owned()
}

impl From<Schedule> for StoredSchedule {
    fn from(s: Schedule) -> Self {
        StoredSchedule {
            timezone: s.timezone.name().to_owned(),
            catch_up: s.catch_up.kind(),
            catch_up_max: s.catch_up.max(),
            name: s.name,
            workflow: s.workflow,
            cron: s.cron,
            input: s.input,
            overlap: s.overlap,
            start: s.start,
            end: s.end,
        }
    }
}

impl TryFrom<StoredSchedule> for Schedule {
    type Error = ScheduleError;

    fn try_from(s: StoredSchedule) -> Result<Self, Self::Error> {
        let schedule = Schedule::new(s.name, s.workflow, s.cron)?;
        let catch_up = CatchUp::from_parts(&schedule.name, s.catch_up, s.catch_up_max)?;
        schedule
            .with_timezone(&s.timezone)?
            .with_input(Value::Object(s.input))?
            .with_catch_up(catch_up)?
            .with_overlap(s.overlap)
            .with_window(s.start, s.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct File {
        schedules: Vec<ScheduleSpec>,
    }

    fn specs(text: &str) -> Result<Vec<ScheduleSpec>, String> {
        toml::from_str::<File>(text)
            .map(|f| f.schedules)
            .map_err(|e| e.to_string())
    }

    fn err(r: Result<Schedule, ScheduleError>) -> ScheduleError {
        r.expect_err("should be rejected")
    }

    #[test]
    fn new_has_documented_defaults() {
        let s = Schedule::new("nightly", "etl", "0 2 * * *").unwrap();
        assert_eq!(s.name(), "nightly");
        assert_eq!(s.workflow(), "etl");
        assert_eq!(s.cron(), "0 2 * * *");
        assert_eq!(s.timezone(), Tz::UTC);
        assert!(s.input().is_empty());
        assert_eq!(s.catch_up(), CatchUp::Skip);
        assert_eq!(s.overlap(), Overlap::Allow);
        assert_eq!((s.start(), s.end()), (None, None));
    }

    #[test]
    fn cron_with_and_without_seconds_and_aliases() {
        let t = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap();
        let five = Schedule::new("a", "w", "*/5 * * * *").unwrap();
        assert_eq!(five.next_fire(t).unwrap(), t + TimeDeltaExt::mins(5));
        let six = Schedule::new("a", "w", "*/10 * * * * *").unwrap();
        assert_eq!(
            six.next_fire(t).unwrap(),
            t + chrono::TimeDelta::seconds(10)
        );
        let daily = Schedule::new("a", "w", "@daily").unwrap();
        assert_eq!(
            daily.next_fire(t).unwrap(),
            Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).unwrap()
        );
        let named = Schedule::new("a", "w", "0 9 * * MON-FRI").unwrap();
        // 2026-05-01 is a Friday: next is Monday 4 May.
        assert_eq!(
            named.next_fire(t).unwrap(),
            Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()
        );
        Schedule::new("a", "w", "@hourly").unwrap();
    }

    struct TimeDeltaExt;
    impl TimeDeltaExt {
        fn mins(m: i64) -> chrono::TimeDelta {
            chrono::TimeDelta::minutes(m)
        }
    }

    #[test]
    fn invalid_cron_names_schedule_expression_and_reason() {
        for bad in [
            "",
            "* * * *",
            "0 0 0 * * * 2026",
            "61 * * * *",
            "0 25 * * *",
            "x y z a b",
            "@sometimes",
        ] {
            let e = err(Schedule::new("nightly", "etl", bad));
            let ScheduleError::InvalidCron {
                schedule,
                cron,
                reason,
            } = &e
            else {
                panic!("{bad:?}: {e:?}");
            };
            assert_eq!((schedule.as_str(), cron.as_str()), ("nightly", bad));
            assert!(!reason.is_empty());
            let msg = e.to_string();
            assert!(
                msg.contains("nightly") && msg.contains(&format!("`{bad}`")),
                "{msg}"
            );
        }
    }

    #[test]
    fn cron_that_never_matches_is_rejected() {
        let e = err(Schedule::new("never", "etl", "0 0 30 2 *"));
        assert!(e.to_string().contains("never matches"), "{e}");
        // 29 February does match, every four years.
        Schedule::new("leap", "etl", "0 0 29 2 *").unwrap();
    }

    /// Found by the `cron` fuzz target: a lone `,` parses as a field that
    /// allows no value, and the never-matches probe then stepped minute by
    /// minute up to the parser's year limit (over 10 s) before failing.
    #[test]
    fn cron_field_without_values_is_rejected_at_once() {
        for cron in [
            "0 , 0 * * *",
            ", * * * *",
            "* , * * *",
            "* * , * *",
            "0 0 * , *",
        ] {
            let started = std::time::Instant::now();
            let e = err(Schedule::new("empty", "etl", cron));
            assert!(e.to_string().contains("never matches"), "{cron}: {e}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{cron}"
            );
        }
    }

    #[test]
    fn unknown_time_zone_is_named() {
        let e =
            err(Schedule::new("n", "etl", "0 2 * * *")
                .and_then(|s| s.with_timezone("Mars/Olympus")));
        assert_eq!(
            e,
            ScheduleError::UnknownTimeZone {
                schedule: "n".into(),
                timezone: "Mars/Olympus".into()
            }
        );
        assert!(e.to_string().contains("`Mars/Olympus`"));
        for ok in ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"] {
            let s = Schedule::new("n", "etl", "0 2 * * *")
                .unwrap()
                .with_timezone(ok)
                .unwrap();
            assert_eq!(s.timezone().name(), ok);
        }
    }

    #[test]
    fn names_must_be_identifiers() {
        for bad in ["", "Nightly", "1st", "-x", "a b", "a.b", &"a".repeat(65)] {
            assert_eq!(
                err(Schedule::new(bad, "etl", "* * * * *")),
                ScheduleError::InvalidName(bad.to_string())
            );
        }
        let e = err(Schedule::new("ok", "Bad Workflow", "* * * * *"));
        assert!(matches!(e, ScheduleError::InvalidWorkflow { .. }), "{e:?}");
        for ok in ["a", "nightly-etl_2", &"a".repeat(64)] {
            Schedule::new(ok, "etl", "* * * * *").unwrap();
        }
    }

    #[test]
    fn window_and_catch_up_and_input_are_checked() {
        let s = Schedule::new("n", "etl", "* * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let e = err(s.clone().with_window(Some(t), Some(t)));
        assert!(matches!(e, ScheduleError::InvalidWindow { .. }));
        assert!(e.to_string().contains("2026-01-01T00:00:00Z"), "{e}");
        s.clone().with_window(Some(t), None).unwrap();
        s.clone().with_window(None, Some(t)).unwrap();
        assert_eq!(
            err(s.clone().with_catch_up(CatchUp::All { max: 0 })),
            ScheduleError::ZeroCatchUpMax("n".into())
        );
        assert_eq!(
            err(s.clone().with_input(json!([1]))),
            ScheduleError::InputNotObject("n".into())
        );
        let s = s.with_input(json!({"region": "eu"})).unwrap();
        assert_eq!(s.input()["region"], "eu");
    }

    #[test]
    fn spec_from_toml_with_every_key() {
        let text = r#"
            [[schedules]]
            name = "nightly"
            cron = "30 2 * * *"
            timezone = "Europe/Berlin"
            input = { region = "eu", days = 3 }
            catch_up = "all"
            catch_up_max = 7
            overlap = "skip"
            start = "2026-01-01T00:00:00+01:00"
            end = 2027-01-01T00:00:00Z

            [[schedules]]
            name = "minutely"
            cron = "* * * * *"
        "#;
        let specs = specs(text).unwrap();
        let full = Schedule::from_spec(specs[0].clone(), "etl").unwrap();
        assert_eq!(full.workflow(), "etl");
        assert_eq!(full.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(
            Value::Object(full.input().clone()),
            json!({"region": "eu", "days": 3})
        );
        assert_eq!(full.catch_up(), CatchUp::All { max: 7 });
        assert_eq!(full.overlap(), Overlap::Skip);
        assert_eq!(
            full.start(),
            Some(Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap())
        );
        assert_eq!(
            full.end(),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );

        let min = Schedule::from_spec(specs[1].clone(), "etl").unwrap();
        assert_eq!(min, Schedule::new("minutely", "etl", "* * * * *").unwrap());

        // Round trip through to_spec.
        assert_eq!(Schedule::from_spec(full.to_spec(), "etl").unwrap(), full);
    }

    #[test]
    fn spec_rejects_unknown_keys_and_bad_values() {
        let e = specs("[[schedules]]\nname = \"n\"\ncron = \"* * * * *\"\nworkflow = \"x\"\n")
            .unwrap_err();
        assert!(e.contains("unknown field `workflow`"), "{e}");
        let e =
            specs("[[schedules]]\nname = \"n\"\ncron = \"* * * * *\"\ncatch_up = \"sometimes\"\n")
                .unwrap_err();
        assert!(e.contains("sometimes"), "{e}");
        let e =
            specs("[[schedules]]\nname = \"n\"\ncron = \"* * * * *\"\nstart = 5\n").unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
        let e = specs("[[schedules]]\nname = \"n\"\n").unwrap_err();
        assert!(e.contains("cron"), "{e}");

        let spec = |extra: &str| {
            let text = format!("[[schedules]]\nname = \"n\"\ncron = \"* * * * *\"\n{extra}\n");
            Schedule::from_spec(specs(&text).unwrap().remove(0), "etl")
        };
        assert!(matches!(
            err(spec("catch_up_max = 5")),
            ScheduleError::CatchUpMaxWithoutAll { .. }
        ));
        assert!(matches!(
            err(spec("catch_up = \"latest\"\ncatch_up_max = 5")),
            ScheduleError::CatchUpMaxWithoutAll { .. }
        ));
        assert_eq!(
            err(spec("catch_up = \"all\"\ncatch_up_max = 0")),
            ScheduleError::ZeroCatchUpMax("n".into())
        );
        assert_eq!(
            spec("catch_up = \"all\"").unwrap().catch_up(),
            CatchUp::All {
                max: DEFAULT_CATCH_UP_MAX
            }
        );
        assert_eq!(
            spec("catch_up = \"latest\"").unwrap().catch_up(),
            CatchUp::Latest
        );
        let e = err(spec("start = \"yesterday\""));
        assert!(
            matches!(&e, ScheduleError::InvalidInstant { field: "start", value, .. } if value == "yesterday"),
            "{e:?}"
        );
        let e = err(spec("end = 2026-01-01T00:00:00"));
        assert!(
            matches!(&e, ScheduleError::InvalidInstant { field: "end", .. }),
            "{e:?}"
        );
        let e = err(spec(
            "start = \"2026-02-01T00:00:00Z\"\nend = \"2026-01-01T00:00:00Z\"",
        ));
        assert!(matches!(e, ScheduleError::InvalidWindow { .. }));
        let e = err(spec("timezone = \"Berlin\""));
        assert!(matches!(e, ScheduleError::UnknownTimeZone { .. }));
    }

    #[test]
    fn from_toml_table_reads_a_workflow_files_entry() {
        let table: toml::Table = toml::from_str(
            "name = \"n\"\ncron = \"0 * * * *\"\nstart = 2026-01-01T00:00:00Z\noverlap = \"skip\"\n",
        )
        .unwrap();
        let s = Schedule::from_toml_table(table, "etl").unwrap();
        assert_eq!(s.overlap(), Overlap::Skip);
        assert_eq!(
            s.start(),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
        );
        let table: toml::Table =
            toml::from_str("name = \"n\"\ncron = \"0 * * * *\"\nwhen = 1\n").unwrap();
        let e = Schedule::from_toml_table(table, "etl").unwrap_err();
        assert!(
            matches!(&e, ScheduleError::Format(m) if m.contains("when")),
            "{e:?}"
        );
    }

    #[test]
    fn serde_round_trip_writes_defaults_and_revalidates() {
        let s = Schedule::new("n", "etl", "0 30 2 * * *")
            .unwrap()
            .with_timezone("America/New_York")
            .unwrap()
            .with_catch_up(CatchUp::Latest)
            .unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({"name": "n", "workflow": "etl", "cron": "0 30 2 * * *", "timezone": "America/New_York",
                   "input": {}, "catch_up": "latest", "overlap": "allow"})
        );
        let back: Schedule = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);

        let windowed = s
            .with_catch_up(CatchUp::All { max: 3 })
            .unwrap()
            .with_window(
                Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
                None,
            )
            .unwrap();
        let v = serde_json::to_value(&windowed).unwrap();
        assert_eq!(v["catch_up"], "all");
        assert_eq!(v["catch_up_max"], 3);
        assert_eq!(serde_json::from_value::<Schedule>(v).unwrap(), windowed);

        let bad = json!({"name": "n", "workflow": "etl", "cron": "bogus"});
        let e = serde_json::from_value::<Schedule>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid cron expression `bogus`"), "{e}");
        let minimal: Schedule =
            serde_json::from_value(json!({"name": "n", "workflow": "etl", "cron": "* * * * *"}))
                .unwrap();
        assert_eq!(minimal, Schedule::new("n", "etl", "* * * * *").unwrap());
    }

    #[test]
    fn policies_parse_and_display() {
        assert_eq!("skip".parse::<CatchUpKind>().unwrap(), CatchUpKind::Skip);
        assert_eq!("all".parse::<CatchUpKind>().unwrap(), CatchUpKind::All);
        assert!("ALL".parse::<CatchUpKind>().is_err());
        assert_eq!("skip".parse::<Overlap>().unwrap(), Overlap::Skip);
        let e = "never".parse::<Overlap>().unwrap_err().to_string();
        assert!(e.contains("`never`") && e.contains("`allow`"), "{e}");
        assert_eq!(CatchUp::All { max: 5 }.to_string(), "all (max 5)");
        assert_eq!(CatchUp::Latest.to_string(), "latest");
        assert_eq!(Overlap::Allow.to_string(), "allow");
        assert_eq!(
            CatchUp::from_parts("n", CatchUpKind::All, Some(9)).unwrap(),
            CatchUp::All { max: 9 }
        );
    }
}
