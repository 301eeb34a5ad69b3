//! The WIT and SDKs embedded in the binary, extracted once per content into
//! a folder laid out as Horde's repository (`wit/`, `sdk/rust`,
//! `sdk/python`, `sdk/js`), so every language's tool finds what matches
//! this binary from any directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// Where the SDK is: `$HORDE_SDK_DIR` when set (e.g. a checkout of Horde's
/// repository, used as it is), else the embedded files extracted under the
/// user's cache folder (`horde/sdk-VERSION-HASH`), written once.
pub fn sdk_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HORDE_SDK_DIR") {
        let dir = PathBuf::from(dir);
        anyhow::ensure!(
            dir.join("wit/scenario.wit").is_file(),
            "HORDE_SDK_DIR={} has no wit/scenario.wit: point it at a checkout of Horde's \
             repository, or unset it to use the SDK built into this binary",
            dir.display()
        );
        return Ok(dir);
    }
    let base = dirs::cache_dir()
        .context("no cache folder for the SDK: set HORDE_SDK_DIR or HOME")?
        .join("horde");
    extract_into(&base)
}

/// The embedded files' digest: a folder name that changes with their content.
fn digest() -> String {
    let mut hash = Sha256::new();
    for (path, bytes) in SDK_FILES {
        hash.update(path.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Extract the embedded files into `base/sdk-VERSION-HASH` unless they are
/// there; written to a temporary folder and renamed, so concurrent builds
/// never see half an SDK.
pub fn extract_into(base: &Path) -> Result<PathBuf> {
    let dir = base.join(format!("sdk-{}-{}", env!("CARGO_PKG_VERSION"), digest()));
    if dir.join("wit/scenario.wit").is_file() {
        return Ok(dir);
    }
    let temp = base.join(format!(".sdk-{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    for (relative, bytes) in SDK_FILES {
        let path = temp.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    match std::fs::rename(&temp, &dir) {
        Ok(()) => Ok(dir),
        // Another build extracted it first.
        Err(_) if dir.join("wit/scenario.wit").is_file() => {
            let _ = std::fs::remove_dir_all(&temp);
            Ok(dir)
        }
        Err(e) => Err(e).with_context(|| format!("moving the SDK into {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_is_embedded_and_extracts_once() {
        for needed in [
            "wit/scenario.wit",
            "sdk/rust/Cargo.toml",
            "sdk/rust/src/lib.rs",
            "sdk/python/sitecustomize.py",
            "sdk/python/horde/__init__.py",
            "sdk/js/bin/build.mjs",
            "sdk/js/package-lock.json",
        ] {
            assert!(
                SDK_FILES.iter().any(|(path, _)| *path == needed),
                "{needed} is embedded"
            );
        }
        assert!(
            !SDK_FILES
                .iter()
                .any(|(path, _)| path.contains("node_modules") || path.contains("__pycache__")),
            "tools and caches are not"
        );
        let base = tempfile::tempdir().unwrap();
        let dir = extract_into(base.path()).unwrap();
        let wit = std::fs::read(dir.join("wit/scenario.wit")).unwrap();
        assert_eq!(wit, include_bytes!("../../../wit/scenario.wit"));
        assert_eq!(extract_into(base.path()).unwrap(), dir);
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 1);
    }
}
