//! What strangers and crafted input cannot do, through the real binary: a
//! process without the run's segment token can neither register with an
//! aggregator, nor send a second or an end for a segment, nor stop one;
//! whoever answers at `--report-to` without the token neither stops a
//! segment nor floods its memory; and a crafted result file (a histogram
//! declaring a 4 GiB payload, 100,000 names in one second, more failures
//! than requests, a negative duration, users past what a process holds)
//! is refused line by line while the rest of the run is merged.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod common;
use common::{TOKEN, aggregator, demo, horde, json, log, post_raw, wait};

use horde::segment_token::SegmentToken;

/// The records of the result file `dir/name`, as JSON values.
fn records(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn strangers_cannot_register_forge_seconds_close_or_stop_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    // A real run's records, for the stranger to replay and inflate.
    let code = demo(dir.path(), &["-t", "2s", "--out", "old.horde"])
        .status()
        .unwrap()
        .code();
    assert_eq!(code, Some(0));
    let old = records(dir.path(), "old.horde");
    let (mut agg, url) = aggregator(
        dir.path(),
        &["--expect", "1", "--timeout", "5s", "--json", "whole.json"],
    );
    let header = serde_json::json!({"id": 0, "seq": 0, "record": old[0]}).to_string();
    let wrong = SegmentToken::new("not-the-run-s-token-at-all", "test").unwrap();
    for signature in [
        None,
        Some(wrong.sign(header.as_bytes())),
        Some("00".repeat(32)),
    ] {
        let (status, answer) = post_raw(&url, &header, signature.as_deref());
        assert_eq!(status, 401, "{answer}");
        assert!(answer["id"].is_null(), "{answer}");
    }
    // The real segment registers and runs.
    let mut real = demo(
        dir.path(),
        &["-t", "3s", "--report-to", &url, "--out", "real.horde"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // A forged end and forged seconds for segment 1: refused, unsigned or
    // signed with the token but without the segment's session key.
    let token = SegmentToken::new(TOKEN, "test").unwrap();
    let mut forged = old[1].clone();
    forged["users"] = serde_json::json!(4_000_000_000u64);
    for record in [old.last().unwrap().clone(), old[1].clone()] {
        let body = serde_json::json!({"id": 1, "seq": 1, "record": record}).to_string();
        assert_eq!(post_raw(&url, &body, None).0, 401);
        let (status, answer) = post_raw(&url, &body, Some(&token.sign(body.as_bytes())));
        assert_eq!(status, 409, "{answer}");
        assert!(
            answer["refused"].as_str().unwrap().contains("session key"),
            "{answer}"
        );
    }
    assert_eq!(wait(&mut real, Duration::from_secs(30)), 0);
    let code = wait(&mut agg, Duration::from_secs(30));
    let text = log(dir.path());
    assert_eq!(code, 0, "the real segment alone passes: {text}");
    assert!(
        text.contains("refused"),
        "the strangers are counted: {text}"
    );
    // The aggregate is the real segment's, with nothing of the stranger's.
    let (code, _) = (
        horde()
            .current_dir(dir.path())
            .args(["merge", "real.horde", "--json", "real.json"])
            .status()
            .unwrap()
            .code(),
        (),
    );
    assert_eq!(code, Some(0));
    let (whole, own) = (
        json(&dir.path().join("whole.json")),
        json(&dir.path().join("real.json")),
    );
    assert_eq!(whole["total"]["count"], own["total"]["count"]);
    assert_eq!(whole["users"], own["users"]);
}

/// Answer every request with an unsigned `abort` of `body_len` bytes
/// (announced as ten times longer), until the test ends.
fn impostor(body_len: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = stream.read(&mut buffer);
                let mut body = br#"{"abort":"forged threshold","refused":null}"#.to_vec();
                body.resize(body_len.max(body.len()), b' ');
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len() * 10
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{address}/")
}

#[test]
fn whoever_answers_at_report_to_without_the_token_neither_stops_nor_floods_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    for body_len in [0, 8 << 20] {
        let url = impostor(body_len);
        let output = demo(
            dir.path(),
            &["-t", "2s", "--report-to", &url, "--json", "r.json"],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "not stopped: {stderr}");
        assert!(
            stderr.contains("not signed") || stderr.contains("longer than"),
            "{stderr}"
        );
        let report = json(&dir.path().join("r.json"));
        assert!(report["total"]["count"].as_u64().unwrap() > 0);
    }
    // Without the token, neither side starts.
    let output = horde()
        .env_remove("HORDE_TOKEN")
        .args(["aggregate", "--listen", "127.0.0.1:0", "--expect", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HORDE_TOKEN"));
}

/// A base64 HDR V2 histogram whose header declares a 4 GiB payload.
fn histogram_claiming_4_gib() -> String {
    use base64::Engine as _;
    let mut bytes = 0x1c84_9313u32.to_be_bytes().to_vec();
    bytes.extend(u32::MAX.to_be_bytes());
    bytes.extend(0u32.to_be_bytes());
    bytes.extend(3u32.to_be_bytes());
    bytes.extend(1u64.to_be_bytes());
    bytes.extend(2048u64.to_be_bytes());
    bytes.extend(1f64.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_crafted_result_file_is_refused_line_by_line_and_the_rest_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let code = demo(dir.path(), &["-t", "5s", "--out", "a.horde"])
        .status()
        .unwrap()
        .code();
    assert_eq!(code, Some(0));
    let (code, _) = (
        horde()
            .current_dir(dir.path())
            .args(["merge", "a.horde", "--json", "a.json"])
            .status()
            .unwrap()
            .code(),
        (),
    );
    assert_eq!(code, Some(0));
    let original = json(&dir.path().join("a.json"));
    let per_second: Vec<u64> = original["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .collect();
    let mut lines = records(dir.path(), "a.horde");
    assert!(lines.len() >= 7, "header, 5+ seconds, end");
    // Line 2: a histogram that declares a 4 GiB payload.
    lines[1]["entries"][0]["latency_us"] = serde_json::json!(histogram_claiming_4_gib());
    // Line 3: 100,000 names in one second.
    let entry = lines[2]["entries"][0].clone();
    lines[2]["entries"] = serde_json::Value::Array(
        (0..100_000)
            .map(|i| {
                let mut e = entry.clone();
                e["name"] = serde_json::json!(format!("/made-up/{i}"));
                e
            })
            .collect(),
    );
    // Line 4: more failures than requests.
    lines[3]["entries"][0]["failures"] = serde_json::json!(u64::MAX / 2);
    // Line 5: not JSON at all.
    let damaged = 4;
    // The end: a negative duration and users past any process.
    let last = lines.len() - 1;
    lines[last]["duration_s"] = serde_json::json!(-5.0);
    lines[last]["users"] = serde_json::json!(u32::MAX);
    let text: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == damaged {
                "{\"record\":\"second\", cut".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(dir.path().join("crafted.horde"), text.join("\n") + "\n").unwrap();
    let output = horde()
        .current_dir(dir.path())
        .args(["merge", "crafted.horde", "--json", "crafted.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Not the whole run (refused lines, no believable end): exit 1, and a
    // report of the rest.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for what in [
        "declares a payload",
        "100000 requests",
        "failures of",
        "line 5",
        "duration",
    ] {
        assert!(stderr.contains(what), "{what}: {stderr}");
    }
    let crafted = json(&dir.path().join("crafted.json"));
    let kept: u64 = per_second
        .iter()
        .enumerate()
        .filter(|(i, _)| !(0..4).contains(i))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(crafted["total"]["count"].as_u64(), Some(kept), "{stderr}");
}

/// A certificate for `localhost` signed by a CA of its own: (CA PEM,
/// certificate PEM, key PEM).
fn localhost_certificate() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn segments_report_over_tls_and_check_the_aggregator_s_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = localhost_certificate();
    let (other_ca, _, _) = localhost_certificate();
    for (name, pem) in [
        ("ca.pem", &ca),
        ("cert.pem", &cert),
        ("key.pem", &key),
        ("other.pem", &other_ca),
    ] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let (mut agg, printed) = aggregator(
        dir.path(),
        &[
            "--expect",
            "1",
            "--json",
            "whole.json",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ],
    );
    assert!(printed.starts_with("https://HOST:"), "{printed}");
    let port = printed
        .trim_start_matches("https://HOST:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let url = format!("https://localhost:{port}/");
    // A segment that trusts another CA does not talk to this aggregator.
    let output = demo(
        dir.path(),
        &["-t", "1s", "--report-to", &url, "--report-ca", "other.pem"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cannot reach the aggregator"), "{stderr}");
    // One that trusts the aggregator's CA reports to it.
    let output = demo(
        dir.path(),
        &[
            "-t",
            "2s",
            "--report-to",
            &url,
            "--report-ca",
            "ca.pem",
            "--json",
            "own.json",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        wait(&mut agg, Duration::from_secs(30)),
        0,
        "{}",
        log(dir.path())
    );
    let (whole, own) = (
        json(&dir.path().join("whole.json")),
        json(&dir.path().join("own.json")),
    );
    assert_eq!(whole["total"]["count"], own["total"]["count"]);
}

#[test]
fn a_header_sent_again_gets_its_id_back_and_another_run_s_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let code = demo(dir.path(), &["-t", "1s", "--out", "a.horde"])
        .status()
        .unwrap()
        .code();
    assert_eq!(code, Some(0));
    let old = records(dir.path(), "a.horde");
    let (mut agg, url) = aggregator(dir.path(), &["--expect", "1", "--timeout", "3s"]);
    let token = SegmentToken::new(TOKEN, "test").unwrap();
    let send = |record: &serde_json::Value| {
        let body = serde_json::json!({"id": 0, "seq": 0, "record": record}).to_string();
        post_raw(&url, &body, Some(&token.sign(body.as_bytes())))
    };
    // A header of a run that started an hour ago: not this run's.
    let mut stale = old[0].clone();
    stale["started_at"] = serde_json::json!("2026-01-01T00:00:00Z");
    let (status, answer) = send(&stale);
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["refused"]
            .as_str()
            .unwrap()
            .contains("not this run's"),
        "{answer}"
    );
    // The same header twice (the first answer lost): one segment, one id.
    let mut fresh = old[0].clone();
    fresh["started_at"] =
        serde_json::json!(humantime::format_rfc3339(std::time::SystemTime::now()).to_string());
    let (first, again) = (send(&fresh).1, send(&fresh).1);
    assert_eq!(first["id"], 1, "{first}");
    assert_eq!(
        (&again["id"], &again["session"]),
        (&first["id"], &first["session"])
    );
    let _ = agg.kill();
    let _ = agg.wait();
}
