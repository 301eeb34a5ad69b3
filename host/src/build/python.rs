//! Building a Python scenario with componentize-py, which imports the module
//! inside wasmtime while it builds: the module sees a private copy of its
//! folder (hidden files, caches and virtual environments left out), the SDK,
//! the standard library and site-packages, never the real folder. The SDK's
//! `horde.build_guard` names any other path the module tries to read, and
//! lists the files it read; a failure shows the Python traceback first.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use super::tools::{COMPONENTIZE_PY, absolute, run};

/// More than this many files in a scenario's folder is not a scenario's
/// folder (a home folder, say): the build refuses to copy it.
const MAX_FILES: usize = 5_000;
/// Nor more than this many bytes.
const MAX_BYTES: u64 = 200 << 20;

/// Build a Python module file with componentize-py; returns the files read
/// into the component (the scenario's, relative to its folder, then the
/// libraries with how many of their files).
pub fn python(sdk: &Path, source: &Path, out: &Path) -> Result<Vec<String>> {
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
    let staged = stage(&folder, source)?;
    let out = absolute(out)?;
    let output = run(
        Command::new("componentize-py")
            .arg("-d")
            .arg(sdk.join("wit"))
            .args(["-w", "scenario", "componentize", module, "-p"])
            .arg(staged.path())
            .arg("-p")
            .arg(sdk.join("sdk/python"))
            .arg("-o")
            .arg(&out)
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0"),
        &format!("`pip install {COMPONENTIZE_PY}` (the version this Horde is built with)"),
    )?;
    if output.status.success() {
        return Ok(inputs(staged.path()));
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

/// Whether an entry of the scenario's folder stays out of the copy: hidden
/// files and folders (keys, credentials, settings), bytecode caches (the
/// copy is always built from source), other tools' folders, components.
fn left_out(name: &str) -> bool {
    name.starts_with('.')
        || matches!(name, "__pycache__" | "node_modules" | "site-packages")
        || name.ends_with(".wasm")
}

/// How much has been copied so far.
struct Budget {
    files: usize,
    bytes: u64,
}

/// A private copy of `folder` (see [`left_out`]; symbolic links only when
/// they point inside it; no sockets or devices) for componentize-py to map
/// as the module's folder, with `.horde-build.json` naming the real folder.
fn stage(folder: &Path, source: &Path) -> Result<tempfile::TempDir> {
    let staged = tempfile::Builder::new()
        .prefix("horde-build-")
        .tempdir()
        .context("creating a folder for the scenario's copy")?;
    let root = folder
        .canonicalize()
        .with_context(|| format!("reading {}", folder.display()))?;
    let mut budget = Budget { files: 0, bytes: 0 };
    copy_tree(folder, staged.path(), &root, &mut budget, 12).map_err(|e| {
        if e.is::<TooBig>() {
            anyhow!(
                "{} holds more than {MAX_FILES} files or {} MB (hidden files, __pycache__, \
                 node_modules and virtual environments not counted): while it is built, the \
                 module can read its folder, so horde build copies it, and this is not a \
                 scenario's folder; move {} into a folder of its own",
                folder.display(),
                MAX_BYTES >> 20,
                source.file_name().unwrap_or_default().to_string_lossy()
            )
        } else {
            e
        }
    })?;
    let config = serde_json::json!({ "folder": folder.to_string_lossy() });
    std::fs::write(staged.path().join(".horde-build.json"), config.to_string())
        .context("writing the build's settings into the scenario's copy")?;
    Ok(staged)
}

/// The folder is too big to be a scenario's.
#[derive(Debug, thiserror::Error)]
#[error("the scenario's folder is too big")]
struct TooBig;

fn copy_tree(from: &Path, to: &Path, root: &Path, budget: &mut Budget, depth: u32) -> Result<()> {
    let listing = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        if left_out(&name.to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink()
            && !path
                .canonicalize()
                .is_ok_and(|target| target.starts_with(root))
        {
            // The sandbox never followed a link out of the folder either.
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let target = to.join(&name);
        if meta.is_dir() {
            if depth == 0 || path.join("pyvenv.cfg").exists() {
                continue;
            }
            std::fs::create_dir(&target)
                .with_context(|| format!("creating {}", target.display()))?;
            copy_tree(&path, &target, root, budget, depth - 1)?;
        } else if meta.is_file() {
            budget.files += 1;
            budget.bytes += meta.len();
            if budget.files > MAX_FILES || budget.bytes > MAX_BYTES {
                return Err(TooBig.into());
            }
            std::fs::copy(&path, &target)
                .with_context(|| format!("copying {} for the build", path.display()))?;
        }
    }
    Ok(())
}

/// What the SDK's build guard recorded in the copy: the scenario's files,
/// then each library with how many of its files were read.
fn inputs(staged: &Path) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Inputs {
        scenario: Vec<String>,
        libraries: std::collections::BTreeMap<String, u64>,
    }
    let Some(read) = std::fs::read(staged.join(".horde-inputs.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Inputs>(&bytes).ok())
    else {
        return Vec::new();
    };
    let libraries = read.libraries.into_iter().map(|(name, files)| {
        let plural = if files == 1 { "" } else { "s" };
        format!("{name} ({files} file{plural} from site-packages)")
    });
    read.scenario.into_iter().chain(libraries).collect()
}

/// The guest's own traceback in componentize-py's output, without the
/// frames of the import machinery and the SDK's bundler, its paths mapped
/// back to `folder` (componentize-py mounts its copy as `/0`).
fn python_traceback(said: &str, folder: &Path) -> Option<String> {
    let start = said.find("AssertionError: Traceback")? + "AssertionError: ".len();
    let rest = &said[start..];
    let end = rest.find("\n\nCaused by:").unwrap_or(rest.len());
    let mut lines: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in rest[..end].lines() {
        if line.starts_with("  File ") {
            skipping = line.contains("<frozen importlib")
                || line.contains("/horde/bundle.py\"")
                || line.contains("/horde/build_guard.py\"");
        } else if !line.starts_with("    ") {
            skipping = false;
        }
        if !skipping {
            lines.push(line);
        }
    }
    let folder = folder.display();
    Some(
        lines
            .join("\n")
            .replace("\"/0/", &format!("\"{folder}/"))
            .replace("(/0/", &format!("({folder}/"))
            .trim_end()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The files of the copy `horde build` makes of `folder`.
    fn staged_files(folder: &Path) -> Vec<PathBuf> {
        let staged = stage(folder, &folder.join("app.py")).unwrap();
        let mut files = Vec::new();
        let mut pending = vec![staged.path().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else {
                    files.push(entry.path().strip_prefix(staged.path()).unwrap().into());
                }
            }
        }
        files.sort();
        files
    }

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

    #[test]
    fn the_copy_leaves_out_hidden_files_caches_and_links_out() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "key").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let put = |relative: &str| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        };
        for file in [
            "app.py",
            "lib/helpers.py",
            "users.csv",
            ".ssh/id_rsa",
            ".env",
            "__pycache__/app.cpython-312.pyc",
            "venv/pyvenv.cfg",
            "venv/lib/x.py",
            "node_modules/x/index.js",
            "old.wasm",
        ] {
            put(file);
        }
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("s.txt"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path().join("users.csv"), dir.path().join("u.csv")).unwrap();
        let files = staged_files(dir.path());
        let expected: Vec<PathBuf> = [
            ".horde-build.json",
            "app.py",
            "lib/helpers.py",
            "u.csv",
            "users.csv",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(files, expected);
        // A folder far bigger than a scenario's is refused, saying so.
        for i in 0..=MAX_FILES {
            std::fs::write(dir.path().join(format!("f{i}")), "").unwrap();
        }
        let err = stage(dir.path(), &dir.path().join("app.py"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("move app.py into a folder of its own"),
            "{err}"
        );
    }
}
