//! Request events and their recording: one shard per worker thread, so the
//! hot path takes only that thread's uncontended lock; an aggregator drains
//! the shards into HDR histograms once a second and at the end.

mod in_flight;
mod merge;
mod names;
mod report;
pub(crate) mod tags;
mod tick;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub use in_flight::{ABANDONED, InFlight};
pub use merge::Merger;
pub(crate) use names::capped_key;
pub use names::{CURRENT_VU, truncate};
pub use report::{
    Aggregate, CheckCount, CounterValue, CustomMetrics, ErrorCount, GaugeSummary, LatencySummary,
    NameStats, Report, TimelinePoint, TrendSummary,
};
pub use tags::{
    Breakdown, MAX_TAG_LEN, MAX_TAG_VALUES, MAX_TAGS, OVERFLOW_VALUE, TagValueStats, Tags,
};
pub use tick::{Delta, Tick, Totals, WindowEntry};

/// Request type of group durations (`group.leave`): listed with the
/// requests, never counted in their total.
pub const GROUP_TYPE: &str = "group";
/// Name that unseen names are folded into once the cardinality cap is hit.
pub const OVERFLOW_NAME: &str = "(other names: cap reached)";
/// Request type of the overflow row for unseen types once the cap is hit.
pub const OVERFLOW_TYPE: &str = "(other)";
/// Longest failure or exception message kept, in bytes (longer ones are cut).
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Distinct failure (and exception) messages kept per shard and in the
/// aggregate; more are counted together under [`OVERFLOW_MESSAGE`].
pub(crate) const MAX_DISTINCT_MESSAGES: usize = 1000;
/// The message that distinct messages beyond the cap are counted under.
pub(crate) const OVERFLOW_MESSAGE: &str = "(other messages: cap of distinct messages reached)";

/// Add one request event to its entry; sums saturate.
fn update(entry: &mut Entry, event: &RequestEvent<'_>, micros: u64) {
    // Values beyond the histogram's range are clamped to it.
    let _ = entry.latency_us.record(micros);
    entry.bytes = entry.bytes.saturating_add(event.response_length);
    entry.messages_sent = entry.messages_sent.saturating_add(event.messages_sent);
    entry.messages_received = entry
        .messages_received
        .saturating_add(event.messages_received);
    if let Some(lag) = event.lag {
        let corrected = u64::try_from(event.duration.saturating_add(lag).as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = entry
            .corrected_us
            .get_or_insert_with(new_histogram)
            .record(corrected);
    }
    if event.error.is_some() {
        entry.failures = entry.failures.saturating_add(1);
    }
    if let Some(status) = event.status {
        add_status(&mut entry.statuses, status, 1);
    }
}

/// Count `count` responses with `status` (a handful of statuses per name:
/// a list beats a map).
pub(crate) fn add_status(statuses: &mut Vec<(u16, u64)>, status: u16, count: u64) {
    match statuses.iter_mut().find(|(s, _)| *s == status) {
        Some((_, total)) => *total = total.saturating_add(count),
        None => statuses.push((status, count)),
    }
}

/// One timed call: the compact record at the centre of the data flow.
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    /// Protocol or method, e.g. "GET", "xmlrpc".
    pub request_type: &'a str,
    /// Grouping key, e.g. "/item/[id]".
    pub name: &'a str,
    pub duration: Duration,
    pub response_length: u64,
    /// Failure message; `None` for a success.
    pub error: Option<&'a str>,
    /// Messages sent and received (streams; 0 where messages do not apply).
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Open model: how late the iteration started against its intended time.
    /// The corrected latency (coordinated omission) is `duration + lag`.
    pub lag: Option<Duration>,
    /// The response's status: the HTTP status code, or the gRPC status code
    /// (0 is OK); `None` where there was no response or no status.
    pub status: Option<u16>,
    /// The VU's tags when the call was made (`tags.set`).
    pub tags: &'a Tags,
}

/// Counts for one (type, name) pair since the last drain.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) failures: u64,
    pub(crate) bytes: u64,
    pub(crate) messages_sent: u64,
    pub(crate) messages_received: u64,
    /// Latency from the intended start (open model only).
    pub(crate) corrected_us: Option<Histogram<u64>>,
    /// (status, responses), in the order first seen.
    pub(crate) statuses: Vec<(u16, u64)>,
}

impl Entry {
    pub(crate) fn new() -> Entry {
        Entry {
            latency_us: new_histogram(),
            failures: 0,
            bytes: 0,
            messages_sent: 0,
            messages_received: 0,
            corrected_us: None,
            statuses: Vec::new(),
        }
    }
}

/// A gauge's values since the last drain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GaugeValue {
    pub(crate) last: f64,
    pub(crate) at: Instant,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// An auto-resizing histogram of microseconds with 3 significant figures.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

