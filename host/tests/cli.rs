//! Bad input through the real `horde` binary: each case gets a
//! one-paragraph error, exit code 2, and no panic or stack trace.

use std::process::Command;

fn horde(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_horde"))
        .args(args)
        .env(
            "HORDE_CACHE_DIR",
            std::env::temp_dir().join("horde-cli-test-cache"),
        )
        .output()
        .expect("running horde");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

fn assert_bad_input(args: &[&str], expected: &str) {
    let (code, stderr) = horde(args);
    assert_eq!(code, 2, "{args:?} should exit 2; stderr: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in: {stderr}"
    );
    for forbidden in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(
            !stderr.contains(forbidden),
            "{args:?} printed {forbidden:?}: {stderr}"
        );
    }
}

fn example() -> String {
    guest_build::guest_wasm_path("rust-http")
        .display()
        .to_string()
}

fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

#[test]
fn not_a_wasm_file() {
    let (_dir, path) = write_temp("user.wasm", b"print('hello')\n");
    assert_bad_input(&["run", &path, "-t", "1"], "is not a WebAssembly file");
}

#[test]
fn core_module_instead_of_component() {
    let (_dir, path) = write_temp("core.wasm", &wat::parse_str("(module)").unwrap());
    assert_bad_input(
        &["run", &path, "-t", "1"],
        "is a core WebAssembly module, not a component",
    );
}

#[test]
fn component_of_another_world() {
    let wat = r#"(component (instance $empty) (export "acme:thing/api" (instance $empty)))"#;
    let (_dir, path) = write_temp("other.wasm", &wat::parse_str(wat).unwrap());
    assert_bad_input(
        &["run", &path, "-t", "1"],
        "does not export `horde:scenario/user@0.1.0`",
    );
}

#[test]
fn component_with_foreign_imports() {
    let wat = r#"(component
        (import "acme:db/query" (instance))
        (instance $empty)
        (export "horde:scenario/user@0.1.0" (instance $empty))
    )"#;
    let (_dir, path) = write_temp("foreign.wasm", &wat::parse_str(wat).unwrap());
    assert_bad_input(
        &["run", &path, "-t", "1"],
        "imports `acme:db/query`, which Horde does not provide",
    );
}

#[test]
fn missing_file() {
    assert_bad_input(&["run", "/nonexistent/user.wasm"], "does not exist");
}

#[test]
fn unreachable_host() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("http://127.0.0.1:{port}");
    assert_bad_input(
        &["run", &example(), "--host", &host, "-t", "1"],
        "cannot reach the target",
    );
}

#[test]
fn malformed_url() {
    assert_bad_input(
        &["run", &example(), "--host", "localhost:8080", "-t", "1"],
        "is not a valid URL",
    );
    assert_bad_input(
        &["run", &example(), "--host", "ftp://127.0.0.1", "-t", "1"],
        "only http and https",
    );
}

#[test]
fn invalid_flag_values() {
    let example = example();
    assert_bad_input(&["run", &example, "-u", "0"], "--users must be at least 1");
    assert_bad_input(&["run", &example, "-r", "fast"], "--spawn-rate expects");
    assert_bad_input(
        &["run", &example, "-t", "forever"],
        "--run-time expects a duration",
    );
    assert_bad_input(
        &["run", &example, "--max-vu-memory", "12 apples"],
        "--max-vu-memory expects a size",
    );
    assert_bad_input(
        &["run", &example, "--allow-host", "*bad"],
        "invalid --allow-host",
    );
    assert_bad_input(&["run", &example, "--unknown-flag"], "unexpected argument");
}

fn guest(package: &str) -> String {
    guest_build::guest_wasm_path(package).display().to_string()
}

async fn exit_code(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_horde"))
        .args(args)
        .env(
            "HORDE_CACHE_DIR",
            std::env::temp_dir().join("horde-cli-test-cache"),
        )
        .output()
        .await
        .expect("running horde");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_thresholds_then_failures() {
    let target = horde::demo::DemoTarget::start(false).await.unwrap();
    let (host, load) = (target.url(), guest("test-load"));
    let base = [
        "run",
        load.as_str(),
        "--host",
        host.as_str(),
        "-i",
        "20",
        "-q",
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        exit_code(&refs).await
    };
    let (code, stdout) = run(with(&[
        "--threshold",
        "http_req_duration: p(95)<5000",
        "--var",
        "path=/",
    ]))
    .await;
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("ok   http_req_duration: p(95)<5000"),
        "{stdout}"
    );
    let (code, stdout) = run(with(&[
        "--threshold",
        "http_req_duration: max<0.001",
        "--var",
        "path=/",
    ]))
    .await;
    assert_eq!(code, 99, "{stdout}");
    assert!(
        stdout.contains("FAIL http_req_duration: max<0.001"),
        "{stdout}"
    );
    // Without thresholds, failed requests fail the run (Locust's default).
    let (code, _) = run(with(&["--var", "path=/missing"])).await;
    assert_eq!(code, 1);
    // With a threshold that tolerates them, they do not.
    let (code, _) = run(with(&[
        "--var",
        "path=/missing",
        "--threshold",
        "http_req_failed: rate<=1",
    ]))
    .await;
    assert_eq!(code, 0);
    let (code, _) = run(with(&[
        "--var",
        "path=/",
        "--threshold",
        "http_req_duration: p95<1",
    ]))
    .await;
    assert_eq!(code, 2, "a malformed threshold is bad input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_run_still_writes_a_complete_report() {
    let target = horde::demo::DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_horde"))
        .args([
            "run",
            &guest("test-load"),
            "--host",
            &target.url(),
            "-u",
            "4",
            "-r",
            "100",
            "-t",
            "60s",
        ])
        .args(["--var", "path=/", "--var", "wait_ms=10", "-q", "--json"])
        .arg(&json)
        .env(
            "HORDE_CACHE_DIR",
            std::env::temp_dir().join("horde-cli-test-cache"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean interrupted run exits 0");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["stop_reason"], "interrupted by SIGINT");
    assert!(report["total"]["count"].as_u64().unwrap() > 50, "{report}");
    assert!(report["duration_s"].as_f64().unwrap() < 10.0);
    assert!(report["timeline"].as_array().unwrap().len() >= 2);
}
