//! Python's own networking and unchanged third-party client libraries in
//! the sandbox (`guest-examples/test-python-libraries`, which imports
//! `requests` at module level): each against a real server on loopback,
//! each recorded as the request events a Locust user would expect.

use std::collections::BTreeMap;

use horde::demo::DemoTarget;
use horde::policy::Grant;
use horde::stats::Report;
use horde_tests::third_party::{Mosquitto, Postgres};
use horde_tests::{PythonServer, RedisServer, config, guests};

const ITERATIONS: u64 = 4;

/// Run one case of the guest: 2 VUs, 4 iterations, `--host` = `host`.
async fn run_case(
    case: &str,
    host: &str,
    vars: &[(&str, String)],
    setup: impl FnOnce(&mut horde::cli::RunConfig),
) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_PYTHON_LIBRARIES, host, dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(ITERATIONS);
    run.run_time = Some(std::time::Duration::from_secs(60));
    run.vars.insert("case".into(), case.into());
    for (key, value) in vars {
        run.vars.insert((*key).into(), value.clone());
    }
    setup(&mut run);
    horde::run(&run).await.unwrap().report
}

/// (type, name) → (count, failures).
fn events(report: &Report) -> BTreeMap<(String, String), (u64, u64)> {
    report
        .stats
        .iter()
        .map(|s| {
            (
                (s.request_type.clone(), s.name.clone()),
                (s.count, s.failures),
            )
        })
        .collect()
}

