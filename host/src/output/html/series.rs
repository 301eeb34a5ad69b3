//! The HTML report's time series, folded from the per-second ticks: the
//! run's totals every second (users, iterations, requests, failures,
//! percentiles), and per type and name a sequence of time slots holding
//! counts and a compact latency histogram, from which the page computes
//! percentiles of any selected time range. Slots start one second wide and
//! double in width whenever there are more than [`MAX_SLOTS`], so a long
//! run with many names stays a few megabytes.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::stats::Tick;

/// Most time slots kept per name; past it, neighbours merge.
pub const MAX_SLOTS: usize = 300;
/// Ratio between neighbouring latency buckets: a bucket `i` holds the
/// latencies in `(RATIO^(i-1), RATIO^i]` microseconds, so a percentile read
/// from the slots is within 2% of the exact one.
pub const RATIO: f64 = 1.02;
/// Most (slot, name, bucket) entries the report embeds: past it, at the
/// run's end, slots merge until they fit (about 3 MB of JSON), so a run
/// with wide latency distributions gets coarser time slots, not a larger
/// file.
pub const MAX_HISTOGRAM_ENTRIES: usize = 350_000;
/// Fewest slots merging for size leaves.
const MIN_SLOTS: usize = 20;
/// Most distinct failure messages charted; the rest are counted together.
const MAX_MESSAGES: usize = 20;
/// The series failure messages past [`MAX_MESSAGES`] are counted under.
const OTHER_MESSAGES: &str = "(other messages)";

/// The bucket index of a latency in microseconds.
pub fn bucket_of(us: u64) -> u32 {
    if us <= 1 {
        0
    } else {
        ((us as f64).ln() / RATIO.ln()).ceil() as u32
    }
}

fn add_histogram(buckets: &mut BTreeMap<u32, u64>, histogram: &Histogram<u64>) {
    for value in histogram.iter_recorded() {
        let count = buckets
            .entry(bucket_of(value.value_iterated_to()))
            .or_insert(0);
        *count = count.saturating_add(value.count_at_value());
    }
}

fn merge_buckets(into: &mut BTreeMap<u32, u64>, from: &BTreeMap<u32, u64>) {
    for (bucket, count) in from {
        let total = into.entry(*bucket).or_insert(0);
        *total = total.saturating_add(*count);
    }
}

/// One name's requests in one slot.
#[derive(Debug, Clone, Default)]
struct SlotEntry {
    requests: u64,
    failures: u64,
    bytes: u64,
    latency: BTreeMap<u32, u64>,
    corrected: BTreeMap<u32, u64>,
}

impl SlotEntry {
    fn merge(&mut self, other: &SlotEntry) {
        self.requests = self.requests.saturating_add(other.requests);
        self.failures = self.failures.saturating_add(other.failures);
        self.bytes = self.bytes.saturating_add(other.bytes);
        merge_buckets(&mut self.latency, &other.latency);
        merge_buckets(&mut self.corrected, &other.corrected);
    }
}

/// A span of whole ticks.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Seconds since the start at the slot's last tick.
    t_end: f64,
    ticks: u32,
    /// name index -> requests.
    entries: HashMap<usize, SlotEntry>,
    /// message index -> failures.
    errors: HashMap<usize, u64>,
}

impl Slot {
    fn merge(&mut self, later: Slot) {
        self.t_end = later.t_end;
        self.ticks += later.ticks;
        for (name, entry) in later.entries {
            self.entries.entry(name).or_default().merge(&entry);
        }
        for (message, count) in later.errors {
            let total = self.errors.entry(message).or_insert(0);
            *total = total.saturating_add(count);
        }
    }
}

/// Milliseconds at `quantile` of a window, if it had requests.
fn quantile_ms(histogram: Option<&Histogram<u64>>, quantile: f64) -> Option<f64> {
    histogram
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(quantile) as f64 / 1000.0)
}

/// Everything the report's charts and range table are drawn from.
#[derive(Debug, Default)]
pub struct Series {
    t: Vec<f64>,
    users: Vec<u32>,
    iterations: Vec<u64>,
    dropped: Vec<u64>,
    requests: Vec<u64>,
    failures: Vec<u64>,
    /// p50, p90, p95, p99 of every second's requests (ms).
    percentiles: [Vec<Option<f64>>; 4],
    /// The same, corrected for coordinated omission (open model).
    corrected: [Vec<Option<f64>>; 4],
    names: Vec<(String, String)>,
    name_index: HashMap<(String, String), usize>,
    messages: Vec<String>,
    message_index: HashMap<String, usize>,
    slot_ticks: u32,
    slots: Vec<Slot>,
}

const QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

impl Series {
    pub fn new() -> Series {
        Series {
            slot_ticks: 1,
            ..Series::default()
        }
    }

