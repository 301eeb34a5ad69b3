//! The compile cache on disk: whole compiled components (`*.cwasm`, each
//! checked against the component it is used for: see `components`) and
//! compiled functions (`functions/`, wasmtime's incremental compilation, so
//! a rebuilt component recompiles only the functions that changed); its cap
//! (`HORDE_CACHE_MAX`, 1 GiB by default) kept by evicting the least recently
//! used entries after each write (a hit refreshes a file's modification
//! time); and the listing and clearing behind `horde cache`.

mod components;
mod functions;
#[cfg(test)]
mod trust_tests;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

pub use components::{
    Key, check_private, component_path, create_private_dir, key_hex, read_component,
    write_component,
};
pub use functions::FunctionStore;

/// The cap when `HORDE_CACHE_MAX` is not set.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The cache's cap in bytes: `HORDE_CACHE_MAX` (e.g. `500MiB`, `2GB`), else
/// [`DEFAULT_MAX_BYTES`]. An unreadable value is an error naming it.
pub fn max_bytes() -> Result<u64> {
    match std::env::var("HORDE_CACHE_MAX") {
        Ok(text) => text
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|size| size.as_u64())
            .map_err(|_| {
                anyhow::anyhow!(
                    "HORDE_CACHE_MAX={text:?} is not a size: give a number with a unit, e.g. \
                     500MiB or 2GB (or unset it for the 1 GiB default)"
                )
            }),
        Err(_) => Ok(DEFAULT_MAX_BYTES),
    }
}

/// One compiled component in the cache.
#[derive(Debug, Clone)]
pub struct Cached {
    pub path: PathBuf,
    pub bytes: u64,
    /// Last written or used.
    pub used: SystemTime,
}

/// The sub-folder of the cache that holds compiled functions.
pub const FUNCTIONS: &str = "functions";

/// The files of one cache folder that `keep` accepts (none when it does not
/// exist).
fn files_in(dir: &Path, keep: impl Fn(&Path) -> bool, into: &mut Vec<Cached>) -> Result<()> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading the cache {}", dir.display())),
    };
    into.extend(
        listing
            .flatten()
            .filter(|entry| keep(&entry.path()))
            .filter_map(|entry| {
                let metadata = entry.metadata().ok()?;
                metadata.is_file().then(|| Cached {
                    path: entry.path(),
                    bytes: metadata.len(),
                    used: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                })
            }),
    );
    Ok(())
}

/// Every entry in the cache at `dir`, least recently used first: compiled
/// components (`*.cwasm`) and packs of compiled functions (`functions/*.fpack`).
pub fn entries(dir: &Path) -> Result<Vec<Cached>> {
    let mut entries = Vec::new();
    files_in(
        dir,
        |p| p.extension().is_some_and(|e| e == "cwasm"),
        &mut entries,
    )?;
    files_in(&dir.join(FUNCTIONS), functions::is_pack, &mut entries)?;
    entries.sort_by_key(|entry| entry.used);
    Ok(entries)
}

/// The cache's components and function packs apart: (components, their
/// bytes, packs, their bytes).
pub fn totals(entries: &[Cached]) -> (usize, u64, usize, u64) {
    let mut totals = (0, 0, 0, 0);
    for entry in entries {
        if entry.path.extension().is_some_and(|e| e == "cwasm") {
            totals.0 += 1;
            totals.1 += entry.bytes;
        } else {
            totals.2 += 1;
            totals.3 += entry.bytes;
        }
    }
    totals
}

/// Remove a compiled component (and an older Horde's CRC file beside it;
/// best effort).
pub fn remove_component(component: &Path) {
    let _ = std::fs::remove_file(component);
    let _ = std::fs::remove_file(components::legacy_crc_path(component));
}

/// Mark a cached component as just used (its modification time), so
/// eviction takes the others first. Best effort.
pub fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Remove least recently used entries until `dir` holds at most
/// `max_bytes` (the most recent component stays even if it alone is
/// larger). Returns how many were removed and the bytes freed.
pub fn prune(dir: &Path, max_bytes: u64) -> Result<(usize, u64)> {
    remove_abandoned(dir);
    remove_abandoned(&dir.join(FUNCTIONS));
    let entries = entries(dir)?;
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    let (mut removed, mut freed) = (0, 0);
    let newest_component = entries
        .iter()
        .rposition(|e| e.path.extension().is_some_and(|x| x == "cwasm"));
    for (at, entry) in entries.iter().enumerate() {
        if total <= max_bytes {
            break;
        }
        if Some(at) == newest_component {
            continue;
        }
        if std::fs::remove_file(&entry.path).is_ok() {
            let _ = std::fs::remove_file(components::legacy_crc_path(&entry.path));
            total -= entry.bytes;
            removed += 1;
            freed += entry.bytes;
        }
    }
    Ok((removed, freed))
}

/// Remove temporary files (`.NAME.tmp`) that a killed process left in `dir`
/// over an hour ago.
fn remove_abandoned(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        if name.starts_with('.') && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Remove every compiled component and function in `dir`.
pub fn clear(dir: &Path) -> Result<(usize, u64)> {
    let (mut removed, mut freed) = (0, 0);
    for entry in entries(dir)? {
        std::fs::remove_file(&entry.path)
            .with_context(|| format!("removing {}", entry.path.display()))?;
        let _ = std::fs::remove_file(components::legacy_crc_path(&entry.path));
        removed += 1;
        freed += entry.bytes;
    }
    Ok((removed, freed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn component(dir: &Path, name: &str, bytes: usize, age_s: u64) -> PathBuf {
        let path = dir.join(format!("{name}.cwasm"));
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(age_s))
            .unwrap();
        path
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let old = component(dir.path(), "old", 400, 300);
        let used = component(dir.path(), "used", 400, 200);
        let new = component(dir.path(), "new", 400, 100);
        std::fs::write(dir.path().join("notes.txt"), "not a component").unwrap();
        // A hit on "used" makes it the most recent.
        touch(&used);
        assert_eq!(prune(dir.path(), 900).unwrap(), (1, 400));
        assert!(!old.exists() && used.exists() && new.exists());
        assert_eq!(prune(dir.path(), 500).unwrap(), (1, 400));
        assert!(!new.exists() && used.exists());
        // The most recent stays even when it alone is over the cap.
        assert_eq!(prune(dir.path(), 10).unwrap(), (0, 0));
        assert_eq!(clear(dir.path()).unwrap(), (1, 400));
        assert!(entries(dir.path()).unwrap().is_empty());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn function_packs_count_toward_the_cap() {
        use wasmtime::CacheStore;
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::new(dir.path());
        let key = [7u8; 32];
        assert!(store.insert(&key, vec![1; 260]));
        store.finish();
        let component = component(dir.path(), "c", 400, 100);
        let all = entries(dir.path()).unwrap();
        assert_eq!(totals(&all), (1, 400, 1, 308));
        // The pack was written last, but the newest component is what stays.
        assert_eq!(prune(dir.path(), 500).unwrap(), (1, 308));
        assert!(component.exists() && FunctionStore::new(dir.path()).get(&key).is_none());
        assert_eq!(clear(dir.path()).unwrap(), (1, 400));
    }
}
