//! `horde build`: a scenario's source (a Python file, a JavaScript file or
//! a Rust crate folder) into a component, with the language's standard
//! tool (componentize-py, the JS SDK's esbuild + componentize-js build,
//! cargo) and the WIT and SDK that match this binary, from any directory.
//! A Python or JavaScript build sees only the scenario (its folder, the SDK,
//! the standard library and libraries) and lists the files that went into
//! the component. A failed build shows the language's own error first.

mod python;
mod sdk;
mod tools;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

pub use sdk::{extract_into, sdk_dir};

/// The languages `horde build` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A module file (`app.py`), built with componentize-py and `sdk/python`.
    Python,
    /// A k6-style script (`scenario.js`), bundled with `sdk/js` and built
    /// with componentize-js.
    JavaScript,
    /// A crate folder (`Cargo.toml`, `crate-type = ["cdylib"]`) depending on
    /// `horde-sdk`, built for `wasm32-wasip2` with cargo.
    Rust,
}

impl Language {
    /// The language's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::Rust => "Rust",
        }
    }
}

/// What a scenario source is, and the file or folder to build: a `.py` or
/// `.js`/`.mjs` file, a folder with `Cargo.toml`, or a `Cargo.toml`. A
/// folder holding only `app.py` or `scenario.js` means that file.
pub fn source_of(path: &Path) -> Result<(Language, PathBuf)> {
    if path.is_dir() {
        for (file, language) in [
            ("Cargo.toml", Language::Rust),
            ("app.py", Language::Python),
            ("scenario.js", Language::JavaScript),
        ] {
            if path.join(file).is_file() {
                let source = match language {
                    Language::Rust => path.to_path_buf(),
                    _ => path.join(file),
                };
                return Ok((language, source));
            }
        }
        bail!(
            "{} holds no scenario source: give a Python file (app.py), a JavaScript file \
             (scenario.js) or a Rust crate folder (with Cargo.toml)",
            path.display()
        );
    }
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension {
        "py" => Ok((Language::Python, path.to_path_buf())),
        "js" | "mjs" => Ok((Language::JavaScript, path.to_path_buf())),
        _ if path.file_name().is_some_and(|n| n == "Cargo.toml") => Ok((
            Language::Rust,
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        )),
        "wasm" => bail!(
            "{} is already a component: run it with `horde run {}`",
            path.display(),
            path.display()
        ),
        _ => bail!(
            "{} is not a scenario source horde build knows: give a .py file, a .js file or \
             a Rust crate folder",
            path.display()
        ),
    }
}

/// Whether `horde run` should build `path` first: a source, not a component.
pub fn is_source(path: &Path) -> bool {
    path.is_dir()
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "py" | "js" | "mjs"))
        || path.file_name().is_some_and(|n| n == "Cargo.toml")
}

/// `-o` must name a file that is new or a component: never a folder, and
/// never a file of something else (the scenario's own source, say).
fn check_output(out: &Path) -> Result<()> {
    if out.is_dir() {
        bail!(
            "-o {} is a folder: give the component's file name, e.g. -o {}",
            out.display(),
            out.join("scenario.wasm").display()
        );
    }
    if out.exists() {
        let mut start = [0u8; 4];
        let is_wasm = std::fs::File::open(out)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start))
            .is_ok()
            && &start == b"\0asm";
        if !is_wasm {
            bail!(
                "-o {} exists and is not a WebAssembly component: refusing to overwrite it \
                 (is it the scenario's source?); give another name, e.g. -o scenario.wasm",
                out.display()
            );
        }
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("-o {}: cannot create its folder: {e}", out.display()))?;
    }
    Ok(())
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub language: Language,
    /// The component written.
    pub component: PathBuf,
    pub took: Duration,
    /// The files read into the component, for Python and JavaScript: the
    /// scenario's (relative to its folder), then its libraries.
    pub inputs: Vec<String>,
}

impl std::fmt::Display for Built {
    /// `built app.wasm (Python) in 6.4 s`, then the files read into it:
    /// `  from app.py, users.csv, requests (18 files from site-packages)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "built {} ({}) in {:.1} s",
            self.component.display(),
            self.language.name(),
            self.took.as_secs_f64()
        )?;
        if !self.inputs.is_empty() {
            write!(f, "\n  from {}", self.inputs.join(", "))?;
        }
        Ok(())
    }
}

/// The component's default path: the source's name with `.wasm`, in the
/// current directory (`app.py` -> `app.wasm`; a crate's is its library's
/// name, as cargo writes it).
fn default_output(source: &Path) -> PathBuf {
    let name = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    PathBuf::from(format!("{name}.wasm"))
}

/// Build the scenario at `path` into `out` (default: see
/// [`default_output`]). Errors say what failed, with the language's own
/// error (Python traceback, esbuild or rustc diagnostics) first, and how to
/// install a missing tool.
pub fn build(path: &Path, out: Option<&Path>) -> Result<Built> {
    let started = Instant::now();
    let (language, source) = source_of(path)?;
    if let Some(out) = out {
        check_output(out)?;
    }
    let sdk = sdk_dir()?;
    let (out, inputs) = match language {
        Language::Rust => (tools::rust(&sdk, &source, out)?, Vec::new()),
        _ => {
            let out = out.map_or_else(|| default_output(&source), Path::to_path_buf);
            check_output(&out)?;
            let inputs = match language {
                Language::Python => python::python(&sdk, &source, &out)?,
                _ => tools::javascript(&sdk, &source, &out)?,
            };
            (out, inputs)
        }
    };
    Ok(Built {
        language,
        component: out,
        took: started.elapsed(),
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.py");
        std::fs::write(&app, "").unwrap();
        assert_eq!(source_of(&app).unwrap(), (Language::Python, app.clone()));
        assert_eq!(source_of(dir.path()).unwrap(), (Language::Python, app));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(
            source_of(dir.path()).unwrap(),
            (Language::Rust, dir.path().to_path_buf())
        );
        let script = dir.path().join("load.mjs");
        std::fs::write(&script, "").unwrap();
        assert_eq!(source_of(&script).unwrap().0, Language::JavaScript);
        let wasm = dir.path().join("x.wasm");
        std::fs::write(&wasm, "").unwrap();
        let err = source_of(&wasm).unwrap_err().to_string();
        assert!(err.contains("already a component"), "{err}");
        let err = source_of(&dir.path().join("none.py"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(is_source(&script) && !is_source(&wasm));
        // -o never replaces a source or names a folder; a component may be rebuilt.
        let err = build(&script, Some(&script)).unwrap_err().to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read(&script).unwrap(), b"");
        let err = build(&script, Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        std::fs::write(&wasm, b"\0asm\x0d\0\x01\0").unwrap();
        assert!(check_output(&wasm).is_ok());
    }
}
