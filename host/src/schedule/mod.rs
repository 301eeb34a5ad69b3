//! Executors: how VUs are started, driven and stopped. `closed` runs users
//! (fixed with a spawn rate, or ramped through stages); `open` starts
//! iterations at an arrival rate on a pool of VUs. Both share the user
//! classes, task tables, wait times and the per-task bookkeeping here.

pub mod classes;
mod closed;
mod open;
pub mod segment;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use anyhow::{Result, bail};
use wasmtime::Engine;

use crate::bindings::{ScenarioPre, user};
use crate::cli::LoadModel;
use crate::vu::{GuestFailure, RunContext, VuInstance, VuState};

/// Counters live views read while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    /// VUs with a live instance.
    pub active_users: AtomicU32,
    /// VU instances replaced after a trap or broken limit.
    pub replaced: AtomicU64,
}

/// How the executors ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// VUs still in a task when the stop timeout ran out.
    pub interrupted: u32,
    /// Set when VUs were cut at the end: when the load really ended (the
    /// stop, or the last VU that left by itself after it), so rates are
    /// computed over the load, not over the grace period a cut VU overstayed.
    pub load_end: Option<std::time::Instant>,
}

/// How long the end of a run waits for cut VUs to be dropped (their
/// abandoned requests are recorded then). A VU stuck inside one host call
/// cannot be dropped sooner; the report goes on without it.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// Abort VU tasks and wait up to [`CUT_WAIT`] until they are gone.
async fn cut_all(tasks: impl Iterator<Item = tokio::task::JoinHandle<()>>) {
    let tasks: Vec<_> = tasks.inspect(|task| task.abort()).collect();
    let _ = tokio::time::timeout(CUT_WAIT, async {
        for task in tasks {
            let _ = task.await;
        }
    })
    .await;
}

/// A change to the load asked for while the run goes on (the web UI's
/// controls, as Locust's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadChange {
    /// Closed model: go to `users` VUs, starting or stopping `spawn_rate`
    /// a second.
    Users { users: u32, spawn_rate: f64 },
    /// Open model: start iterations at `rate` a second from now on.
    Rate { rate: f64 },
}

/// What every executor needs.
pub struct Shared {
    /// The single-threaded runtimes the VUs run on.
    pub workers: Arc<crate::workers::VuWorkers>,
    pub engine: Engine,
    pub pre: ScenarioPre<VuState>,
    pub run: Arc<RunContext>,
    /// The user classes (one unnamed class without any): tasks and waits.
    pub classes: classes::UserClasses,
    pub progress: Arc<Progress>,
    /// Total tasks across all VUs (closed model).
    pub iterations: Option<u64>,
    /// After a stop, how long running tasks may finish.
    pub stop_timeout: Duration,
    /// Changes to the load model mid-run (`None` until one is asked for).
    pub control: tokio::sync::watch::Receiver<Option<LoadChange>>,
    /// This process's execution segment: its VU ids are run-wide.
    pub segment: segment::Segment,
    /// The segment's k-th user is the run's user `class_slot_offset + k`
    /// for the user classes' deal ([`crate::cli::RunConfig::class_slot_offset`]).
    pub class_slot_offset: u32,
}

/// The change asked for since `control` last looked, if any.
fn load_change(
    control: &mut tokio::sync::watch::Receiver<Option<LoadChange>>,
) -> Option<LoadChange> {
    if matches!(control.has_changed(), Ok(true)) {
        *control.borrow_and_update()
    } else {
        None
    }
}

