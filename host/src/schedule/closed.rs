//! The closed load model: VUs loop over weighted tasks with the scenario's
//! wait time. Their number follows a plan — `users` started at a spawn
//! rate, or stages ramped linearly — and a VU asked to leave (ramp-down or
//! stop) finishes its current task, runs on-stop and exits; one that does
//! not within the stop timeout is cut.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::classes::UserClass;
use super::{Outcome, Shared, StartFailure, TaskEnd, run_task, start_instance, stop_instance};

/// Pause before replacing an instance that trapped, so a guest that always
/// traps cannot spin the host.
const REPLACE_BACKOFF: Duration = Duration::from_millis(50);
/// How often the controller re-reads the plan.
const CONTROL_TICK: Duration = Duration::from_millis(20);

/// How many VUs should run over time.
#[derive(Debug, Clone)]
pub enum UserPlan {
    /// Start `users` VUs at `spawn_rate` per second, then keep them.
    Spawn { users: u32, spawn_rate: f64 },
    /// Ramp linearly from `start` through each stage's target.
    Stages {
        start: u32,
        stages: Vec<(Duration, u32)>,
    },
    /// Changed mid-run: from `from` VUs at `at`, go to `to` at `rate` VUs a
    /// second (up or down), then keep them until the run stops.
    Changed {
        from: u32,
        to: u32,
        rate: f64,
        at: Duration,
    },
}

impl UserPlan {
    /// VUs wanted at `elapsed`.
    pub fn desired(&self, elapsed: Duration) -> u32 {
        match self {
            UserPlan::Spawn { users, spawn_rate } => {
                let started = (elapsed.as_secs_f64() * spawn_rate).floor() as u64 + 1;
                started.min(u64::from(*users)) as u32
            }
            UserPlan::Stages { start, stages } => {
                let mut from = f64::from(*start);
                let mut at = Duration::ZERO;
                for &(duration, target) in stages {
                    let to = f64::from(target);
                    if elapsed < at + duration {
                        let fraction =
                            (elapsed - at).as_secs_f64() / duration.as_secs_f64().max(1e-9);
                        return (from + (to - from) * fraction).round() as u32;
                    }
                    at += duration;
                    from = to;
                }
                from as u32
            }
            UserPlan::Changed { from, to, rate, at } => {
                let steps = (elapsed.saturating_sub(*at).as_secs_f64() * rate).floor() + 1.0;
                let steps = steps.min(f64::from(u32::MAX)) as u32;
                if to >= from {
                    from.saturating_add(steps).min(*to)
                } else {
                    from.saturating_sub(steps).max(*to)
                }
            }
        }
    }

    /// True once the plan wants no more VUs to start (spawning is over).
    fn settled(&self, elapsed: Duration) -> bool {
        match self {
            UserPlan::Spawn { users, .. } => self.desired(elapsed) >= *users,
            UserPlan::Stages { stages, .. } => {
                elapsed >= stages.iter().map(|(d, _)| *d).sum::<Duration>()
            }
            // Asked for from the web UI: the run goes on (at 0 users too)
            // until it is stopped or its time is up, as in Locust.
            UserPlan::Changed { .. } => false,
        }
    }
}

/// A running VU task and how to ask it to leave.
struct VuHandle {
    leave: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// When it was asked to leave.
    leaving_since: Option<Instant>,
    /// Its place among the staying VUs (1-based, this segment's): a new VU
    /// takes the lowest free one, ramp-down asks the highest to leave, so
    /// the user classes keep their mix at every user count.
    slot: u32,
}

struct Counter {
    left: Option<AtomicU64>,
}

