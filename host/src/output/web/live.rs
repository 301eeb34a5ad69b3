//! The live page's data: the sink that folds every tick into the report
//! page's series and publishes, each second, the whole document the page
//! draws (what ran, the figures since the last reset, the series, the
//! load's state), and at the end the final one (the whole run's); and the
//! bounds the controls stay within.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::RunOutcome;
use crate::cli::LoadModel;
use crate::output::Sink;
use crate::output::csv::FirstLastSeen;
use crate::output::html::{RunMeta, Series, document};
use crate::schedule::LoadChange;
use crate::stats::{Report, Stats, Tick};
use crate::vu::RunContext;

/// The load model's kind and its current targets, as the controls show them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadState {
    Closed { users: u32, spawn_rate: f64 },
    Stages,
    Open { rate: f64 },
}

impl LoadState {
    pub fn of(model: &LoadModel) -> LoadState {
        match model {
            LoadModel::Closed { users, spawn_rate } => LoadState::Closed {
                users: *users,
                spawn_rate: *spawn_rate,
            },
            LoadModel::ClosedStages { .. } => LoadState::Stages,
            LoadModel::Open { segments, .. } => LoadState::Open {
                rate: segments.first().map_or(0.0, |s| s.from),
            },
        }
    }

    /// After a change from the page.
    pub fn changed(self, change: LoadChange) -> LoadState {
        match change {
            LoadChange::Users { users, spawn_rate } => LoadState::Closed { users, spawn_rate },
            LoadChange::Rate { rate } => LoadState::Open { rate },
        }
    }

    fn to_json(self) -> Value {
        match self {
            LoadState::Closed { users, spawn_rate } => {
                json!({"model": "closed", "users": users, "spawn_rate": spawn_rate})
            }
            LoadState::Stages => json!({"model": "stages"}),
            LoadState::Open { rate } => json!({"model": "open", "rate": rate}),
        }
    }
}

/// What the controls may set: what the run was sized for, and why (the
/// flag that allows more), as a refusal says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// The most users (closed model).
    pub users: u32,
    pub users_reason: String,
    /// The highest arrival rate, per second (open model).
    pub rate: f64,
    pub rate_reason: String,
}

impl Bounds {
    /// Nothing may be set: the run is still starting.
    fn starting() -> Bounds {
        let reason = "the run is still starting".to_string();
        Bounds {
            users: 0,
            users_reason: reason.clone(),
            rate: 0.0,
            rate_reason: reason,
        }
    }

    /// The bounds of a run of `model` whose engine holds at most `pool`
    /// VUs, raised or lowered by `--max-users` and `--max-rate`.
    pub fn of(
        model: &LoadModel,
        pool: u32,
        max_users: Option<u32>,
        max_rate: Option<f64>,
    ) -> Bounds {
        let (users, users_reason) = match (max_users, model) {
            (Some(users), _) if users > pool => (
                pool,
                format!(
                    "its VU pool was sized at the start for {pool}; start it with more -u to \
                     go higher"
                ),
            ),
            (Some(users), _) => (
                users,
                "its --max-users; start it with a higher --max-users to allow more".to_string(),
            ),
            (None, LoadModel::Closed { users, .. }) => (
                (*users).min(pool),
                format!(
                    "it was started with -u {users}; start it with --max-users N to allow up to \
                     N users from the web UI"
                ),
            ),
            (None, LoadModel::ClosedStages { start, stages }) => {
                let most = stages.iter().map(|(_, n)| *n).fold(*start, u32::max);
                (
                    most.min(pool),
                    format!(
                        "its stages go up to {most} users; start it with --max-users N to allow \
                         up to N users from the web UI"
                    ),
                )
            }
            (None, LoadModel::Open { .. }) => (
                0,
                "it uses the open model: change its arrival rate instead".to_string(),
            ),
        };
        let started = match model {
            LoadModel::Open { segments, .. } => segments
                .iter()
                .flat_map(|s| [s.from, s.to])
                .fold(0.0, f64::max),
            _ => 0.0,
        };
        let (rate, rate_reason) = match max_rate {
            Some(rate) => (
                rate,
                "its --max-rate; start it with a higher --max-rate to allow more".to_string(),
            ),
            None => (
                started,
                format!(
                    "its schedule goes up to {started}/s; start it with --max-rate N to allow up \
                     to N iterations per second from the web UI"
                ),
            ),
        };
        Bounds {
            users,
            users_reason,
            rate,
            rate_reason,
        }
    }
}

