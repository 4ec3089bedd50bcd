//! The workflow document: the TOML file format (see the [module
//! docs](super) for a full description) and, with the same fields, the JSON
//! form in which workflows are stored.
//!
//! Parsing is two-stage on purpose: serde checks the shape (unknown keys,
//! types) and reports TOML line and column; converting the document then
//! parses durations and sizes and reports errors by step, before the one
//! [`validate`](super::validate) gate.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::defaults::Defaults;
use super::error::{DEFAULTS_SCOPE, WorkflowError, step_scope};
use super::model::{Step, Workflow, resolve_grants};
use super::retry::{Backoff, RetryPolicy};
use super::trigger::{Condition, ConditionOp, TriggerRule};
use super::validate::validate;
use crate::sandbox::{DirGrant, Grants};

/// Where a document comes from, which decides what it may contain.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    /// An operator's file or text; relative host paths resolve against the
    /// directory, if there is one.
    Operator(Option<&'a Path>),
    /// A plugin's `describe`: no grants, no memory.
    Plugin,
    /// The database: the recorded version must match the content.
    Stored,
}

/// A whole workflow document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Document {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    defaults: Option<DefaultsDoc>,
    #[serde(default)]
    steps: Vec<StepDoc>,
    /// `[[schedules]]`: not part of the workflow (nor of its version); read
    /// separately by [`crate::schedule`] and stored as schedules.
    #[serde(default, skip_serializing)]
    schedules: Vec<::toml::Table>,
}

/// `[defaults]`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grants: Option<GrantsDoc>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDoc {
    id: String,
    task: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trigger: Option<TriggerRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<ConditionDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grants: Option<GrantsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<Map<String, Value>>,
}

/// `retry = { ... }`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backoff: Option<BackoffKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BackoffKind {
    Fixed,
    Exponential,
}

/// `condition = { key = "...", <one test> }`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDoc {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    // `deserialize_with` keeps a JSON `null` as a value to compare with
    // instead of "no test given".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    equals: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    not_equals: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `grants = { dirs = [...], env = {...} }`. Our own strict copy of
/// `Grants`' shape: a typo such as `writeable` must be an error, not a
/// silently read-only directory.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dirs: Vec<DirDoc>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirDoc {
    host: PathBuf,
    guest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    writable: bool,
    /// Disk quota, writable grants only: a size string or bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_bytes: Option<MemoryDoc>,
    /// Entries the attempt may create, writable grants only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_files: Option<u64>,
}

/// A size (`memory`, `max_bytes`): `"128MiB"` (any unit `bytesize` knows)
/// or a number of bytes.
#[derive(Debug)]
struct MemoryDoc(String);

