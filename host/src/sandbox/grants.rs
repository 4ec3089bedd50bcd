//! What an attempt may touch and how much it may use, set by the operator.
//!
//! Nothing is inherited from the host process: no environment variable, no
//! directory, no socket. A guest sees exactly what its [`Grants`] list.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::GrantError;

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it: an absolute guest path such as `/data`.
    pub guest: String,
    /// Whether the guest may create and write files in it. Read-only unless
    /// said otherwise.
    #[serde(default)]
    pub writable: bool,
}

impl DirGrant {
    /// A read-only grant of `host` at `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            writable: false,
        }
    }

    /// A writable grant of `host` at `guest`.
    pub fn writable(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            writable: true,
        }
    }

    /// Checks that the guest path is absolute and clean and that the host
    /// path is an existing directory.
    pub fn validate(&self) -> Result<(), GrantError> {
        let guest_ok = self.guest.starts_with('/')
            && !self
                .guest
                .split('/')
                .any(|part| part == ".." || part == ".");
        if !guest_ok {
            return Err(GrantError::GuestPath(self.guest.clone()));
        }
        if !self.host.is_dir() {
            return Err(GrantError::HostDir(self.host.clone()));
        }
        Ok(())
    }
}

/// Parses `HOST:GUEST[:rw|:ro]`, e.g. `./data:/data` or `/tmp/out:/out:rw`.
impl FromStr for DirGrant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GrantError::DirSyntax(s.to_owned());
        let (rest, writable) = match s.rsplit_once(':') {
            Some((rest, "rw")) => (rest, true),
            Some((rest, "ro")) => (rest, false),
            _ => (s, false),
        };
        let (host, guest) = rest.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || guest.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: host.into(),
            guest: guest.into(),
            writable,
        })
    }
}

/// `HOST:GUEST:rw` or `HOST:GUEST:ro`: the suffix is always written, so the
/// text parses back to an equal grant even when the guest path itself reads
/// `rw` or `ro`. (A guest path containing `:`, which parsing never produces,
/// does not round-trip.)
impl fmt::Display for DirGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.writable { "rw" } else { "ro" };
        write!(f, "{}:{}:{mode}", self.host.display(), self.guest)
    }
}

/// The capabilities of one attempt's sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Preopened directories.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables, with explicit values.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Grants {
    /// Checks every directory grant (see [`DirGrant::validate`]), that no
    /// guest path is granted twice, and that every environment variable has
    /// a non-empty name without `=` or NUL and a value without NUL: the
    /// rules a workflow's grants are checked by, plus the existence of the
    /// host directories.
    pub fn validate(&self) -> Result<(), GrantError> {
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                return Err(GrantError::EnvVar(
                    format!("{name}={value}").escape_debug().to_string(),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for dir in &self.dirs {
            dir.validate()?;
            if !seen.insert(dir.guest.as_str()) {
                return Err(GrantError::DuplicateGuestPath(dir.guest.clone()));
            }
        }
        Ok(())
    }
}

/// Resource limits of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum linear memory of the guest, in bytes (default 64 MiB).
    pub memory_bytes: u64,
    /// Wall-clock timeout of the attempt, instantiation included (default 60 s).
    #[serde(with = "super::outcome::duration_ms")]
    pub timeout: Duration,
    /// Fuel budget; only honoured when the engine meters fuel (default none).
    pub fuel: Option<u64>,
    /// Largest accepted output JSON, in bytes (default 1 MiB).
    pub max_output_bytes: usize,
    /// Log lines kept per attempt (default 10,000); more are counted and dropped.
    pub max_log_lines: usize,
    /// Log bytes kept per attempt (default 1 MiB); more are counted and dropped.
    pub max_log_bytes: usize,
    /// Bytes of stdout and of stderr kept per attempt (default 256 KiB each).
    pub max_stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(60),
            fuel: None,
            max_output_bytes: 1 << 20,
            max_log_lines: 10_000,
            max_log_bytes: 1 << 20,
            max_stdio_bytes: 256 << 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dir_grants() {
        let g: DirGrant = "./data:/data".parse().unwrap();
        assert_eq!(g, DirGrant::read_only("./data", "/data"));
        let g: DirGrant = "/tmp/out:/out:rw".parse().unwrap();
        assert_eq!(g, DirGrant::writable("/tmp/out", "/out"));
        let g: DirGrant = "/tmp/x:/x:ro".parse().unwrap();
        assert!(!g.writable);
        assert!("nocolon".parse::<DirGrant>().is_err());
        assert!(":/data".parse::<DirGrant>().is_err());
    }

    #[test]
    fn dir_grants_display_as_they_parse() {
        for text in [
            "./data:/data",
            "/tmp/out:/out:rw",
            "a:rw:ro",
            "c:\\x:/y:rw",
            "h::/g",
        ] {
            let g: DirGrant = text.parse().unwrap();
            assert_eq!(g.to_string().parse::<DirGrant>().unwrap(), g, "{text}");
        }
        assert_eq!(DirGrant::read_only("d", "/d").to_string(), "d:/d:ro");
        assert_eq!(DirGrant::writable("d", "/d").to_string(), "d:/d:rw");
    }

    /// Found by the `grants` fuzz target: `Grants::validate` let through
    /// environment variables that a workflow's grants may not carry.
    #[test]
    fn rejects_env_grants_a_workflow_rejects() {
        for (name, value) in [("", "v"), ("A=B", "v"), ("A\0", "v"), ("K", "a\0b")] {
            let mut grants = Grants::default();
            grants.env.insert(name.into(), value.into());
            assert!(
                matches!(grants.validate(), Err(GrantError::EnvVar(_))),
                "{name:?}={value:?}"
            );
        }
        let mut grants = Grants::default();
        grants.env.insert("TZ".into(), "UTC=+0".into());
        grants.validate().unwrap();
    }

    #[test]
    fn rejects_relative_and_dotted_guest_paths() {
        let tmp = std::env::temp_dir();
        assert!(DirGrant::read_only(&tmp, "data").validate().is_err());
        assert!(
            DirGrant::read_only(&tmp, "/data/../etc")
                .validate()
                .is_err()
        );
        assert!(DirGrant::read_only(&tmp, "/data").validate().is_ok());
        assert!(
            DirGrant::read_only("/no/such/dir", "/data")
                .validate()
                .is_err()
        );
    }
}
