//! HTTP at the edges, in the Rust, Python and JS paths, against the
//! behaviours server (`tests/behaviours.rs`): content codings decoded as
//! `requests` and `fetch()` decode them, bodies over the kept-body limit
//! refused with the flag that raises it, discarded bodies of any size
//! counted, a keep-alive connection closed under a request resent when that
//! is safe (as browsers do), an advertised keep-alive timeout honoured, and
//! header bytes outside ASCII kept (ISO-8859-1, as `http.client` reads them).

use horde::stats::Report;
use horde_tests::behaviours::BehavioursServer;
use horde_tests::{config, guests};

const MIB: u64 = 1 << 20;

/// Run the Rust test-load guest: one VU, `iterations`, run variables `vars`.
async fn run_load(
    server: &BehavioursServer,
    iterations: u64,
    vars: &[(&str, &str)],
    setup: impl FnOnce(&mut horde::cli::RunConfig),
) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_LOAD, &server.url(), dir.path());
    run.iterations = Some(iterations);
    for (key, value) in vars {
        run.vars.insert((*key).into(), (*value).into());
    }
    setup(&mut run);
    horde::run(&run).await.unwrap().report
}

fn stat<'a>(report: &'a Report, name: &str) -> &'a horde::stats::NameStats {
    report
        .stats
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no event named {name}: {:?}", report.stats))
}

/// Every check in the report passed `times` times, and nothing raised.
fn checks_pass(report: &Report, times: u64) {
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    assert!(!report.checks.is_empty(), "no checks ran");
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (times, 0), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_kept_within_the_limit_or_discarded() {
    let server = BehavioursServer::start().await;
    // Over the old fixed 16 MiB, under the 32 MiB default.
    let kept = run_load(&server, 2, &[("path", "/bytes?mb=20")], |_| {}).await;
    assert_eq!(kept.total.failures, 0, "{:?}", kept.errors);
    assert_eq!(kept.total.bytes, 2 * 20 * MIB);

    let limited = run_load(&server, 2, &[("path", "/bytes?mb=20")], |run| {
        run.limits.max_body_bytes = 8 << 20;
    })
    .await;
    assert_eq!(limited.total.failures, 2);
    assert!(
        limited.errors[0]
            .message
            .starts_with("too large: response body over 8388608 bytes")
            && limited.errors[0]
                .message
                .contains("--max-response-body 8MiB"),
        "{:?}",
        limited.errors
    );

    // Discarded: counted as it streams, decoded, whatever the limit.
    let discarded = run_load(
        &server,
        2,
        &[("path", "/bytes?mb=80&coding=gzip"), ("discard", "on")],
        |run| run.limits.max_body_bytes = 8 << 20,
    )
    .await;
    assert_eq!(discarded.total.failures, 0, "{:?}", discarded.errors);
    assert_eq!(discarded.total.bytes, 2 * 80 * MIB);
    checks_pass(&discarded, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_a_connection_closed_under_it_is_resent_when_safe() {
    let server = BehavioursServer::start().await;
    let report = run_load(&server, 4, &[("path", "/race")], |_| {}).await;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(report.total.count, 4);
    // Each GET after the first met a connection closed under it, and was
    // answered on a fresh one.
    assert_eq!(server.answered().len(), 4, "{:?}", server.answered());
    assert_eq!(server.unanswered().len(), 3, "{:?}", server.unanswered());
    assert_eq!(server.connections(), 4);

    // A POST is not idempotent: it is not resent (RFC 9110 §9.2.2), and its
    // failure is recorded.
    let server = BehavioursServer::start().await;
    let report = run_load(&server, 2, &[("path", "/race"), ("method", "POST")], |_| {}).await;
    assert_eq!(report.total.count, 2);
    assert_eq!(report.total.failures, 1, "{:?}", report.errors);
    assert_eq!(server.unanswered(), ["POST /race"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_got_part_of_a_response_is_not_resent() {
    let server = BehavioursServer::start().await;
    let report = run_load(&server, 2, &[("path", "/partial")], |_| {}).await;
    assert_eq!(report.total.failures, 1, "{:?}", report.errors);
    assert_eq!(server.unanswered(), ["GET /partial"]);
    assert_eq!(server.answered().len(), 1);
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertised_keep_alive_timeout_is_honoured() {
    // `Keep-Alive: timeout=1`: after 0.9 s idle (within the margin) a new
    // connection is opened; without waits the connection is reused.
    let server = BehavioursServer::start().await;
    let report = run_load(
        &server,
        3,
        &[("path", "/advertised"), ("wait_ms", "900")],
        |_| {},
    )
    .await;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(server.connections(), 3);

    let server = BehavioursServer::start().await;
    let report = run_load(&server, 3, &[("path", "/advertised")], |_| {}).await;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(server.connections(), 1);
}

/// Run the `http_behaviours` case of a Python or JS test guest (2
/// iterations) against `server`; every check passed, nothing failed.
async fn run_case(guest: &str, server: &BehavioursServer) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guest, &server.url(), dir.path());
    run.iterations = Some(2);
    run.vars.insert("case".into(), "http_behaviours".into());
    let report = horde::run(&run).await.unwrap().report;
    checks_pass_at_least(&report, 2);
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert!(!server.unanswered().is_empty());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_and_session_at_the_edges() {
    let server = BehavioursServer::start().await;
    let report = run_case(guests::TEST_PYTHON_LIBRARIES, &server).await;
    assert_eq!(stat(&report, "/coded").count, 8);
    assert_eq!(stat(&report, "/bytes 20 MiB").bytes, 2 * 20 * MIB);
    assert_eq!(stat(&report, "/bytes discarded").bytes, 2 * 80 * MIB);
    assert_eq!(stat(&report, "/race").count, 4);
    // 0xE9 once became U+FFFD, and a value was cut at U+2028.
    for name in [
        "a Latin-1 header byte is kept",
        "a header value is kept whole",
    ] {
        let check = report.checks.iter().find(|c| c.name == name).unwrap();
        assert_eq!((check.passes, check.fails), (4, 0), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_http_and_fetch_at_the_edges() {
    let server = BehavioursServer::start().await;
    let report = run_case(guests::TEST_JS_PROTOCOLS, &server).await;
    assert_eq!(stat(&report, "/coded").count, 8);
    assert_eq!(stat(&report, "/coded fetch").count, 8);
    assert_eq!(stat(&report, "/bytes discarded").bytes, 2 * 80 * MIB);
    assert_eq!(stat(&report, "/bytes streamed").bytes, 2 * 80 * MIB);
    assert_eq!(stat(&report, "/race").count, 4);
    assert_eq!(stat(&report, "/race fetch").count, 4);
    assert_eq!(stat(&report, "/latin1").count, 2);
    for name in [
        "http keeps a Latin-1 header byte",
        "http keeps a header value whole",
    ] {
        assert!(report.checks.iter().any(|c| c.name == name), "{name}");
    }
}

/// Every check passed at least `times` times (checks in loops pass more
/// often), none failed, and nothing raised.
fn checks_pass_at_least(report: &Report, times: u64) {
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    assert!(!report.checks.is_empty(), "no checks ran");
    for check in &report.checks {
        assert!(check.passes >= times && check.fails == 0, "{check:?}");
    }
}
