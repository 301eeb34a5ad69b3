//! The cumulative aggregate of a run and the report and snapshots built from it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Entry, GaugeValue, OVERFLOW_NAME};

mod absorb;

/// The key `name` is kept under in an aggregate map holding at most `max`
/// keys: itself while there is room or it is already there, else the
/// overflow row.
fn capped<V>(map: &BTreeMap<String, V>, name: String, max: usize) -> String {
    if map.len() < max || map.contains_key(&name) {
        name
    } else {
        OVERFLOW_NAME.to_string()
    }
}

/// Everything recorded in a run so far, merged from the shards.
#[derive(Debug, Default)]
pub struct Aggregate {
    entries: BTreeMap<(String, String), Entry>,
    errors: HashMap<(String, String, String), u64>,
    exceptions: HashMap<String, u64>,
    checks: BTreeMap<String, (u64, u64)>,
    counters: BTreeMap<String, f64>,
    gauges: BTreeMap<String, GaugeValue>,
    trends: BTreeMap<String, Histogram<u64>>,
    /// Requests by tracked tag value: (key, value, type, name).
    tagged: BTreeMap<super::tags::TagKey, Entry>,
    total_count: u64,
    total_failures: u64,
    /// Most names of requests and of each custom-metric and check map
    /// (0: no limit).
    max_names: usize,
    /// Request rows kept under their own name (overflow rows aside).
    named_entries: usize,
    /// The values kept of each tag key.
    tag_values: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub p50: f64,
    pub p66: f64,
    pub p75: f64,
    pub p80: f64,
    pub p90: f64,
    pub p95: f64,
    pub p98: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    #[serde(rename = "p99.99")]
    pub p99_99: f64,
    pub p100: f64,
}

impl LatencySummary {
    fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::zero();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |quantile: f64| ms(h.value_at_quantile(quantile));
        LatencySummary {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            max: ms(h.max()),
            p50: q(0.5),
            p66: q(0.66),
            p75: q(0.75),
            p80: q(0.8),
            p90: q(0.9),
            p95: q(0.95),
            p98: q(0.98),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            p100: ms(h.max()),
        }
    }

    fn zero() -> LatencySummary {
        LatencySummary {
            min: 0.0,
            mean: 0.0,
            max: 0.0,
            p50: 0.0,
            p66: 0.0,
            p75: 0.0,
            p80: 0.0,
            p90: 0.0,
            p95: 0.0,
            p98: 0.0,
            p99: 0.0,
            p99_9: 0.0,
            p99_99: 0.0,
            p100: 0.0,
        }
    }

    /// Locust's percentiles in order: 50 66 75 80 90 95 98 99 99.9 99.99 100.
    pub fn percentiles(&self) -> [f64; 11] {
        [
            self.p50,
            self.p66,
            self.p75,
            self.p80,
            self.p90,
            self.p95,
            self.p98,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.p100,
        ]
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Statistics of one (type, name) pair, or of all of them.
#[derive(Debug, Clone, Serialize)]
pub struct NameStats {
    #[serde(rename = "type")]
    pub request_type: String,
    pub name: String,
    pub count: u64,
    pub failures: u64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Failures per second over the run.
    pub failures_per_s: f64,
    /// Response bytes in total.
    pub bytes: u64,
    /// Stream messages sent and received (omitted when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub messages_sent: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub messages_received: u64,
    pub latency_ms: LatencySummary,
    /// Open model: latency from each iteration's intended start, corrected
    /// for coordinated omission (as wrk2 reports it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_latency_ms: Option<LatencySummary>,
    /// Responses by status ("200", "404"; gRPC codes, "0" is OK), omitted
    /// when no response carried one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub status_codes: BTreeMap<String, u64>,
}

/// A failure or exception message with how often it happened.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub request_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub message: String,
    pub count: u64,
}

/// A check's passes and fails.
#[derive(Debug, Clone, Serialize)]
pub struct CheckCount {
    pub name: String,
    pub passes: u64,
    pub fails: u64,
}

