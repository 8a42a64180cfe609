//! Builds the guest component for `wasm32-wasip2` with a nested cargo, so that one
//! `cargo build` or `cargo test` at the root builds everything, and the host embeds it.
//!
//! `SESSION_VAULT_COMPONENT=/path/to.wasm` embeds a prebuilt component instead.

// A build script reports failure by panicking; there is no caller to return an error to.
#![allow(clippy::expect_used, clippy::panic)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_PACKAGE: &str = "session-vault-guest";
const TARGET: &str = "wasm32-wasip2";
/// The key-value component, kept in the guest's target directory after each build.
const KEYVALUE_COPY: &str = "session-vault-keyvalue.wasm";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out_dir.join("session-vault.wasm");
    let embedded_keyvalue = out_dir.join("session-vault-keyvalue.wasm");
    println!("cargo:rerun-if-env-changed=SESSION_VAULT_COMPONENT");
    println!("cargo:rerun-if-env-changed=SESSION_VAULT_KEYVALUE_COMPONENT");
    if let Some(prebuilt) = env::var_os("SESSION_VAULT_COMPONENT") {
        println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).display());
        std::fs::copy(&prebuilt, &embedded).expect("copying SESSION_VAULT_COMPONENT");
        let keyvalue = env::var_os("SESSION_VAULT_KEYVALUE_COMPONENT")
            .expect("SESSION_VAULT_COMPONENT needs SESSION_VAULT_KEYVALUE_COMPONENT beside it");
        println!("cargo:rerun-if-changed={}", Path::new(&keyvalue).display());
        std::fs::copy(&keyvalue, &embedded_keyvalue)
            .expect("copying SESSION_VAULT_KEYVALUE_COMPONENT");
        return;
    }

    let host_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = host_dir
        .parent()
        .expect("host/ sits in the workspace root")
        .to_path_buf();
    for input in [
        "guest/src",
        "guest/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    // Shared by every profile of the outer build, so the guest is built once.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest");

    // The key-value component (the same crate with the `keyvalue` feature), then the
    // default one: both land at the same path in the target directory, and the default
    // one must be what stays there (jco and wasmtime-py load it from that path).
    build_guest(
        &root,
        &target_dir,
        &["--features", "keyvalue"],
        &embedded_keyvalue,
    );
    // The same cargo output path serves both builds: the key-value component is kept
    // beside it under a name of its own, for the npm package's build to transpile.
    let kept = target_dir.join(KEYVALUE_COPY);
    std::fs::copy(&embedded_keyvalue, &kept)
        .unwrap_or_else(|e| panic!("copying the key-value component to {}: {e}", kept.display()));
    build_guest(&root, &target_dir, &[], &embedded);
}

fn build_guest(root: &Path, target_dir: &Path, features: &[&str], embedded: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--package",
            GUEST_PACKAGE,
            "--target",
            TARGET,
            "--release",
            "--target-dir",
        ])
        .arg(target_dir)
        .args(features);
    // The outer build's flags and wrappers (clippy, coverage) are for the host target.
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy();
        let keep = name == "CARGO_HOME"
            || name.starts_with("CARGO_NET_")
            || name.starts_with("CARGO_HTTP_")
            || name.starts_with("CARGO_REGISTRIES_")
            || name.starts_with("CARGO_TERM_");
        if (name.starts_with("CARGO_") && !keep)
            || matches!(
                &*name,
                "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOCFLAGS"
            )
        {
            command.env_remove(&*name);
        }
    }
    let status = command
        .status()
        .expect("running cargo to build the guest component");
    if !status.success() {
        panic!(
            "building the {GUEST_PACKAGE} component failed ({status}); if the target is missing, \
             run `rustup target add {TARGET}` (or ./setup.sh)"
        );
    }
    let built = target_dir
        .join(TARGET)
        .join("release")
        .join("session_vault_guest.wasm");
    std::fs::copy(&built, embedded)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), embedded.display()));
}
