//! The open load model: iterations start at an arrival rate (constant, or
//! ramped linearly through stages) on a pool of VUs, pre-allocated and grown
//! up to `max_vus`. An arrival that finds every VU busy waits in a queue; if
//! it cannot start within `max_queue_time` it is dropped and counted. Each
//! iteration's lateness is recorded so latencies can be reported from the
//! intended start (corrected for coordinated omission) as well as from the
//! actual send. With user classes, each arrival belongs to a class (dealt
//! by weight) and runs on an idle VU of that class: every class keeps its
//! own queue and VUs, so a slow class does not hold up the others.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Outcome, Shared, TaskEnd, run_task, start_instance, stop_instance};
use crate::cli::RateSegment;
use crate::vu::VuInstance;

/// What the open model needs to know.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    pub segments: Vec<RateSegment>,
    pub pre_vus: u32,
    pub max_vus: u32,
    pub max_queue_time: Duration,
}

/// Arrival offsets from the start: arrival k happens when the integral of
/// the rate reaches k.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    segments: Vec<RateSegment>,
    index: usize,
    /// Start offset of the current segment, and arrivals before it.
    segment_start: f64,
    arrivals_before: f64,
    next: u64,
}

impl ArrivalSchedule {
    pub fn new(segments: Vec<RateSegment>) -> ArrivalSchedule {
        ArrivalSchedule::starting_at(segments, Duration::ZERO)
    }

    /// A schedule whose first segment begins `offset` after the start (a
    /// rate changed mid-run).
    pub fn starting_at(segments: Vec<RateSegment>, offset: Duration) -> ArrivalSchedule {
        ArrivalSchedule {
            segments,
            index: 0,
            segment_start: offset.as_secs_f64(),
            arrivals_before: 0.0,
            next: 0,
        }
    }
}

impl Iterator for ArrivalSchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let k = self.next as f64;
        while let Some(segment) = self.segments.get(self.index) {
            let length = segment.duration.as_secs_f64();
            let (r0, r1) = (segment.from, segment.to);
            let in_segment = (r0 + r1) / 2.0 * length;
            let n = k - self.arrivals_before;
            if n < in_segment {
                // Solve r0*t + (r1-r0)/(2L)*t^2 = n for t in [0, L).
                let a = (r1 - r0) / (2.0 * length);
                let t = if a.abs() < 1e-12 {
                    n / r0
                } else {
                    (-r0 + (r0 * r0 + 4.0 * a * n).max(0.0).sqrt()) / (2.0 * a)
                };
                self.next += 1;
                return Some(Duration::from_secs_f64(
                    self.segment_start + t.clamp(0.0, length),
                ));
            }
            self.index += 1;
            self.segment_start += length;
            self.arrivals_before += in_segment;
        }
        None
    }
}

/// What VUs tell the dispatcher.
enum PoolEvent {
    /// A VU of a class is free (new, or done with its iteration).
    Ready(Box<VuInstance>, usize),
    /// A VU is gone (failed to start, or trapped).
    Lost,
    /// A new VU of a class is no longer starting (it is ready or lost).
    Started(usize),
}

/// Per user class: idle VUs, VUs starting, arrivals waiting.
#[derive(Default)]
struct ClassPool {
    /// Boxed as they travel through the pool's channel: moved, never copied.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<VuInstance>>,
    starting: usize,
    backlog: VecDeque<Instant>,
}

/// Late arrivals dropped in one go before the controller looks around.
const MAX_SKIP_AT_ONCE: u32 = 10_000;

