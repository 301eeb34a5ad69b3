//! Running the JavaScript and Rust build tools against the extracted SDK:
//! node (the JS SDK's `bin/build.mjs`, after installing its esbuild and
//! componentize-js once with npm) and cargo; and turning their failures
//! into the language's own error on top, then how to fix it. (Python's
//! componentize-py is in `python.rs`.)

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// The componentize-py this Horde's Python SDK is built and tested with.
pub const COMPONENTIZE_PY: &str = env!("HORDE_COMPONENTIZE_PY");

/// Run `command`; a missing program becomes `missing` (how to install it).
pub(super) fn run(command: &mut Command, missing: &str) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    command.output().map_err(|e| match e.kind() {
        ErrorKind::NotFound => anyhow!("{program} is not installed: {missing}"),
        _ => anyhow!("could not run {program}: {e}"),
    })
}

/// `path` made absolute (against the current directory).
pub(super) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// The JS SDK's tools, installed into the SDK folder once with npm.
fn install_js_tools(js: &Path) -> Result<()> {
    let installed = || {
        ["esbuild", "@bytecodealliance/componentize-js"]
            .iter()
            .all(|tool| js.join("node_modules").join(tool).is_dir())
            && !js.join(".installing").exists()
    };
    if installed() {
        return Ok(());
    }
    // One install at a time: a second build waits for the first's, then
    // finds the tools in place. The marker tells an install cut short (a
    // killed npm) from a finished one.
    let lock = std::fs::File::create(js.join(".install.lock"))
        .with_context(|| format!("locking {}", js.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", js.display()))?;
    if installed() {
        return Ok(());
    }
    std::fs::write(js.join(".installing"), b"")?;
    eprintln!(
        "installing the JavaScript SDK's build tools (esbuild, componentize-js) into {} \
         with npm; this happens once per Horde version",
        js.display()
    );
    let output = run(
        Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
                "--prefix",
            ])
            .arg(js)
            .stdin(Stdio::null()),
        "install Node.js 20 or later, with npm",
    )?;
    if !output.status.success() {
        bail!(
            "npm could not install the JavaScript SDK's tools into {}:\n{}{}",
            js.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_file(js.join(".installing"))?;
    Ok(())
}

/// Build a k6-style script with the JS SDK's build (esbuild bundles it with
/// the SDK, componentize-js makes the component); returns the scenario's
/// files in the bundle, relative to its folder. The bundle takes files only
/// from the scenario's folder, its node_modules and the SDK.
pub fn javascript(sdk: &Path, source: &Path, out: &Path) -> Result<Vec<String>> {
    let js = sdk.join("sdk/js");
    install_js_tools(&js)?;
    let listing = tempfile::Builder::new()
        .prefix("horde-inputs-")
        .suffix(".json")
        .tempfile()
        .context("creating a file for the bundle's list of files")?;
    let output = run(
        Command::new("node")
            .arg(js.join("bin/build.mjs"))
            .arg(source)
            .arg("-o")
            .arg(out)
            .arg("--wit")
            .arg(sdk.join("wit"))
            .arg("--inputs")
            .arg(listing.path()),
        "install Node.js 20 or later",
    )?;
    if !output.status.success() {
        bail!(
            "{}{}\nbuilding {} failed: the JavaScript error above",
            String::from_utf8_lossy(&output.stderr).trim_end(),
            String::from_utf8_lossy(&output.stdout).trim_end(),
            source.display()
        );
    }
    let listed = std::fs::read(listing.path()).unwrap_or_default();
    Ok(serde_json::from_slice(&listed).unwrap_or_default())
}

/// Build a Rust crate for `wasm32-wasip2` with cargo, `horde-sdk` taken
/// from the SDK folder (a `[patch]`, so the crate's `horde-sdk = "0.1"`
/// needs no registry); returns the component, copied to `out` when given.
/// Cargo's own diagnostics go straight to the terminal, above our error.
pub fn rust(sdk: &Path, crate_dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let sysroot = run(
        Command::new("rustc").args(["--print", "sysroot"]),
        "install Rust with rustup (https://rustup.rs)",
    )?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").is_dir() {
        bail!(
            "Rust's wasm32-wasip2 target is not installed (not in {}): \
             `rustup target add wasm32-wasip2`",
            sysroot.display()
        );
    }
    let sdk_crate = serde_json::to_string(&sdk.join("sdk/rust").to_string_lossy())?;
    let output = run(
        Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--message-format=json-render-diagnostics")
            .arg("--manifest-path")
            .arg(crate_dir.join("Cargo.toml"))
            .arg("--config")
            .arg(format!("patch.crates-io.horde-sdk.path={sdk_crate}"))
            .stderr(Stdio::inherit()),
        "install Rust with rustup (https://rustup.rs)",
    )?;
    if !output.status.success() {
        bail!(
            "building the crate in {} failed: cargo's errors are above",
            crate_dir.display()
        );
    }
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .filter(|f| f.extension().is_some_and(|e| e == "wasm"))
                .collect::<Vec<_>>()
        })
        .last()
        .ok_or_else(|| {
            anyhow!(
                "cargo built the crate in {} but no .wasm came out: make it a library with \
                 `[lib] crate-type = [\"cdylib\"]` in its Cargo.toml",
                crate_dir.display()
            )
        })?;
    let out = out.map_or_else(
        || PathBuf::from(built.file_name().unwrap_or_default()),
        Path::to_path_buf,
    );
    std::fs::copy(&built, &out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(out)
}
