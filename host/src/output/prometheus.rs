//! Prometheus exposition of a run: the metric families (names follow
//! Prometheus conventions: `horde_` prefix, seconds, `_total` counters),
//! the sink that folds each per-second tick into them, and the text
//! encoding served at `/metrics` (OpenMetrics, by the `prometheus-client`
//! crate). Each kind of guest-chosen name (requests, checks, counters,
//! gauges, trends) gets as many series as the report keeps names
//! (`max_event_names`); later names are counted under the report's
//! overflow name.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::Sink;
use crate::RunOutcome;
use crate::stats::{OVERFLOW_NAME, OVERFLOW_TYPE, Tick};
use crate::thresholds::Verdict;

/// A metric's labels, as (label name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Upper bounds (seconds) of the latency histograms' buckets: about 1.5x
/// apart from 0.5 ms to 60 s, so `histogram_quantile` lands within a
/// quarter of the true value (the report's percentiles are exact).
pub const BUCKETS_S: [f64; 27] = [
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// A cumulative latency histogram in Prometheus buckets, fed with the
/// run's HDR windows (so its counts equal the report's).
#[derive(Debug, Default)]
pub struct LatencyBuckets {
    inner: std::sync::Mutex<BucketCounts>,
}

#[derive(Debug, Default)]
struct BucketCounts {
    sum_s: f64,
    count: u64,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; BUCKETS_S.len() + 1],
}

impl LatencyBuckets {
    /// Add a window's latencies (microseconds).
    pub fn add(&self, latency_us: &Histogram<u64>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for value in latency_us.iter_recorded() {
            let seconds = value.value_iterated_to() as f64 / 1e6;
            let bucket = BUCKETS_S.partition_point(|bound| *bound < seconds);
            inner.counts[bucket] = inner.counts[bucket].saturating_add(value.count_at_value());
        }
        inner.count = inner.count.saturating_add(latency_us.len());
        inner.sum_s += latency_us.mean() * latency_us.len() as f64 / 1e6;
    }
}

impl TypedMetric for LatencyBuckets {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyBuckets {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let buckets: Vec<(f64, u64)> = BUCKETS_S
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(inner.counts)
            .collect();
        encoder.encode_histogram::<NoLabelSet>(inner.sum_s, inner.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// Every metric a run exposes, registered once; the sink updates them and
/// `/metrics` encodes them.
#[derive(Debug)]
pub struct RunMetrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    duration: Family<Labels, LatencyBuckets>,
    corrected: Family<Labels, LatencyBuckets>,
    vus: Gauge,
    iterations: Counter,
    dropped: Counter,
    exceptions: Counter,
    checks: Family<Labels, Counter>,
    custom_counters: Family<Labels, FloatCounter>,
    custom_gauges: Family<Labels, FloatGauge>,
    custom_trends: Family<Labels, FloatGauge>,
    threshold_passed: Family<Labels, Gauge>,
    threshold_value: Family<Labels, FloatGauge>,
    elapsed: FloatGauge,
    finished: Gauge,
    run_info: Family<Labels, Gauge>,
    /// Scrapes served since the run finished.
    scrapes_after_end: AtomicU64,
    scraped: tokio::sync::Notify,
}

impl RunMetrics {
    /// Register the families.
    pub fn new() -> Arc<RunMetrics> {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "horde_requests",
            "Requests completed, by request type and name",
            requests.clone(),
        );
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "horde_request_failures",
            "Requests that failed, by request type and name",
            failures.clone(),
        );
        let bytes = Family::<Labels, Counter>::default();
        registry.register(
            "horde_response_bytes",
            "Response bytes received (decoded), by request type and name",
            bytes.clone(),
        );
        let duration = Family::<Labels, LatencyBuckets>::default();
        registry.register(
            "horde_request_duration_seconds",
            "Request latency, by request type and name",
            duration.clone(),
        );
        let corrected = Family::<Labels, LatencyBuckets>::default();
        registry.register(
            "horde_request_duration_corrected_seconds",
            "Open model: latency from each iteration's intended start (coordinated omission \
             corrected)",
            corrected.clone(),
        );
        let vus = Gauge::default();
        registry.register(
            "horde_vus",
            "Virtual users with a live instance",
            vus.clone(),
        );
        let iterations = Counter::default();
        registry.register("horde_iterations", "Iterations started", iterations.clone());
        let dropped = Counter::default();
        registry.register(
            "horde_dropped_iterations",
            "Open model: arrivals that found no free VU in time",
            dropped.clone(),
        );
        let exceptions = Counter::default();
        registry.register(
            "horde_exceptions",
            "Task errors and guest traps",
            exceptions.clone(),
        );
        let checks = Family::<Labels, Counter>::default();
        registry.register(
            "horde_checks",
            "Check outcomes, by check and result (pass or fail)",
            checks.clone(),
        );
        let custom_counters = Family::<Labels, FloatCounter>::default();
        registry.register(
            "horde_custom_counter",
            "The scenario's custom counters, by metric",
            custom_counters.clone(),
        );
        let custom_gauges = Family::<Labels, FloatGauge>::default();
        registry.register(
            "horde_custom_gauge",
            "The scenario's custom gauges (last value), by metric",
            custom_gauges.clone(),
        );
        let custom_trends = Family::<Labels, FloatGauge>::default();
        registry.register(
            "horde_custom_trend",
            "The scenario's custom trends over the run so far, by metric and stat \
             (count, avg, min, med, p90, p95, max)",
            custom_trends.clone(),
        );
        let threshold_passed = Family::<Labels, Gauge>::default();
        registry.register(
            "horde_threshold_passed",
            "1 while a threshold's condition holds on the run so far, 0 when it fails",
            threshold_passed.clone(),
        );
        let threshold_value = Family::<Labels, FloatGauge>::default();
        registry.register(
            "horde_threshold_value",
            "The value a threshold's condition is judged on",
            threshold_value.clone(),
        );
        let elapsed = FloatGauge::default();
        registry.register(
            "horde_run_elapsed_seconds",
            "Time since the run started",
            elapsed.clone(),
        );
        let finished = Gauge::default();
        registry.register(
            "horde_run_finished",
            "1 once the run has ended and the values are final",
            finished.clone(),
        );
        let run_info = Family::<Labels, Gauge>::default();
        registry.register(
            "horde_run_info",
            "Always 1; labels say what runs: scenario, host, load model",
            run_info.clone(),
        );
        Arc::new(RunMetrics {
            registry,
            requests,
            failures,
            bytes,
            duration,
            corrected,
            vus,
            iterations,
            dropped,
            exceptions,
            checks,
            custom_counters,
            custom_gauges,
            custom_trends,
            threshold_passed,
            threshold_value,
            elapsed,
            finished,
            run_info,
            scrapes_after_end: AtomicU64::new(0),
            scraped: tokio::sync::Notify::new(),
        })
    }

