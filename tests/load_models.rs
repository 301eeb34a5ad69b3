//! Load models that tell the truth, against the in-process target with known
//! behaviour: latency accuracy, arrival-rate accuracy, coordinated omission
//! and dropped iterations, stages, scenario defaults, custom metrics.

use std::time::Duration;

use horde::cli::RunConfig;
use horde::demo::DemoTarget;
use horde::stats::{Report, TimelinePoint};
use horde_tests::guests;

fn load_run(target: &DemoTarget, path: &str) -> RunConfig {
    let mut run = RunConfig::new(guests::TEST_LOAD);
    run.cache_dir = Some(std::env::temp_dir().join("horde-load-test-cache"));
    run.host = Some(horde::cli::parse_host_url(&target.url(), "--host").unwrap());
    run.vars.insert("path".into(), path.into());
    run
}

fn stat(report: &Report) -> &horde::stats::NameStats {
    report
        .stats
        .iter()
        .find(|s| s.name == "load")
        .expect("the load requests were recorded")
}

fn closest(timeline: &[TimelinePoint], t: f64) -> &TimelinePoint {
    timeline
        .iter()
        .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
        .expect("the timeline has points")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_delay_is_reported_within_a_millisecond() {
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = load_run(&target, "/slow?ms=20");
    run.users = 4;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    let report = horde::run(&run).await.unwrap().report;
    let latency = &stat(&report).latency_ms;
    assert!(
        (latency.p50 - 20.0).abs() <= 1.0,
        "p50 {} ms for a 20 ms target",
        latency.p50
    );
    assert!(latency.min >= 20.0, "{latency:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_starts_the_scheduled_iterations() {
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = load_run(&target, "/");
    run.rate = Some(100.0);
    run.run_time = Some(Duration::from_secs(5));
    run.max_vus = 20;
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(
        report.iterations + report.dropped_iterations,
        500,
        "{} + {}",
        report.iterations,
        report.dropped_iterations
    );
    assert!(
        (495..=505).contains(&report.iterations),
        "{} iterations for 100/s over 5 s",
        report.iterations
    );
    assert_eq!(stat(&report).count, report.iterations);
    // Open-model latencies come corrected as well.
    assert!(stat(&report).corrected_latency_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_only_and_drops_are_counted() {
    let target = DemoTarget::start(false).await.unwrap();
    // The whole target stalls for 1 s, 2.5 s after it started.
    let mut run = load_run(&target, "/stall?at=2500&ms=1000");
    run.rate = Some(100.0);
    run.run_time = Some(Duration::from_secs(5));
    run.max_vus = 2;
    run.pre_vus = Some(2);
    run.max_queue_time = Duration::from_millis(500);
    let report = horde::run(&run).await.unwrap().report;
    let load = stat(&report);
    let corrected = load.corrected_latency_ms.as_ref().unwrap();
    // Two VUs saw the stall; dozens of iterations waited for them.
    assert!(
        load.latency_ms.p99 < 100.0,
        "uncorrected p99 {} ms",
        load.latency_ms.p99
    );
    assert!(corrected.p99 > 300.0, "corrected p99 {} ms", corrected.p99);
    assert!(
        load.latency_ms.max > 500.0,
        "the stalled requests themselves: {:?}",
        load.latency_ms
    );
    assert!(report.dropped_iterations > 0, "no iteration was dropped");
    assert_eq!(report.iterations + report.dropped_iterations, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stages_reach_their_targets() {
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = load_run(&target, "/");
    run.vars.insert("wait_ms".into(), "20".into());
    let args = [
        "horde",
        "run",
        guests::TEST_LOAD,
        "--stages",
        "2s:4,2s:4,2s:1",
    ];
    let raw = horde::cli::parse_run_args(args).unwrap();
    let parsed = RunConfig::from_args(&raw).unwrap();
    run.stages = parsed.stages.clone();
    let report = horde::run(&run).await.unwrap().report;
    let timeline = &report.timeline;
    assert!(
        (3..=4).contains(&closest(timeline, 2.0).users),
        "{timeline:?}"
    );
    for point in timeline.iter().filter(|p| p.t > 2.4 && p.t < 4.0) {
        assert_eq!(point.users, 4, "{timeline:?}");
    }
    assert!(closest(timeline, 5.0).users <= 3, "{timeline:?}");
    assert!(closest(timeline, 6.0).users <= 2, "{timeline:?}");
    assert!(timeline.iter().all(|p| p.users <= 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_stages_ramp_the_arrival_rate() {
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = load_run(&target, "/");
    // Ramp 0 -> 100/s over 2 s, then hold 100/s for 2 s: 100 + 200 arrivals.
    run.vars.insert(
        "options".into(),
        "stages=2s:100/s,2s:100/s;max-vus=20".into(),
    );
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.iterations + report.dropped_iterations, 300);
    let timeline = &report.timeline;
    let second = |t: f64| closest(timeline, t).iterations;
    assert!(
        (15..=35).contains(&second(1.0)),
        "first second of the ramp: {timeline:?}"
    );
    assert!((85..=115).contains(&second(3.0)), "held rate: {timeline:?}");
    assert!((85..=115).contains(&second(4.0)), "held rate: {timeline:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_defaults_yield_to_flags_and_custom_metrics_are_reported() {
    let target = DemoTarget::start(false).await.unwrap();
    let options = "users=3;iterations=30;threshold=tasks_done: count>=30";
    // The scenario's defaults alone: 30 iterations, threshold passes.
    let mut run = load_run(&target, "/");
    run.vars.insert("options".into(), options.into());
    run.vars.insert("metrics".into(), "on".into());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.iterations, 30);
    assert_eq!(report.thresholds.len(), 1);
    assert!(report.thresholds[0].passed, "{:?}", report.thresholds);
    assert_eq!(report.metrics.counters["tasks_done"].total, 30.0);
    let last_vu = &report.metrics.gauges["last_vu"];
    assert!(last_vu.min >= 1.0 && last_vu.max <= 3.0, "{last_vu:?}");
    assert_eq!(report.metrics.trends["iteration_seen"].count, 30);
    // A flag wins over the scenario's default: 10 iterations, and the
    // scenario's threshold now fails.
    let host = target.url();
    let var = format!("options={options}");
    let args = [
        "horde",
        "run",
        guests::TEST_LOAD,
        "--host",
        &host,
        "-i",
        "10",
        "--var",
        "path=/",
        "--var",
        "metrics=on",
        "--var",
        &var,
    ];
    let raw = horde::cli::parse_run_args(args).unwrap();
    let mut run = RunConfig::from_args(&raw).unwrap();
    run.cache_dir = Some(std::env::temp_dir().join("horde-load-test-cache"));
    let outcome = horde::run(&run).await.unwrap();
    assert_eq!(outcome.report.iterations, 10);
    assert!(!outcome.report.thresholds[0].passed);
    assert_eq!(outcome.judgement(), horde::Judgement::ThresholdsFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_run_early() {
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = load_run(&target, "/slow?ms=30");
    run.users = 2;
    run.run_time = Some(Duration::from_secs(30));
    run.thresholds.push(
        horde::thresholds::Threshold::parse(
            "http_req_duration: p(95)<10; abortOnFail; delayAbortEval=1s",
        )
        .unwrap(),
    );
    let outcome = horde::run(&run).await.unwrap();
    assert!(
        outcome.report.duration_s < 10.0,
        "ran {} s",
        outcome.report.duration_s
    );
    let reason = outcome.stop_reason.clone().unwrap_or_default();
    assert!(reason.contains("abortOnFail"), "{reason}");
    assert_eq!(outcome.judgement(), horde::Judgement::ThresholdsFailed);
}
