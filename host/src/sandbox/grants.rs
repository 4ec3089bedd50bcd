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

/// Default of [`DirGrant::max_bytes`]: 1 GiB per writable grant per attempt.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Default of [`DirGrant::max_files`]: 10,000 per writable grant per attempt.
pub const DEFAULT_MAX_FILES: u64 = 10_000;

/// A host directory made visible to the guest.
///
/// A writable grant has a disk quota, counted per attempt (a retry starts
/// afresh) and enforced by the host's filesystem layer (see
/// `sandbox::fs_quota`): past either limit the guest's write or create
/// fails with WASI `insufficient-space` (`ENOSPC`; `EIO` for `write()` on
/// an already open stream, which is all wasi-libc reports there), nothing
/// of it is written, and the attempt's report says so. Deleting or
/// truncating files gives nothing back.
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
    /// Most bytes by which an attempt may grow the files of this grant: the
    /// sum of every size increase (appends, writes past the end, holes left
    /// by writing or seeking past the end, `set-size` growth). Overwriting
    /// existing bytes is free. `None` means [`DEFAULT_MAX_BYTES`]. Only for
    /// writable grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Most directory entries an attempt may create in this grant: files,
    /// directories, symbolic links and hard links. `None` means
    /// [`DEFAULT_MAX_FILES`]. Only for writable grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
}

impl DirGrant {
    /// A read-only grant of `host` at `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            writable: false,
            max_bytes: None,
            max_files: None,
        }
    }

    /// A writable grant of `host` at `guest`.
    pub fn writable(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            writable: true,
            max_bytes: None,
            max_files: None,
        }
    }

    /// This grant with a byte quota (see [`DirGrant::max_bytes`]).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// This grant with a file-count quota (see [`DirGrant::max_files`]).
    pub fn with_max_files(mut self, max_files: u64) -> Self {
        self.max_files = Some(max_files);
        self
    }

    /// The byte quota in force: the one set, or [`DEFAULT_MAX_BYTES`].
    pub fn byte_limit(&self) -> u64 {
        self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)
    }

    /// The file-count quota in force: the one set, or [`DEFAULT_MAX_FILES`].
    pub fn file_limit(&self) -> u64 {
        self.max_files.unwrap_or(DEFAULT_MAX_FILES)
    }

    /// Whether a quota is set although the grant is read-only, which is an
    /// error: a read-only grant cannot be written at all, and a quota there
    /// most likely means `writable = true` was forgotten.
    pub fn quota_on_read_only(&self) -> bool {
        !self.writable && (self.max_bytes.is_some() || self.max_files.is_some())
    }

    /// Checks that the guest path is absolute and clean, that a quota is
    /// only set on a writable grant, and that the host path is an existing
    /// directory.
    pub fn validate(&self) -> Result<(), GrantError> {
        let guest_ok = self.guest.starts_with('/')
            && !self
                .guest
                .split('/')
                .any(|part| part == ".." || part == ".");
        if !guest_ok {
            return Err(GrantError::GuestPath(self.guest.clone()));
        }
        if self.quota_on_read_only() {
            return Err(GrantError::QuotaOnReadOnly(self.guest.clone()));
        }
        if !self.host.is_dir() {
            return Err(GrantError::HostDir(self.host.clone()));
        }
        Ok(())
    }
}

/// Parses `HOST:GUEST[:rw|:ro][,max_bytes=SIZE][,max_files=N]`, e.g.
/// `./data:/data`, `/tmp/out:/out:rw` or
/// `/tmp/out:/out:rw,max_bytes=100MiB,max_files=1000`.
///
/// Options follow the last `:`-separated field after a comma, as
/// `name=value` pairs; `SIZE` is a size such as `1GiB`, `100MB` or a number
/// of bytes. The text after a comma is only read as options if it contains
/// `=`, so older grants whose guest path contains a comma still parse.
impl FromStr for DirGrant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GrantError::DirSyntax(s.to_owned());
        let (base, options) = split_options(s);
        let (rest, writable) = match base.rsplit_once(':') {
            Some((rest, "rw")) => (rest, true),
            Some((rest, "ro")) => (rest, false),
            _ => (base, false),
        };
        let (host, guest) = rest.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || guest.is_empty() {
            return Err(bad());
        }
        let mut grant = Self {
            host: host.into(),
            guest: guest.into(),
            writable,
            max_bytes: None,
            max_files: None,
        };
        for option in options.into_iter().flat_map(|o| o.split(',')) {
            let bad_option = |reason: &str| GrantError::DirOption {
                grant: s.to_owned(),
                option: option.to_owned(),
                reason: reason.to_owned(),
            };
            let (name, value) = option
                .split_once('=')
                .ok_or_else(|| bad_option("expected name=value"))?;
            let slot = match name.trim() {
                "max_bytes" => &mut grant.max_bytes,
                "max_files" => &mut grant.max_files,
                _ => return Err(bad_option("the options are max_bytes and max_files")),
            };
            if slot.is_some() {
                return Err(bad_option("given twice"));
            }
            *slot = Some(if name.trim() == "max_bytes" {
                parse_size(value).map_err(|reason| bad_option(&reason))?
            } else {
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad_option("not a whole number of files"))?
            });
        }
        if grant.quota_on_read_only() {
            return Err(GrantError::QuotaOnReadOnly(grant.guest));
        }
        Ok(grant)
    }
}