    /// Label `horde_run_info` with what runs, e.g. `[("scenario", ..),
    /// ("host", ..), ("model", ..)]`.
    pub fn describe_run(&self, info: Labels) {
        self.run_info.clear();
        self.run_info.get_or_create(&info).set(1);
    }

    /// The exposition in OpenMetrics text, as served at `/metrics`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        if self.finished.get() == 1 {
            self.scrapes_after_end.fetch_add(1, Ordering::Relaxed);
            self.scraped.notify_waiters();
        }
        text
    }

    /// After the run: wait until `/metrics` has been read once with the
    /// final values, at most `limit` (or until SIGINT/SIGTERM). Returns true
    /// if it was read.
    pub async fn wait_for_final_scrape(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let scraped = self.scraped.notified();
            if self.scrapes_after_end.load(Ordering::Relaxed) > 0 {
                return true;
            }
            tokio::select! {
                _ = scraped => {}
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = crate::wait_for_signal() => return false,
            }
        }
    }

    fn set_verdicts(&self, verdicts: &[Verdict]) {
        for verdict in verdicts {
            let labels = vec![
                ("threshold", verdict.threshold.clone()),
                ("condition", verdict.condition.clone()),
            ];
            self.threshold_passed
                .get_or_create(&labels)
                .set(i64::from(verdict.passed));
            if let Some(actual) = verdict.actual {
                self.threshold_value.get_or_create(&labels).set(actual);
            }
        }
    }
}

/// The names of one kind that have series, at most `max`: a name after
/// those is exported under [`OVERFLOW_NAME`] (as the report folds it).
#[derive(Debug)]
struct NameCap<K> {
    names: HashSet<K>,
    max: usize,
}

impl<K: Hash + Eq + Clone> NameCap<K> {
    fn new(max: usize) -> NameCap<K> {
        NameCap {
            names: HashSet::new(),
            max: max.max(1),
        }
    }

    /// True when `key` has, or may get, its own series.
    fn admits(&mut self, key: &K) -> bool {
        if self.names.contains(key) {
            return true;
        }
        if self.names.len() < self.max {
            self.names.insert(key.clone());
            return true;
        }
        false
    }

    /// `name`, or the overflow name once the cap is full.
    fn label(&mut self, name: &str) -> String
    where
        K: From<String>,
    {
        if name == OVERFLOW_NAME || self.admits(&K::from(name.to_string())) {
            name.to_string()
        } else {
            OVERFLOW_NAME.to_string()
        }
    }
}

/// The sink that keeps [`RunMetrics`] current, a tick at a time.
pub struct PrometheusSink {
    metrics: Arc<RunMetrics>,
    /// Each custom trend over the run so far (thousandths).
    trends: std::collections::BTreeMap<String, Histogram<u64>>,
    requests_cap: NameCap<(String, String)>,
    checks_cap: NameCap<String>,
    counters_cap: NameCap<String>,
    gauges_cap: NameCap<String>,
    trends_cap: NameCap<String>,
}

