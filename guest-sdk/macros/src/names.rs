//! Rules for the names a plugin declares: those of `corral-names`, which
//! the host applies too, with compile-time error messages.

/// Task and plugin names (see [`corral_names::is_name`]).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if corral_names::is_name(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter, at most {} bytes",
            corral_names::MAX_LEN
        ))
    }
}

/// A semver version (see [`corral_names::is_version`]).
pub fn check_version(version: &str) -> Result<(), String> {
    if corral_names::is_version(version) {
        Ok(())
    } else {
        Err(format!(
            "invalid version `{version}`: expected semver such as \"0.1.0\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("task", "stack_overflow").is_ok());
        assert!(check_name("task", "fetch-rates2").is_ok());
        for bad in ["", "Greet", "_x", "a b", "é", "2etl"] {
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
