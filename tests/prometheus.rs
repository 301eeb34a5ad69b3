//! `--prometheus`: a real Prometheus server (Debian package) scrapes a run's
//! `/metrics`, and the values read back through its HTTP API equal the
//! JSON report's.

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