impl Serialize for MemoryDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MemoryDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Size;
        impl Visitor<'_> for Size {
            type Value = MemoryDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"128MiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MemoryDoc, E> {
                Ok(MemoryDoc(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MemoryDoc, E> {
                Ok(MemoryDoc(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MemoryDoc, E> {
                Ok(MemoryDoc(v.to_string()))
            }
        }
        d.deserialize_any(Size)
    }
}

/// `bytes` in the largest binary unit that divides it exactly, so the text
/// reads well and parses back to the same number.
pub(super) fn format_memory(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(size, _)| bytes != 0 && bytes.is_multiple_of(*size))
        .map_or_else(
            || bytes.to_string(),
            |(size, unit)| format!("{}{unit}", bytes / size),
        )
}

fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl Document {
    /// The document form of a validated workflow: steps in id order, every
    /// setting spelled out in one canonical way (the content hash is taken
    /// over this form).
    pub(super) fn from_workflow(workflow: &Workflow, with_version: bool) -> Self {
        let defaults = &workflow.defaults;
        Document {
            name: workflow.name.clone(),
            version: with_version.then(|| workflow.version.clone()),
            description: workflow.description.clone(),
            defaults: (!defaults.is_empty()).then(|| DefaultsDoc {
                retry: defaults.retry.as_ref().map(retry_doc),
                timeout: defaults.timeout.map(format_duration),
                memory: defaults.memory.map(|m| MemoryDoc(format_memory(m))),
                grants: grants_doc(&defaults.grants),
            }),
            steps: workflow.steps.iter().map(step_doc).collect(),
            schedules: Vec::new(),
        }
    }

    /// Converts and validates.
    pub(super) fn into_workflow(self, origin: Origin<'_>) -> Result<Workflow, WorkflowError> {
        let stored_version = match (origin, self.version) {
            (Origin::Stored, version) => version,
            (_, Some(_)) => return Err(WorkflowError::VersionGiven),
            (_, None) => None,
        };
        let defaults = match self.defaults {
            Some(doc) => defaults_from(doc, origin)?,
            None => Defaults::default(),
        };
        let steps = self
            .steps
            .into_iter()
            .map(|doc| step_from(doc, origin))
            .collect::<Result<Vec<_>, _>>()?;
        let workflow = validate(self.name, self.description, defaults, steps)?;
        match stored_version {
            Some(stored) if stored != workflow.version => Err(WorkflowError::VersionMismatch {
                name: workflow.name.clone(),
                stored,
                computed: workflow.version.clone(),
            }),
            _ => Ok(workflow),
        }
    }
}

fn step_doc(step: &Step) -> StepDoc {
    StepDoc {
        id: step.id.clone(),
        task: step.task.to_string(),
        depends_on: step.depends_on.clone(),
        trigger: (step.trigger != TriggerRule::default()).then_some(step.trigger),
        condition: step.condition.as_ref().map(|c| {
            let mut doc = ConditionDoc {
                key: c.key.clone(),
                exists: None,
                equals: None,
                not_equals: None,
            };
            match &c.op {
                ConditionOp::Exists => doc.exists = Some(true),
                ConditionOp::Missing => doc.exists = Some(false),
                ConditionOp::Equals(v) => doc.equals = Some(v.clone()),
                ConditionOp::NotEquals(v) => doc.not_equals = Some(v.clone()),
            }
            doc
        }),
        retry: step.retry.as_ref().map(retry_doc),
        timeout: step.timeout.map(format_duration),
        memory: step.memory.map(|m| MemoryDoc(format_memory(m))),
        grants: grants_doc(&step.grants),
        input: (!step.input.is_empty()).then(|| step.input.clone()),
    }
}

fn retry_doc(policy: &RetryPolicy) -> RetryDoc {
    let mut doc = RetryDoc {
        max_attempts: Some(policy.max_attempts),
        jitter: Some(policy.jitter),
        ..RetryDoc::default()
    };
    match policy.backoff {
        Backoff::Fixed(delay) => {
            doc.backoff = Some(BackoffKind::Fixed);
            doc.delay = Some(format_duration(delay));
        }
        Backoff::Exponential {
            initial,
            max,
            factor,
        } => {
            doc.backoff = Some(BackoffKind::Exponential);
            doc.initial = Some(format_duration(initial));
            doc.max = Some(format_duration(max));
            doc.factor = Some(factor);
        }
    }
    doc
}

fn grants_doc(grants: &Grants) -> Option<GrantsDoc> {
    (*grants != Grants::default()).then(|| GrantsDoc {
        dirs: grants
            .dirs
            .iter()
            .map(|d| DirDoc {
                host: d.host.clone(),
                guest: d.guest.clone(),
                writable: d.writable,
                max_bytes: d.max_bytes.map(|b| MemoryDoc(format_memory(b))),
                max_files: d.max_files,
            })
            .collect(),
        env: grants.env.clone(),
    })
}

fn step_from(doc: StepDoc, origin: Origin<'_>) -> Result<Step, WorkflowError> {
    let scope = step_scope(&doc.id);
    let condition = doc
        .condition
        .map(|c| condition_from(&doc.id, c))
        .transpose()?;
    let mut step = Step::new(doc.id, doc.task);
    step.depends_on = doc.depends_on;
    step.trigger = doc.trigger.unwrap_or_default();
    step.condition = condition;
    step.retry = doc.retry.map(|r| retry_from(&scope, r)).transpose()?;
    step.timeout = doc
        .timeout
        .map(|t| duration(&scope, "timeout", &t))
        .transpose()?;
    step.memory = memory_from(&scope, doc.memory, origin)?;
    step.grants = grants_from(&scope, doc.grants, origin)?;
    step.input = doc.input.unwrap_or_default();
    step.input.values_mut().for_each(plain_dates);
    Ok(step)
}

/// The `toml` crate hands TOML dates and times to serde as a private
/// one-key object; a task should see the RFC 3339 string instead.
fn plain_dates(value: &mut Value) {
    const DATETIME_KEY: &str = "$__toml_private_datetime";
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(Value::String(text)) = map.get(DATETIME_KEY)
            {
                *value = Value::String(text.clone());
                return;
            }
            map.values_mut().for_each(plain_dates);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_dates),
        _ => {}
    }
}

