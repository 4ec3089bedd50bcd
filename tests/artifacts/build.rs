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
    let variants = build_rogue_variants(&cmd, &release);
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
    for (feature, wasm) in &variants {
        writeln!(
            out,
            "/// Path of the `rogue` plugin built with feature `{feature}`."
        )
        .unwrap();
        writeln!(
            out,
            "pub const ROGUE_{}: &str = {:?};",
            feature.to_uppercase().replace('-', "_"),
            wasm.display().to_string()
        )
        .unwrap();
    }
    let out_file =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("artifacts.rs");
    std::fs::write(out_file, out).expect("cannot write artifacts.rs");
}

/// The hostile variants of `plugins/rogue`: one component per feature.
const ROGUE_FEATURES: &[&str] = &[
    "huge-description",
    "many-tasks",
    "multiline-description",
    "ships-grants",
    "ships-victim",
    "slow-describe",
    "impostor",
    "v2",
];

/// Builds `rogue` once per feature of [`ROGUE_FEATURES`] with the same
/// command as the main build, copying each component to
/// `rogue-variants/rogue-<feature>.wasm` before the next build overwrites it.
fn build_rogue_variants(base: &Command, release: &Path) -> Vec<(String, PathBuf)> {
    let dir = release.join("rogue-variants");
    std::fs::create_dir_all(&dir).expect("cannot create the rogue variants directory");
    let mut built = Vec::new();
    for feature in ROGUE_FEATURES {
        run_again(base, &["-p", "rogue", "--features", feature]);
        let wasm = dir.join(format!("rogue-{feature}.wasm"));
        std::fs::copy(release.join("rogue.wasm"), &wasm).expect("cannot copy a rogue variant");
        built.push(((*feature).to_owned(), wasm));
    }
    // The plain `rogue.wasm` is the well-behaved build again.
    run_again(base, &["-p", "rogue"]);
    built
}

/// Runs `base` (program, arguments and environment) again with `extra` arguments.
fn run_again(base: &Command, extra: &[&str]) {
    let mut cmd = Command::new(base.get_program());
    cmd.args(base.get_args()).args(extra);
    for (key, value) in base.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins with {extra:?} failed ({status})"
    );
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
