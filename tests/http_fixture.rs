//! The Rust HTTP example and the HTTP feature guest against the in-process
//! demo target (a real hyper server on 127.0.0.1, port 0).

use std::time::Duration;

use horde::demo::DemoTarget;
use horde::engine::CompileSource;
use horde_tests::{config, guests, self_signed_tls};

fn stat<'a>(
    report: &'a horde::stats::Report,
    kind: &str,
    name: &str,
) -> &'a horde::stats::NameStats {
    report
        .stats
        .iter()
        .find(|s| s.request_type == kind && s.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no stats for {kind} {name}: {:?}",
                report.stats.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_records_every_request_the_server_served() {
    let target = DemoTarget::start(true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let mut run = config(guests::RUST_HTTP, &target.url(), dir.path());
    run.users = 8;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    run.json = Some(json_path.clone());
    let outcome = horde::run(&run).await.unwrap();
    let report = &outcome.report;

    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    assert_eq!(
        stat(report, "POST", "/login").count,
        8,
        "one login per user"
    );
    let items = stat(report, "GET", "/item/[id]").count;
    let index = stat(report, "GET", "/").count;
    let carts = stat(report, "POST", "/cart").count;
    assert!(
        items > index && index > 0 && carts > 0,
        "weights 5:2:1 give {items}:{index}:{carts}"
    );
    // Nothing the server served is missing from the stats, and nothing extra.
    assert_eq!(report.total.count, target.served.counts().0);
    let p = &report.total.latency_ms;
    assert!(
        p.min <= p.p50 && p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max,
        "{p:?}"
    );
    assert!(
        p.min >= 1.0,
        "the target delays every request by at least 1 ms: {p:?}"
    );
    assert_eq!(report.checks[0].name, "item has a body");
    assert_eq!(report.checks[0].passes, items);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["total"]["count"], report.total.count);
    assert_eq!(json["total"]["failures"], 0);
    let entries = json["stats"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for entry in entries {
        for key in ["type", "name", "count", "failures", "rps"] {
            assert!(!entry[key].is_null(), "stats entry lacks {key}: {entry}");
        }
        for key in ["min", "mean", "max", "p50", "p90", "p95", "p99"] {
            assert!(
                entry["latency_ms"][key].is_number(),
                "latency_ms lacks {key}: {entry}"
            );
        }
    }

    // The second run of the same component loads it from the cache.
    run.run_time = Some(Duration::from_millis(300));
    run.json = None;
    assert_eq!(outcome.compile_source, CompileSource::Compiled);
    assert_eq!(
        horde::run(&run).await.unwrap().compile_source,
        CompileSource::Cached
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_iterations_are_exact() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_HTTP, &target.url(), dir.path());
    run.users = 5;
    run.spawn_rate = 100.0;
    run.iterations = Some(50);
    run.run_time = Some(Duration::from_secs(60));
    let outcome = horde::run(&run).await.unwrap();
    // 50 tasks of one request each, plus one login per user.
    assert_eq!(outcome.report.total.count, 55);
    assert_eq!(outcome.stop_reason.as_deref(), Some("50 iterations done"));
}

async fn run_features(http2: bool) -> horde::stats::Report {
    let target = DemoTarget::start(false).await.unwrap();
    let report = run_features_against(&target, http2, false).await;
    let (total, h2) = target.served.counts();
    assert_eq!(h2, if http2 { total } else { 0 }, "HTTP/2 requests served");
    report
}

async fn run_features_against(
    target: &DemoTarget,
    http2: bool,
    insecure: bool,
) -> horde::stats::Report {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_HTTP_FEATURES, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(4);
    run.http2_prior_knowledge = http2;
    run.insecure = insecure;
    run.vars
        .insert("denied".into(), "http://127.0.0.2:9/".into());
    horde::run(&run).await.unwrap().report
}

fn assert_features(report: &horde::stats::Report) {
    assert_eq!(report.checks.len(), 8, "{:?}", report.checks);
    for check in &report.checks {
        assert_eq!(check.fails, 0, "check failed: {check:?}");
        assert_eq!(check.passes, 4, "{check:?}");
    }
    let failure = |name: &str| {
        report
            .errors
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.message.clone())
    };
    assert_eq!(
        failure("/item/missing").as_deref(),
        Some("HTTP 404 Not Found")
    );
    assert_eq!(failure("/item/expected-404"), None);
    assert_eq!(failure("/slow?ms=3000").as_deref(), Some("timeout"));
    let denied = failure("/").expect("the denied request is recorded");
    assert!(
        denied.starts_with("denied:") && denied.contains("--allow-host 127.0.0.2:9"),
        "{denied}"
    );
    // A followed redirect is one event under the original name.
    assert_eq!(stat(report, "GET", "/redirect").count, 8);
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_features_over_http1() {
    assert_features(&run_features(false).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_features_over_h2c_prior_knowledge() {
    assert_features(&run_features(true).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_negotiates_http2_by_alpn() {
    let target = DemoTarget::start_tls(false, self_signed_tls())
        .await
        .unwrap();
    let report = run_features_against(&target, false, true).await;
    assert_features(&report);
    let (total, h2) = target.served.counts();
    assert!(
        total > 0 && h2 == total,
        "{h2} of {total} requests were HTTP/2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_a_tls_failure() {
    let target = DemoTarget::start_tls(false, self_signed_tls())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_HTTP, &target.url(), dir.path());
    run.iterations = Some(3);
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(target.served.counts().0, 0);
    assert!(report.total.failures >= 1, "{:?}", report.errors);
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.message.starts_with("TLS:") && e.message.contains("certificate")),
        "{:?}",
        report.errors
    );
}

/// A loopback server that keeps each request's head and answers with
/// `answer(head)`: the raw response bytes.
async fn recording_server(
    answer: fn(&str) -> Vec<u8>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorder = seen.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).into_owned();
                let response = answer(&head);
                recorder.lock().unwrap().push(head);
                let _ = socket.write_all(&response).await;
            });
        }
    });
    (address, seen, server)
}

