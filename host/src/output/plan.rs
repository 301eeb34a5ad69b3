//! A run's outputs through its phases: [`Outputs::prepare`] checks every
//! file can be written and binds every server before anything starts (bad
//! destinations fail the run at once); [`Outputs::sinks`] makes the
//! per-second sinks once the run is set up; [`Outputs::finish`] writes the
//! end-of-run files, waits for Prometheus's last scrape, and hands the web
//! UI to the caller, which keeps it up until Ctrl-C.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tokio::sync::watch;

use super::Sink;
use super::prometheus::{PrometheusSink, RunMetrics};
use super::serve::ServerLimits;
use super::web::{WebServer, live::Bounds, live::LiveSink, live::LoadState};
use crate::RunOutcome;
use crate::cli::RunConfig;
use crate::schedule::LoadChange;
use crate::stats::Stats;
use crate::vu::RunContext;

/// What the outputs of one run hold between its phases.
pub struct Outputs {
    csv: Option<super::csv::CsvOutput>,
    metrics: Option<Arc<RunMetrics>>,
    prometheus: Option<super::server::Server>,
    web: Option<Arc<WebServer>>,
    /// The receiving end of the web UI's load controls, for the executors.
    pub control: watch::Receiver<Option<LoadChange>>,
    /// `--report-to`: the aggregator's answer to this segment's header,
    /// awaited before the load starts.
    pub registration: Option<(
        tokio::sync::oneshot::Receiver<super::forward::Registration>,
        url::Url,
    )>,
}