fn defaults_from(doc: DefaultsDoc, origin: Origin<'_>) -> Result<Defaults, WorkflowError> {
    let scope = DEFAULTS_SCOPE;
    Ok(Defaults {
        retry: doc.retry.map(|r| retry_from(scope, r)).transpose()?,
        timeout: doc
            .timeout
            .map(|t| duration(scope, "timeout", &t))
            .transpose()?,
        memory: memory_from(scope, doc.memory, origin)?,
        grants: grants_from(scope, doc.grants, origin)?,
    })
}

fn duration(scope: &str, field: &'static str, text: &str) -> Result<Duration, WorkflowError> {
    humantime::parse_duration(text).map_err(|err| WorkflowError::InvalidDuration {
        scope: scope.to_owned(),
        field,
        value: text.to_owned(),
        reason: err.to_string(),
    })
}

fn memory_from(
    scope: &str,
    doc: Option<MemoryDoc>,
    origin: Origin<'_>,
) -> Result<Option<u64>, WorkflowError> {
    let Some(MemoryDoc(text)) = doc else {
        return Ok(None);
    };
    if matches!(origin, Origin::Plugin) {
        return Err(WorkflowError::PluginGrants {
            scope: scope.to_owned(),
            field: "memory",
        });
    }
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| Some(size.as_u64()))
        .map_err(|reason| WorkflowError::InvalidMemory {
            scope: scope.to_owned(),
            value: text,
            reason,
        })
}

fn grants_from(
    scope: &str,
    doc: Option<GrantsDoc>,
    origin: Origin<'_>,
) -> Result<Grants, WorkflowError> {
    let Some(doc) = doc else {
        return Ok(Grants::default());
    };
    if matches!(origin, Origin::Plugin) {
        return Err(WorkflowError::PluginGrants {
            scope: scope.to_owned(),
            field: "grants",
        });
    }
    let dirs = doc
        .dirs
        .into_iter()
        .map(|d| {
            let max_bytes = d
                .max_bytes
                .map(|MemoryDoc(text)| {
                    crate::sandbox::parse_size(&text).map_err(|reason| {
                        WorkflowError::InvalidGrant {
                            scope: scope.to_owned(),
                            reason: format!(
                                "invalid max_bytes `{text}` for `{}`: {reason}",
                                d.guest
                            ),
                        }
                    })
                })
                .transpose()?;
            Ok(DirGrant {
                host: d.host,
                guest: d.guest,
                writable: d.writable,
                max_bytes,
                max_files: d.max_files,
            })
        })
        .collect::<Result<Vec<_>, WorkflowError>>()?;
    let mut grants = Grants { dirs, env: doc.env };
    if let Origin::Operator(Some(base)) = origin {
        resolve_grants(&mut grants, base);
    }
    Ok(grants)
}

