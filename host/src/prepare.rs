//! The run's first phase, before any VU starts: ask the scenario for its
//! configuration (bounded in time and by signals), decide which base URL it
//! may use (a scenario's own default host only when the operator accepts
//! it), and check that the target answers.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use url::Url;
use wasmtime::Engine;

use crate::bindings::{ScenarioPre, user};
use crate::caps::http::HttpSettings;
use crate::cli::{self, RunConfig};
use crate::guest_log::GuestLogger;
use crate::policy::{self, NetworkPolicy, SocketGrants};
use crate::stats::Stats;
use crate::vu::{GuestFailure, RunContext, VuInstance, VuState};
use crate::{BadInput, policy::Grant};

/// How long the scenario's `configure` may take before the run is refused.
pub const CONFIGURE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the pre-flight check waits for the target to accept a connection.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

fn bad(message: String) -> anyhow::Error {
    anyhow!(BadInput(message))
}

/// Ask one probe instance (no network granted) for the scenario's
/// configuration. `configure` gets [`CONFIGURE_TIMEOUT`]; a signal stops
/// the wait at once.
pub async fn configure(
    engine: &Engine,
    pre: &ScenarioPre<VuState>,
    config: &RunConfig,
    logger: Arc<GuestLogger>,
) -> Result<user::Config> {
    let probe_context = RunContext::new(
        Stats::new(1, 16),
        NetworkPolicy::default(),
        SocketGrants::default(),
        config.limits.clone(),
        None,
        config.vars.clone(),
        logger,
        HttpSettings::new(config.insecure, config.http2_prior_knowledge),
        None,
        Arc::default(),
    );
    let probe = async {
        let mut probe = VuInstance::new(engine, pre, probe_context, 0, None, 0)
            .await
            .map_err(|e| bad(format!("{:#}", e.context("the scenario could not start"))))?;
        probe.configure().await.map_err(|failure| match failure {
            GuestFailure::Error(m) | GuestFailure::Trap(m) => {
                bad(format!("the scenario's configure failed: {m}"))
            }
        })
    };
    let result = tokio::select! {
        result = tokio::time::timeout(CONFIGURE_TIMEOUT, probe) => result.unwrap_or_else(|_| {
            Err(bad(format!(
                "the scenario's configure did not return within {}s: it must only describe the \
                 scenario (tasks, wait time, options), not wait or compute",
                CONFIGURE_TIMEOUT.as_secs()
            )))
        }),
        signal = crate::wait_for_signal() => Err(anyhow!(
            "interrupted by {signal} while the scenario's configure ran; nothing was run"
        )),
    };
    result
}

/// The base URL of the run: `--host`, else the scenario's default host
/// when the operator accepts it. A scenario names its default host itself,
/// so it is not granted silently: on a terminal the operator is asked;
/// otherwise the run is refused with the flag to pass.
pub fn base_url(config: &RunConfig, default_host: Option<&str>) -> Result<Option<Url>> {
    if let Some(host) = &config.host {
        return Ok(Some(host.clone()));
    }
    let Some(default) = default_host else {
        return Ok(None);
    };
    let url = cli::parse_host_url(default, "the scenario's default host")
        .map_err(|e| bad(format!("{e:#}")))?;
    let shown = crate::output::printable(url.as_str()).into_owned();
    let flag = format!("--host {}", shown.trim_end_matches('/'));
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!(
            "The scenario asks to reach {shown} (its default host), which the command line does \
             not grant. Grant it for this run? [y/N] "
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Ok(Some(url));
        }
        bail!(BadInput(format!(
            "the scenario's default host {shown} was not granted; pass `{flag}` to use it"
        )));
    }
    bail!(BadInput(format!(
        "the scenario asks to reach {shown} (its default host), which this run does not grant: \
         a scenario reaches only the hosts the operator names. Pass `{flag}` to use it, or \
         --host with the target you mean"
    )))
}

/// The grant of a base URL's origin.
pub fn origin_grant(url: &Url) -> Grant {
    let host = policy::unbracketed(url.host_str().unwrap_or_default());
    Grant::origin(host, url.port_or_known_default().unwrap_or(80))
}

/// Check that the target accepts TCP connections, so a typo in `--host`
/// fails at once with a clear message instead of as N failed requests.
pub async fn preflight(url: &Url) -> Result<()> {
    let host = policy::unbracketed(url.host_str().unwrap_or_default());
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve the host of {url}; check the --host value"))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(PREFLIGHT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = Some(e.to_string()),
            Err(_) => last = Some(format!("no answer within {}s", PREFLIGHT_TIMEOUT.as_secs())),
        }
    }
    bail!(
        "cannot reach the target {url}: {}. Is the server running and listening on that \
         address? Check --host",
        last.unwrap_or_else(|| "no addresses".into())
    )
}