fn key(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

/// Every check passed once per iteration, and no task raised.
fn all_checks_pass(report: &Report, expected: &[&str]) {
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    let mut names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    let mut wanted = expected.to_vec();
    wanted.sort();
    assert_eq!(names, wanted);
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (ITERATIONS, 0), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_goes_through_the_host_and_is_recorded() {
    let target = DemoTarget::start(false).await.unwrap();
    let report = run_case(
        "requests",
        &target.url(),
        &[("target", target.url())],
        |_| {},
    )
    .await;
    all_checks_pass(
        &report,
        &[
            "requests json",
            "requests session post",
            "requests response type",
            "requests HTTPError",
            "client is a requests.Session",
        ],
    );
    let seen = events(&report);
    assert_eq!(seen[&key("GET", "/item/1")], (ITERATIONS, 0), "{seen:?}");
    // Locust's rename_request groups both requests of the block.
    assert_eq!(
        seen[&key("GET", "/item/[id]")],
        (2 * ITERATIONS, 0),
        "{seen:?}"
    );
    assert_eq!(seen[&key("POST", "/login")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(
        seen[&key("GET", "/item/0")],
        (ITERATIONS, ITERATIONS),
        "a 404 is a failure: {seen:?}"
    );
    // Every request the target served was recorded, and nothing else.
    assert_eq!(target.served.counts().0, report.total.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_requests_connection_error() {
    let target = DemoTarget::start(false).await.unwrap();
    let closed = format!("127.0.0.1:{}", horde_tests::free_port());
    let report = run_case(
        "refused",
        &target.url(),
        &[("refused", format!("http://{closed}/x"))],
        |run| {
            run.allow_hosts.push(Grant::parse(&closed).unwrap());
        },
    )
    .await;
    all_checks_pass(
        &report,
        &[
            "requests refused raises ConnectionError",
            "urllib refused raises URLError",
        ],
    );
    assert_eq!(
        events(&report)[&key("GET", "/x")],
        (2 * ITERATIONS, 2 * ITERATIONS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_requests_and_urllib_is_the_hosts_tls() {
    let target = DemoTarget::start_tls(false, horde_tests::self_signed_tls())
        .await
        .unwrap();
    let report = run_case("https", &target.url(), &[("target", target.url())], |run| {
        run.insecure = true
    })
    .await;
    all_checks_pass(&report, &["https through requests", "https through urllib"]);
    let seen = events(&report);
    assert_eq!(seen[&key("GET", "/item/4")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(seen[&key("GET", "/item/5")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(target.served.counts().0, 2 * ITERATIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urllib_and_http_client_go_through_the_host() {
    let target = DemoTarget::start(false).await.unwrap();
    let report = run_case("stdlib", &target.url(), &[("target", target.url())], |_| {}).await;
    all_checks_pass(
        &report,
        &[
            "urllib json",
            "urllib HTTPError",
            "http.client status",
            "http.client reuse",
        ],
    );
    let seen = events(&report);
    for name in ["/item/2", "/item/3"] {
        assert_eq!(seen[&key("GET", name)], (ITERATIONS, 0), "{seen:?}");
    }
    assert_eq!(seen[&key("POST", "/cart")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(target.served.counts().0, report.total.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_sockets_resolve_granted_names_with_requests_imported() {
    let target = DemoTarget::start(false).await.unwrap();
    let port = target.addr.port();
    // `--host http://localhost:PORT`: the guest resolves `localhost` itself.
    let report = run_case(
        "raw_socket",
        &format!("http://localhost:{port}"),
        &[("port", port.to_string()), ("address", "localhost".into())],
        |_| {},
    )
    .await;
    all_checks_pass(&report, &["raw socket reply"]);
    assert_eq!(events(&report)[&key("tcp", "raw GET")], (ITERATIONS, 0));
    assert_eq!(target.served.counts().0, ITERATIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_not_granted_is_refused_with_the_flag_that_grants_it() {
    let target = DemoTarget::start(false).await.unwrap();
    let report = run_case("denied_lookup", &target.url(), &[], |_| {}).await;
    all_checks_pass(&report, &["denied lookup names the flag"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmlrpc_client_server_proxy_with_horde_timed_records_like_locust() {
    let server = PythonServer::start("xmlrpc_server.py");
    let report = run_case(
        "xmlrpc",
        &server.url(),
        &[("xmlrpc", format!("{}/RPC2", server.url()))],
        |_| {},
    )
    .await;
    all_checks_pass(&report, &["xmlrpc value", "xmlrpc fault"]);
    let seen = events(&report);
    // The timed call is one `xmlrpc` event; its HTTP request is not recorded again.
    assert_eq!(
        seen[&key("xmlrpc", "get_random_number")],
        (ITERATIONS, 0),
        "{seen:?}"
    );
    // The untimed call is recorded by the SDK as `xmlrpc` named by the
    // method (not as its HTTP POST); its fault is a failure.
    assert_eq!(
        seen[&key("xmlrpc", "fail")],
        (ITERATIONS, ITERATIONS),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_runs_unchanged_against_redis_server() {
    let redis = RedisServer::start();
    let report = run_case(
        "redis",
        &format!("http://localhost:{}", redis.port),
        &[("port", redis.port.to_string())],
        |_| {},
    )
    .await;
    all_checks_pass(&report, &["redis value"]);
    let seen = events(&report);
    assert_eq!(seen[&key("redis", "SET")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(seen[&key("redis", "GET")], (ITERATIONS, 0), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_mqtt_runs_unchanged_against_mosquitto() {
    let broker = Mosquitto::start();
    let report = run_case(
        "mqtt",
        &format!("http://localhost:{}", broker.port),
        &[("port", broker.port.to_string())],
        |_| {},
    )
    .await;
    all_checks_pass(&report, &["mqtt round trip"]);
    let seen = events(&report);
    assert_eq!(seen[&key("mqtt", "connect")], (ITERATIONS, 0), "{seen:?}");
    assert_eq!(
        seen[&key("mqtt", "publish and receive")],
        (ITERATIONS, 0),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg8000_runs_unchanged_against_postgresql() {
    let database = Postgres::start();
    let report = run_case(
        "postgres",
        &format!("http://localhost:{}", database.port),
        &[("port", database.port.to_string())],
        |_| {},
    )
    .await;
    all_checks_pass(&report, &["postgres rows"]);
    let seen = events(&report);
    assert_eq!(
        seen[&key("postgres", "connect")],
        (ITERATIONS, 0),
        "{seen:?}"
    );
    assert_eq!(
        seen[&key("postgres", "SELECT")],
        (ITERATIONS, 0),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locusts_xmlrpc_example_ports_with_only_its_import_changed() {
    let server = PythonServer::start("xmlrpc_server.py");
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::PYTHON_XMLRPC_LOCUST, &server.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(40);
    let report = horde::run(&run).await.unwrap().report;
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    let seen = events(&report);
    // As in Locust: one `xmlrpc` event per call, fired by the wrapper; the
    // SDK's own record of the same call and the HTTP POST are not added.
    let names: Vec<_> = seen.keys().cloned().collect();
    assert_eq!(
        names,
        vec![
            key("xmlrpc", "get_random_number"),
            key("xmlrpc", "get_time")
        ]
    );
    let calls: u64 = seen.values().map(|(count, _)| count).sum();
    assert_eq!(calls, 40);
    assert_eq!(report.total.failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_sdk_handed_self_client_is_recorded_like_locust() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::PYTHON_REQUESTS_SDK, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(60);
    let report = horde::run(&run).await.unwrap().report;
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    for check in &report.checks {
        assert_eq!(check.fails, 0, "{check:?}");
    }
    let checks: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert!(
        checks.contains(&"client is a requests.Session"),
        "{checks:?}"
    );
    let seen = events(&report);
    assert_eq!(
        seen[&key("POST", "/login")],
        (2, 0),
        "one login per VU: {seen:?}"
    );
    let missing = report
        .checks
        .iter()
        .find(|c| c.name == "a 404 raises the SDK's error")
        .unwrap();
    assert_eq!(
        seen[&key("GET", "/item/0")],
        (missing.passes, missing.passes),
        "{seen:?}"
    );
    // Every request the SDK made reached the target once and was recorded once.
    assert_eq!(target.served.counts().0, report.total.count);
    assert_eq!(report.total.count, 2 + 60);
}