/// Run the open model until its schedule ends or the run stops.
pub async fn run(shared: Arc<Shared>, plan: OpenPlan) -> Outcome {
    let run = shared.run.clone();
    let stats = run.stats.clone();
    // Each new VU sends Started, then Ready or Lost.
    let (events_tx, mut events) = mpsc::channel::<PoolEvent>(2 * plan.max_vus as usize + 2);
    let mut pools: Vec<ClassPool> = shared
        .classes
        .all()
        .iter()
        .map(|_| Default::default())
        .collect();
    let mut busy = JoinSet::new();
    let mut vus_total = 0u32;
    let mut next_vu_id = 1u32;
    let mut starting = JoinSet::new();
    let grow = |starting: &mut JoinSet<()>,
                pool: &mut ClassPool,
                class: usize,
                vus_total: &mut u32,
                next_vu_id: &mut u32| {
        let id = shared.segment.vu_id(*next_vu_id);
        let (shared, events_tx) = (shared.clone(), events_tx.clone());
        *vus_total += 1;
        *next_vu_id += 1;
        pool.starting += 1;
        let worker = shared.workers.handle(id).clone();
        starting.spawn_on(
            crate::workers::in_vu(id, async move {
                let event = match start_instance(&shared, id, class, 0).await {
                    Ok(vu) => PoolEvent::Ready(Box::new(vu), class),
                    Err(_) => PoolEvent::Lost,
                };
                let _ = events_tx.send(PoolEvent::Started(class)).await;
                let _ = events_tx.send(event).await;
            }),
            &worker,
        );
    };
    // Pre-allocated VUs follow the classes' weights.
    let pre_vus = plan.pre_vus.min(plan.max_vus);
    for n in 0..pre_vus {
        let class = shared.classes.for_arrival(u64::from(n));
        grow(
            &mut starting,
            &mut pools[class],
            class,
            &mut vus_total,
            &mut next_vu_id,
        );
    }
    // Wait for the pre-allocated VUs, so the schedule starts with its pool.
    let mut pending_pre = pre_vus;
    while pending_pre > 0 {
        match events.recv().await {
            Some(PoolEvent::Started(class)) => {
                pools[class].starting -= 1;
                continue;
            }
            Some(PoolEvent::Ready(vu, class)) => pools[class].idle.push(vu),
            Some(PoolEvent::Lost) => vus_total -= 1,
            None => break,
        }
        pending_pre -= 1;
    }
    let mut arrivals = 0u64;
    shared
        .progress
        .active_users
        .store(vus_total, Ordering::Relaxed);

    let mut schedule = ArrivalSchedule::new(plan.segments.clone()).peekable();
    let schedule_end: Duration = plan.segments.iter().map(|s| s.duration).sum();
    let mut control = shared.control.clone();
    let mut asked: Option<super::LoadChange> = None;
    let start = Instant::now();
    let mut stop = run.stop.subscribe();
    loop {
        if run.stopping() {
            break;
        }
        while busy.try_join_next().is_some() {}
        while starting.try_join_next().is_some() {}
        let change = asked.take().or_else(|| super::load_change(&mut control));
        if let Some(super::LoadChange::Rate { rate }) = change {
            // From now to the schedule's end at the new rate.
            let now = start.elapsed();
            let segment = RateSegment {
                duration: schedule_end.saturating_sub(now),
                from: rate,
                to: rate,
            };
            schedule = ArrivalSchedule::starting_at(vec![segment], now).peekable();
        }
        // Start what can start; drop what waited too long.
        for (class, pool) in pools.iter_mut().enumerate() {
            while let Some(&intended) = pool.backlog.front() {
                if intended.elapsed() > plan.max_queue_time {
                    pool.backlog.pop_front();
                    stats.record_dropped_iteration();
                    continue;
                }
                if let Some(mut vu) = pool.idle.pop() {
                    pool.backlog.pop_front();
                    vu.state_mut().iteration_lag = Some(intended.elapsed());
                    let (shared, events_tx) = (shared.clone(), events_tx.clone());
                    // A VU always runs on the runtime its connections live on.
                    let vu_id = vu.state().vu_id;
                    let worker = shared.workers.handle(vu_id).clone();
                    busy.spawn_on(
                        crate::workers::in_vu(vu_id, async move {
                            let index = shared.classes.get(class).tasks.pick();
                            let iteration = vu.state().iteration + 1;
                            vu.state_mut().iteration = iteration;
                            let event = match run_task(&shared, &mut vu, index).await {
                                TaskEnd::Done => PoolEvent::Ready(vu, class),
                                TaskEnd::Trapped => {
                                    shared.progress.replaced.fetch_add(1, Ordering::Relaxed);
                                    PoolEvent::Lost
                                }
                            };
                            let _ = events_tx.send(event).await;
                        }),
                        &worker,
                    );
                } else {
                    // One new VU for each waiting arrival not already covered by one starting.
                    let wanted = pool.backlog.len().saturating_sub(pool.starting);
                    for _ in 0..wanted.min(plan.max_vus.saturating_sub(vus_total) as usize) {
                        grow(&mut starting, pool, class, &mut vus_total, &mut next_vu_id);
                    }
                    shared
                        .progress
                        .active_users
                        .store(vus_total, Ordering::Relaxed);
                    break;
                }
            }
        }
        // Arrivals already too late to start are dropped without queueing
        // them one by one (a rate far above what the VUs can take), a
        // bounded number at a time so the controller stays responsive.
        let mut skipped = 0;
        while skipped < MAX_SKIP_AT_ONCE
            && schedule
                .peek()
                .is_some_and(|offset| (start + *offset).elapsed() > plan.max_queue_time)
        {
            schedule.next();
            stats.record_dropped_iteration();
            skipped += 1;
        }
        if skipped == MAX_SKIP_AT_ONCE {
            tokio::task::yield_now().await;
            continue;
        }
        let next_arrival = schedule.peek().map(|offset| start + *offset);
        if next_arrival.is_none() && pools.iter().all(|pool| pool.backlog.is_empty()) {
            break;
        }
        let queue_deadline = pools
            .iter()
            .filter_map(|pool| pool.backlog.front())
            .min()
            .map(|intended| *intended + plan.max_queue_time);
        tokio::select! {
            _ = sleep_until_opt(next_arrival) => {
                schedule.next();
                let class = shared.classes.for_arrival(arrivals);
                arrivals += 1;
                pools[class].backlog.push_back(next_arrival.expect("armed only with an arrival"));
            }
            event = events.recv() => match event {
                Some(PoolEvent::Ready(vu, class)) => pools[class].idle.push(vu),
                Some(PoolEvent::Started(class)) => pools[class].starting -= 1,
                Some(PoolEvent::Lost) => {
                    vus_total -= 1;
                    shared.progress.active_users.store(vus_total, Ordering::Relaxed);
                }
                None => break,
            },
            _ = sleep_until_opt(queue_deadline) => {}
            Ok(()) = control.changed() => asked = *control.borrow_and_update(),
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // Arrivals that never started are dropped, not lost.
    for _ in pools.iter_mut().flat_map(|pool| pool.backlog.drain(..)) {
        stats.record_dropped_iteration();
    }
    let mut idle: Vec<Box<VuInstance>> = pools.into_iter().flat_map(|pool| pool.idle).collect();
    // Let running iterations finish within the stop timeout.
    let mut interrupted = 0;
    let mut abort = run.abort.subscribe();
    let grace_started = Instant::now();
    let mut last_exit = grace_started;
    let grace = tokio::time::sleep(shared.stop_timeout);
    tokio::pin!(grace);
    while !busy.is_empty() || !starting.is_empty() {
        tokio::select! {
            Some(_) = busy.join_next() => last_exit = Instant::now(),
            Some(_) = starting.join_next() => {}
            event = events.recv() => if let Some(PoolEvent::Ready(vu, _)) = event { idle.push(vu) },
            _ = &mut grace => {
                interrupted = busy.len() as u32;
                break;
            }
            _ = abort.wait_for(|a| *a) => {
                interrupted = busy.len() as u32;
                break;
            }
        }
    }
    // Cut iterations record their abandoned requests as they are dropped;
    // wait (briefly) for that before the report is made.
    busy.abort_all();
    starting.abort_all();
    let _ = tokio::time::timeout(super::CUT_WAIT, async {
        while busy.join_next().await.is_some() || starting.join_next().await.is_some() {}
    })
    .await;
    busy.detach_all();
    starting.detach_all();
    let load_end = (interrupted > 0).then_some(last_exit);
    while let Ok(event) = events.try_recv() {
        if let PoolEvent::Ready(vu, _) = event {
            idle.push(vu);
        }
    }
    // Idle VUs run on-stop, within the stop timeout as a whole.
    let stopping = async {
        for mut vu in idle {
            stop_instance(&shared, &mut vu).await;
        }
    };
    if tokio::time::timeout(shared.stop_timeout, stopping)
        .await
        .is_err()
    {
        shared
            .run
            .stats
            .record_exception("on_stop did not finish within --stop-timeout; the VU was cut");
    }
    shared.progress.active_users.store(0, Ordering::Relaxed);
    Outcome {
        interrupted,
        load_end,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(seconds: u64, from: f64, to: f64) -> RateSegment {
        RateSegment {
            duration: Duration::from_secs(seconds),
            from,
            to,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let arrivals: Vec<Duration> =
            ArrivalSchedule::new(vec![segment(5, 100.0, 100.0)]).collect();
        assert_eq!(arrivals.len(), 500);
        assert_eq!(arrivals[1], Duration::from_millis(10));
        assert!(arrivals[499] < Duration::from_secs(5));
    }

    #[test]
    fn ramps_integrate_the_rate() {
        // 0 -> 100/s over 10 s is 500 arrivals, denser at the end; then 50/s for 2 s.
        let arrivals: Vec<Duration> =
            ArrivalSchedule::new(vec![segment(10, 0.0, 100.0), segment(2, 100.0, 100.0)]).collect();
        assert_eq!(arrivals.len(), 700);
        let first_half = arrivals
            .iter()
            .filter(|t| **t < Duration::from_secs(5))
            .count();
        assert!((120..=130).contains(&first_half), "{first_half}");
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
    }
}
