//! Builds Rust guest components from `guest-examples/` for `wasm32-wasip2`,
//! in their own cargo workspace and target dir, for build scripts and xtask.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives at `xtask/guest-build`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root exists")
}

/// Where guest components are built: `target/guests` of the main workspace.
pub fn guest_target_dir() -> PathBuf {
    repo_root().join("target").join("guests")
}

/// Path of a built guest component, by package name.
pub fn guest_wasm_path(package: &str) -> PathBuf {
    guest_target_dir()
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Files whose change must rebuild the guests (for `cargo:rerun-if-changed`).
pub fn guest_inputs() -> Vec<PathBuf> {
    let root = repo_root();
    let mut inputs = vec![
        root.join("wit"),
        root.join("sdk/rust/src"),
        root.join("sdk/rust/Cargo.toml"),
    ];
    let examples = root.join("guest-examples");
    inputs.push(examples.join("Cargo.toml"));
    if let Ok(entries) = std::fs::read_dir(&examples) {
        for entry in entries.flatten() {
            if entry.path().join("Cargo.toml").exists() {
                inputs.push(entry.path().join("src"));
                inputs.push(entry.path().join("Cargo.toml"));
            }
        }
    }
    inputs
}

/// Build the given guest packages (all when empty) and return their paths.
pub fn build_guests(packages: &[&str]) -> Result<Vec<PathBuf>, String> {
    let root = repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root.join("guest-examples"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .arg("--target-dir")
        .arg(guest_target_dir());
    for package in packages {
        command.args(["--package", package]);
    }
    // Settings of an enclosing cargo (build script, clippy) are not the guests'.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .map_err(|e| format!("running cargo to build the guests: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2")
            && stderr.contains("target may not be installed")
        {
            "\nInstall the target with `rustup target add wasm32-wasip2` (`cargo xtask` does this for you)."
        } else {
            ""
        };
        return Err(format!(
            "building the guest components failed:\n{stderr}{hint}"
        ));
    }
    let names: Vec<String> = if packages.is_empty() {
        guest_packages()
    } else {
        packages.iter().map(|p| p.to_string()).collect()
    };
    Ok(names.iter().map(|p| guest_wasm_path(p)).collect())
}

/// Package names of every guest in `guest-examples/` (its directory names).
pub fn guest_packages() -> Vec<String> {
    let examples = repo_root().join("guest-examples");
    let mut names: Vec<String> = std::fs::read_dir(examples)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
