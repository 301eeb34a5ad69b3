//! `cargo xtask bench`: Horde next to oha, wrk and Locust on one loopback
//! nginx, interleaved in the same run, plus start-up, per-VU footprint, the
//! wasm-boundary baseline and the stats recording cost. Writes
//! BENCHMARKS.md and bench-results.json.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Seconds each load run lasts.
const RUN_SECONDS: u64 = 4;
/// Connection (user) counts compared.
const CONNECTIONS: [u32; 2] = [16, 64];
/// VUs of the wasm-boundary comparison at scale (Horde's one-GET guest and
/// the direct client only).
const MANY_VUS: u32 = 1000;
/// Every connection count reported.
const REPORTED: [u32; 3] = [16, 64, MANY_VUS];
/// Repetitions of every (tool, connections) pair, interleaved.
const REPETITIONS: usize = 2;

/// A labelled way to produce one measurement.
type Attempt<'a> = Box<dyn Fn() -> Result<Measured> + 'a>;

/// One bounded load run.
#[derive(Debug, Clone)]
struct Measured {
    tool: &'static str,
    connections: u32,
    requests: u64,
    failures: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_seconds: f64,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    fn per_cpu_second(&self) -> f64 {
        self.requests as f64 / self.cpu_seconds.max(1e-9)
    }

    fn json(&self) -> Value {
        json!({
            "tool": self.tool, "connections": self.connections, "requests": self.requests,
            "failures": self.failures, "seconds": self.seconds, "rps": self.rps(),
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "cpu_seconds": self.cpu_seconds,
            "requests_per_cpu_second": self.per_cpu_second(),
        })
    }
}

fn root() -> PathBuf {
    guest_build::repo_root()
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home_cargo)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
}

/// Run `command` under /usr/bin/time; returns (stdout, user+sys CPU
/// seconds), whatever its exit status (a load tool stopped by its own
/// timer may exit non-zero).
fn timed(command: &mut Command) -> Result<(String, f64)> {
    crate::bench_build::time_command(command, false).map(|(used, stdout)| (stdout, used.cpu_s))
}

fn tempfile_path(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "horde-bench-{label}-{}-{}",
        std::process::id(),
        fastish_counter()
    ))
}

fn fastish_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// nginx serving a small static body, one worker, no access log (or one
/// line per request, `$msec $arg_u`, into a file).
pub(crate) struct Nginx {
    pub(crate) port: u16,
    child: Child,
    _dir: PathBuf,
}

impl Nginx {
    fn start() -> Result<Nginx> {
        Nginx::start_logging(None)
    }

