//! Docker Swarm, for real: Horde's `FROM scratch` image with the data login
//! example inside runs as a service of 3 tasks on this one-node Swarm (host
//! networking, no restarts), each task's slot becoming its `--segment`
//! (`HORDE_SEGMENT={{.Task.Slot}}/3`), reporting live to an aggregator on
//! loopback, against the demo target on loopback. The merged totals equal
//! a single process's: shared iterations exactly, each data row once;
//! arrival counts within 1%.
//!
//! A `replicated` service, not a `replicated-job`: a job numbers its tasks'
//! slots from 0, and Swarm renders slot 0 in `{{.Task.Slot}}` as the node's
//! ID (seen here with Docker 20.10), so one task of a job cannot tell its
//! segment.
//!
//! `cargo xtask test` installs Debian's docker.io, starts the engine
//! (`dockerd --iptables=false --bridge=none`) and a one-node Swarm, and
//! sets HORDE_TEST_SWARM=required; without an engine the test says it was
//! skipped.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use horde::demo::DemoTarget;

mod common;
use common::{json, wait};

fn docker(args: &[&str]) -> (bool, String) {
    let output = Command::new("docker").args(args).output().expect("docker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// True when this machine has a Swarm to run on; panics when `cargo xtask
/// test` set one up and it does not answer.
fn swarm_here() -> bool {
    let active = guest_build::image::docker_engine()
        && docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .1
            .trim()
            == "active";
    if !active && std::env::var("HORDE_TEST_SWARM").as_deref() == Ok("required") {
        panic!("cargo xtask test started Docker and a Swarm, but neither answers now");
    }
    if !active {
        eprintln!(
            "SKIPPED: no Docker engine with an active Swarm here (cargo xtask test sets one up)"
        );
    }
    active
}

/// Removes the service and the image when the test ends, however it ends.
struct Cleanup {
    services: Vec<String>,
    secrets: Vec<String>,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for service in &self.services {
            let _ = docker(&["service", "rm", service]);
        }
        for secret in &self.secrets {
            let _ = docker(&["secret", "rm", secret]);
        }
        let _ = docker(&["image", "rm", "-f", &self.image]);
    }
}

/// `horde aggregate` for 3 segments writing `json`; the child and its URL.
fn aggregator(dir: &Path, json: &str) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_horde"))
        .current_dir(dir)
        .args(["aggregate", "--listen", "127.0.0.1:0", "--expect", "3"])
        .args(["--timeout", "60s", "--quiet", "--json", json])
        .env("HORDE_TOKEN", common::TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("aggregator: {line}");
            if let Some(url) = line.split("--report-to ").nth(1) {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    (child, url)
}

/// Run `load` as 3 Swarm tasks against a fresh demo target; the merged
/// report and the logins the target saw.
async fn swarm_run(
    dir: &Path,
    image: &str,
    name: &str,
    load: &[&str],
    cleanup: &mut Cleanup,
) -> (serde_json::Value, Vec<String>) {
    let target = DemoTarget::start(false).await.unwrap();
    let report = format!("{name}.json");
    let (mut agg, url) = aggregator(dir, &report);
    // The segment token reaches the tasks as a Swarm secret, never in an
    // argument or the environment.
    let secret = format!("{name}-token");
    let token_file = dir.join(&secret);
    std::fs::write(&token_file, common::TOKEN).unwrap();
    let (ok, text) = docker(&["secret", "create", &secret, &token_file.to_string_lossy()]);
    assert!(ok, "docker secret create: {text}");
    cleanup.secrets.push(secret.clone());
    let secret_mount = format!("source={secret},target=horde_token");
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        name,
        "--mode",
        "replicated",
        "--replicas",
        "3",
        "--network",
        "host",
        "--restart-condition",
        "none",
        "--env",
        "HORDE_SEGMENT={{.Task.Slot}}/3",
        "--secret",
        &secret_mount,
        image,
        "run",
        "/scenario/scenario.wasm",
        "--data",
        "users=/scenario/users.csv",
        "--token-file",
        "/run/secrets/horde_token",
        "--quiet",
    ];
    let host = target.url();
    args.extend(["--host", &host, "--report-to", &url]);
    args.extend(load);
    cleanup.services.push(name.to_string());
    let (ok, text) = docker(&args);
    assert!(ok, "docker service create: {text}");
    let code = tokio::task::spawn_blocking(move || wait(&mut agg, Duration::from_secs(240)))
        .await
        .unwrap();
    let (_, tasks) = docker(&["service", "ps", name, "--no-trunc"]);
    assert_eq!(code, 0, "the aggregate passes; tasks:\n{tasks}");
    (json(&dir.join(&report)), target.served.logins())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_service_of_three_segments_equals_one_process() {
    if !swarm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenario = guest_build::guest_wasm_path("rust-data");
    let users = root.join("guest-examples/data/users.csv");
    let context = dir.path().join("image");
    guest_build::image::assemble(
        Path::new(env!("CARGO_BIN_EXE_horde")),
        &context,
        &[
            (&scenario, "scenario/scenario.wasm"),
            (&users, "scenario/users.csv"),
        ],
    )
    .unwrap();
    let tag = format!("horde-swarm-test:{}", std::process::id());
    let mut cleanup = Cleanup {
        services: Vec::new(),
        secrets: Vec::new(),
        image: tag.clone(),
    };
    let (ok, text) = docker(&["build", "--quiet", "-t", &tag, context.to_str().unwrap()]);
    assert!(ok, "docker build: {text}");

    // Shared iterations: exactly 600 in all, each user row once.
    let id = std::process::id();
    let name = format!("horde-iterations-{id}");
    let load = ["-u", "6", "-r", "100", "-i", "600"];
    let (merged, logins) = swarm_run(dir.path(), &tag, &name, &load, &mut cleanup).await;
    assert_eq!(merged["iterations"], 600, "{}", merged["merged"]);
    let segments: HashSet<&str> = merged["merged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segment"].as_str().unwrap())
        .collect();
    assert_eq!(segments, HashSet::from(["0:1/3", "1/3:2/3", "2/3:1"]));
    let distinct: HashSet<&String> = logins.iter().collect();
    assert_eq!((logins.len(), distinct.len()), (600, 600));

    // The same load in one process, outside Docker.
    let target = DemoTarget::start(false).await.unwrap();
    let one = dir.path().join("one.json");
    let status = Command::new(env!("CARGO_BIN_EXE_horde"))
        .args(["run", scenario.to_str().unwrap(), "--host", &target.url()])
        .args(["--data", &format!("users={}", users.display())])
        .args(load)
        .args(["--quiet", "--json", one.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let one = json(&one);
    let counts = |report: &serde_json::Value| -> Vec<(String, u64)> {
        report["stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    format!("{} {}", s["type"], s["name"]),
                    s["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(counts(&merged), counts(&one));

    // Arrival rate: 100/s for 5 s is 500 arrivals in all, within 1%.
    let name = format!("horde-rate-{id}");
    let load = ["--rate", "100/s", "-t", "5s", "--max-vus", "30"];
    let (merged, _) = swarm_run(dir.path(), &tag, &name, &load, &mut cleanup).await;
    let arrivals =
        merged["iterations"].as_u64().unwrap() + merged["dropped_iterations"].as_u64().unwrap();
    assert!((495..=505).contains(&arrivals), "{arrivals} arrivals");
}