/// What one worker thread recorded since the last drain.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// type -> name -> entry
    pub(crate) entries: HashMap<String, HashMap<String, Entry>>,
    /// (type, name, message) -> count
    pub(crate) errors: HashMap<(String, String, String), u64>,
    /// message -> count (task errors and guest traps)
    pub(crate) exceptions: HashMap<String, u64>,
    /// check name -> (passes, fails)
    pub(crate) checks: HashMap<String, (u64, u64)>,
    pub(crate) counters: HashMap<String, f64>,
    pub(crate) gauges: HashMap<String, GaugeValue>,
    /// Trend values in thousandths.
    pub(crate) trends: HashMap<String, Histogram<u64>>,
    /// Requests by tracked tag value.
    pub(crate) tagged: HashMap<tags::TagKey, Entry>,
}

static NEXT_STATS_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's shard for each live `Stats` (usually one).
    static LOCAL_SHARDS: RefCell<Vec<(u64, Arc<Mutex<Shard>>)>> = const { RefCell::new(Vec::new()) };
}

/// The recorder shared by every VU of a run.
#[derive(Debug)]
pub struct Stats {
    id: u64,
    started: Instant,
    max_names: usize,
    max_name_len: usize,
    /// Every shard ever created for this run; locked only to add a shard or drain.
    shards: Mutex<Vec<Arc<Mutex<Shard>>>>,
    /// (type, name) pairs admitted so far, and how many each VU brought
    /// in; locked only the first time a thread sees a pair.
    names: Mutex<names::Names>,
    /// Names the operator declared (thresholds that select them): always
    /// kept, past the cap and any VU's share.
    declared: std::sync::OnceLock<HashSet<String>>,
    /// How many new names one VU may bring in (0: no share, the cap alone).
    vu_share: std::sync::atomic::AtomicUsize,
    /// The whole run's: the report's.
    aggregate: Mutex<Aggregate>,
    /// Since the last reset (the web UI's live view); `None` before any.
    live: Mutex<Option<Aggregate>>,
    iterations: AtomicU64,
    dropped: AtomicU64,
    /// When the live view last started over (the web UI), since `started`.
    reset_at: Mutex<Option<Duration>>,
    /// Resets asked for so far, and as many as the drains have carried out.
    resets: AtomicU64,
    resets_done: AtomicU64,
    /// Iterations and drops as the last tick counted them.
    ticked_iterations: Mutex<(u64, u64)>,
    /// The tag keys results are kept by (set once, before the run).
    tag_keys: std::sync::OnceLock<tags::TagTracker>,
}

impl Stats {
    pub fn new(max_names: usize, max_name_len: usize) -> Arc<Stats> {
        Arc::new(Stats {
            id: NEXT_STATS_ID.fetch_add(1, Ordering::Relaxed),
            started: Instant::now(),
            max_names,
            max_name_len,
            shards: Mutex::new(Vec::new()),
            names: Mutex::new(names::Names::default()),
            declared: std::sync::OnceLock::new(),
            vu_share: std::sync::atomic::AtomicUsize::new(0),
            aggregate: Mutex::new(Aggregate::new(max_names)),
            live: Mutex::new(None),
            iterations: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reset_at: Mutex::new(None),
            resets: AtomicU64::new(0),
            resets_done: AtomicU64::new(0),
            ticked_iterations: Mutex::new((0, 0)),
            tag_keys: std::sync::OnceLock::new(),
        })
    }

    /// Keep results by the values of these tag keys too (`--breakdown`,
    /// thresholds that select a tag); set once, before the first event.
    pub fn track_tags(&self, keys: Vec<String>) {
        if !keys.is_empty() {
            let _ = self.tag_keys.set(tags::TagTracker::new(keys));
        }
    }

    /// When recording started.
    pub fn started(&self) -> Instant {
        self.started
    }

