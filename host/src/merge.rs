//! `horde merge`: combine the result files of a run's execution segments
//! (`horde run --segment I/N --out part-I.horde`) into the report of the
//! whole run. Windows of the same second are added up exactly (HDR
//! histograms with the same settings add without loss), so percentiles are
//! those of one process that saw every sample; thresholds are evaluated on
//! the merged data, with `horde run`'s exit codes. Files of other scenarios
//! or load settings, and segments that overlap, are refused; a segment that
//! is missing, or whose process died (no `end` record), is reported and the
//! merge does not pass.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::output::Sink;
use crate::output::result_check::Caps;
use crate::output::result_file::{self, ReadFile, Second};
use crate::schedule::segment::Segment;
use crate::stats::{Delta, Merger, Tick, TimelinePoint, Totals};
use crate::thresholds::Threshold;
use crate::{BadInput, CompileSource, RunOutcome};

/// What `horde merge` was asked for.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    pub files: Vec<PathBuf>,
    /// Thresholds besides the run's own (which every file records).
    pub thresholds: Vec<Threshold>,
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub csv_full_history: bool,
    pub html: Option<PathBuf>,
}

/// One merged file, as the JSON's `merged[]` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MergedFile {
    pub file: String,
    /// The execution segment it ran ("0:1" for the whole run).
    pub segment: String,
    /// Seconds of results it holds.
    pub seconds: usize,
    /// False when its process died before the end (no `end` record).
    pub complete: bool,
    pub stop_reason: Option<String>,
}

fn bad(message: String) -> anyhow::Error {
    anyhow::anyhow!(BadInput(message))
}

fn segment_of(file: &ReadFile) -> Result<Segment> {
    match &file.header.segment {
        Some(text) => Segment::parse(text).map_err(|e| {
            bad(format!(
                "{}: segment {text:?} in its header: {e:#}",
                file.path.display()
            ))
        }),
        None => Ok(Segment::WHOLE),
    }
}

/// Check the files belong together: one scenario, one load, segments that
/// do not overlap. Errors wrap [`BadInput`] and say how to fix it.
pub fn check_together(files: &[&ReadFile]) -> Result<()> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    for file in &files[1..] {
        let (a, b) = (&first.header, &file.header);
        if a.sha256 != b.sha256 {
            bail!(bad(format!(
                "{} ran scenario {} (sha256 {}), but {} ran {} (sha256 {}): merge only the \
                 segments of one run",
                first.path.display(),
                a.scenario,
                &a.sha256[..12.min(a.sha256.len())],
                file.path.display(),
                b.scenario,
                &b.sha256[..12.min(b.sha256.len())],
            )));
        }
        if a.settings != b.settings {
            bail!(bad(format!(
                "{} and {} ran different loads ({:?} and {:?}): each segment must be started \
                 with the same load flags, only --segment differing",
                first.path.display(),
                file.path.display(),
                a.settings,
                b.settings
            )));
        }
    }
    let mut spans: Vec<(Segment, &ReadFile)> = Vec::new();
    for file in files {
        let segment = segment_of(file)?;
        if let Some((other, with)) = spans.iter().find(|(s, _)| s.overlaps(&segment)) {
            bail!(bad(format!(
                "{} (segment {segment}) and {} (segment {other}) ran overlapping parts of the \
                 run: give each process its own --segment (1/N ... N/N), and each file once",
                file.path.display(),
                with.path.display()
            )));
        }
        spans.push((segment, file));
    }
    Ok(())
}

/// Lines on what the files miss: segments that are missing, and segments
/// interrupted (Ctrl-C, SIGTERM) before their load's end.
pub fn coverage_notes(files: &[&ReadFile]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut spans: Vec<Segment> = files.iter().filter_map(|f| segment_of(f).ok()).collect();
    let covered: f64 = spans.iter().map(Segment::width).sum();
    if covered < 1.0 - 1e-9 {
        spans.sort_by(|a, b| a.start_f64().total_cmp(&b.start_f64()));
        let names: Vec<String> = spans.iter().map(ToString::to_string).collect();
        // Never round a gap up to 100%.
        let percent = ((covered * 100.0 * 100.0).floor() / 100.0).min(99.99);
        notes.push(format!(
            "the files cover {percent}% of the run (segments {}): the segments of the rest are \
             missing",
            names.join(", ")
        ));
    }
    for file in files {
        if let Some(reason) = file
            .end
            .as_ref()
            .and_then(|end| end.stop_reason.as_deref())
            .filter(|reason| reason.starts_with("interrupted by"))
        {
            notes.push(format!(
                "{} was {reason} before the end of its load",
                file.path.display()
            ));
        }
    }
    notes
}

