//! Scenarios in Python and JavaScript: the same HTTP scenario in Rust, Python
//! and JS against the same fixture; a `fetch()`-based library recorded
//! through wasi:http, with keep-alive and grants; the SDKs' semantics.

use std::collections::BTreeMap;

use horde::demo::DemoTarget;
use horde::policy::Grant;
use horde::stats::Report;
use horde_tests::{PythonServer, config, guests};

const USERS: u32 = 4;
const ITERATIONS: u64 = 800;

/// (type, name) → count.
fn counts(report: &Report) -> BTreeMap<(String, String), u64> {
    report
        .stats
        .iter()
        .map(|s| ((s.request_type.clone(), s.name.clone()), s.count))
        .collect()
}

fn count(report: &Report, kind: &str, name: &str) -> u64 {
    counts(report)
        .get(&(kind.to_string(), name.to_string()))
        .copied()
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", counts(report)))
}

/// Run a shopper build (log in, then 5:2:1 item/index/cart tasks) for an
/// exact number of iterations without waits, and check what it recorded.
async fn run_shopper(guest: &str) -> (Report, DemoTarget) {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guest, &target.url(), dir.path());
    run.users = USERS;
    run.spawn_rate = 1000.0;
    run.iterations = Some(ITERATIONS);
    run.vars.insert("wait".into(), "none".into());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.total.failures, 0, "{guest}: {:?}", report.errors);
    assert!(
        report.exceptions.is_empty(),
        "{guest}: {:?}",
        report.exceptions
    );
    let names: Vec<(String, String)> = counts(&report).into_keys().collect();
    let expected: Vec<(String, String)> = [
        ("GET", "/"),
        ("GET", "/item/[id]"),
        ("POST", "/cart"),
        ("POST", "/login"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(names, expected, "{guest}");
    // One login per VU started (a fast guest may finish before the last starts).
    let logins = count(&report, "POST", "/login");
    assert!(
        (1..=u64::from(USERS)).contains(&logins),
        "{guest}: {logins} logins"
    );
    let items = count(&report, "GET", "/item/[id]");
    let index = count(&report, "GET", "/");
    let carts = count(&report, "POST", "/cart");
    assert_eq!(
        items + index + carts,
        ITERATIONS,
        "{guest}: one request per task"
    );
    // Weights 5:2:1: each count within five standard deviations of its share.
    for (seen, weight, what) in [
        (items, 5.0, "item views"),
        (index, 2.0, "index views"),
        (carts, 1.0, "carts"),
    ] {
        let p = weight / 8.0;
        let n = ITERATIONS as f64;
        let spread = 5.0 * (n * p * (1.0 - p)).sqrt();
        assert!(
            (seen as f64 - n * p).abs() <= spread,
            "{guest}: {seen} {what}, expected {} ± {spread:.0}",
            n * p
        );
    }
    assert_eq!(report.checks.len(), 1, "{guest}: {:?}", report.checks);
    assert_eq!(report.checks[0].name, "item has a body");
    assert_eq!(
        (report.checks[0].passes, report.checks[0].fails),
        (items, 0)
    );
    // Every request the server served is in the stats, and nothing else.
    assert_eq!(target.served.counts().0, report.total.count, "{guest}");
    (report, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_python_and_js_shoppers_record_the_same_requests() {
    for guest in [guests::RUST_HTTP, guests::PYTHON_HTTP, guests::JS_HTTP] {
        run_shopper(guest).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_library_is_recorded_through_wasi_http_on_kept_alive_connections() {
    let (report, target) = run_shopper(guests::JS_FETCH).await;
    // Over 800 requests from 4 VUs: each VU keeps its connection open.
    let connections = target.served.connections();
    assert!(
        connections <= u64::from(USERS) * 2,
        "{connections} connections for {} requests: the pool does not keep them alive",
        report.total.count
    );
    let latency = &report.total.latency_ms;
    assert!(latency.min > 0.0 && latency.max < 10_000.0, "{latency:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_to_a_host_not_granted_is_denied_and_recorded() {
    let target = DemoTarget::start(false).await.unwrap();
    let elsewhere = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::JS_FETCH, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(4);
    run.run_time = Some(std::time::Duration::from_secs(5));
    run.vars.insert("api".into(), elsewhere.url());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(elsewhere.served.counts().0, 0, "a denied host was reached");
    assert_eq!(target.served.counts().0, 0);
    let login = &report.errors[0];
    assert_eq!(
        (login.request_type.as_str(), login.name.as_str()),
        ("POST", "/login")
    );
    let grant = format!("--allow-host {}", elsewhere.addr);
    assert!(login.message.contains(&grant), "{login:?}");
    // The library's error reaches the scenario as a failed on_start.
    assert!(!report.exceptions.is_empty(), "{:?}", report.exceptions);

    // Granted, the same run reaches it.
    run.allow_hosts
        .push(Grant::parse(&elsewhere.addr.to_string()).unwrap());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(elsewhere.served.counts().0, report.total.count);
}

/// What both SDK test guests must have recorded.
fn assert_sdk_semantics(report: &Report, exception: &str) {
    let checks: BTreeMap<&str, (u64, u64)> = report
        .checks
        .iter()
        .map(|c| (c.name.as_str(), (c.passes, c.fails)))
        .collect();
    for name in [
        "status is 200",
        "json id is 7",
        "content type header",
        "base url is the host",
        "404 seen",
        "denied is status 0 with an error",
    ] {
        let (passes, fails) = checks
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no check {name}: {checks:?}"));
        assert!(
            passes > 0 && fails == 0,
            "{name}: {passes} passed, {fails} failed"
        );
    }
    assert!(
        report
            .exceptions
            .iter()
            .any(|e| e.message.contains(exception)),
        "{exception} not in {:?}",
        report.exceptions
    );
    let denied = report
        .errors
        .iter()
        .find(|e| e.name == "denied")
        .expect("denied request recorded");
    assert!(
        denied.message.contains("--allow-host 127.0.0.1:9"),
        "{denied:?}"
    );
    assert_eq!(count(report, "GET", "expected 404"), checks["404 seen"].0);
    let orders = report
        .metrics
        .counters
        .get("orders")
        .expect("orders counter");
    assert_eq!(orders.total, 2.0 * checks["status is 200"].0 as f64);
    // Each VU's first random draw differs: the build snapshot did not fix the seed.
    let draws: Vec<&str> = report
        .stats
        .iter()
        .filter(|s| s.request_type == "random")
        .map(|s| s.name.split(' ').nth(1).unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = draws.iter().collect();
    assert!(
        draws.len() >= 2 && distinct.len() == draws.len(),
        "{draws:?}"
    );
    // The scenario's own defaults (users, iterations, threshold) applied.
    assert_eq!(report.iterations, 60);
    assert_eq!(report.thresholds.len(), 1, "{:?}", report.thresholds);
}

async fn run_sdk_guest(guest: &str, extra: &[(&str, String)], grants: &[String]) -> Report {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = horde::cli::RunConfig::new(guest);
    run.cache_dir = Some(dir.path().to_path_buf());
    run.host = Some(horde::cli::parse_host_url(&target.url(), "--host").unwrap());
    run.vars
        .insert("expected_base".into(), format!("{}/", target.url()));
    for (key, value) in extra {
        run.vars.insert(key.to_string(), value.clone());
    }
    for grant in grants {
        run.allow_hosts.push(Grant::parse(grant).unwrap());
    }
    run.proto =
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/hello_test.proto"));
    horde::run(&run).await.unwrap().report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_semantics() {
    let xmlrpc = PythonServer::start("xmlrpc_server.py");
    let grpc = PythonServer::start("grpc_hello_server.py");
    let authority = |url: String| url.trim_start_matches("http://").to_string();
    let report = run_sdk_guest(
        guests::TEST_PYTHON_SDK,
        &[("xmlrpc", xmlrpc.url()), ("grpc", grpc.url())],
        &[authority(xmlrpc.url()), authority(grpc.url())],
    )
    .await;
    assert_sdk_semantics(&report, "task raises: KeyError: 'missing' (app.py:");
    for name in [
        "fault raised",
        "string fault code raised",
        "grpc json reply",
        "grpc bytes reply",
        "grpc status raised",
    ] {
        let check = report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {:?}", report.checks));
        assert!(check.passes > 0 && check.fails == 0, "{check:?}");
    }
    let fail = report
        .errors
        .iter()
        .find(|e| e.name == "/hello.HelloService/Fail")
        .expect("the failed gRPC call is recorded");
    assert_eq!(fail.message, "NOT_FOUND: no such greeting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_semantics() {
    let report = run_sdk_guest(guests::TEST_JS_SDK, &[], &[]).await;
    assert_sdk_semantics(&report, "task throws: Error: thrown on purpose");
    assert!(
        report.exceptions.iter().any(|e| e
            .message
            .contains("task rejects: TypeError: rejected on purpose")),
        "an async task's rejection is its error: {:?}",
        report.exceptions
    );
}

/// Run one case of the JS protocol guest (2 iterations) and check that all
/// its checks passed and nothing raised.
async fn js_protocol_case(
    case: &str,
    host: &str,
    setup: impl FnOnce(&mut horde::cli::RunConfig),
) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_JS_PROTOCOLS, host, dir.path());
    run.iterations = Some(2);
    run.vars.insert("case".into(), case.into());
    setup(&mut run);
    let report = horde::run(&run).await.unwrap().report;
    assert!(
        report.exceptions.is_empty(),
        "{case}: {:?}",
        report.exceptions
    );
    assert!(!report.checks.is_empty(), "{case}: no checks ran");
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (2, 0), "{case}: {check:?}");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_xmlrpc_and_grpc_modules_and_fetch_with_a_relative_url() {
    let xmlrpc = PythonServer::start("xmlrpc_server.py");
    let report = js_protocol_case("xmlrpc", &xmlrpc.url(), |_| {}).await;
    assert_eq!(count(&report, "xmlrpc", "get_random_number"), 2);
    assert_eq!(count(&report, "xmlrpc", "echo"), 2);

    let grpc = PythonServer::start("grpc_hello_server.py");
    let report = js_protocol_case("grpc", &grpc.url(), |run| {
        run.proto =
            Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/hello_test.proto"));
    })
    .await;
    assert_eq!(count(&report, "grpc", "/hello.HelloService/SayHello"), 4);
    assert_eq!(count(&report, "grpc", "/hello.HelloService/Chat"), 2);
    let failures: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(failures, ["NOT_FOUND: no such greeting"]);

    let target = DemoTarget::start(false).await.unwrap();
    let report = js_protocol_case("relative_fetch", &target.url(), |_| {}).await;
    assert_eq!(count(&report, "GET", "/item/1"), 2);

    // A gRPC call made with plain fetch() (gRPC-web style framing over h2c):
    // fetch() cannot send `te: trailers`, the host adds it for gRPC.
    let report = js_protocol_case("grpc_fetch", &grpc.url(), |run| {
        run.http2_prior_knowledge = true
    })
    .await;
    assert_eq!(count(&report, "POST", "/hello.HelloService/SayHello"), 2);
}
