//! The result file (`horde run --out run.horde`): a run's per-second stream
//! as JSON Lines, for `horde merge` to combine exactly. The first line is
//! the header (scenario, SHA-256, execution segment, the whole run's
//! settings, thresholds), then one line per second of the run with that
//! window's requests per type and name (latencies as HDR V2 histograms,
//! deflate-compressed and base64-encoded, as HdrHistogram's own log format
//! stores them), failures, exceptions, checks, custom metrics and tagged
//! requests, and last an `end` line with the outcome. Each line is flushed
//! as it is written, so a process that is killed leaves every second it
//! finished, and no `end` line: the merge reports it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::Sink;
use super::result_check::{Caps, decode_histogram};
use crate::RunOutcome;
use crate::stats::{Delta, Tick, WindowEntry};

/// The header's `format`; files without it are not result files.
pub const FORMAT: &str = "horde-result";
/// The version of the format this binary writes and reads.
pub const VERSION: u32 = 1;

/// One line of a result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Second(Second),
    End(End),
}

/// What the run was: the merge refuses files whose scenario or settings differ.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub horde_version: String,
    pub scenario: String,
    pub sha256: String,
    /// The execution segment this process ran (`--segment`), e.g. "1/4";
    /// None for the whole run.
    pub segment: Option<String>,
    /// The whole run's load (before the segment took its share), e.g.
    /// "closed: 8 users, spawn rate 10/s; 1000 iterations".
    pub settings: String,
    /// The run's thresholds (command line and scenario), as written.
    pub thresholds: Vec<String>,
    /// When the load started (RFC 3339).
    pub started_at: String,
    pub command_line: Vec<String>,
}

/// One (type, name) pair's requests in one second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// Latencies in microseconds: HDR V2, deflated, base64.
    pub latency_us: String,
    /// Open model: latencies from the intended start, the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_us: Option<String>,
    pub failures: u64,
    pub bytes: u64,
    #[serde(default)]
    pub messages_sent: u64,
    #[serde(default)]
    pub messages_received: u64,
    /// (status, responses).
    #[serde(default)]
    pub statuses: Vec<(u16, u64)>,
}

/// Requests of one value of a tracked tag in one second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaggedRecord {
    pub key: String,
    pub value: String,
    #[serde(flatten)]
    pub entry: EntryRecord,
}

/// One second of the run (the last one may be partial).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Second {
    /// Since the start of the load, in seconds.
    pub elapsed_s: f64,
    pub users: u32,
    pub iterations: u64,
    pub dropped_iterations: u64,
    pub entries: Vec<EntryRecord>,
    /// (type, name, message, count).
    pub errors: Vec<(String, String, String, u64)>,
    /// (message, count).
    pub exceptions: Vec<(String, u64)>,
    /// (name, passes, fails).
    pub checks: Vec<(String, u64, u64)>,
    /// (name, amount added).
    pub counters: Vec<(String, f64)>,
    /// (name, last, min, max).
    pub gauges: Vec<(String, f64, f64, f64)>,
    /// (name, values in thousandths: HDR V2, deflated, base64).
    pub trends: Vec<(String, String)>,
    pub tagged: Vec<TaggedRecord>,
}

/// How the run ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct End {
    /// The load's duration, in seconds (rates are over it).
    pub duration_s: f64,
    pub users: u32,
    pub stop_reason: Option<String>,
    pub interrupted_users: u32,
    pub exit_code: u8,
}

fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing to memory only fails for histograms too large to index.
    let _ = V2DeflateSerializer::new().serialize(histogram, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn entry_record(kind: &str, name: &str, entry: &WindowEntry) -> EntryRecord {
    EntryRecord {
        kind: kind.to_string(),
        name: name.to_string(),
        latency_us: encode(&entry.latency_us),
        corrected_us: entry.corrected_us.as_ref().map(encode),
        failures: entry.failures,
        bytes: entry.bytes,
        messages_sent: entry.messages_sent,
        messages_received: entry.messages_received,
        statuses: entry.statuses.clone(),
    }
}

fn window_entry(record: &EntryRecord, budget: &mut usize) -> Result<WindowEntry> {
    let latency_us = decode_histogram(&record.latency_us, budget)?;
    super::result_check::check_counts(
        &record.kind,
        &record.name,
        latency_us.len(),
        record.failures,
        &record.statuses,
    )?;
    let corrected_us = match record.corrected_us.as_deref() {
        Some(text) => Some(decode_histogram(text, budget)?),
        None => None,
    };
    Ok(WindowEntry {
        latency_us,
        corrected_us,
        failures: record.failures,
        bytes: record.bytes,
        messages_sent: record.messages_sent,
        messages_received: record.messages_received,
        statuses: record.statuses.clone(),
    })
}

impl Second {
    /// A second with nothing in it, after `before` (a refused line's place).
    pub fn empty(before: &[Second]) -> Second {
        let last = before.last();
        Second {
            elapsed_s: last.map_or(1.0, |s| s.elapsed_s + 1.0),
            users: last.map_or(0, |s| s.users),
            iterations: 0,
            dropped_iterations: 0,
            entries: Vec::new(),
            errors: Vec::new(),
            exceptions: Vec::new(),
            checks: Vec::new(),
            counters: Vec::new(),
            gauges: Vec::new(),
            trends: Vec::new(),
            tagged: Vec::new(),
        }
    }

    /// Forget the second's results, keeping its time, users and
    /// iterations (once it is merged, the aggregator needs no more).
    pub fn drop_results(&mut self) {
        *self = Second {
            elapsed_s: self.elapsed_s,
            users: self.users,
            iterations: self.iterations,
            dropped_iterations: self.dropped_iterations,
            ..Second::empty(&[])
        };
    }

    /// A tick as a line of the file.
    pub fn of(tick: &Tick) -> Second {
        let window = &tick.window;
        Second {
            elapsed_s: tick.elapsed.as_secs_f64(),
            users: tick.users,
            iterations: window.iterations,
            dropped_iterations: window.dropped_iterations,
            entries: window
                .entries
                .iter()
                .map(|((kind, name), entry)| entry_record(kind, name, entry))
                .collect(),
            errors: window
                .errors
                .iter()
                .map(|((kind, name, message), count)| {
                    (kind.clone(), name.clone(), message.clone(), *count)
                })
                .collect(),
            exceptions: window
                .exceptions
                .iter()
                .map(|(m, c)| (m.clone(), *c))
                .collect(),
            checks: window
                .checks
                .iter()
                .map(|(name, (passes, fails))| (name.clone(), *passes, *fails))
                .collect(),
            counters: window
                .counters
                .iter()
                .map(|(n, v)| (n.clone(), *v))
                .collect(),
            gauges: window
                .gauges
                .iter()
                .map(|(name, last)| {
                    let (min, max) = window
                        .gauge_ranges
                        .get(name)
                        .copied()
                        .unwrap_or((*last, *last));
                    (name.clone(), *last, min, max)
                })
                .collect(),
            trends: window
                .trends
                .iter()
                .map(|(name, values)| (name.clone(), encode(values)))
                .collect(),
            tagged: window
                .tagged
                .iter()
                .map(|((key, value, kind, name), entry)| TaggedRecord {
                    key: key.clone(),
                    value: value.clone(),
                    entry: entry_record(kind, name, entry),
                })
                .collect(),
        }
    }

    /// The window this line holds, as the run's outputs saw it, once it
    /// is checked against `caps` (see [`super::result_check`]): a line no
    /// run could write is refused with what is wrong.
    pub fn window(&self, caps: &Caps) -> Result<Delta> {
        super::result_check::check_second(self, caps)?;
        let mut budget = super::result_check::RECORD_BUDGET;
        let mut window = Delta {
            iterations: self.iterations,
            dropped_iterations: self.dropped_iterations,
            ..Delta::default()
        };
        for record in &self.entries {
            let entry = window_entry(record, &mut budget)?;
            if record.kind != crate::stats::GROUP_TYPE {
                window.all.merge(&entry);
            }
            window
                .entries
                .insert((record.kind.clone(), record.name.clone()), entry);
        }
        for (kind, name, message, count) in &self.errors {
            window
                .errors
                .insert((kind.clone(), name.clone(), message.clone()), *count);
        }
        window.exceptions = self.exceptions.iter().cloned().collect();
        window.checks = self
            .checks
            .iter()
            .map(|(name, passes, fails)| (name.clone(), (*passes, *fails)))
            .collect();
        window.counters = self.counters.iter().cloned().collect();
        for (name, last, min, max) in &self.gauges {
            window.gauges.insert(name.clone(), *last);
            window.gauge_ranges.insert(name.clone(), (*min, *max));
        }
        for (name, values) in &self.trends {
            window
                .trends
                .insert(name.clone(), decode_histogram(values, &mut budget)?);
        }
        for tagged in &self.tagged {
            let e = &tagged.entry;
            let key = (
                tagged.key.clone(),
                tagged.value.clone(),
                e.kind.clone(),
                e.name.clone(),
            );
            window.tagged.insert(key, window_entry(e, &mut budget)?);
        }
        Ok(window)
    }
}

/// The sink that writes the file as the run goes.
pub struct ResultFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// The first write error (the run goes on; the end reports it).
    error: Option<String>,
}

