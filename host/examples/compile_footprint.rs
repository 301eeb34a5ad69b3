//! Compile-time footprint of one component: wall time and peak RSS (VmHWM)
//! of compiling it into a compile cache as `horde run` does (the compiled
//! component and its functions), and at which step memory grows.
//!
//! Usage: `cargo run --release --example compile_footprint -- COMPONENT.wasm CACHE_DIR`
//! (run it on a first build and then on a rebuilt one with the same
//! CACHE_DIR; the cache is not pruned).

use std::sync::Arc;
use std::time::Instant;

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(step: &str, started: Instant) {
    println!(
        "{step:<28} {:>8.0} ms   RSS {:>6} KiB   peak {:>6} KiB",
        started.elapsed().as_secs_f64() * 1000.0,
        status("VmRSS:"),
        status("VmHWM:")
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, cache] = &args[..] else {
        anyhow::bail!("usage: compile_footprint COMPONENT.wasm CACHE_DIR");
    };
    let started = Instant::now();
    let store = Arc::new(horde::cache::FunctionStore::new(std::path::Path::new(
        cache,
    )));
    let engine = horde::engine::new_engine_for(None, Some(store.clone()))?;
    report("engine", started);
    let bytes = std::fs::read(path)?;
    report("read", started);
    let (component, source) = horde::engine::compile_bytes(
        &engine,
        std::path::Path::new(path),
        &bytes,
        Some(std::path::Path::new(cache)),
    )?;
    store.finish();
    report("compiled and cached", started);
    let (hits, written) = store.counts();
    println!(
        "{source:?}: {hits} of {} functions from the cache; compiled image {} KiB",
        hits + written,
        {
            let image = component.image_range();
            (image.end as usize - image.start as usize) / 1024
        }
    );
    Ok(())
}
