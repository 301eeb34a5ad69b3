//! Command line: clap's raw `Args`, validated into a `RunConfig` with
//! errors that say what was wrong and how to fix it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use url::Url;

use crate::policy::{Grant, Limits};

/// Horde: load tests whose virtual users are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "horde", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario component against a target.
    Run(Box<RunArgs>),
    /// Start a built-in target on 127.0.0.1 and run the embedded example scenario against it.
    Demo(DemoArgs),
}

/// Options of `horde run` (raw, as typed).
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// The scenario: a WebAssembly component built against wit/ (e.g. with horde-sdk).
    pub scenario: PathBuf,
    /// Base URL for relative request paths, e.g. http://127.0.0.1:8080. Its origin is granted.
    #[arg(long = "host", short = 'H')]
    pub host: Option<String>,
    /// Number of concurrent users (VUs).
    #[arg(short = 'u', long = "users", default_value = "1")]
    pub users: String,
    /// Users started per second.
    #[arg(short = 'r', long = "spawn-rate", default_value = "1")]
    pub spawn_rate: String,
    /// Stop after this long, e.g. 30s, 5m, 1h30m (a bare number is seconds).
    #[arg(short = 't', long = "run-time")]
    pub run_time: Option<String>,
    /// Stop after this many tasks in total, shared by all users.
    #[arg(short = 'i', long = "iterations")]
    pub iterations: Option<String>,
    /// Also allow this destination: host, host:port, *.domain, or http(s)://host:port.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// A run variable the scenario reads with control.get-var, as key=value.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long = "json", value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Linear memory each VU may use, e.g. 64MiB, 1GiB.
    #[arg(long = "max-vu-memory", default_value = "128MiB")]
    pub max_vu_memory: String,
    /// Guest CPU time one task may use before the VU is stopped and replaced.
    #[arg(long = "max-task-cpu", default_value = "10s")]
    pub max_task_cpu: String,
    /// Default timeout of one HTTP request.
    #[arg(long = "timeout", default_value = "60s")]
    pub timeout: String,
    /// After a stop, how long running tasks may finish before they are cut.
    #[arg(long = "stop-timeout", default_value = "5s")]
    pub stop_timeout: String,
    /// A .proto file whose messages gRPC calls may send and receive as JSON.
    #[arg(long = "proto", value_name = "FILE")]
    pub proto: Option<PathBuf>,
    /// A folder where imports of the --proto file are found (repeatable).
    #[arg(long = "proto-path", value_name = "DIR")]
    pub proto_paths: Vec<PathBuf>,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long = "insecure", short = 'k')]
    pub insecure: bool,
    /// Speak HTTP/2 over plain TCP from the first byte (h2c prior knowledge).
    #[arg(long = "http2-prior-knowledge")]
    pub http2_prior_knowledge: bool,
    /// Do not read or write the compiled-component cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// No live progress; only the final summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// Options of `horde demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How long to run.
    #[arg(short = 't', long = "run-time", default_value = "10s")]
    pub run_time: String,
    /// Number of users.
    #[arg(short = 'u', long = "users", default_value = "20")]
    pub users: String,
    /// Users started per second.
    #[arg(short = 'r', long = "spawn-rate", default_value = "10")]
    pub spawn_rate: String,
    /// Write the report as JSON to this file.
    #[arg(long = "json", value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// No live progress; only the final summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// A validated run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: PathBuf,
    /// Component bytes built into the binary (`horde demo`); `scenario` then only names it.
    pub embedded: Option<&'static [u8]>,
    pub host: Option<Url>,
    pub users: u32,
    pub spawn_rate: f64,
    pub run_time: Option<Duration>,
    pub iterations: Option<u64>,
    pub allow_hosts: Vec<Grant>,
    pub vars: HashMap<String, String>,
    pub json: Option<PathBuf>,
    pub limits: Limits,
    pub stop_timeout: Duration,
    pub insecure: bool,
    pub http2_prior_knowledge: bool,
    pub proto: Option<PathBuf>,
    pub proto_paths: Vec<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub quiet: bool,
    /// Check that the target accepts connections before starting users.
    pub preflight: bool,
}

