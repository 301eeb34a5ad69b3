//! Locust's CSV files (`--csv PREFIX`), with the headers and formats of
//! Locust 2.47 (`locust/stats.py`, `StatsCSV` and `StatsCSVFileWriter`):
//! `PREFIX_stats_history.csv` gets a row every second (the `Aggregated` row,
//! and with `--csv-full-history` one per type and name first), written as
//! the run goes; `PREFIX_stats.csv`, `PREFIX_failures.csv` and
//! `PREFIX_exceptions.csv` are written when it ends, from the same figures
//! as the summary and the JSON report.
//!
//! Where Horde's figures differ from Locust's: percentiles and medians come
//! from HDR histograms (3 significant figures, shown as whole milliseconds
//! as Locust shows them) instead of Locust's rounded buckets; a history
//! row's `Requests/s` is the mean of the last 10 seconds (Locust's window,
//! without its 2-second lag), and its "current" percentiles (full history)
//! cover the same 10 seconds. Names are quoted by the CSV rules (RFC 4180),
//! so a name with commas, quotes or line breaks stays one field.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::Sink;
use crate::RunOutcome;
use crate::stats::{Delta, LatencySummary, NameStats, Report, Tick, WindowEntry};

/// Locust's percentile columns (`PERCENTILES_TO_REPORT`).
const PERCENTILE_COLUMNS: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];
/// Locust's quantiles for those columns.
const QUANTILES: [f64; 11] = [
    0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];
/// Seconds of history behind a row's current rate and percentiles (Locust's
/// `CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`).
const CURRENT_WINDOW: usize = 10;

/// The `PREFIX_stats.csv` header.
pub const STATS_HEADER: [&str; 22] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
];
/// The `PREFIX_failures.csv` header.
pub const FAILURES_HEADER: [&str; 6] = [
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
];
/// The `PREFIX_exceptions.csv` header.
pub const EXCEPTIONS_HEADER: [&str; 4] = ["Count", "Message", "Traceback", "Nodes"];

/// The `PREFIX_stats_history.csv` header.
pub fn history_header() -> Vec<&'static str> {
    let mut header = vec![
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILE_COLUMNS);
    header.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]);
    header
}

/// The CSV output of a run.
pub struct CsvOutput {
    prefix: PathBuf,
    full_history: bool,
    history: csv::Writer<File>,
    /// Per (type, name) since the start (full history only), and in all.
    totals: BTreeMap<(String, String), WindowEntry>,
    total: Option<WindowEntry>,
    /// The last [`CURRENT_WINDOW`] windows.
    recent: VecDeque<Delta>,
    /// The seconds each of those windows covers (the last one of a run is
    /// partial), and when the last tick came.
    spans: VecDeque<f64>,
    last_elapsed: f64,
    /// When each (type, name, message) failure was first and last seen.
    seen: FirstLastSeen,
    /// The first error writing the history (reported at the end).
    failed: Option<String>,
}

impl CsvOutput {
    /// Create `PREFIX_stats_history.csv` with its header (this also checks,
    /// before the run, that the files can be written).
    pub fn create(prefix: &Path, full_history: bool) -> Result<CsvOutput> {
        let path = with_suffix(prefix, "_stats_history.csv");
        let file = File::create(&path).with_context(|| {
            format!(
                "--csv {}: cannot create {}; check that the folder exists and is writable",
                prefix.display(),
                path.display()
            )
        })?;
        let mut history = csv::Writer::from_writer(file);
        history.write_record(history_header())?;
        history.flush()?;
        Ok(CsvOutput {
            prefix: prefix.to_path_buf(),
            full_history,
            history,
            totals: BTreeMap::new(),
            total: None,
            recent: VecDeque::with_capacity(CURRENT_WINDOW + 1),
            spans: VecDeque::with_capacity(CURRENT_WINDOW + 1),
            last_elapsed: 0.0,
            seen: HashMap::new(),
            failed: None,
        })
    }

    fn history_rows(&mut self, tick: &Tick) -> Result<()> {
        let timestamp = unix_seconds(tick.at).to_string();
        let users = tick.users.to_string();
        if self.full_history {
            // Locust sorts rows by (name, method).
            let mut keys: Vec<&(String, String)> = self.totals.keys().collect();
            keys.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
            for key in keys {
                let recent = self.recent_of(Some(key));
                let row = history_row(
                    &timestamp,
                    &users,
                    &key.0,
                    &key.1,
                    &recent,
                    &self.totals[key],
                    true,
                );
                self.history.write_record(row)?;
            }
        }
        let recent = self.recent_of(None);
        let total = self.total.clone().unwrap_or_default();
        let row = history_row(
            &timestamp,
            &users,
            "",
            "Aggregated",
            &recent,
            &total,
            self.full_history,
        );
        self.history.write_record(row)?;
        self.history.flush()?;
        Ok(())
    }

