//! Running each language's standard build tool against the extracted SDK:
//! componentize-py, node (the JS SDK's `bin/build.mjs`, after installing its
//! esbuild and componentize-js once with npm), and cargo; and turning their
//! failures into the language's own error on top, then how to fix it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// The componentize-py this Horde's Python SDK is built and tested with.
pub const COMPONENTIZE_PY: &str = env!("HORDE_COMPONENTIZE_PY");

/// Run `command`; a missing program becomes `missing` (how to install it).
fn run(command: &mut Command, missing: &str) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    command.output().map_err(|e| match e.kind() {
        ErrorKind::NotFound => anyhow!("{program} is not installed: {missing}"),
        _ => anyhow!("could not run {program}: {e}"),
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Build a Python module file with componentize-py.
pub fn python(sdk: &Path, source: &Path, out: &Path) -> Result<()> {
    let module = source
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .ok_or_else(|| {
            anyhow!(
                "{} cannot be imported as a Python module: rename it to a Python identifier \
                 (letters, digits and _, e.g. app.py)",
                source.display()
            )
        })?;
    let folder = absolute(source)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    clear_bytecode(&folder, 4);
    let output = run(
        Command::new("componentize-py")
            .arg("-d")
            .arg(sdk.join("wit"))
            .args(["-w", "scenario", "componentize", module, "-p"])
            .arg(&folder)
            .arg("-p")
            .arg(sdk.join("sdk/python"))
            .arg("-o")
            .arg(out)
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0"),
        &format!("`pip install {COMPONENTIZE_PY}` (the version this Horde is built with)"),
    )?;
    if output.status.success() {
        return Ok(());
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let tool = said
        .split("\nStack backtrace:")
        .next()
        .unwrap_or_default()
        .trim();
    match python_traceback(&said, &folder) {
        Some(traceback) => bail!(
            "{traceback}\n\nbuilding {} failed: importing it raised the Python error above \
             (the scenario module and what it imports run while it is built)",
            source.display()
        ),
        None => bail!(
            "building {} with componentize-py failed:\n{tool}",
            source.display()
        ),
    }
}

/// Remove the compiled bytecode (`__pycache__/*.pyc`) under the scenario's
/// folder, `depth` folders down (not in hidden folders or virtual
/// environments). componentize-py's Python reads it back when a source's
/// size and modification time (to the second) are unchanged, so an edit
/// that keeps both (a copy with `cp -p`, an unpacked archive) would build
/// the old code; it writes fresh bytecode as it builds.
fn clear_bytecode(folder: &Path, depth: u32) {
    let Ok(listing) = std::fs::read_dir(folder) else {
        return;
    };
    if folder.join("pyvenv.cfg").exists() {
        return;
    }
    for entry in listing.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || name.starts_with('.') {
            continue;
        }
        if name == "__pycache__" {
            for cached in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                if cached.path().extension().is_some_and(|e| e == "pyc") {
                    let _ = std::fs::remove_file(cached.path());
                }
            }
        } else if depth > 1 && name != "node_modules" && name != "site-packages" {
            clear_bytecode(&path, depth - 1);
        }
    }
}

/// The guest's own traceback in componentize-py's output, without the
/// frames of the import machinery and the SDK's bundler, its paths mapped
/// back to `folder` (componentize-py mounts it as `/0`).
fn python_traceback(said: &str, folder: &Path) -> Option<String> {
    let start = said.find("AssertionError: Traceback")? + "AssertionError: ".len();
    let rest = &said[start..];
    let end = rest.find("\n\nCaused by:").unwrap_or(rest.len());
    let mut lines: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in rest[..end].lines() {
        if line.starts_with("  File ") {
            skipping = line.contains("<frozen importlib") || line.contains("/horde/bundle.py\"");
        } else if !line.starts_with("    ") {
            skipping = false;
        }
        if !skipping {
            lines.push(line);
        }
    }
    let mount = format!("\"{}/", folder.display());
    Some(
        lines
            .join("\n")
            .replace("\"/0/", &mount)
            .trim_end()
            .to_string(),
    )
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
/// the SDK, componentize-js makes the component).
pub fn javascript(sdk: &Path, source: &Path, out: &Path) -> Result<()> {
    let js = sdk.join("sdk/js");
    install_js_tools(&js)?;
    let output = run(
        Command::new("node")
            .arg(js.join("bin/build.mjs"))
            .arg(source)
            .arg("-o")
            .arg(out)
            .arg("--wit")
            .arg(sdk.join("wit")),
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_traceback_comes_out_clean() {
        let said = "Traceback (most recent call last):\n  File \"/usr/bin/componentize-py\", \
            line 8, in <module>\n    sys.exit(script())\nAssertionError: Traceback (most recent \
            call last):\n  File \"<frozen importlib._bootstrap>\", line 1371, in _find_and_load\n  \
            File \"/1/horde/bundle.py\", line 205, in exec_module\n    execute(module)\n    \
            ~~~~~~~^^^^^^^^\n  File \"/0/app.py\", line 2, in <module>\n    import nosuch\n\
            ModuleNotFoundError: No module named 'nosuch'\n\n\nCaused by:\n    \
            ModuleNotFoundError\n\nStack backtrace:\n   0: anyhow";
        let traceback = python_traceback(said, Path::new("/home/me/shop")).unwrap();
        assert_eq!(
            traceback,
            "Traceback (most recent call last):\n  File \"/home/me/shop/app.py\", line 2, in \
             <module>\n    import nosuch\nModuleNotFoundError: No module named 'nosuch'"
        );
        assert!(python_traceback("error: no such file", Path::new("/")).is_none());
    }
}
