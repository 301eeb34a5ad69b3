//! Compiled functions on disk for wasmtime's incremental compilation
//! (`Config::enable_incremental_compilation`): Cranelift keys each function
//! by a 32-byte hash of its IR and the target, so the unchanged functions of
//! a rebuilt component (a Python or JS interpreter around a changed script)
//! are loaded, not compiled. Each compile appends the functions it had to
//! compile to one pack file (`functions/<time>-<pid>.fpack`, written into a
//! temporary file created exclusively in that folder and renamed when the
//! compile ends), so a compile costs a file, not a file per function.
//!
//! Pack format: the magic `HFPACK2\n`, then records of `[key: 32 bytes]
//! [length: u32 LE][CRC-32 of key and value: u32 LE][value]`; a truncated
//! last record ends the pack. A record is used only for the function whose
//! key it holds: on each use its key is read again and compared with the
//! one asked for, and the CRC covers both, so a damaged record, or one whose
//! key was swapped with another's, is not used (the function is compiled
//! again) and never becomes another function's machine code. Packs of an
//! older format (no magic; their CRC covered the value alone) are ignored.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A pack's file name extension.
const PACK: &str = "fpack";
/// The first bytes of a pack.
const MAGIC: &[u8; 8] = b"HFPACK2\n";
/// Largest value a record may hold (a compiled function is far smaller).
const MAX_VALUE: u32 = 64 << 20;
/// A record's header: key, length, CRC.
const HEADER: u64 = 40;

/// A finished pack of compiled functions (the temporary file being written
/// is not one).
pub fn is_pack(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == PACK)
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Where a function's compiled bytes are.
#[derive(Clone)]
struct Location {
    file: Arc<std::fs::File>,
    /// The pack, to mark it used (None: the pack this compile is writing).
    pack: Option<Arc<PathBuf>>,
    /// Where the record (its header) starts.
    offset: u64,
    length: u32,
}

/// The pack this process is writing.
struct Writer {
    file: Arc<std::fs::File>,
    /// Removed when dropped unless persisted as a pack.
    temp: tempfile::TempPath,
    end: u64,
}

#[derive(Default)]
struct State {
    loaded: bool,
    index: HashMap<[u8; 32], Location>,
    writer: Option<Writer>,
    /// Packs a hit came from: their modification time is refreshed once.
    used: HashSet<Arc<PathBuf>>,
}

/// The function cache under a compile cache folder; see the module docs.
pub struct FunctionStore {
    dir: PathBuf,
    state: Mutex<State>,
    hits: AtomicU64,
    written: AtomicU64,
}

impl std::fmt::Debug for FunctionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionStore")
            .field("dir", &self.dir)
            .field("counts", &self.counts())
            .finish()
    }
}

/// Read a pack's records into `index` (a damaged or truncated pack yields
/// the records before the damage).
fn read_pack(path: &Path, index: &mut HashMap<[u8; 32], Location>) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    let file = Arc::new(file);
    let pack = Arc::new(path.to_path_buf());
    let size = file.metadata().map_or(0, |m| m.len());
    let mut reader = BufReader::with_capacity(1 << 16, &*file);
    let mut magic = [0u8; 8];
    if reader.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return;
    }
    let mut offset = MAGIC.len() as u64;
    let mut header = [0u8; HEADER as usize];
    while offset + HEADER <= size && reader.read_exact(&mut header).is_ok() {
        let length = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes"));
        if length > MAX_VALUE || offset + HEADER + u64::from(length) > size {
            break;
        }
        let key: [u8; 32] = header[..32].try_into().expect("32 bytes");
        // Packs are read newest first: a function compiled again after a
        // damaged record was found wins over it.
        index.entry(key).or_insert(Location {
            file: file.clone(),
            pack: Some(pack.clone()),
            offset,
            length,
        });
        if reader.seek_relative(i64::from(length)).is_err() {
            break;
        }
        offset += HEADER + u64::from(length);
    }
}

