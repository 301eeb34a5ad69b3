//! The compile cache on disk: whole compiled components (`*.cwasm`) and
//! compiled functions (`functions/`, wasmtime's incremental compilation, so
//! a rebuilt component recompiles only the functions that changed); its cap
//! (`HORDE_CACHE_MAX`, 1 GiB by default) kept by evicting the least recently
//! used entries after each write (a hit refreshes a file's modification
//! time); and the listing and clearing behind `horde cache`.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::{Context, Result};

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
            .map_err(|e| {
                anyhow::anyhow!("HORDE_CACHE_MAX={text:?} is not a size (e.g. 500MiB, 2GB): {e}")
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
/// components (`*.cwasm`) and compiled functions (`functions/XX/*`).
pub fn entries(dir: &Path) -> Result<Vec<Cached>> {
    let mut entries = Vec::new();
    files_in(
        dir,
        |p| p.extension().is_some_and(|e| e == "cwasm"),
        &mut entries,
    )?;
    let functions = dir.join(FUNCTIONS);
    if let Ok(shards) = std::fs::read_dir(&functions) {
        for shard in shards.flatten().filter(|s| s.path().is_dir()) {
            files_in(&shard.path(), is_function_entry, &mut entries)?;
        }
    }
    entries.sort_by_key(|entry| entry.used);
    Ok(entries)
}

/// The cache's components and functions apart: (components, their bytes,
/// functions, their bytes).
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

/// A compiled function's file: 62 hex digits (the key's other 2 name its
/// folder), never a temporary file being written.
fn is_function_entry(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 62 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Compiled functions on disk, for wasmtime's incremental compilation
/// (`Config::enable_incremental_compilation`): Cranelift keys each function
/// by a 32-byte hash of its IR and the target, so an unchanged function of a
/// rebuilt component (a Python or JS interpreter around a changed script)
/// is loaded, not compiled. One file per function,
/// `functions/<2 hex>/<62 hex>`, written to a temporary name and renamed
/// into place, so processes compiling at once never see half an entry.
#[derive(Debug)]
pub struct FunctionStore {
    dir: PathBuf,
    hits: AtomicU64,
    written: AtomicU64,
}

impl FunctionStore {
    /// The store under the cache folder `cache_dir` (created on first write).
    pub fn new(cache_dir: &Path) -> FunctionStore {
        FunctionStore {
            dir: cache_dir.join(FUNCTIONS),
            hits: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// Functions loaded from the store and functions written to it so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }

    fn path(&self, key: &[u8]) -> Option<PathBuf> {
        // Cranelift's keys are SHA-256 hashes; anything else is not ours.
        (key.len() == 32).then(|| {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            self.dir.join(&hex[..2]).join(&hex[2..])
        })
    }
}

impl wasmtime::CacheStore for FunctionStore {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let path = self.path(key)?;
        let mut file = std::fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        // Used now: eviction takes the functions no recent build needed.
        let _ = file.set_modified(SystemTime::now());
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(bytes))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Some(path) = self.path(key) else {
            return false;
        };
        let Some(folder) = path.parent() else {
            return false;
        };
        let temp = folder.join(format!(
            ".{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let written = std::fs::create_dir_all(folder)
            .and_then(|()| std::fs::write(&temp, &value))
            .and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
            return false;
        }
        self.written.fetch_add(1, Ordering::Relaxed);
        true
    }
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
            total -= entry.bytes;
            removed += 1;
            freed += entry.bytes;
        }
    }
    Ok((removed, freed))
}

/// Remove every compiled component and function in `dir`.
pub fn clear(dir: &Path) -> Result<(usize, u64)> {
    let (mut removed, mut freed) = (0, 0);
    for entry in entries(dir)? {
        std::fs::remove_file(&entry.path)
            .with_context(|| format!("removing {}", entry.path.display()))?;
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
    fn functions_round_trip_and_count_toward_the_cap() {
        use wasmtime::CacheStore;
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::new(dir.path());
        let key = [7u8; 32];
        assert!(store.get(&key).is_none());
        assert!(store.insert(&key, vec![1; 300]));
        assert_eq!(store.get(&key).as_deref(), Some(&[1u8; 300][..]));
        assert_eq!(store.counts(), (1, 1));
        // Keys that are not Cranelift's hashes are refused, not mangled.
        assert!(!store.insert(b"short", vec![1]));
        let component = component(dir.path(), "c", 400, 100);
        let all = entries(dir.path()).unwrap();
        assert_eq!(totals(&all), (1, 400, 1, 300));
        // The function was used last, but the newest component is what stays.
        assert_eq!(prune(dir.path(), 500).unwrap(), (1, 300));
        assert!(component.exists() && store.get(&key).is_none());
        assert_eq!(clear(dir.path()).unwrap(), (1, 400));
    }
}