    fn with_shard<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = LOCAL_SHARDS.with(|cell| {
            let mut local = cell.borrow_mut();
            if let Some((_, shard)) = local.iter().find(|(id, _)| *id == self.id) {
                return shard.clone();
            }
            let shard = Arc::new(Mutex::new(Shard::default()));
            self.shards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(shard.clone());
            // Forget shards of finished runs (their Stats hold the data).
            if local.len() >= 8 {
                local.remove(0);
            }
            local.push((self.id, shard.clone()));
            shard
        });
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Record a request event. Byte and message counts saturate; a name not
    /// seen before is admitted under the cardinality cap (see [`Stats::admit`]),
    /// and its failure message is cut to [`MAX_MESSAGE_LEN`] bytes.
    pub fn record(&self, event: &RequestEvent<'_>) {
        let micros = u64::try_from(event.duration.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.with_shard(|shard| {
            let Shard {
                entries, errors, ..
            } = shard;
            let admitted = match entries
                .get_mut(event.request_type)
                .and_then(|names| names.get_mut(event.name))
            {
                Some(entry) => {
                    update(entry, event, micros);
                    None
                }
                None => {
                    let (kind, name) = self.admit(event.request_type, event.name);
                    let entry = entries
                        .entry(kind.clone())
                        .or_default()
                        .entry(name.clone())
                        .or_insert_with(Entry::new);
                    update(entry, event, micros);
                    Some((kind, name))
                }
            };
            if let Some(tracker) = self.tag_keys.get()
                && !event.tags.is_empty()
            {
                let (kind, name) = match &admitted {
                    Some((kind, name)) => (kind.as_str(), name.as_str()),
                    None => (event.request_type, event.name),
                };
                for (key, value) in event.tags.iter().filter(|(k, _)| tracker.tracks(k)) {
                    let mut tag_key = (key.clone(), value.clone(), kind.into(), name.into());
                    if !shard.tagged.contains_key(&tag_key) {
                        tag_key.1 = tracker.admit(key, value);
                    }
                    update(
                        shard.tagged.entry(tag_key).or_insert_with(Entry::new),
                        event,
                        micros,
                    );
                }
            }
            if let Some(message) = event.error {
                let (kind, name) = match &admitted {
                    Some((kind, name)) => (kind.as_str(), name.as_str()),
                    None => (event.request_type, event.name),
                };
                let mut key = (
                    kind.to_string(),
                    name.to_string(),
                    truncate(message, MAX_MESSAGE_LEN),
                );
                if errors.len() >= MAX_DISTINCT_MESSAGES && !errors.contains_key(&key) {
                    key.2 = OVERFLOW_MESSAGE.to_string();
                }
                let count = errors.entry(key).or_insert(0);
                *count = count.saturating_add(1);
            }
        })
    }

    /// Count a task error or guest trap.
    pub fn record_exception(&self, message: &str) {
        self.with_shard(|shard| {
            let mut key = truncate(message, MAX_MESSAGE_LEN);
            if shard.exceptions.len() >= MAX_DISTINCT_MESSAGES
                && !shard.exceptions.contains_key(&key)
            {
                key = OVERFLOW_MESSAGE.to_string();
            }
            let count = shard.exceptions.entry(key).or_insert(0);
            *count = count.saturating_add(1);
        })
    }

    /// Count a check's outcome.
    pub fn record_check(&self, name: &str, ok: bool) {
        self.with_shard(|shard| {
            let counts = match shard.checks.get_mut(name) {
                Some(counts) => counts,
                None => {
                    let key = capped_key(&shard.checks, name, self.max_names, self.max_name_len);
                    shard.checks.entry(key).or_default()
                }
            };
            if ok {
                counts.0 = counts.0.saturating_add(1);
            } else {
                counts.1 = counts.1.saturating_add(1);
            }
        })
    }

    /// Add to a custom counter.
    pub fn add_counter(&self, name: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.with_shard(|shard| match shard.counters.get_mut(name) {
            Some(total) => *total = saturating_sum(*total, value),
            None => {
                let key = capped_key(&shard.counters, name, self.max_names, self.max_name_len);
                let total = shard.counters.entry(key).or_insert(0.0);
                *total = saturating_sum(*total, value);
            }
        })
    }

    /// Set a custom gauge.
    pub fn set_gauge(&self, name: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        let now = Instant::now();
        self.with_shard(|shard| match shard.gauges.get_mut(name) {
            Some(gauge) => {
                *gauge = GaugeValue {
                    last: value,
                    at: now,
                    min: gauge.min.min(value),
                    max: gauge.max.max(value),
                };
            }
            None => {
                let gauge = GaugeValue {
                    last: value,
                    at: now,
                    min: value,
                    max: value,
                };
                let key = capped_key(&shard.gauges, name, self.max_names, self.max_name_len);
                shard.gauges.insert(key, gauge);
            }
        })
    }

    /// Add a value (finite, >= 0) to a custom trend.
    pub fn add_trend(&self, name: &str, value: f64) {
        if !(value.is_finite() && value >= 0.0) {
            return;
        }
        let thousandths = (value * 1000.0).round() as u64;
        self.with_shard(|shard| {
            let histogram = match shard.trends.get_mut(name) {
                Some(histogram) => histogram,
                None => {
                    let key = capped_key(&shard.trends, name, self.max_names, self.max_name_len);
                    shard.trends.entry(key).or_insert_with(new_histogram)
                }
            };
            let _ = histogram.record(thousandths);
        })
    }

    /// Count an iteration that started, and how late it started.
    pub fn record_iteration_start(&self) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
    }