impl PrometheusSink {
    /// A sink that exports at most `max_names` series names of each kind
    /// (the report's cap, `Limits::max_event_names`).
    pub fn new(metrics: Arc<RunMetrics>, max_names: usize) -> PrometheusSink {
        PrometheusSink {
            metrics,
            trends: Default::default(),
            requests_cap: NameCap::new(max_names),
            checks_cap: NameCap::new(max_names),
            counters_cap: NameCap::new(max_names),
            gauges_cap: NameCap::new(max_names),
            trends_cap: NameCap::new(max_names),
        }
    }

    /// The (type, name) labels of a request entry under the cap.
    fn request_labels(&mut self, kind: &str, name: &str) -> Labels {
        let key = (kind.to_string(), name.to_string());
        if name == OVERFLOW_NAME || self.requests_cap.admits(&key) {
            vec![("type", key.0), ("name", key.1)]
        } else {
            vec![
                ("type", OVERFLOW_TYPE.to_string()),
                ("name", OVERFLOW_NAME.to_string()),
            ]
        }
    }
}

impl Sink for PrometheusSink {
    fn tick(&mut self, tick: &Tick) {
        let m = &self.metrics.clone();
        for ((kind, name), entry) in &tick.window.entries {
            let labels = self.request_labels(kind, name);
            m.requests.get_or_create(&labels).inc_by(entry.count());
            m.failures.get_or_create(&labels).inc_by(entry.failures);
            m.bytes.get_or_create(&labels).inc_by(entry.bytes);
            m.duration.get_or_create(&labels).add(&entry.latency_us);
            if let Some(corrected) = &entry.corrected_us {
                m.corrected.get_or_create(&labels).add(corrected);
            }
        }
        m.vus.set(i64::from(tick.users));
        m.iterations.inc_by(tick.window.iterations);
        m.dropped.inc_by(tick.window.dropped_iterations);
        m.exceptions
            .inc_by(tick.window.exceptions.values().sum::<u64>());
        for (check, (passes, fails)) in &tick.window.checks {
            let check = self.checks_cap.label(check);
            for (result, count) in [("pass", passes), ("fail", fails)] {
                let labels = vec![("check", check.clone()), ("result", result.to_string())];
                m.checks.get_or_create(&labels).inc_by(*count);
            }
        }
        for (metric, amount) in &tick.window.counters {
            let labels = vec![("metric", self.counters_cap.label(metric))];
            m.custom_counters.get_or_create(&labels).inc_by(*amount);
        }
        for (metric, value) in &tick.window.gauges {
            let labels = vec![("metric", self.gauges_cap.label(metric))];
            m.custom_gauges.get_or_create(&labels).set(*value);
        }
        for (metric, values) in &tick.window.trends {
            let metric = self.trends_cap.label(metric);
            let all = self
                .trends
                .entry(metric.clone())
                .or_insert_with(crate::stats::new_histogram);
            let _ = all.add(values);
            let stats = [
                ("count", all.len() as f64),
                ("avg", all.mean() / 1000.0),
                ("min", all.min() as f64 / 1000.0),
                ("med", all.value_at_quantile(0.5) as f64 / 1000.0),
                ("p90", all.value_at_quantile(0.9) as f64 / 1000.0),
                ("p95", all.value_at_quantile(0.95) as f64 / 1000.0),
                ("max", all.max() as f64 / 1000.0),
            ];
            for (stat, value) in stats {
                let labels = vec![("metric", metric.clone()), ("stat", stat.to_string())];
                m.custom_trends.get_or_create(&labels).set(value);
            }
        }
        m.set_verdicts(&tick.verdicts);
        m.elapsed.set(tick.elapsed.as_secs_f64());
    }

    fn finish(&mut self, outcome: &RunOutcome) -> anyhow::Result<()> {
        // The final verdicts are judged over the whole run, as the report's.
        self.metrics.set_verdicts(&outcome.report.thresholds);
        self.metrics.finished.set(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_an_hdr_window_and_escape_labels() {
        let metrics = RunMetrics::new();
        metrics.describe_run(vec![("scenario", "s.wasm".into())]);
        let mut window = crate::stats::new_histogram();
        for us in [500, 900, 1000, 4000, 1_900_000, 45_000_000] {
            window.record(us).unwrap();
        }
        let labels = vec![("type", "GET".to_string()), ("name", "a\"b\n".to_string())];
        metrics.duration.get_or_create(&labels).add(&window);
        let text = metrics.encode();
        let line = |suffix: &str| {
            text.lines()
                .find(|l| l.starts_with("horde_request_duration_seconds_") && l.contains(suffix))
                .unwrap_or_else(|| panic!("{suffix} in {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(line("le=\"0.0005\""), "1");
        assert_eq!(line("le=\"0.001\""), "3");
        assert_eq!(line("le=\"0.005\""), "4");
        assert_eq!(line("le=\"2.0\""), "5");
        assert_eq!(line("le=\"30.0\""), "5");
        assert_eq!(line("le=\"60.0\""), "6");
        assert_eq!(line("le=\"+Inf\""), "6");
        assert!(text.contains(r#"name="a\"b\n""#), "{text}");
    }
}
