//! A request in flight: recorded as a failure if its call is abandoned
//! before the response, so requests cut at the end of a run (a target that
//! accepts and never answers) are counted, not lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{RequestEvent, Stats};

/// The failure message of a request whose call was abandoned.
pub const ABANDONED: &str = "no response: the call was abandoned before its response arrived \
     (the VU was cut when --stop-timeout ran out, or the scenario dropped the request)";

/// Records one request as failed with [`ABANDONED`] when dropped, unless
/// [`InFlight::done`] was called first (the caller then records the real
/// outcome itself).
#[derive(Debug)]
pub struct InFlight {
    stats: Arc<Stats>,
    request_type: String,
    name: String,
    started: Instant,
    lag: Option<Duration>,
    tags: Arc<Vec<(String, String)>>,
    pending: bool,
}

impl InFlight {
    /// A request of `request_type` named `name`, started now; `lag` is the
    /// open model's start delay (for the corrected latency).
    pub fn new(stats: Arc<Stats>, request_type: &str, name: &str, lag: Option<Duration>) -> Self {
        InFlight {
            stats,
            request_type: request_type.to_string(),
            name: name.to_string(),
            started: Instant::now(),
            lag,
            tags: Arc::default(),
            pending: true,
        }
    }

    /// The VU's tags, recorded with the request if it is abandoned.
    pub fn tagged(mut self, tags: &Arc<Vec<(String, String)>>) -> Self {
        self.tags = tags.clone();
        self
    }

    /// The call finished: nothing is recorded on drop.
    pub fn done(mut self) {
        self.pending = false;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.pending {
            self.stats.record(&RequestEvent {
                request_type: &self.request_type,
                name: &self.name,
                duration: self.started.elapsed(),
                response_length: 0,
                error: Some(ABANDONED),
                messages_sent: 0,
                messages_received: 0,
                lag: self.lag,
                status: None,
                tags: &self.tags,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_call_is_a_failure_and_a_finished_one_is_not_recorded() {
        let stats = Stats::new(10, 64);
        InFlight::new(stats.clone(), "GET", "/done", None).done();
        drop(InFlight::new(stats.clone(), "GET", "/cut", None));
        let report = stats.report(1);
        assert_eq!(report.total.count, 1);
        assert_eq!(report.total.failures, 1);
        assert_eq!(report.stats[0].name, "/cut");
        assert_eq!(report.errors[0].message, ABANDONED);
    }
}
