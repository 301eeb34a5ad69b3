//! What the tests that drive the `horde` binary share: the binary with a
//! cache of their own, waiting on a child with a limit, reading a JSON report.

#![allow(dead_code)] // each test file uses its own share

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The `horde` binary under test, its compiled-component cache in `/tmp`.
pub fn horde() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_horde"));
    command.env(
        "HORDE_CACHE_DIR",
        std::env::temp_dir().join("horde-binary-test-cache"),
    );
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
