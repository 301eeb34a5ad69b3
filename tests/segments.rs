//! Execution segments (`--segment`): four segments of one run, started in
//! one process against one demo target, together run exactly the whole:
//! shared iterations, unique data rows, run-wide VU ids, arrival rates.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use horde::RunOutcome;
use horde::caps::data::FeedSpec;
use horde::cli::RunConfig;
use horde::demo::DemoTarget;
use horde::schedule::segment::Segment;
use horde_tests::{config, guests};

fn users_feed(options: &str) -> FeedSpec {
    let users = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/data/users.csv");
    FeedSpec::parse_flag(&format!("users={}{options}", users.display())).unwrap()
}

/// Run segments 1/4 ... 4/4 of `whole` at once; their outcomes in order.
async fn four_segments(whole: &RunConfig) -> Vec<RunOutcome> {
    let part = |i: u32| {
        let mut run = whole.clone();
        run.segment = Segment::parse(&format!("{i}/4")).unwrap();
        async move { horde::run(&run).await.unwrap() }
    };
    let (a, b, c, d) = tokio::join!(part(1), part(2), part(3), part(4));
    vec![a, b, c, d]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_segments_share_iterations_and_unique_rows_exactly() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = config(guests::RUST_DATA, &target.url(), dir.path());
    whole.feeds = vec![users_feed("")];
    whole.users = 8;
    whole.spawn_rate = 100.0;
    whole.iterations = Some(1000);
    let outcomes = four_segments(&whole).await;
    let iterations: Vec<u64> = outcomes.iter().map(|o| o.report.iterations).collect();
    assert_eq!(iterations, [250, 250, 250, 250]);
    for outcome in &outcomes {
        assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
        assert_eq!(outcome.report.users, 2, "8 users, 2 a segment");
        assert!(outcome.report.segment.is_some());
    }
    let logins = target.served.logins();
    let distinct: HashSet<&String> = logins.iter().collect();
    assert_eq!(
        (logins.len(), distinct.len()),
        (1000, 1000),
        "each row once in all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vu_ids_are_run_wide_across_segments() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = config(guests::RUST_DATA, &target.url(), dir.path());
    whole.feeds = vec![users_feed(";strategy=per-vu")];
    whole.users = 8;
    whole.spawn_rate = 100.0;
    whole.run_time = Some(Duration::from_secs(1));
    four_segments(&whole).await;
    let logins: HashSet<String> = target.served.logins().into_iter().collect();
    let expected: HashSet<String> = (1..=8).map(|i| format!("user{i:04}")).collect();
    assert_eq!(logins, expected, "VU k of the whole run logs in as row k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rates_split_within_one_percent() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = config(guests::RUST_DATA, &target.url(), dir.path());
    whole.feeds = vec![users_feed(";strategy=sequential")];
    whole.rate = Some(200.0);
    whole.run_time = Some(Duration::from_secs(3));
    whole.max_vus = 40;
    let outcomes = four_segments(&whole).await;
    let started: u64 = outcomes.iter().map(|o| o.report.iterations).sum();
    let dropped: u64 = outcomes.iter().map(|o| o.report.dropped_iterations).sum();
    assert!(
        (594..=606).contains(&(started + dropped)),
        "600 arrivals in all, got {started} started and {dropped} dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_holds_the_load_until_its_moment() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_DATA, &target.url(), dir.path());
    run.feeds = vec![users_feed("")];
    run.iterations = Some(5);
    let start = std::time::SystemTime::now() + Duration::from_secs(2);
    run.start_at = Some(start);
    let outcome = horde::run(&run).await.unwrap();
    assert!(std::time::SystemTime::now() >= start, "the run waited");
    assert_eq!(outcome.report.iterations, 5);
    assert!(
        outcome.report.duration_s < 1.5,
        "the wait is not part of the load: {} s",
        outcome.report.duration_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_segments_merged_equal_one_process() {
    // The same load twice against one target: once whole, once as four
    // segments with result files, merged by `horde merge`'s code.
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = config(guests::RUST_DATA, &target.url(), dir.path());
    whole.feeds = vec![users_feed(";strategy=sequential")];
    whole.users = 8;
    whole.spawn_rate = 100.0;
    whole.iterations = Some(1000);
    let one = horde::run(&whole).await.unwrap();
    let mut parts = Vec::new();
    for i in 1..=4 {
        parts.push(dir.path().join(format!("part-{i}.horde")));
    }
    let part = |i: usize| {
        let mut run = whole.clone();
        run.segment = Segment::parse(&format!("{i}/4")).unwrap();
        run.outputs.out = Some(parts[i - 1].clone());
        async move { horde::run(&run).await.unwrap() }
    };
    let (a, b, c, d) = tokio::join!(part(1), part(2), part(3), part(4));
    assert!([a, b, c, d].iter().all(|o| o.clean()));
    let merged = horde::merge::merge(&horde::merge::MergeRequest {
        files: parts,
        ..Default::default()
    })
    .unwrap();
    assert!(merged.partial.is_none(), "{:?}", merged.partial);
    assert_eq!(merged.exit_code(), 0);
    let counts = |report: &horde::stats::Report| -> Vec<(String, String, u64)> {
        report
            .stats
            .iter()
            .map(|s| (s.request_type.clone(), s.name.clone(), s.count))
            .collect()
    };
    assert_eq!(merged.report.iterations, 1000);
    assert_eq!(one.report.iterations, 1000);
    assert_eq!(counts(&merged.report), counts(&one.report));
    assert_eq!(merged.report.total.count, one.report.total.count);
    assert_eq!(merged.report.users, 8);
    assert_eq!(merged.report.merged.len(), 4);
}
