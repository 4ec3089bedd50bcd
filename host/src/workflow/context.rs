//! How a step's input is assembled.
//!
//! A step's input is one JSON object, merged from three layers. Keys are
//! merged at the top level only, and a later layer replaces a key's whole
//! value (objects are not merged recursively, so a step never sees half of
//! one producer's object and half of another's):
//!
//! | order | layer | notes |
//! |---|---|---|
//! | 1 (lowest) | the execution's input | what `corral run --input` was given |
//! | 2 | each **direct** upstream step's output, in [`topological order`](super::Workflow::topological_order) (ties by step id) | only upstream steps that succeeded have an output |
//! | 3 (highest) | the step's static `input` | what the workflow file says for this step |
//!
//! So on a conflict: a later upstream output beats an earlier one and the
//! execution input, and the step's own static input beats everything —
//! what is written on the step is what the step gets.
//!
//! Outputs of steps further up (grandparents) are *not* merged: data flows
//! along edges, so a step that needs a grandparent's value depends on it or
//! gets it forwarded.

use serde_json::{Map, Value};

/// Merges the layers of a step's input (see the module docs).
/// `upstream_outputs` must be in the order to apply them: the outputs of the
/// step's direct upstream steps in topological order, as
/// [`Workflow::step_input`](super::Workflow::step_input) passes them.
pub fn step_input(
    execution_input: &Map<String, Value>,
    static_input: &Map<String, Value>,
    upstream_outputs: &[(&str, &Map<String, Value>)],
) -> Map<String, Value> {
    let mut input = execution_input.clone();
    let layers = upstream_outputs
        .iter()
        .map(|(_, output)| *output)
        .chain([static_input]);
    for layer in layers {
        for (key, value) in layer {
            input.insert(key.clone(), value.clone());
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn later_layers_win() {
        let exec = obj(json!({"a": "exec", "b": "exec", "c": "exec", "d": "exec"}));
        let first = obj(json!({"b": "first", "c": "first"}));
        let second = obj(json!({"c": "second", "e": "second"}));
        let stat = obj(json!({"d": "static", "e": "static"}));
        let input = step_input(&exec, &stat, &[("first", &first), ("second", &second)]);
        assert_eq!(
            Value::Object(input),
            json!({"a": "exec", "b": "first", "c": "second", "d": "static", "e": "static"})
        );
    }

    #[test]
    fn objects_are_replaced_not_merged() {
        let exec = obj(json!({"cfg": {"x": 1, "y": 1}}));
        let up = obj(json!({"cfg": {"x": 2}}));
        let input = step_input(&exec, &Map::new(), &[("up", &up)]);
        assert_eq!(Value::Object(input), json!({"cfg": {"x": 2}}));
    }

    #[test]
    fn empty_layers() {
        assert!(step_input(&Map::new(), &Map::new(), &[]).is_empty());
    }
}
