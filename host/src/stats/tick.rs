//! One second of a run as every output sees it: the window drained from the
//! shards (per type and name: an HDR histogram, failures, bytes; failure and
//! exception messages), with the run's running totals. Windows merge
//! exactly (HDR histograms with the same settings add up), so the outputs
//! that keep history (timeline, CSV) agree with the final report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::{Shard, new_histogram};

/// One (type, name) pair's requests in a window.
#[derive(Debug, Clone)]
pub struct WindowEntry {
    /// Latencies in microseconds.
    pub latency_us: Histogram<u64>,
    pub failures: u64,
    /// Response bytes.
    pub bytes: u64,
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
            failures: 0,
            bytes: 0,
        }
    }

    /// Add `other`'s requests to these.
    pub fn merge(&mut self, other: &WindowEntry) {
        let _ = self.latency_us.add(&other.latency_us);
        self.failures = self.failures.saturating_add(other.failures);
        self.bytes = self.bytes.saturating_add(other.bytes);
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
}

impl Delta {
    /// Add what `shard` holds (before the aggregate absorbs it).
    pub(crate) fn add_shard(&mut self, shard: &Shard) {
        for (kind, names) in &shard.entries {
            for (name, entry) in names {
                let window = self
                    .entries
                    .entry((kind.clone(), name.clone()))
                    .or_default();
                let _ = window.latency_us.add(&entry.latency_us);
                window.failures = window.failures.saturating_add(entry.failures);
                window.bytes = window.bytes.saturating_add(entry.bytes);
                let _ = self.all.latency_us.add(&entry.latency_us);
                self.all.failures = self.all.failures.saturating_add(entry.failures);
                self.all.bytes = self.all.bytes.saturating_add(entry.bytes);
            }
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
}