/// `--host` with a path: relative request paths go under it (as Locust
/// joins them), with or without a trailing slash, and the JSON says which
/// base URL was used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_resolve_under_the_hosts_path() {
    let (address, seen, server) = recording_server(|_| {
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec()
    })
    .await;
    for host in [
        format!("http://{address}/api"),
        format!("http://{address}/api/"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("report.json");
        let mut run = config(guests::TEST_LOAD, &host, dir.path());
        run.iterations = Some(2);
        run.json = Some(json_path.clone());
        run.vars.insert("path".into(), "/item/1".into());
        let outcome = horde::run(&run).await.unwrap();
        assert_eq!(
            outcome.report.total.failures, 0,
            "{:?}",
            outcome.report.errors
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(json["base_url"], host.as_str());
    }
    server.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for head in seen {
        assert!(head.starts_with("GET /api/item/1 HTTP/1.1\r\n"), "{head}");
    }
}

/// A gzip-coded JSON body reaches the scenario decoded (as with `requests`
/// and `fetch()`), `Accept-Encoding` is sent, and the recorded size is the
/// decoded body's (as Locust records it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coded_bodies_are_decoded() {
    use std::io::Write;

    const JSON: &str = r#"{"items":[1,2,3,4,5,6,7,8,9,10]}"#;
    let (address, seen, server) = recording_server(|_| {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(JSON.as_bytes()).unwrap();
        let body = gzip.finish().unwrap();
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        response
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_LOAD, &format!("http://{address}"), dir.path());
    run.iterations = Some(3);
    run.vars.insert("path".into(), "/items".into());
    run.vars.insert("json".into(), "on".into());
    let outcome = horde::run(&run).await.unwrap();
    server.abort();
    let report = &outcome.report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(report.checks.len(), 1, "{report:?}");
    assert_eq!(report.checks[0].passes, 3, "{:?}", report.checks);
    assert_eq!(report.checks[0].fails, 0);
    assert_eq!(report.total.bytes, 3 * JSON.len() as u64);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|head| head
            .to_ascii_lowercase()
            .contains("accept-encoding: gzip, deflate, br, zstd")),
        "{seen:?}"
    );
}
