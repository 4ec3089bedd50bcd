//! Rules for the names a plugin declares.

/// Task and plugin names: lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter or digit.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
        ))
    }
}

/// A semver version: `MAJOR.MINOR.PATCH`, optionally `-pre` and `+build`.
pub fn check_version(version: &str) -> Result<(), String> {
    let invalid = || format!("invalid version `{version}`: expected semver such as \"0.1.0\"");
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |part: &&str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit())
            && (part.len() == 1 || !part.starts_with('0'))
    };
    if numbers.len() != 3 || !numbers.iter().all(numeric) {
        return Err(invalid());
    }
    let identifiers = |text: &str| {
        text.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    if pre.is_some_and(|pre| !identifiers(pre)) || build.is_some_and(|build| !identifiers(build)) {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("task", "stack_overflow").is_ok());
        assert!(check_name("task", "fetch-rates2").is_ok());
        for bad in ["", "Greet", "_x", "a b", "é"] {
            assert!(check_name("task", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        for good in [
            "0.1.0",
            "1.22.333",
            "1.0.0-alpha.1",
            "1.0.0+build.5",
            "1.0.0-rc-1+x",
        ] {
            assert!(check_version(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", "1", "1.0", "01.0.0", "1.0.0-", "1.0.0+", "v1.0.0", "1.0.0.0",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }
}