impl ResultFile {
    /// Create `path` and write the header (an error is the user's to fix:
    /// a folder that does not exist, a file that cannot be written).
    pub fn create(path: &Path, header: &Header) -> Result<ResultFile> {
        let file = File::create(path).with_context(|| {
            format!(
                "--out {}: cannot create the result file; give a path in a folder that exists and \
                 can be written, e.g. --out run.horde",
                path.display()
            )
        })?;
        let mut sink = ResultFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            error: None,
        };
        sink.write(&Record::Header(header.clone()));
        match sink.error.take() {
            Some(error) => bail!("--out {}: {error}", path.display()),
            None => Ok(sink),
        }
    }

    fn write(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, record)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        if let Err(error) = written {
            self.error = Some(format!("writing the result file failed: {error}"));
        }
    }
}

impl Sink for ResultFile {
    fn tick(&mut self, tick: &Tick) {
        self.write(&Record::Second(Second::of(tick)));
    }

    fn finish(&mut self, outcome: &RunOutcome) -> Result<()> {
        self.write(&Record::End(End {
            duration_s: outcome.report.duration_s,
            users: outcome.report.users,
            stop_reason: outcome.stop_reason.clone(),
            interrupted_users: outcome.interrupted_users,
            exit_code: outcome.exit_code(),
        }));
        if self.error.is_none()
            && let Err(error) = self.out.get_ref().sync_all()
        {
            self.error = Some(format!("syncing the result file failed: {error}"));
        }
        match &self.error {
            Some(error) => bail!("--out {}: {error}", self.path.display()),
            None => Ok(()),
        }
    }
}

/// A result file as read back.
#[derive(Debug)]
pub struct ReadFile {
    pub path: PathBuf,
    pub header: Header,
    pub seconds: Vec<Second>,
    /// None when the process ended without writing it (killed, crashed).
    pub end: Option<End>,
    /// A last line cut short (the process died while writing it).
    pub torn_tail: bool,
    /// Lines that were refused (damaged, or what no run writes), each
    /// with its number and reason; a refused second counts as empty.
    pub refused: Vec<String>,
}

/// Longest line read back: a second of 100,000 names' histograms fits.
const MAX_LINE: u64 = 256 << 20;

/// The lines of `reader`, each at most [`MAX_LINE`] bytes; blank ones
/// (a trailing newline) skipped.
fn bounded_lines(mut reader: impl BufRead, path: &Path) -> impl Iterator<Item = Result<String>> {
    let path = path.to_path_buf();
    let mut number = 0usize;
    std::iter::from_fn(move || {
        loop {
            number += 1;
            let mut bytes = Vec::new();
            let read = std::io::Read::take(&mut reader, MAX_LINE + 1).read_until(b'\n', &mut bytes);
            return match read {
                Ok(0) => None,
                Err(error) => Some(Err(anyhow::anyhow!(
                    "{} line {number}: {error}",
                    path.display()
                ))),
                Ok(_) if bytes.len() as u64 > MAX_LINE => Some(Err(anyhow::anyhow!(
                    "{} line {number} is longer than {} MiB: not a Horde result file",
                    path.display(),
                    MAX_LINE >> 20
                ))),
                Ok(_) => match String::from_utf8(bytes) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => Some(Ok(text)),
                    Err(_) => Some(Err(anyhow::anyhow!(
                        "{} line {number} is not text: not a Horde result file",
                        path.display()
                    ))),
                },
            };
        }
    })
}