/// Check the report files can be written (before a merge or an
/// aggregator starts).
pub fn check_output_paths(request: &MergeRequest) -> Result<()> {
    if let Some(path) = &request.json {
        crate::output::json::check_writable(path)?;
    }
    if let Some(path) = &request.html {
        crate::output::json::check_file_writable(path, "--html", "report.html")?;
    }
    if let Some(prefix) = &request.csv {
        let mut stats = prefix.as_os_str().to_owned();
        stats.push("_stats.csv");
        crate::output::json::check_file_writable(&PathBuf::from(stats), "--csv", "run")?;
    }
    Ok(())
}

/// Refuse outputs that would overwrite one of the files being merged.
fn check_outputs(files: &[PathBuf], request: &MergeRequest) -> Result<()> {
    let mut outputs: Vec<PathBuf> = request.json.iter().chain(&request.html).cloned().collect();
    if let Some(prefix) = &request.csv {
        for suffix in [
            "_stats.csv",
            "_stats_history.csv",
            "_failures.csv",
            "_exceptions.csv",
        ] {
            let mut name = prefix.as_os_str().to_owned();
            name.push(suffix);
            outputs.push(PathBuf::from(name));
        }
    }
    for output in outputs {
        let Ok(output_real) = output.canonicalize() else {
            continue;
        };
        if let Some(input) = files
            .iter()
            .find(|f| f.canonicalize().is_ok_and(|real| real == output_real))
        {
            bail!(bad(format!(
                "{} is one of the files being merged; write the merged report elsewhere",
                input.display()
            )));
        }
    }
    Ok(())
}

/// Seconds of several segments added up into the whole run as they come:
/// the aggregate, the timeline, the running totals and the per-second
/// sinks (CSV, HTML) of the merged run.
pub struct Combined {
    merger: Merger,
    timeline: Vec<TimelinePoint>,
    totals: Totals,
    sinks: Vec<Box<dyn Sink>>,
    started_at: SystemTime,
    thresholds: Vec<Threshold>,
    json: Option<PathBuf>,
    scenario: String,
    seconds: u64,
    /// The run's caps, which every line is checked against.
    caps: Caps,
    /// Lines refused (what no run writes), each with its reason.
    refused: Vec<String>,
}

impl Combined {
    /// Start a merged run: the thresholds the files record and the
    /// request's, and the outputs the request asks for (checked writable).
    pub fn new(files: &[&ReadFile], request: &MergeRequest) -> Result<Combined> {
        let header = &files.first().context("no result file")?.header;
        let mut thresholds: Vec<Threshold> = Vec::new();
        for file in files {
            for source in &file.header.thresholds {
                if !thresholds.iter().any(|t| &t.source == source) {
                    thresholds.push(Threshold::parse(source).map_err(|e| {
                        bad(format!(
                            "{}: threshold {source:?}: {e}",
                            file.path.display()
                        ))
                    })?);
                }
            }
        }
        thresholds.extend(request.thresholds.iter().cloned());
        let started_at =
            humantime::parse_rfc3339(&header.started_at).unwrap_or_else(|_| SystemTime::now());
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(prefix) = &request.csv {
            sinks.push(Box::new(crate::output::csv::CsvOutput::create(
                prefix,
                request.csv_full_history,
            )?));
        }
        if let Some(path) = &request.html {
            let meta = crate::output::html::RunMeta {
                scenario: header.scenario.clone(),
                sha256: header.sha256.clone(),
                command_line: std::env::args().collect(),
                model: header.settings.clone(),
                host: None,
                grants: Vec::new(),
                started_at,
            };
            sinks.push(Box::new(crate::output::html::HtmlReport::create(
                path.clone(),
                meta,
            )?));
        }
        if let Some(path) = &request.json {
            crate::output::json::check_writable(path)?;
        }
        Ok(Combined {
            merger: Merger::new(Caps::default().max_names),
            caps: Caps::default(),
            refused: Vec::new(),
            timeline: Vec::new(),
            totals: Totals::default(),
            sinks,
            started_at,
            thresholds,
            json: request.json.clone(),
            scenario: header.scenario.clone(),
            seconds: 0,
        })
    }

