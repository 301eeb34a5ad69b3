//! Unit tests of the recorder: shards, drains, resets, caps.
use super::*;

fn event<'a>(name: &'a str, ms: u64, error: Option<&'a str>) -> RequestEvent<'a> {
    RequestEvent {
        request_type: "GET",
        name,
        duration: Duration::from_millis(ms),
        response_length: 10,
        error,
        messages_sent: 0,
        messages_received: 0,
        lag: None,
        status: None,
        tags: &[],
    }
}

#[test]
fn records_across_threads_and_aggregates() {
    let stats = Stats::new(100, 64);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..250u64 {
                    stats.record(&event("/a", 1 + i % 10, None));
                }
                stats.record(&event("/b", 20, Some("HTTP 500")));
            });
        }
    });
    let report = stats.report(4);
    assert_eq!(report.total.count, 1004);
    assert_eq!(report.total.failures, 4);
    let a = report.stats.iter().find(|s| s.name == "/a").unwrap();
    assert_eq!(a.count, 1000);
    assert_eq!(a.bytes, 10_000);
    assert!((a.latency_ms.min - 1.0).abs() < 0.01, "{:?}", a.latency_ms);
    assert!((a.latency_ms.max - 10.0).abs() < 0.02, "{:?}", a.latency_ms);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].count, 4);
    assert_eq!(report.errors[0].message, "HTTP 500");
}

#[test]
fn statuses_are_counted_per_name() {
    let stats = Stats::new(10, 64);
    for status in [200, 200, 404, 200] {
        stats.record(&RequestEvent {
            status: Some(status),
            tags: &[],
            ..event("/a", 1, None)
        });
    }
    stats.record(&event("/a", 1, Some("refused")));
    let report = stats.report(1);
    let a = &report.stats[0];
    assert_eq!(a.status_codes["200"], 3);
    assert_eq!(a.status_codes["404"], 1);
    assert_eq!(a.status_codes.len(), 2);
    assert_eq!(report.total.status_codes["200"], 3);
}

#[test]
fn name_cardinality_is_capped() {
    let stats = Stats::new(3, 64);
    for i in 0..10 {
        stats.record(&event(&format!("/u/{i}"), 1, None));
    }
    let report = stats.report(1);
    assert_eq!(report.stats.len(), 4);
    let overflow = report
        .stats
        .iter()
        .find(|s| s.name == OVERFLOW_NAME)
        .unwrap();
    assert_eq!(overflow.count, 7);
}

#[test]
fn snapshots_drain_incrementally() {
    let stats = Stats::new(10, 64);
    stats.record(&event("/a", 5, None));
    let first = stats.tick(1);
    assert_eq!(first.window.all.count(), 1);
    stats.record(&event("/a", 5, None));
    stats.record(&event("/a", 5, Some("HTTP 500")));
    let second = stats.tick(1);
    assert_eq!(second.window.all.count(), 2);
    assert_eq!(second.window.all.failures, 1);
    assert_eq!(second.totals.requests, 3);
    let key = ("GET".to_string(), "/a".to_string(), "HTTP 500".to_string());
    assert_eq!(second.window.errors[&key], 1);
    // The windows add up to the whole run, exactly.
    let mut folded = first.window.all.clone();
    folded.merge(&second.window.all);
    let report = stats.report(1);
    assert_eq!(folded.count(), report.total.count);
    assert_eq!(
        folded.latency_us.max() as f64 / 1000.0,
        report.total.latency_ms.max
    );
}

#[test]
fn checks_and_exceptions_are_counted() {
    let stats = Stats::new(10, 64);
    stats.record_check("has body", true);
    stats.record_check("has body", false);
    stats.record_exception("boom");
    stats.record_exception("boom");
    let report = stats.report(1);
    assert_eq!(report.checks[0].passes, 1);
    assert_eq!(report.checks[0].fails, 1);
    assert_eq!(report.exceptions[0].count, 2);
}

/// One VU that makes up 1,100 names first takes only its share of the
/// cap: another VU's names are still kept, and a name a threshold
/// selects is kept past the cap.
#[test]
fn one_vu_cannot_push_the_others_names_out() {
    let stats = Stats::new(1000, 256);
    stats.share_names_among(2);
    stats.keep_names(["declared".to_string()]);
    CURRENT_VU.sync_scope(1, || {
        for i in 0..1100 {
            stats.record(&event(&format!("junk-{i}"), 1, None));
        }
    });
    CURRENT_VU.sync_scope(2, || {
        stats.record(&event("honest", 1, None));
        for i in 0..600 {
            stats.record(&event(&format!("other-{i}"), 1, None));
        }
    });
    CURRENT_VU.sync_scope(1, || stats.record(&event("declared", 1, None)));
    let report = stats.report(2);
    let count = |name: &str| {
        report
            .stats
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.count)
    };
    assert_eq!(count("honest"), Some(1));
    assert_eq!(count("declared"), Some(1));
    assert_eq!(count("junk-499"), Some(1));
    assert_eq!(count("junk-500"), None, "VU 1's share is 500 names");
    // VU 2 filled the rest of the cap; the rest of both folded.
    assert_eq!(count(OVERFLOW_NAME), Some(600 + 101));
}

#[test]
fn a_reset_restarts_the_live_view_and_keeps_the_report_whole() {
    let stats = Stats::new(100, 64);
    for _ in 0..10 {
        stats.record(&event("/a", 5, None));
    }
    assert!(!stats.tick(1).reset);
    stats.reset();
    for _ in 0..4 {
        stats.record(&event("/a", 5, None));
    }
    // Recorded before the reset took effect at this drain: in the window
    // and the whole run's figures, not in the live view.
    let tick = stats.tick(1);
    assert!(tick.reset);
    assert_eq!(tick.window.all.count(), 4);
    assert_eq!(tick.totals.requests, 14);
    assert_eq!(
        stats.current_report(Duration::from_secs(2), 1).total.count,
        0
    );
    stats.record(&event("/a", 5, None));
    let tick = stats.tick(1);
    assert!(!tick.reset);
    assert_eq!(
        stats.current_report(Duration::from_secs(3), 1).total.count,
        1
    );
    assert_eq!(stats.report(1).total.count, 15);
}
