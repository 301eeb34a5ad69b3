//! The WIT and SDKs embedded in the binary, extracted once per content into
//! a folder laid out as Horde's repository (`wit/`, `sdk/rust`,
//! `sdk/python`, `sdk/js`), so every language's tool finds what matches
//! this binary from any directory. The folders are private to the user
//! (0700), a symbolic link planted in their place is never followed, and an
//! extracted SDK is compared with the embedded one before each use.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// Where the SDK is: `$HORDE_SDK_DIR` when set (e.g. a checkout of Horde's
/// repository, used as it is), else the embedded files extracted under the
/// user's cache folder (`horde/sdk-VERSION-HASH`).
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

/// A folder private to this user: created 0700 if missing; an existing one
/// must be a real folder (not a symbolic link) owned by this user, and is
/// made 0700.
fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => return Ok(()),
                // Another build made it first: check it as any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        bail!(
            "{} is not a folder (a symbolic link or a file): Horde keeps its SDK there and \
             does not follow it; remove it, or set HORDE_SDK_DIR",
            dir.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "{} belongs to another user (uid {}): Horde's SDK folder must be yours; remove \
             it, or set HORDE_SDK_DIR",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Whether `dir` holds exactly the embedded files: each a regular file (no
/// symbolic link on the way) with the embedded bytes, in folders private
/// to this user. Files the tools add (node_modules) are not looked at.
fn matches_embedded(dir: &Path) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let private = |path: &Path| {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_dir() && m.uid() == me && m.mode() & 0o077 == 0)
    };
    if !private(dir) {
        return false;
    }
    let mut checked = std::collections::HashSet::new();
    SDK_FILES.iter().all(|(relative, bytes)| {
        let path = dir.join(relative);
        let folders_ok = Path::new(relative)
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| checked.contains(a) || (private(&dir.join(a)) && checked.insert(a)));
        folders_ok
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.uid() == me)
            && std::fs::read(&path).is_ok_and(|read| read == *bytes)
    })
}

/// Write the embedded files into a new private folder `temp`.
fn write_files(temp: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    for (relative, bytes) in SDK_FILES {
        let path = temp.join(relative);
        if let Some(parent) = path.parent() {
            DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Extract the embedded files into `base/sdk-VERSION-HASH`, unless that
/// folder already holds exactly them. Anything else there (a symbolic
/// link, a folder of another user's, a changed file) is moved aside and
/// removed, then the files are written to a temporary folder and renamed,
/// so concurrent builds never see half an SDK.
pub fn extract_into(base: &Path) -> Result<PathBuf> {
    private_dir(base)?;
    let dir = base.join(format!("sdk-{}-{}", env!("CARGO_PKG_VERSION"), digest()));
    if matches_embedded(&dir) {
        return Ok(dir);
    }
    let pid = std::process::id();
    if std::fs::symlink_metadata(&dir).is_ok() {
        // Renamed first: a symbolic link is moved, never followed, and a
        // concurrent build sees either the old folder or none.
        let stale = base.join(format!(".sdk-{pid}.stale"));
        let _ = std::fs::remove_dir_all(&stale);
        match std::fs::rename(&dir, &stale) {
            Ok(()) => {
                eprintln!(
                    "{} differed from the SDK built into this binary (changed files or a \
                     symbolic link): extracting it again",
                    dir.display()
                );
                let removed = match std::fs::symlink_metadata(&stale) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&stale),
                    _ => std::fs::remove_file(&stale),
                };
                removed.with_context(|| format!("removing {}", stale.display()))?;
            }
            Err(_) if std::fs::symlink_metadata(&dir).is_err() => {}
            Err(e) => return Err(e).with_context(|| format!("moving {} aside", dir.display())),
        }
    }
    let temp = base.join(format!(".sdk-{pid}.tmp"));
    let _ = std::fs::remove_dir_all(&temp);
    write_files(&temp)?;
    match std::fs::rename(&temp, &dir) {
        Ok(()) => Ok(dir),
        // Another build extracted it first.
        Err(_) if matches_embedded(&dir) => {
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
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(base.path()), 0o700, "the cache folder is private");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("sdk/python/horde")), 0o700);
    }

    #[test]
    fn a_planted_or_changed_sdk_is_replaced_by_the_embedded_one() {
        let base = tempfile::tempdir().unwrap();
        let dir = extract_into(base.path()).unwrap();
        let init = Path::new("sdk/python/horde/__init__.py");
        let embedded = std::fs::read(dir.join(init)).unwrap();
        // A modified copy elsewhere, linked in the SDK's place.
        let planted = tempfile::tempdir().unwrap();
        let copy = planted.path().join("sdk");
        std::fs::rename(&dir, &copy).unwrap();
        std::fs::write(copy.join(init), b"raise SystemExit('planted')\n").unwrap();
        std::os::unix::fs::symlink(&copy, &dir).unwrap();
        assert_eq!(extract_into(base.path()).unwrap(), dir);
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir() && !meta.file_type().is_symlink(), "{meta:?}");
        assert_eq!(std::fs::read(dir.join(init)).unwrap(), embedded);
        assert_eq!(
            std::fs::read(copy.join(init)).unwrap(),
            b"raise SystemExit('planted')\n",
            "the link's target is left alone"
        );
        // A file changed in place is written again.
        std::fs::write(dir.join(init), b"# changed\n").unwrap();
        extract_into(base.path()).unwrap();
        assert_eq!(std::fs::read(dir.join(init)).unwrap(), embedded);
        // A symbolic link inside it, too.
        let wit = dir.join("wit");
        std::fs::remove_dir_all(&wit).unwrap();
        std::os::unix::fs::symlink(copy.join("wit"), &wit).unwrap();
        extract_into(base.path()).unwrap();
        assert!(
            !std::fs::symlink_metadata(&wit)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 1);
    }
}