    /// One key's (or, with None, all) requests over the recent windows,
    /// and the seconds they cover.
    fn recent_of(&self, key: Option<&(String, String)>) -> (WindowEntry, f64) {
        let mut merged = WindowEntry::default();
        for window in &self.recent {
            match key {
                Some(key) => {
                    if let Some(entry) = window.entries.get(key) {
                        merged.merge(entry);
                    }
                }
                None => merged.merge(&window.all),
            }
        }
        let seconds = self.spans.iter().sum::<f64>();
        (merged, if seconds > 0.0 { seconds } else { 1.0 })
    }

    fn write_final(&self, outcome: &RunOutcome) -> Result<()> {
        let report = &outcome.report;
        let mut stats = writer(&self.prefix, "_stats.csv")?;
        write_stats(&mut stats, report)?;
        let mut failures = writer(&self.prefix, "_failures.csv")?;
        write_failures(&mut failures, report, &self.seen)?;
        let mut exceptions = writer(&self.prefix, "_exceptions.csv")?;
        write_exceptions(&mut exceptions, report)?;
        Ok(())
    }
}

/// When each (type, name, message) failed first and last.
pub type FirstLastSeen = HashMap<(String, String, String), (SystemTime, SystemTime)>;

/// `_stats.csv`: a row per type and name (by name, then type), then
/// `Aggregated`.
pub fn write_stats<W: std::io::Write>(out: &mut csv::Writer<W>, report: &Report) -> Result<()> {
    out.write_record(STATS_HEADER)?;
    let mut rows: Vec<&NameStats> = report.stats.iter().collect();
    rows.sort_by(|a, b| (&a.name, &a.request_type).cmp(&(&b.name, &b.request_type)));
    for row in rows {
        out.write_record(stats_row(&row.request_type, &row.name, row))?;
    }
    out.write_record(stats_row("", "Aggregated", &report.total))?;
    out.flush()?;
    Ok(())
}

