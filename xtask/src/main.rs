//! Project automation: `cargo xtask demo | test | build-guests | bench`.
//! Installs what the commands need (the wasm32-wasip2 target, servers,
//! componentize-py, the JS SDK's npm packages) when missing.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

mod bench;
mod bench_build;
mod bench_patient;
mod image;

const USAGE: &str = "usage: cargo xtask <command> [args]

commands:
  demo [horde demo flags]   build horde and run the demo (built-in target + example scenario)
  test                      install what the tests need, then run every test
  build-guests              build every guest component (Rust, Python, JavaScript)
  bench                     Horde vs oha, wrk and Locust on nginx; writes BENCHMARKS.md
  image [--tag NAME]        build the horde container image (FROM scratch) from the release binary";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("build-guests") => build_guests(),
        Some("bench") => run_bench(),
        Some("image") => build_image(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(guest_build::repo_root());
    command
}

/// rustup does not install targets named in rust-toolchain.toml on these
/// machines, so add wasm32-wasip2 explicitly.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (install Rust with rustup from rustup.rs)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    eprintln!("xtask: installing the wasm32-wasip2 target");
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Is `program` on PATH or in the system folders (sbin is often off PATH,
/// and Debian keeps PostgreSQL's server programs in
/// /usr/lib/postgresql/VERSION/bin)?
fn have(program: &str) -> bool {
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let postgres: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().map(|v| v.path().join("bin")).collect())
        .unwrap_or_default();
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(std::path::PathBuf::from)
        .chain(path)
        .chain(postgres)
        .any(|dir| dir.join(program).exists())
}

/// Debian packages of the third-party servers the integration tests run
/// against: (program, package).
const APT_SERVERS: [(&str, &str); 8] = [
    ("nginx", "nginx-light"),
    ("redis-server", "redis-server"),
    ("mosquitto", "mosquitto"),
    // initdb, not pg_ctlcluster: the client package brings postgresql-common too.
    ("initdb", "postgresql"),
    ("prometheus", "prometheus"),
    // The HTML report and the web UI are checked in a real browser.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // tests/swarm.rs runs segments as a Docker Swarm replicated job.
    ("dockerd", "docker.io"),
];
/// Debian packages the bench needs: (program, package).
const APT_BENCH: [(&str, &str); 3] = [("nginx", "nginx-light"), ("wrk", "wrk"), ("time", "time")];

/// Install the missing servers with apt-get (as root), or say what to install.
fn ensure_servers() -> Result<()> {
    ensure_apt(&APT_SERVERS)
}

/// Start Debian's Docker engine as this machine allows it (no iptables, no
/// bridge: containers use the host's network) and make it a one-node
/// Swarm. True when the engine and the Swarm answer; a warning otherwise
/// (the Swarm test then says it was skipped).
fn ensure_docker_swarm() -> bool {
    use guest_build::image::docker_engine;
    if !docker_engine() {
        let log = guest_build::repo_root().join("target/dockerd.log");
        let started = std::fs::File::create(&log).and_then(|file| {
            Command::new("dockerd")
                .args(["--iptables=false", "--bridge=none"])
                .stdout(file.try_clone()?)
                .stderr(file)
                .stdin(Stdio::null())
                .spawn()
        });
        if let Err(error) = started {
            eprintln!("xtask: warning: cannot start dockerd ({error}); the Swarm test is skipped");
            return false;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !docker_engine() {
            if std::time::Instant::now() > deadline {
                eprintln!(
                    "xtask: warning: dockerd did not answer within 30 s (see {}); the Swarm test \
                     is skipped",
                    log.display()
                );
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
    let state = Command::new("docker")
        .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if state != "active"
        && run(Command::new("docker").args(["swarm", "init", "--advertise-addr", "127.0.0.1"]))
            .is_err()
    {
        eprintln!("xtask: warning: docker swarm init failed; the Swarm test is skipped");
        return false;
    }
    true
}

/// Install the (program, package) pairs whose program is missing.
fn ensure_apt(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| !have(program))
        .map(|(_, package)| *package)
        .collect();
    ensure_packages(&missing)
}

/// Install Debian `packages` with apt-get (as root), or say what to install.
fn ensure_packages(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !is_root || !have("apt-get") {
        bail!(
            "this needs {}: install them (e.g. `sudo apt-get install {}`) and run again",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {} with apt-get", missing.join(", "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Python packages the tests need: the third-party servers they run, and
/// the client libraries the Python test guests bundle (componentize-py
/// takes them from this Python's site-packages): (module, pip requirement).
const PIP_PACKAGES: [(&str, &str); 9] = [
    ("grpc", "grpcio==1.76.0"),
    ("google.protobuf", "protobuf==6.33.6"),
    ("requests", "requests==2.34.2"),
    ("redis", "redis==8.1.0"),
    ("paho.mqtt", "paho-mqtt==2.2.0"),
    ("pg8000", "pg8000==1.31.6"),
    // tests/outputs.rs compares Horde's CSV files with the ones Locust writes.
    ("locust", "locust==2.47.0"),
    // tests/html_report.rs drives Debian's chromium through chromedriver.
    ("selenium", "selenium==4.38.0"),
    // tests/kubernetes.rs checks deploy/kubernetes/ against the API's schemas.
    ("kubernetes_validate", "kubernetes-validate==1.37.0"),
];

/// Install missing Python packages with pip.
fn ensure_python_packages() -> Result<()> {
    for (module, requirement) in PIP_PACKAGES {
        let present = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .context("running python3 (the tests need Python 3)")?
            .status
            .success();
        if !present {
            eprintln!("xtask: installing {requirement} with pip");
            run(Command::new("python3").args(["-m", "pip", "install", "--quiet", requirement]))?;
        }
    }
    Ok(())
}

/// The guest toolchains: componentize-py (pip) and the JS SDK's packages (npm ci).
fn ensure_guest_toolchains() -> Result<()> {
    let version = Command::new("componentize-py").arg("--version").output();
    let wanted = guest_build::COMPONENTIZE_PY.trim_start_matches("componentize-py==");
    let current = version
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(wanted));
    if !current {
        eprintln!(
            "xtask: installing {} with pip",
            guest_build::COMPONENTIZE_PY
        );
        run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            guest_build::COMPONENTIZE_PY,
        ]))?;
    }
    let sdk = guest_build::repo_root().join("sdk/js");
    let lock = sdk.join("package-lock.json");
    let installed = sdk.join("node_modules/.package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_none() || modified(&installed) < modified(&lock) {
        if !have("npm") {
            bail!(
                "the JavaScript guests need Node.js 20+ and npm; install them (e.g. `apt-get install nodejs npm`)"
            );
        }
        eprintln!("xtask: installing the JS SDK's build tools (npm ci in sdk/js)");
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&sdk))?;
    }
    Ok(())
}

