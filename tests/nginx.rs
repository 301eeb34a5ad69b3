//! The Rust HTTP example against a real nginx on a free loopback port.

use std::time::Duration;

use horde_tests::{Nginx, config, guests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_against_nginx_for_five_seconds() {
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("nginx.json");
    let mut run = config(guests::RUST_HTTP, &nginx.url(), dir.path());
    run.users = 10;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(5));
    run.json = Some(json_path.clone());
    let outcome = horde::run(&run).await.unwrap();
    let report = &outcome.report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    // 10 users, 50-200 ms between tasks, 5 s: hundreds of requests.
    assert!(
        report.total.count > 100,
        "only {} requests",
        report.total.count
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["total"]["count"], report.total.count);
    assert_eq!(json["total"]["failures"], 0);
}
