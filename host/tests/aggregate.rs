//! `horde aggregate` through the real binary: two segments of the demo run
//! report live (`--report-to`) and are merged into the whole; an
//! `abortOnFail` threshold that fails on the merged results stops every
//! segment; a segment killed mid-run is noticed when it goes silent, and
//! the aggregate does not pass.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{demo, horde, json, wait};

/// Start `horde aggregate` with `args`; the child and the URL it prints.
/// Its stderr is copied to `dir/aggregate.log`.
fn aggregator(dir: &Path, args: &[&str]) -> (Child, String) {
    let mut child = horde()
        .current_dir(dir)
        .args(["aggregate", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting horde aggregate");
    let stderr = child.stderr.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let log = dir.join("aggregate.log");
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("--report-to ").nth(1) {
                let _ = url_tx.send(rest.trim().to_string());
            }
            all.push_str(&line);
            all.push('\n');
            let _ = std::fs::write(&log, &all);
        }
    });
    let url = url_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the aggregator prints its URL");
    (child, url)
}

/// `horde demo` reporting to `url` as `segment`, for `seconds`.
fn segment(dir: &Path, url: &str, segment: &str, seconds: u32, out: &str) -> Child {
    demo(dir, &["-r", "100"])
        .args(["-t", &format!("{seconds}s"), "--segment", segment])
        .args(["--report-to", url, "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a segment")
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("aggregate.log")).unwrap_or_default()
}

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

/// POST `body` to the aggregator at `url` (plain HTTP/1.1); the answer's body.
fn post(url: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /segments HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
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
    // Every record twice, as a segment whose answers were lost sends them.
    for (seq, record) in records.iter().enumerate().skip(1) {
        for _ in 0..2 {
            let envelope = serde_json::json!({"id": id, "seq": seq, "record": record});
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
    assert!(log(dir.path()).contains("cover 50%"));
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