/// Read a result file, checking its format; errors say what is wrong.
pub fn read(path: &Path) -> Result<ReadFile> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => bail!(
            "{} is not a regular file (a folder, a pipe or a device): give the result file a \
             segment wrote with --out",
            path.display()
        ),
        _ => {}
    }
    let file = File::open(path)
        .with_context(|| format!("{}: cannot open the result file", path.display()))?;
    let mut lines = bounded_lines(BufReader::new(file), path);
    let what = |n: usize| format!("{} line {n}", path.display());
    let first = lines.next().transpose()?.unwrap_or_default();
    let header = match serde_json::from_str::<Record>(&first) {
        Ok(Record::Header(header)) if header.format == FORMAT => header,
        _ => bail!(
            "{}: not a Horde result file (write one with horde run --out FILE)",
            path.display()
        ),
    };
    if let Err(error) = super::result_check::check_header(&header) {
        bail!("{}: {error:#}", what(1));
    }
    if header.version != VERSION {
        bail!(
            "{}: result file version {} (this horde reads version {VERSION}); merge it with the \
             horde version that wrote it ({})",
            path.display(),
            header.version,
            header.horde_version
        );
    }
    let mut read = ReadFile {
        path: path.to_path_buf(),
        header,
        seconds: Vec::new(),
        end: None,
        torn_tail: false,
        refused: Vec::new(),
    };
    let mut pending_error = None;
    let mut last_was_json = false;
    for (index, line) in lines.enumerate() {
        let line = line?;
        if let Some(error) = pending_error.take() {
            // A bad line followed by more lines is damage, not a torn end:
            // its second is left out (empty) and reported.
            read.refused.push(format!("{error:#}"));
            read.seconds.push(Second::empty(&read.seconds));
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(Record::Second(second)) if read.end.is_none() => read.seconds.push(second),
            Ok(Record::End(end)) if read.end.is_none() => {
                match super::result_check::check_end(&end) {
                    Ok(()) => read.end = Some(end),
                    Err(error) => read
                        .refused
                        .push(format!("{}: refused: {error:#}", what(index + 2))),
                }
            }
            Ok(_) => read.refused.push(format!(
                "{}: refused: a record out of place",
                what(index + 2)
            )),
            Err(error) => {
                last_was_json = serde_json::from_str::<serde_json::Value>(&line).is_ok();
                pending_error = Some(anyhow::anyhow!("{}: refused: {error}", what(index + 2)));
            }
        }
    }
    // Only the very last line may be cut short, by a process that died; a
    // whole line that is not a record is damage, and said so.
    read.torn_tail = pending_error.is_some();
    if read.torn_tail && last_was_json {
        read.refused
            .push(format!("{:#}", pending_error.take().expect("checked")));
    }
    if let Some(error) = pending_error.filter(|_| read.end.is_some()) {
        read.refused.push(format!("{error:#}"));
        read.torn_tail = false;
    }
    Ok(read)
}

/// The files' lines by second of the run (1-based): the k-th line of every
/// file is its k-th second (segments started together with `--start-at`
/// share their clock); the last may be partial.
pub fn by_second(files: &[ReadFile]) -> BTreeMap<u64, Vec<(&ReadFile, &Second)>> {
    let mut seconds: BTreeMap<u64, Vec<(&ReadFile, &Second)>> = BTreeMap::new();
    for file in files {
        for (n, second) in file.seconds.iter().enumerate() {
            seconds
                .entry(n as u64 + 1)
                .or_default()
                .push((file, second));
        }
    }
    seconds
}
