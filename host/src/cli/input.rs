//! The input of `invoke`, `run` and `schedule add`: a JSON object given
//! inline, in a file, or on stdin.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// The JSON object in `inline` (`--input`) or in the file `file`
/// (`--input-file`; `-` is stdin); empty when neither is given.
pub(super) fn read_input(
    inline: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Map<String, Value>> {
    let (text, source) = match (inline, file) {
        (Some(text), _) => (text.to_owned(), "--input".to_owned()),
        (None, Some(path)) if path == Path::new("-") => (
            std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?,
            "stdin".into(),
        ),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, None) => return Ok(Map::new()),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("input from {source} must be a JSON object"),
        Err(e) => bail!("input from {source} is not valid JSON: {e}"),
    }
}
