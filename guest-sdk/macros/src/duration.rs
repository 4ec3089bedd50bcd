//! Durations written as text in `#[task(timeout = "...")]`.

/// Parses `500ms`, `30s`, `5m`, `1h` or a sum of such parts (`1m30s`) into
/// milliseconds. Zero and overflowing durations are rejected.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let hint = "expected a number followed by a unit (ms, s, m, h), e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\"";
    let invalid = || format!("invalid duration `{text}`: {hint}");
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let factor = match &rest[..letters] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(invalid()),
        };
        rest = &rest[letters..];
        total = number
            .checked_mul(factor)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    if total == 0 {
        return Err(format!(
            "duration `{text}` is zero; a timeout must be positive"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "30",
            "s",
            "soon",
            "1.5s",
            "30 s",
            "5d",
            "-1s",
            "0s",
            "99999999999999999999h",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
