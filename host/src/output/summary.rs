//! The end-of-run terminal summary, in Locust's layout: requests, then
//! percentiles, then failures, exceptions and checks.

use std::fmt::Write;

use super::printable;
use crate::stats::{LatencySummary, NameStats, Report};

/// Milliseconds with precision that fits the magnitude.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn name_width(report: &Report) -> usize {
    report
        .stats
        .iter()
        .map(|s| printable(&s.name).chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 60)
}

/// A guest-chosen `name`, made printable and cut to `width` characters.
fn cut(name: &str, width: usize) -> String {
    let name = printable(name);
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let mut cut: String = name.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

fn request_row(out: &mut String, s: &NameStats, width: usize) {
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>9} {:>12} | {:>8} {:>8} {:>8} {:>8} | {:>9.2} {:>10.2}",
        cut(&s.request_type, 8),
        cut(&s.name, width),
        s.count,
        format!("{}({:.2}%)", s.failures, percent(s.failures, s.count)),
        ms(s.latency_ms.mean),
        ms(s.latency_ms.min),
        ms(s.latency_ms.max),
        ms(s.latency_ms.p50),
        s.rps,
        s.failures_per_s,
    );
}

fn percentile_header(out: &mut String, width: usize, rule: &str) {
    let _ = write!(out, "{:<8} {:<width$}", "Type", "Name");
    for label in [
        "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    ] {
        let _ = write!(out, " {label:>7}");
    }
    let _ = writeln!(out, " {:>9}", "# reqs");
    let _ = writeln!(out, "{rule}");
}

fn percentile_row(out: &mut String, s: &NameStats, width: usize, latency: &LatencySummary) {
    let _ = write!(
        out,
        "{:<8} {:<width$}",
        cut(&s.request_type, 8),
        cut(&s.name, width)
    );
    for value in latency.percentiles() {
        let _ = write!(out, " {:>7}", ms(value));
    }
    let _ = writeln!(out, " {:>9}", s.count);
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Render the summary.
pub fn render(report: &Report) -> String {
    let width = name_width(report);
    let mut out = String::new();
    let rule = "-".repeat(width + 90);
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>9} {:>12} | {:>8} {:>8} {:>8} {:>8} | {:>9} {:>10}",
        "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"
    );
    let _ = writeln!(out, "{rule}");
    for s in &report.stats {
        request_row(&mut out, s, width);
    }
    let _ = writeln!(out, "{rule}");
    request_row(&mut out, &report.total, width);
    let _ = writeln!(out, "\nResponse time percentiles (ms)");
    percentile_header(&mut out, width, &rule);
    for s in &report.stats {
        percentile_row(&mut out, s, width, &s.latency_ms);
    }
    let _ = writeln!(out, "{rule}");
    percentile_row(&mut out, &report.total, width, &report.total.latency_ms);
    if report
        .stats
        .iter()
        .any(|s| s.corrected_latency_ms.is_some())
    {
        let _ = writeln!(
            out,
            "\nCorrected for coordinated omission: latency from each iteration's intended start (ms)"
        );
        percentile_header(&mut out, width, &rule);
        for s in report.stats.iter().chain(std::iter::once(&report.total)) {
            if let Some(corrected) = &s.corrected_latency_ms {
                percentile_row(&mut out, s, width, corrected);
            }
        }
    }
    let _ = writeln!(
        out,
        "\nIterations: {} started, {} dropped{}",
        report.iterations,
        report.dropped_iterations,
        if report.dropped_iterations > 0 {
            " (no free VU within --max-queue-time: raise --max-vus)"
        } else {
            ""
        }
    );
    if let Some(segment) = &report.segment {
        let _ = writeln!(
            out,
            "Execution segment {segment}: this process ran that share of the load \
             (merge the segments' results for the whole)"
        );
    }
    if !report.data.is_empty() {
        let _ = writeln!(out, "\nData feeds");
        for feed in &report.data {
            let seed = feed
                .seed
                .map(|s| format!(", --seed {s}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<16} {} row{}, {} handed out ({}, on-end {}{seed})  {}  sha256 {}",
                printable(&feed.name),
                feed.rows,
                if feed.rows == 1 { "" } else { "s" },
                feed.handed_out,
                feed.strategy.label(),
                feed.on_end.label(),
                printable(&feed.file),
                &feed.sha256[..16.min(feed.sha256.len())]
            );
        }
    }
    write_user_classes(&mut out, report);
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\nFailures");
        let _ = writeln!(
            out,
            "{:>9}  {:<8} {:<width$}  Message",
            "# occur", "Type", "Name"
        );
        for e in &report.errors {
            let _ = writeln!(
                out,
                "{:>9}  {:<8} {:<width$}  {}",
                e.count,
                cut(&e.request_type, 8),
                cut(&e.name, width),
                printable(&e.message)
            );
        }
    }
    if !report.exceptions.is_empty() {
        let _ = writeln!(out, "\nExceptions");
        let _ = writeln!(out, "{:>9}  Message", "# occur");
        for e in &report.exceptions {
            let _ = writeln!(out, "{:>9}  {}", e.count, printable(&e.message));
        }
    }
    if !report.checks.is_empty() {
        let _ = writeln!(out, "\nChecks");
        for c in &report.checks {
            let total = c.passes + c.fails;
            let mark = if c.fails == 0 { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {mark} {:<width$} {:>6.2}% passed ({} of {})",
                printable(&c.name),
                percent(c.passes, total),
                c.passes,
                total
            );
        }
    }
    let metrics = &report.metrics;
    if !(metrics.counters.is_empty() && metrics.gauges.is_empty() && metrics.trends.is_empty()) {
        let _ = writeln!(out, "\nCustom metrics");
        for (name, c) in &metrics.counters {
            let _ = writeln!(
                out,
                "  {:<30} counter  total {} ({:.2}/s)",
                printable(name),
                c.total,
                c.rate
            );
        }
        for (name, g) in &metrics.gauges {
            let _ = writeln!(
                out,
                "  {:<30} gauge    value {} (min {}, max {})",
                printable(name),
                g.value,
                g.min,
                g.max
            );
        }
        for (name, t) in &metrics.trends {
            let _ = writeln!(
                out,
                "  {:<30} trend    avg {:.3} min {:.3} med {:.3} max {:.3} p90 {:.3} p95 {:.3} p99 {:.3} ({} values)",
                printable(name),
                t.avg,
                t.min,
                t.med,
                t.max,
                t.p90,
                t.p95,
                t.p99,
                t.count
            );
        }
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "\nThresholds");
        for v in &report.thresholds {
            let mark = if v.passed { "ok  " } else { "FAIL" };
            let actual = v
                .actual
                .map_or("no data".to_string(), |a| format!("{a:.3}"));
            let _ = writeln!(
                out,
                "  {mark} {}  [{}: {actual}]",
                printable(&v.threshold.to_string()),
                printable(&v.condition.to_string())
            );
        }
    }
    out
}

