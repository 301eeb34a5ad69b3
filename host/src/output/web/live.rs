//! The live page's data: the sink that folds every tick into the report
//! page's series and publishes, each second, the whole document the page
//! draws (what ran, the report so far, the series, the load's state), and
//! at the end the final one.

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

/// What the run's pages and downloads read, shared by the sink and the
/// server.
#[derive(Debug)]
pub struct Published {
    /// The latest document, as JSON text (what `/events` sends).
    pub document: watch::Sender<Arc<str>>,
    /// The latest document and report, and when each failure was seen
    /// first and last (downloads).
    pub latest: Mutex<Option<Latest>>,
    /// The most users the users control may ask for (the VU pool's size
    /// when the run pre-allocates one).
    pub max_users: std::sync::atomic::AtomicU32,
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
            max_users: std::sync::atomic::AtomicU32::new(crate::cli::MAX_VUS),
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
