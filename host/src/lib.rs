//! Horde host runtime: loads a scenario component, runs one sandboxed
//! instance per virtual user under a load schedule, records every call and
//! reports. `run` is the whole pipeline; `main.rs` only parses and exits.

pub mod aggregate;
pub mod bindings;
pub mod budget;
pub mod build;
pub mod cache;
pub mod caps;
pub mod cli;
pub mod demo;
pub mod descriptors;
pub mod engine;
pub mod guest_log;
pub mod merge;
pub mod output;
pub mod policy;
pub mod prepare;
pub mod schedule;
pub mod segment_tls;
pub mod segment_token;
pub mod stats;
pub mod thresholds;
pub mod vu;
pub mod workers;

/// Every binary linking the host (horde, its examples and tests) allocates
/// with mimalloc: a request allocates and frees a few dozen small blocks on
/// each worker thread, where glibc malloc cost ~6% of a run's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::caps::http::HttpSettings;
use crate::cli::RunConfig;
use crate::engine::{CompileSource, EpochTicker};
use crate::guest_log::GuestLogger;
use crate::policy::{NetworkPolicy, SocketGrants};
use crate::schedule::Progress;
use crate::schedule::classes::{CLASS_TAG, UserClasses};
use crate::stats::{Report, Stats};
use crate::vu::RunContext;

/// The result of a finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: Report,
    pub stop_reason: Option<String>,
    /// VUs cut mid-task when the stop timeout ran out.
    pub interrupted_users: u32,
    /// VU instances replaced after a trap or broken limit.
    pub replaced_instances: u64,
    /// Time to compile or load the component.
    pub load_time: Duration,
    pub compile_source: CompileSource,
    /// Set when the scenario used a capability in a way no call could
    /// succeed with (e.g. JSON gRPC without `--proto`): the run stopped at
    /// once and is judged bad input (exit code 2).
    pub misuse: Option<String>,
    /// Why the JSON report could not be written (the run's results are
    /// still in `report`; the exit code is 3).
    pub report_error: Option<String>,
    /// The base URL relative paths were resolved under (`--host`).
    pub base_url: Option<String>,
    /// The web UI (`--web`), still serving the final results; it stops when
    /// dropped (the binary keeps it until Ctrl-C).
    pub web: Option<Arc<output::web::WebServer>>,
    /// `horde merge`: what the results miss (a segment that is missing or
    /// whose process died). Such results do not pass: exit code 1 at best.
    pub partial: Option<String>,
}

/// How a finished run is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Thresholds passed, or without thresholds nothing failed.
    Passed,
    /// At least one threshold failed (thresholds alone decide when given).
    ThresholdsFailed,
    /// No thresholds were given and requests failed or tasks raised exceptions.
    Failures,
    /// The scenario misused a capability in a way the run's flags must fix
    /// (the message is in `RunOutcome::misuse`).
    BadInput,
}

impl RunOutcome {
    /// True when nothing failed: no request failures and no exceptions.
    pub fn clean(&self) -> bool {
        self.report.total.failures == 0 && self.report.exceptions.is_empty()
    }

    /// True when VUs were cut at the end and not one request was recorded:
    /// the target accepted and never answered, or the VUs hung. Such a run
    /// does not pass.
    pub fn nothing_completed(&self) -> bool {
        self.interrupted_users > 0 && self.report.total.count == 0
    }

    /// The process exit code (as `horde` exits): 0 passed, 1 requests
    /// failed or tasks raised exceptions (no thresholds), 2 bad input, 3 the
    /// results could not be saved, 99 a threshold failed (k6's code).
    pub fn exit_code(&self) -> u8 {
        if self.report_error.is_some() {
            return 3;
        }
        match self.judgement() {
            Judgement::Passed => 0,
            Judgement::Failures => 1,
            Judgement::BadInput => 2,
            Judgement::ThresholdsFailed => 99,
        }
    }

    /// Thresholds decide when there are any (as in k6); otherwise any
    /// failure or exception fails the run (as in Locust), and so does a run
    /// whose VUs were cut without one request recorded.
    pub fn judgement(&self) -> Judgement {
        let judgement = self.judgement_of_results();
        if judgement == Judgement::Passed && self.partial.is_some() {
            Judgement::Failures
        } else {
            judgement
        }
    }

