//! A custom protocol spoken by the guest over a granted socket: the Redis
//! example against a real redis-server, reporting with `metrics.record`.

use std::time::Duration;

use horde::cli::RunConfig;
use horde::demo::DemoTarget;
use horde::policy::Grant;
use horde_tests::{RedisServer, guests};

fn redis_run(address: &str, grant: bool) -> RunConfig {
    let mut run = RunConfig::new(guests::RUST_REDIS);
    run.cache_dir = Some(std::env::temp_dir().join("horde-redis-test-cache"));
    run.users = 4;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(2));
    run.vars.insert("redis".into(), address.into());
    if grant {
        run.allow_hosts.push(Grant::parse(address).unwrap());
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_are_recorded_as_their_own_type() {
    let redis = RedisServer::start();
    let report = horde::run(&redis_run(&redis.address(), true))
        .await
        .unwrap()
        .report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    let names: Vec<(&str, &str)> = report
        .stats
        .iter()
        .map(|s| (s.request_type.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("redis", "GET"), ("redis", "INCR"), ("redis", "SET")]
    );
    assert!(
        report.stats.iter().all(|s| s.count > 10),
        "{:?}",
        report.stats
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_socket_is_denied() {
    let redis = RedisServer::start();
    let report = horde::run(&redis_run(&redis.address(), false))
        .await
        .unwrap()
        .report;
    assert!(report.total.count > 0);
    assert_eq!(
        report.total.failures, report.total.count,
        "every command fails: {:?}",
        report.errors
    );
    for error in &report.errors {
        let message = error.message.to_lowercase();
        assert!(
            message.contains("denied") || message.contains("permission"),
            "{error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_server_response_is_a_failure() {
    // An HTTP server answers RESP commands with an HTTP error page.
    let http = DemoTarget::start(false).await.unwrap();
    let report = horde::run(&redis_run(&http.addr.to_string(), true))
        .await
        .unwrap()
        .report;
    assert!(report.total.count > 0);
    assert_eq!(report.total.failures, report.total.count);
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.message.starts_with("protocol error: unexpected reply")),
        "{:?}",
        report.errors
    );
}