    /// Count an arrival that found no VU in time (open model).
    pub fn record_dropped_iteration(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Iterations started and dropped so far.
    pub fn iteration_counts(&self) -> (u64, u64) {
        (
            self.iterations.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Run `f` on the cumulative aggregate (drain first with `snapshot`).
    pub fn with_aggregate<R>(&self, f: impl FnOnce(&Aggregate) -> R) -> R {
        f(&self.aggregate.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every shard of this run (each worker thread's).
    fn shard_list(&self) -> Vec<Arc<Mutex<Shard>>> {
        self.shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Move everything recorded so far into the aggregate; returns what
    /// it was (the window since the last drain).
    pub fn drain(&self) -> Delta {
        self.drain_window().0
    }

    /// [`Stats::drain`], and whether the live view started over at it (a
    /// reset was asked for since the last drain).
    fn drain_window(&self) -> (Delta, bool) {
        let shards = self.shard_list();
        let mut aggregate = self.aggregate.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut window = Delta::default();
        let mut latest_gauge = HashMap::new();
        for shard in shards {
            let drained = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            window.add_shard(&drained, &mut latest_gauge);
        }
        // The aggregates take the window as `horde merge` takes it back from
        // the result file, so they keep and fold the same names.
        let now = Instant::now();
        aggregate.absorb_window(&window, now);
        if let Some(live) = live.as_mut() {
            live.absorb_window(&window, now);
        }
        let resets = self.resets.load(Ordering::Relaxed);
        let reset = self.resets_done.swap(resets, Ordering::Relaxed) != resets;
        if reset {
            *live = Some(Aggregate::new(self.max_names));
            *self.reset_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.started.elapsed());
        }
        (window, reset)
    }

    /// Start the live view over (the web UI's "reset statistics", as
    /// Locust's table): from the next drain, [`Stats::current_report`]
    /// counts only what comes after it. The run's report, its aggregate and
    /// the per-second windows keep everything.
    pub fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// The span the live view covers out of `elapsed` since the start: all
    /// of it, or what came after the last reset.
    fn since_reset(&self, elapsed: Duration) -> Duration {
        match *self.reset_at.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(at) => elapsed.saturating_sub(at),
            None => elapsed,
        }
    }

    /// The live view's report: what came after the last reset (or the
    /// whole run before any), without draining (the live page reads it
    /// right after a tick drained); `elapsed` is since the start (rates
    /// cover the time since a reset).
    pub fn current_report(&self, elapsed: Duration, users: u32) -> Report {
        let elapsed = self.since_reset(elapsed);
        let aggregate = self.aggregate.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.as_ref()
            .unwrap_or(&aggregate)
            .report(elapsed, users, self.iteration_counts())
    }

    /// Drain the window into a tick for the outputs, with `users` live VUs.
    pub fn tick(&self, users: u32) -> Tick {
        let (mut window, reset) = self.drain_window();
        let (iterations, dropped_iterations) = self.iteration_counts();
        let mut ticked = self
            .ticked_iterations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        window.iterations = iterations.saturating_sub(ticked.0);
        window.dropped_iterations = dropped_iterations.saturating_sub(ticked.1);
        *ticked = (iterations, dropped_iterations);
        drop(ticked);
        let (requests, failures, exceptions) = self.with_aggregate(Aggregate::totals);
        Tick {
            elapsed: self.started.elapsed(),
            at: std::time::SystemTime::now(),
            users,
            window,
            totals: Totals {
                requests,
                failures,
                exceptions,
                iterations,
                dropped_iterations,
            },
            verdicts: Vec::new(),
            reset,
        }
    }

    /// Drain everything and build the final report, with rates over the
    /// time since recording started.
    pub fn report(&self, users: u32) -> Report {
        self.report_over(users, self.started.elapsed())
    }

    /// Drain everything and build the final report of the whole run (a
    /// reset does not shorten it), with rates over `load_time` (the run's
    /// load window, which a VU cut after overstaying the stop does not
    /// stretch).
    pub fn report_over(&self, users: u32, load_time: Duration) -> Report {
        self.drain();
        let aggregate = self.aggregate.lock().unwrap_or_else(|e| e.into_inner());
        aggregate.report(load_time, users, self.iteration_counts())
    }
}

/// `a + b` for counters: a sum that would overflow stays at the largest
/// finite value (a counter never becomes infinite).
pub(crate) fn saturating_sum(a: f64, b: f64) -> f64 {
    let sum = a + b;
    if sum.is_finite() {
        sum
    } else {
        f64::MAX.copysign(sum)
    }
}

#[cfg(test)]
mod tests;
