//! The compiled-component cache's size: a cap (`HORDE_CACHE_MAX`, 1 GiB by
//! default) kept by evicting the least recently used components after each
//! write (a hit refreshes its file's modification time), and the listing
//! and clearing behind `horde cache`.

use std::path::{Path, PathBuf};
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

/// The compiled components in `dir`, least recently used first (none when
/// the folder does not exist).
pub fn entries(dir: &Path) -> Result<Vec<Cached>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading the cache {}", dir.display())),
    };
    let mut entries: Vec<Cached> = listing
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "cwasm"))
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some(Cached {
                path: entry.path(),
                bytes: metadata.len(),
                used: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect();
    entries.sort_by_key(|entry| entry.used);
    Ok(entries)
}

/// Mark a cached component as just used (its modification time), so
/// eviction takes the others first. Best effort.
pub fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Remove least recently used components until `dir` holds at most
/// `max_bytes` (the most recent one stays even if it alone is larger).
/// Returns how many were removed and the bytes freed.
pub fn prune(dir: &Path, max_bytes: u64) -> Result<(usize, u64)> {
    let entries = entries(dir)?;
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    let (mut removed, mut freed) = (0, 0);
    let keep_last = entries.len().saturating_sub(1);
    for entry in entries.iter().take(keep_last) {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&entry.path).is_ok() {
            total -= entry.bytes;
            removed += 1;
            freed += entry.bytes;
        }
    }
    Ok((removed, freed))
}

/// Remove every compiled component in `dir`.
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
}
