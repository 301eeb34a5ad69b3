//! `--prometheus`: a real Prometheus server (Debian package) scrapes a run's
//! `/metrics`, and the values read back through its HTTP API equal the
//! JSON report's; scrapers that never read are capped and dropped, and a
//! scenario's names beyond the report's cap get no series of their own.

use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::third_party::Prometheus;
use horde_tests::{config, free_port, guests};

/// The first sample's value of a PromQL result, as a number.
fn value(result: &serde_json::Value) -> f64 {
    result[0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("no sample in {result}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_run_and_agrees_with_the_json_report() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prometheus = Prometheus::start(&format!("127.0.0.1:{port}"));

    let json_path = dir.path().join("report.json");
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.run_time = Some(Duration::from_secs(4));
    run.users = 2;
    run.spawn_rate = 10.0;
    run.vars.insert("wait_ms".into(), "20".into());
    run.json = Some(json_path.clone());
    run.thresholds
        .push(horde::thresholds::Threshold::parse("http_req_duration: p(95)<10000").unwrap());
    run.outputs.prometheus = Some(format!("127.0.0.1:{port}").parse().unwrap());
    // The run waits (up to 30 s) for Prometheus's scrape of the final values.
    let outcome = horde::run(&run).await.unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();

    // The endpoint is down now: Prometheus marked the series stale, so
    // read the last values over a range.
    let finished = prometheus.query("max_over_time(horde_run_finished[5m])");
    assert_eq!(value(&finished), 1.0, "the final values were scraped");
    let requests = prometheus.query("sum(max_over_time(horde_requests_total[5m]))");
    assert_eq!(value(&requests), report["total"]["count"].as_f64().unwrap());
    for stat in report["stats"].as_array().unwrap() {
        let selector = format!(
            "{{type=\"{}\",name=\"{}\"}}",
            stat["type"].as_str().unwrap(),
            stat["name"].as_str().unwrap()
        );
        let count = prometheus.query(&format!(
            "max_over_time(horde_request_duration_seconds_count{selector}[5m])"
        ));
        assert_eq!(value(&count), stat["count"].as_f64().unwrap(), "{selector}");
        let bytes = prometheus.query(&format!(
            "max_over_time(horde_response_bytes_total{selector}[5m])"
        ));
        assert_eq!(value(&bytes), stat["bytes"].as_f64().unwrap(), "{selector}");
    }
    let iterations = prometheus.query("max_over_time(horde_iterations_total[5m])");
    assert_eq!(value(&iterations), report["iterations"].as_f64().unwrap());
    let passed = prometheus.query("max_over_time(horde_threshold_passed[5m])");
    assert_eq!(value(&passed), 1.0);
    assert_eq!(
        passed[0]["metric"]["threshold"],
        "http_req_duration: p(95)<10000"
    );
    // A latency quantile Prometheus computes from the buckets lies in the
    // report's range.
    let p50 = prometheus.query(
        "histogram_quantile(0.5, sum by (le) (max_over_time(horde_request_duration_seconds_bucket[5m])))",
    );
    let p50_ms = value(&p50) * 1000.0;
    let max_ms = report["total"]["latency_ms"]["max"].as_f64().unwrap();
    assert!(
        p50_ms > 0.0 && p50_ms <= max_ms.max(1.0),
        "p50 {p50_ms} ms, max {max_ms}"
    );
    let info = prometheus.query("max_over_time(horde_run_info[5m])");
    assert_eq!(info[0]["metric"]["host"], format!("{}/", target.url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_refused_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_LOAD, "http://127.0.0.1:9", dir.path());
    run.outputs.prometheus = Some(taken.local_addr().unwrap());
    let error = horde::run(&run).await.unwrap_err();
    assert!(
        error.downcast_ref::<horde::BadInput>().is_some(),
        "{error:#}"
    );
    assert!(format!("{error:#}").contains("--prometheus"), "{error:#}");
}

/// Scrape `/metrics` until the run's final values are there (the run waits
/// for that scrape before it returns); the text.
async fn final_scrape(port: u16) -> String {
    for _ in 0..200 {
        let url = format!("http://127.0.0.1:{port}/metrics");
        let text = tokio::task::spawn_blocking(move || {
            ureq::get(&url)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
        })
        .await
        .unwrap();
        if let Some(text) = text
            && text.lines().any(|line| line == "horde_run_finished 1")
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no final scrape within 50 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapers_that_never_read_are_capped_and_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SCRAPERS: usize = 30;
    const CAP: usize = 6;
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.run_time = Some(Duration::from_secs(6));
    run.users = 2;
    run.spawn_rate = 10.0;
    run.vars.insert("wait_ms".into(), "20".into());
    run.outputs.prometheus = Some(format!("127.0.0.1:{port}").parse().unwrap());
    run.outputs.server_limits = Some(horde::output::serve::ServerLimits {
        connections: CAP,
        header_read: Duration::from_secs(2),
        write: Duration::from_secs(2),
        ..horde::output::serve::ServerLimits::METRICS
    });
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut scrapers = Vec::new();
    for _ in 0..SCRAPERS {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Refused ones may be closed before the request is written.
        let _ = stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        scrapers.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Only now read what each got: an answer (one of the cap) or nothing.
    let mut answered = 0;
    for stream in &mut scrapers {
        let mut first = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut first)).await;
        if let Ok(Ok(n)) = read
            && n > 0
        {
            assert!(first.starts_with(b"HTTP/1.1 200"), "{first:?}");
            answered += 1;
        }
    }
    assert!(
        (1..=CAP).contains(&answered),
        "{answered} of {SCRAPERS} scrapers answered, cap {CAP}"
    );
    // The held ones are dropped after the idle timeout: the next scraper is
    // answered, and the run ends as usual.
    let text = final_scrape(port).await;
    assert!(text.contains("horde_requests_total"), "{text}");
    let outcome = running.await.unwrap().unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);
    assert_eq!(outcome.report.total.failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_beyond_the_reports_cap_are_not_exported() {
    const CAP: usize = 40;
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = config(guests::TEST_HOSTILE, &target.url(), dir.path());
    // Every third VU makes 2,000 new names of each kind an iteration.
    run.vars.insert("mode".into(), "names".into());
    run.users = 6;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    run.stop_timeout = Duration::from_secs(1);
    run.limits.max_event_names = CAP;
    run.outputs.prometheus = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let running = tokio::spawn(async move { horde::run(&run).await });
    let text = final_scrape(port).await;
    let outcome = running.await.unwrap().unwrap();
    let series = |family: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .collect::<Vec<_>>()
    };
    let overflow = format!("\"{}\"", horde::stats::OVERFLOW_NAME);
    for (family, per_name) in [
        ("horde_custom_gauge", 1),
        ("horde_custom_counter_total", 1),
        ("horde_checks_total", 2),
        ("horde_custom_trend", 7),
    ] {
        let lines = series(family);
        assert!(
            lines.len() <= (CAP + 1) * per_name,
            "{family}: {} series, cap {CAP}",
            lines.len()
        );
        assert!(
            lines.iter().any(|l| l.contains(&overflow)),
            "{family} has no overflow series: {lines:?}"
        );
    }
    let gauges = outcome.report.metrics.gauges.len();
    assert!(gauges <= CAP + 1, "the report keeps {gauges} gauges");
}
