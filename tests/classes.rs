//! User classes: the two-class examples in Rust, Python and JavaScript
//! (shoppers with weight 3, one admin with a fixed count) against the demo
//! target, which records every login; the split of users, the per-class
//! results and thresholds, `--user-class`, the open model, and execution
//! segments that deal the classes out as one process would.

use horde::RunOutcome;
use horde::cli::RunConfig;
use horde::demo::DemoTarget;
use horde::schedule::segment::Segment;
use horde::thresholds::Threshold;
use horde_tests::{config, guests};

/// (guest, shopper class, admin class): the names each language gives.
const EXAMPLES: [(&str, &str, &str); 3] = [
    (guests::RUST_CLASSES, "Shopper", "Admin"),
    (guests::PYTHON_CLASSES, "Shopper", "Admin"),
    (guests::JS_CLASSES, "shopper", "admin"),
];

/// Run `guest` against a fresh demo target for `seconds` (closed model,
/// `users` started at once); the outcome and the logins the target saw.
async fn run_classes(
    guest: &str,
    users: u32,
    set: impl FnOnce(&mut RunConfig),
) -> (RunOutcome, Vec<String>) {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guest, &target.url(), dir.path());
    run.users = users;
    run.spawn_rate = 1000.0;
    run.run_time = Some(std::time::Duration::from_secs(2));
    set(&mut run);
    let outcome = horde::run(&run).await.unwrap();
    (outcome, target.served.logins())
}

fn admins(logins: &[String]) -> usize {
    logins.iter().filter(|l| *l == "admin").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_splits_users_by_weight_and_fixed_count() {
    for (guest, shopper, admin) in EXAMPLES {
        let thresholds = [
            format!("http_reqs{{user_class:{admin}}}: count>5"),
            format!("http_req_failed{{user_class:{shopper}}}: rate==0"),
        ];
        let (outcome, logins) = run_classes(guest, 9, |run| {
            run.thresholds = thresholds
                .iter()
                .map(|t| Threshold::parse(t).unwrap())
                .collect();
        })
        .await;
        let report = &outcome.report;
        assert!(
            report.exceptions.is_empty(),
            "{guest}: {:?}",
            report.exceptions
        );
        // 9 users: the admin first (fixed count 1), then 8 shoppers.
        assert_eq!(logins.len(), 9, "{guest}: {logins:?}");
        assert_eq!(admins(&logins), 1, "{guest}: {logins:?}");
        let classes: Vec<(&str, Option<u32>)> = report
            .user_classes
            .iter()
            .map(|c| (c.name.as_str(), c.users))
            .collect();
        assert_eq!(classes, [(shopper, Some(8)), (admin, Some(1))], "{guest}");
        // Results per class: only the admin reads the orders page.
        let per_class = &report.breakdown["user_class"];
        let rows = |class: &str| {
            let value = per_class.iter().find(|v| v.value == class).unwrap();
            let names: Vec<&str> = value.stats.iter().map(|s| s.name.as_str()).collect();
            (value.total.count, names)
        };
        let (admin_requests, admin_names) = rows(admin);
        let (shopper_requests, shopper_names) = rows(shopper);
        assert!(
            admin_names.contains(&"/admin/orders"),
            "{guest}: {admin_names:?}"
        );
        assert!(
            !shopper_names.contains(&"/admin/orders"),
            "{guest}: {shopper_names:?}"
        );
        assert_eq!(
            admin_requests + shopper_requests,
            report.total.count,
            "{guest}"
        );
        assert!(
            report.thresholds.iter().all(|t| t.passed),
            "{guest}: {:?}",
            report.thresholds
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_class_picks_classes_and_names_the_ones_there_are() {
    let (outcome, logins) = run_classes(guests::RUST_CLASSES, 4, |run| {
        run.user_classes = vec!["Shopper".into()];
    })
    .await;
    assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
    assert_eq!((logins.len(), admins(&logins)), (4, 0), "{logins:?}");
    // Only the admin: its fixed count caps the users.
    let (outcome, logins) = run_classes(guests::RUST_CLASSES, 4, |run| {
        run.user_classes = vec!["Admin".into()];
    })
    .await;
    assert_eq!(logins, ["admin"]);
    assert_eq!(outcome.report.user_classes[0].users, Some(1));
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_CLASSES, &target.url(), dir.path());
    run.user_classes = vec!["Guest".into()];
    let error = format!("{:#}", horde::run(&run).await.unwrap_err());
    assert!(error.contains("it declares: Shopper, Admin"), "{error}");
    run.user_classes = vec!["admin".into()];
    let error = format!("{:#}", horde::run(&run).await.unwrap_err());
    assert!(error.contains("did you mean Admin?"), "{error}");
    // A threshold on a class the run does not have would never match.
    run.user_classes = Vec::new();
    run.thresholds = vec![Threshold::parse("http_reqs{user_class:admin}: count>5").unwrap()];
    let error = format!("{:#}", horde::run(&run).await.unwrap_err());
    assert!(error.contains("did you mean Admin?"), "{error}");
    run.thresholds = Vec::new();
    assert!(Threshold::parse("iterations{user_class:Admin}: count>5").is_err());
    // A fixed count means nothing to an arrival rate: refused, with the way out.
    run.user_classes = Vec::new();
    run.rate = Some(50.0);
    run.run_time = Some(std::time::Duration::from_secs(1));
    let error = format!("{:#}", horde::run(&run).await.unwrap_err());
    assert!(
        error.contains("fixed-count") && error.contains("--user-class"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_runs_arrivals_on_vus_of_their_class() {
    let (outcome, logins) = run_classes(guests::RUST_CLASSES, 1, |run| {
        run.user_classes = vec!["Shopper".into()];
        run.rate = Some(50.0);
        run.max_vus = 20;
        run.pre_vus = Some(2);
    })
    .await;
    assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
    let report = &outcome.report;
    assert!(
        (95..=101).contains(&report.iterations),
        "{}",
        report.iterations
    );
    assert_eq!(report.dropped_iterations, 0);
    assert_eq!(admins(&logins), 0);
    assert!(report.user_classes[0].arrival_share == Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_deal_classes_out_as_one_process_does() {
    // Four segments of 12 users, run in one process against one target:
    // one admin in all (in segment 1), 11 shoppers; of 2 users, 1 and 1
    // (the admin's VU 1 is segment 1's whatever the count).
    for (users, shoppers) in [(12, 11), (2, 1)] {
        four_segments_deal(users, shoppers).await;
    }
}

async fn four_segments_deal(users_in_all: u32, shoppers: u32) {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = config(guests::RUST_CLASSES, &target.url(), dir.path());
    whole.users = users_in_all;
    whole.spawn_rate = 1000.0;
    whole.run_time = Some(std::time::Duration::from_secs(2));
    let part = |i: u32| {
        let mut run = whole.clone();
        run.segment = Segment::parse(&format!("{i}/4")).unwrap();
        async move { horde::run(&run).await.unwrap() }
    };
    let (a, b, c, d) = tokio::join!(part(1), part(2), part(3), part(4));
    let mut users = [0u32; 2];
    for outcome in [a, b, c, d] {
        assert!(outcome.clean(), "{:?}", outcome.report.exceptions);
        for (i, class) in outcome.report.user_classes.iter().enumerate() {
            users[i] += class.users.unwrap();
        }
    }
    assert_eq!(users, [shoppers, 1], "{users_in_all} users");
    let logins = target.served.logins();
    assert_eq!(
        (logins.len(), admins(&logins)),
        (users_in_all as usize, 1),
        "{logins:?}"
    );
}
