//! The run monitor: once a second it drains the stats into the timeline,
//! enforces `abortOnFail` thresholds, and shows progress — a refreshing line
//! on a terminal, plain lines every 5 s otherwise (CI logs), nothing when quiet.
//! It samples until the run has finished, grace period included, so the
//! timeline adds up to the totals.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::schedule::Progress;
use crate::stats::{Snapshot, Stats, TimelinePoint};
use crate::thresholds::Threshold;
use crate::vu::RunContext;

/// Sampling period of the timeline and the terminal view.
const PERIOD: Duration = Duration::from_secs(1);
/// Samples between plain lines when output is not a terminal.
const PLAIN_EVERY: u32 = 5;

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

fn line(snapshot: &Snapshot, users: u32, run_limit: Option<Duration>, dropped: u64) -> String {
    let remaining = run_limit
        .map(|t| format!(" (left {})", clock(t.saturating_sub(snapshot.elapsed))))
        .unwrap_or_default();
    let rps = snapshot.window_count as f64 / PERIOD.as_secs_f64();
    let p95 = snapshot
        .window_p95_ms
        .map_or("-".to_string(), |p| format!("{p:.1} ms"));
    let dropped = if dropped > 0 {
        format!(", {dropped} dropped")
    } else {
        String::new()
    };
    format!(
        "{}{remaining} | users {users} | {rps:.0} req/s | {} reqs, {} failures, {} exceptions{dropped} | p95 {p95}",
        clock(snapshot.elapsed),
        snapshot.total_count,
        snapshot.total_failures,
        snapshot.exceptions,
    )
}

/// What the monitor hands back when the run stops.
#[derive(Debug, Default)]
pub struct Monitored {
    pub timeline: Vec<TimelinePoint>,
}

/// Runs until `finished` turns true (after the stop's grace period), with a
/// last, partial interval at the end.
pub async fn monitor(
    stats: Arc<Stats>,
    run: Arc<RunContext>,
    mut finished: tokio::sync::watch::Receiver<bool>,
    progress: Arc<Progress>,
    thresholds: Vec<Threshold>,
    run_limit: Option<Duration>,
    quiet: bool,
) -> Monitored {
    let terminal = !quiet && std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
        run.logger.attach_bar(bar.clone());
        bar
    });
    let abort_on_fail: Vec<Threshold> =
        thresholds.into_iter().filter(|t| t.abort_on_fail).collect();
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.tick().await;
    let mut last_iterations = (0, 0);
    let mut ticks = 0u32;
    loop {
        let ended = tokio::select! {
            _ = ticker.tick() => false,
            _ = finished.wait_for(|f| *f) => true,
        };
        ticks += 1;
        let snapshot = stats.snapshot();
        let users = progress.active_users.load(Ordering::Relaxed);
        let iterations = stats.iteration_counts();
        timeline.push(TimelinePoint {
            t: snapshot.elapsed.as_secs_f64(),
            users,
            requests: snapshot.window_count,
            failures: snapshot.window_failures,
            iterations: iterations.0 - last_iterations.0,
            dropped_iterations: iterations.1 - last_iterations.1,
            p95_ms: snapshot.window_p95_ms,
        });
        last_iterations = iterations;
        if ended {
            // The last, partial interval is in the timeline too.
            break;
        }
        // After the stop only the running tasks finish: nothing to abort.
        let thresholds = if run.stopping() {
            &[][..]
        } else {
            &abort_on_fail[..]
        };
        for threshold in thresholds {
            if snapshot.elapsed < threshold.delay_abort_eval {
                continue;
            }
            let verdicts =
                stats.with_aggregate(|a| threshold.evaluate(a, snapshot.elapsed, iterations));
            if let Some(failed) = verdicts.iter().find(|v| !v.passed && v.actual.is_some()) {
                run.request_stop(format!(
                    "threshold '{}' failed ({} is {:.3}) with abortOnFail",
                    failed.threshold,
                    failed.condition,
                    failed.actual.unwrap_or_default()
                ));
            }
        }
        if quiet {
            continue;
        }
        let text = line(&snapshot, users, run_limit, iterations.1);
        match &bar {
            Some(bar) => {
                bar.set_message(text);
                bar.tick();
            }
            None if ticks.is_multiple_of(PLAIN_EVERY) => eprintln!("{text}"),
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Monitored { timeline }
}
