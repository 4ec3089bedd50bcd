//! The host's handling of a guest's output: `corral::sandbox::check_output`,
//! the function the sandbox runs on the string a task's `run` returns.
//!
//! Input: the first byte picks a shape, the next ones its size and the
//! limit, the rest is text (lossily UTF-8, as the guest's WIT `string`
//! always is):
//! - raw: the text itself;
//! - deep: the text nested in up to 2 MiB of `[` or `{"k":` openers (and, or
//!   not, closers), far past serde_json's recursion limit;
//! - wide: the text repeated as array items, up to ~4 MiB;
//! - long: one string value of up to ~4 MiB.
//!
//! Properties: nothing panics or overflows the stack; an output over the
//! limit is never accepted; an accepted output is exactly the JSON object
//! the text holds, at most 128 levels deep, and survives the store's round
//! trip (serialized to text, parsed back) unchanged; a rejected output
//! within the limit is indeed not a JSON object.
#![no_main]

use corral::sandbox::{Outcome, check_output};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MIB: usize = 1 << 20;

fn build(data: &[u8]) -> (String, usize) {
    let shape = data.first().copied().unwrap_or(0);
    // About 2^(0..=22) bytes: most inputs stay small (fast), some reach MiBs.
    let b = |i: usize| data.get(i).copied().unwrap_or(0) as usize;
    let size = ((1 << (b(1) % 23)) | b(2)).min(4 * MIB);
    let tail = String::from_utf8_lossy(data.get(4..).unwrap_or_default());
    let text = match shape % 4 {
        0 => tail.into_owned(),
        1 => {
            // Up to ~2 MiB of `[` or ~2.5 MiB of `{"k":`.
            let (open, close, depth) = if shape & 0x10 == 0 {
                ("[", "]", size.min(2 * MIB))
            } else {
                ("{\"k\":", "}", size.min(2 * MIB) / 5)
            };
            let closed = shape & 0x20 == 0;
            let mut s = String::with_capacity(depth * (open.len() + 1) + tail.len() + 8);
            s.push_str("{\"x\":");
            for _ in 0..depth {
                s.push_str(open);
            }
            s.push_str(if tail.is_empty() { "0" } else { &tail });
            if closed {
                for _ in 0..depth {
                    s.push_str(close);
                }
                s.push('}');
            }
            s
        }
        2 => {
            let item = if tail.is_empty() { "1" } else { &tail };
            let count = size / (item.len() + 1);
            let mut s = String::with_capacity(count * (item.len() + 1) + 16);
            s.push_str("{\"a\":[");
            for i in 0..count {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(item);
            }
            s.push_str("]}");
            s
        }
        _ => {
            let unit = if tail.is_empty() { "x" } else { &tail };
            let count = size / unit.len();
            format!("{{\"s\":\"{}\"}}", unit.repeat(count))
        }
    };
    let len = text.len();
    let max = match data.get(3).copied().unwrap_or(0) % 6 {
        0 => len.saturating_sub(1),
        1 => len,
        2 => len + 1,
        3 => MIB,
        4 => size,
        _ => usize::MAX,
    };
    (text, max)
}

/// Nesting depth of a value, without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

fuzz_target!(|data: &[u8]| {
    let (text, max) = build(data);
    for max in [max, MIB] {
        match check_output(&text, max) {
            Outcome::Succeeded { output } => {
                assert!(
                    text.len() <= max,
                    "{} bytes accepted under {max}",
                    text.len()
                );
                let parsed: Value = serde_json::from_str(&text).expect("accepted text parses");
                assert_eq!(parsed.as_object(), Some(&output));
                assert!(depth(&parsed) <= 128, "accepted {} levels", depth(&parsed));
                let stored = serde_json::to_string(&output).expect("output serializes");
                let back: serde_json::Map<String, Value> =
                    serde_json::from_str(&stored).expect("stored output parses back");
                assert_eq!(back, output);
            }
            Outcome::InvalidOutput { reason } => {
                if text.len() <= max {
                    let parsed = serde_json::from_str::<Value>(&text);
                    assert!(
                        !matches!(parsed, Ok(Value::Object(_))),
                        "an object within the limit rejected: {reason}"
                    );
                }
            }
            other => panic!("check_output gave {other:?}"),
        }
    }
});
