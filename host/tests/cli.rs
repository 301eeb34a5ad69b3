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