/// What the run's pages and downloads read, shared by the sink and the
/// server.
#[derive(Debug)]
pub struct Published {
    /// The latest document, as JSON text (what `/events` sends).
    pub document: watch::Sender<Arc<str>>,
    /// The latest document and report, and when each failure was seen
    /// first and last (downloads).
    pub latest: Mutex<Option<Latest>>,
    /// What the controls may set (set once the run is sized).
    pub bounds: Mutex<Bounds>,
    /// The load's current targets.
    pub load: Mutex<LoadState>,
    /// The run's controls, once it has started.
    pub run: Mutex<Option<Arc<RunContext>>>,
}

impl Published {
    pub fn new(load: LoadState) -> Arc<Published> {
        Arc::new(Published {
            document: watch::Sender::new(Arc::from("null")),
            latest: Mutex::new(None),
            bounds: Mutex::new(Bounds::starting()),
            load: Mutex::new(load),
            run: Mutex::new(None),
        })
    }

    fn publish(&self, document: Value, report: Report, seen: &FirstLastSeen) {
        let text: Arc<str> = Arc::from(serde_json::to_string(&document).unwrap_or_default());
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Latest {
            document: Arc::new(document),
            report: Arc::new(report),
            seen: Arc::new(seen.clone()),
        });
        self.document.send_replace(text);
    }

    /// What the controls may set.
    pub fn bounds(&self) -> Bounds {
        self.bounds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The load's current targets.
    pub fn load(&self) -> LoadState {
        *self.load.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the downloads read.
#[derive(Debug, Clone)]
pub struct Latest {
    pub document: Arc<Value>,
    pub report: Arc<Report>,
    pub seen: Arc<FirstLastSeen>,
}

/// The `--web` sink.
pub struct LiveSink {
    meta: RunMeta,
    series: Series,
    stats: Arc<Stats>,
    run: Arc<RunContext>,
    published: Arc<Published>,
    users: u32,
    seen: FirstLastSeen,
}

impl LiveSink {
    pub fn new(
        meta: RunMeta,
        stats: Arc<Stats>,
        run: Arc<RunContext>,
        published: Arc<Published>,
    ) -> LiveSink {
        *published.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(run.clone());
        LiveSink {
            meta,
            series: Series::new(),
            stats,
            run,
            published,
            users: 0,
            seen: FirstLastSeen::default(),
        }
    }

    fn live(&self, state: &str) -> Value {
        let mut live = self.published.load().to_json();
        live["state"] = json!(state);
        live
    }
}

impl Sink for LiveSink {
    fn tick(&mut self, tick: &Tick) {
        self.series.fold(tick);
        if tick.reset {
            // The live view starts over; the run's report does not.
            self.seen.clear();
        }
        crate::output::csv::note_seen(&mut self.seen, tick);
        self.users = self.users.max(tick.users);
        let mut report = self.stats.current_report(tick.elapsed, self.users);
        report.thresholds = tick.verdicts.clone();
        let so_far = crate::output::json::document_of(
            &report,
            self.run.base_url.as_ref().map(|url| url.as_str()),
            self.run.stop_reason().as_deref(),
            0,
            0,
        );
        let mut document = document(&self.meta, &self.series, so_far, None);
        let state = if self.run.stopping() {
            "stopping"
        } else {
            "running"
        };
        document["live"] = self.live(state);
        self.published.publish(document, report, &self.seen);
    }

    fn end(&mut self) {
        self.series.close();
    }

    fn finish(&mut self, outcome: &RunOutcome) -> anyhow::Result<()> {
        let mut document = document(
            &self.meta,
            &self.series,
            crate::output::json::document(outcome),
            Some(outcome),
        );
        document["live"] = self.live("finished");
        self.published
            .publish(document, outcome.report.clone(), &self.seen);
        Ok(())
    }
}
