//! `horde merge` through the real binary: segments of the demo run written
//! with `--out` merge into the whole run; a threshold only the merged data
//! fails exits 99; a segment killed mid-run (SIGKILL) is reported and the
//! merge does not pass; files that do not belong together are refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::horde;

/// `horde demo` with `args`, writing `out`; the exit code.
fn demo(dir: &Path, out: &str, args: &[&str]) -> i32 {
    horde()
        .current_dir(dir)
        .args(["demo", "-q", "-u", "4", "-r", "100", "--out", out])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running horde demo")
        .code()
        .unwrap_or(-1)
}

/// `horde merge` with `args` in `dir`: exit code and stderr.
fn merge(dir: &Path, args: &[&str]) -> (i32, String) {
    let output = horde()
        .current_dir(dir)
        .arg("merge")
        .args(args)
        .output()
        .expect("running horde merge");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

use common::json as report;

#[test]
fn segments_merge_and_a_threshold_only_the_whole_run_fails_exits_99() {
    let dir = tempfile::tempdir().unwrap();
    // Two halves, each under the threshold alone, over it together.
    let threshold = "iterations: count<60";
    for (segment, out) in [("1/2", "a.horde"), ("2/2", "b.horde")] {
        let code = demo(
            dir.path(),
            out,
            &["-t", "3s", "--segment", segment, "--threshold", threshold],
        );
        let part = report_of(dir.path(), out);
        assert!(
            part < 60,
            "each half alone passes ({part} iterations), exit {code}"
        );
    }
    let (code, stderr) = merge(
        dir.path(),
        &[
            "a.horde",
            "b.horde",
            "--json",
            "merged.json",
            "--csv",
            "merged",
            "--html",
            "merged.html",
        ],
    );
    let merged = report(&dir.path().join("merged.json"));
    let iterations = merged["iterations"].as_u64().unwrap();
    assert!(iterations >= 60, "{iterations}: {stderr}");
    assert_eq!(code, 99, "the merged run fails its threshold: {stderr}");
    assert_eq!(merged["merged"].as_array().unwrap().len(), 2);
    assert_eq!(merged["thresholds"][0]["passed"], false);
    assert!(dir.path().join("merged_stats.csv").exists());
    assert!(dir.path().join("merged.html").exists());
    // Requests of both halves, nothing lost.
    let requests = merged["total"]["count"].as_u64().unwrap();
    let per_second: u64 = merged["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, per_second);
}

/// Iterations a result file recorded.
fn report_of(dir: &Path, file: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|record| record["record"] == "second")
        .map(|record| record["iterations"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_segment_killed_mid_run_is_reported_and_the_merge_does_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut doomed = horde()
        .current_dir(dir.path())
        .args([
            "demo",
            "-q",
            "-u",
            "4",
            "-r",
            "100",
            "-t",
            "5s",
            "--segment",
            "2/2",
            "--out",
            "b.horde",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Segment 2 is killed (SIGKILL) 2.5 s into its 5 s; segment 1 runs whole.
    std::thread::sleep(Duration::from_millis(2500));
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    demo(dir.path(), "a.horde", &["-t", "5s", "--segment", "1/2"]);
    let (code, stderr) = merge(dir.path(), &["a.horde", "b.horde", "--json", "m.json"]);
    let merged = report(&dir.path().join("m.json"));
    let files = merged["merged"].as_array().unwrap();
    let b = files.iter().find(|f| f["file"] == "b.horde").unwrap();
    assert_eq!(b["complete"], false, "{b}");
    assert!(
        b["seconds"].as_u64().unwrap() >= 1,
        "its seconds are kept: {b}"
    );
    assert_eq!(code, 1, "a dead segment's results do not pass: {stderr}");
    assert!(
        stderr.contains("b.horde") && stderr.contains("killed or crashed"),
        "{stderr}"
    );
}

#[test]
fn files_that_do_not_belong_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "a.horde", &["-t", "1s", "--segment", "1/2"]);
    demo(dir.path(), "b.horde", &["-t", "2s", "--segment", "2/2"]);
    demo(dir.path(), "c.horde", &["-t", "1s", "--segment", "1/4:3/4"]);
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    for (args, says) in [
        (&["a.horde", "b.horde"][..], "different loads"),
        (&["a.horde", "c.horde"][..], "overlapping"),
        (&["a.horde", "a.horde"][..], "overlapping"),
        (&["notes.txt"][..], "not a Horde result file"),
        (&["missing.horde"][..], "cannot open"),
    ] {
        let (code, stderr) = merge(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A lone half merges, but says the rest is missing and does not pass.
    let (code, stderr) = merge(dir.path(), &["a.horde"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cover 50% of the run"), "{stderr}");
}

#[test]
fn interrupted_segments_pipes_and_overwritten_inputs_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    // Ctrl-C (SIGINT) 1.5 s into a 4 s segment: it writes its end, saying so.
    let mut stopped = horde()
        .current_dir(dir.path())
        .args(["demo", "-q", "-u", "4", "-r", "100", "-t", "4s"])
        .args(["--segment", "2/2", "--out", "b.horde"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = stopped.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    stopped.wait().unwrap();
    demo(dir.path(), "a.horde", &["-t", "4s", "--segment", "1/2"]);
    // A blank line at the end (an editor's) is no damage.
    let mut a = std::fs::read_to_string(dir.path().join("a.horde")).unwrap();
    a.push('\n');
    std::fs::write(dir.path().join("a.horde"), a).unwrap();
    let (code, stderr) = merge(dir.path(), &["a.horde", "b.horde"]);
    assert_eq!(code, 1, "an interrupted segment does not pass: {stderr}");
    assert!(
        stderr.contains("b.horde was interrupted by SIGINT"),
        "{stderr}"
    );
    // The merged report may not overwrite what it merges.
    let (code, stderr) = merge(dir.path(), &["a.horde", "b.horde", "--json", "a.horde"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("one of the files being merged"), "{stderr}");
    // A pipe is refused, as a file to merge and as --out, instead of waiting.
    let fifo = dir.path().join("pipe.horde");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (code, stderr) = merge(dir.path(), &["pipe.horde"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let output = horde()
        .current_dir(dir.path())
        .args(["demo", "-q", "-t", "1s", "--out", "pipe.horde"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}