    /// Seconds added so far.
    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    /// Add the next second: one line from each segment that has it.
    pub fn add_second(&mut self, lines: &[(&ReadFile, &Second)]) -> Result<Tick> {
        self.seconds += 1;
        let second = self.seconds;
        let mut window = Delta::default();
        let (mut users, mut elapsed) = (0u32, 0f64);
        for (file, line) in lines {
            // A line no run could write is left out and reported; the rest
            // of the run is merged.
            match line.window(&self.caps) {
                Ok(part) => window.merge(&part),
                Err(error) => {
                    self.refused.push(format!(
                        "{} second {second}: refused: {error:#}",
                        file.path.display()
                    ));
                    continue;
                }
            }
            users = users.saturating_add(line.users);
            elapsed = elapsed.max(line.elapsed_s);
        }
        self.merger.absorb(&window, second);
        let totals = &mut self.totals;
        let add = |total: &mut u64, n: u64| *total = total.saturating_add(n);
        add(&mut totals.requests, window.all.count());
        add(&mut totals.failures, window.all.failures);
        add(
            &mut totals.exceptions,
            window
                .exceptions
                .values()
                .fold(0u64, |sum, n| sum.saturating_add(*n)),
        );
        add(&mut totals.iterations, window.iterations);
        add(&mut totals.dropped_iterations, window.dropped_iterations);
        let elapsed = Duration::from_secs_f64(elapsed.clamp(0.0, 1e9));
        let tick = Tick {
            elapsed,
            at: self.started_at + elapsed,
            users,
            window,
            totals: *totals,
            verdicts: Vec::new(),
            reset: false,
        };
        self.timeline.push(TimelinePoint {
            t: elapsed.as_secs_f64(),
            users,
            requests: tick.window.all.count(),
            failures: tick.window.all.failures,
            iterations: tick.window.iterations,
            dropped_iterations: tick.window.dropped_iterations,
            p95_ms: crate::output::live::window_p95_ms(&tick),
        });
        for sink in &mut self.sinks {
            sink.tick(&tick);
        }
        Ok(tick)
    }

    /// The live line for a merged second.
    pub fn live_line(&self, tick: &Tick) -> String {
        let p95 = crate::output::live::window_p95_ms(tick)
            .map_or("-".to_string(), |p| format!("{p:.1} ms"));
        format!(
            "{:>5.0}s  users {:>6}  req/s {:>8}  p95 {:>10}  requests {}  failures {}",
            tick.elapsed.as_secs_f64(),
            tick.users,
            tick.window.all.count(),
            p95,
            tick.totals.requests,
            tick.totals.failures
        )
    }

    /// The first `abortOnFail` threshold that fails on the merged results
    /// so far (past its `delayAbortEval`), as a reason to stop every segment.
    pub fn abort_reason(&self, elapsed: Duration) -> Option<String> {
        let iterations = self.merger.iteration_counts();
        self.thresholds
            .iter()
            .filter(|t| t.abort_on_fail && elapsed >= t.delay_abort_eval)
            .find(|t| {
                self.merger
                    .with_aggregate(|a| t.evaluate(a, elapsed, iterations))
                    .iter()
                    .any(|v| !v.passed)
            })
            .map(|t| {
                format!(
                    "threshold {:?} failed on the merged results (abortOnFail)",
                    t.source
                )
            })
    }