    /// nginx that logs each request's end time (s, ms precision) and its
    /// `u` query argument to `log`.
    pub(crate) fn start_logging(log: Option<&std::path::Path>) -> Result<Nginx> {
        let access_log = match log {
            Some(path) => format!(
                "log_format arrivals '$msec $arg_u';\n access_log {} arrivals buffer=256k flush=1s;",
                path.display()
            ),
            None => "access_log off;".to_string(),
        };
        let dir = tempfile_path("nginx");
        std::fs::create_dir_all(dir.join("logs"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\nerror_log {d}/logs/error.log error;\n\
             pid {d}/nginx.pid;\nevents {{ worker_connections 20000; }}\nhttp {{\n {access_log}\n \
             keepalive_requests 100000000;\n client_body_temp_path {d}/body;\n default_type application/json;\n \
             server {{\n  listen 127.0.0.1:{port};\n  location = /login {{ return 200 '{{\"token\":\"token-bench\"}}'; }}\n  \
             location / {{ return 200 '{{\"id\":1,\"name\":\"item\"}}'; }}\n }}\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let nginx =
            which("nginx").context("nginx is not installed (apt-get install nginx-light)")?;
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx {
            port,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn horde_bin() -> PathBuf {
    root().join("target/release/horde")
}

fn example_bin(name: &str) -> PathBuf {
    root().join("target/release/examples").join(name)
}

fn run_horde(
    guest: &std::path::Path,
    base: &str,
    connections: u32,
    vars: &[&str],
    tool: &'static str,
) -> Result<Measured> {
    run_horde_with(guest, base, connections, vars, tool, &[])
}

/// Free a loopback port (bound, then released).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The same run as [`run_horde`] with the web UI on (it also serves
/// `/metrics`) and the HTML report written, watched as people watch it: one
/// page reading the events, and a scrape of `/metrics` every second.
fn run_horde_watched(
    guest: &std::path::Path,
    base: &str,
    connections: u32,
    vars: &[&str],
    tool: &'static str,
) -> Result<Measured> {
    let port = free_port()?;
    let html = tempfile_path("horde-html");
    let args = [
        "--web".to_string(),
        format!("127.0.0.1:{port}"),
        "--html".to_string(),
        html.display().to_string(),
    ];
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchers = {
        let done = done.clone();
        std::thread::spawn(move || {
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(RUN_SECONDS + 20);
            // The events stream, read as it comes, on its own thread.
            let events = {
                let url = format!("{base}/events");
                std::thread::spawn(move || {
                    while Instant::now() < deadline {
                        if let Ok(mut response) = ureq::get(&url).call() {
                            let mut reader = response.body_mut().as_reader();
                            let _ = std::io::copy(&mut reader, &mut std::io::sink());
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                })
            };
            let mut scrapes = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(mut response) = ureq::get(format!("{base}/metrics")).call() {
                    let _ = response.body_mut().read_to_string();
                    scrapes += 1;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            drop(events);
            scrapes
        })
    };
    let measured = run_horde_with(guest, base, connections, vars, tool, &args);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let scrapes = watchers.join().unwrap_or(0);
    let _ = std::fs::remove_file(&html);
    if scrapes == 0 {
        bail!("the web UI's /metrics was never scraped");
    }
    measured
}

fn run_horde_with(
    guest: &std::path::Path,
    base: &str,
    connections: u32,
    vars: &[&str],
    tool: &'static str,
    extra: &[String],
) -> Result<Measured> {
    let json_path = tempfile_path("horde-json");
    let mut command = Command::new(horde_bin());
    command
        .arg("run")
        .arg(guest)
        .args([
            "--host",
            base,
            "-u",
            &connections.to_string(),
            "-r",
            "100000",
            "-t",
        ])
        .arg(format!("{RUN_SECONDS}s"))
        .args(["-q", "--json"])
        .arg(&json_path);
    for var in vars {
        command.args(["--var", var]);
    }
    command.args(extra);
    let (_, cpu) = timed(&mut command)?;
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json_path).context("horde wrote no JSON")?)?;
    let _ = std::fs::remove_file(&json_path);
    Ok(Measured {
        tool,
        connections,
        requests: report["total"]["count"].as_u64().unwrap_or(0),
        failures: report["total"]["failures"].as_u64().unwrap_or(0),
        seconds: report["duration_s"].as_f64().unwrap_or(RUN_SECONDS as f64),
        p50_ms: report["total"]["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        p99_ms: report["total"]["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        cpu_seconds: cpu,
    })
}

fn run_direct(url: &str, connections: u32) -> Result<Measured> {
    let mut command = Command::new(example_bin("direct_baseline"));
    command.args([url, &connections.to_string(), &RUN_SECONDS.to_string()]);
    let (stdout, cpu) = timed(&mut command)?;
    let line: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    Ok(Measured {
        tool: "direct (no wasm)",
        connections,
        requests: line["requests"].as_u64().unwrap_or(0),
        failures: line["failures"].as_u64().unwrap_or(0),
        seconds: line["seconds"].as_f64().unwrap_or(RUN_SECONDS as f64),
        p50_ms: line["p50_ms"].as_f64().unwrap_or(0.0),
        p99_ms: line["p99_ms"].as_f64().unwrap_or(0.0),
        cpu_seconds: cpu,
    })
}

/// wrk's "1.23ms" / "456.00us" / "1.2s" latency text in ms.
fn wrk_ms(text: &str) -> f64 {
    let text = text.trim();
    for (suffix, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().unwrap_or(0.0) * factor;
        }
    }
    0.0
}

fn run_wrk(url: &str, connections: u32) -> Result<Measured> {
    let wrk = which("wrk").context("wrk is not installed (apt-get install wrk)")?;
    let mut command = Command::new(wrk);
    command.args([
        "-t",
        "2",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{RUN_SECONDS}s"),
        "--latency",
        url,
    ]);
    let (stdout, cpu) = timed(&mut command)?;
    let find = |prefix: &str| -> Option<String> {
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    let requests = stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let seconds = stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split("requests in").nth(1))
        .and_then(|r| r.split(',').next())
        .map(|d| wrk_ms(d) / 1000.0)
        .unwrap_or(RUN_SECONDS as f64);
    let errors = find("Non-2xx or 3xx responses:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Measured {
        tool: "wrk",
        connections,
        requests,
        failures: errors,
        seconds,
        p50_ms: find("50%").map(|v| wrk_ms(&v)).unwrap_or(0.0),
        p99_ms: find("99%").map(|v| wrk_ms(&v)).unwrap_or(0.0),
        cpu_seconds: cpu,
    })
}

fn run_oha(url: &str, connections: u32) -> Result<Measured> {
    let oha = which("oha").context("oha is not installed (cargo install oha)")?;
    let mut command = Command::new(oha);
    command.args([
        "-z",
        &format!("{RUN_SECONDS}s"),
        "-c",
        &connections.to_string(),
        "--no-tui",
        "--output-format",
        "json",
        url,
    ]);
    let (stdout, cpu) = timed(&mut command)?;
    let report: Value = serde_json::from_str(&stdout).context("oha printed no JSON")?;
    let summary = &report["summary"];
    let seconds = summary["total"].as_f64().unwrap_or(RUN_SECONDS as f64);
    // oha counts requests still in flight at the deadline as errors; they are not failures.
    let status_ok: u64 = report["statusCodeDistribution"]
        .as_object()
        .map(|codes| {
            codes
                .iter()
                .filter(|(c, _)| c.starts_with('2'))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0);
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(0.0) * 1000.0;
    Ok(Measured {
        tool: "oha",
        connections,
        requests: status_ok,
        failures: 0,
        seconds,
        p50_ms: percentile("p50"),
        p99_ms: percentile("p99"),
        cpu_seconds: cpu,
    })
}

fn run_locust(base: &str, connections: u32) -> Result<Measured> {
    let locust =
        which("locust").context("locust is not installed (python3 -m pip install locust)")?;
    let mut command = Command::new(locust);
    command
        .arg("-f")
        .arg(root().join("bench/locust/http_locustfile.py"))
        .args([
            "--headless",
            "-u",
            &connections.to_string(),
            "-r",
            "10000",
            "-t",
        ])
        .arg(format!("{RUN_SECONDS}s"))
        .args([
            "--host",
            base,
            "--json",
            "--only-summary",
            "--loglevel",
            "ERROR",
        ]);
    let (stdout, cpu) = timed(&mut command)?;
    // Locust's final CSV undercounts; its --json summary does not.
    let entries: Value = serde_json::from_str(&stdout).context("locust printed no JSON")?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    let requests: u64 = entries
        .iter()
        .filter_map(|e| e["num_requests"].as_u64())
        .sum();
    let failures: u64 = entries
        .iter()
        .filter_map(|e| e["num_failures"].as_u64())
        .sum();
    let start = entries
        .iter()
        .filter_map(|e| e["start_time"].as_f64())
        .fold(f64::MAX, f64::min);
    let end = entries
        .iter()
        .filter_map(|e| e["last_request_timestamp"].as_f64())
        .fold(0.0, f64::max);
    // Locust keeps response-time buckets; read the median and p99 from them.
    let (p50, p99) = entries
        .first()
        .map(locust_percentiles)
        .unwrap_or((0.0, 0.0));
    Ok(Measured {
        tool: "locust FastHttpUser",
        connections,
        requests,
        failures,
        seconds: (end - start).max(1e-9),
        p50_ms: p50,
        p99_ms: p99,
        cpu_seconds: cpu,
    })
}

pub(crate) fn locust_percentiles(entry: &Value) -> (f64, f64) {
    let Some(buckets) = entry["response_times"].as_object() else {
        return (0.0, 0.0);
    };
    let mut times: Vec<(f64, u64)> = buckets
        .iter()
        .filter_map(|(t, n)| Some((t.parse::<f64>().ok()?, n.as_u64()?)))
        .collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = times.iter().map(|(_, n)| n).sum();
    let at = |q: f64| {
        let rank = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (t, n) in &times {
            seen += n;
            if seen >= rank {
                return *t;
            }
        }
        0.0
    };
    (at(0.5), at(0.99))
}

/// Wall time of `horde run -i 1` of a Rust guest (one GET) with an empty
/// cache (cold), and again with the compiled component cached.
/// Wall time of `horde run -i 1` of `guest`: with an empty component cache,
/// then the mean of three runs with the compiled component cached.
/// The compiled component is left in `cache` (the caller removes it).
fn startup(guest: &std::path::Path, base: &str, cache: &std::path::Path) -> Result<(f64, f64)> {
    let once = || -> Result<f64> {
        let started = Instant::now();
        let status = Command::new(horde_bin())
            .arg("run")
            .arg(guest)
            .args(["--host", base, "-i", "1", "-q", "--var", "path=/item/1"])
            .env("HORDE_CACHE_DIR", cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("horde run -i 1 failed: {status}");
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    };
    let cold = once()?;
    let cached = (0..3).map(|_| once()).collect::<Result<Vec<_>>>()?;
    Ok((cold, cached.iter().sum::<f64>() / cached.len() as f64))
}

/// The vu_footprint example's figures for `vus` VUs of `guest`, loading the
/// component from a compile `cache` if given (else compiling it, timed).
fn footprint(guest: &std::path::Path, vus: u32, cache: Option<&std::path::Path>) -> Result<Value> {
    let output = Command::new(example_bin("vu_footprint"))
        .arg(guest)
        .arg(vus.to_string())
        .args(cache)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Ok(json!({ "vus": vus, "error": stderr.lines().last().unwrap_or("failed") }));
    }
    let number = |label: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l[label.len()..].split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    Ok(json!({
        "vus": vus,
        "instantiate_us_per_vu": number("instantiate:"),
        "rss_kib_per_vu_after_first_call": text.lines().filter(|l| l.starts_with("rss per VU:")).nth(1)
            .and_then(|l| l["rss per VU:".len()..].split_whitespace().next()).and_then(|n| n.parse::<f64>().ok()),
        // With a filled cache the first load is not a compilation.
        "compile_cold_ms": if cache.is_some() { Value::Null } else { json!(number("compile cold:")) },
        "compile_cached_ms": number("compile cached:"),
    }))
}

/// Keep a measurement, or note (once) why a tool was skipped.
fn keep_or_skip(
    label: &str,
    result: Result<Measured>,
    runs: &mut Vec<Measured>,
    skipped: &mut Vec<String>,
) {
    match result {
        Ok(measured) => runs.push(measured),
        Err(error) => {
            let message = format!("{label}: {error:#}");
            if !skipped.contains(&message) {
                eprintln!("xtask bench: skipped {message}");
                skipped.push(message);
            }
        }
    }
}

/// VUs of the per-language comparison.
const LANGUAGE_VUS: u32 = 16;
/// VUs of the per-language footprint.
const LANGUAGE_FOOTPRINT_VUS: u32 = 200;

/// The per-language section: its Markdown and raw figures.
struct LanguageSection {
    markdown: String,
    json: Value,
}

/// The Python and JavaScript guests the language comparison runs.
pub const SCRIPT_GUESTS: [&str; 3] = ["python-http", "js-http", "js-fetch"];

/// The same shopper scenario in Rust, Python and JavaScript (and through a
/// `fetch()` library): requests/s and CPU at 16 VUs on the same nginx,
/// start-up cold and cached, instantiation and RSS per VU at 200 VUs.
fn languages(base: &str, skipped: &mut Vec<String>) -> LanguageSection {
    let guests: [(&'static str, PathBuf); 4] = [
        ("rust-http", guest_build::guest_wasm_path("rust-http")),
        (
            "python-http",
            guest_build::script_wasm_path(SCRIPT_GUESTS[0]),
        ),
        ("js-http", guest_build::script_wasm_path(SCRIPT_GUESTS[1])),
        (
            "js-fetch (fetch() through wasi:http)",
            guest_build::script_wasm_path(SCRIPT_GUESTS[2]),
        ),
    ];
    let mut runs: Vec<Measured> = Vec::new();
    for repetition in 0..REPETITIONS {
        eprintln!(
            "xtask bench: scenario languages, repetition {}",
            repetition + 1
        );
        for (label, path) in &guests {
            keep_or_skip(
                label,
                run_horde(path, base, LANGUAGE_VUS, &["wait=none"], label),
                &mut runs,
                skipped,
            );
        }
    }
    let mut markdown = String::new();
    let _ = writeln!(
        markdown,
        "\n## Scenario languages\n\nThe same shopper (log in, then item/index/cart tasks 5:2:1, no wait) \
         built from each language, {LANGUAGE_VUS} VUs for {RUN_SECONDS} s on the same nginx, medians of \
         {REPETITIONS} interleaved runs; start-up is `horde run -i 1` wall time; footprint at \
         {LANGUAGE_FOOTPRINT_VUS} VUs from the vu_footprint example.\n"
    );
    let _ = writeln!(
        markdown,
        "| scenario | requests/s | p50 ms | p99 ms | CPU s per 1,000 requests | start-up cold (compiling) / cached | compiled component load | instantiation per VU | RSS per VU after configure |"
    );
    let _ = writeln!(markdown, "|---|---|---|---|---|---|---|---|---|");
    let mut raw = Vec::new();
    for (label, path) in &guests {
        let of: Vec<&Measured> = runs.iter().filter(|r| r.tool == *label).collect();
        // Start-up cold includes compiling; the footprint reuses that compilation.
        let cache = tempfile_path("cache");
        let (cold, cached) = startup(path, base, &cache).unwrap_or((f64::NAN, f64::NAN));
        let print = footprint(path, LANGUAGE_FOOTPRINT_VUS, Some(&cache))
            .unwrap_or_else(|e| json!({ "error": e.to_string() }));
        let _ = std::fs::remove_dir_all(&cache);
        let mut rps: Vec<f64> = of.iter().map(|r| r.rps()).collect();
        let mut p50: Vec<f64> = of.iter().map(|r| r.p50_ms).collect();
        let mut p99: Vec<f64> = of.iter().map(|r| r.p99_ms).collect();
        let mut per_cpu: Vec<f64> = of.iter().map(|r| r.per_cpu_second()).collect();
        let number = |key: &str| print[key].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            markdown,
            "| {label} | {:.0} | {:.2} | {:.2} | {:.3} | {cold:.0} ms / {cached:.0} ms | {:.1} ms | {:.0} us | {:.0} KiB |",
            median(&mut rps),
            median(&mut p50),
            median(&mut p99),
            1000.0 / median(&mut per_cpu).max(1e-9),
            number("compile_cached_ms"),
            number("instantiate_us_per_vu"),
            number("rss_kib_per_vu_after_first_call"),
        );
        raw.push(json!({
            "scenario": label,
            "runs": of.iter().map(|r| r.json()).collect::<Vec<_>>(),
            "startup_ms": { "cold": cold, "cached": cached },
            "footprint": print,
        }));
    }
    LanguageSection {
        markdown,
        json: Value::Array(raw),
    }
}

/// criterion's estimate for the stats recording benches, in ns.
fn record_cost() -> Result<Vec<(String, f64)>> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root())
        .args([
            "bench",
            "--quiet",
            "-p",
            "horde",
            "--bench",
            "record",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut results = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some((label, rest)) = line.split_once("time:") {
            if !label.trim().is_empty() {
                name = label.trim().to_string();
            }
            // time:   [low unit mid unit high unit]
            let parts: Vec<&str> = rest
                .trim()
                .trim_matches(['[', ']'])
                .split_whitespace()
                .collect();
            if parts.len() >= 4 {
                let value: f64 = parts[2].parse().unwrap_or(0.0);
                let ns = match parts[3] {
                    "ps" => value / 1000.0,
                    "ns" => value,
                    "µs" | "us" => value * 1000.0,
                    _ => value,
                };
                results.push((name.clone(), ns));
            }
        } else if !line.starts_with(' ') && !line.trim().is_empty() {
            name = line.trim().to_string();
        }
    }
    Ok(results)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let max_map = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {memory}, Linux {}, vm.max_map_count {}",
        kernel.trim(),
        max_map.trim()
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Spread as (min, max) of a set of ratios.
fn ratio_text(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let mut sorted = values.to_vec();
    let mid = median(&mut sorted);
    format!(
        "{mid:.2}x ({:.2}–{:.2})",
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

/// Run the whole bench and write the reports.
pub fn bench() -> Result<()> {
    let started = Instant::now();
    let nginx = Nginx::start()?;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let url = format!("{base}/item/1");
    let mut runs: Vec<Measured> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for &connections in &CONNECTIONS {
        for repetition in 0..REPETITIONS {
            eprintln!(
                "xtask bench: {connections} connections, repetition {}",
                repetition + 1
            );
            let attempts: [(&str, Attempt<'_>); 7] = [
                (
                    "horde",
                    Box::new(|| {
                        run_horde(
                            &guest_build::guest_wasm_path("rust-http"),
                            &base,
                            connections,
                            &["wait=none"],
                            "horde (rust-http example)",
                        )
                    }),
                ),
                ("oha", Box::new(|| run_oha(&url, connections))),
                ("wrk", Box::new(|| run_wrk(&url, connections))),
                ("locust", Box::new(|| run_locust(&base, connections))),
                (
                    "horde-get",
                    Box::new(|| {
                        run_horde(
                            &guest_build::guest_wasm_path("test-load"),
                            &base,
                            connections,
                            &["path=/item/1"],
                            "horde (one GET per task)",
                        )
                    }),
                ),
                ("direct", Box::new(|| run_direct(&url, connections))),
                (
                    "horde-get-watched",
                    Box::new(|| {
                        run_horde_watched(
                            &guest_build::guest_wasm_path("test-load"),
                            &base,
                            connections,
                            &["path=/item/1"],
                            "horde (one GET per task) + web UI, /metrics, HTML",
                        )
                    }),
                ),
            ];
            for (label, attempt) in attempts {
                keep_or_skip(label, attempt(), &mut runs, &mut skipped);
            }
        }
    }
    for repetition in 0..REPETITIONS {
        eprintln!(
            "xtask bench: wasm boundary at {MANY_VUS} VUs, repetition {}",
            repetition + 1
        );
        keep_or_skip(
            "horde-get",
            run_horde(
                &guest_build::guest_wasm_path("test-load"),
                &base,
                MANY_VUS,
                &["path=/item/1"],
                "horde (one GET per task)",
            ),
            &mut runs,
            &mut skipped,
        );
        keep_or_skip(
            "direct",
            run_direct(&url, MANY_VUS),
            &mut runs,
            &mut skipped,
        );
    }
    let cache = tempfile_path("cache");
    let timed = startup(&guest_build::guest_wasm_path("test-load"), &base, &cache);
    let _ = std::fs::remove_dir_all(&cache);
    let (cold_ms, cached_ms) = timed?;
    let languages = languages(&base, &mut skipped);
    let building = crate::bench_build::section(&base);
    drop(nginx);
    let (patient_markdown, patient_json) = crate::bench_patient::section();
    let rust_http = guest_build::guest_wasm_path("rust-http");
    let footprints = [
        footprint(&rust_http, 1000, None)?,
        footprint(&rust_http, 10_000, None)?,
    ];
    let record = record_cost().unwrap_or_default();

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| tool | connections | requests/s | p50 ms | p99 ms | requests per CPU-second | CPU s per 1,000 requests |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|");
    let tools: Vec<&str> = {
        let mut t: Vec<&str> = runs.iter().map(|r| r.tool).collect();
        t.dedup();
        let mut unique = Vec::new();
        for tool in t {
            if !unique.contains(&tool) {
                unique.push(tool);
            }
        }
        unique
    };
    for &connections in &REPORTED {
        for tool in &tools {
            let of: Vec<&Measured> = runs
                .iter()
                .filter(|r| r.tool == *tool && r.connections == connections)
                .collect();
            if of.is_empty() {
                continue;
            }
            let mut rps: Vec<f64> = of.iter().map(|r| r.rps()).collect();
            let mut p50: Vec<f64> = of.iter().map(|r| r.p50_ms).collect();
            let mut p99: Vec<f64> = of.iter().map(|r| r.p99_ms).collect();
            let mut per_cpu: Vec<f64> = of.iter().map(|r| r.per_cpu_second()).collect();
            let per_cpu_median = median(&mut per_cpu);
            let _ = writeln!(
                table,
                "| {tool} | {connections} | {:.0} | {:.2} | {:.2} | {:.0} | {:.4} |",
                median(&mut rps),
                median(&mut p50),
                median(&mut p99),
                per_cpu_median,
                1000.0 / per_cpu_median.max(1e-9)
            );
        }
    }
    // Ratios within the same repetition (same minute), per connection count.
    let mut ratios = String::new();
    let _ = writeln!(
        ratios,
        "| ratio | connections | requests/s | requests per CPU-second |"
    );
    let _ = writeln!(ratios, "|---|---|---|---|");
    for &connections in &REPORTED {
        for (numerator, denominator, label) in [
            ("horde (rust-http example)", "oha", "Horde / oha"),
            ("horde (rust-http example)", "wrk", "Horde / wrk"),
            (
                "horde (rust-http example)",
                "locust FastHttpUser",
                "Horde / Locust FastHttpUser",
            ),
            (
                "horde (one GET per task)",
                "direct (no wasm)",
                "wasm VUs / direct hyper client (boundary cost)",
            ),
            (
                "horde (one GET per task) + web UI, /metrics, HTML",
                "horde (one GET per task)",
                "watched (web UI, /metrics, HTML) / plain (the outputs' cost)",
            ),
        ] {
            let a: Vec<&Measured> = runs
                .iter()
                .filter(|r| r.tool == numerator && r.connections == connections)
                .collect();
            let b: Vec<&Measured> = runs
                .iter()
                .filter(|r| r.tool == denominator && r.connections == connections)
                .collect();
            let pairs = a.len().min(b.len());
            if pairs == 0 {
                continue;
            }
            let rps: Vec<f64> = (0..pairs)
                .map(|i| a[i].rps() / b[i].rps().max(1e-9))
                .collect();
            let cpu: Vec<f64> = (0..pairs)
                .map(|i| a[i].per_cpu_second() / b[i].per_cpu_second().max(1e-9))
                .collect();
            let _ = writeln!(
                ratios,
                "| {label} | {connections} | {} | {} |",
                ratio_text(&rps),
                ratio_text(&cpu)
            );
        }
    }
    let mut doc = String::new();
    let _ = writeln!(doc, "# Benchmarks\n");
    let _ = writeln!(
        doc,
        "Generated by `cargo xtask bench` (do not edit by hand). Machine: {}.\n",
        machine()
    );
    let _ = writeln!(
        doc,
        "Target: nginx on loopback (one worker, access log off, `keepalive_requests` raised), a small JSON body. \
         Each tool runs {RUN_SECONDS} s per repetition at each connection count (Horde's one-GET guest and the \
         direct client also at {MANY_VUS} VUs); tools are interleaved \
         (A B A B) and ratios are taken within the same repetition. Generators share the 2 cores with nginx, \
         so **requests per CPU-second of the generator** (user+sys from `/usr/bin/time`) is the primary figure.\n"
    );
    let _ = writeln!(
        doc,
        "## Load generators\n\n{table}\n## Ratios (median, min–max over repetitions)\n\n{ratios}"
    );
    let _ = writeln!(doc, "## Start-up and footprint\n");
    let _ = writeln!(doc, "| measure | value |\n|---|---|");
    let _ = writeln!(
        doc,
        "| `horde run -i 1` of a Rust guest (test-load, one GET), cold cache (process wall time) | {cold_ms:.0} ms |"
    );
    let _ = writeln!(
        doc,
        "| the same, compiled component cached | {cached_ms:.0} ms |"
    );
    for f in &footprints {
        if let Some(error) = f["error"].as_str() {
            let _ = writeln!(doc, "| {} VUs | failed: {error} |", f["vus"]);
            continue;
        }
        let _ = writeln!(
            doc,
            "| instantiation per VU at {} VUs | {:.1} us |",
            f["vus"],
            f["instantiate_us_per_vu"].as_f64().unwrap_or(0.0)
        );
        let _ = writeln!(
            doc,
            "| RSS per idle VU at {} VUs (after its first call) | {:.1} KiB |",
            f["vus"],
            f["rss_kib_per_vu_after_first_call"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(f) = footprints.first() {
        let _ = writeln!(
            doc,
            "| component compile, cold / cached | {:.1} ms / {:.2} ms |",
            f["compile_cold_ms"].as_f64().unwrap_or(0.0),
            f["compile_cached_ms"].as_f64().unwrap_or(0.0)
        );
    }
    for (name, ns) in &record {
        let _ = writeln!(doc, "| stats: {name} | {ns:.1} ns |");
    }
    let _ = writeln!(doc, "{}", languages.markdown);
    let building_json = match building {
        Ok(section) => {
            let _ = writeln!(doc, "{}", section.markdown);
            section.json
        }
        Err(error) => {
            let message = format!("building scenarios: {error:#}");
            let _ = writeln!(
                doc,
                "\n## From an edit to the first request\n\nfailed: {message}"
            );
            json!({ "error": message })
        }
    };
    let _ = writeln!(doc, "{patient_markdown}");
    if !skipped.is_empty() {
        let _ = writeln!(doc, "\nSkipped in this run:\n");
        for s in &skipped {
            let _ = writeln!(doc, "- {s}");
        }
    }
    let _ = writeln!(
        doc,
        "\nThis run took {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(root().join("BENCHMARKS.md"), &doc)?;
    let raw = json!({
        "machine": machine(),
        "runs": runs.iter().map(Measured::json).collect::<Vec<_>>(),
        "startup_ms": { "cold": cold_ms, "cached": cached_ms },
        "footprint": footprints,
        "languages": languages.json,
        "building": building_json,
        "patient_users": patient_json,
        "record_ns": record.iter().map(|(n, v)| json!({"bench": n, "ns": v})).collect::<Vec<_>>(),
        "skipped": skipped,
    });
    std::fs::write(
        root().join("bench-results.json"),
        serde_json::to_vec_pretty(&raw)?,
    )?;
    println!("{doc}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_latencies_convert_to_ms() {
        assert_eq!(wrk_ms("456.00us"), 0.456);
        assert_eq!(wrk_ms("1.50ms"), 1.5);
        assert_eq!(wrk_ms("2.00s"), 2000.0);
    }

    #[test]
    fn locust_buckets_give_percentiles() {
        let entry = json!({ "response_times": { "1": 50, "2": 40, "9": 9, "100": 1 } });
        assert_eq!(locust_percentiles(&entry), (1.0, 9.0));
    }

    #[test]
    fn paths_are_not_shared() {
        assert_ne!(tempfile_path("x"), tempfile_path("x"));
        assert!(tempfile_path("y").starts_with(std::env::temp_dir()));
    }
}