impl FunctionStore {
    /// The store under the compile cache folder `cache_dir` (read on the
    /// first lookup, written on the first insert).
    pub fn new(cache_dir: &Path) -> FunctionStore {
        FunctionStore {
            dir: cache_dir.join(super::FUNCTIONS),
            state: Mutex::new(State::default()),
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.loaded {
            state.loaded = true;
            let mut packs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
                .map(|listing| {
                    listing
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| is_pack(p))
                        .collect()
                })
                .unwrap_or_default();
            // Named by their creation time in hex nanoseconds: newest first.
            packs.sort_by(|a, b| b.cmp(a));
            for pack in packs {
                read_pack(&pack, &mut state.index);
            }
        }
        state
    }

    /// End the pack this process wrote: rename it into place (other
    /// processes see it from then on) and refresh the packs hits came from.
    /// Call after each compile; nothing happens when nothing was written.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for pack in state.used.iter() {
            if let Ok(file) = std::fs::File::options().append(true).open(&**pack) {
                let _ = file.set_modified(SystemTime::now());
            }
        }
        state.used.clear();
        if let Some(writer) = state.writer.take() {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let pack = self
                .dir
                .join(format!("{nanos:x}-{}.{PACK}", std::process::id()));
            // On failure the temporary file is removed as it drops.
            let _ = writer.temp.persist(&pack);
        }
    }
}

