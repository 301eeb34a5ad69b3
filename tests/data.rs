//! Data feeds (`--data`): the login example against the demo target, which
//! records every username it logs in, under each strategy; the sandbox
//! keeps the file itself out of reach; bad files fail before the start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use horde::caps::data::FeedSpec;
use horde::demo::DemoTarget;
use horde::{Judgement, RunOutcome};
use horde_tests::{config, guests};

/// guest-examples/data/users.csv: user0001 ... user1000.
fn users_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/data/users.csv")
}

fn feed(options: &str) -> FeedSpec {
    FeedSpec::parse_flag(&format!("users={}{options}", users_csv().display())).unwrap()
}

/// Run the login example with `feed`; returns the outcome and the logins
/// the server saw, in order.
async fn run_logins(
    feed: FeedSpec,
    set: impl FnOnce(&mut horde::cli::RunConfig),
) -> (RunOutcome, Vec<String>) {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_DATA, &target.url(), dir.path());
    run.feeds = vec![feed];
    set(&mut run);
    let outcome = horde::run(&run).await.unwrap();
    (outcome, target.served.logins())
}

fn tally(logins: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for login in logins {
        *counts.entry(login.as_str()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_rows_are_each_used_exactly_once() {
    let (outcome, logins) = run_logins(feed(""), |run| {
        run.users = 10;
        run.spawn_rate = 100.0;
        run.iterations = Some(1000);
    })
    .await;
    assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
    let counts = tally(&logins);
    assert_eq!(logins.len(), 1000);
    assert_eq!(counts.len(), 1000, "every row once");
    assert!(counts.contains_key("user0001") && counts.contains_key("user1000"));
    let data = &outcome.report.data[0];
    assert_eq!((data.rows, data.handed_out), (1000, 1000));
    assert_eq!(
        data.strategy.label(),
        "unique",
        "the scenario's declared strategy"
    );
    assert_eq!(data.sha256.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_under_an_arrival_rate_stops_the_run_when_rows_run_out() {
    // 500/s for 10 s would be 5,000 arrivals; 1,000 rows stop it at ~2 s.
    let (outcome, logins) = run_logins(feed(""), |run| {
        run.rate = Some(500.0);
        run.run_time = Some(Duration::from_secs(10));
        run.max_vus = 50;
    })
    .await;
    let counts = tally(&logins);
    assert_eq!(logins.len(), 1000, "each handed-out row logged in");
    assert_eq!(counts.len(), 1000);
    let reason = outcome.stop_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("data feed users ran out of rows"),
        "{reason}"
    );
    assert!(
        outcome.report.duration_s < 8.0,
        "{}",
        outcome.report.duration_s
    );
    assert!(
        outcome.report.exceptions.is_empty(),
        "{:?}",
        outcome.report.exceptions
    );
    assert_eq!(outcome.judgement(), Judgement::Passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_over_three_thousand_iterations_uses_each_row_three_times() {
    let (outcome, logins) = run_logins(feed(";strategy=sequential"), |run| {
        run.users = 10;
        run.spawn_rate = 100.0;
        run.iterations = Some(3000);
    })
    .await;
    assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
    let counts = tally(&logins);
    assert_eq!(counts.len(), 1000);
    assert!(counts.values().all(|n| *n == 3), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_vu_gives_vu_k_row_k_and_stops_vus_past_the_end() {
    let (outcome, logins) = run_logins(feed(";strategy=per-vu"), |run| {
        run.users = 5;
        run.spawn_rate = 100.0;
        run.run_time = Some(Duration::from_secs(1));
    })
    .await;
    assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
    let counts = tally(&logins);
    let mut users: Vec<&str> = counts.keys().copied().collect();
    users.sort_unstable();
    assert_eq!(
        users,
        ["user0001", "user0002", "user0003", "user0004", "user0005"]
    );

    // Three rows for five VUs: VUs 4 and 5 stop at their first row, uncounted.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.csv");
    std::fs::write(&file, "username,password,item\nann,a,1\nbob,b,2\ncid,c,3\n").unwrap();
    let three = FeedSpec::parse_flag(&format!(
        "users={};strategy=per-vu;on-end=stop-vu",
        file.display()
    ))
    .unwrap();
    let (outcome, logins) = run_logins(three, |run| {
        run.users = 5;
        run.spawn_rate = 100.0;
        run.run_time = Some(Duration::from_secs(2));
    })
    .await;
    assert!(
        outcome.report.exceptions.is_empty(),
        "{:?}",
        outcome.report.exceptions
    );
    let mut users: Vec<&str> = tally(&logins).keys().copied().collect();
    users.sort_unstable();
    assert_eq!(users, ["ann", "bob", "cid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_random_sequence() {
    let random = |seed: u64| async move {
        run_logins(feed(";strategy=random"), |run| {
            run.iterations = Some(40);
            run.seed = Some(seed);
        })
        .await
    };
    let (first, once) = random(42).await;
    let (_, again) = random(42).await;
    let (_, other) = random(43).await;
    assert_eq!(once.len(), 40);
    assert_eq!(once, again, "same seed, same rows in the same order");
    assert_ne!(once, other);
    assert!(tally(&once).len() > 30, "random, not sequential: {once:?}");
    assert_eq!(first.report.data[0].seed, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_fail_before_the_start_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.csv");
    std::fs::write(&file, "username,password,item\nann,a,1\nbob,b\ncid,c,3\n").unwrap();
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = config(guests::RUST_DATA, &target.url(), dir.path());
    run.iterations = Some(1);
    run.feeds = vec![FeedSpec::parse_flag(&format!("users={}", file.display())).unwrap()];
    let error = horde::run(&run).await.unwrap_err();
    assert!(error.downcast_ref::<horde::BadInput>().is_some());
    let message = format!("{error:#}");
    assert!(
        message.contains("broken.csv") && message.contains("line 3"),
        "{message}"
    );

    // Options that cannot apply are refused, not ignored.
    let lines = dir.path().join("rows.jsonl");
    std::fs::write(&lines, "{\"username\":\"ann\"}\n").unwrap();
    for (options, says) in [
        (";header=false", "apply to CSV"),
        (";strategy=random;on-end=fail", "never runs out"),
    ] {
        let text = format!("users={}{options}", lines.display());
        run.feeds = vec![FeedSpec::parse_flag(&text).unwrap()];
        let error = format!("{:#}", horde::run(&run).await.unwrap_err());
        assert!(error.contains(says), "{options}: {error}");
    }
    let twice = FeedSpec::parse_flag("users=u.csv;strategy=unique;strategy=random");
    assert!(twice.unwrap_err().to_string().contains("given twice"));

    // The scenario declares the feed: running without it says which flag to add.
    run.feeds.clear();
    let error = format!("{:#}", horde::run(&run).await.unwrap_err());
    assert!(error.contains("--data users=FILE"), "{error}");
    assert_eq!(target.served.counts().0, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_huge_and_endless_files_are_refused_before_the_start() {
    let dir = tempfile::tempdir().unwrap();
    // 1 GiB that takes no disk: its size alone refuses it.
    let sparse = dir.path().join("sparse.csv");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let fifo = dir.path().join("pipe.csv");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = config(guests::RUST_DATA, &target.url(), dir.path());
    run.iterations = Some(1);
    for (file, says) in [
        (
            sparse,
            "sparse.csv is 1.0 GiB (1073741824 bytes), larger than 256 MiB",
        ),
        ("/dev/zero".into(), "/dev/zero is a character device"),
        // No writer: the open must not wait for one.
        (fifo, "pipe.csv is a FIFO (named pipe)"),
    ] {
        let text = format!("users={};format=csv", file.display());
        run.feeds = vec![FeedSpec::parse_flag(&text).unwrap()];
        let error = horde::run(&run).await.unwrap_err();
        assert!(error.downcast_ref::<horde::BadInput>().is_some());
        let message = format!("{error:#}");
        assert!(message.contains(says), "{message}");
        assert!(message.contains("256 MiB"), "the limit is named: {message}");
    }
    assert_eq!(target.served.counts().0, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_reads_rows_but_never_the_file() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_HOSTILE, &target.url(), dir.path());
    run.users = 3;
    run.spawn_rate = 100.0;
    run.iterations = Some(12);
    run.feeds = vec![feed("")];
    run.vars.insert("mode".into(), "read-file".into());
    run.vars
        .insert("path".into(), users_csv().display().to_string());
    let outcome = horde::run(&run).await.unwrap();
    let checks = &outcome.report.checks;
    for name in ["file unreadable", "root unlistable", "row through the feed"] {
        let check = checks.iter().find(|c| c.name == name).expect(name);
        assert!(check.passes > 0 && check.fails == 0, "{name}: {check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_read_unique_rows_the_same_way() {
    for guest in [guests::PYTHON_DATA, guests::JS_DATA] {
        let target = DemoTarget::start(false).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut run = config(guest, &target.url(), dir.path());
        run.feeds = vec![feed("")];
        run.users = 4;
        run.spawn_rate = 100.0;
        // More iterations than rows: the feed stops the run at row 1,000.
        run.iterations = Some(1500);
        let outcome = horde::run(&run).await.unwrap();
        assert!(
            outcome.report.exceptions.is_empty(),
            "{guest}: {:?}",
            outcome.report.exceptions
        );
        assert_eq!(
            outcome.report.total.failures, 0,
            "{guest}: {:?}",
            outcome.report.errors
        );
        let logins = target.served.logins();
        assert_eq!(logins.len(), 1000, "{guest}");
        assert_eq!(tally(&logins).len(), 1000, "{guest}: each row once");
        let reason = outcome.stop_reason.unwrap_or_default();
        assert!(reason.contains("ran out of rows"), "{guest}: {reason}");
    }
}
