//! The closed load model: start `users` VUs at `spawn_rate` per second; each
//! loops over weighted tasks with the scenario's wait time until the run
//! stops (run time, shared iteration count, `stop-test`, or a signal).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use wasmtime::Engine;

use super::{TaskTable, Wait};
use crate::bindings::ScenarioPre;
use crate::vu::{GuestFailure, RunContext, VuInstance, VuState};

/// Pause before replacing an instance that trapped, so a guest that always
/// traps cannot spin the host.
const REPLACE_BACKOFF: Duration = Duration::from_millis(50);

/// What the closed model needs to know.
#[derive(Debug, Clone)]
pub struct ClosedPlan {
    pub users: u32,
    pub spawn_rate: f64,
    pub run_time: Option<Duration>,
    /// Total tasks across all VUs.
    pub iterations: Option<u64>,
    /// How long in-flight tasks may finish after a stop.
    pub stop_timeout: Duration,
}

/// Counters live views read while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    /// VUs with a live instance.
    pub active_users: AtomicU32,
    /// VU instances replaced after a trap or broken limit.
    pub replaced: AtomicU64,
}

struct Shared {
    engine: Engine,
    pre: ScenarioPre<VuState>,
    run: Arc<RunContext>,
    tasks: TaskTable,
    wait: Wait,
    iterations_left: Option<AtomicU64>,
    progress: Arc<Progress>,
}

impl Shared {
    fn take_iteration(&self) -> bool {
        match &self.iterations_left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn iterations_done(&self) -> bool {
        self.iterations_left
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }
}

/// Outcome of the run's VU tasks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClosedOutcome {
    /// VUs still in a task when the stop timeout ran out.
    pub interrupted: u32,
}

/// Run the closed model to the end.
pub async fn run_closed(
    engine: Engine,
    pre: ScenarioPre<VuState>,
    run: Arc<RunContext>,
    tasks: TaskTable,
    wait: Wait,
    plan: ClosedPlan,
    progress: Arc<Progress>,
) -> ClosedOutcome {
    let shared = Arc::new(Shared {
        engine,
        pre,
        run: run.clone(),
        tasks,
        wait,
        iterations_left: plan.iterations.map(AtomicU64::new),
        progress,
    });
    if let Some(run_time) = plan.run_time {
        let run = run.clone();
        tokio::spawn(async move {
            let mut stop = run.stop.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(run_time) => run.request_stop("run time reached".into()),
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
    let mut vus = JoinSet::new();
    let mut stop = run.stop.subscribe();
    let interval = Duration::from_secs_f64(1.0 / plan.spawn_rate);
    let spawn_start = Instant::now();
    for vu_id in 1..=plan.users {
        if run.stopping() || shared.iterations_done() {
            break;
        }
        let next = spawn_start + interval.mul_f64(f64::from(vu_id - 1));
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        vus.spawn(drive_vu(shared.clone(), vu_id));
    }
    // Wait for every VU to end by itself, or for a stop plus the grace period.
    let mut abort = run.abort.subscribe();
    let mut grace_ends: Option<tokio::time::Instant> = None;
    loop {
        let grace = async {
            match grace_ends {
                Some(end) => tokio::time::sleep_until(end).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = vus.join_next() => {
                if joined.is_none() {
                    return ClosedOutcome::default();
                }
            }
            _ = stop.wait_for(|s| *s), if grace_ends.is_none() => {
                grace_ends = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            _ = grace => break,
            _ = abort.wait_for(|a| *a) => break,
        }
    }
    let interrupted = vus.len() as u32;
    vus.shutdown().await;
    ClosedOutcome { interrupted }
}

/// One VU: instances in sequence (a new one after a trap), each running
/// on-start, then tasks, then on-stop.
async fn drive_vu(shared: Arc<Shared>, vu_id: u32) {
    let run = &shared.run;
    let stats = &run.stats;
    let mut stop = run.stop.subscribe();
    let mut iteration = 0u64;
    loop {
        if run.stopping() {
            return;
        }
        let mut vu =
            match VuInstance::new(&shared.engine, &shared.pre, run.clone(), vu_id, iteration).await
            {
                Ok(vu) => vu,
                Err(error) => {
                    stats.record_exception(&format!("{error:#}"));
                    return;
                }
            };
        let active = ActiveGuard::new(&shared.progress.active_users);
        match vu.on_start().await {
            Ok(()) => {}
            Err(GuestFailure::Error(message)) => {
                stats.record_exception(&format!("on_start failed: {message}"));
                return;
            }
            Err(GuestFailure::Trap(message)) => {
                stats.record_exception(&format!("trap in on_start: {message}"));
                drop(active);
                replaced(&shared).await;
                continue;
            }
        }
        let mut trapped = false;
        while !run.stopping() && !vu.state().stop_requested && shared.take_iteration() {
            let index = shared.tasks.pick();
            iteration += 1;
            vu.state_mut().iteration = iteration;
            let started = Instant::now();
            match vu.run_task(index).await {
                Ok(()) => {}
                Err(GuestFailure::Error(message)) => {
                    stats
                        .record_exception(&format!("task {}: {message}", shared.tasks.name(index)));
                }
                Err(GuestFailure::Trap(message)) => {
                    stats.record_exception(&format!(
                        "trap in task {}: {message}",
                        shared.tasks.name(index)
                    ));
                    trapped = true;
                    break;
                }
            }
            let pause = shared.wait.after(started.elapsed());
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            } else {
                // Let other tasks (and the stop timer) run between back-to-back tasks.
                tokio::task::yield_now().await;
            }
        }
        if trapped {
            drop(active);
            replaced(&shared).await;
            continue;
        }
        match vu.on_stop().await {
            Ok(()) => {}
            Err(GuestFailure::Error(message)) => {
                stats.record_exception(&format!("on_stop failed: {message}"))
            }
            Err(GuestFailure::Trap(message)) => {
                stats.record_exception(&format!("trap in on_stop: {message}"))
            }
        }
        return;
    }
}

async fn replaced(shared: &Shared) {
    shared.progress.replaced.fetch_add(1, Ordering::Relaxed);
    let mut stop = shared.run.stop.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(REPLACE_BACKOFF) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// Counts a VU as active while it holds a live instance.
struct ActiveGuard<'a>(&'a AtomicU32);

impl<'a> ActiveGuard<'a> {
    fn new(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(counter)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
