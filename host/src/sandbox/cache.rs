//! On-disk cache of compiled components.
//!
//! A component is compiled once per host: the native code is written to
//! `<dir>/<sha256 of the component>-<engine compatibility hash>.cwasm`, and a
//! later load deserializes it (sub-millisecond) instead of compiling
//! (~0.4 s/MB). The engine hash changes with the wasmtime version and every
//! setting that affects code generation, so stale artifacts are never used;
//! anything that fails to deserialize is treated as a miss and overwritten.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a plugin's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled now (no cache configured, or a cache miss).
    Compiled,
    /// Deserialized from the on-disk artifact cache.
    Cache,
}

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
}

impl ArtifactCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_owned(),
            engine_hash,
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Loads `sha256`'s artifact, compiling and storing it on a miss.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CompileSource)> {
        let path = self.path(sha256);
        if path.is_file() {
            // SAFETY: wasmtime requires that deserialized bytes were produced
            // by `serialize` of a compatible engine. Only this module writes
            // into the cache directory, the file name binds the artifact to
            // the component's hash and the engine's compatibility hash, and
            // wasmtime re-checks the header. The directory must be private to
            // the operator (like any build cache): see `SandboxConfig::cache_dir`.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CompileSource::Cache)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "ignoring unusable compiled artifact")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.write(&path, &component) {
            tracing::warn!(path = %path.display(), %error, "cannot write compiled artifact to the cache");
        }
        Ok((component, CompileSource::Compiled))
    }

    /// Write-then-rename, so a concurrent reader never sees half a file.
    fn write(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// Feeds `Hash` output into SHA-256, which unlike `DefaultHasher` is stable
/// across Rust releases.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
