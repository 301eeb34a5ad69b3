//! The self-contained HTML report (`--html PATH`): one file with the page
//! (report.html, report.css, report.js), uPlot inlined from
//! `vendor/`, and the run's data embedded as JSON — the `--json` document,
//! what ran, and the time series of [`series`]. It opens offline and makes
//! no network request (its Content-Security-Policy forbids them).

pub mod series;

pub use series::Series;

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::{Value, json};

use super::Sink;
use crate::RunOutcome;
use crate::stats::Tick;

const TEMPLATE: &str = include_str!("report.html");
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");
const UPLOT_JS: &str = include_str!("vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("vendor/uPlot.min.css");

/// What ran, for the report's header.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// The scenario file as given.
    pub scenario: String,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// The command line as typed.
    pub command_line: Vec<String>,
    /// The load model in one line ([`crate::cli::LoadModel::describe`]).
    pub model: String,
    /// The base URL (`--host`), if any.
    pub host: Option<String>,
    /// Destinations the scenario may reach (`--allow-host` and the host's origin).
    pub grants: Vec<String>,
    pub started_at: SystemTime,
}

/// Milliseconds since the Unix epoch.
fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// JSON text made safe inside a `<script>` element: `<`, `>` and `&`
/// become `\u003c`, `\u003e`, `\u0026` (they only occur inside strings,
/// where JSON allows the escapes), so no guest-chosen name can close the
/// element or open a comment.
pub fn script_safe_json(value: &Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The page with `data` embedded. The live page (`live`) may also connect
/// back to the server it came from (`connect-src 'self'`) for its events
/// and controls.
pub fn render(data: &Value, live: bool) -> String {
    let template = if live {
        TEMPLATE.replace(
            "default-src 'none';",
            "default-src 'none'; connect-src 'self';",
        )
    } else {
        TEMPLATE.to_string()
    };
    template
        .replace("/*UPLOT_CSS*/", UPLOT_CSS)
        .replace("/*STYLE*/", STYLE)
        .replace("/*UPLOT_JS*/", UPLOT_JS)
        .replace("/*SCRIPT*/", SCRIPT)
        .replace("\"__DATA__\"", &script_safe_json(data))
}

/// The `--html` output: folds every tick into [`Series`] and writes the
/// file when the run's outcome is known.
pub struct HtmlReport {
    path: PathBuf,
    meta: RunMeta,
    series: Series,
}

impl HtmlReport {
    /// Check that `path` can be written (before the run) and start
    /// collecting.
    pub fn create(path: PathBuf, meta: RunMeta) -> Result<HtmlReport> {
        super::json::check_file_writable(&path, "--html", "report.html")?;
        Ok(HtmlReport {
            path,
            meta,
            series: Series::new(),
        })
    }

    /// The data the page reads (see [`document`]).
    pub fn data(&self, outcome: &RunOutcome) -> Value {
        document(
            &self.meta,
            &self.series,
            super::json::document(outcome),
            Some(outcome),
        )
    }
}

/// The data the page reads: `meta` (what ran; when `ended` is given, also
/// the end, the stop reason and the exit code), `report` (the `--json`
/// document, of the whole run or so far) and `series`.
pub fn document(
    meta: &RunMeta,
    series: &Series,
    report: Value,
    ended: Option<&RunOutcome>,
) -> Value {
    json!({
        "meta": {
            "scenario": meta.scenario,
            "sha256": meta.sha256,
            "command_line": meta.command_line,
            "model": meta.model,
            "host": meta.host,
            "grants": meta.grants,
            "started_at_ms": unix_ms(meta.started_at),
            "ended_at_ms": ended.map(|_| unix_ms(SystemTime::now())),
            "stop_reason": ended.and_then(|o| o.stop_reason.clone()),
            "exit_code": ended.map(RunOutcome::exit_code),
            "misuse": ended.and_then(|o| o.misuse.clone()),
            "version": env!("CARGO_PKG_VERSION"),
        },
        "report": report,
        "series": series.to_json(),
    })
}

impl Sink for HtmlReport {
    fn tick(&mut self, tick: &Tick) {
        self.series.fold(tick);
    }

    fn end(&mut self) {
        self.series.close();
    }

    fn finish(&mut self, outcome: &RunOutcome) -> Result<()> {
        let page = render(&self.data(outcome), false);
        super::json::write_atomically(&self.path, page.as_bytes(), "the HTML report")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_cannot_close_the_script_element() {
        let hostile = json!({"name": "</script><script>alert(1)</script><!--&\u{2028}"});
        let text = script_safe_json(&hostile);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, hostile);
        let page = render(&hostile, false);
        assert_eq!(page.matches("</script>").count(), 3, "only the page's own");
    }
}
