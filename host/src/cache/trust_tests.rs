//! Tests of the trust placed in the compile cache, through the engine: a
//! compiled component is run only for the component it was compiled from,
//! links planted in the cache are not followed, and function records whose
//! keys were swapped are compiled again, not linked as another function.

use std::path::Path;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::{CompileSource, cache_key, compile_bytes, new_engine, new_engine_for};

/// A component exporting one function, `name`, that returns `value`.
fn returning(name: &str, value: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const {value}))
            (core instance $i (instantiate $m))
            (func (export "{name}") (result u32) (canon lift (core func $i "f"))))"#
    ))
    .unwrap()
}

/// Call the export `name` of `component` (a function returning a u32).
fn call(engine: &Engine, component: &Component, name: &str) -> u32 {
    let mut store = wasmtime::Store::new(engine, ());
    store.set_epoch_deadline(1);
    let instance = wasmtime::component::Linker::new(engine)
        .instantiate(&mut store, component)
        .unwrap();
    let func = instance
        .get_typed_func::<(), (u32,)>(&mut store, name)
        .unwrap();
    func.call(&mut store, ()).unwrap().0
}

#[test]
fn a_compiled_component_planted_under_another_ones_name_is_not_run() {
    let engine = new_engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (probe, other) = (returning("probe", 1), returning("other", 2));
    let path = Path::new("probe.wasm");
    compile_bytes(&engine, path, &probe, Some(&cache)).unwrap();
    compile_bytes(&engine, path, &other, Some(&cache)).unwrap();
    let probe_file = crate::cache::component_path(&cache, &cache_key(&engine, &probe));
    let other_file = crate::cache::component_path(&cache, &cache_key(&engine, &other));
    // Plant the other component's compiled file, intact, as probe's.
    std::fs::copy(&other_file, &probe_file).unwrap();
    let (component, source) = compile_bytes(&engine, path, &probe, Some(&cache)).unwrap();
    assert_eq!(source, CompileSource::Compiled);
    assert_eq!(call(&engine, &component, "probe"), 1);
    // Its entry is probe's own again.
    let (_, source) = compile_bytes(&engine, path, &probe, Some(&cache)).unwrap();
    assert_eq!(source, CompileSource::Cached);
}

#[test]
fn links_planted_in_the_cache_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let cache = dir.path().join("cache");
    let functions = cache.join(crate::cache::FUNCTIONS);
    std::fs::create_dir_all(&functions).unwrap();
    // The temporary names an older Horde wrote to, and the entry's own name.
    let pid = std::process::id();
    let bytes = returning("f", 7);
    let store = Arc::new(crate::cache::FunctionStore::new(&cache));
    let engine = new_engine_for(None, Some(store.clone())).unwrap();
    let entry = crate::cache::component_path(&cache, &cache_key(&engine, &bytes));
    for link in [
        cache.join(format!(".{pid}.tmp")),
        functions.join(format!(".{pid}.fpack.tmp")),
        entry.clone(),
    ] {
        std::os::unix::fs::symlink(&victim, link).unwrap();
    }
    let (component, source) =
        compile_bytes(&engine, Path::new("f.wasm"), &bytes, Some(&cache)).unwrap();
    store.finish();
    assert_eq!(source, CompileSource::Compiled);
    assert_eq!(call(&engine, &component, "f"), 7);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(!std::fs::symlink_metadata(&entry).unwrap().is_symlink());
    let (_, source) = compile_bytes(&engine, Path::new("f.wasm"), &bytes, Some(&cache)).unwrap();
    assert_eq!(source, CompileSource::Cached);
}

#[test]
fn function_records_with_swapped_keys_are_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wat::parse_str(
        r#"(component
            (core module $m
                (func (export "one") (result i32) i32.const 11)
                (func (export "two") (param) (result i32) i32.const 20 i32.const 2 i32.add))
            (core instance $i (instantiate $m))
            (func (export "one") (result u32) (canon lift (core func $i "one")))
            (func (export "two") (result u32) (canon lift (core func $i "two"))))"#,
    )
    .unwrap();
    let path = Path::new("two.wasm");
    let store = Arc::new(crate::cache::FunctionStore::new(dir.path()));
    let engine = new_engine_for(None, Some(store.clone())).unwrap();
    compile_bytes(&engine, path, &bytes, None).unwrap();
    store.finish();
    // Hits of a first compile: functions that occur twice in the component.
    let (twice, _) = store.counts();
    // Rotate the keys of the pack's records: each key now stands before
    // another function's code, with that code's CRC.
    let pack = std::fs::read_dir(dir.path().join(crate::cache::FUNCTIONS))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap();
    let mut file = std::fs::read(&pack).unwrap();
    let mut offsets = Vec::new();
    let mut at = 8;
    while at + 40 <= file.len() {
        offsets.push(at);
        let length = u32::from_le_bytes(file[at + 32..at + 36].try_into().unwrap());
        at += 40 + length as usize;
    }
    assert!(offsets.len() >= 2, "{offsets:?}");
    // Each distinct key is replaced by the next distinct one (a key may
    // be in two records when two threads compiled the same function).
    let mut keys: Vec<Vec<u8>> = offsets.iter().map(|&o| file[o..o + 32].to_vec()).collect();
    keys.sort();
    keys.dedup();
    assert!(keys.len() >= 2, "{keys:?}");
    for &o in &offsets {
        let now = keys.iter().position(|k| k[..] == file[o..o + 32]).unwrap();
        file[o..o + 32].copy_from_slice(&keys[(now + 1) % keys.len()]);
    }
    std::fs::write(&pack, file).unwrap();
    let store = Arc::new(crate::cache::FunctionStore::new(dir.path()));
    let engine = new_engine_for(None, Some(store.clone())).unwrap();
    let (component, _) = compile_bytes(&engine, path, &bytes, None).unwrap();
    let (hits, _) = store.counts();
    assert!(hits <= twice, "a swapped record was used: {hits} hits");
    assert_eq!(call(&engine, &component, "one"), 11);
    assert_eq!(call(&engine, &component, "two"), 22);
}