impl RunConfig {
    /// A configuration with defaults for everything but the scenario.
    pub fn new(scenario: impl Into<PathBuf>) -> RunConfig {
        RunConfig {
            scenario: scenario.into(),
            embedded: None,
            host: None,
            users: 1,
            spawn_rate: 1.0,
            run_time: None,
            iterations: None,
            allow_hosts: Vec::new(),
            vars: HashMap::new(),
            json: None,
            limits: Limits::default(),
            stop_timeout: Duration::from_secs(5),
            insecure: false,
            http2_prior_knowledge: false,
            proto: None,
            proto_paths: Vec::new(),
            cache_dir: crate::engine::default_cache_dir(),
            quiet: true,
            preflight: true,
        }
    }

    /// Validate raw arguments for a component built into the binary.
    pub fn for_embedded(args: &RunArgs, name: &str, bytes: &'static [u8]) -> Result<RunConfig> {
        let mut config = Self::validate(args)?;
        config.scenario = name.into();
        config.embedded = Some(bytes);
        Ok(config)
    }

    /// Validate raw arguments.
    pub fn from_args(args: &RunArgs) -> Result<RunConfig> {
        if !args.scenario.exists() {
            bail!(
                "the scenario file {} does not exist. Pass the path of a .wasm component, \
                 e.g. target/guests/wasm32-wasip2/release/rust_http.wasm",
                args.scenario.display()
            );
        }
        Self::validate(args)
    }

    fn validate(args: &RunArgs) -> Result<RunConfig> {
        let mut config = RunConfig::new(&args.scenario);
        config.host = args
            .host
            .as_deref()
            .map(|h| parse_host_url(h, "--host"))
            .transpose()?;
        config.users = parse_count(&args.users, "--users", 1_000_000)? as u32;
        config.spawn_rate = parse_rate(&args.spawn_rate, "--spawn-rate")?;
        config.run_time = args
            .run_time
            .as_deref()
            .map(|t| parse_duration(t, "--run-time"))
            .transpose()?;
        if config.run_time.is_some_and(|t| t.is_zero()) {
            bail!("--run-time must be longer than 0, e.g. -t 30s");
        }
        config.iterations = args
            .iterations
            .as_deref()
            .map(|n| parse_count(n, "--iterations", u64::MAX))
            .transpose()?;
        config.allow_hosts = args
            .allow_hosts
            .iter()
            .map(|g| Grant::parse(g))
            .collect::<Result<_, _>>()?;
        config.vars = parse_vars(&args.vars)?;
        config.json = args.json.clone();
        config.limits.max_vu_memory = parse_size(&args.max_vu_memory, "--max-vu-memory")?;
        if config.limits.max_vu_memory < 2 * 1024 * 1024 {
            bail!(
                "--max-vu-memory {} is too small: a guest needs at least 2 MiB to start (Rust \
                 guests use about 1.1 MiB); try 64MiB",
                args.max_vu_memory
            );
        }
        config.limits.max_task_cpu = parse_duration(&args.max_task_cpu, "--max-task-cpu")?;
        config.limits.request_timeout = parse_duration(&args.timeout, "--timeout")?;
        if config.limits.request_timeout.is_zero() || config.limits.max_task_cpu.is_zero() {
            bail!("--timeout and --max-task-cpu must be longer than 0");
        }
        config.stop_timeout = parse_duration(&args.stop_timeout, "--stop-timeout")?;
        config.insecure = args.insecure;
        config.http2_prior_knowledge = args.http2_prior_knowledge;
        config.proto = args.proto.clone();
        config.proto_paths = args.proto_paths.clone();
        if args.no_cache {
            config.cache_dir = None;
        }
        config.quiet = args.quiet;
        Ok(config)
    }
}

