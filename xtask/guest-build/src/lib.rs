//! Builds the guest components in `guest-examples/`, for build scripts and
//! xtask: Rust guests for `wasm32-wasip2` in their own cargo workspace and
//! target dir, Python guests with componentize-py, JavaScript guests with
//! the JS SDK's build (esbuild + componentize-js).

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod image;

/// The repository root: found from the crate cargo is building or running
/// now (`CARGO_MANIFEST_DIR` at run time, set for build scripts, tests and
/// `cargo run`), else from where this crate was compiled. Two checkouts
/// sharing one target dir share this crate's compiled copy (cargo hashes
/// workspace paths relative to the workspace), so the compile-time path
/// may be the other checkout's.
pub fn repo_root() -> PathBuf {
    let is_root =
        |dir: &Path| dir.join("wit/scenario.wit").is_file() && dir.join("guest-examples").is_dir();
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| dir.ancestors().find(|d| is_root(d)).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
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

/// The language of a guest written in a scripting language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptLanguage {
    /// `app.py`, built with componentize-py and the SDK in `sdk/python`.
    Python,
    /// `scenario.js`, built with `sdk/js/bin/build.mjs` (esbuild + componentize-js).
    JavaScript,
}

/// The pinned componentize-py the Python guests are built with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// A Python or JavaScript guest in `guest-examples/`.
#[derive(Debug, Clone)]
pub struct ScriptGuest {
    /// Directory name, e.g. "python-http".
    pub package: String,
    pub language: ScriptLanguage,
    pub dir: PathBuf,
}

impl ScriptGuest {
    /// Where the built component goes.
    pub fn wasm_path(&self) -> PathBuf {
        script_wasm_path(&self.package)
    }

    /// Files whose change must rebuild this guest.
    pub fn inputs(&self) -> Vec<PathBuf> {
        let root = repo_root();
        let mut inputs = vec![root.join("wit"), self.dir.clone()];
        match self.language {
            ScriptLanguage::Python => inputs.push(root.join("sdk/python/horde")),
            ScriptLanguage::JavaScript => {
                inputs.push(root.join("sdk/js/src"));
                inputs.push(root.join("sdk/js/bin"));
                inputs.push(root.join("sdk/js/package-lock.json"));
            }
        }
        inputs
    }
}

/// Where the script guest `package` (e.g. "python-http") is built.
pub fn script_wasm_path(package: &str) -> PathBuf {
    guest_target_dir()
        .join("scripts")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Every Python (`app.py`) and JavaScript (`scenario.js`) guest, by name.
pub fn script_guests() -> Vec<ScriptGuest> {
    let examples = repo_root().join("guest-examples");
    let mut guests: Vec<ScriptGuest> = std::fs::read_dir(examples)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let dir = e.path();
                    let language = if dir.join("app.py").exists() {
                        ScriptLanguage::Python
                    } else if dir.join("scenario.js").exists() {
                        ScriptLanguage::JavaScript
                    } else {
                        return None;
                    };
                    Some(ScriptGuest {
                        package: e.file_name().to_string_lossy().into_owned(),
                        language,
                        dir,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    guests.sort_by(|a, b| a.package.cmp(&b.package));
    guests
}

/// The newest modification time under `path` (a file or a directory tree).
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok();
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        if entry.file_name() == "__pycache__" || entry.file_name() == "node_modules" {
            continue;
        }
        if let Some(time) = newest_mtime(&entry.path()) {
            newest = Some(newest.map_or(time, |n| n.max(time)));
        }
    }
    newest
}

/// Build one script guest unless its component is newer than all its inputs.
pub fn build_script_guest(guest: &ScriptGuest) -> Result<PathBuf, String> {
    let out = guest.wasm_path();
    let built = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    let newest_input = guest.inputs().iter().filter_map(|p| newest_mtime(p)).max();
    if let (Some(built), Some(input)) = (built, newest_input)
        && built > input
    {
        return Ok(out);
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let root = repo_root();
    let mut command = match guest.language {
        ScriptLanguage::Python => {
            let mut command = Command::new("componentize-py");
            command
                .arg("-d")
                .arg(root.join("wit"))
                .args(["-w", "scenario", "componentize", "app", "-p"])
                .arg(&guest.dir)
                .arg("-p")
                .arg(root.join("sdk/python"))
                .arg("-o")
                .arg(&out);
            command
        }
        ScriptLanguage::JavaScript => {
            if !root.join("sdk/js/node_modules").exists() {
                return Err(format!(
                    "building {} needs the JS SDK's tools: run `npm ci --prefix sdk/js` \
                     (`cargo xtask test` does this for you)",
                    guest.package
                ));
            }
            let mut command = Command::new("node");
            command
                .arg(root.join("sdk/js/bin/build.mjs"))
                .arg(guest.dir.join("scenario.js"))
                .arg("-o")
                .arg(&out);
            command
        }
    };
    let output = command.output().map_err(|e| {
        let tool = match guest.language {
            ScriptLanguage::Python => {
                format!("componentize-py (install it with `pip install {COMPONENTIZE_PY}`)")
            }
            ScriptLanguage::JavaScript => "node (Node.js 20 or later)".to_string(),
        };
        format!("building {}: could not run {tool}: {e}", guest.package)
    })?;
    if !output.status.success() {
        return Err(format!(
            "building {} failed:\n{}{}",
            guest.package,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out)
}

/// Build every script guest (those already up to date are skipped).
pub fn build_script_guests() -> Result<Vec<(ScriptGuest, PathBuf)>, String> {
    script_guests()
        .into_iter()
        .map(|guest| build_script_guest(&guest).map(|path| (guest, path)))
        .collect()
}
