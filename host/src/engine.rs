//! The wasmtime engine: its configuration, the epoch ticker, the on-disk
//! cache of compiled components, and loading a scenario with clear errors.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, OptLevel};

use crate::bindings::{Scenario, ScenarioPre};
use crate::vu::VuState;

/// How often the epoch advances: the granularity of CPU checks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Guest time after which a VU computing without pause yields to the other
/// VUs on its thread (it delays their responses by at most about this much).
pub const YIELD_AFTER: Duration = Duration::from_millis(3);

/// Largest wasm stack a guest may use.
const MAX_WASM_STACK: usize = 1 << 20;

/// Build the engine every run uses, with the on-demand allocator and no
/// function cache.
pub fn new_engine() -> Result<Engine> {
    new_engine_for(None, None)
}

/// Runs with more VUs than this use the pooling allocator: one reservation
/// for every instance, so `vm.max_map_count` (65,530 by default, about 9,000
/// instances' worth of mappings) does not cap the VU count.
pub const POOLING_FROM_VUS: u32 = 4000;

/// Build the engine; with `pool` (VU capacity, max linear memory per VU)
/// instances come from a pre-reserved pool sized for that many VUs; with
/// `functions`, compiling keeps and reuses compiled functions there
/// (wasmtime's incremental compilation), so a rebuilt component compiles
/// only what changed.
pub fn new_engine_for(
    pool: Option<(u32, u64)>,
    functions: Option<Arc<crate::cache::FunctionStore>>,
) -> Result<Engine> {
    let mut config = Config::new();
    if let Some(store) = functions {
        config
            .enable_incremental_compilation(store)
            .map_err(anyhow::Error::from)
            .context("enabling the function cache")?;
    }
    if let Some((vus, max_memory)) = pool {
        // Every VU also has the probe instance and replacements in flight: headroom.
        let slots = vus + vus / 10 + 16;
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(8);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        // Slots of exactly the memory cap, no 4 GiB reservations.
        config.memory_reservation(max_memory.next_power_of_two().max(1 << 20));
        config.memory_guard_size(64 * 1024);
    }
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(MAX_WASM_STACK + 512 * 1024);
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("configuring the wasm engine")
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("horde-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where compiled components are kept: `$HORDE_CACHE_DIR`, else the user's
/// cache dir + `horde/components`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HORDE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    dirs::cache_dir().map(|d| d.join("horde").join("components"))
}

/// How a component was obtained, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    Compiled,
    Cached,
}

/// A scenario ready to instantiate, one instance per VU.
#[derive(Clone)]
pub struct LoadedScenario {
    pub pre: ScenarioPre<VuState>,
    pub source: CompileSource,
    pub load_time: Duration,
    /// SHA-256 of the component's bytes, in hex (the reports name the
    /// exact scenario by it).
    pub sha256: String,
}

impl std::fmt::Debug for LoadedScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedScenario")
            .field("source", &self.source)
            .field("load_time", &self.load_time)
            .finish()
    }
}

/// What kind of file the bytes are.
fn check_wasm_kind(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let start: String = bytes
            .iter()
            .take(8)
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        bail!(
            "{} is not a WebAssembly file (it starts with {start:?}, not \"\\0asm\"). \
             Pass the .wasm component built from your scenario, e.g. \
             target/wasm32-wasip2/release/<name>.wasm",
            path.display()
        );
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6] == 0 && bytes[7] == 0 {
        bail!(
            "{} is a core WebAssembly module, not a component. Build the scenario for the \
             `wasm32-wasip2` target (`cargo build --target wasm32-wasip2 --release`), or wrap \
             a core module with `wasm-tools component new`",
            path.display()
        );
    }
    Ok(())
}

/// The compile cache's key for a component: SHA-256 of its bytes and the
/// engine's settings (epochs, memory reservation and the like change the
/// compiled code).
pub fn cache_key(engine: &Engine, bytes: &[u8]) -> crate::cache::Key {
    let mut engine_hasher = DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    let mut digest = Sha256::new();
    digest.update(bytes);
    digest.update(engine_hasher.finish().to_le_bytes());
    digest.finalize().into()
}

/// SHA-256 of `bytes`, lower-case hex: how the report names a scenario or a
/// data file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compile (or load from the cache) the component at `path`.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> Result<(Component, CompileSource)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the scenario component {}", path.display()))?;
    compile_bytes(engine, path, &bytes, cache_dir)
}

/// Compile (or load from the cache) a component's bytes; `path` names it in
/// errors. The caller keeps the cache under its cap ([`crate::cache::prune`])
/// once the compile's function pack is in place too.
pub fn compile_bytes(
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> Result<(Component, CompileSource)> {
    check_wasm_kind(path, bytes)?;
    let key = cache_key(engine, bytes);
    let cached_path = cache_dir.map(|dir| crate::cache::component_path(dir, &key));
    if let Some(cached) = cached_path.as_deref().filter(|p| p.exists()) {
        // The file is run as machine code: use it only if it was compiled
        // from these very bytes by an engine with these settings (the key
        // in its header) and is intact (its CRC).
        let compiled = crate::cache::read_component(cached, &key);
        // SAFETY: the bytes are what `Component::serialize` wrote for this
        // key (component bytes and engine settings) into the user's private
        // cache folder (callers check it with `cache::check_private`), in a
        // file created exclusively and renamed into place once complete,
        // and their CRC-32 matches the one written with them.
        match compiled.map(|compiled| unsafe { Component::deserialize(engine, &compiled) }) {
            Some(Ok(component)) => {
                crate::cache::touch(cached);
                return Ok((component, CompileSource::Cached));
            }
            _ => crate::cache::remove_component(cached),
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| {
        anyhow!(
            "{} is not a valid WebAssembly component: {e:#}",
            path.display()
        )
    })?;
    if let Some(dir) = cache_dir {
        // The cache is an optimisation: failing to write it is not an error.
        if let Ok(compiled) = component.serialize() {
            let _ = crate::cache::write_component(dir, &key, &compiled);
        }
    }
    Ok((component, CompileSource::Compiled))
}

/// The linker with everything a scenario may import: Horde's interfaces,
/// WASI 0.2 (with nothing granted by the per-VU context) and wasi:http's
/// outgoing handler (under the same grants as Horde's `http`).
pub fn new_linker(engine: &Engine) -> Result<Linker<VuState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    crate::caps::ip_name_lookup::add_to_linker(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:sockets/ip-name-lookup")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    crate::caps::resources::add_to_linker(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking the resource audit")?;
    Scenario::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| state)
        .map_err(anyhow::Error::from)
        .context("linking Horde's interfaces")?;
    Ok(linker)
}