/// Parse a base URL given on the command line or by the scenario.
pub fn parse_host_url(value: &str, origin: &str) -> Result<Url> {
    if !value.contains("://") {
        bail!(
            "{origin} {value:?} is not a valid URL: it has no scheme; write it as \
             http://{value} (or https://{value})"
        );
    }
    let url = match Url::parse(value) {
        Ok(url) => url,
        Err(e) => bail!(
            "{origin} {value:?} is not a valid URL ({e}); give scheme, host and port, e.g. \
             http://127.0.0.1:8080"
        ),
    };
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "{origin} {value:?} uses the scheme {:?}; only http and https are supported, e.g. \
             http://127.0.0.1:8080",
            url.scheme()
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("{origin} {value:?} has no host; e.g. http://127.0.0.1:8080");
    }
    Ok(url)
}

fn parse_count(value: &str, flag: &str, max: u64) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        Ok(0) => bail!("{flag} must be at least 1, got 0"),
        Ok(n) => bail!("{flag} {n} is above the maximum of {max}"),
        Err(_) => bail!("{flag} expects a whole number such as 10, got {value:?}"),
    }
}

fn parse_rate(value: &str, flag: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => bail!(
            "{flag} expects a number of users per second above 0 such as 10 or 0.5, got {value:?}"
        ),
    }
}

/// Parse `30s`, `5m`, `1h30m`, `250ms`, or a bare number of seconds.
pub fn parse_duration(value: &str, flag: &str) -> Result<Duration> {
    let trimmed = value.trim();
    if let Ok(seconds) = trimmed.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        anyhow::anyhow!("{flag} expects a duration such as 30s, 5m or 1h30m, got {value:?} ({e})")
    })
}

fn parse_size(value: &str, flag: &str) -> Result<u64> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            anyhow::anyhow!("{flag} expects a size such as 64MiB or 1GiB, got {value:?} ({e})")
        })
}

fn parse_vars(vars: &[String]) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for var in vars {
        match var.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                map.insert(key.to_string(), value.to_string());
            }
            _ => bail!("--var expects key=value, got {var:?}"),
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<RunConfig> {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().to_str().unwrap().to_string();
        let mut argv = vec!["horde", "run", path.as_str()];
        argv.extend_from_slice(extra);
        let Command::Run(raw) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        RunConfig::from_args(&raw)
    }

    #[test]
    fn valid_flags_are_converted() {
        let config = args(&[
            "--host",
            "http://127.0.0.1:9",
            "-u",
            "10",
            "-r",
            "2.5",
            "-t",
            "1m30s",
            "--var",
            "a=b=c",
            "--max-vu-memory",
            "64MiB",
            "--allow-host",
            "*.svc:443",
        ])
        .unwrap();
        assert_eq!(config.users, 10);
        assert_eq!(config.spawn_rate, 2.5);
        assert_eq!(config.run_time, Some(Duration::from_secs(90)));
        assert_eq!(config.vars["a"], "b=c");
        assert_eq!(config.limits.max_vu_memory, 64 << 20);
        assert_eq!(
            args(&["-t", "45"]).unwrap().run_time,
            Some(Duration::from_secs(45))
        );
    }

    #[test]
    fn invalid_flags_say_what_is_expected() {
        for (flags, expected) in [
            (&["-u", "0"][..], "--users must be at least 1"),
            (&["-u", "ten"][..], "--users expects a whole number"),
            (&["-r", "-1"][..], "--spawn-rate expects"),
            (&["-t", "soon"][..], "--run-time expects a duration"),
            (
                &["--host", "127.0.0.1:80"][..],
                "write it as http://127.0.0.1:80",
            ),
            (&["--host", "ftp://x"][..], "only http and https"),
            (&["--host", "http//x"][..], "not a valid URL"),
            (&["--var", "novalue"][..], "--var expects key=value"),
            (
                &["--max-vu-memory", "lots"][..],
                "--max-vu-memory expects a size",
            ),
            (&["--max-vu-memory", "1KiB"][..], "too small"),
            (&["--allow-host", "a:b"][..], "invalid --allow-host"),
        ] {
            let err = format!("{:#}", args(flags).unwrap_err());
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }
}
