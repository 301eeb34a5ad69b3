//! One second of a run as every output sees it: the window drained from the
//! shards (per type and name: an HDR histogram, the open model's corrected
//! one, failures, bytes; failure and exception messages; checks and custom
//! metrics), with the run's running totals and threshold verdicts. Windows merge
//! exactly (HDR histograms with the same settings add up), so the outputs
//! that keep history (timeline, CSV) agree with the final report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::{Entry, Shard, new_histogram};

/// One (type, name) pair's requests in a window.
#[derive(Debug, Clone)]
pub struct WindowEntry {
    /// Latencies in microseconds.
    pub latency_us: Histogram<u64>,
    /// Open model: latencies from each iteration's intended start
    /// (coordinated omission corrected), in microseconds.
    pub corrected_us: Option<Histogram<u64>>,
    pub failures: u64,
    /// Response bytes.
    pub bytes: u64,
    /// Stream messages sent and received.
    pub messages_sent: u64,
    pub messages_received: u64,
    /// (status, responses), in the order first seen.
    pub statuses: Vec<(u16, u64)>,
}

impl Default for WindowEntry {
    fn default() -> WindowEntry {
        WindowEntry::new()
    }
}

impl WindowEntry {
    fn new() -> WindowEntry {
        WindowEntry {
            latency_us: new_histogram(),
            corrected_us: None,
            failures: 0,
            bytes: 0,
            messages_sent: 0,
            messages_received: 0,
            statuses: Vec::new(),
        }
    }

    /// Add `other`'s requests to these.
    pub fn merge(&mut self, other: &WindowEntry) {
        self.add_parts(
            &other.latency_us,
            other.corrected_us.as_ref(),
            [other.failures, other.bytes],
            [other.messages_sent, other.messages_received],
            &other.statuses,
        );
    }

    /// Add a shard's entry to these.
    fn add_recorded(&mut self, entry: &Entry) {
        self.add_parts(
            &entry.latency_us,
            entry.corrected_us.as_ref(),
            [entry.failures, entry.bytes],
            [entry.messages_sent, entry.messages_received],
            &entry.statuses,
        );
    }

    fn add_parts(
        &mut self,
        latency_us: &Histogram<u64>,
        corrected_us: Option<&Histogram<u64>>,
        [failures, bytes]: [u64; 2],
        [sent, received]: [u64; 2],
        statuses: &[(u16, u64)],
    ) {
        let _ = self.latency_us.add(latency_us);
        if let Some(corrected) = corrected_us {
            let _ = self
                .corrected_us
                .get_or_insert_with(new_histogram)
                .add(corrected);
        }
        self.failures = self.failures.saturating_add(failures);
        self.bytes = self.bytes.saturating_add(bytes);
        self.messages_sent = self.messages_sent.saturating_add(sent);
        self.messages_received = self.messages_received.saturating_add(received);
        for &(status, count) in statuses {
            super::add_status(&mut self.statuses, status, count);
        }
    }

    /// As the entry the aggregate keeps (merging windows from files).
    pub(crate) fn to_entry(&self) -> Entry {
        Entry {
            latency_us: self.latency_us.clone(),
            failures: self.failures,
            bytes: self.bytes,
            messages_sent: self.messages_sent,
            messages_received: self.messages_received,
            corrected_us: self.corrected_us.clone(),
            statuses: self.statuses.clone(),
        }
    }

    /// Requests in the window.
    pub fn count(&self) -> u64 {
        self.latency_us.len()
    }
}

/// What was recorded in one window, merged across shards.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// (type, name) -> requests.
    pub entries: BTreeMap<(String, String), WindowEntry>,
    /// All requests of the window as one entry (merged once, as the
    /// window is drained).
    pub all: WindowEntry,
    /// (type, name, message) -> failures.
    pub errors: BTreeMap<(String, String, String), u64>,
    /// message -> task errors and traps.
    pub exceptions: BTreeMap<String, u64>,
    /// check name -> (passes, fails).
    pub checks: BTreeMap<String, (u64, u64)>,
    /// Custom counters: name -> amount added in the window.
    pub counters: BTreeMap<String, f64>,
    /// Custom gauges set in the window: name -> the last value.
    pub gauges: BTreeMap<String, f64>,
    /// Custom gauges set in the window: name -> (min, max) of the values set.
    pub gauge_ranges: BTreeMap<String, (f64, f64)>,
    /// Custom trends: name -> values in thousandths.
    pub trends: BTreeMap<String, Histogram<u64>>,
    /// Iterations started, and arrivals dropped (open model), in the window.
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// Requests by tracked tag value: (key, value, type, name) -> requests.
    pub tagged: BTreeMap<super::tags::TagKey, WindowEntry>,
}