const USER_EXPORT: &str = "horde:scenario/user@0.1.0";

/// Check the component's imports and exports against the scenario world and
/// explain any mismatch in terms of the world.
fn check_world(engine: &Engine, component: &Component, path: &Path) -> Result<()> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !exports.iter().any(|name| name == USER_EXPORT) {
        let found = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        };
        bail!(
            "{} is a component of another world: it does not export `{USER_EXPORT}` (it \
             exports {found}). Build it against the `scenario` world in Horde's wit/ folder, \
             e.g. with the horde-sdk crate and `horde_sdk::export_scenario!`",
            path.display()
        );
    }
    let provided = |name: &str| name.starts_with("horde:scenario/") || name.starts_with("wasi:");
    let missing: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|n| !provided(n))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} imports {}, which Horde does not provide. A scenario may import only \
             horde:scenario interfaces (http, metrics, control) and WASI 0.2",
            path.display(),
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Load, check and pre-instantiate a scenario component from `path`, or
/// from `embedded` bytes (then `path` only names it).
pub fn load_scenario(
    engine: &Engine,
    linker: &Linker<VuState>,
    path: &Path,
    embedded: Option<&[u8]>,
    cache_dir: Option<&Path>,
) -> Result<LoadedScenario> {
    let started = Instant::now();
    let read;
    let bytes = match embedded {
        Some(bytes) => bytes,
        None => {
            read = std::fs::read(path)
                .with_context(|| format!("reading the scenario component {}", path.display()))?;
            &read[..]
        }
    };
    let (component, source) = compile_bytes(engine, path, bytes, cache_dir)?;
    let sha256 = sha256_hex(bytes);
    check_world(engine, &component, path)?;
    let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
        anyhow!(
            "{} cannot be linked against Horde's imports: {e:#}",
            path.display()
        )
    })?;
    let pre = ScenarioPre::new(instance_pre).map_err(|e| {
        anyhow!(
            "{} does not match the scenario world: {e:#}",
            path.display()
        )
    })?;
    Ok(LoadedScenario {
        pre,
        source,
        load_time: started.elapsed(),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_wasm_and_core_modules() {
        let path = Path::new("x.wasm");
        let err = check_wasm_kind(path, b"#!/bin/sh\necho")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let core = wat::parse_str("(module)").unwrap();
        let err = check_wasm_kind(path, &core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let component = wat::parse_str("(component)").unwrap();
        assert!(check_wasm_kind(path, &component).is_ok());
    }

    #[test]
    fn component_of_another_world_is_named() {
        let engine = new_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.wasm");
        let wat = r#"(component
            (import "acme:thing/api" (instance))
        )"#;
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        let (component, _) = load_component(&engine, &path, None).unwrap();
        let err = check_world(&engine, &component, &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not export `horde:scenario/user@0.1.0`"),
            "{err}"
        );
    }

    #[test]
    fn an_unchanged_function_is_not_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::cache::FunctionStore::new(dir.path()));
        let engine = new_engine_for(None, Some(store.clone())).unwrap();
        // Two builds of one module: `shared` is the same, `edited` is not.
        let build = |constant: i32| {
            wat::parse_str(format!(
                r#"(component (core module
                    (func (export "shared") (param i32) (result i32)
                        local.get 0 i32.const 3 i32.mul i32.const 1 i32.add)
                    (func (export "edited") (result i32) i32.const {constant})))"#
            ))
            .unwrap()
        };
        let path = Path::new("scenario.wasm");
        compile_bytes(&engine, path, &build(1), None).unwrap();
        let (hits, first) = store.counts();
        assert_eq!(hits, 0);
        assert!(first >= 2, "both functions kept ({first})");
        compile_bytes(&engine, path, &build(2), None).unwrap();
        let (hits, written) = store.counts();
        assert!(hits >= 1, "the shared function came from the cache");
        assert_eq!(written - first, 1, "only the edited function compiled");
    }

    #[test]
    fn cache_round_trips() {
        let engine = new_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wasm");
        let bytes = wat::parse_str("(component)").unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let cache = dir.path().join("cache");
        let (_, first) = load_component(&engine, &path, Some(&cache)).unwrap();
        let (_, second) = load_component(&engine, &path, Some(&cache)).unwrap();
        assert_eq!(first, CompileSource::Compiled);
        assert_eq!(second, CompileSource::Cached);
        // A byte changed inside the compiled file: compiled again, never run.
        let compiled = crate::cache::entries(&cache).unwrap()[0].path.clone();
        let mut damaged = std::fs::read(&compiled).unwrap();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        std::fs::write(&compiled, damaged).unwrap();
        let (_, third) = load_component(&engine, &path, Some(&cache)).unwrap();
        assert_eq!(third, CompileSource::Compiled);
        let key = cache_key(&engine, &bytes);
        assert!(crate::cache::read_component(&compiled, &key).is_some());
    }
}
