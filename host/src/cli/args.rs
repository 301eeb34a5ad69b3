//! The raw options of `horde run` and `horde demo`, as clap parses them
//! (validated into a `RunConfig` by the parent module).

use std::path::PathBuf;

use super::OutputArgs;

/// Options of `horde run` (raw, as typed).
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// The scenario: a component built with `horde build`, or a source (a .py
    /// or .js file, a Rust crate folder) that is built first.
    pub scenario: PathBuf,
    /// Base URL for relative request paths, e.g. http://127.0.0.1:8080. Its origin is granted.
    #[arg(long = "host", short = 'H')]
    pub host: Option<String>,
    /// Number of concurrent users (VUs) [default: 1].
    #[arg(short = 'u', long = "users")]
    pub users: Option<String>,
    /// Users started per second [default: 1].
    #[arg(short = 'r', long = "spawn-rate")]
    pub spawn_rate: Option<String>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m (a bare number is seconds).
    #[arg(short = 't', long = "run-time")]
    pub run_time: Option<String>,
    /// Stop after this many tasks in total, shared by all users.
    #[arg(short = 'i', long = "iterations")]
    pub iterations: Option<String>,
    /// Open model: start iterations at this rate, e.g. 200/s, 600/m (needs -t or rate --stages).
    #[arg(long = "rate")]
    pub rate: Option<String>,
    /// Ramping stages: users ("30s:10,1m:100,30s:0") or rates ("30s:50/s,2m:500/s").
    #[arg(long = "stages")]
    pub stages: Option<String>,
    /// Open model: most VU instances [default: 100].
    #[arg(long = "max-vus")]
    pub max_vus: Option<String>,
    /// Open model: VU instances made before the start [default: min(10, max-vus)].
    #[arg(long = "pre-vus")]
    pub pre_vus: Option<String>,
    /// Open model: how long an iteration may wait for a free VU before it is dropped [default: 1s].
    #[arg(long = "max-queue-time")]
    pub max_queue_time: Option<String>,
    /// Pass/fail criterion in k6 syntax, e.g. 'http_req_duration: p(95)<200' (repeatable).
    #[arg(long = "threshold", value_name = "THRESHOLD")]
    pub thresholds: Vec<String>,
    /// Also allow this destination: host:port, host:* (every port), *.domain[:port],
    /// http(s)://host[:port] (the scheme's default port), or host alone (ports 80 and 443 only).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// A run variable the scenario reads with control.get-var, as key=value.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A test data feed the scenario reads rows from (repeatable):
    /// NAME=FILE[;strategy=sequential|random|shuffle|unique|per-vu][;on-end=wrap|stop-vu|stop-test|fail]
    /// [;format=csv|tsv|jsonl|json][;header=false][;delimiter=tab]. Quote it in the shell.
    #[arg(long = "data", value_name = "NAME=FILE[;OPTIONS]")]
    pub data: Vec<String>,
    /// Seed of the random and shuffle data strategies: the same seed gives the same rows
    /// in the same order [default: a random seed, shown in the report].
    #[arg(long = "seed")]
    pub seed: Option<u64>,
    /// Also report results per value of this tag key (repeatable), in the JSON's `breakdown`
    /// (tags come from the scenario: tags.set, or a request's tags).
    #[arg(long = "breakdown", value_name = "KEY")]
    pub breakdown: Vec<String>,
    /// Run only these of the scenario's user classes (repeatable, or comma-separated), as
    /// Locust's class names on its command line [default: every class].
    #[arg(long = "user-class", value_name = "NAME", value_delimiter = ',')]
    pub user_class: Vec<String>,
    /// Run only this execution segment of the load, as k6's: I/N (the I-th of N equal parts)
    /// or START:END fractions (1/4:1/2, 0.25:0.5). N processes with 1/N ... N/N run the whole.
    /// I may be a sum (K+1/N) for orchestrators that count from 0.
    #[arg(long = "segment", value_name = "I/N|START:END", env = "HORDE_SEGMENT")]
    pub segment: Option<String>,
    /// Start the load at this moment (RFC 3339, e.g. 2026-12-01T10:00:00Z, or Unix seconds),
    /// so segments started apart begin together; the scenario is loaded before.
    #[arg(long = "start-at", value_name = "TIME")]
    pub start_at: Option<String>,
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// Linear memory each VU may use, e.g. 64MiB, 1GiB [default: 128MiB].
    #[arg(long = "max-vu-memory")]
    pub max_vu_memory: Option<String>,
    /// Largest response body a request keeps, e.g. 100MiB [default: 32MiB]; a request that
    /// discards its body counts a download of any size.
    #[arg(long = "max-response-body")]
    pub max_response_body: Option<String>,
    /// Largest gRPC message a call receives, e.g. 16MiB [default: 4MiB, as gRPC's]; a larger
    /// reply fails with RESOURCE_EXHAUSTED.
    #[arg(long = "max-grpc-receive-size")]
    pub max_grpc_receive_size: Option<String>,
    /// Guest CPU time one task may use before the VU is stopped and replaced [default: 10s].
    #[arg(long = "max-task-cpu")]
    pub max_task_cpu: Option<String>,
    /// Default timeout of one request [default: 60s].
    #[arg(long = "timeout")]
    pub timeout: Option<String>,
    /// After a stop, how long running tasks may finish before they are cut [default: 5s].
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<String>,
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
    /// Do not read or write the compile cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Keep the compile cache under this size, e.g. 500MiB [default:
    /// $HORDE_CACHE_MAX, else 1GiB]; the least recently used components go first.
    #[arg(long = "cache-max", value_name = "SIZE")]
    pub cache_max: Option<String>,
    /// No live progress; only the final summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// Options of `horde build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// The scenario's source: a Python file (app.py), a JavaScript file
    /// (scenario.js) or a Rust crate folder (with Cargo.toml).
    #[arg(value_name = "SCENARIO")]
    pub source: PathBuf,
    /// Where to write the component [default: the source's name with .wasm,
    /// in the current directory; a crate's library name].
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Options of `horde demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// A scenario component to run instead of the embedded example (e.g. a
    /// Python or JavaScript build of the same shopper).
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// A run variable for the scenario (repeatable), as with `horde run`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A test data feed (repeatable), as with `horde run`.
    #[arg(long = "data", value_name = "NAME=FILE[;OPTIONS]")]
    pub data: Vec<String>,
    /// Seed of the random and shuffle data strategies, as with `horde run`.
    #[arg(long = "seed")]
    pub seed: Option<u64>,
    /// Run only these user classes (repeatable), as with `horde run`.
    #[arg(long = "user-class", value_name = "NAME", value_delimiter = ',')]
    pub user_class: Vec<String>,
    /// Also report results per value of this tag key (repeatable), as with `horde run`.
    #[arg(long = "breakdown", value_name = "KEY")]
    pub breakdown: Vec<String>,
    /// Run only this execution segment (I/N or START:END), as with `horde run`.
    #[arg(long = "segment", value_name = "I/N|START:END")]
    pub segment: Option<String>,
    /// A pass/fail threshold (repeatable), as with `horde run`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// How long to run.
    #[arg(short = 't', long = "run-time", default_value = "10s")]
    pub run_time: String,
    /// Number of users.
    #[arg(short = 'u', long = "users", default_value = "20")]
    pub users: String,
    /// Users started per second.
    #[arg(short = 'r', long = "spawn-rate", default_value = "10")]
    pub spawn_rate: String,
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// No live progress; only the final summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
}

/// Options of `horde merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Result files written by `horde run --out`, one per execution segment.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub merged: MergedOutputArgs,
}