/// Run the load model to its end.
pub async fn run(shared: Shared, model: LoadModel, run_limit: Option<Duration>) -> Outcome {
    let shared = Arc::new(shared);
    // The open model's schedule is its clock (already cut to the run time):
    // it ends when its last arrival has been dealt with, which takes at most
    // the queue time more; the timer is only a safety net there.
    let limit = match &model {
        LoadModel::Open { max_queue_time, .. } => {
            run_limit.map(|limit| limit + *max_queue_time + Duration::from_secs(1))
        }
        _ => run_limit,
    };
    if let Some(limit) = limit {
        let run = shared.run.clone();
        tokio::spawn(async move {
            let mut stop = run.stop.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(limit) => run.request_stop("run time reached".into()),
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
    match model {
        LoadModel::Closed { users, spawn_rate } => {
            closed::run(shared, closed::UserPlan::Spawn { users, spawn_rate }).await
        }
        LoadModel::ClosedStages { start, stages } => {
            closed::run(shared, closed::UserPlan::Stages { start, stages }).await
        }
        LoadModel::Open {
            segments,
            pre_vus,
            max_vus,
            max_queue_time,
        } => {
            open::run(
                shared,
                open::OpenPlan {
                    segments,
                    pre_vus,
                    max_vus,
                    max_queue_time,
                },
            )
            .await
        }
    }
}

/// How one task went, for the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskEnd {
    Done,
    /// The instance trapped and must be replaced.
    Trapped,
}

/// Run task `index` on `vu`, counting errors and traps as exceptions.
async fn run_task(shared: &Shared, vu: &mut VuInstance, index: u32) -> TaskEnd {
    shared.run.stats.record_iteration_start();
    vu.state_mut().data_stopped = false;
    vu.state_mut().groups.clear();
    match vu.run_task(index).await {
        Ok(()) => TaskEnd::Done,
        // A data feed ran out and stopped the VU or the run: the error the
        // task ended with is that stop, not a fault of the scenario.
        Err(GuestFailure::Error(_)) if vu.state().data_stopped => TaskEnd::Done,
        Err(GuestFailure::Error(message)) => {
            shared.run.stats.record_exception(&format!(
                "task {}: {message}",
                shared.classes.task_name(index)
            ));
            TaskEnd::Done
        }
        Err(GuestFailure::Trap(message)) => {
            shared.run.stats.record_exception(&format!(
                "trap in task {}: {message}",
                shared.classes.task_name(index)
            ));
            TaskEnd::Trapped
        }
    }
}

/// Why a VU could not start (already counted as an exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartFailure {
    /// Instantiation failed or on-start returned an error: give up on this VU.
    Fatal,
    /// on-start trapped: a fresh instance may be tried.
    Trapped,
}

/// Make an instance of a VU of user class `class` and run its on-start.
async fn start_instance(
    shared: &Shared,
    vu_id: u32,
    class: usize,
    iteration: u64,
) -> Result<VuInstance, StartFailure> {
    let stats = &shared.run.stats;
    let mut vu = match VuInstance::new(
        &shared.engine,
        &shared.pre,
        shared.run.clone(),
        vu_id,
        shared.classes.get(class).name.as_deref(),
        iteration,
    )
    .await
    {
        Ok(vu) => vu,
        Err(error) => {
            stats.record_exception(&format!("{error:#}"));
            return Err(StartFailure::Fatal);
        }
    };
    match vu.on_start().await {
        Ok(()) => Ok(vu),
        Err(GuestFailure::Error(_)) if vu.state().data_stopped => Err(StartFailure::Fatal),
        Err(GuestFailure::Error(message)) => {
            stats.record_exception(&format!("on_start failed: {message}"));
            Err(StartFailure::Fatal)
        }
        Err(GuestFailure::Trap(message)) => {
            stats.record_exception(&format!("trap in on_start: {message}"));
            Err(StartFailure::Trapped)
        }
    }
}

/// Run on-stop, counting a failure.
async fn stop_instance(shared: &Shared, vu: &mut VuInstance) {
    match vu.on_stop().await {
        Ok(()) => {}
        Err(GuestFailure::Error(message)) => shared
            .run
            .stats
            .record_exception(&format!("on_stop failed: {message}")),
        Err(GuestFailure::Trap(message)) => shared
            .run
            .stats
            .record_exception(&format!("trap in on_stop: {message}")),
    }
}

/// Some of the scenario's tasks with cumulative weights for weighted choice.
#[derive(Debug, Clone)]
pub struct TaskTable {
    /// The scenario's index of each task in the table.
    indices: Vec<u32>,
    cumulative: Vec<u64>,
}

impl TaskTable {
    /// Build from the scenario's declared tasks at `indices` (all of them,
    /// or one user class's), rejecting unusable tables.
    pub fn new(tasks: &[user::Task], indices: &[u32]) -> Result<TaskTable> {
        if indices.is_empty() {
            bail!("the scenario declares no tasks: `configure` must return at least one task");
        }
        let mut total = 0u64;
        let mut cumulative = Vec::with_capacity(indices.len());
        for &index in indices {
            total += u64::from(tasks[index as usize].weight);
            cumulative.push(total);
        }
        if total == 0 {
            bail!(
                "every task of the scenario has weight 0: give at least one task a weight above 0"
            );
        }
        Ok(TaskTable {
            indices: indices.to_vec(),
            cumulative,
        })
    }

    /// Pick a task with probability proportional to its weight; its index
    /// among the scenario's tasks.
    pub fn pick(&self) -> u32 {
        let total = *self.cumulative.last().expect("checked non-empty");
        let point = fastrand::u64(0..total);
        self.indices[self.cumulative.partition_point(|&c| c <= point)]
    }
}

/// The longest wait between tasks a scenario may ask for (one day).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// The wait between tasks, checked once at start.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    None,
    Constant(Duration),
    Between(Duration, Duration),
    /// Start a task every this long.
    Pacing(Duration),
}