impl Outputs {
    /// Check the files and bind the servers the flags ask for. Errors are
    /// the user's to fix (a folder that does not exist, a port in use).
    pub async fn prepare(config: &RunConfig) -> Result<Outputs> {
        if let Some(path) = &config.json {
            super::json::check_writable(path)?;
        }
        if let Some(path) = &config.outputs.html {
            super::json::check_file_writable(path, "--html", "report.html")?;
        }
        if let Some(path) = &config.outputs.out {
            // Opening a pipe for writing waits for a reader: refuse it first.
            if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
                anyhow::bail!(
                    "--out {}: not a regular file (a pipe or a device); give a file name, e.g. \
                     --out run.horde",
                    path.display()
                );
            }
            super::json::check_file_writable(path, "--out", "run.horde")?;
        }
        // Created first: this checks the CSV files can be written.
        let csv = config
            .csv
            .as_deref()
            .map(|prefix| super::csv::CsvOutput::create(prefix, config.csv_full_history))
            .transpose()?;
        let wanted = config.outputs.prometheus.is_some() || config.outputs.web.is_some();
        let metrics = wanted.then(RunMetrics::new);
        let prometheus = match (config.outputs.prometheus, &metrics) {
            (Some(address), Some(metrics)) => {
                let limits = config
                    .outputs
                    .server_limits
                    .unwrap_or(ServerLimits::METRICS);
                let server = super::server::serve_metrics(address, metrics.clone(), limits).await?;
                eprintln!("Prometheus metrics at http://{}/metrics", server.address);
                Some(server)
            }
            _ => None,
        };
        let (change, control) = watch::channel(None);
        let web = match (config.outputs.web, &metrics) {
            (Some(address), Some(metrics)) => {
                let server = super::web::serve(
                    address,
                    config.outputs.web_token.clone(),
                    LoadState::of(&config.load_model()),
                    metrics.clone(),
                    change,
                    config.outputs.server_limits.unwrap_or(ServerLimits::WEB),
                )
                .await?;
                eprintln!("web UI at {}", server.url);
                Some(Arc::new(server))
            }
            _ => None,
        };
        Ok(Outputs {
            csv,
            metrics,
            prometheus,
            web,
            control,
            registration: None,
        })
    }

    /// The per-second sinks, once the run is set up (`config` with the
    /// scenario's defaults applied); `sha256` names the component, `grants`
    /// what it may reach, `max_users` the most VUs its engine can hold (the
    /// web UI's controls stay within it, `-u` and `--max-users`).
    pub fn sinks(
        &mut self,
        config: &RunConfig,
        run: &Arc<RunContext>,
        stats: &Arc<Stats>,
        sha256: &str,
        grants: Vec<String>,
        max_users: u32,
    ) -> Result<Vec<Box<dyn Sink>>> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if !config.quiet {
            sinks.push(Box::new(super::live::LiveLine::new(
                run,
                config.run_limit(),
            )));
        }
        if let Some(csv) = self.csv.take() {
            sinks.push(Box::new(csv));
        }
        let host = run.base_url.as_ref().map(|url| url.to_string());
        let model = config.load_model();
        let meta = super::html::RunMeta {
            scenario: config.scenario.display().to_string(),
            sha256: sha256.to_string(),
            command_line: config.command_line.clone(),
            model: model.describe(),
            host: host.clone(),
            grants,
            started_at: SystemTime::now(),
        };
        if let Some(path) = &config.outputs.html {
            sinks.push(Box::new(super::html::HtmlReport::create(
                path.clone(),
                meta.clone(),
            )?));
        }
        let wants_header = config.outputs.out.is_some() || config.outputs.report_to.is_some();
        if wants_header {
            let header = super::result_file::Header {
                format: super::result_file::FORMAT.into(),
                version: super::result_file::VERSION,
                horde_version: env!("CARGO_PKG_VERSION").into(),
                scenario: meta.scenario.clone(),
                sha256: sha256.to_string(),
                segment: (!config.segment.is_whole()).then(|| config.segment.to_string()),
                settings: config
                    .whole_settings
                    .clone()
                    .unwrap_or_else(|| config.settings()),
                thresholds: config.thresholds.iter().map(|t| t.source.clone()).collect(),
                started_at: humantime::format_rfc3339_millis(meta.started_at).to_string(),
                command_line: config.command_line.clone(),
            };
            if let Some(path) = &config.outputs.out {
                sinks.push(Box::new(super::result_file::ResultFile::create(
                    path, &header,
                )?));
            }
            if let Some(to) = &config.outputs.report_to {
                let url = &to.url;
                let (forwarder, registration) =
                    super::forward::Forwarder::start(to.clone(), header, run.clone());
                sinks.push(Box::new(forwarder));
                self.registration = Some((registration, url.clone()));
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.describe_run(vec![
                ("scenario", meta.scenario.clone()),
                ("host", host.unwrap_or_default()),
                ("model", meta.model.clone()),
            ]);
            sinks.push(Box::new(PrometheusSink::new(
                metrics.clone(),
                config.limits.max_event_names,
            )));
        }
        if let Some(web) = &self.web {
            // The scenario's defaults may have set the model.
            *web.published.load.lock().unwrap_or_else(|e| e.into_inner()) = LoadState::of(&model);
            *web.published
                .bounds
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Bounds::of(
                &model,
                max_users,
                config.outputs.max_users,
                config.outputs.max_rate,
            );
            sinks.push(Box::new(LiveSink::new(
                meta,
                stats.clone(),
                run.clone(),
                web.published.clone(),
            )));
        }
        Ok(sinks)
    }

    /// The users the run ended with when the web UI changed them.
    pub fn users_target(&self) -> Option<u32> {
        match self.web.as_ref()?.published.load() {
            LoadState::Closed { users, .. } => Some(users),
            _ => None,
        }
    }

    /// The run is over: write the JSON report and every sink's files (a
    /// failure is recorded in `result.report_error`, the others still
    /// write), let Prometheus scrape the final values, and hand over the web
    /// UI.
    pub async fn finish(
        self,
        config: &RunConfig,
        sinks: &mut [Box<dyn Sink>],
        result: &mut RunOutcome,
    ) {
        if let Some(path) = &config.json
            && let Err(error) = super::json::write(path, result)
        {
            result.report_error = Some(format!("{error:#}"));
        }
        for sink in sinks {
            if let Err(error) = sink.finish(result) {
                let message = format!("{error:#}");
                result.report_error = Some(match result.report_error.take() {
                    Some(earlier) => format!("{earlier}; {message}"),
                    None => message,
                });
            }
        }
        if let (Some(server), Some(metrics)) = (&self.prometheus, &self.metrics) {
            // Interrupted (Ctrl-C): the user wants out; a short wait only.
            let interrupted = result
                .stop_reason
                .as_deref()
                .is_some_and(|reason| reason.starts_with("interrupted by"));
            let limit = Duration::from_secs(if interrupted { 5 } else { 30 });
            if !config.quiet {
                eprintln!(
                    "waiting up to {} s for a last scrape of http://{}/metrics (Ctrl-C to skip)",
                    limit.as_secs(),
                    server.address
                );
            }
            metrics.wait_for_final_scrape(limit).await;
        }
        result.web = self.web;
    }
}