    fn judgement_of_results(&self) -> Judgement {
        if self.misuse.is_some() {
            Judgement::BadInput
        } else if !self.report.thresholds.is_empty() {
            if self.report.thresholds.iter().all(|v| v.passed) {
                Judgement::Passed
            } else {
                Judgement::ThresholdsFailed
            }
        } else if self.clean() && !self.nothing_completed() {
            Judgement::Passed
        } else {
            Judgement::Failures
        }
    }
}

/// Bad input the user can fix (exit code 2), as opposed to a failed run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

fn bad_input(error: anyhow::Error) -> anyhow::Error {
    anyhow!(BadInput(format!("{error:#}")))
}

/// Stop on the first SIGINT/SIGTERM (tasks may finish within the stop
/// timeout), abort the grace period on the second.
fn watch_signals(run: Arc<RunContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            let name = wait_for_signal().await;
            signals += 1;
            if signals == 1 {
                run.request_stop(format!("interrupted by {name}"));
            } else {
                run.abort.send_replace(true);
                return;
            }
        }
    })
}

/// The next SIGINT or SIGTERM (Ctrl-C elsewhere), by name.
#[cfg(unix)]
pub async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

#[cfg(not(unix))]
pub async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

/// Wait until `at` (`--start-at`) before starting the load; a time already
/// past starts at once, with a warning.
async fn wait_for_start(at: std::time::SystemTime, quiet: bool) {
    match at.duration_since(std::time::SystemTime::now()) {
        Ok(wait) => {
            if !quiet {
                eprintln!(
                    "waiting {} for --start-at {}",
                    humantime::format_duration(Duration::from_secs(wait.as_secs())),
                    humantime::format_rfc3339_seconds(at)
                );
            }
            tokio::time::sleep(wait).await;
        }
        Err(late) => eprintln!(
            "warning: --start-at {} passed {:.1} s ago; starting now",
            humantime::format_rfc3339_seconds(at),
            late.duration().as_secs_f64()
        ),
    }
}