impl Wait {
    pub fn from_guest(wait: &user::WaitTime) -> Result<Wait> {
        let longest = match *wait {
            user::WaitTime::Constant(ms) | user::WaitTime::ConstantPacing(ms) => ms,
            user::WaitTime::Between(user::Range { min_ms, max_ms }) => min_ms.max(max_ms),
            _ => 0,
        };
        if Duration::from_millis(longest) > MAX_WAIT {
            bail!(
                "the scenario's wait time is {longest} ms, longer than one day; a wait between \
                 tasks must be at most 86400000 ms"
            );
        }
        Ok(match *wait {
            user::WaitTime::None => Wait::None,
            user::WaitTime::Constant(ms) => Wait::Constant(Duration::from_millis(ms)),
            user::WaitTime::Between(user::Range { min_ms, max_ms }) => {
                let (low, high) = if min_ms <= max_ms {
                    (min_ms, max_ms)
                } else {
                    (max_ms, min_ms)
                };
                Wait::Between(Duration::from_millis(low), Duration::from_millis(high))
            }
            user::WaitTime::ConstantPacing(ms) => Wait::Pacing(Duration::from_millis(ms)),
            user::WaitTime::ConstantThroughput(per_second) => {
                // At least one task a day: slower rates (1e-300) would not
                // fit a duration and mean nothing for a load test.
                match Duration::try_from_secs_f64(1.0 / per_second) {
                    Ok(every) if per_second.is_finite() && every <= MAX_WAIT => Wait::Pacing(every),
                    _ => bail!(
                        "the scenario's constant-throughput wait is {per_second:e} tasks per second; \
                         it must be a number above 0 that starts at least one task a day \
                         (>= {:.8})",
                        1.0 / MAX_WAIT.as_secs_f64()
                    ),
                }
            }
        })
    }

    /// How long to wait after a task that took `task_time`.
    pub fn after(&self, task_time: Duration) -> Duration {
        match *self {
            Wait::None => Duration::ZERO,
            Wait::Constant(d) => d,
            Wait::Between(low, high) => {
                let span = (high - low).as_micros() as u64;
                low + Duration::from_micros(if span == 0 {
                    0
                } else {
                    fastrand::u64(0..=span)
                })
            }
            Wait::Pacing(every) => every.saturating_sub(task_time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, weight: u32) -> user::Task {
        user::Task {
            name: name.into(),
            weight,
        }
    }

    #[test]
    fn weighted_choice_follows_weights() {
        let tasks = [task("a", 3), task("zero", 0), task("b", 1), task("c", 1)];
        let table = TaskTable::new(&tasks, &[0, 1, 2]).unwrap();
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[table.pick() as usize] += 1;
        }
        assert_eq!((counts[1], counts[3]), (0, 0));
        let ratio = f64::from(counts[0]) / f64::from(counts[2]);
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
        // A class's table picks among its own tasks, by the scenario's index.
        let class = TaskTable::new(&tasks, &[3]).unwrap();
        assert!((0..100).all(|_| class.pick() == 3));
    }

    #[test]
    fn unusable_task_tables_are_rejected() {
        assert!(TaskTable::new(&[], &[]).is_err());
        assert!(TaskTable::new(&[task("a", 0)], &[0]).is_err());
    }

    #[test]
    fn waits_are_computed() {
        let pacing = Wait::from_guest(&user::WaitTime::ConstantThroughput(4.0)).unwrap();
        assert_eq!(
            pacing.after(Duration::from_millis(100)),
            Duration::from_millis(150)
        );
        assert_eq!(pacing.after(Duration::from_secs(1)), Duration::ZERO);
        let between = Wait::from_guest(&user::WaitTime::Between(user::Range {
            min_ms: 20,
            max_ms: 10,
        }))
        .unwrap();
        for _ in 0..100 {
            let d = between.after(Duration::ZERO);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        for bad in [
            f64::NAN,
            0.0,
            -1.0,
            1e-300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
        ] {
            assert!(
                Wait::from_guest(&user::WaitTime::ConstantThroughput(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
