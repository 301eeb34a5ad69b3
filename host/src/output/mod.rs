//! Outputs: the terminal summary, the JSON report, the live progress view,
//! the CSV files, the HTML report, Prometheus metrics and the web UI; their
//! phases through a run (`plan`); the [`Sink`] every per-second output implements; and
//! the one rule for printing strings that came from a guest.

pub mod csv;
pub mod forward;
pub mod html;
pub mod json;
pub mod live;
pub mod plan;
pub mod prometheus;
pub mod result_check;
pub mod result_file;
pub mod serve;
pub mod server;
pub mod summary;
pub mod web;

use std::borrow::Cow;

use crate::RunOutcome;
use crate::stats::Tick;

/// An output fed by the run's one stream of per-second [`Tick`]s (k6's
/// `Output`): the live line, the CSV history. Calls come from the monitor
/// task, in order, each tick once.
pub trait Sink: Send {
    /// One second of the run. Must not block for long: it delays the next
    /// tick for every output.
    fn tick(&mut self, tick: &Tick);
    /// The last tick has been handed over (the run's grace period is over).
    fn end(&mut self) {}
    /// The run's outcome is known: write what this output writes at the end.
    fn finish(&mut self, _outcome: &RunOutcome) -> anyhow::Result<()> {
        Ok(())
    }
}

/// True for characters a guest's text must not put on a terminal: control
/// characters (C0, DEL, C1) and Unicode bidirectional overrides/isolates.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` (a guest-chosen name, message or reason) made safe to print on a
/// terminal: control characters (C0 and C1, DEL, escape sequences included)
/// and Unicode bidirectional overrides are shown as visible escapes
/// (`\n`, `\t`, `\u{1b}`), so a scenario cannot move the cursor, clear the
/// screen, set the title, write the clipboard (OSC 52) or forge a line of
/// the report. Text without such characters is returned as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = is_unsafe_char;
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("plain /a?b=1 ünï"), "plain /a?b=1 ünï");
        let hostile = "x\x1b[2J\x1b]0;title\x07\nThresholds\r\u{9b}\u{202e}";
        let shown = printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(
            shown,
            "x\\u{1b}[2J\\u{1b}]0;title\\u{7}\\nThresholds\\r\\u{9b}\\u{202e}"
        );
    }
}