impl Delta {
    /// Add what `shard` holds (before the aggregate absorbs it).
    pub(crate) fn add_shard(
        &mut self,
        shard: &Shard,
        latest_gauge: &mut std::collections::HashMap<String, std::time::Instant>,
    ) {
        for (kind, names) in &shard.entries {
            for (name, entry) in names {
                let window = self
                    .entries
                    .entry((kind.clone(), name.clone()))
                    .or_default();
                window.add_recorded(entry);
                if kind != super::GROUP_TYPE {
                    self.all.add_recorded(entry);
                }
            }
        }
        for (name, (passes, fails)) in &shard.checks {
            let counts = self.checks.entry(name.clone()).or_default();
            counts.0 = counts.0.saturating_add(*passes);
            counts.1 = counts.1.saturating_add(*fails);
        }
        for (name, value) in &shard.counters {
            let total = self.counters.entry(name.clone()).or_insert(0.0);
            *total = super::saturating_sum(*total, *value);
        }
        for (name, gauge) in &shard.gauges {
            // Shards are drained one after the other: the latest set wins.
            let newer = latest_gauge.get(name).is_none_or(|at| gauge.at >= *at);
            if newer {
                latest_gauge.insert(name.clone(), gauge.at);
                self.gauges.insert(name.clone(), gauge.last);
            }
            let range = self
                .gauge_ranges
                .entry(name.clone())
                .or_insert((gauge.min, gauge.max));
            *range = (range.0.min(gauge.min), range.1.max(gauge.max));
        }
        for (key, entry) in &shard.tagged {
            self.tagged
                .entry(key.clone())
                .or_default()
                .add_recorded(entry);
        }
        for (name, values) in &shard.trends {
            let _ = self
                .trends
                .entry(name.clone())
                .or_insert_with(new_histogram)
                .add(values);
        }
        for (key, count) in &shard.errors {
            let total = self.errors.entry(key.clone()).or_insert(0);
            *total = total.saturating_add(*count);
        }
        for (message, count) in &shard.exceptions {
            let total = self.exceptions.entry(message.clone()).or_insert(0);
            *total = total.saturating_add(*count);
        }
    }
}

impl Delta {
    /// Add `other`, a window of the same second recorded elsewhere (another
    /// execution segment): requests, messages, counts and histograms add
    /// up; a gauge keeps `other`'s value, its range widens.
    pub fn merge(&mut self, other: &Delta) {
        for (key, entry) in &other.entries {
            self.entries.entry(key.clone()).or_default().merge(entry);
        }
        self.all.merge(&other.all);
        let add = |into: &mut u64, n: u64| *into = into.saturating_add(n);
        for (key, n) in &other.errors {
            add(self.errors.entry(key.clone()).or_default(), *n);
        }
        for (key, n) in &other.exceptions {
            add(self.exceptions.entry(key.clone()).or_default(), *n);
        }
        for (name, (passes, fails)) in &other.checks {
            let counts = self.checks.entry(name.clone()).or_default();
            add(&mut counts.0, *passes);
            add(&mut counts.1, *fails);
        }
        for (name, value) in &other.counters {
            let total = self.counters.entry(name.clone()).or_insert(0.0);
            *total = super::saturating_sum(*total, *value);
        }
        for (name, value) in &other.gauges {
            self.gauges.insert(name.clone(), *value);
        }
        for (name, (min, max)) in &other.gauge_ranges {
            let range = self
                .gauge_ranges
                .entry(name.clone())
                .or_insert((*min, *max));
            *range = (range.0.min(*min), range.1.max(*max));
        }
        for (name, values) in &other.trends {
            let _ = self
                .trends
                .entry(name.clone())
                .or_insert_with(new_histogram)
                .add(values);
        }
        for (key, entry) in &other.tagged {
            self.tagged.entry(key.clone()).or_default().merge(entry);
        }
        add(&mut self.iterations, other.iterations);
        add(&mut self.dropped_iterations, other.dropped_iterations);
    }
}

/// The run's running totals at a tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub requests: u64,
    pub failures: u64,
    pub exceptions: u64,
    /// Iterations started and dropped (open model).
    pub iterations: u64,
    pub dropped_iterations: u64,
}

/// One second of the run, handed to every output.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Since the run's start (the last tick of a run may be a partial second).
    pub elapsed: Duration,
    /// Wall-clock time of the tick (CSV timestamps).
    pub at: SystemTime,
    /// VUs with a live instance.
    pub users: u32,
    /// What happened since the previous tick.
    pub window: Delta,
    pub totals: Totals,
    /// Every threshold's verdict on the run so far (filled in by the
    /// monitor; empty without thresholds).
    pub verdicts: Vec<crate::thresholds::Verdict>,
    /// The live view started over at this tick (a reset from the web UI):
    /// only the web UI's own figures start over; the run's go on.
    pub reset: bool,
}