/// `_failures.csv`: a row per type, name and message; first and last seen
/// from `seen` (empty where unknown).
pub fn write_failures<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    report: &Report,
    seen: &FirstLastSeen,
) -> Result<()> {
    out.write_record(FAILURES_HEADER)?;
    let mut errors: Vec<_> = report.errors.iter().collect();
    errors.sort_by(|a, b| {
        (&a.name, &a.request_type, &a.message).cmp(&(&b.name, &b.request_type, &b.message))
    });
    for error in errors {
        let key = (
            error.request_type.clone(),
            error.name.clone(),
            error.message.clone(),
        );
        let (first, last) = match seen.get(&key) {
            Some((first, last)) => (utc(*first), utc(*last)),
            None => (String::new(), String::new()),
        };
        out.write_record([
            error.request_type.as_str(),
            error.name.as_str(),
            error.message.as_str(),
            &error.count.to_string(),
            &first,
            &last,
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// `_exceptions.csv`: task errors and traps.
pub fn write_exceptions<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    report: &Report,
) -> Result<()> {
    out.write_record(EXCEPTIONS_HEADER)?;
    for exception in &report.exceptions {
        // Horde's messages carry their place (file:line); there is no
        // separate traceback, and one node.
        out.write_record([
            &exception.count.to_string(),
            exception.message.as_str(),
            "",
            "local",
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// Note when each failure of `tick` was seen (first and last).
pub fn note_seen(seen: &mut FirstLastSeen, tick: &Tick) {
    for (key, count) in &tick.window.errors {
        if *count > 0 {
            let entry = seen.entry(key.clone()).or_insert((tick.at, tick.at));
            entry.1 = tick.at;
        }
    }
}

impl Sink for CsvOutput {
    fn tick(&mut self, tick: &Tick) {
        // A reset from the web UI restarts only its live view: the files
        // cover the whole run, as the JSON report does.
        note_seen(&mut self.seen, tick);
        self.total
            .get_or_insert_with(WindowEntry::default)
            .merge(&tick.window.all);
        if self.full_history {
            for (key, entry) in &tick.window.entries {
                self.totals.entry(key.clone()).or_default().merge(entry);
            }
        }
        // Per-name windows are kept only for per-name history rows.
        self.recent.push_back(if self.full_history {
            tick.window.clone()
        } else {
            Delta {
                all: tick.window.all.clone(),
                ..Delta::default()
            }
        });
        let elapsed = tick.elapsed.as_secs_f64();
        self.spans.push_back((elapsed - self.last_elapsed).max(0.0));
        self.last_elapsed = elapsed;
        if self.recent.len() > CURRENT_WINDOW {
            self.recent.pop_front();
            self.spans.pop_front();
        }
        if self.failed.is_none()
            && let Err(error) = self.history_rows(tick)
        {
            self.failed = Some(format!("writing the CSV history: {error:#}"));
        }
    }

    fn finish(&mut self, outcome: &RunOutcome) -> Result<()> {
        if let Some(failed) = &self.failed {
            anyhow::bail!("{failed}");
        }
        self.write_final(outcome)
            .with_context(|| format!("writing the CSV files {}_*.csv", self.prefix.display()))
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = prefix.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

fn writer(prefix: &Path, suffix: &str) -> Result<csv::Writer<File>> {
    let path = with_suffix(prefix, suffix);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(csv::Writer::from_writer(file))
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Locust's `format_utc_timestamp`: `2026-11-30T12:00:00Z`.
fn utc(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A float as Python's `csv` writes it (`repr`): `12.0`, `0.25`.
fn py_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// Percentile columns as whole milliseconds, or `N/A` without requests.
fn percentile_fields(count: u64, percentiles: impl FnOnce() -> [f64; 11]) -> Vec<String> {
    if count == 0 {
        return vec!["N/A".to_string(); 11];
    }
    percentiles()
        .iter()
        .map(|ms| format!("{}", ms.round() as u64))
        .collect()
}

fn entry_percentiles(entry: &WindowEntry) -> [f64; 11] {
    QUANTILES.map(|q| entry.latency_us.value_at_quantile(q) as f64 / 1000.0)
}

/// Median, mean, min, max (ms) and mean content size of an entry, as Locust shows them.
fn entry_summary(entry: &WindowEntry) -> [String; 5] {
    let count = entry.count();
    if count == 0 {
        return ["0".into(), "0.0".into(), "0".into(), "0".into(), "0".into()];
    }
    let h = &entry.latency_us;
    [
        format!(
            "{}",
            (h.value_at_quantile(0.5) as f64 / 1000.0).round() as u64
        ),
        py_float(h.mean() / 1000.0),
        py_float(h.min() as f64 / 1000.0),
        py_float(h.max() as f64 / 1000.0),
        py_float(entry.bytes as f64 / count as f64),
    ]
}

fn history_row(
    timestamp: &str,
    users: &str,
    kind: &str,
    name: &str,
    recent: &(WindowEntry, f64),
    total: &WindowEntry,
    current_percentiles: bool,
) -> Vec<String> {
    let (window, seconds) = recent;
    let mut row = vec![
        timestamp.to_string(),
        users.to_string(),
        kind.to_string(),
        name.to_string(),
        format!("{:.6}", window.count() as f64 / seconds),
        format!("{:.6}", window.failures as f64 / seconds),
    ];
    let source = if current_percentiles { window } else { total };
    row.extend(percentile_fields(total.count(), || {
        entry_percentiles(source)
    }));
    let [median, mean, min, max, size] = entry_summary(total);
    row.extend([
        total.count().to_string(),
        total.failures.to_string(),
        median,
        mean,
        min,
        max,
        size,
    ]);
    row
}

fn stats_row(kind: &str, name: &str, stats: &NameStats) -> Vec<String> {
    let latency: &LatencySummary = &stats.latency_ms;
    let count = stats.count;
    let mut row = vec![
        kind.to_string(),
        name.to_string(),
        count.to_string(),
        stats.failures.to_string(),
    ];
    if count == 0 {
        row.extend(["0", "0.0", "0", "0", "0"].map(String::from));
    } else {
        row.extend([
            format!("{}", latency.p50.round() as u64),
            py_float(latency.mean),
            py_float(latency.min),
            py_float(latency.max),
            py_float(stats.bytes as f64 / count as f64),
        ]);
    }
    row.extend([py_float(stats.rps), py_float(stats.failures_per_s)]);
    row.extend(percentile_fields(count, || latency.percentiles()));
    row
}
