//! Hostile guests are contained: a VU that spins, allocates without bound or
//! traps is counted and replaced while the other VUs keep recording.

use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::{config, guests};

async fn run_hostile(mode: &str) -> horde::RunOutcome {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_HOSTILE, &target.url(), dir.path());
    // VUs 3 and 6 misbehave; 1, 2, 4 and 5 GET / every 10 ms.
    run.users = 6;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    run.limits.max_task_cpu = Duration::from_millis(300);
    run.limits.max_vu_memory = 32 << 20;
    run.vars.insert("mode".into(), mode.into());
    horde::run(&run).await.unwrap()
}

fn assert_contained(outcome: &horde::RunOutcome, expected_message: &str) {
    let report = &outcome.report;
    let good = report
        .stats
        .iter()
        .find(|s| s.name == "/")
        .expect("well-behaved VUs recorded requests");
    assert_eq!(good.failures, 0);
    // 4 good VUs at one request per ~10 ms for 3 s would be ~1200; demand a
    // fraction of that so a noisy machine does not fail the test, while a
    // starved run (a few requests) still does.
    assert!(
        good.count > 200,
        "well-behaved VUs were starved: {} requests",
        good.count
    );
    let hits: u64 = report
        .exceptions
        .iter()
        .filter(|e| e.message.contains(expected_message))
        .map(|e| e.count)
        .sum();
    assert!(
        hits >= 2,
        "expected exceptions containing {expected_message:?}, got {:?}",
        report.exceptions
    );
    assert!(
        outcome.replaced_instances >= 2,
        "replaced {}",
        outcome.replaced_instances
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guest_is_stopped_by_the_cpu_limit() {
    let outcome = run_hostile("spin").await;
    assert_contained(&outcome, "more than 300ms of CPU");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_guest_is_stopped_by_the_memory_limit() {
    let outcome = run_hostile("alloc").await;
    assert_contained(&outcome, "exceeded its memory limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_guest_is_replaced() {
    let outcome = run_hostile("trap").await;
    assert_contained(&outcome, "trap in task work");
}
