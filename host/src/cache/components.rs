//! Compiled components on disk (`<key>.cwasm`) and the trust placed in
//! them: each file carries the cache key it was compiled for (SHA-256 of
//! the component's bytes and the engine's settings) and a CRC-32 of the
//! compiled bytes, both checked before the bytes are used, so a file copied
//! or renamed to another component's name, or damaged, is compiled again
//! instead of run; files are written into a temporary file created
//! exclusively in the same folder (never through an existing name or link)
//! and renamed into place; cache folders are created private to the user
//! (0700), and one that another user could write to is not used at all.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The first bytes of a compiled component's file (version 2: a header
/// with the key; the older files, a bare `Component::serialize` output
/// with its CRC in a `.crc` file beside it, are compiled again).
const MAGIC: &[u8; 8] = b"HORDECW2";
/// Header: magic, key (32 bytes), CRC-32 of the compiled bytes (u32 LE),
/// their length (u64 LE).
const HEADER: usize = 8 + 32 + 4 + 8;

/// A cache key: SHA-256 of a component's bytes and the engine's settings.
pub type Key = [u8; 32];

/// The key in hex, as file names hold it.
pub fn key_hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the compiled component for `key` is kept in the cache at `dir`.
pub fn component_path(dir: &Path, key: &Key) -> PathBuf {
    dir.join(format!("{}.cwasm", key_hex(key)))
}

/// Where an older Horde kept a compiled component's CRC-32: beside it,
/// `<key>.crc` (removed with the component).
pub(super) fn legacy_crc_path(component: &Path) -> PathBuf {
    component.with_extension("crc")
}

/// The compiled bytes (`Component::serialize`'s output) in the file at
/// `path`, when it was written for `key` and is intact. None when the file
/// is missing, is of an older format, is damaged (CRC or length), or was
/// compiled from another component (its key differs: a file copied or
/// renamed to this name).
pub fn read_component(path: &Path, key: &Key) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC || header[8..40] != key[..] {
        return None;
    }
    let crc = u32::from_le_bytes(header[40..44].try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(header[44..52].try_into().expect("8 bytes"));
    if length != size.checked_sub(HEADER as u64)? {
        return None;
    }
    let mut compiled = Vec::with_capacity(usize::try_from(length).ok()?);
    file.read_to_end(&mut compiled).ok()?;
    (compiled.len() as u64 == length && crc32fast::hash(&compiled) == crc).then_some(compiled)
}

/// Write `compiled` (`Component::serialize`'s output) as the component for
/// `key` in the cache at `dir` (created 0700 if missing): a temporary file
/// created exclusively in `dir` (`.NAME.tmp`, random name, no link
/// followed) is filled, then renamed over `<key>.cwasm` (a link planted at
/// that name is replaced, not followed). Returns the path written.
pub fn write_component(dir: &Path, key: &Key, compiled: &[u8]) -> Result<PathBuf> {
    create_private_dir(dir)?;
    let target = component_path(dir, key);
    let mut temp = temp_file(dir, ".tmp")?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(key);
    header.extend_from_slice(&crc32fast::hash(compiled).to_le_bytes());
    header.extend_from_slice(&(compiled.len() as u64).to_le_bytes());
    temp.write_all(&header)
        .and_then(|()| temp.write_all(compiled))
        .with_context(|| format!("writing a compiled component into {}", dir.display()))?;
    temp.persist(&target)
        .with_context(|| format!("renaming a compiled component to {}", target.display()))?;
    let _ = std::fs::remove_file(legacy_crc_path(&target));
    Ok(target)
}

/// A new temporary file in `dir`, `.<random><suffix>`, created with
/// O_EXCL (an existing file or link of that name is never opened) and
/// readable only by the user; removed when dropped unless persisted.
pub(super) fn temp_file(dir: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".")
        .suffix(suffix)
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// Create `dir` and any missing parents private to the user (mode 0700);
/// an existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the cache folder {}", dir.display()))
}

/// Whether the cache at `dir` (and its `functions/` folder) can be trusted:
/// Ok when missing (it will be created private) or owned by this user and
/// writable by no one else. The error says why not and how to fix it;
/// compiled code from such a folder could have been planted by another
/// user, so a run then compiles without the cache.
pub fn check_private(dir: &Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for folder in [dir.to_path_buf(), dir.join(super::FUNCTIONS)] {
        let Ok(metadata) = std::fs::metadata(&folder) else {
            continue;
        };
        let problem = if !metadata.is_dir() {
            "is not a folder".to_string()
        } else if metadata.uid() != me {
            format!("belongs to another user (uid {})", metadata.uid())
        } else if metadata.mode() & 0o022 != 0 {
            format!(
                "can be written by other users (mode {:o})",
                metadata.mode() & 0o777
            )
        } else {
            continue;
        };
        return Err(format!(
            "not using the compile cache {}: {} {problem}, so another user could plant \
             compiled code in it; the scenario is compiled without the cache. Make it yours and \
             private (chmod 700 {}), or set HORDE_CACHE_DIR to a folder of your own",
            dir.display(),
            folder.display(),
            folder.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_is_used_only_for_the_key_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a").join("cache");
        let (one, two) = ([1u8; 32], [2u8; 32]);
        let path = write_component(&cache, &one, b"compiled one").unwrap();
        assert_eq!(
            read_component(&path, &one).as_deref(),
            Some(&b"compiled one"[..])
        );
        // Created private, parents too.
        for folder in [&cache, &dir.path().join("a")] {
            let mode = std::fs::metadata(folder).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", folder.display());
        }
        // Copied to another component's name: not used for it.
        let planted = component_path(&cache, &two);
        std::fs::copy(&path, &planted).unwrap();
        assert!(read_component(&planted, &two).is_none());
        // Damaged, cut short, or grown: not used.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_component(&path, &one).is_none());
        std::fs::write(&path, &bytes[..last]).unwrap();
        assert!(read_component(&path, &one).is_none());
        // An older format (no header) is not used either.
        std::fs::write(&path, b"\x7fELF....").unwrap();
        assert!(read_component(&path, &one).is_none());
        // Nothing temporary is left behind.
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_link_at_the_target_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let cache = dir.path().join("cache");
        create_private_dir(&cache).unwrap();
        let key = [3u8; 32];
        std::os::unix::fs::symlink(&victim, component_path(&cache, &key)).unwrap();
        let path = write_component(&cache, &key, b"compiled").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(
            read_component(&path, &key).as_deref(),
            Some(&b"compiled"[..])
        );
    }

    #[test]
    fn a_folder_others_can_write_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        assert!(check_private(&cache).is_ok(), "missing: created private");
        create_private_dir(&cache.join(super::super::FUNCTIONS)).unwrap();
        assert!(check_private(&cache).is_ok());
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_private(&cache).unwrap_err();
        assert!(
            error.contains("mode 777") && error.contains("chmod 700"),
            "{error}"
        );
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
        let functions = cache.join(super::super::FUNCTIONS);
        std::fs::set_permissions(&functions, std::fs::Permissions::from_mode(0o770)).unwrap();
        let error = check_private(&cache).unwrap_err();
        assert!(error.contains("functions"), "{error}");
    }
}
