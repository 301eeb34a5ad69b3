//! The outputs fed by the per-second stream: Locust's CSV files, compared
//! with the files the real Locust writes, with the JSON report, and with
//! hostile names.

use std::path::Path;
use std::process::Command;

use horde::demo::DemoTarget;
use horde_tests::{config, guests};

/// The records of a CSV file (header first).
fn records(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

const FILES: [&str; 4] = [
    "_stats.csv",
    "_stats_history.csv",
    "_failures.csv",
    "_exceptions.csv",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_files_have_locusts_headers_and_agree_with_the_json_report() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The real Locust (PyPI), headless with --csv, against the same target.
    let locust_prefix = dir.path().join("locust");
    let locustfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/csv_locustfile.py");
    let status = Command::new("python3")
        .args([
            "-m",
            "locust",
            "--headless",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "3s",
        ])
        .arg("-f")
        .arg(&locustfile)
        .args(["--host", &target.url(), "--csv"])
        .arg(&locust_prefix)
        .args([
            "--csv-full-history",
            "--only-summary",
            "--loglevel",
            "ERROR",
        ])
        .status()
        .expect("running locust (`cargo xtask test` installs it)");
    assert!(status.success(), "locust exited with {status}");

    let prefix = dir.path().join("horde");
    let json_path = dir.path().join("report.json");
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.run_time = Some(std::time::Duration::from_secs(3));
    run.users = 2;
    run.spawn_rate = 10.0;
    run.vars.insert("wait_ms".into(), "20".into());
    run.csv = Some(prefix.clone());
    run.csv_full_history = true;
    run.json = Some(json_path.clone());
    let outcome = horde::run(&run).await.unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);

    for suffix in FILES {
        let theirs = records(&dir.path().join(format!("locust{suffix}")));
        let ours = records(&dir.path().join(format!("horde{suffix}")));
        assert_eq!(ours[0], theirs[0], "the header of {suffix}");
    }

    // _stats.csv agrees with the JSON report: one row per name, then Aggregated.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let stats = records(&dir.path().join("horde_stats.csv"));
    assert_eq!(stats.len(), 3, "{stats:?}");
    let load = &stats[1];
    assert_eq!((load[0].as_str(), load[1].as_str()), ("GET", "load"));
    assert_eq!(load[2], json["stats"][0]["count"].to_string());
    let aggregated = &stats[2];
    assert_eq!(
        (aggregated[0].as_str(), aggregated[1].as_str()),
        ("", "Aggregated")
    );
    assert_eq!(aggregated[2], json["total"]["count"].to_string());
    assert_eq!(aggregated[3], json["total"]["failures"].to_string());
    let p99: f64 = aggregated[18].parse().unwrap();
    let json_p99 = json["total"]["latency_ms"]["p99"].as_f64().unwrap();
    assert_eq!(p99, json_p99.round());

    // The history: a row per name and an Aggregated row each second, whose
    // last totals are the report's.
    let history = records(&dir.path().join("horde_stats_history.csv"));
    let aggregated_rows: Vec<&Vec<String>> =
        history.iter().filter(|r| r[3] == "Aggregated").collect();
    assert!(aggregated_rows.len() >= 3, "{history:?}");
    assert_eq!(history.len() - 1, 2 * aggregated_rows.len(), "{history:?}");
    let last = aggregated_rows.last().unwrap();
    assert_eq!(last[17], json["total"]["count"].to_string());
    // A run under 10 s: the last row's rate covers all of it, partial last
    // second included, as the report's rate does.
    let rate: f64 = last[4].parse().unwrap();
    let rps = json["total"]["rps"].as_f64().unwrap();
    assert!((rate - rps).abs() <= 0.1 * rps, "{rate} vs {rps}");
    let users: Vec<&str> = aggregated_rows.iter().map(|r| r[1].as_str()).collect();
    assert!(users.contains(&"2"), "{users:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_stay_one_field() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out");
    let mut run = config(guests::TEST_HOSTILE, &target.url(), dir.path());
    run.vars.insert("mode".into(), "escape".into());
    // Every third VU is hostile.
    run.users = 3;
    run.spawn_rate = 100.0;
    run.iterations = Some(12);
    run.csv = Some(prefix.clone());
    let outcome = horde::run(&run).await.unwrap();
    let fake = outcome
        .report
        .stats
        .iter()
        .find(|s| s.name.starts_with("/fake"))
        .expect("the hostile name is recorded");
    assert!(fake.name.contains('\n') && fake.name.contains('\x1b'));
    let stats = records(&dir.path().join("out_stats.csv"));
    assert!(stats.iter().all(|r| r.len() == 22), "{stats:?}");
    assert!(stats.iter().any(|r| r[1] == fake.name), "{stats:?}");
    let failures = records(&dir.path().join("out_failures.csv"));
    assert!(failures.iter().all(|r| r.len() == 6), "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|r| r[1] == fake.name && r[2].starts_with("boom")),
        "{failures:?}"
    );
}
