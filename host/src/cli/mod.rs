//! Command line: clap's raw `Args`, validated into a `RunConfig` with
//! errors that say what was wrong and how to fix it.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use url::Url;

use crate::caps::data::FeedSpec;
use crate::policy::{Grant, Limits};
use crate::schedule::segment::Segment;
use crate::thresholds::Threshold;

mod args;
mod load;
mod outputs;
mod values;

pub use args::{AggregateArgs, BuildArgs, DemoArgs, MergeArgs, RunArgs};
pub use outputs::{OutputArgs, Outputs, parse_listen_address};

pub use values::{
    LoadModel, MAX_ARRIVAL_RATE, MAX_VUS, RateSegment, Stages, parse_duration, parse_host_url,
};
use values::{
    cut_segments, parse_arrival_rate, parse_count, parse_rate, parse_size, parse_vars,
    rate_segments,
};

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
    Demo(Box<DemoArgs>),
    /// Merge the result files of a run's execution segments (`horde run --segment I/N --out
    /// FILE`) into the whole run's report, percentiles exact; thresholds decide the exit code.
    Merge(Box<MergeArgs>),
    /// Merge a run's execution segments live: segments started with `--report-to URL` stream
    /// their results here; thresholds are evaluated on the whole every second.
    Aggregate(Box<AggregateArgs>),
    /// Build a scenario's source into a component: a Python file (componentize-py), a
    /// JavaScript file (esbuild + componentize-js) or a Rust crate folder (cargo), against the
    /// WIT and SDK built into this binary; works from any directory.
    Build(Box<BuildArgs>),
    /// Show the compile cache (folder, components, functions, size, cap), or clear it.
    Cache {
        #[command(subcommand)]
        action: Option<CacheAction>,
    },
}

/// What `horde cache` does.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CacheAction {
    /// Show the folder, the number of components, their size and the cap (the default).
    Show,
    /// Remove every compiled component and function (the next run compiles again).
    Clear,
}

/// Parse `horde run ...` arguments (argv[0] included), as the binary does.
pub fn parse_run_args<I, T>(argv: I) -> Result<RunArgs>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(argv)?.command {
        Command::Run(args) => Ok(*args),
        Command::Demo(_) => bail!("expected `horde run` arguments, got `horde demo`"),
        Command::Merge(_) => bail!("expected `horde run` arguments, got `horde merge`"),
        Command::Aggregate(_) => bail!("expected `horde run` arguments, got `horde aggregate`"),
        Command::Cache { .. } => bail!("expected `horde run` arguments, got `horde cache`"),
        Command::Build(_) => bail!("expected `horde run` arguments, got `horde build`"),
    }
}

/// Options that protect the host: only the operator may raise them; a
/// scenario's defaults may only lower them.
pub const OPERATOR_LIMITS: [&str; 6] = [
    "max-vu-memory",
    "max-response-body",
    "max-grpc-receive-size",
    "max-task-cpu",
    "stop-timeout",
    "timeout",
];

/// Options that together make the load model: when the command line sets
/// one of users, rate or stages, the scenario's values of all of them are
/// ignored.
const LOAD_MODEL: [&str; 6] = [
    "users",
    "spawn-rate",
    "rate",
    "stages",
    "max-vus",
    "pre-vus",
];

