//! Just enough CSV (RFC 4180) for the example: a header line, quoted fields
//! with `""` escapes, no newlines inside fields.

use corral_guest::TaskError;
use corral_guest::serde_json::{Map, Value};

/// The records of `text` as objects keyed by the header's column names.
pub fn parse(text: &str) -> Result<Vec<Map<String, Value>>, TaskError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| TaskError::permanent("the CSV file is empty"))?;
    let columns = split(header, 1)?;
    lines
        .map(|(index, line)| {
            let fields = split(line, index + 1)?;
            if fields.len() != columns.len() {
                return Err(TaskError::permanent(format!(
                    "CSV line {}: {} fields, the header has {}",
                    index + 1,
                    fields.len(),
                    columns.len()
                )));
            }
            Ok(columns
                .iter()
                .cloned()
                .zip(fields.into_iter().map(Value::String))
                .collect())
        })
        .collect()
}

/// Splits one line into fields.
fn split(line: &str, number: usize) -> Result<Vec<String>, TaskError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(TaskError::permanent(format!(
            "CSV line {number}: unterminated quote"
        )));
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split(r#"a,"b, c","say ""hi""",,"#, 1).unwrap(),
            ["a", "b, c", "say \"hi\"", "", ""]
        );
        assert!(split(r#"a,"b"#, 1).is_err());
    }
}
