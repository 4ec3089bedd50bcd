//! Builds every plugin in `plugins/` for wasm32-wasip2 and writes their paths
//! into `$OUT_DIR/artifacts.rs`, so tests get real components without a
//! manual step (the pattern of wasmtime's test-programs-artifacts crate).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let plugins_dir = root.join("plugins");
    let target_dir = plugins_dir.join("target");

    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "guest-sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let plugins = plugin_crates(&plugins_dir);
    for name in &plugins {
        println!(
            "cargo:rerun-if-changed={}",
            plugins_dir.join(name).display()
        );
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(plugins_dir.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    // The outer build's flags are for the host, not for wasm.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_BUILD_TARGET")
    .env_remove("CARGO_TARGET_DIR");
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins failed ({status}). Is the wasm target installed? \
             Run `rustup target add wasm32-wasip2`."
        );
    }

    let release = target_dir.join("wasm32-wasip2/release");
    let mut out = String::new();
    writeln!(out, "/// The directory of the plugin sources (`plugins/`).").unwrap();
    writeln!(
        out,
        "pub const PLUGINS_DIR: &str = {:?};",
        plugins_dir.display().to_string()
    )
    .unwrap();
    for name in &plugins {
        let wasm = release.join(format!("{name}.wasm"));
        assert!(
            wasm.is_file(),
            "the plugin build did not produce {}",
            wasm.display()
        );
        writeln!(out, "/// Path of the built `{name}` plugin component.").unwrap();
        writeln!(
            out,
            "pub const {}: &str = {:?};",
            name.to_uppercase(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    let out_file =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("artifacts.rs");
    std::fs::write(out_file, out).expect("cannot write artifacts.rs");
}

/// Every directory of `plugins/` with a Cargo.toml: one plugin crate each,
/// named like its directory.
fn plugin_crates(plugins_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(plugins_dir)
        .expect("cannot read plugins/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}
