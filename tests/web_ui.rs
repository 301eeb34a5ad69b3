//! `--web`: the live web UI of a running test, driven in a real headless
//! Chromium (tests/browser/check_page.py --live): its updates arrive, the
//! page's users control changes the user count the run reports, Stop ends
//! the run; a UI on another address than loopback needs its token, and a
//! control from another origin is refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::{config, free_port, guests};
use serde_json::Value;

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
    let running = tokio::spawn(async move { horde::run(&run).await });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check_page.py");
    let url = format!("http://127.0.0.1:{port}/");
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
    assert!(web.url.ends_with(&format!(":{port}/")), "{}", web.url);
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
    let rate = agent
        .post(format!("{base}/api/rate?{token}"))
        .header("Content-Type", "application/json")
        .send("{\"rate\": 5}");
    assert_eq!(status(rate), 409);
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
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let users = ureq::post(format!("http://127.0.0.1:{port}/api/users"))
        .header("Content-Type", "application/json")
        .send("{\"users\": 3, \"spawn_rate\": 1}");
    assert!(users.is_err(), "the open model has no users to change");
    ureq::post(format!("http://127.0.0.1:{port}/api/rate"))
        .header("Content-Type", "application/json")
        .send("{\"rate\": 40}")
        .expect("the rate changes");
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
async fn reset_starts_the_figures_over_and_rebinding_is_refused() {
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
    let running = tokio::spawn(async move { horde::run(&run).await });
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // A page whose own name was rebound to 127.0.0.1 sends that name.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let rebound = agent
        .post(format!("http://127.0.0.1:{port}/api/stop"))
        .header("Host", format!("rebind.example:{port}"))
        .header("Origin", format!("http://rebind.example:{port}"))
        .header("Content-Type", "application/json")
        .send("{}")
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);

    let reset = agent
        .post(format!("http://localhost:{port}/api/reset"))
        .header("Content-Type", "application/json")
        .send("{}")
        .unwrap();
    assert_eq!(reset.status().as_u16(), 204);
    let outcome = running.await.unwrap().unwrap();
    assert_eq!(outcome.stop_reason.as_deref(), Some("run time reached"));

    // The figures cover the time since the reset: rates over it, and the
    // CSV's totals agree with the report's.
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let duration = json["duration_s"].as_f64().unwrap();
    assert!(duration > 2.5 && duration < 4.5, "{duration}");
    let count = json["total"]["count"].as_f64().unwrap();
    let rps = json["total"]["rps"].as_f64().unwrap();
    assert!(
        (rps * duration - count).abs() < 1.0,
        "{rps} x {duration} vs {count}"
    );
    let history = std::fs::read_to_string(dir.path().join("out_stats_history.csv")).unwrap();
    let last = history.lines().last().unwrap();
    let total_column: Vec<&str> = last.split(',').collect();
    assert_eq!(
        total_column[17],
        json["total"]["count"].to_string(),
        "{last}"
    );
    let stats = std::fs::read_to_string(dir.path().join("out_stats.csv")).unwrap();
    let aggregated = stats.lines().last().unwrap();
    assert!(
        aggregated.starts_with(&format!(",Aggregated,{count}")),
        "{aggregated}"
    );
}
