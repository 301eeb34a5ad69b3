//! Guest output: `control.log` and WASI stdout/stderr, stripped of control
//! characters and rate-limited across the whole run.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use indicatif::ProgressBar;
use tokio::io::AsyncWrite;

/// Longest line printed; the rest is cut.
const MAX_LINE: usize = 1024;
/// Most bytes of one log message looked at (more are dropped unread), so
/// one call cannot hold its worker thread.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The run's guest logger.
#[derive(Debug)]
pub struct GuestLogger {
    lines_per_second: u32,
    window: Mutex<(Instant, u32)>,
    dropped: AtomicU64,
    /// When a live progress bar is drawn, lines go above it.
    bar: OnceLock<ProgressBar>,
}

impl GuestLogger {
    pub fn new(lines_per_second: u32) -> Arc<GuestLogger> {
        Arc::new(GuestLogger {
            lines_per_second,
            window: Mutex::new((Instant::now(), 0)),
            dropped: AtomicU64::new(0),
            bar: OnceLock::new(),
        })
    }

    /// Print above this progress bar from now on.
    pub fn attach_bar(&self, bar: ProgressBar) {
        let _ = self.bar.set(bar);
    }

    /// Lines dropped by the rate limit.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn admit(&self) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.0.elapsed().as_secs() >= 1 {
            *window = (Instant::now(), 0);
        }
        if window.1 < self.lines_per_second {
            window.1 += 1;
            true
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Log one message (may hold several lines). The work per call is
    /// bounded: only the first [`MAX_MESSAGE`] bytes are looked at (the rest
    /// counts as one dropped line), and once the rate limit refuses a line
    /// the remaining lines are counted as dropped without being formatted.
    pub fn log(&self, vu_id: u32, level: &str, message: &[u8]) {
        let (head, cut) = if message.len() > MAX_MESSAGE {
            (&message[..MAX_MESSAGE], true)
        } else {
            (message, false)
        };
        if cut {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let mut lines = head.split(|&b| b == b'\n');
        while let Some(line) = lines.next() {
            let text = String::from_utf8_lossy(line);
            let clean = sanitize(&text);
            if clean.trim().is_empty() {
                continue;
            }
            if !self.admit() {
                let rest = lines.filter(|l| !l.is_empty()).count() as u64;
                self.dropped.fetch_add(rest, Ordering::Relaxed);
                return;
            }
            let formatted = format!("[vu {vu_id}] {level}: {clean}");
            match self.bar.get() {
                Some(bar) if !bar.is_hidden() => bar.println(formatted),
                _ => {
                    let _ = writeln!(std::io::stderr().lock(), "{formatted}");
                }
            }
        }
    }
}

/// Remove control characters (escape sequences included) and bidirectional
/// overrides, and cut long lines.
pub fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LINE));
    for c in line.chars() {
        if out.len() >= MAX_LINE {
            out.push('…');
            break;
        }
        if c == '\t' {
            out.push(' ');
        } else if !crate::output::is_unsafe_char(c) {
            out.push(c);
        }
    }
    out
}

/// The last few lines a guest wrote to stderr, to explain a trap (a Rust
/// guest prints its panic message there before it traps).
#[derive(Debug, Clone, Default)]
pub struct RecentLines(Arc<Mutex<VecDeque<String>>>);

/// Lines kept by [`RecentLines`].
const RECENT_LINES: usize = 4;

impl RecentLines {
    fn push(&self, text: &str) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines().map(sanitize).filter(|l| !l.trim().is_empty()) {
            if lines.len() == RECENT_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// The panic message if the guest printed one since the last call, else
    /// nothing; clears the lines.
    pub fn take_panic(&self) -> Option<String> {
        let lines: Vec<String> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let start = lines.iter().rposition(|l| l.contains("panicked at"))?;
        let first = &lines[start];
        let mut message = vec![&first[first.find("panicked at").unwrap_or(0)..]];
        message.extend(
            lines[start + 1..]
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.starts_with("note: run with")),
        );
        Some(message.join(" "))
    }
}

/// A guest's stdout or stderr, line-buffered into the logger.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    logger: Arc<GuestLogger>,
    vu_id: u32,
    level: &'static str,
    pending: Arc<Mutex<Vec<u8>>>,
    recent: Option<RecentLines>,
}

impl GuestOutput {
    pub fn new(logger: Arc<GuestLogger>, vu_id: u32, level: &'static str) -> GuestOutput {
        GuestOutput {
            logger,
            vu_id,
            level,
            pending: Arc::new(Mutex::new(Vec::new())),
            recent: None,
        }
    }

    /// Also keep the last lines in `recent`.
    pub fn remembering(mut self, recent: RecentLines) -> GuestOutput {
        self.recent = Some(recent);
        self
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let complete: Vec<u8> = pending.drain(..=end).collect();
            if let Some(recent) = &self.recent {
                recent.push(&String::from_utf8_lossy(&complete));
            }
            self.logger.log(self.vu_id, self.level, &complete);
        } else if pending.len() > MAX_LINE {
            let all = std::mem::take(&mut *pending);
            self.logger.log(self.vu_id, self.level, &all);
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.logger.log(self.vu_id, self.level, &rest);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_stripped() {
        assert_eq!(sanitize("a\x1b[31mred\x07\tb"), "a[31mred b");
        assert!(sanitize(&"x".repeat(5000)).chars().count() <= MAX_LINE + 1);
    }

    #[test]
    fn panic_messages_are_picked_from_stderr() {
        let recent = RecentLines::default();
        recent.push("starting\nthread '<unnamed>' (1) panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n");
        assert_eq!(
            recent.take_panic().as_deref(),
            Some("panicked at src/lib.rs:3:5: boom")
        );
        assert_eq!(recent.take_panic(), None);
    }

    #[test]
    fn rate_limit_drops_and_counts() {
        let logger = GuestLogger::new(3);
        for _ in 0..10 {
            logger.log(1, "info", b"hello");
        }
        assert_eq!(logger.dropped(), 7);
    }
}
