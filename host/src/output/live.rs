//! The run monitor: once a second it drains the stats into a [`Tick`],
//! adds it to the timeline, enforces `abortOnFail` thresholds, and hands it
//! to every output ([`Sink`]). It ticks until the run has finished, grace
//! period included, so the timeline adds up to the totals. Also here: the
//! live progress line, the first sink — a refreshing line on a terminal,
//! plain lines every 5 s otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Sink;
use crate::schedule::Progress;
use crate::stats::{Stats, Tick, TimelinePoint};
use crate::thresholds::Threshold;
use crate::vu::RunContext;

/// Sampling period of the timeline and every output.
const PERIOD: Duration = Duration::from_secs(1);
/// Samples between plain lines when output is not a terminal.
const PLAIN_EVERY: u32 = 5;

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The p95 of a tick's window, in milliseconds (None if it had no request).
pub(crate) fn window_p95_ms(tick: &Tick) -> Option<f64> {
    let all = &tick.window.all;
    (all.count() > 0).then(|| all.latency_us.value_at_quantile(0.95) as f64 / 1000.0)
}

fn line(tick: &Tick, run_limit: Option<Duration>) -> String {
    let remaining = run_limit
        .map(|t| format!(" (left {})", clock(t.saturating_sub(tick.elapsed))))
        .unwrap_or_default();
    let rps = tick.window.all.count() as f64 / PERIOD.as_secs_f64();
    let p95 = window_p95_ms(tick).map_or("-".to_string(), |p| format!("{p:.1} ms"));
    let totals = &tick.totals;
    let dropped = if totals.dropped_iterations > 0 {
        format!(", {} dropped", totals.dropped_iterations)
    } else {
        String::new()
    };
    format!(
        "{}{remaining} | users {} | {rps:.0} req/s | {} reqs, {} failures, {} exceptions{dropped} | p95 {p95}",
        clock(tick.elapsed),
        tick.users,
        totals.requests,
        totals.failures,
        totals.exceptions,
    )
}

/// The live progress line on stderr.
pub struct LiveLine {
    bar: Option<ProgressBar>,
    run_limit: Option<Duration>,
    ticks: u32,
}

impl LiveLine {
    /// A spinner line when stderr is a terminal, else a plain line every 5 s.
    pub fn new(run: &RunContext, run_limit: Option<Duration>) -> LiveLine {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("static template"),
            );
            run.logger.attach_bar(bar.clone());
            bar
        });
        LiveLine {
            bar,
            run_limit,
            ticks: 0,
        }
    }
}

impl Sink for LiveLine {
    fn tick(&mut self, tick: &Tick) {
        self.ticks += 1;
        let text = line(tick, self.run_limit);
        match &self.bar {
            Some(bar) => {
                bar.set_message(text);
                bar.tick();
            }
            None if self.ticks.is_multiple_of(PLAIN_EVERY) => eprintln!("{text}"),
            None => {}
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// What the monitor hands back when the run stops: the timeline and the
/// outputs, for their end-of-run files.
#[derive(Default)]
pub struct Monitored {
    pub timeline: Vec<TimelinePoint>,
    pub sinks: Vec<Box<dyn Sink>>,
}

impl std::fmt::Debug for Monitored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitored")
            .field("timeline", &self.timeline.len())
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

/// Runs until `finished` turns true (after the stop's grace period), with a
/// last, partial interval at the end; every tick goes to every sink.
pub async fn monitor(
    stats: Arc<Stats>,
    run: Arc<RunContext>,
    mut finished: tokio::sync::watch::Receiver<bool>,
    progress: Arc<Progress>,
    thresholds: Vec<Threshold>,
    mut sinks: Vec<Box<dyn Sink>>,
) -> Monitored {
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.tick().await;
    loop {
        let ended = tokio::select! {
            _ = ticker.tick() => false,
            _ = finished.wait_for(|f| *f) => true,
        };
        let mut tick = stats.tick(progress.active_users.load(Ordering::Relaxed));
        let iterations = (tick.totals.iterations, tick.totals.dropped_iterations);
        // Every threshold is judged on the run so far, for the outputs; an
        // abortOnFail one that fails (before the stop) ends the run.
        let mut abort = None;
        for threshold in &thresholds {
            let verdicts =
                stats.with_aggregate(|a| threshold.evaluate(a, tick.elapsed, iterations));
            let judged = threshold.abort_on_fail
                && !run.stopping()
                && tick.elapsed >= threshold.delay_abort_eval;
            if judged
                && abort.is_none()
                && let Some(failed) = verdicts.iter().find(|v| !v.passed && v.actual.is_some())
            {
                abort = Some(format!(
                    "threshold '{}' failed ({} is {:.3}) with abortOnFail",
                    failed.threshold,
                    failed.condition,
                    failed.actual.unwrap_or_default()
                ));
            }
            tick.verdicts.extend(verdicts);
        }
        let all = &tick.window.all;
        timeline.push(TimelinePoint {
            t: tick.elapsed.as_secs_f64(),
            users: tick.users,
            requests: all.count(),
            failures: all.failures,
            iterations: tick.window.iterations,
            dropped_iterations: tick.window.dropped_iterations,
            p95_ms: window_p95_ms(&tick),
        });
        for sink in &mut sinks {
            sink.tick(&tick);
        }
        if ended {
            // The last, partial interval is in the timeline too.
            break;
        }
        if let Some(reason) = abort {
            run.request_stop(reason);
        }
    }
    for sink in &mut sinks {
        sink.end();
    }
    Monitored { timeline, sinks }
}