/// The most VUs a scenario's own options may ask for; more needs the flag.
pub const MAX_SCENARIO_VUS: u32 = 10_000;

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
    /// Open model: constant (or starting) arrival rate per second.
    pub rate: Option<f64>,
    pub stages: Option<Stages>,
    pub max_vus: u32,
    pub pre_vus: Option<u32>,
    pub max_queue_time: Duration,
    pub thresholds: Vec<Threshold>,
    /// Options set on the command line (scenario defaults do not override them).
    explicit: BTreeSet<String>,
    pub allow_hosts: Vec<Grant>,
    pub vars: HashMap<String, String>,
    /// Data feeds granted with `--data`, and those the scenario declares.
    pub feeds: Vec<FeedSpec>,
    pub declared_feeds: Vec<FeedSpec>,
    /// User classes the scenario declares (`class` defaults, parsed by
    /// `schedule::classes`), and the ones `--user-class` picks.
    pub declared_classes: Vec<String>,
    pub user_classes: Vec<String>,
    /// `--seed`: orders the random and shuffle data strategies.
    pub seed: Option<u64>,
    /// `--breakdown`: tag keys results are also reported by.
    pub breakdown: Vec<String>,
    /// `--segment`: the share of the load this process runs.
    pub segment: Segment,
    /// `--start-at`: when the load starts.
    pub start_at: Option<std::time::SystemTime>,
    /// The whole run's [`RunConfig::settings`] and most VUs, kept when a
    /// segment took its share.
    pub whole_settings: Option<String>,
    pub whole_capacity: Option<u32>,
    pub json: Option<PathBuf>,
    /// Locust's CSV files under this prefix, with a history row per name when `csv_full_history`.
    pub csv: Option<PathBuf>,
    pub csv_full_history: bool,
    /// The HTML report and the Prometheus endpoint.
    pub outputs: Outputs,
    /// The command line as typed (the HTML report's header).
    pub command_line: Vec<String>,
    pub limits: Limits,
    pub stop_timeout: Duration,
    pub insecure: bool,
    pub http2_prior_knowledge: bool,
    pub proto: Option<PathBuf>,
    pub proto_paths: Vec<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// `--cache-max` in bytes (`None`: `HORDE_CACHE_MAX`, else 1 GiB).
    pub cache_max: Option<u64>,
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
            rate: None,
            stages: None,
            max_vus: 100,
            pre_vus: None,
            max_queue_time: Duration::from_secs(1),
            thresholds: Vec::new(),
            explicit: BTreeSet::new(),
            allow_hosts: Vec::new(),
            vars: HashMap::new(),
            feeds: Vec::new(),
            declared_feeds: Vec::new(),
            declared_classes: Vec::new(),
            user_classes: Vec::new(),
            seed: None,
            breakdown: Vec::new(),
            segment: Segment::WHOLE,
            start_at: None,
            whole_settings: None,
            whole_capacity: None,
            json: None,
            csv: None,
            csv_full_history: false,
            outputs: Outputs::default(),
            command_line: Vec::new(),
            limits: Limits::default(),
            stop_timeout: Duration::from_secs(5),
            insecure: false,
            http2_prior_knowledge: false,
            proto: None,
            proto_paths: Vec::new(),
            cache_dir: crate::engine::default_cache_dir(),
            cache_max: None,
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
        let options: [(&str, &Option<String>); 15] = [
            ("users", &args.users),
            ("spawn-rate", &args.spawn_rate),
            ("run-time", &args.run_time),
            ("iterations", &args.iterations),
            ("rate", &args.rate),
            ("stages", &args.stages),
            ("max-vus", &args.max_vus),
            ("pre-vus", &args.pre_vus),
            ("max-queue-time", &args.max_queue_time),
            ("max-vu-memory", &args.max_vu_memory),
            ("max-response-body", &args.max_response_body),
            ("max-grpc-receive-size", &args.max_grpc_receive_size),
            ("max-task-cpu", &args.max_task_cpu),
            ("timeout", &args.timeout),
            ("stop-timeout", &args.stop_timeout),
        ];
        for (key, value) in options {
            if let Some(value) = value {
                config.set_option(key, value, "--")?;
                config.explicit.insert(key.to_string());
            }
        }
        for threshold in &args.thresholds {
            config.set_option("threshold", threshold, "--")?;
        }
        config.allow_hosts = args
            .allow_hosts
            .iter()
            .map(|g| Grant::parse(g))
            .collect::<Result<_, _>>()?;
        config.vars = parse_vars(&args.vars)?;
        config.feeds = args
            .data
            .iter()
            .map(|text| FeedSpec::parse_flag(text))
            .collect::<Result<_>>()?;
        config.seed = args.seed;
        config.user_classes = args
            .user_class
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        if let Some(segment) = &args.segment {
            config.segment = Segment::parse(segment)?;
        }
        if let Some(at) = &args.start_at {
            config.start_at = Some(values::parse_start_at(at)?);
        }
        for key in &args.breakdown {
            let key = key.trim();
            if key.is_empty() || key.len() > crate::stats::MAX_TAG_LEN {
                bail!(
                    "--breakdown {key:?}: give a tag key of 1 to {} bytes, e.g. --breakdown flow",
                    crate::stats::MAX_TAG_LEN
                );
            }
            config.breakdown.push(key.to_string());
        }
        config.json = args.outputs.files.json.clone();
        config.csv = args.outputs.files.csv.clone();
        config.csv_full_history = args.outputs.files.csv_full_history;
        config.outputs = args.outputs.validate()?;
        config.command_line = std::env::args().collect();
        config.insecure = args.insecure;
        config.http2_prior_knowledge = args.http2_prior_knowledge;
        config.proto = args.proto.clone();
        config.proto_paths = args.proto_paths.clone();
        if args.no_cache {
            config.cache_dir = None;
        }
        config.cache_max = match args.cache_max.as_deref() {
            Some(size) => Some(parse_size(size, "--cache-max")?),
            // A mistyped HORDE_CACHE_MAX is refused, not silently the default.
            None => Some(crate::cache::max_bytes()?),
        };
        config.quiet = args.quiet;
        config.check_combination()?;
        Ok(config)
    }

    /// Set one load or limit option from its text; `prefix` is "--" for a
    /// flag (errors then name the flag) or a phrase naming the scenario.
    fn set_option(&mut self, key: &str, value: &str, prefix: &str) -> Result<()> {
        let flag = format!("{prefix}{key}");
        match key {
            "users" => self.users = parse_count(value, &flag, u64::from(MAX_VUS))? as u32,
            "spawn-rate" => self.spawn_rate = parse_rate(value, &flag)?,
            "run-time" => {
                let run_time = parse_duration(value, &flag)?;
                if run_time.is_zero() {
                    bail!("{flag} must be longer than 0, e.g. 30s");
                }
                self.run_time = Some(run_time);
            }
            "iterations" => self.iterations = Some(parse_count(value, &flag, u64::MAX)?),
            "rate" => self.rate = Some(parse_arrival_rate(value, &flag)?),
            "stages" => self.stages = Some(Stages::parse(value, &flag)?),
            "max-vus" => self.max_vus = parse_count(value, &flag, u64::from(MAX_VUS))? as u32,
            "pre-vus" => self.pre_vus = Some(parse_count(value, &flag, u64::from(MAX_VUS))? as u32),
            "max-queue-time" => self.max_queue_time = parse_duration(value, &flag)?,
            "max-vu-memory" => {
                self.limits.max_vu_memory = parse_size(value, &flag)?;
                if self.limits.max_vu_memory < 2 * 1024 * 1024 {
                    bail!(
                        "{flag} {value} is too small: a guest needs at least 2 MiB to start (Rust \
                         guests use about 1.1 MiB); try 64MiB"
                    );
                }
            }
            "max-response-body" | "max-grpc-receive-size" => {
                let size = parse_size(value, &flag)?;
                if size == 0 {
                    bail!("{flag} must be larger than 0, e.g. 64MiB");
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if key == "max-response-body" {
                    self.limits.max_body_bytes = size;
                } else {
                    self.limits.max_grpc_receive = size;
                }
            }
            "max-task-cpu" | "timeout" => {
                let duration = parse_duration(value, &flag)?;
                if duration.is_zero() {
                    bail!("{flag} must be longer than 0");
                }
                if key == "timeout" {
                    self.limits.request_timeout = duration;
                } else {
                    self.limits.max_task_cpu = duration;
                }
            }
            "stop-timeout" => self.stop_timeout = parse_duration(value, &flag)?,
            "threshold" => self
                .thresholds
                .push(Threshold::parse(value).map_err(anyhow::Error::msg)?),
            "data" => self
                .declared_feeds
                .push(FeedSpec::parse_declaration(value)?),
            "class" => self.declared_classes.push(value.to_string()),
            other => bail!(
                "{flag} is not an option a scenario may set; use one of: users, spawn-rate, \
                 run-time, iterations, rate, stages, max-vus, pre-vus, max-queue-time, threshold, data, \
                 class, max-vu-memory, max-response-body, max-grpc-receive-size, max-task-cpu, timeout, stop-timeout (got \
                 {other:?})"
            ),
        }
        Ok(())
    }

    /// Apply the scenario's default options; flags given on the command
    /// line win, thresholds from both apply. The limits that protect the
    /// host ([`OPERATOR_LIMITS`]) are the operator's: a scenario may lower
    /// one, never raise it. Returns one line per option the scenario set or
    /// tried to set, for the start banner.
    pub fn apply_scenario_defaults(
        &mut self,
        defaults: &[(String, String)],
    ) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        // The operator's load model replaces the scenario's as a whole.
        let operator_model = ["users", "rate", "stages"]
            .iter()
            .find(|key| self.explicit.contains(**key));
        for (key, value) in defaults {
            if self.explicit.contains(key.as_str()) {
                continue;
            }
            if let Some(flag) = operator_model
                && LOAD_MODEL.contains(&key.as_str())
            {
                notes.push(format!(
                    "ignored the scenario's {key}={value}: the command line sets the load model \
                     (--{flag})"
                ));
                continue;
            }
            let before = self.limit_value(key);
            self.set_option(key, value, "the scenario's default option ")?;
            match (before, self.limit_value(key)) {
                (Some(before), Some(after)) if after > before => {
                    self.restore_limit(key, before);
                    notes.push(format!(
                        "ignored the scenario's {key}={value}: a scenario may lower a limit, \
                         never raise it (pass --{key} {value} to allow it)"
                    ));
                }
                _ if self.vu_count(key).is_some_and(|n| n > MAX_SCENARIO_VUS) => {
                    bail!(
                        "the scenario asks for {key}={value}, more than the {MAX_SCENARIO_VUS} \
                         VUs a scenario may start by itself; pass --{key} to run that many"
                    );
                }
                _ => notes.push(format!("{key}={value} (set by the scenario)")),
            }
        }
        self.check_combination()?;
        Ok(notes)
    }

    /// The most VUs an option asks for (None for options that are not VU counts).
    fn vu_count(&self, key: &str) -> Option<u32> {
        match key {
            "users" => Some(self.users),
            "max-vus" => Some(self.max_vus),
            "pre-vus" => self.pre_vus,
            "stages" => match &self.stages {
                Some(Stages::Users(stages)) => stages.iter().map(|(_, n)| *n).max(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value of an operator-only limit, comparable by size (None for other options).
    fn limit_value(&self, key: &str) -> Option<u128> {
        match key {
            "max-vu-memory" => Some(u128::from(self.limits.max_vu_memory)),
            "max-response-body" => Some(self.limits.max_body_bytes as u128),
            "max-grpc-receive-size" => Some(self.limits.max_grpc_receive as u128),
            "max-task-cpu" => Some(self.limits.max_task_cpu.as_nanos()),
            "stop-timeout" => Some(self.stop_timeout.as_nanos()),
            "timeout" => Some(self.limits.request_timeout.as_nanos()),
            _ => None,
        }
    }

    fn restore_limit(&mut self, key: &str, value: u128) {
        let nanos = || Duration::from_nanos(u64::try_from(value).unwrap_or(u64::MAX));
        match key {
            "max-vu-memory" => self.limits.max_vu_memory = u64::try_from(value).unwrap_or(u64::MAX),
            "max-response-body" => {
                self.limits.max_body_bytes = usize::try_from(value).unwrap_or(usize::MAX);
            }
            "max-grpc-receive-size" => {
                self.limits.max_grpc_receive = usize::try_from(value).unwrap_or(usize::MAX);
            }
            "max-task-cpu" => self.limits.max_task_cpu = nanos(),
            "stop-timeout" => self.stop_timeout = nanos(),
            "timeout" => self.limits.request_timeout = nanos(),
            _ => {}
        }
    }

    fn check_combination(&self) -> Result<()> {
        let open = self.rate.is_some() || matches!(self.stages, Some(Stages::Rates(_)));
        if open && self.iterations.is_some() {
            bail!(
                "--iterations applies to the closed model; with --rate the run length is --run-time or the stages"
            );
        }
        if self.rate.is_some() && self.run_time.is_none() && self.stages.is_none() {
            bail!("--rate needs a --run-time (e.g. --rate 100/s -t 1m) or --stages with rates");
        }
        if matches!(self.stages, Some(Stages::Users(_))) && self.rate.is_some() {
            bail!(
                "--stages with user counts is the closed model; with --rate give the stages as rates, e.g. 30s:50/s"
            );
        }
        if let Some(pre) = self.pre_vus
            && pre > self.max_vus
        {
            bail!("--pre-vus {pre} is more than --max-vus {}", self.max_vus);
        }
        Ok(())
    }

    /// The load model these options describe.
    pub fn load_model(&self) -> LoadModel {
        match (&self.stages, self.rate) {
            (Some(Stages::Rates(stages)), start) => LoadModel::Open {
                segments: cut_segments(rate_segments(start.unwrap_or(0.0), stages), self.run_time),
                pre_vus: self.pre_vus.unwrap_or(self.max_vus.min(10)),
                max_vus: self.max_vus,
                max_queue_time: self.max_queue_time,
            },
            (_, Some(rate)) => LoadModel::Open {
                segments: vec![RateSegment {
                    duration: self.run_time.unwrap_or_default(),
                    from: rate,
                    to: rate,
                }],
                pre_vus: self.pre_vus.unwrap_or(self.max_vus.min(10)),
                max_vus: self.max_vus,
                max_queue_time: self.max_queue_time,
            },
            (Some(Stages::Users(stages)), None) => LoadModel::ClosedStages {
                start: if self.explicit.contains("users") {
                    self.users
                } else {
                    0
                },
                stages: stages.clone(),
            },
            (None, None) => LoadModel::Closed {
                users: self.users,
                spawn_rate: self.spawn_rate,
            },
        }
    }
}

#[cfg(test)]
mod tests;