    /// Add one tick.
    pub fn fold(&mut self, tick: &Tick) {
        let all = &tick.window.all;
        self.t.push(round3(tick.elapsed.as_secs_f64()));
        self.users.push(tick.users);
        self.iterations.push(tick.window.iterations);
        self.dropped.push(tick.window.dropped_iterations);
        self.requests.push(all.count());
        self.failures.push(all.failures);
        for (i, quantile) in QUANTILES.into_iter().enumerate() {
            self.percentiles[i].push(quantile_ms(Some(&all.latency_us), quantile));
            self.corrected[i].push(quantile_ms(all.corrected_us.as_ref(), quantile));
        }

        if self.slots.last().is_none_or(|s| s.ticks >= self.slot_ticks) {
            self.slots.push(Slot::default());
        }
        let mut slot = self.slots.pop().expect("a slot was just ensured");
        slot.t_end = round3(tick.elapsed.as_secs_f64());
        slot.ticks += 1;
        for (key, window) in &tick.window.entries {
            let index = match self.name_index.get(key) {
                Some(index) => *index,
                None => {
                    self.names.push(key.clone());
                    self.name_index.insert(key.clone(), self.names.len() - 1);
                    self.names.len() - 1
                }
            };
            let entry = slot.entries.entry(index).or_default();
            entry.requests = entry.requests.saturating_add(window.count());
            entry.failures = entry.failures.saturating_add(window.failures);
            entry.bytes = entry.bytes.saturating_add(window.bytes);
            add_histogram(&mut entry.latency, &window.latency_us);
            if let Some(corrected) = &window.corrected_us {
                add_histogram(&mut entry.corrected, corrected);
            }
        }
        for ((_, _, message), count) in &tick.window.errors {
            let index = self.message(message);
            let total = slot.errors.entry(index).or_insert(0);
            *total = total.saturating_add(*count);
        }
        self.slots.push(slot);
        if self.slots.len() > MAX_SLOTS {
            self.coarsen();
        }
    }

    /// The run is over: a last tick that covered under half a second (the
    /// partial interval after the stop) joins the one before, so no rate
    /// is a handful of requests divided by a sliver of a second.
    /// Then slots merge until the histograms fit [`MAX_HISTOGRAM_ENTRIES`].
    pub fn close(&mut self) {
        self.join_last_sliver();
        while self.slots.len() > MIN_SLOTS && self.histogram_entries() > MAX_HISTOGRAM_ENTRIES {
            self.coarsen();
        }
    }

    fn join_last_sliver(&mut self) {
        let n = self.t.len();
        if n < 2 || self.t[n - 1] - self.t[n - 2] >= 0.5 {
            return;
        }
        let last = n - 1;
        self.t[last - 1] = self.t[last];
        self.t.pop();
        self.users.pop();
        for column in [
            &mut self.iterations,
            &mut self.dropped,
            &mut self.requests,
            &mut self.failures,
        ] {
            let value = column.pop().unwrap_or(0);
            column[last - 1] = column[last - 1].saturating_add(value);
        }
        for column in self.percentiles.iter_mut().chain(self.corrected.iter_mut()) {
            let value = column.pop().flatten();
            if column[last - 1].is_none() {
                column[last - 1] = value;
            }
        }
        let slots = self.slots.len();
        if slots >= 2 && self.slots[slots - 1].ticks == 1 {
            let slot = self.slots.pop().expect("two slots");
            self.slots[slots - 2].merge(slot);
        }
    }

    /// Buckets held over all slots and names.
    fn histogram_entries(&self) -> usize {
        self.slots
            .iter()
            .flat_map(|slot| slot.entries.values())
            .map(|entry| entry.latency.len() + entry.corrected.len())
            .sum()
    }

    fn message(&mut self, message: &str) -> usize {
        if let Some(index) = self.message_index.get(message) {
            return *index;
        }
        let message = if self.messages.len() < MAX_MESSAGES - 1 {
            message
        } else {
            OTHER_MESSAGES
        };
        if let Some(index) = self.message_index.get(message) {
            return *index;
        }
        self.messages.push(message.to_string());
        self.message_index
            .insert(message.to_string(), self.messages.len() - 1);
        self.messages.len() - 1
    }

    /// Merge neighbouring slots: half as many, twice as wide.
    fn coarsen(&mut self) {
        let slots = std::mem::take(&mut self.slots);
        let mut merged = Vec::with_capacity(slots.len() / 2 + 1);
        let mut pending: Option<Slot> = None;
        for slot in slots {
            match pending.take() {
                None => pending = Some(slot),
                Some(mut first) => {
                    first.merge(slot);
                    merged.push(first);
                }
            }
        }
        merged.extend(pending);
        self.slots = merged;
        self.slot_ticks *= 2;
    }