/// Run a scenario to the end and return its report. Bad input comes back as
/// an error wrapping [`BadInput`].
pub async fn run(config: &RunConfig) -> Result<RunOutcome> {
    let mut outputs = output::plan::Outputs::prepare(config)
        .await
        .map_err(bad_input)?;
    let mut reserve = descriptors::Reserve::take();
    let proto =
        caps::grpc::load_schema(config.proto.as_deref(), &config.proto_paths).map_err(bad_input)?;
    // The scenario's defaults may change the VU count, but they are known only
    // after it loads: the pool is sized from the command line, with the
    // on-demand allocator below the pooling threshold.
    // `--max-users` lets the web UI go beyond them: the pool holds that many.
    let capacity = config
        .vu_capacity()
        .max(config.outputs.max_users.unwrap_or(0));
    let pool =
        (capacity >= engine::POOLING_FROM_VUS).then_some((capacity, config.limits.max_vu_memory));
    // Compiled code from a folder another user can write is not trusted.
    let cache_dir = config
        .cache_dir
        .as_deref()
        .filter(|dir| match cache::check_private(dir) {
            Ok(()) => true,
            Err(warning) => {
                eprintln!("warning: {warning}");
                false
            }
        });
    let functions = cache_dir.map(|dir| Arc::new(cache::FunctionStore::new(dir)));
    let engine = engine::new_engine_for(pool, functions.clone())?;
    let linker = engine::new_linker(&engine)?;
    let loaded = engine::load_scenario(
        &engine,
        &linker,
        &config.scenario,
        config.embedded,
        cache_dir,
    )
    .map_err(bad_input)?;
    if let Some(store) = &functions {
        // The compile's component and function pack are both in place only
        // now: keep the cache under its cap with them counted.
        store.finish();
        if let (CompileSource::Compiled, Some(dir), Ok(max)) = (
            loaded.source,
            cache_dir,
            config.cache_max.map_or_else(cache::max_bytes, Ok),
        ) {
            let _ = cache::prune(dir, max);
        }
    }
    let _ticker = EpochTicker::start(&engine);
    if !config.quiet {
        let how = match loaded.source {
            CompileSource::Compiled => "compiled",
            CompileSource::Cached => "loaded from cache",
        };
        // How much of a compile the function cache spared.
        let reused = match (loaded.source, &functions) {
            (CompileSource::Compiled, Some(store)) => {
                let (hits, written) = store.counts();
                format!(" ({hits} of {} functions from the cache)", hits + written)
            }
            _ => String::new(),
        };
        eprintln!(
            "scenario {} {how} in {:.1} ms{reused}",
            config.scenario.display(),
            loaded.load_time.as_secs_f64() * 1000.0
        );
    }

    let logger = GuestLogger::new(config.limits.log_lines_per_second);
    let scenario_config = prepare::configure(&engine, &loaded.pre, config, logger.clone()).await?;
    let mut config = config.clone();
    let notes = config
        .apply_scenario_defaults(&scenario_config.defaults)
        .map_err(bad_input)?;
    for note in &notes {
        if note.starts_with("ignored") {
            eprintln!("warning: {}", output::printable(note));
        } else if !config.quiet {
            eprintln!("{}", output::printable(note));
        }
    }
    config.apply_segment();
    if !config.segment.is_whole() && config.vu_capacity() == 0 {
        eprintln!(
            "warning: execution segment {} of this load gets no users (floor(END*users) - \
             floor(START*users) is 0); it runs no iterations",
            config.segment
        );
    }
    let config = &config;
    let classes = UserClasses::new(
        &scenario_config.tasks,
        &scenario_config.wait,
        &config.declared_classes,
        &config.user_classes,
    )
    .map_err(bad_input)?;
    if matches!(config.load_model(), cli::LoadModel::Open { .. }) {
        classes.check_open_model().map_err(bad_input)?;
    } else if classes.user_limit().is_some() {
        let capacity = config.vu_capacity();
        let dealt: u32 = classes
            .users_of(capacity, config.class_slot_offset())
            .iter()
            .sum();
        if capacity > dealt {
            eprintln!(
                "warning: only fixed-count user classes run; {} of the {capacity} users asked \
                 for {} not started",
                capacity - dealt,
                if capacity - dealt == 1 { "is" } else { "are" }
            );
        }
    }
    classes
        .check_thresholds(&config.thresholds)
        .map_err(bad_input)?;

    // Segments must agree on the shuffled order without talking: their
    // default seed is fixed.
    let seed = config.seed.unwrap_or_else(|| {
        if config.segment.is_whole() {
            // Below 2^53: the JSON's seed survives jq and JavaScript.
            fastrand::u64(..1 << 53)
        } else {
            0
        }
    });
    // Reading may take long (up to 256 MiB, or a slow network file
    // system; FIFOs are refused without blocking): a signal ends the wait. A thread of its own, not the runtime's blocking pool,
    // so a read that never ends does not hold up the exit.
    let (specs, declared, segment) = (
        config.feeds.clone(),
        config.declared_feeds.clone(),
        config.segment,
    );
    let (loaded_tx, loading) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("horde-data".into())
        .spawn(move || {
            let _ = loaded_tx.send(caps::data::Feeds::load(&specs, &declared, seed, segment));
        })
        .context("starting the thread that reads the --data files")?;
    let feeds = tokio::select! {
        loaded = loading => loaded.context("reading the --data files")?.map_err(bad_input)?,
        signal = wait_for_signal() => {
            return Err(bad_input(anyhow!("interrupted by {signal} while reading the --data files")));
        }
    };

    let base_url = prepare::base_url(config, scenario_config.default_host.as_deref())?;
    let mut grants = config.allow_hosts.clone();
    if let Some(url) = &base_url {
        grants.push(prepare::origin_grant(url));
        if config.preflight {
            prepare::preflight(url).await.map_err(bad_input)?;
        }
    }

    if let Some(at) = config.start_at {
        wait_for_start(at, config.quiet).await;
    }
    let stats = Stats::new(config.limits.max_event_names, config.limits.max_name_len);
    stats.keep_names(
        config
            .thresholds
            .iter()
            .filter_map(|t| t.selected_name())
            .map(String::from),
    );
    stats.share_names_among(capacity);
    let tag_keys = config.breakdown.iter().map(String::as_str);
    let threshold_tags = config.thresholds.iter().filter_map(|t| t.tag_key());
    // With user classes, results per class come with every run.
    let class_tag = classes.named().then_some(CLASS_TAG);
    stats.track_tags(
        tag_keys
            .chain(threshold_tags)
            .chain(class_tag)
            .map(String::from)
            .collect(),
    );
    let grant_list: Vec<String> = grants.iter().map(ToString::to_string).collect();
    let policy = NetworkPolicy::new(grants);
    let sockets = SocketGrants::resolve(&policy).await;
    let run = RunContext::new(
        stats.clone(),
        policy,
        sockets,
        config.limits.clone(),
        base_url,
        config.vars.clone(),
        logger,
        HttpSettings::new(config.insecure, config.http2_prior_knowledge),
        proto,
        Arc::new(feeds),
    );
    let signals = watch_signals(run.clone());
    let progress = Arc::new(Progress::default());
    let (finished, finished_rx) = tokio::sync::watch::channel(false);
    // With a pre-allocated pool, the web UI may not ask for more VUs.
    let max_users = if pool.is_some() {
        capacity
    } else {
        cli::MAX_VUS
    };
    let sinks = outputs.sinks(config, &run, &stats, &loaded.sha256, grant_list, max_users)?;
    // A segment the aggregator refuses (another scenario, an overlapping
    // segment) must not add its load.
    if let Some((registration, url)) = outputs.registration.take() {
        output::forward::Forwarder::registered(registration, &url)
            .await
            .map_err(bad_input)?;
    }
    let monitor = tokio::spawn(output::live::monitor(
        stats.clone(),
        run.clone(),
        finished_rx,
        progress.clone(),
        config.thresholds.clone(),
        sinks,
    ));
    let workers =
        Arc::new(workers::VuWorkers::per_core().context("starting the VU worker threads")?);
    let shared = schedule::Shared {
        workers: workers.clone(),
        engine: engine.clone(),
        pre: loaded.pre.clone(),
        run: run.clone(),
        classes: classes.clone(),
        progress: progress.clone(),
        iterations: config.iterations,
        stop_timeout: config.stop_timeout,
        control: outputs.control.clone(),
        segment: config.segment,
        class_slot_offset: config.class_slot_offset(),
    };
    let load_model = config.load_model();
    let outcome = schedule::run(shared, load_model.clone(), config.run_limit()).await;
    if !run.stopping() {
        run.request_stop(match (&load_model, config.iterations) {
            (cli::LoadModel::Open { .. }, _) => "arrival schedule finished".into(),
            (_, Some(n)) => format!("{n} iterations done"),
            (_, None) => match run.data.ran_out() {
                Some(why) => format!("all users finished: {why}"),
                None => "all users finished".into(),
            },
        });
    }
    signals.abort();
    finished.send_replace(true);
    let mut monitored = monitor.await.unwrap_or_default();
    // Rates are over the load: a VU cut after overstaying the stop does not
    // stretch the run's duration.
    let load_time = match outcome.load_end {
        Some(end) => end.saturating_duration_since(stats.started()),
        None => stats.started().elapsed(),
    };
    let users = outputs.users_target().unwrap_or(config.users);
    let mut report = stats.report_over(users, load_time);
    report.timeline = std::mem::take(&mut monitored.timeline);
    report.data = run.data.report();
    report.segment = (!config.segment.is_whole()).then(|| config.segment.to_string());
    if classes.named() {
        let open = matches!(load_model, cli::LoadModel::Open { .. });
        let peak = (!open).then(|| config.vu_capacity());
        report.user_classes = classes.report(peak, config.class_slot_offset());
    }
    let elapsed = Duration::from_secs_f64(report.duration_s);
    let iterations = stats.iteration_counts();
    report.thresholds = config
        .thresholds
        .iter()
        .flat_map(|t| stats.with_aggregate(|a| t.evaluate(a, elapsed, iterations)))
        .collect();
    let stop_reason = run.stop_reason();
    // Stopped by the aggregator on a threshold of the whole run: this
    // segment failed it too (exit code 99, as a run stopped by its own).
    if let Some(reason) = stop_reason
        .as_deref()
        .filter(|r| r.starts_with(output::forward::STOPPED_BY_AGGREGATOR))
    {
        report.thresholds.push(thresholds::Verdict {
            threshold: reason.to_string(),
            condition: "abortOnFail on the aggregator".into(),
            actual: None,
            passed: false,
        });
    }
    let mut result = RunOutcome {
        report,
        stop_reason,
        interrupted_users: outcome.interrupted,
        replaced_instances: progress.replaced.load(Ordering::Relaxed),
        load_time: loaded.load_time,
        compile_source: loaded.source,
        misuse: run.misuse_reported(),
        report_error: None,
        base_url: run.base_url.as_ref().map(|url| url.to_string()),
        web: None,
        partial: None,
    };
    reserve.release();
    let mut sinks = monitored.sinks;
    outputs.finish(config, &mut sinks, &mut result).await;
    Ok(result)
}
