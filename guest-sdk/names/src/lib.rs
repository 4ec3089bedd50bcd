//! The rules for the names and versions a Corral plugin declares, in one
//! place: the host checks them when it loads a plugin and when it reads a
//! workflow, and the guest SDK's macros check them at compile time, so a
//! plugin that compiles is never refused by the host for its names.
#![no_std]

/// Longest plugin name, task name or version, in bytes.
pub const MAX_LEN: usize = 64;

/// A plugin or task name: lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter, at most [`MAX_LEN`] bytes.
///
/// ```
/// assert!(corral_names::is_name("fetch-rates_2"));
/// assert!(!corral_names::is_name("2etl"));
/// assert!(!corral_names::is_name("Etl"));
/// ```
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= MAX_LEN
}

/// A plugin version: semver `MAJOR.MINOR.PATCH` (no leading zeros),
/// optionally `-pre` and `+build` of dot-separated ASCII alphanumerics and
/// `-`, at most [`MAX_LEN`] bytes.
///
/// ```
/// assert!(corral_names::is_version("1.0.0-rc.1+build.5"));
/// assert!(!corral_names::is_version("1.0"));
/// assert!(!corral_names::is_version("01.0.0"));
/// ```
pub fn is_version(version: &str) -> bool {
    if version.len() > MAX_LEN {
        return false;
    }
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit())
            && (part.len() == 1 || !part.starts_with('0'))
    };
    let identifiers = |text: &str| {
        text.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    core.split('.').count() == 3
        && core.split('.').all(numeric)
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["stack_overflow", "fetch-rates2", "a", "x-_9"] {
            assert!(is_name(good), "{good:?}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "Greet", "_x", "-x", "2etl", "a b", "é", "a/b", &long] {
            assert!(!is_name(bad), "{bad:?}");
        }
        assert!(is_name(&long[..MAX_LEN]));
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
            assert!(is_version(good), "{good:?}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0+",
            "v1.0.0",
            "1.0.0.0",
            "1.0.0-a..b",
            "a.b.c",
        ] {
            assert!(!is_version(bad), "{bad:?}");
        }
    }
}