/// Thresholds and outputs of a merged run (`horde merge`, `horde aggregate`).
#[derive(Debug, Clone, clap::Args)]
pub struct MergedOutputArgs {
    /// A threshold on the merged results (repeatable), besides the run's own, which every
    /// file records; k6 syntax, as with `horde run`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    #[command(flatten)]
    pub files: super::outputs::ReportFileArgs,
}

/// Options of `horde aggregate`.
#[derive(Debug, Clone, clap::Args)]
pub struct AggregateArgs {
    /// Where segments report (`--report-to http://ADDR/`), e.g. 0.0.0.0:6566; port 0 picks a
    /// free one (printed at the start).
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:6566")]
    pub listen: String,
    /// How many segments make the whole run.
    #[arg(long = "expect", value_name = "N")]
    pub expect: usize,
    /// A segment silent this long is given up on (reported, and the run does not pass).
    #[arg(long = "timeout", value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
    #[command(flatten)]
    pub merged: MergedOutputArgs,
    /// No live line; only the final summary.
    #[arg(long = "quiet", short = 'q')]
    pub quiet: bool,
    /// A file holding the run's segment token, which every segment signs its records with;
    /// without it the token is read from HORDE_TOKEN. Records not signed with it are refused.
    #[arg(long = "token-file", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Serve segments over TLS with this certificate chain (PEM); segments then report to
    /// https://NAME:PORT/ and check it with --report-ca.
    #[arg(long = "tls-cert", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl AggregateArgs {
    /// The request, checked (bad values are the user's to fix).
    pub fn request(&self) -> anyhow::Result<crate::aggregate::AggregateRequest> {
        if self.expect == 0 {
            anyhow::bail!("--expect must be at least 1: the number of segments of the run");
        }
        let timeout = super::values::parse_duration(&self.timeout, "--timeout")?;
        if timeout.is_zero() {
            anyhow::bail!("--timeout must be longer than 0, e.g. 10s");
        }
        Ok(crate::aggregate::AggregateRequest {
            listen: super::outputs::parse_listen_address(&self.listen, "--listen")?,
            expect: self.expect,
            timeout,
            merge: self.merged.request(Vec::new())?,
            quiet: self.quiet,
            token: crate::segment_token::SegmentToken::from_file_or_env(
                self.token_file.as_deref(),
                "horde aggregate",
            )?,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::segment_tls::server_config(cert, key)?),
                _ => None,
            },
        })
    }
}

impl MergeArgs {
    /// The request, thresholds parsed (a bad one is the user's to fix).
    pub fn request(&self) -> anyhow::Result<crate::merge::MergeRequest> {
        self.merged.request(self.files.clone())
    }
}

impl MergedOutputArgs {
    fn request(&self, files: Vec<PathBuf>) -> anyhow::Result<crate::merge::MergeRequest> {
        Ok(crate::merge::MergeRequest {
            files,
            thresholds: self
                .thresholds
                .iter()
                .map(|t| crate::thresholds::Threshold::parse(t).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?,
            json: self.files.json.clone(),
            csv: self.files.csv.clone(),
            csv_full_history: self.files.csv_full_history,
            html: self.files.html.clone(),
        })
    }
}
