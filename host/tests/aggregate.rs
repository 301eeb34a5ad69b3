//! `horde aggregate` through the real binary: two segments of the demo run
//! report live (`--report-to`) and are merged into the whole; an
//! `abortOnFail` threshold that fails on the merged results stops every
//! segment; a segment killed mid-run is noticed when it goes silent, and
//! the aggregate does not pass.

use std::time::{Duration, Instant};

mod common;
use common::{aggregator, demo, horde, json, log, segment, wait};

#[test]
fn two_segments_merge_live_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agg, url) = aggregator(dir.path(), &["--expect", "2", "--json", "whole.json"]);
    let mut a = segment(dir.path(), &url, "1/2", 3, "a.horde");
    let mut b = segment(dir.path(), &url, "2/2", 3, "b.horde");
    assert_eq!(wait(&mut a, Duration::from_secs(30)), 0);
    assert_eq!(wait(&mut b, Duration::from_secs(30)), 0);
    let code = wait(&mut agg, Duration::from_secs(30));
    assert_eq!(code, 0, "{}", log(dir.path()));
    let whole = json(&dir.path().join("whole.json"));
    let merged = whole["merged"].as_array().unwrap();
    assert_eq!(merged.len(), 2);
    assert!(merged.iter().all(|m| m["complete"] == true), "{merged:?}");
    // The live merge equals the merge of the segments' own files.
    let (code, _) = {
        let output = horde()
            .current_dir(dir.path())
            .args(["merge", "a.horde", "b.horde", "--json", "files.json"])
            .output()
            .unwrap();
        (output.status.code(), output)
    };
    assert_eq!(code, Some(0));
    let files = json(&dir.path().join("files.json"));
    for key in ["iterations", "users"] {
        assert_eq!(whole[key], files[key], "{key}");
    }
    assert_eq!(whole["total"]["count"], files["total"]["count"]);
    assert_eq!(whole["total"]["latency_ms"], files["total"]["latency_ms"]);
    assert!(log(dir.path()).contains("req/s"), "a live line each second");
}

#[test]
fn an_abort_on_fail_threshold_on_the_merged_results_stops_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agg, url) = aggregator(
        dir.path(),
        &[
            "--expect",
            "2",
            "--json",
            "whole.json",
            "--threshold",
            "http_reqs: count<40; abortOnFail",
        ],
    );
    let started = Instant::now();
    let mut a = segment(dir.path(), &url, "1/2", 30, "a.horde");
    let mut b = segment(dir.path(), &url, "2/2", 30, "b.horde");
    // Each segment failed the whole run's threshold too: exit code 99.
    assert_eq!(wait(&mut a, Duration::from_secs(25)), 99);
    assert_eq!(wait(&mut b, Duration::from_secs(25)), 99);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the segments stopped early: {:?}",
        started.elapsed()
    );
    assert_eq!(
        wait(&mut agg, Duration::from_secs(30)),
        99,
        "{}",
        log(dir.path())
    );
    let whole = json(&dir.path().join("whole.json"));
    assert!(
        whole["merged"][0]["stop_reason"]
            .as_str()
            .unwrap()
            .contains("stopped by the aggregator"),
        "{}",
        whole["merged"]
    );
}

#[test]
fn a_killed_segment_is_noticed_and_the_aggregate_does_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agg, url) = aggregator(
        dir.path(),
        &["--expect", "2", "--timeout", "2s", "--json", "whole.json"],
    );
    let mut a = segment(dir.path(), &url, "1/2", 5, "a.horde");
    let mut doomed = segment(dir.path(), &url, "2/2", 5, "b.horde");
    // SIGKILL 2.5 s in: no end record, no goodbye.
    std::thread::sleep(Duration::from_millis(2500));
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    assert_eq!(wait(&mut a, Duration::from_secs(30)), 0);
    let code = wait(&mut agg, Duration::from_secs(30));
    let text = log(dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("stopped reporting"), "{text}");
    let whole = json(&dir.path().join("whole.json"));
    let dead = whole["merged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["segment"] == "1/2:1")
        .cloned()
        .unwrap();
    assert_eq!(dead["complete"], false, "{dead}");
}

/// POST `body` to the aggregator at `url` (plain HTTP/1.1), signed with
/// the tests' segment token; the answer's body.
fn post(url: &str, body: &str) -> serde_json::Value {
    let token = horde::segment_token::SegmentToken::new(common::TOKEN, "test").unwrap();
    common::post_raw(url, body, Some(&token.sign(body.as_bytes()))).1
}

#[test]
fn a_record_sent_again_counts_once_and_extra_or_whole_segments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let status = demo(
        dir.path(),
        &["-t", "2s", "--segment", "1/2", "--out", "a.horde"],
    )
    .status()
    .unwrap();
    assert!(status.success());
    let records: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("a.horde"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (mut agg, url) = aggregator(
        dir.path(),
        &["--expect", "1", "--json", "whole.json", "--timeout", "3s"],
    );
    let answer = post(
        &url,
        &serde_json::json!({"id": 0, "seq": 0, "record": records[0]}).to_string(),
    );
    let id = answer["id"].as_u64().unwrap();
    let session = answer["session"].as_str().unwrap().to_string();
    // Every record twice, as a segment whose answers were lost sends them.
    for (seq, record) in records.iter().enumerate().skip(1) {
        for _ in 0..2 {
            let envelope =
                serde_json::json!({"id": id, "seq": seq, "session": session, "record": record});
            post(&url, &envelope.to_string());
        }
    }
    // A second segment beyond --expect 1 is refused, before its load.
    let output = demo(
        dir.path(),
        &["-t", "2s", "--segment", "2/2", "--report-to", &url],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused this segment") && stderr.contains("--expect 1"),
        "{stderr}"
    );
    // Half the run (segment 1/2 alone): merged, and said not to be the whole.
    assert_eq!(
        wait(&mut agg, Duration::from_secs(30)),
        1,
        "{}",
        log(dir.path())
    );
    assert!(log(dir.path()).contains("cover 50%"), "{}", log(dir.path()));
    let whole = json(&dir.path().join("whole.json"));
    let (code, _) = (
        horde()
            .current_dir(dir.path())
            .args(["merge", "a.horde", "--json", "alone.json"])
            .status()
            .unwrap()
            .code(),
        (),
    );
    assert_eq!(code, Some(1), "half the run: not the whole");
    let alone = json(&dir.path().join("alone.json"));
    assert_eq!(
        whole["total"]["count"], alone["total"]["count"],
        "each record once"
    );
    assert_eq!(whole["iterations"], alone["iterations"]);
}
