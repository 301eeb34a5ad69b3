//! Groups (`group.enter`/`leave`) and tags (`tags.set`): the data login
//! examples in Rust, Python and JavaScript buy inside a `checkout` group
//! tagged flow=checkout against the demo target; the group's duration, the
//! requests filed under it, the Aggregated total, `--breakdown flow` and
//! thresholds that select the group or a tag are checked for each language.

use std::path::PathBuf;

use horde::caps::data::FeedSpec;
use horde::demo::DemoTarget;
use horde::thresholds::Threshold;
use horde_tests::{config, guests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_times_its_checkout_group_and_files_its_requests_under_it() {
    let users = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/data/users.csv");
    for guest in [guests::RUST_DATA, guests::PYTHON_DATA, guests::JS_DATA] {
        let target = DemoTarget::start(false).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut run = config(guest, &target.url(), dir.path());
        run.feeds = vec![FeedSpec::parse_flag(&format!("users={}", users.display())).unwrap()];
        run.users = 2;
        run.spawn_rate = 100.0;
        run.iterations = Some(40);
        run.breakdown = vec!["flow".into()];
        run.thresholds = [
            "group_duration{group:checkout}: count==40, max<5000",
            "http_reqs{group:checkout}: count==80",
            "http_req_duration{group:checkout}: p(95)<5000",
            "http_reqs: count==120",
            "http_reqs{flow:login}: count==40",
            "http_req_duration{flow:checkout}: count==80",
            "group_duration{flow:checkout}: count==40",
        ]
        .iter()
        .map(|t| Threshold::parse(t).unwrap())
        .collect();
        let outcome = horde::run(&run).await.unwrap();
        let report = &outcome.report;
        assert!(
            report.exceptions.is_empty(),
            "{guest}: {:?}",
            report.exceptions
        );
        let entry = |kind: &str, name: &str| {
            report
                .stats
                .iter()
                .find(|s| s.request_type == kind && s.name == name)
                .map(|s| (s.count, s.failures))
        };
        assert_eq!(entry("group", "checkout"), Some((40, 0)), "{guest}");
        assert_eq!(
            entry("GET", "checkout::/item/[id]"),
            Some((40, 0)),
            "{guest}"
        );
        assert_eq!(entry("POST", "checkout::/cart"), Some((40, 0)), "{guest}");
        assert_eq!(
            entry("POST", "/login"),
            Some((40, 0)),
            "{guest}: outside the group"
        );
        assert_eq!(report.total.count, 120, "{guest}: groups are not requests");
        let group = report
            .stats
            .iter()
            .find(|s| s.request_type == "group")
            .unwrap();
        let cart = report
            .stats
            .iter()
            .find(|s| s.name == "checkout::/cart")
            .unwrap();
        assert!(
            group.latency_ms.max >= cart.latency_ms.min,
            "{guest}: the group lasts at least as long as a request in it"
        );
        assert!(
            report.thresholds.iter().all(|v| v.passed),
            "{guest}: {:?}",
            report.thresholds
        );
        assert_eq!(outcome.exit_code(), 0, "{guest}");
        let flows: Vec<(&str, u64)> = report.breakdown["flow"]
            .iter()
            .map(|v| (v.value.as_str(), v.total.count))
            .collect();
        assert_eq!(flows, [("checkout", 80), ("login", 40)], "{guest}");
    }
}
