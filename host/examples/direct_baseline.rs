//! The wasm-boundary baseline of `cargo xtask bench`: the same HTTP
//! capability code a guest calls (`http::Host::send` on a VU's state, with
//! its recording), called directly from Rust by N tasks for a while, on the
//! same thread-per-core runtimes the VUs run on.
//! Prints one JSON line: requests, failures, seconds, p50/p99 ms.
//!
//!     cargo run --release -p horde --example direct_baseline -- http://127.0.0.1:8080/item/1 64 5

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use horde::bindings::http::{Host, Request};
use horde::policy::{Grant, NetworkPolicy};
use horde::stats::Stats;
use horde::vu::{RunContext, VuState};
use horde::workers::VuWorkers;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: direct_baseline URL CONNECTIONS SECONDS")?;
    let connections: u32 = args.next().as_deref().unwrap_or("64").parse()?;
    let seconds: f64 = args.next().as_deref().unwrap_or("5").parse()?;
    let parsed = url::Url::parse(&url)?;
    let grant = Grant::origin(
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(80),
    );
    let stats = Stats::new(1000, 256);
    let run = RunContext::standalone(stats.clone(), NetworkPolicy::new(vec![grant]));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers = VuWorkers::per_core()?;
    let mut tasks = tokio::task::JoinSet::new();
    for vu_id in 1..=connections {
        let (run, url) = (run.clone(), url.clone());
        tasks.spawn_on(
            async move {
                let mut state = VuState::new(run, vu_id, 0);
                while Instant::now() < deadline {
                    let request = Request {
                        method: "GET".into(),
                        url: url.clone(),
                        headers: Vec::new(),
                        body: Vec::new(),
                        name: Some("/item/[id]".into()),
                        timeout_ms: None,
                        expect_status: Vec::new(),
                        follow_redirects: true,
                        cookie_jar: true,
                        record_event: true,
                        discard_body: false,
                    };
                    let _ = state.send(request).await;
                }
            },
            workers.handle(vu_id),
        );
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let report = stats.report(connections);
    println!(
        "{}",
        serde_json::json!({
            "requests": report.total.count,
            "failures": report.total.failures,
            "seconds": elapsed,
            "p50_ms": report.total.latency_ms.p50,
            "p99_ms": report.total.latency_ms.p99,
        })
    );
    Ok(())
}
