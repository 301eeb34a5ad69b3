//! The load of a run as a whole and as an execution segment: the segment's
//! share (`--segment`), the VUs it may hold, where its users start among the
//! run's, and the settings result files compare.

use std::time::Duration;

use super::{LoadModel, RunConfig, Stages};

impl RunConfig {
    /// Keep only this process's execution segment of the load (`--segment`):
    /// users, stage targets, VU pools and shared iterations are split so the
    /// segments add up to the whole; rates are scaled by the segment's width.
    pub fn apply_segment(&mut self) {
        self.whole_settings = Some(self.settings());
        self.whole_capacity = Some(self.vu_capacity());
        let segment = self.segment;
        if segment.is_whole() {
            return;
        }
        self.users = segment.users(self.users);
        self.spawn_rate = segment.rate(self.spawn_rate);
        self.rate = self.rate.map(|rate| segment.rate(rate));
        self.stages = self.stages.take().map(|stages| match stages {
            Stages::Users(stages) => Stages::Users(
                stages
                    .into_iter()
                    .map(|(d, users)| (d, segment.users(users)))
                    .collect(),
            ),
            Stages::Rates(stages) => Stages::Rates(
                stages
                    .into_iter()
                    .map(|(d, rate)| (d, segment.rate(rate)))
                    .collect(),
            ),
        });
        self.max_vus = segment.users(self.max_vus).max(1);
        self.pre_vus = self.pre_vus.map(|pre| segment.users(pre).min(self.max_vus));
        self.iterations = self.iterations.map(|n| segment.part(n));
        // The web UI's bounds are this process's share too.
        self.outputs.max_users = self.outputs.max_users.map(|n| segment.users(n).max(1));
        self.outputs.max_rate = self.outputs.max_rate.map(|rate| segment.rate(rate));
    }

    /// The most VU instances the run can have at once.
    pub fn vu_capacity(&self) -> u32 {
        match self.load_model() {
            LoadModel::Closed { users, .. } => users,
            LoadModel::ClosedStages { start, stages } => {
                stages.iter().map(|(_, n)| *n).max().unwrap_or(0).max(start)
            }
            LoadModel::Open { max_vus, .. } => max_vus,
        }
    }

    /// Where this segment's users start among the whole run's (0-based):
    /// user classes deal the segment's k-th user the run's user
    /// `offset + k`, so the segments together deal them as one process.
    pub fn class_slot_offset(&self) -> u32 {
        let whole = self.whole_capacity.unwrap_or_else(|| self.vu_capacity());
        self.segment.offset(u64::from(whole)) as u32
    }

    /// The load as result files compare it: model, iterations, run time.
    pub fn settings(&self) -> String {
        let mut text = self.load_model().describe();
        if let Some(n) = self.iterations {
            text += &format!("; {n} iterations");
        }
        if let Some(limit) = self.run_limit() {
            text += &format!("; run time {}", humantime::format_duration(limit));
        }
        // Segments must shuffle and draw data alike.
        if let Some(seed) = self.seed.filter(|_| !self.feeds.is_empty()) {
            text += &format!("; seed {seed}");
        }
        text
    }

    /// How long the run lasts at most: --run-time, else the stages' total.
    pub fn run_limit(&self) -> Option<Duration> {
        self.run_time
            .or_else(|| self.stages.as_ref().map(Stages::total))
    }
}
