//! Unit tests of merging: merged percentiles, caps and names equal one process's.
use std::time::Duration;

use crate::output::result_file::{Record, Second};
use crate::stats::{RequestEvent, Stats};

fn event(kind: &str, name: &str, micros: u64, failed: bool) -> RequestEvent<'static> {
    let kind: &'static str = Box::leak(kind.to_string().into_boxed_str());
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    RequestEvent {
        request_type: kind,
        name,
        duration: Duration::from_micros(micros),
        response_length: micros % 977,
        error: failed.then_some("HTTP 500"),
        messages_sent: 0,
        messages_received: 0,
        lag: Some(Duration::from_micros(micros / 3)),
        status: Some(if failed { 500 } else { 200 }),
        tags: &[],
    }
}

/// Samples spread over four "segments" (each its own Stats, ticked
/// into result-file lines that go through JSON) merge into percentiles,
/// counts and corrected latencies equal to one Stats that saw them all.
#[test]
fn merged_percentiles_equal_those_of_one_histogram_fed_every_sample() {
    let whole = Stats::new(1000, 256);
    let parts: Vec<_> = (0..4).map(|_| Stats::new(1000, 256)).collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut lines: Vec<Vec<Second>> = vec![Vec::new(); 4];
    for _second in 0..5 {
        for _ in 0..4000 {
            // A long tail: most fast, some seconds long.
            let micros = if rng.u8(..100) < 95 {
                rng.u64(200..20_000)
            } else {
                rng.u64(20_000..5_000_000)
            };
            let name = ["/a", "/b", "/c"][rng.usize(..3)];
            let e = event("GET", name, micros, rng.u8(..50) == 0);
            whole.record(&e);
            parts[rng.usize(..4)].record(&e);
        }
        for (part, lines) in parts.iter().zip(&mut lines) {
            let text = serde_json::to_string(&Record::Second(Second::of(&part.tick(1)))).unwrap();
            match serde_json::from_str(&text).unwrap() {
                Record::Second(second) => lines.push(second),
                _ => unreachable!(),
            }
        }
    }
    let mut merger = super::Merger::new(1000);
    for (n, _) in lines[0].iter().enumerate() {
        for part in &lines {
            merger.absorb(&part[n].window(&Default::default()).unwrap(), n as u64 + 1);
        }
    }
    let elapsed = Duration::from_secs(5);
    let merged = merger.report(elapsed, 4);
    let one = whole.report_over(4, elapsed);
    assert_eq!(merged.total.count, 20_000);
    assert_eq!(merged.total.latency_ms, one.total.latency_ms);
    assert_eq!(
        merged.total.corrected_latency_ms,
        one.total.corrected_latency_ms
    );
    assert_eq!(merged.stats.len(), one.stats.len());
    for (m, o) in merged.stats.iter().zip(&one.stats) {
        assert_eq!(
            (m.count, m.failures, m.bytes),
            (o.count, o.failures, o.bytes)
        );
        assert_eq!(m.latency_ms, o.latency_ms, "{}", m.name);
        assert_eq!(m.status_codes, o.status_codes);
    }
    assert_eq!(merged.errors.len(), one.errors.len());
}

/// The lines a Stats ticked, through JSON, as `horde merge` reads them.
fn lines_of(stats: &Stats, seconds: &mut Vec<Second>) {
    let text = serde_json::to_string(&Record::Second(Second::of(&stats.tick(1)))).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Record::Second(second) => seconds.push(second),
        _ => unreachable!(),
    }
}

/// A run's report as JSON, without what depends on wall-clock time.
fn comparable(report: &crate::stats::Report) -> serde_json::Value {
    let mut json = serde_json::to_value(report).unwrap();
    let object = json.as_object_mut().unwrap();
    for key in ["timeline", "duration_s", "rps", "started_at"] {
        object.remove(key);
    }
    json
}

/// Past every cap (1,000 names of each kind) and with every kind of
/// name, the merge of a run's own result file is the run's report:
/// the same names kept, the same folded into the overflow rows.
#[test]
fn merging_a_run_s_own_lines_gives_the_run_s_report_past_every_cap() {
    let run = Stats::new(1000, 256);
    let mut seconds = Vec::new();
    for second in 0..3u64 {
        std::thread::scope(|scope| {
            for thread in 0..3u64 {
                let run = &run;
                scope.spawn(move || {
                    for i in 0..700u64 {
                        let n = second * 2100 + thread * 700 + i;
                        let name = format!("/item/{n}");
                        let error = format!("HTTP 500 for item {n}");
                        run.record(&event("GET", &name, 100 + n, n % 3 == 0));
                        let mut failing = event("POST", &name, 100 + n, true);
                        failing.error = Some(Box::leak(error.into_boxed_str()));
                        run.record(&failing);
                        run.record_check(&format!("check {n}"), n % 2 == 0);
                        run.add_counter(&format!("counter {n}"), 1.0);
                        run.set_gauge(&format!("gauge {n}"), n as f64);
                        run.add_trend(&format!("trend {n}"), n as f64);
                        run.record_exception(&format!("exception {n}"));
                    }
                });
            }
        });
        lines_of(&run, &mut seconds);
    }
    let mut merger = super::Merger::new(1000);
    for (n, second) in seconds.iter().enumerate() {
        merger.absorb(&second.window(&Default::default()).unwrap(), n as u64 + 1);
    }
    let elapsed = Duration::from_secs(3);
    let merged = comparable(&merger.report(elapsed, 1));
    let own = comparable(&run.report_over(1, elapsed));
    // Messages of equal counts come in no set order: compare them sorted.
    let sorted = |v: &serde_json::Value| {
        let mut rows: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        rows.sort();
        rows
    };
    for key in ["errors", "exceptions"] {
        let (m, o) = (sorted(&merged[key]), sorted(&own[key]));
        assert_eq!(m.len(), o.len(), "{key}");
        assert!(m == o, "{key}: the merge differs from the run");
    }
    for key in ["stats", "checks", "metrics", "total"] {
        assert!(
            merged[key] == own[key],
            "{key}: the merge differs from the run"
        );
    }
    assert_eq!(merged["checks"].as_array().unwrap().len(), 1001);
    assert!(merged["stats"].as_array().unwrap().len() > 1000);
}

/// Two segments with three passing checks each merge to the three checks,
/// and a threshold on a named check is evaluated on them.
#[test]
fn two_segments_keep_every_check_name() {
    let parts: Vec<_> = (0..2).map(|_| Stats::new(1000, 256)).collect();
    let mut lines: Vec<Vec<Second>> = vec![Vec::new(); 2];
    for (part, lines) in parts.iter().zip(&mut lines) {
        for name in ["status is 200", "has a body", "is fast"] {
            part.record_check(name, true);
        }
        lines_of(part, lines);
    }
    let mut merger = super::Merger::new(1000);
    for part in &lines {
        merger.absorb(&part[0].window(&Default::default()).unwrap(), 1);
    }
    let report = merger.report(Duration::from_secs(1), 2);
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["has a body", "is fast", "status is 200"]);
    let threshold = crate::thresholds::Threshold::parse("checks{check:is fast}: rate==1").unwrap();
    let verdicts = merger.with_aggregate(|a| threshold.evaluate(a, Duration::from_secs(1), (0, 0)));
    assert!(verdicts.iter().all(|v| v.passed), "{verdicts:?}");
}
