//! `--web`: the live web UI of a running test, driven in a real headless
//! Chromium (tests/browser/check_page.py --live): its updates arrive, the
//! page's users control changes the user count the run reports, Stop ends
//! the run; a UI on another address than loopback needs its token, and a
//! control from another origin is refused. Who may do what: controls need
//! the token on loopback too and stay within what the run was sized for, a
//! reset keeps the report whole; the server drops slow-loris connections
//! and refuses those over its cap without the run's requests failing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::{config, free_port, guests};
use serde_json::Value;

/// The token the tests give their web UIs.
const TOKEN: &str = "a-token-of-enough-length";

/// An agent that returns error statuses as responses.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// [`post`], again while the run is still starting (503; a busy machine
/// loads the scenario slowly), for up to 20 s.
async fn post_running(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    for _ in 0..80 {
        let answer = post(url, token, body);
        if answer.0 != 503 {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the run was still starting after 20 s");
}

/// POST `body` as JSON to `url`; the status and the body of the answer.
fn post(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut request = agent().post(url).header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("X-Horde-Token", token);
    }
    let mut response = request.send(body).unwrap();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_changes_the_users_and_stops_the_run() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let json_path = dir.path().join("report.json");
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 10.0;
    run.run_time = Some(Duration::from_secs(90));
    run.vars.insert("wait_ms".into(), "50".into());
    run.json = Some(json_path.clone());
    run.outputs.web = Some(format!("127.0.0.1:{port}").parse().unwrap());
    run.outputs.web_token = Some(TOKEN.into());
    run.outputs.max_users = Some(10);
    let running = tokio::spawn(async move { horde::run(&run).await });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check_page.py");
    let url = format!("http://127.0.0.1:{port}/?token={TOKEN}");
    let output = tokio::task::spawn_blocking(move || {
        // The server is bound before the scenario loads; give it a moment.
        std::thread::sleep(Duration::from_millis(500));
        Command::new("python3")
            .arg(&script)
            .arg(&url)
            .args(["--live", "5"])
            .output()
            .expect("running python3 (`cargo xtask test` installs selenium and chromium)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "check_page.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page: Value = serde_json::from_slice(&output.stdout).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the Stop button ended the run")
        .unwrap()
        .unwrap();

    assert_eq!(page["users_before"], 2, "{page}");
    assert_eq!(
        page["reported_users"], 5,
        "the run reports the new count: {page}"
    );
    assert_eq!(page["live_users"], 5, "{page}");
    assert_eq!(page["final_state"], "finished", "{page}");
    assert_eq!(page["console"], serde_json::json!([]), "console errors");
    for url in page["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{port}/")),
            "the page fetched {url}"
        );
    }
    for (chart, painted) in page["charts"].as_object().unwrap() {
        if chart != "chart-errors" {
            assert!(painted.as_u64().unwrap() > 0, "{chart} is blank");
        }
    }
    assert_eq!(
        outcome.stop_reason.as_deref(),
        Some("stopped from the web UI")
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let users: Vec<u64> = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["users"].as_u64().unwrap())
        .collect();
    assert!(users.contains(&2) && users.contains(&5), "{users:?}");
    // The final results stay served until the outcome is dropped.
    let web = outcome.web.as_ref().expect("the web UI is handed back");
    let stats = ureq::get(format!("http://127.0.0.1:{port}/stats.csv"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(stats.starts_with("Type,Name,Request Count"), "{stats}");
    let lines = stats.lines().count();
    assert_eq!(lines, 3, "a row for the name and Aggregated: {stats}");
    assert!(
        web.url.ends_with(&format!(":{port}/?token={TOKEN}")),
        "{}",
        web.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_ui_needs_its_token_and_controls_need_the_same_origin() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.users = 1;
    run.run_time = Some(Duration::from_secs(60));
    run.vars.insert("wait_ms".into(), "50".into());
    run.outputs.web = Some(format!("0.0.0.0:{port}").parse().unwrap());
    run.outputs.web_token = Some("a-token-of-enough-length".into());
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        response.unwrap().status().as_u16()
    };
    assert_eq!(status(agent.get(format!("{base}/")).call()), 401);
    assert_eq!(status(agent.get(format!("{base}/metrics")).call()), 401);
    let token = "token=a-token-of-enough-length";
    assert_eq!(status(agent.get(format!("{base}/?{token}")).call()), 200);
    // A form post from another site: refused (not JSON, other origin).
    let form = agent
        .post(format!("{base}/api/stop?{token}"))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("x=1");
    assert_eq!(status(form), 415);
    let other_origin = agent
        .post(format!("{base}/api/stop?{token}"))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/json")
        .send("{}");
    assert_eq!(status(other_origin), 403);
    // The open model's control on a closed run: refused with the reason.
    let (rate, _) = post_running(&format!("{base}/api/rate?{token}"), None, r#"{"rate": 5}"#).await;
    assert_eq!(rate, 409);
    let stop = agent
        .post(format!("{base}/api/stop"))
        .header("X-Horde-Token", "a-token-of-enough-length")
        .header("Content-Type", "application/json")
        .send("{}");
    assert_eq!(status(stop), 204);
    let outcome = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stopped")
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome.stop_reason.as_deref(),
        Some("stopped from the web UI")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arrival_rate_changes_mid_run() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.rate = Some(5.0);
    run.max_vus = 10;
    run.pre_vus = Some(4);
    run.run_time = Some(Duration::from_secs(6));
    run.outputs.web = Some(format!("127.0.0.1:{port}").parse().unwrap());
    run.outputs.web_token = Some(TOKEN.into());
    run.outputs.max_rate = Some(40.0);
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/{path}");
    let (status, why) = post_running(
        &api("users"),
        Some(TOKEN),
        r#"{"users": 3, "spawn_rate": 1}"#,
    )
    .await;
    assert_eq!(status, 409, "the open model has no users to change: {why}");
    let (status, why) = post(&api("rate"), Some(TOKEN), r#"{"rate": 41}"#);
    assert_eq!(status, 422, "above --max-rate: {why}");
    assert!(why.contains("--max-rate"), "{why}");
    let (status, why) = post(&api("rate"), Some(TOKEN), r#"{"rate": 40}"#);
    assert_eq!(status, 204, "the rate changes: {why}");
    let outcome = running.await.unwrap().unwrap();
    let timeline = &outcome.report.timeline;
    let rate_at = |from: f64, to: f64| {
        let points: Vec<_> = timeline
            .iter()
            .filter(|p| p.t > from && p.t <= to)
            .collect();
        points.iter().map(|p| p.iterations).sum::<u64>() as f64 / points.len().max(1) as f64
    };
    let before = rate_at(0.5, 3.0);
    let after = rate_at(4.0, 6.0);
    assert!(
        before < 8.0 && after > 25.0,
        "{before}/s then {after}/s: {timeline:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_need_the_token_stay_in_bounds_and_a_reset_keeps_the_report_whole() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let json_path = dir.path().join("report.json");
    let prefix = dir.path().join("out");
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 10.0;
    run.run_time = Some(Duration::from_secs(6));
    run.vars.insert("wait_ms".into(), "20".into());
    run.json = Some(json_path.clone());
    run.csv = Some(prefix.clone());
    run.outputs.web = Some(format!("127.0.0.1:{port}").parse().unwrap());
    run.outputs.web_token = Some(TOKEN.into());
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/{path}");

    // Any process on the machine reaches loopback: without the token,
    // every control is refused, and the run goes on.
    for path in ["stop", "reset", "users"] {
        let (status, why) = post(&api(path), None, r#"{"users": 1, "spawn_rate": 1}"#);
        assert_eq!(status, 401, "{path}: {why}");
        assert!(why.contains("token"), "{why}");
    }
    let (status, _) = post(&api("stop"), Some("a-wrong-token-of-enough-length"), "{}");
    assert_eq!(status, 401);
    // The read-only pages stay open on loopback.
    let page = agent()
        .get(format!("http://127.0.0.1:{port}/"))
        .call()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    // A page whose own name was rebound to 127.0.0.1 sends that name.
    let rebound = agent()
        .get(format!("http://127.0.0.1:{port}/stats.csv"))
        .header("Host", format!("rebind.example:{port}"))
        .call()
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    // A million users on a run sized for 2: refused, with the flag to use.
    let (status, why) = post_running(
        &api("users"),
        Some(TOKEN),
        r#"{"users": 1000000, "spawn_rate": 1000000}"#,
    )
    .await;
    assert_eq!(status, 422, "{why}");
    assert!(
        why.contains("at most 2") && why.contains("--max-users"),
        "{why}"
    );
    // No endpoint takes a large body.
    let padded = format!(
        r#"{{"users": 1, "spawn_rate": 1, "pad": "{}"}}"#,
        "x".repeat(8192)
    );
    let (status, _) = post(&api("users"), Some(TOKEN), &padded);
    assert_eq!(status, 413);

    let (status, why) = post(&api("reset"), Some(TOKEN), "{}");
    assert_eq!(status, 204, "{why}");
    // The live view starts over at the next second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live = agent()
        .get(format!("http://127.0.0.1:{port}/stats.csv"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let live_count: u64 = live
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let outcome = running.await.unwrap().unwrap();
    assert_eq!(outcome.stop_reason.as_deref(), Some("run time reached"));
    assert!(
        outcome.report.timeline.iter().all(|p| p.users <= 2),
        "the users stayed: {:?}",
        outcome.report.timeline
    );

    // The report covers the whole run: every second's requests, over the
    // whole run's duration; the CSV files agree with it.
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let count = json["total"]["count"].as_u64().unwrap();
    let per_second: u64 = outcome.report.timeline.iter().map(|p| p.requests).sum();
    assert_eq!(count, per_second, "{json}");
    assert!(
        live_count < count / 2,
        "the live view counted {live_count} since the reset, of {count}"
    );
    let duration = json["duration_s"].as_f64().unwrap();
    assert!(duration > 5.5, "{duration}");
    let history = std::fs::read_to_string(dir.path().join("out_stats_history.csv")).unwrap();
    let last = history.lines().last().unwrap();
    let total_column: Vec<&str> = last.split(',').collect();
    assert_eq!(total_column[17], count.to_string(), "{last}");
    let stats = std::fs::read_to_string(dir.path().join("out_stats.csv")).unwrap();
    let aggregated = stats.lines().last().unwrap();
    assert!(
        aggregated.starts_with(&format!(",Aggregated,{count}")),
        "{aggregated}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_capped_and_dropped_and_the_run_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LORIS: usize = 200;
    const CAP: usize = 40;
    let header_read = Duration::from_secs(3);
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 10.0;
    run.run_time = Some(Duration::from_secs(60));
    run.vars.insert("wait_ms".into(), "20".into());
    run.outputs.web = Some(format!("127.0.0.1:{port}").parse().unwrap());
    run.outputs.web_token = Some(TOKEN.into());
    run.outputs.server_limits = Some(horde::output::serve::ServerLimits {
        connections: CAP,
        header_read,
        ..horde::output::serve::ServerLimits::WEB
    });
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Each sends a request head a byte every 200 ms, never finishing it,
    // and reports how long the server kept it (None: still open after 15 s).
    let started = std::time::Instant::now();
    let mut loris = tokio::task::JoinSet::new();
    for _ in 0..LORIS {
        loris.spawn(async move {
            let opened = std::time::Instant::now();
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
                .iter()
                .chain(&[b'x'; 100]);
            let mut buffer = [0u8; 256];
            for byte in head {
                if stream.write_all(&[*byte]).await.is_err() {
                    return Some(opened.elapsed());
                }
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer))
                    .await
                {
                    Ok(Ok(0) | Err(_)) => return Some(opened.elapsed()),
                    Ok(Ok(_)) => panic!("the server answered an unfinished head"),
                    Err(_) => {}
                }
                if opened.elapsed() > Duration::from_secs(15) {
                    return None;
                }
            }
            None
        });
    }
    // While they hold the cap, the server refuses even the token holder;
    // once they are dropped, the UI is the token holder's again.
    let mut kept = Vec::new();
    while let Some(held) = loris.join_next().await {
        kept.push(held.unwrap());
    }
    let attack = started.elapsed();
    let (status, why) = post(
        &format!("http://127.0.0.1:{port}/api/stop"),
        Some(TOKEN),
        "{}",
    );
    assert_eq!(status, 204, "{why}");
    let outcome = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stopped")
        .unwrap()
        .unwrap();

    assert!(
        kept.iter().all(Option::is_some),
        "connections still open after 15 s: {}",
        kept.iter().filter(|k| k.is_none()).count()
    );
    let refused = kept
        .iter()
        .flatten()
        .filter(|held| **held < header_read)
        .count();
    assert!(
        refused >= LORIS - CAP,
        "{refused} of {LORIS} closed before the header timeout (cap {CAP}); attack took {attack:?}"
    );
    assert_eq!(
        outcome.stop_reason.as_deref(),
        Some("stopped from the web UI")
    );
    assert!(outcome.report.total.count > 0);
    assert_eq!(
        outcome.report.total.failures, 0,
        "the run's own requests failed: {:?}",
        outcome.report.errors
    );
}