fn retry_from(scope: &str, doc: RetryDoc) -> Result<RetryPolicy, WorkflowError> {
    let bad = |reason: &str| WorkflowError::InvalidRetry {
        scope: scope.to_owned(),
        reason: reason.to_owned(),
    };
    let kind = doc.backoff.unwrap_or(if doc.delay.is_some() {
        BackoffKind::Fixed
    } else {
        BackoffKind::Exponential
    });
    let backoff = match kind {
        BackoffKind::Fixed => {
            if doc.initial.is_some() || doc.max.is_some() || doc.factor.is_some() {
                return Err(bad(
                    "`initial`, `max` and `factor` apply to backoff = \"exponential\"; fixed backoff takes `delay`",
                ));
            }
            Backoff::Fixed(match doc.delay {
                Some(text) => duration(scope, "retry.delay", &text)?,
                None => Duration::from_secs(1),
            })
        }
        BackoffKind::Exponential => {
            if doc.delay.is_some() {
                return Err(bad(
                    "`delay` applies to backoff = \"fixed\"; exponential backoff takes `initial`, `max` and `factor`",
                ));
            }
            let Backoff::Exponential {
                initial,
                max,
                factor,
            } = RetryPolicy::DEFAULT_BACKOFF
            else {
                return Err(bad("internal: the default backoff is not exponential"));
            };
            Backoff::Exponential {
                initial: match doc.initial {
                    Some(text) => duration(scope, "retry.initial", &text)?,
                    None => initial,
                },
                max: match doc.max {
                    Some(text) => duration(scope, "retry.max", &text)?,
                    None => max,
                },
                factor: doc.factor.unwrap_or(factor),
            }
        }
    };
    Ok(RetryPolicy {
        max_attempts: doc.max_attempts.unwrap_or(3),
        backoff,
        jitter: doc.jitter.unwrap_or(0.0),
    })
}