/// Splits `HOST:GUEST:rw,opts` into `HOST:GUEST:rw` and `opts`, if the text
/// after the first comma of the last `:`-separated field contains `=`.
fn split_options(s: &str) -> (&str, Option<&str>) {
    let last_field = s.rfind(':').map_or(0, |i| i + 1);
    match s[last_field..].find(',') {
        Some(comma) if s[last_field + comma..].contains('=') => {
            let comma = last_field + comma;
            (&s[..comma], Some(&s[comma + 1..]))
        }
        _ => (s, None),
    }
}

/// What is wrong with the environment variable `name=value`, if anything:
/// the one rule for env grants, in a workflow and at run time.
pub(crate) fn env_var_problem(name: &str, value: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Some(format!(
            "environment variable name `{}` must be non-empty, without `=` or NUL",
            name.escape_debug()
        ));
    }
    value.contains('\0').then(|| {
        format!(
            "environment variable `{}` contains a NUL byte",
            name.escape_debug()
        )
    })
}

/// A size such as `1GiB`, `100MB`, `4096` (bytes).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("not a size like 1GiB or a number of bytes: {e}"))
}

/// `HOST:GUEST:rw` or `HOST:GUEST:ro`, then the quota options that are
/// set (`,max_bytes=N,max_files=N`): the suffix is always written, so the
/// text parses back to an equal grant even when the guest path itself reads
/// `rw` or `ro`. (A guest path containing `:`, which parsing never produces,
/// does not round-trip.)
impl fmt::Display for DirGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.writable { "rw" } else { "ro" };
        write!(f, "{}:{}:{mode}", self.host.display(), self.guest)?;
        if let Some(bytes) = self.max_bytes {
            write!(f, ",max_bytes={bytes}")?;
        }
        if let Some(files) = self.max_files {
            write!(f, ",max_files={files}")?;
        }
        Ok(())
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
            if let Some(problem) = env_var_problem(name, value) {
                return Err(GrantError::EnvVar(problem));
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
    fn parses_quota_options() {
        let g: DirGrant = "/tmp/out:/out:rw,max_bytes=1GiB,max_files=100"
            .parse()
            .unwrap();
        assert_eq!(
            g,
            DirGrant::writable("/tmp/out", "/out")
                .with_max_bytes(1 << 30)
                .with_max_files(100)
        );
        let g: DirGrant = "/tmp/out:/out:rw,max_files=7".parse().unwrap();
        assert_eq!(g, DirGrant::writable("/tmp/out", "/out").with_max_files(7));
        let g: DirGrant = "/tmp/out:/out:rw,max_bytes=4096".parse().unwrap();
        assert_eq!(g.byte_limit(), 4096);
        assert_eq!(g.file_limit(), DEFAULT_MAX_FILES);
        // Without options, and with a comma that is no option, as before.
        let g: DirGrant = "/tmp/a,b:/data,old".parse().unwrap();
        assert_eq!(g, DirGrant::read_only("/tmp/a,b", "/data,old"));
        assert_eq!(
            (
                DirGrant::writable("/o", "/o").byte_limit(),
                DirGrant::writable("/o", "/o").file_limit()
            ),
            (1 << 30, 10_000)
        );
    }

    #[test]
    fn rejects_bad_quota_options() {
        for (text, needle) in [
            ("/o:/out:rw,max_bytes=lots", "`max_bytes=lots`"),
            ("/o:/out:rw,max_files=-1", "not a whole number"),
            ("/o:/out:rw,max_files=1.5", "not a whole number"),
            (
                "/o:/out:rw,max_byte=1",
                "the options are max_bytes and max_files",
            ),
            ("/o:/out:rw,max_files=1,max_files=2", "given twice"),
            ("/o:/out:rw,max_files=1,junk", "expected name=value"),
            ("/o:/out,max_files=1", "read-only but has a quota"),
            ("/o:/out:ro,max_bytes=1MiB", "read-only but has a quota"),
        ] {
            let err = text.parse::<DirGrant>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let tmp = std::env::temp_dir();
        assert!(matches!(
            DirGrant::read_only(&tmp, "/d").with_max_bytes(1).validate(),
            Err(GrantError::QuotaOnReadOnly(_))
        ));
        assert!(
            DirGrant::writable(&tmp, "/d")
                .with_max_bytes(1)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn quotas_are_left_out_of_the_serialized_form_unless_set() {
        let plain = serde_json::to_value(DirGrant::writable("/o", "/out")).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"host": "/o", "guest": "/out", "writable": true})
        );
        let back: DirGrant = serde_json::from_value(plain).unwrap();
        assert_eq!(back.max_bytes, None);
        let set = DirGrant::writable("/o", "/out").with_max_files(3);
        let back: DirGrant = serde_json::from_value(serde_json::to_value(&set).unwrap()).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn dir_grants_display_as_they_parse() {
        for text in [
            "./data:/data",
            "/tmp/out:/out:rw",
            "a:rw:ro",
            "c:\\x:/y:rw",
            "h::/g",
            "/tmp/out:/out:rw,max_bytes=1GiB,max_files=100",
            "/tmp/out:/out:rw,max_files=7",
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
