//! What the tests that drive the `horde` binary share: the binary with a
//! cache of their own, waiting on a child with a limit, reading a JSON report.

#![allow(dead_code)] // each test file uses its own share

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The segment token the tests' aggregators and segments share.
pub const TOKEN: &str = "horde-test-segment-token-0123456789";

/// The `horde` binary under test, its compiled-component cache in `/tmp`,
/// with the tests' segment token in `HORDE_TOKEN`.
pub fn horde() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_horde"));
    command
        .env(
            "HORDE_CACHE_DIR",
            std::env::temp_dir().join("horde-binary-test-cache"),
        )
        .env("HORDE_TOKEN", TOKEN);
    command
}

/// `horde demo -q -u 4` with `args` in `dir`, for segments of the demo run.
pub fn demo(dir: &Path, args: &[&str]) -> Command {
    let mut command = horde();
    command
        .current_dir(dir)
        .args(["demo", "-q", "-u", "4"])
        .args(args);
    command
}

/// Wait for `child` at most `limit` (killing it then); its exit code.
pub fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// POST `body` to `url`'s `/segments` (plain HTTP/1.1) with `signature`
/// in `X-Horde-Signature` when given; the status and the answer's JSON.
pub fn post_raw(url: &str, body: &str, signature: Option<&str>) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let signed = signature.map_or(String::new(), |s| format!("X-Horde-Signature: {s}\r\n"));
    write!(
        stream,
        "POST /segments HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         {signed}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// Start `horde aggregate` with `args`; the child and the URL it prints.
/// Its stderr is copied to `dir/aggregate.log`.
pub fn aggregator(dir: &Path, args: &[&str]) -> (Child, String) {
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
        // The aggregator closed its stderr: the log is whole.
        let _ = std::fs::write(log.with_extension("done"), "");
    });
    let url = url_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the aggregator prints its URL");
    (child, url)
}

/// `horde demo` reporting to `url` as `segment`, for `seconds`.
pub fn segment(dir: &Path, url: &str, segment: &str, seconds: u32, out: &str) -> Child {
    demo(dir, &["-r", "100"])
        .args(["-t", &format!("{seconds}s"), "--segment", segment])
        .args(["--report-to", url, "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a segment")
}

/// The aggregator's stderr so far; once it has exited, all of it (waiting
/// up to 5 s for the copying thread to read its last lines).
pub fn log(dir: &Path) -> String {
    let start = Instant::now();
    while !dir.join("aggregate.done").exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(dir.join("aggregate.log")).unwrap_or_default()
}
