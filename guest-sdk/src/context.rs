//! [`Context`]: a task's typed view of its input and the output it builds.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::TaskError;

/// What a task reads and writes.
///
/// A task's **input** is a JSON object: the execution's input merged with the
/// outputs of the step's upstream steps. A task's **output** is a separate
/// JSON object that starts empty and holds exactly what the task
/// [`set`](Context::set) — input keys are *not* copied to the output.
///
/// Reads ([`get`](Context::get), [`get_opt`](Context::get_opt),
/// [`value`](Context::value), [`contains`](Context::contains)) look at the
/// output first, then at the input, so a task sees the values it already set.
///
/// ```
/// use corral_guest::Context;
/// use corral_guest::serde_json::json;
///
/// let mut ctx = Context::from_value(json!({ "name": "Ada", "count": 2 })).unwrap();
/// let name: String = ctx.get("name").unwrap();
/// ctx.set("greeting", format!("hello, {name}")).unwrap();
///
/// let err = ctx.get::<String>("count").unwrap_err();
/// assert_eq!(err.message(), "input `count` is not a string: got integer `2`");
/// assert_eq!(ctx.get::<String>("nope").unwrap_err().message(), "missing input `nope`");
///
/// assert_eq!(ctx.into_output(), json!({ "greeting": "hello, Ada" }).as_object().unwrap().clone());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    input: Map<String, Value>,
    output: Map<String, Value>,
}

impl Context {
    /// A context over `input`, with an empty output. Handy to unit-test a task
    /// function natively.
    pub fn new(input: Map<String, Value>) -> Self {
        Self {
            input,
            output: Map::new(),
        }
    }

    /// A context over `input`, which must be a JSON object; any other value is
    /// a permanent error.
    pub fn from_value(input: Value) -> Result<Self, TaskError> {
        match input {
            Value::Object(map) => Ok(Self::new(map)),
            other => Err(TaskError::permanent(format!(
                "task input must be a JSON object, got {}",
                kind_of(&other)
            ))),
        }
    }

    /// A context over `input`, JSON text that must hold an object; anything
    /// else is a permanent error.
    pub fn from_json(input: &str) -> Result<Self, TaskError> {
        let value: Value = serde_json::from_str(input)
            .map_err(|err| TaskError::permanent(format!("task input is not valid JSON: {err}")))?;
        Self::from_value(value)
    }

    /// The value of `key` deserialised as `T`.
    ///
    /// Fails with a permanent error if the key is missing (``missing input `key` ``)
    /// or holds a value of the wrong shape
    /// (``input `key` is not a string: got integer `42` ``).
    /// A JSON `null` counts as present: use [`get_opt`](Context::get_opt) for
    /// optional inputs.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, TaskError> {
        let value = self
            .value(key)
            .ok_or_else(|| TaskError::permanent(format!("missing input `{key}`")))?;
        decode(key, value)
    }

    /// The value of `key` deserialised as `T`, or `None` if the key is missing
    /// or `null`. A value of the wrong shape is a permanent error.
    pub fn get_opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TaskError> {
        match self.value(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => decode(key, value).map(Some),
        }
    }

    /// The value of `key` deserialised as `T`, or `default` if the key is
    /// missing or `null`. A value of the wrong shape is a permanent error.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, TaskError> {
        Ok(self.get_opt(key)?.unwrap_or(default))
    }

    /// The raw JSON value of `key`: the one this task set, else the input's.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.output.get(key).or_else(|| self.input.get(key))
    }

    /// Whether `key` was set by this task or is present in the input.
    pub fn contains(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// Sets output `key` to `value` serialised as JSON, replacing what this
    /// task set before under that key. Fails (permanently) only if `value`
    /// cannot be represented as JSON (e.g. a map with non-string keys).
    pub fn set(&mut self, key: impl Into<String>, value: impl Serialize) -> Result<(), TaskError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|err| {
            TaskError::permanent(format!("output `{key}` cannot be encoded as JSON: {err}"))
        })?;
        self.output.insert(key, value);
        Ok(())
    }

    /// Sets output `key` to an already-built JSON value, without copying it.
    pub fn set_value(&mut self, key: impl Into<String>, value: Value) {
        self.output.insert(key.into(), value);
    }

    /// The whole input object, as the host passed it.
    pub fn input(&self) -> &Map<String, Value> {
        &self.input
    }

    /// What this task set so far: the output the host will receive.
    pub fn output(&self) -> &Map<String, Value> {
        &self.output
    }

    /// Consumes the context, returning the output object.
    pub fn into_output(self) -> Map<String, Value> {
        self.output
    }
}

/// Deserialises input `key` as `T`, phrasing a mismatch for a task author.
fn decode<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, TaskError> {
    T::deserialize(value).map_err(|err| {
        let err = err.to_string();
        // serde phrases type mismatches as "invalid type: <found>, expected <what>".
        let message = match err
            .strip_prefix("invalid type: ")
            .and_then(|rest| rest.split_once(", expected "))
        {
            Some((found, expected)) => format!("input `{key}` is not {expected}: got {found}"),
            None => format!("input `{key}` is invalid: {err}"),
        };
        TaskError::permanent(message)
    })
}

/// A JSON value's kind, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(input: Value) -> Context {
        Context::from_value(input).unwrap()
    }

    #[test]
    fn output_holds_only_what_was_set() {
        let mut c = ctx(json!({"a": 1}));
        c.set("b", 2).unwrap();
        assert_eq!(c.get::<i32>("a").unwrap(), 1);
        assert_eq!(c.get::<i32>("b").unwrap(), 2);
        assert_eq!(Value::Object(c.into_output()), json!({"b": 2}));
    }

    #[test]
    fn set_values_shadow_input() {
        let mut c = ctx(json!({"a": 1}));
        c.set("a", "one").unwrap();
        assert_eq!(c.get::<String>("a").unwrap(), "one");
        assert_eq!(c.input()["a"], json!(1));
    }

    #[test]
    fn errors_name_the_key() {
        let c = ctx(json!({"n": "x", "list": [1, "b"], "nothing": null}));
        assert_eq!(
            c.get::<u32>("n").unwrap_err().message(),
            "input `n` is not u32: got string \"x\""
        );
        assert_eq!(
            c.get::<Vec<u32>>("list").unwrap_err().message(),
            "input `list` is not u32: got string \"b\""
        );
        assert_eq!(
            c.get::<String>("missing").unwrap_err().message(),
            "missing input `missing`"
        );
        assert!(!c.get::<String>("missing").unwrap_err().is_retryable());
        assert_eq!(c.get_opt::<String>("nothing").unwrap(), None);
        assert_eq!(c.get_opt::<String>("missing").unwrap(), None);
        assert_eq!(c.get_or("missing", 5u8).unwrap(), 5);
        assert!(c.get_opt::<u32>("n").is_err());
    }

    #[test]
    fn input_must_be_an_object() {
        assert_eq!(
            Context::from_json("[1]").unwrap_err().message(),
            "task input must be a JSON object, got an array"
        );
        assert!(
            Context::from_json("{")
                .unwrap_err()
                .message()
                .starts_with("task input is not valid JSON")
        );
    }
}
