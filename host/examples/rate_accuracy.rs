//! Measures how exactly the open model holds an arrival rate against the
//! in-process target: scheduled vs started vs dropped iterations.
//!
//!     cargo run --release -p horde --example rate_accuracy -- target/guests/wasm32-wasip2/release/test_load.wasm 100 1000 5000
//!
//! Each rate runs 5 s with `--max-vus 200`; the guest does one GET / per iteration.

use std::time::Duration;

use anyhow::{Context, Result};
use horde::cli::RunConfig;
use horde::demo::DemoTarget;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let guest = args
        .next()
        .context("usage: rate_accuracy <test_load.wasm> RATE...")?;
    let rates: Vec<f64> = args
        .map(|r| r.parse())
        .collect::<Result<_, _>>()
        .context("rates are numbers per second")?;
    let target = DemoTarget::start(false).await?;
    println!(
        "{:>8} {:>10} {:>10} {:>8} {:>10} {:>12} {:>12}",
        "rate/s", "scheduled", "started", "dropped", "accuracy", "p99 ms", "p99 corr ms"
    );
    for rate in rates {
        let mut run = RunConfig::new(&guest);
        run.host = Some(horde::cli::parse_host_url(&target.url(), "--host")?);
        run.vars.insert("path".into(), "/".into());
        run.rate = Some(rate);
        run.run_time = Some(Duration::from_secs(5));
        run.max_vus = 200;
        run.pre_vus = Some(50);
        let report = horde::run(&run).await?.report;
        let scheduled = (rate * 5.0).round() as u64;
        let load = report
            .stats
            .iter()
            .find(|s| s.name == "load")
            .context("no requests recorded")?;
        println!(
            "{rate:>8} {scheduled:>10} {:>10} {:>8} {:>9.2}% {:>12.2} {:>12.2}",
            report.iterations,
            report.dropped_iterations,
            report.iterations as f64 * 100.0 / scheduled as f64,
            load.latency_ms.p99,
            load.corrected_latency_ms.as_ref().map_or(0.0, |c| c.p99),
        );
    }
    Ok(())
}