/// The end-of-run report: what the summary, JSON and exit code are made from.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub duration_s: f64,
    pub users: u32,
    /// Iterations (tasks) started, and arrivals dropped for want of a VU.
    pub iterations: u64,
    pub dropped_iterations: u64,
    pub total: NameStats,
    pub stats: Vec<NameStats>,
    pub errors: Vec<ErrorCount>,
    pub exceptions: Vec<ErrorCount>,
    pub checks: Vec<CheckCount>,
    /// Counters, gauges and trends the scenario reported.
    pub metrics: CustomMetrics,
    /// Pass/fail verdicts of the thresholds (empty without thresholds).
    pub thresholds: Vec<crate::thresholds::Verdict>,
    /// One point per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// The data feeds the run read (`--data`): file, SHA-256, rows, strategy, rows handed out.
    pub data: Vec<crate::caps::data::FeedReport>,
    /// Results per value of each `--breakdown` tag key (omitted without one).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: super::Breakdown,
    /// The execution segment this process ran (`--segment`), e.g. "1/4:1/2".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// The user classes that ran, when the scenario declares any; results
    /// per class are in `breakdown.user_class`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_classes: Vec<crate::schedule::classes::ClassReport>,
    /// `horde merge`: the result files merged into this report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<crate::merge::MergedFile>,
}

/// What happened during one second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the start, at the end of this interval.
    pub t: f64,
    /// VUs with a live instance.
    pub users: u32,
    pub requests: u64,
    pub failures: u64,
    /// Iterations started and dropped in this interval.
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// p95 latency of this interval's requests, in ms.
    pub p95_ms: Option<f64>,
}

/// A counter's total and rate.
#[derive(Debug, Clone, Serialize)]
pub struct CounterValue {
    pub total: f64,
    pub rate: f64,
}

/// A gauge's last, min and max values.
#[derive(Debug, Clone, Serialize)]
pub struct GaugeSummary {
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

/// A trend's distribution.
#[derive(Debug, Clone, Serialize)]
pub struct TrendSummary {
    pub count: u64,
    pub avg: f64,
    pub min: f64,
    pub med: f64,
    pub max: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

impl TrendSummary {
    fn of(h: &Histogram<u64>) -> TrendSummary {
        let v = |x: u64| x as f64 / 1000.0;
        TrendSummary {
            count: h.len(),
            avg: h.mean() / 1000.0,
            min: v(h.min()),
            med: v(h.value_at_quantile(0.5)),
            max: v(h.max()),
            p90: v(h.value_at_quantile(0.9)),
            p95: v(h.value_at_quantile(0.95)),
            p99: v(h.value_at_quantile(0.99)),
        }
    }
}

/// The scenario's own metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CustomMetrics {
    pub counters: BTreeMap<String, CounterValue>,
    pub gauges: BTreeMap<String, GaugeSummary>,
    pub trends: BTreeMap<String, TrendSummary>,
}

fn merge_into(all: &mut Entry, entry: &Entry) {
    add_row(
        all,
        &entry.latency_us,
        entry.corrected_us.as_ref(),
        [
            entry.failures,
            entry.bytes,
            entry.messages_sent,
            entry.messages_received,
        ],
        &entry.statuses,
    );
}

/// Add one row's figures to a kept row: histograms add, counts saturate;
/// `counts` are failures, bytes, messages sent and received.
fn add_row(
    all: &mut Entry,
    latency_us: &Histogram<u64>,
    corrected_us: Option<&Histogram<u64>>,
    [failures, bytes, sent, received]: [u64; 4],
    statuses: &[(u16, u64)],
) {
    let _ = all.latency_us.add(latency_us);
    all.failures = all.failures.saturating_add(failures);
    all.bytes = all.bytes.saturating_add(bytes);
    all.messages_sent = all.messages_sent.saturating_add(sent);
    all.messages_received = all.messages_received.saturating_add(received);
    if let Some(corrected) = corrected_us {
        let _ = all
            .corrected_us
            .get_or_insert_with(super::new_histogram)
            .add(corrected);
    }
    for (status, count) in statuses {
        super::add_status(&mut all.statuses, *status, *count);
    }
}

impl Aggregate {
    /// An empty aggregate keeping at most `max_names` checks, counters,
    /// gauges and trends each (more are folded into an overflow row).
    pub(crate) fn new(max_names: usize) -> Aggregate {
        Aggregate {
            max_names,
            ..Aggregate::default()
        }
    }

