//! Measures a scenario's start-up costs: component compile time cold and
//! cached, instantiation time per VU, and resident memory per idle VU.
//!
//!     cargo run --release -p horde --example vu_footprint -- user.wasm 1000

use std::time::Instant;

use anyhow::{Context, Result};
use horde::engine;
use horde::policy::{Limits, NetworkPolicy};
use horde::stats::Stats;
use horde::vu::{RunContext, VuInstance};

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm has no rss field")?
        .parse()?;
    Ok(pages * 4096)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: vu_footprint <scenario.wasm> [vus] [compile-cache-dir]")?;
    let vus: u32 = args
        .next()
        .as_deref()
        .unwrap_or("1000")
        .parse()
        .context("vus must be a number")?;
    let path = std::path::Path::new(&path);

    // Large runs use the pooling allocator, as `horde run` does.
    let pool = (vus >= engine::POOLING_FROM_VUS).then_some((vus, Limits::default().max_vu_memory));
    let engine = engine::new_engine_for(pool, None)?;
    println!(
        "allocator:      {}",
        if pool.is_some() {
            "pooling"
        } else {
            "on-demand"
        }
    );
    let linker = engine::new_linker(&engine)?;
    // A given cache dir (one `horde run` filled) spares compiling again.
    let temporary = tempfile::tempdir()?;
    let cache = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let cold = engine::load_scenario(&engine, &linker, path, None, Some(&cache))?;
    let cached = engine::load_scenario(&engine, &linker, path, None, Some(&cache))?;
    println!(
        "compile cold:   {:>10.2} ms ({:?})",
        cold.load_time.as_secs_f64() * 1e3,
        cold.source
    );
    println!(
        "compile cached: {:>10.2} ms ({:?})",
        cached.load_time.as_secs_f64() * 1e3,
        cached.source
    );

    let _ticker = engine::EpochTicker::start(&engine);
    let run = RunContext::standalone(Stats::new(1000, 256), NetworkPolicy::default());
    // Warm up allocator and code pages with one instance.
    drop(VuInstance::new(&engine, &cached.pre, run.clone(), 0, None, 0).await?);
    let before = rss_bytes()?;
    let started = Instant::now();
    let mut live = Vec::with_capacity(vus as usize);
    for vu_id in 1..=vus {
        live.push(VuInstance::new(&engine, &cached.pre, run.clone(), vu_id, None, 0).await?);
    }
    let instantiate = started.elapsed();
    let after_instantiate = rss_bytes()?;
    for vu in &mut live {
        vu.configure()
            .await
            .map_err(|f| anyhow::anyhow!("configure failed: {f:?}"))?;
    }
    let after_call = rss_bytes()?;
    let per_vu = |bytes: u64| bytes as f64 / f64::from(vus) / 1024.0;
    println!(
        "instantiate:    {:>10.2} us per VU ({vus} VUs in {:.1} ms)",
        instantiate.as_secs_f64() * 1e6 / f64::from(vus),
        instantiate.as_secs_f64() * 1e3
    );
    println!(
        "rss per VU:     {:>10.1} KiB after instantiation",
        per_vu(after_instantiate.saturating_sub(before))
    );
    println!(
        "rss per VU:     {:>10.1} KiB after the first call (configure)",
        per_vu(after_call.saturating_sub(before))
    );
    println!(
        "rss total:      {:>10.1} MiB",
        after_call as f64 / 1048576.0
    );
    Ok(())
}