/// The "User classes" section: each class's share and its requests (from
/// `breakdown.user_class`), as Locust's per-class user counts.
fn write_user_classes(out: &mut String, report: &Report) {
    if report.user_classes.is_empty() {
        return;
    }
    let rows = report.breakdown.get(crate::schedule::classes::CLASS_TAG);
    let _ = writeln!(out, "\nUser classes");
    let _ = writeln!(
        out,
        "  {:<20} {:<16} {:>7} {:>9} {:>7} {:>9} {:>8} {:>8}",
        "Class", "Share", "Users", "# reqs", "# fails", "req/s", "p50 ms", "p95 ms"
    );
    for class in &report.user_classes {
        let share = if class.fixed_count > 0 {
            format!("fixed-count {}", class.fixed_count)
        } else {
            format!("weight {}", class.weight)
        };
        let users = match (class.users, class.arrival_share) {
            (Some(users), _) => users.to_string(),
            (None, Some(share)) => format!("{:.0}%", share * 100.0),
            (None, None) => "-".into(),
        };
        let total = rows
            .and_then(|rows| rows.iter().find(|row| row.value == class.name))
            .map(|row| &row.total);
        let _ = match total {
            Some(t) => writeln!(
                out,
                "  {:<20} {:<16} {:>7} {:>9} {:>7} {:>9.1} {:>8} {:>8}",
                printable(&class.name),
                share,
                users,
                t.count,
                t.failures,
                t.rps,
                ms(t.latency_ms.p50),
                ms(t.latency_ms.p95)
            ),
            None => writeln!(
                out,
                "  {:<20} {:<16} {:>7} {:>9} {:>7} {:>9} {:>8} {:>8}",
                printable(&class.name),
                share,
                users,
                0,
                0,
                "-",
                "-",
                "-"
            ),
        };
    }
}
