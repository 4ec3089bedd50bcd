//! Errors of the sandbox layer.

use std::path::PathBuf;

/// A grant the operator wrote that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `--dir` text that is not `HOST:GUEST[:rw|:ro][,OPTION=VALUE...]`.
    #[error(
        "invalid directory grant `{0}`: expected HOST:GUEST[:rw|:ro][,max_bytes=SIZE][,max_files=N], e.g. ./data:/data or ./out:/out:rw,max_bytes=1GiB"
    )]
    DirSyntax(String),
    /// A `--dir` option that is unknown, repeated or has an invalid value.
    #[error("invalid option `{option}` in directory grant `{grant}`: {reason}")]
    DirOption {
        /// The whole grant as written.
        grant: String,
        /// The option as written (`max_bytes=abc`).
        option: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A quota (`max_bytes`, `max_files`) on a read-only grant.
    #[error(
        "directory grant `{0}` is read-only but has a quota: max_bytes and max_files only apply to writable grants (add :rw / writable = true)"
    )]
    QuotaOnReadOnly(String),
    /// A guest path that is not absolute or contains `.`/`..`.
    #[error("invalid guest path `{0}`: it must be absolute, without `.` or `..` (e.g. /data)")]
    GuestPath(String),
    /// The host side of a directory grant is not a directory.
    #[error("granted host directory {} does not exist or is not a directory", .0.display())]
    HostDir(PathBuf),
    /// Two grants map to the same guest path.
    #[error("guest path `{0}` is granted twice")]
    DuplicateGuestPath(String),
    /// An environment variable whose name is empty or contains `=` or NUL,
    /// or whose value contains NUL.
    #[error(
        "invalid environment variable grant `{0}`: the name must be non-empty, without `=` or NUL, and the value without NUL"
    )]
    EnvVar(String),
    /// The host could not open a granted directory.
    #[error("cannot open granted directory {}: {reason}", path.display())]
    Open {
        /// The host directory.
        path: PathBuf,
        /// Why it could not be opened.
        reason: String,
    },
    /// A fuel budget was requested from an engine that does not meter fuel.
    #[error("a fuel limit was requested but the engine was built without fuel metering")]
    FuelDisabled,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    /// A core module where a component is expected.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for the wasm32-wasip2 target"
    )]
    CoreModule,
    /// wasmtime rejected the component.
    #[error("invalid component: {0}")]
    Compile(String),
    /// The component does not target the `corral:task` world, or imports
    /// something the host does not provide.
    #[error("the component does not match the corral:task@0.1.0 `task-plugin` world: {0}")]
    WorldMismatch(String),
    /// `describe` trapped, timed out or could not be called.
    #[error("the plugin's `describe` failed: {0}")]
    Describe(String),
    /// `describe` returned something invalid.
    #[error("the plugin describes itself invalidly: {0}")]
    InvalidInfo(String),
    /// An earlier load of the same bytes failed with this error (a host
    /// does not load bytes again that it could not load before).
    #[error(transparent)]
    Earlier(std::sync::Arc<PluginError>),
}

/// Errors building or configuring the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot build the wasmtime engine: {0}")]
    Engine(String),
    /// The compiled-artifact cache directory could not be created.
    #[error("cannot create the compiled-artifact cache at {}: {source}", path.display())]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The epoch clock thread could not be started.
    #[error("cannot start the epoch clock thread: {0}")]
    Clock(std::io::Error),
}