impl wasmtime::CacheStore for FunctionStore {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let key: [u8; 32] = key.try_into().ok()?;
        let location = {
            let mut state = self.state();
            let location = state.index.get(&key)?.clone();
            if let Some(pack) = &location.pack {
                state.used.insert(pack.clone());
            }
            location
        };
        // The whole record again: its key must be the one asked for (a
        // record whose key was swapped is another function's code).
        let mut record = vec![0; HEADER as usize + location.length as usize];
        location
            .file
            .read_exact_at(&mut record, location.offset)
            .ok()?;
        let stored_crc = u32::from_le_bytes(record[36..40].try_into().expect("4 bytes"));
        let length = u32::from_le_bytes(record[32..36].try_into().expect("4 bytes"));
        let value = &record[HEADER as usize..];
        if record[..32] != key || length != location.length || record_crc(&key, value) != stored_crc
        {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        record.drain(..HEADER as usize);
        Some(Cow::Owned(record))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let (Ok(key), Ok(length)) = (<[u8; 32]>::try_from(key), u32::try_from(value.len())) else {
            return false;
        };
        if length > MAX_VALUE {
            return false;
        }
        let mut state = self.state();
        if state.writer.is_none() {
            // Created exclusively under a random name: a file or link
            // planted in the folder is never written through.
            let opened = super::create_private_dir(&self.dir)
                .and_then(|()| super::components::temp_file(&self.dir, &format!(".{PACK}.tmp")));
            let Ok(temp) = opened else {
                return false;
            };
            let (file, temp) = temp.into_parts();
            if file.write_all_at(MAGIC, 0).is_err() {
                return false;
            }
            state.writer = Some(Writer {
                file: Arc::new(file),
                temp,
                end: MAGIC.len() as u64,
            });
        }
        let writer = state.writer.as_mut().expect("opened above");
        let crc = record_crc(&key, &value);
        let mut record = Vec::with_capacity(HEADER as usize + value.len());
        record.extend_from_slice(&key);
        record.extend_from_slice(&length.to_le_bytes());
        record.extend_from_slice(&crc.to_le_bytes());
        record.extend_from_slice(&value);
        if writer.file.write_all_at(&record, writer.end).is_err() {
            return false;
        }
        let location = Location {
            file: writer.file.clone(),
            pack: None,
            offset: writer.end,
            length,
        };
        writer.end += record.len() as u64;
        state.index.insert(key, location);
        self.written.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// A record's CRC-32: of its key, then its value.
fn record_crc(key: &[u8; 32], value: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(value);
    hasher.finalize()
}

impl Drop for FunctionStore {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn functions_round_trip_through_a_pack() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::new(dir.path());
        let key = [7u8; 32];
        assert!(store.get(&key).is_none());
        assert!(store.insert(&key, vec![1; 300]));
        assert!(store.insert(&[8u8; 32], vec![2; 10]));
        // Served from the pack being written, before it is finished.
        assert_eq!(store.get(&key).as_deref(), Some(&[1u8; 300][..]));
        assert_eq!(store.counts(), (1, 2));
        // Keys that are not Cranelift's hashes are refused, not mangled.
        assert!(!store.insert(b"short", vec![1]));
        store.finish();
        let packs: Vec<_> = std::fs::read_dir(dir.path().join(super::super::FUNCTIONS))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(packs.len(), 1, "{packs:?}");
        assert!(is_pack(&packs[0]));
        // Another process (a new store) reads it; a truncated tail is ignored.
        let file = std::fs::File::options()
            .append(true)
            .open(&packs[0])
            .unwrap();
        let end = file.metadata().unwrap().len();
        assert_eq!(end, 8 + 40 + 300 + 40 + 10);
        file.write_all_at(&[9u8; 20], end).unwrap();
        let again = FunctionStore::new(dir.path());
        assert_eq!(again.get(&[8u8; 32]).as_deref(), Some(&[2u8; 10][..]));
        assert_eq!(again.get(&key).as_deref(), Some(&[1u8; 300][..]));
        assert!(again.get(&[9u8; 32]).is_none());
        // A byte changed inside a value: not used (compiled again instead).
        let file = std::fs::File::options()
            .write(true)
            .open(&packs[0])
            .unwrap();
        file.write_all_at(&[0xcc], 8 + 40 + 100).unwrap();
        let damaged = FunctionStore::new(dir.path());
        assert!(damaged.get(&key).is_none());
        assert_eq!(damaged.get(&[8u8; 32]).as_deref(), Some(&[2u8; 10][..]));
    }

    #[test]
    fn a_record_whose_key_was_swapped_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::new(dir.path());
        let (one, two) = ([1u8; 32], [2u8; 32]);
        assert!(store.insert(&one, vec![11; 100]));
        assert!(store.insert(&two, vec![22; 100]));
        store.finish();
        let pack = std::fs::read_dir(dir.path().join(super::super::FUNCTIONS))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .next()
            .unwrap();
        // Swap the two keys, leaving lengths and CRCs as they were.
        let file = std::fs::File::options().write(true).open(&pack).unwrap();
        let second = 8 + 40 + 100;
        file.write_all_at(&two, 8).unwrap();
        file.write_all_at(&one, second).unwrap();
        let swapped = FunctionStore::new(dir.path());
        assert!(swapped.get(&one).is_none(), "another function's code");
        assert!(swapped.get(&two).is_none(), "another function's code");
        assert_eq!(swapped.counts(), (0, 0));
        // A pack of the older format (no magic, the CRC of the value alone)
        // is ignored.
        let old_crc = crc32fast::hash(&[5]).to_le_bytes();
        let old: Vec<u8> = [&one[..], &[1, 0, 0, 0], &old_crc, &[5]].concat();
        std::fs::write(&pack, old).unwrap();
        assert!(FunctionStore::new(dir.path()).get(&one).is_none());
    }

    #[test]
    fn a_link_planted_in_the_folder_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let functions = dir.path().join(super::super::FUNCTIONS);
        std::fs::create_dir(&functions).unwrap();
        // The name an older Horde wrote its pack under.
        let old_temp = functions.join(format!(".{}.{PACK}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_temp).unwrap();
        let store = FunctionStore::new(dir.path());
        assert!(store.insert(&[4u8; 32], vec![4; 50]));
        store.finish();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(
            FunctionStore::new(dir.path()).get(&[4u8; 32]).as_deref(),
            Some(&[4u8; 50][..])
        );
    }
}
