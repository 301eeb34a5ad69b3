//! Bench section "many patient users": 10,000 users each waiting 1 s
//! between requests against one nginx for 25 s, Horde (the test-load
//! guest) next to Locust's FastHttpUser on the same box: requests, latency,
//! generator CPU and peak RSS, and how late users' requests start, measured
//! at nginx the same way for both (each user's gaps between requests, less
//! the 1 s think time).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::bench::{Nginx, locust_percentiles, which};
use crate::bench_build::usage;

/// Users, their arrival rate while ramping, and the run's length.
const USERS: u32 = 10_000;
const SPAWN_RATE: u32 = 1_000;
const SECONDS: u32 = 25;

/// Locust's side of the comparison: the same user as the test-load guest.
const LOCUSTFILE: &str = "\
import itertools
from locust import FastHttpUser, constant, task

ids = itertools.count(1)

class Patient(FastHttpUser):
    wait_time = constant(1)

    def on_start(self):
        self.uid = next(ids)

    @task
    def item(self):
        self.client.get(f\"/item/1?u={self.uid}\", name=\"load\")
";

/// Lateness of each user's requests from nginx's log (`$msec $arg_u`):
/// for consecutive requests of one user, gap - 1 s, in ms; (p50, p99, gaps).
fn lateness(log: &Path) -> Result<(f64, f64, usize)> {
    let text = std::fs::read_to_string(log).context("reading nginx's log")?;
    let mut by_user: HashMap<&str, Vec<f64>> = HashMap::new();
    for line in text.lines() {
        if let Some((at, user)) = line.split_once(' ')
            && let Ok(at) = at.parse::<f64>()
            && !user.is_empty()
            && user != "-"
        {
            by_user.entry(user).or_default().push(at);
        }
    }
    let mut late: Vec<f64> = Vec::new();
    for times in by_user.values_mut() {
        times.sort_by(f64::total_cmp);
        late.extend(
            times
                .windows(2)
                .map(|w| ((w[1] - w[0]) - 1.0).max(0.0) * 1000.0),
        );
    }
    late.sort_by(f64::total_cmp);
    let at = |q: f64| {
        late.get(((late.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok((at(0.5), at(0.99), late.len()))
}

/// One tool's run: its figures.
fn measure(
    tool: &str,
    work: &Path,
    run: impl FnOnce(&str) -> Result<(Value, f64, u64)>,
) -> Result<Value> {
    let log = work.join(format!("{tool}.log"));
    let nginx = Nginx::start_logging(Some(&log))?;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let (mut figures, cpu_s, rss_kib) = run(&base)?;
    drop(nginx);
    let (late_p50, late_p99, gaps) = lateness(&log)?;
    figures["tool"] = json!(tool);
    figures["cpu_s"] = json!(cpu_s);
    figures["cpu_share_of_a_core"] = json!(cpu_s / f64::from(SECONDS));
    figures["peak_rss_mib"] = json!(rss_kib as f64 / 1024.0);
    figures["rss_kib_per_user"] = json!(rss_kib as f64 / f64::from(USERS));
    figures["lateness_ms"] = json!({ "p50": late_p50, "p99": late_p99, "gaps": gaps });
    Ok(figures)
}

fn horde_run(base: &str) -> Result<(Value, f64, u64)> {
    let report =
        std::env::temp_dir().join(format!("horde-bench-patient-{}.json", std::process::id()));
    let mut command = Command::new(crate::bench::horde_bin());
    command
        .arg("run")
        .arg(guest_build::guest_wasm_path("test-load"))
        .args([
            "--host",
            base,
            "-u",
            &USERS.to_string(),
            "-r",
            &SPAWN_RATE.to_string(),
        ])
        .args(["-t", &format!("{SECONDS}s"), "-q", "--json"])
        .arg(&report)
        .args(["--var", "wait_ms=1000", "--var", "path=/item/1?u={vu}"]);
    let (used, _) = usage(&mut command)?;
    let json: Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let _ = std::fs::remove_file(&report);
    let total = &json["total"];
    Ok((
        json!({
            "requests": total["count"], "failures": total["failures"],
            "p50_ms": total["latency_ms"]["p50"], "p99_ms": total["latency_ms"]["p99"],
        }),
        used.cpu_s,
        used.max_rss_kib,
    ))
}

fn locust_run(base: &str, work: &Path) -> Result<(Value, f64, u64)> {
    let locust =
        which("locust").context("locust is not installed (python3 -m pip install locust)")?;
    let file = work.join("patient_locustfile.py");
    std::fs::write(&file, LOCUSTFILE)?;
    let mut command = Command::new(locust);
    command
        .arg("-f")
        .arg(&file)
        .args([
            "--headless",
            "-u",
            &USERS.to_string(),
            "-r",
            &SPAWN_RATE.to_string(),
        ])
        .args(["-t", &format!("{SECONDS}s"), "--host", base])
        .args(["--json", "--only-summary", "--loglevel", "ERROR"]);
    let (used, stdout) = usage(&mut command)?;
    let entries: Value = serde_json::from_str(&stdout).context("locust printed no JSON")?;
    let entry = entries
        .as_array()
        .and_then(|e| e.first())
        .cloned()
        .unwrap_or_default();
    let (p50, p99) = locust_percentiles(&entry);
    Ok((
        json!({
            "requests": entry["num_requests"], "failures": entry["num_failures"],
            "p50_ms": p50, "p99_ms": p99,
        }),
        used.cpu_s,
        used.max_rss_kib,
    ))
}

/// The section's Markdown and raw figures (a tool that could not run is
/// listed with its error).
pub fn section() -> (String, Value) {
    let work = std::env::temp_dir().join(format!("horde-bench-patient-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    eprintln!("xtask bench: {USERS} patient users, Horde");
    let horde = measure("horde", &work, horde_run);
    eprintln!("xtask bench: {USERS} patient users, Locust");
    let locust = measure("locust", &work, |base| locust_run(base, &work));
    let _ = std::fs::remove_dir_all(&work);
    let mut markdown = format!(
        "\n## Many patient users\n\n{USERS} users, each waiting 1 s between requests (`-r {SPAWN_RATE}`, \
         {SECONDS} s) against the same kind of nginx, one tool at a time: Horde's test-load guest \
         (`--var wait_ms=1000`) and a Locust FastHttpUser with `constant(1)`, in one process each. \
         Lateness is measured at nginx for both: for each user, the gap between its consecutive \
         requests less the 1 s think time.\n\n\
         | tool | requests | p50 ms | p99 ms | generator CPU (share of a core) | peak RSS | RSS per user | lateness p50 / p99 |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    let mut raw = Vec::new();
    for (label, result) in [
        ("Horde (test-load guest)", horde),
        ("Locust FastHttpUser", locust),
    ] {
        match result {
            Ok(f) => {
                let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
                let _ = writeln!(
                    markdown,
                    "| {label} | {} | {:.1} | {:.1} | {:.1} s ({:.2}) | {:.0} MiB | {:.1} KiB | {:.1} ms / {:.1} ms |",
                    f["requests"],
                    number(&f["p50_ms"]),
                    number(&f["p99_ms"]),
                    number(&f["cpu_s"]),
                    number(&f["cpu_share_of_a_core"]),
                    number(&f["peak_rss_mib"]),
                    number(&f["rss_kib_per_user"]),
                    number(&f["lateness_ms"]["p50"]),
                    number(&f["lateness_ms"]["p99"]),
                );
                raw.push(f);
            }
            Err(error) => {
                let _ = writeln!(markdown, "| {label} | failed: {error:#} | | | | | | |");
                raw.push(json!({ "tool": label, "error": format!("{error:#}") }));
            }
        }
    }
    (markdown, Value::Array(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_the_gap_less_the_think_time() {
        let dir = std::env::temp_dir().join(format!("horde-lateness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        // User 1 is on time then 50 ms late; user 2 is 10 ms late; "-" is not a user.
        std::fs::write(
            &log,
            "10.000 1\n11.000 1\n12.050 1\n10.500 2\n11.510 2\n11.000 -\n",
        )
        .unwrap();
        let (p50, p99, gaps) = lateness(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(gaps, 3);
        assert!((p50 - 10.0).abs() < 1e-6, "{p50}");
        assert!((p99 - 50.0).abs() < 1e-6, "{p99}");
    }
}
