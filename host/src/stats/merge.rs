//! Results merged from windows recorded elsewhere (`horde merge` over the
//! result files of execution segments): each window is absorbed into one
//! aggregate exactly as a live run absorbs its shards, so the merged report
//! and thresholds are those of one process that saw every sample.

use std::time::{Duration, Instant};

use super::{Aggregate, Delta, Report};

/// Windows absorbed so far, with the iteration counts they carried.
#[derive(Debug)]
pub struct Merger {
    aggregate: Aggregate,
    iterations: u64,
    dropped: u64,
    /// Gauges are ordered by the window they were set in.
    origin: Instant,
}

impl Merger {
    /// Keep at most `max_names` request names, and as many checks and
    /// custom metrics of each kind, as a run does (0: no limit).
    pub fn new(max_names: usize) -> Merger {
        Merger {
            aggregate: Aggregate::new(max_names),
            iterations: 0,
            dropped: 0,
            origin: Instant::now(),
        }
    }

    /// Absorb the window that ended `second` seconds into the run. A gauge
    /// set in a later window wins; within one second, the last file merged.
    pub fn absorb(&mut self, window: &Delta, second: u64) {
        let at = self.origin + Duration::from_secs(second);
        self.aggregate.absorb_window(window, at);
        self.iterations = self.iterations.saturating_add(window.iterations);
        self.dropped = self.dropped.saturating_add(window.dropped_iterations);
    }

    /// Iterations started and dropped in every window absorbed.
    pub fn iteration_counts(&self) -> (u64, u64) {
        (self.iterations, self.dropped)
    }

    /// The merged report, with rates over `load_time` and `users` VUs.
    pub fn report(&self, load_time: Duration, users: u32) -> Report {
        self.aggregate
            .report(load_time, users, self.iteration_counts())
    }

    /// Run `f` on the merged aggregate (thresholds).
    pub fn with_aggregate<R>(&self, f: impl FnOnce(&Aggregate) -> R) -> R {
        f(&self.aggregate)
    }
}