/// The release binary, then its image (see image.rs).
fn build_image(args: &[String]) -> Result<()> {
    run(cargo().args(["build", "--release", "--quiet", "--package", "horde"]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| guest_build::repo_root().join("target"));
    let target_dir = if target_dir.is_absolute() {
        target_dir
    } else {
        guest_build::repo_root().join(target_dir)
    };
    image::image(args, &target_dir)
}

fn demo(args: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    run(cargo()
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "horde",
            "--",
            "demo",
        ])
        .args(args))
}

fn test(args: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    ensure_servers()?;
    ensure_python_packages()?;
    ensure_guest_toolchains()?;
    let swarm = ensure_docker_swarm();
    let mut child = cargo()
        .env(
            "HORDE_TEST_SWARM",
            if swarm { "required" } else { "unavailable" },
        )
        .args(["test", "--release", "--workspace"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some((p, f)) = parse_test_result(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    // One closing line over every test binary, for humans and CI logs.
    println!("tests: {passed} passed, {failed} failed");
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}

/// Passed and failed counts of a libtest `test result:` line.
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |label: &str| -> Option<u64> {
        rest.split(';').find_map(|part| {
            let part = part
                .trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ");
            part.strip_suffix(label)?.trim().parse().ok()
        })
    };
    Some((count("passed")?, count("failed")?))
}

fn run_bench() -> Result<()> {
    // oha builds while everything else installs and builds: each cargo
    // leaves a core idle for long stretches (one big crate at a time), so
    // side by side they finish minutes sooner than one after the other.
    let oha_install = start_oha_install()?;
    ensure_wasm_target()?;
    ensure_guest_toolchains()?;
    ensure_apt(&APT_BENCH)?;
    if !have("locust") {
        eprintln!("xtask: installing locust with pip");
        run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "locust"]))?;
    }
    let built = run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "horde",
        "--bins",
        "--example",
        "direct_baseline",
        "--example",
        "vu_footprint",
        "--example",
        "compile_footprint",
    ]))
    .and_then(|()| {
        // The stats recording bench, compiled now rather than mid-measurement.
        run(cargo().args([
            "bench", "--quiet", "-p", "horde", "--bench", "record", "--no-run",
        ]))
    })
    .and_then(|()| {
        for guest in guest_build::script_guests()
            .iter()
            .filter(|g| bench::SCRIPT_GUESTS.contains(&g.package.as_str()))
        {
            guest_build::build_script_guest(guest).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    });
    if let Some(mut child) = oha_install
        && !child.wait().is_ok_and(|status| status.success())
    {
        eprintln!(
            "xtask: oha could not be installed; the bench runs without it (install it with `cargo install oha`)"
        );
    }
    built?;
    bench::bench()
}

/// Start `cargo install oha` in the background when oha is missing. It is
/// built with native-tls (the system OpenSSL) instead of its default
/// rustls + aws-lc, whose C build would cost minutes; the bench speaks plain
/// HTTP, so oha's measured path is the same.
fn start_oha_install() -> Result<Option<std::process::Child>> {
    let home_oha =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo/bin/oha"));
    if have("oha") || home_oha.is_some_and(|p| p.exists()) {
        return Ok(None);
    }
    if !std::path::Path::new("/usr/include/openssl/ssl.h").exists() {
        ensure_packages(&["libssl-dev", "pkg-config"])?;
    }
    eprintln!(
        "xtask: installing oha with cargo install (a few minutes, once), alongside the build"
    );
    Ok(cargo()
        .args([
            "install",
            "--locked",
            "--quiet",
            "--no-default-features",
            "--features",
            "native-tls",
            "oha",
        ])
        .spawn()
        .map_err(|e| eprintln!("xtask: starting cargo install oha: {e}"))
        .ok())
}

fn build_guests() -> Result<()> {
    ensure_wasm_target()?;
    ensure_guest_toolchains()?;
    let paths = guest_build::build_guests(&[]).map_err(anyhow::Error::msg)?;
    for path in paths {
        println!("{}", path.display());
    }
    for (_, path) in guest_build::build_script_guests().map_err(anyhow::Error::msg)? {
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_test_result;

    #[test]
    fn libtest_summaries_are_parsed() {
        let ok = "test result: ok. 22 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_test_result(ok), Some((22, 0)));
        let failed =
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_test_result(failed), Some((3, 1)));
        assert_eq!(parse_test_result("running 3 tests"), None);
    }
}