    /// The merged outcome of `files` (the segments' headers, seconds and
    /// ends), with `notes` on what is missing; writes the outputs.
    pub fn finish(
        mut self,
        files: &[ReadFile],
        mut notes: Vec<String>,
        aborted: Option<String>,
    ) -> RunOutcome {
        for file in files {
            notes.extend(file.refused.iter().cloned());
        }
        notes.append(&mut self.refused);
        for sink in &mut self.sinks {
            sink.end();
        }
        // Rates are over the longest segment's load; a dead one counts to
        // its last second.
        let load_time = files
            .iter()
            .map(|f| match &f.end {
                Some(end) => end.duration_s,
                None => f.seconds.last().map_or(0.0, |s| s.elapsed_s),
            })
            .fold(0.0, f64::max);
        let users = files
            .iter()
            .map(|f| match &f.end {
                Some(end) => end.users,
                None => f.seconds.iter().map(|s| s.users).max().unwrap_or(0),
            })
            .fold(0u32, u32::saturating_add);
        let load_time = Duration::from_secs_f64(load_time.clamp(0.0, 1e9));
        let mut report = self.merger.report(load_time, users);
        report.timeline = std::mem::take(&mut self.timeline);
        let iterations = self.merger.iteration_counts();
        report.thresholds = self
            .thresholds
            .iter()
            .flat_map(|t| {
                self.merger
                    .with_aggregate(|a| t.evaluate(a, load_time, iterations))
            })
            .collect();
        report.merged = files
            .iter()
            .map(|f| MergedFile {
                file: f.path.display().to_string(),
                segment: f.header.segment.clone().unwrap_or_else(|| "0:1".into()),
                seconds: f.seconds.len(),
                complete: f.end.is_some(),
                stop_reason: f.end.as_ref().and_then(|e| e.stop_reason.clone()),
            })
            .collect();
        // A segment the aggregator stopped on a threshold of its own: the
        // run failed that threshold, though no file records it.
        for file in files {
            if let Some(reason) = file
                .end
                .as_ref()
                .and_then(|end| end.stop_reason.as_deref())
                .filter(|r| r.starts_with(crate::output::forward::STOPPED_BY_AGGREGATOR))
            {
                report.thresholds.push(crate::thresholds::Verdict {
                    threshold: reason.to_string(),
                    condition: "abortOnFail on the aggregator".into(),
                    actual: None,
                    passed: false,
                });
                break;
            }
        }
        let what = format!(
            "{} segment{} of {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            self.scenario
        );
        let mut outcome = RunOutcome {
            report,
            stop_reason: Some(match aborted {
                Some(reason) => format!("merged {what}; stopped: {reason}"),
                None => format!("merged {what}"),
            }),
            interrupted_users: files
                .iter()
                .filter_map(|f| f.end.as_ref())
                .map(|e| e.interrupted_users)
                .fold(0u32, u32::saturating_add),
            replaced_instances: 0,
            load_time: Duration::ZERO,
            compile_source: CompileSource::Cached,
            misuse: None,
            report_error: None,
            base_url: None,
            web: None,
            partial: (!notes.is_empty()).then(|| notes.join("; ")),
        };
        if let Some(path) = &self.json
            && let Err(error) = crate::output::json::write(path, &outcome)
        {
            outcome.report_error = Some(format!("{error:#}"));
        }
        for sink in &mut self.sinks {
            if let Err(error) = sink.finish(&outcome) {
                let message = format!("{error:#}");
                outcome.report_error = Some(match outcome.report_error.take() {
                    Some(earlier) => format!("{earlier}; {message}"),
                    None => message,
                });
            }
        }
        outcome
    }
}

/// Merge the files into one outcome, writing the outputs asked for.
/// Errors wrap [`BadInput`] for files that cannot be merged.
pub fn merge(request: &MergeRequest) -> Result<RunOutcome> {
    if request.files.is_empty() {
        bail!(bad(
            "give the result files to merge: horde merge a.horde b.horde ...".into()
        ));
    }
    let files: Vec<ReadFile> = request
        .files
        .iter()
        .map(|path| result_file::read(path).map_err(|e| bad(format!("{e:#}"))))
        .collect::<Result<_>>()?;
    let refs: Vec<&ReadFile> = files.iter().collect();
    check_together(&refs)?;
    check_outputs(&request.files, request)?;
    let mut notes = coverage_notes(&refs);
    for file in &files {
        if file.end.is_none() {
            notes.push(format!(
                "{} ({}) has no end record after {} s: its process was killed or crashed; the \
                 seconds it recorded are merged",
                file.path.display(),
                file.header.segment.as_deref().unwrap_or("whole run"),
                file.seconds.len()
            ));
        }
    }
    let mut combined = Combined::new(&refs, request).map_err(|e| bad(format!("{e:#}")))?;
    for lines in result_file::by_second(&files).into_values() {
        combined.add_second(&lines)?;
    }
    Ok(combined.finish(&files, notes, None))
}

#[cfg(test)]
mod tests;
