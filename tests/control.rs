//! Run control from the guest (stop-user, stop-test, sleep, vars) and
//! guest-reported events (`metrics.record`), with no HTTP involved.

use std::time::Duration;

use horde::cli::RunConfig;
use horde_tests::guests;

fn control_run(stop: &str) -> RunConfig {
    let dir = std::env::temp_dir().join("horde-control-test-cache");
    let mut run = RunConfig::new(guests::TEST_CONTROL);
    run.cache_dir = Some(dir);
    run.users = 4;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(30));
    run.vars.insert("stop".into(), stop.into());
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_user_ends_each_vu_and_then_the_run() {
    let outcome = horde::run(&control_run("user")).await.unwrap();
    let report = &outcome.report;
    assert_eq!(outcome.stop_reason.as_deref(), Some("all users finished"));
    // Three tasks per VU, one valid event each; invalid events are not recorded.
    assert_eq!(report.total.count, 12);
    let fake = &report.stats[0];
    assert_eq!(
        (fake.request_type.as_str(), fake.name.as_str()),
        ("fake", "step")
    );
    assert!(
        (fake.latency_ms.p50 - 5.0).abs() < 0.01,
        "{:?}",
        fake.latency_ms
    );
    assert_eq!(fake.bytes, 120);
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (12, 0), "{check:?}");
    }
    assert!(
        report.duration_s < 10.0,
        "the run did not end when the users stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_test_ends_the_run_with_its_reason() {
    let outcome = horde::run(&control_run("test")).await.unwrap();
    assert_eq!(
        outcome.stop_reason.as_deref(),
        Some("VU 1 stopped the test: enough")
    );
    assert!(outcome.report.duration_s < 10.0);
    assert!(outcome.report.total.count >= 2);
}