    /// Entries with tag `key` = `value` whose (type, name) pass `keep`,
    /// merged into one (the key must be tracked: `Stats::track_tags`).
    pub(crate) fn merged_tagged(
        &self,
        key: &str,
        value: &str,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Entry {
        let mut all = Entry::new();
        for ((k, v, kind, name), entry) in &self.tagged {
            if k == key && v == value && keep(kind, name) {
                merge_into(&mut all, entry);
            }
        }
        all
    }

    /// Entries whose (type, name) pass `keep`, merged into one.
    pub(crate) fn merged(&self, keep: impl Fn(&str, &str) -> bool) -> Entry {
        let mut all = Entry::new();
        for ((kind, name), entry) in &self.entries {
            if keep(kind, name) {
                merge_into(&mut all, entry);
            }
        }
        all
    }

    /// A check's (passes, fails), or all checks' when `name` is None.
    pub(crate) fn check_counts(&self, name: Option<&str>) -> (u64, u64) {
        self.checks
            .iter()
            .filter(|(n, _)| name.is_none_or(|want| want == n.as_str()))
            .fold((0u64, 0u64), |acc, (_, (p, f))| {
                (acc.0.saturating_add(*p), acc.1.saturating_add(*f))
            })
    }

    pub(crate) fn counter(&self, name: &str) -> Option<f64> {
        self.counters.get(name).copied()
    }

    pub(crate) fn gauge(&self, name: &str) -> Option<GaugeValue> {
        self.gauges.get(name).copied()
    }

    pub(crate) fn trend(&self, name: &str) -> Option<&Histogram<u64>> {
        self.trends.get(name)
    }

    /// Requests, failures and exceptions so far.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        (
            self.total_count,
            self.total_failures,
            self.exceptions
                .values()
                .fold(0u64, |a, b| a.saturating_add(*b)),
        )
    }

    pub(crate) fn report(&self, elapsed: Duration, users: u32, iterations: (u64, u64)) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let stats_of = |kind: &str, name: &str, entry: &Entry| NameStats {
            request_type: kind.to_string(),
            name: name.to_string(),
            count: entry.latency_us.len(),
            failures: entry.failures,
            rps: entry.latency_us.len() as f64 / seconds,
            failures_per_s: entry.failures as f64 / seconds,
            bytes: entry.bytes,
            messages_sent: entry.messages_sent,
            messages_received: entry.messages_received,
            latency_ms: LatencySummary::from_histogram(&entry.latency_us),
            corrected_latency_ms: entry
                .corrected_us
                .as_ref()
                .map(LatencySummary::from_histogram),
            status_codes: entry
                .statuses
                .iter()
                .map(|(status, count)| (status.to_string(), *count))
                .collect(),
        };
        let mut all = Entry::new();
        let mut stats = Vec::with_capacity(self.entries.len());
        for ((kind, name), entry) in &self.entries {
            if kind != super::GROUP_TYPE {
                merge_into(&mut all, entry);
            }
            stats.push(stats_of(kind, name, entry));
        }
        let mut errors: Vec<ErrorCount> = self
            .errors
            .iter()
            .map(|((kind, name, message), count)| ErrorCount {
                request_type: kind.clone(),
                name: name.clone(),
                message: message.clone(),
                count: *count,
            })
            .collect();
        errors.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        let mut exceptions: Vec<ErrorCount> = self
            .exceptions
            .iter()
            .map(|(message, count)| ErrorCount {
                request_type: String::new(),
                name: String::new(),
                message: message.clone(),
                count: *count,
            })
            .collect();
        exceptions.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        let metrics = CustomMetrics {
            counters: self
                .counters
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        CounterValue {
                            total: *v,
                            rate: v / seconds,
                        },
                    )
                })
                .collect(),
            gauges: self
                .gauges
                .iter()
                .map(|(k, g)| {
                    (
                        k.clone(),
                        GaugeSummary {
                            value: g.last,
                            min: g.min,
                            max: g.max,
                        },
                    )
                })
                .collect(),
            trends: self
                .trends
                .iter()
                .map(|(k, h)| (k.clone(), TrendSummary::of(h)))
                .collect(),
        };
        Report {
            duration_s: elapsed.as_secs_f64(),
            users,
            iterations: iterations.0,
            dropped_iterations: iterations.1,
            metrics,
            thresholds: Vec::new(),
            timeline: Vec::new(),
            data: Vec::new(),
            breakdown: super::tags::breakdown(&self.tagged, stats_of, merge_into),
            segment: None,
            user_classes: Vec::new(),
            merged: Vec::new(),
            total: stats_of("", "Aggregated", &all),
            stats,
            errors,
            exceptions,
            checks: self
                .checks
                .iter()
                .map(|(name, (passes, fails))| CheckCount {
                    name: name.clone(),
                    passes: *passes,
                    fails: *fails,
                })
                .collect(),
        }
    }
}
