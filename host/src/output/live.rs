//! The live progress view: a refreshing line on a terminal, plain periodic
//! lines otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::schedule::Progress;
use crate::stats::{Snapshot, Stats};
use crate::vu::RunContext;

/// Refresh period on a terminal.
const TERMINAL_PERIOD: Duration = Duration::from_secs(1);
/// Period of plain lines when output is not a terminal.
const PLAIN_PERIOD: Duration = Duration::from_secs(5);

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

fn line(
    snapshot: &Snapshot,
    period: Duration,
    users: u32,
    target_users: u32,
    run_time: Option<Duration>,
) -> String {
    let remaining = run_time
        .map(|t| format!(" (left {})", clock(t.saturating_sub(snapshot.elapsed))))
        .unwrap_or_default();
    let rps = snapshot.window_count as f64 / period.as_secs_f64();
    let p95 = snapshot
        .window_p95_ms
        .map_or("-".to_string(), |p| format!("{p:.1} ms"));
    format!(
        "{}{remaining} | users {users}/{target_users} | {rps:.0} req/s | {} reqs, {} failures, {} exceptions | p95 {p95}",
        clock(snapshot.elapsed),
        snapshot.total_count,
        snapshot.total_failures,
        snapshot.exceptions,
    )
}

/// Runs until the run stops; drains the stats once a period.
pub async fn show(
    stats: Arc<Stats>,
    run: Arc<RunContext>,
    progress: Arc<Progress>,
    target_users: u32,
    run_time: Option<Duration>,
) {
    let terminal = std::io::stderr().is_terminal();
    let period = if terminal {
        TERMINAL_PERIOD
    } else {
        PLAIN_PERIOD
    };
    let bar = terminal.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
        run.logger.attach_bar(bar.clone());
        bar
    });
    let mut stop = run.stop.subscribe();
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let snapshot = stats.snapshot();
        let users = progress.active_users.load(Ordering::Relaxed);
        let text = line(&snapshot, period, users, target_users, run_time);
        match &bar {
            Some(bar) => {
                bar.set_message(text);
                bar.tick();
            }
            None => eprintln!("{text}"),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
