//! Exact decimal amounts, in cents.

use std::fmt;

use corral_guest::TaskError;
use corral_guest::serde_json::{Number, Value};

/// An amount of money in hundredths.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cents(i64);

impl Cents {
    /// Parses `12`, `12.5`, `-3.99`: at most two decimals.
    pub fn parse(text: &str) -> Result<Self, TaskError> {
        let invalid =
            || TaskError::permanent(format!("invalid amount `{text}`: expected e.g. 12.50"));
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction))
            .ok_or_else(invalid)?;
        Ok(Self(if negative { -cents } else { cents }))
    }

    /// The sum, or a permanent error on overflow.
    pub fn checked_add(self, other: Self) -> Result<Self, TaskError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or_else(|| TaskError::permanent("amount overflow"))
    }

    /// As a JSON number with up to two decimals (`12.5`, `40`).
    pub fn to_json(self) -> Value {
        let value = self.0 as f64 / 100.0;
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimals() {
        assert_eq!(Cents::parse("12.5").unwrap(), Cents(1250));
        assert_eq!(Cents::parse("-3.99").unwrap(), Cents(-399));
        assert_eq!(Cents::parse("40").unwrap(), Cents(4000));
        for bad in ["", "1.234", "abc", "1,5", ".5"] {
            assert!(Cents::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Cents(-399).to_string(), "-3.99");
    }
}
