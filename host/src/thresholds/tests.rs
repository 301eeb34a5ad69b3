//! Unit tests of threshold parsing and evaluation.
use super::*;
use crate::stats::{RequestEvent, Stats};

/// A successful, untagged event of `ms` milliseconds.
fn event<'a>(kind: &'a str, name: &'a str, ms: u64) -> RequestEvent<'a> {
    RequestEvent {
        request_type: kind,
        name,
        duration: Duration::from_millis(ms),
        response_length: 0,
        error: None,
        messages_sent: 0,
        messages_received: 0,
        lag: None,
        status: None,
        tags: &[],
    }
}

#[test]
fn k6_syntax_parses() {
    let t = Threshold::parse(
        "http_req_duration{name:/login}: p(95)<200, avg<=100; abortOnFail; delayAbortEval=10s",
    )
    .unwrap();
    assert_eq!(t.selector.name.as_deref(), Some("/login"));
    assert_eq!(t.conditions.len(), 2);
    assert_eq!(t.conditions[0].aggregation, Aggregation::Percentile(95.0));
    assert!(t.abort_on_fail);
    assert_eq!(t.delay_abort_eval, Duration::from_secs(10));
    assert!(Threshold::parse("checks: rate>0.99").is_ok());
    assert!(Threshold::parse("my_trend: p(99.9)<5").is_ok());
}

#[test]
fn bad_thresholds_are_explained() {
    for bad in [
        "http_req_duration p(95)<200",
        "http_req_duration: p(95)",
        "http_req_duration: p(101)<1",
        "http_req_duration: rate<1",
        "http_req_failed: p(95)<1",
        "http_req_duration{flow:a,kind:b}: avg<1",
        "http_req_duration: avg<1; abortOnFial",
        ": avg<1",
    ] {
        let err = Threshold::parse(bad).unwrap_err();
        assert!(err.contains("invalid threshold"), "{bad}: {err}");
    }
}

#[test]
fn evaluation_uses_selectors_and_aggregations() {
    let stats = Stats::new(100, 64);
    for _ in 0..90 {
        stats.record(&event("GET", "/fast", 10));
    }
    for _ in 0..10 {
        stats.record(&RequestEvent {
            error: Some("HTTP 500"),
            ..event("GET", "/slow", 500)
        });
    }
    stats.record(&event("redis", "GET", 1000));
    stats.add_counter("orders", 5.0);
    stats.record_check("ok", true);
    stats.drain();
    let verdicts = |line: &str| {
        let t = Threshold::parse(line).unwrap();
        stats.with_aggregate(|a| t.evaluate(a, Duration::from_secs(10), (100, 3)))
    };
    assert!(verdicts("http_req_duration: p(50)<20")[0].passed);
    assert!(!verdicts("http_req_duration: p(95)<20")[0].passed);
    assert!(verdicts("http_req_duration{name:/fast}: max<11")[0].passed);
    assert_eq!(
        verdicts("http_req_duration: max<2000")[0]
            .actual
            .map(|v| v.round()),
        Some(500.0)
    );
    assert_eq!(
        verdicts("req_duration: max<2000")[0]
            .actual
            .map(|v| v.round()),
        Some(1000.0)
    );
    assert_eq!(verdicts("http_req_failed: rate<0.2")[0].actual, Some(0.1));
    assert_eq!(verdicts("http_reqs: rate>9")[0].actual, Some(10.0));
    assert_eq!(verdicts("orders: count==5")[0].actual, Some(5.0));
    assert_eq!(verdicts("checks: rate==1")[0].actual, Some(1.0));
    assert_eq!(verdicts("dropped_iterations: count<1")[0].actual, Some(3.0));
    let missing = &verdicts("never_reported: count>0")[0];
    assert!(missing.actual.is_none() && !missing.passed);
}

#[test]
fn groups_are_selected_by_path_and_kept_out_of_request_metrics() {
    let stats = Stats::new(100, 64);
    stats.record(&event("GET", "/", 10));
    stats.record(&event("POST", "checkout::/login", 20));
    stats.record(&event("POST", "checkout::pay::/card", 40));
    stats.record(&event("POST", "checkouts::/x", 80));
    stats.record(&event(GROUP_TYPE, "checkout::pay", 45));
    stats.record(&event(GROUP_TYPE, "checkout", 70));
    stats.drain();
    let actual = |line: &str| {
        let t = Threshold::parse(line).unwrap();
        stats.with_aggregate(|a| t.evaluate(a, Duration::from_secs(1), (1, 0)))[0]
            .actual
            .map(f64::round)
    };
    assert_eq!(
        actual("http_reqs: count>0"),
        Some(4.0),
        "groups are not requests"
    );
    assert_eq!(actual("reqs{group:checkout}: count>0"), Some(2.0));
    assert_eq!(
        actual("http_req_duration{group:::checkout}: max<1"),
        Some(40.0)
    );
    assert_eq!(actual("group_duration{group:checkout}: max<1"), Some(70.0));
    assert_eq!(actual("group_duration: count>0"), Some(2.0));
    assert_eq!(
        actual("group_duration{group:checkout::pay}: avg<1"),
        Some(45.0)
    );
    let report = stats.report(1);
    assert_eq!(
        report.total.count, 4,
        "the Aggregated row counts requests only"
    );
    assert_eq!(report.stats.len(), 6, "group rows are listed");
}

#[test]
fn a_tag_selects_its_events_and_breaks_the_report_down() {
    let stats = Stats::new(100, 64);
    let threshold = Threshold::parse("http_req_duration{flow:checkout}: max<30").unwrap();
    assert_eq!(threshold.tag_key(), Some("flow"));
    stats.track_tags(vec!["flow".into()]);
    let checkout = vec![("flow".to_string(), "checkout".to_string())];
    let browse = vec![
        ("flow".to_string(), "browse".to_string()),
        ("other".to_string(), "x".to_string()),
    ];
    stats.record(&RequestEvent {
        tags: &checkout,
        ..event("GET", "/cart", 20)
    });
    stats.record(&RequestEvent {
        tags: &checkout,
        ..event("GET", "/pay", 25)
    });
    stats.record(&RequestEvent {
        tags: &browse,
        ..event("GET", "/", 90)
    });
    stats.record(&event("GET", "/", 5));
    stats.drain();
    let verdict = stats.with_aggregate(|a| threshold.evaluate(a, Duration::from_secs(1), (1, 0)));
    assert_eq!(verdict[0].actual.map(f64::round), Some(25.0));
    assert!(
        verdict[0].passed,
        "the 90 ms browse request is not selected"
    );
    let report = stats.report(1);
    let flow = &report.breakdown["flow"];
    let values: Vec<(&str, u64)> = flow
        .iter()
        .map(|v| (v.value.as_str(), v.total.count))
        .collect();
    assert_eq!(values, [("browse", 1), ("checkout", 2)]);
    assert!(!report.breakdown.contains_key("other"), "only tracked keys");
    assert_eq!(report.total.count, 4);
}