    /// The series as the page reads them (see `report.js`): per-second
    /// arrays, then per name (in `names` order) an array per slot; a
    /// slot's histogram is `[bucket, count, bucket step, count, ...]`.
    pub fn to_json(&self) -> Value {
        let per_name = |f: &dyn Fn(&SlotEntry) -> Value| -> Vec<Vec<Value>> {
            (0..self.names.len())
                .map(|name| {
                    self.slots
                        .iter()
                        .map(|slot| match slot.entries.get(&name) {
                            Some(entry) => f(entry),
                            None => Value::from(0),
                        })
                        .collect()
                })
                .collect()
        };
        let encode = |buckets: &BTreeMap<u32, u64>| -> Value {
            let mut flat = Vec::with_capacity(buckets.len() * 2);
            let mut previous = 0;
            for (bucket, count) in buckets {
                flat.push(u64::from(bucket - previous));
                flat.push(*count);
                previous = *bucket;
            }
            Value::from(flat)
        };
        let any_corrected = self.corrected[0].iter().any(Option::is_some);
        json!({
            "t": self.t,
            "users": self.users,
            "iterations": self.iterations,
            "dropped": self.dropped,
            "requests": self.requests,
            "failures": self.failures,
            "p50": self.percentiles[0],
            "p90": self.percentiles[1],
            "p95": self.percentiles[2],
            "p99": self.percentiles[3],
            "corrected": if any_corrected {
                json!({
                    "p50": self.corrected[0],
                    "p90": self.corrected[1],
                    "p95": self.corrected[2],
                    "p99": self.corrected[3],
                })
            } else {
                Value::Null
            },
            "names": self.names.iter().map(|(kind, name)| [kind, name]).collect::<Vec<_>>(),
            "ratio": RATIO,
            "slot_ticks": self.slot_ticks,
            "slot_t": self.slots.iter().map(|s| s.t_end).collect::<Vec<_>>(),
            "slot_width": self.slots.iter().map(|s| s.ticks).collect::<Vec<_>>(),
            "slot_requests": per_name(&|e| e.requests.into()),
            "slot_failures": per_name(&|e| e.failures.into()),
            "slot_bytes": per_name(&|e| e.bytes.into()),
            "slot_latency": per_name(&|e| encode(&e.latency)),
            "slot_corrected": if any_corrected {
                Value::from(per_name(&|e| encode(&e.corrected)))
            } else {
                Value::Null
            },
            "messages": self.messages,
            "slot_errors": (0..self.messages.len())
                .map(|m| self.slots.iter().map(|s| s.errors.get(&m).copied().unwrap_or(0)).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_two_percent() {
        for us in [2u64, 50, 999, 1000, 1001, 12_345, 3_600_000_000] {
            let upper = RATIO.powi(bucket_of(us) as i32);
            assert!(upper >= us as f64 * 0.999999, "{us}: {upper}");
            assert!(upper <= us as f64 * RATIO * 1.000001, "{us}: {upper}");
        }
    }

    #[test]
    fn slots_coarsen_and_keep_every_request() {
        let stats = crate::stats::Stats::new(10, 64);
        let mut series = Series::new();
        for second in 0..(MAX_SLOTS as u64 * 2 + 7) {
            stats.record(&crate::stats::RequestEvent {
                request_type: "GET",
                name: "/a",
                duration: std::time::Duration::from_micros(1000 + second),
                response_length: 3,
                error: (second % 10 == 0).then_some("HTTP 500"),
                messages_sent: 0,
                messages_received: 0,
                lag: None,
                status: None,
                tags: &[],
            });
            series.fold(&stats.tick(1));
        }
        assert!(series.slots.len() <= MAX_SLOTS);
        assert_eq!(series.slot_ticks, 4);
        let total: u64 = series.slots.iter().map(|s| s.entries[&0].requests).sum();
        assert_eq!(total, MAX_SLOTS as u64 * 2 + 7);
        let ticks: u32 = series.slots.iter().map(|s| s.ticks).sum();
        assert_eq!(ticks as usize, series.t.len());
        let errors: u64 = series
            .slots
            .iter()
            .map(|s| s.errors.get(&0).copied().unwrap_or(0))
            .sum();
        assert_eq!(errors, 61);
    }

    /// Synthetic ticks: `names` names, each with 40 requests a second of
    /// latencies spread over two orders of magnitude.
    fn synthetic(seconds: u64, names: usize) -> Series {
        let mut series = Series::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for second in 0..seconds {
            let mut window = crate::stats::Delta::default();
            for n in 0..names {
                let mut entry = crate::stats::WindowEntry::default();
                for _ in 0..40 {
                    let us = (500.0 * (rng.f64() * 4.6).exp()) as u64;
                    entry.latency_us.record(us).unwrap();
                }
                window.all.merge(&entry);
                window
                    .entries
                    .insert(("GET".into(), format!("/api/endpoint/{n}")), entry);
            }
            series.fold(&Tick {
                elapsed: std::time::Duration::from_secs(second + 1),
                at: std::time::SystemTime::now(),
                users: 50,
                window,
                totals: Default::default(),
                verdicts: Vec::new(),
                reset: false,
            });
        }
        series.close();
        series
    }

    #[test]
    fn an_hour_with_fifty_names_stays_under_five_megabytes() {
        let size = |series: Series| serde_json::to_string(&series.to_json()).unwrap().len();
        let hour = size(synthetic(3600, 50));
        let ten_minutes = size(synthetic(600, 20));
        eprintln!(
            "series JSON: 1 h x 50 names {hour} bytes; 10 min x 20 names {ten_minutes} bytes"
        );
        assert!(hour < 5_000_000, "{hour} bytes");
        assert!(ten_minutes < hour, "{ten_minutes} bytes");
    }
}