fn condition_from(step: &str, doc: ConditionDoc) -> Result<Condition, WorkflowError> {
    let op = match (doc.exists, doc.equals, doc.not_equals) {
        (Some(true), None, None) => ConditionOp::Exists,
        (Some(false), None, None) => ConditionOp::Missing,
        (None, Some(v), None) => ConditionOp::Equals(v),
        (None, None, Some(v)) => ConditionOp::NotEquals(v),
        _ => {
            return Err(WorkflowError::InvalidCondition {
                step: step.to_owned(),
                reason: "give `key` and exactly one of `exists`, `equals`, `not_equals`".to_owned(),
            });
        }
    };
    Ok(Condition { key: doc.key, op })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

fn parse_document(text: &str) -> Result<Document, WorkflowError> {
    ::toml::from_str(text).map_err(|err: ::toml::de::Error| {
        let (line, column) = line_column(text, err.span().map_or(0, |s| s.start));
        WorkflowError::Toml {
            line,
            column,
            message: err.message().trim_end().to_owned(),
        }
    })
}

impl Workflow {
    /// Parses and validates an operator's workflow text. Relative host paths
    /// in grants are resolved against `base_dir` (made absolute against the
    /// current directory if it is relative); with `None` they are an error.
    pub fn from_toml(text: &str, base_dir: Option<&Path>) -> Result<Self, WorkflowError> {
        Self::from_toml_with_schedules(text, base_dir).map(|(workflow, _)| workflow)
    }

    /// Reads, parses and validates a workflow file; relative host paths are
    /// resolved against the file's directory.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, WorkflowError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorkflowError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        Self::from_toml(&text, Some(dir.unwrap_or(Path::new("."))))
    }

    /// Like [`Workflow::from_toml`], and also returns the file's
    /// `[[schedules]]` tables, unparsed (see [`crate::schedule`]).
    pub fn from_toml_with_schedules(
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<(Self, Vec<::toml::Table>), WorkflowError> {
        let mut document = parse_document(text)?;
        let schedules = std::mem::take(&mut document.schedules);
        let base = base_dir
            .map(|dir| {
                std::path::absolute(dir).map_err(|source| WorkflowError::Read {
                    path: dir.to_owned(),
                    source,
                })
            })
            .transpose()?;
        Ok((
            document.into_workflow(Origin::Operator(base.as_deref()))?,
            schedules,
        ))
    }

    /// Parses and validates a workflow that a plugin ships (its `describe`).
    /// Same format, except that `grants` and `memory` are rejected anywhere:
    /// capabilities are the operator's to give, never the plugin's. Timeouts
    /// and retries are allowed, as a task's `describe` may suggest them too.
    pub fn from_plugin_toml(text: &str) -> Result<Self, WorkflowError> {
        parse_document(text)?.into_workflow(Origin::Plugin)
    }

    /// The workflow as TOML in the documented format, steps in topological
    /// order, every setting explicit. Reading it back gives an equal
    /// workflow with the same version. Fails for values TOML cannot express
    /// (a JSON `null` in an input or condition).
    pub fn to_toml(&self) -> Result<String, WorkflowError> {
        let mut document = Document::from_workflow(self, false);
        let rank: std::collections::HashMap<&str, usize> = self
            .graph
            .order
            .iter()
            .enumerate()
            .map(|(position, &i)| (self.steps[i].id.as_str(), position))
            .collect();
        document
            .steps
            .sort_by_key(|s| rank.get(s.id.as_str()).copied().unwrap_or(usize::MAX));
        let body = ::toml::to_string(&document).map_err(|err| WorkflowError::Serialize {
            name: self.name.clone(),
            reason: err.to_string(),
        })?;
        Ok(format!(
            "# version {} (computed from the content)\n{body}",
            self.version
        ))
    }
}

impl Workflow {
    /// The stored form: the document's fields as JSON (keys sorted), plus
    /// the computed `version`. Same as serializing with serde.
    pub fn to_stored(&self) -> Value {
        self.stored.clone()
    }

    /// Reads a stored workflow back: re-validated (structure, not tasks),
    /// and rejected if its recorded `version` no longer matches its content.
    ///
    /// A stored definition may carry a top-level `"format": N`; none means
    /// format 1, the only one this host writes and reads. A host that adds
    /// a field older hosts would refuse writes the definitions that use it
    /// with a higher format, and an older host meets them as
    /// [`WorkflowError::NewerFormat`]: then it leaves the work to hosts that
    /// can read it, rather than failing the execution (rolling upgrades).
    pub fn from_stored(value: Value) -> Result<Self, WorkflowError> {
        let value = match value {
            Value::Object(mut fields) => {
                if let Some(format) = fields.remove(FORMAT_KEY) {
                    check_format(&format)?;
                }
                Value::Object(fields)
            }
            other => other,
        };
        Document::deserialize(value)
            .map_err(|err| WorkflowError::Stored(err.to_string()))?
            .into_workflow(Origin::Stored)
    }
}

/// The key of a stored definition's format number.
const FORMAT_KEY: &str = "format";

/// The newest stored workflow format this host reads (see
/// [`Workflow::from_stored`]).
pub const STORED_FORMAT: u64 = 1;

fn check_format(format: &Value) -> Result<(), WorkflowError> {
    match format.as_u64() {
        Some(1..=STORED_FORMAT) => Ok(()),
        Some(found) if found > STORED_FORMAT => Err(WorkflowError::NewerFormat {
            found,
            supported: STORED_FORMAT,
        }),
        _ => Err(WorkflowError::Stored(format!(
            "`format` must be a whole number from 1, not {format}"
        ))),
    }
}

/// The stored form, see [`Workflow::to_stored`].
impl Serialize for Workflow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.stored.serialize(s)
    }
}

/// Re-validates (structure, not tasks) and checks that the recorded
/// `version`, if any, still matches the content: a stored row is trusted no
/// more than a file.
impl<'de> Deserialize<'de> for Workflow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Workflow::from_stored(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