impl Counter {
    fn take(&self) -> bool {
        match &self.left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn exhausted(&self) -> bool {
        self.left
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }
}

/// Run the closed model until the plan, the iteration count or a stop ends it.
pub async fn run(shared: Arc<Shared>, mut plan: UserPlan) -> Outcome {
    let run = shared.run.clone();
    let mut control = shared.control.clone();
    let iterations = Arc::new(Counter {
        left: shared.iterations.map(AtomicU64::new),
    });
    let mut vus: BTreeMap<u32, VuHandle> = BTreeMap::new();
    let mut next_id = 1;
    let started = Instant::now();
    let mut interrupted = 0;
    let mut stop = run.stop.subscribe();
    let mut abort = run.abort.subscribe();
    let mut stopping_since: Option<Instant> = None;
    // When a VU last ended by itself (not cut).
    let mut last_exit: Option<Instant> = None;
    let mut load_end = None;
    // VUs that ended on their own (stop-user, on-start failure) are not replaced.
    let mut ended_by_themselves = 0usize;
    loop {
        vus.retain(|_, vu| {
            let finished = vu.task.is_finished();
            if finished {
                last_exit = Some(Instant::now());
                if vu.leaving_since.is_none() {
                    ended_by_themselves += 1;
                }
            }
            !finished
        });
        let elapsed = started.elapsed();
        if stopping_since.is_none() && (run.stopping() || iterations.exhausted()) {
            stopping_since = Some(Instant::now());
            for vu in vus.values_mut() {
                vu.leave.send_replace(true);
                vu.leaving_since.get_or_insert_with(Instant::now);
            }
        }
        if let Some(since) = stopping_since {
            if vus.is_empty() {
                break;
            }
            if since.elapsed() >= shared.stop_timeout || *abort.borrow() {
                interrupted += vus.len() as u32;
                // The load ended when the stop began, or when the last VU
                // that stopped by itself left: the grace period a cut VU
                // overstayed is not part of it.
                load_end = Some(last_exit.map_or(since, |exit| exit.max(since)));
                let cut: Vec<VuHandle> = std::mem::take(&mut vus).into_values().collect();
                super::cut_all(cut.into_iter().map(|vu| vu.task)).await;
                break;
            }
        } else {
            if let Some(super::LoadChange::Users { users, spawn_rate }) =
                super::load_change(&mut control)
            {
                let staying = vus.values().filter(|vu| vu.leaving_since.is_none()).count();
                plan = UserPlan::Changed {
                    from: staying as u32,
                    to: users,
                    rate: spawn_rate,
                    at: elapsed,
                };
                ended_by_themselves = 0;
            }
            // Follow the plan: start VUs below it, ask the newest to leave above it.
            let desired = (plan.desired(elapsed) as usize).saturating_sub(ended_by_themselves);
            let staying = vus.values().filter(|vu| vu.leaving_since.is_none()).count();
            if staying < desired {
                let taken: BTreeSet<u32> = vus
                    .values()
                    .filter(|vu| vu.leaving_since.is_none())
                    .map(|vu| vu.slot)
                    .collect();
                let mut free = (1..).filter(|slot| !taken.contains(slot));
                for _ in staying..desired {
                    let slot = free.next().expect("slots are unbounded");
                    // Only fixed-count classes, their users all there: no more.
                    let Some(class) = shared
                        .classes
                        .for_slot(shared.class_slot_offset.saturating_add(slot))
                    else {
                        break;
                    };
                    let (leave, leave_rx) = watch::channel(false);
                    let task = shared.workers.spawn(
                        next_id,
                        drive_vu(
                            shared.clone(),
                            iterations.clone(),
                            (shared.segment.vu_id(next_id), class),
                            leave_rx,
                        ),
                    );
                    vus.insert(
                        next_id,
                        VuHandle {
                            leave,
                            task,
                            leaving_since: None,
                            slot,
                        },
                    );
                    next_id += 1;
                }
            } else if staying > desired {
                let mut staying_vus: Vec<&mut VuHandle> = vus
                    .values_mut()
                    .filter(|vu| vu.leaving_since.is_none())
                    .collect();
                staying_vus.sort_by_key(|vu| std::cmp::Reverse(vu.slot));
                for vu in staying_vus.into_iter().take(staying - desired) {
                    vu.leave.send_replace(true);
                    vu.leaving_since = Some(Instant::now());
                }
            }
            // Ramp-down: cut VUs that did not leave within the stop timeout.
            for vu in vus.values() {
                if vu
                    .leaving_since
                    .is_some_and(|since| since.elapsed() >= shared.stop_timeout)
                    && !vu.task.is_finished()
                {
                    vu.task.abort();
                    interrupted += 1;
                }
            }
            if vus.is_empty() && plan.settled(elapsed) {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CONTROL_TICK) => {}
            _ = stop.wait_for(|s| *s), if stopping_since.is_none() => {}
            _ = abort.wait_for(|a| *a), if stopping_since.is_some() => {}
        }
    }
    Outcome {
        interrupted,
        load_end,
    }
}

/// One VU: instances in sequence (a new one after a trap), each running
/// on-start, then tasks, then on-stop, until asked to leave.
async fn drive_vu(
    shared: Arc<Shared>,
    iterations: Arc<Counter>,
    (vu_id, class): (u32, usize),
    mut leave: watch::Receiver<bool>,
) {
    let UserClass { tasks, wait, .. } = shared.classes.get(class);
    let progress = &shared.progress;
    let mut iteration = 0u64;
    loop {
        if *leave.borrow() {
            return;
        }
        let mut vu = match start_instance(&shared, vu_id, class, iteration).await {
            Ok(vu) => vu,
            Err(StartFailure::Fatal) => return,
            Err(StartFailure::Trapped) => {
                replaced(&shared, &mut leave).await;
                continue;
            }
        };
        progress.active_users.fetch_add(1, Ordering::Relaxed);
        let mut trapped = false;
        while !*leave.borrow() && !vu.state().stop_requested && iterations.take() {
            let index = tasks.pick();
            iteration += 1;
            vu.state_mut().iteration = iteration;
            let task_started = Instant::now();
            if run_task(&shared, &mut vu, index).await == TaskEnd::Trapped {
                trapped = true;
                break;
            }
            let pause = wait.after(task_started.elapsed());
            if pause.is_zero() {
                // Tasks that wait on the network yield anyway; one that never
                // does still lets the others (and the controller) run now and then.
                if iteration.is_multiple_of(BACK_TO_BACK_YIELD) {
                    tokio::task::yield_now().await;
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = leave.wait_for(|l| *l) => {}
                }
            }
        }
        progress.active_users.fetch_sub(1, Ordering::Relaxed);
        if trapped {
            drop(vu);
            replaced(&shared, &mut leave).await;
            continue;
        }
        stop_instance(&shared, &mut vu).await;
        return;
    }
}

/// Back-to-back tasks (no wait) between explicit yields to the scheduler.
const BACK_TO_BACK_YIELD: u64 = 64;

async fn replaced(shared: &Shared, leave: &mut watch::Receiver<bool>) {
    shared.progress.replaced.fetch_add(1, Ordering::Relaxed);
    tokio::select! {
        _ = tokio::time::sleep(REPLACE_BACKOFF) => {}
        _ = leave.wait_for(|l| *l) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_give_user_counts_over_time() {
        let spawn = UserPlan::Spawn {
            users: 10,
            spawn_rate: 4.0,
        };
        assert_eq!(spawn.desired(Duration::ZERO), 1);
        assert_eq!(spawn.desired(Duration::from_millis(1000)), 5);
        assert_eq!(spawn.desired(Duration::from_secs(60)), 10);
        let stages = UserPlan::Stages {
            start: 0,
            stages: vec![
                (Duration::from_secs(10), 10),
                (Duration::from_secs(10), 10),
                (Duration::from_secs(5), 0),
            ],
        };
        assert_eq!(stages.desired(Duration::from_secs(5)), 5);
        assert_eq!(stages.desired(Duration::from_secs(10)), 10);
        assert_eq!(stages.desired(Duration::from_secs(15)), 10);
        assert_eq!(stages.desired(Duration::from_millis(22_500)), 5);
        assert_eq!(stages.desired(Duration::from_secs(30)), 0);
        assert!(stages.settled(Duration::from_secs(25)));
        let down = UserPlan::Changed {
            from: 10,
            to: 4,
            rate: 2.0,
            at: Duration::from_secs(30),
        };
        assert_eq!(down.desired(Duration::from_secs(30)), 9);
        assert_eq!(down.desired(Duration::from_secs(31)), 7);
        assert_eq!(down.desired(Duration::from_secs(90)), 4);
        assert!(!down.settled(Duration::from_secs(90)));
    }
}
