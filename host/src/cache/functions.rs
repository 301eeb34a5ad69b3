//! Compiled functions on disk for wasmtime's incremental compilation
//! (`Config::enable_incremental_compilation`): Cranelift keys each function
//! by a 32-byte hash of its IR and the target, so the unchanged functions of
//! a rebuilt component (a Python or JS interpreter around a changed script)
//! are loaded, not compiled. Each compile appends the functions it had to
//! compile to one pack file (`functions/<time>-<pid>.fpack`, written under a
//! temporary name and renamed when the compile ends), so a compile costs a
//! file, not a file per function.
//!
//! Pack format: records of `[key: 32 bytes][length: u32 LE][CRC-32 of the
//! value: u32 LE][value]`; a truncated last record ends the pack, and a
//! value whose CRC does not match is not used (the function is compiled
//! again), so a damaged file never becomes machine code.

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
    offset: u64,
    length: u32,
    crc: u32,
}

/// The pack this process is writing.
struct Writer {
    file: Arc<std::fs::File>,
    temp: PathBuf,
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
    let mut offset = 0u64;
    let mut header = [0u8; HEADER as usize];
    while offset + HEADER <= size && reader.read_exact(&mut header).is_ok() {
        let length = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[36..].try_into().expect("4 bytes"));
        if length > MAX_VALUE || offset + HEADER + u64::from(length) > size {
            break;
        }
        let key: [u8; 32] = header[..32].try_into().expect("32 bytes");
        // Packs are read newest first: a function compiled again after a
        // damaged record was found wins over it.
        index.entry(key).or_insert(Location {
            file: file.clone(),
            pack: Some(pack.clone()),
            offset: offset + HEADER,
            length,
            crc,
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
            if std::fs::rename(&writer.temp, &pack).is_err() {
                let _ = std::fs::remove_file(&writer.temp);
            }
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
        let mut bytes = vec![0; location.length as usize];
        location
            .file
            .read_exact_at(&mut bytes, location.offset)
            .ok()?;
        if crc32fast::hash(&bytes) != location.crc {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(bytes))
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
            let temp = self.dir.join(format!(".{}.{PACK}.tmp", std::process::id()));
            let opened = std::fs::create_dir_all(&self.dir).and_then(|()| {
                std::fs::File::options()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&temp)
            });
            let Ok(file) = opened else {
                return false;
            };
            state.writer = Some(Writer {
                file: Arc::new(file),
                temp,
                end: 0,
            });
        }
        let writer = state.writer.as_mut().expect("opened above");
        let crc = crc32fast::hash(&value);
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
            offset: writer.end + HEADER,
            length,
            crc,
        };
        writer.end += record.len() as u64;
        state.index.insert(key, location);
        self.written.fetch_add(1, Ordering::Relaxed);
        true
    }
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
        assert_eq!(end, 40 + 300 + 40 + 10);
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
        file.write_all_at(&[0xcc], 40 + 100).unwrap();
        let damaged = FunctionStore::new(dir.path());
        assert!(damaged.get(&key).is_none());
        assert_eq!(damaged.get(&[8u8; 32]).as_deref(), Some(&[2u8; 10][..]));
    }
}
