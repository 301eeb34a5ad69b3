//! The output flags shared by `horde run` and `horde demo` (JSON, CSV, HTML,
//! Prometheus, the web UI), as typed, and their validated form.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{MAX_ARRIVAL_RATE, MAX_VUS};
use crate::output::serve::ServerLimits;

/// The report files a run, a merge or an aggregator writes (raw, as typed).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportFileArgs {
    /// Write the report as JSON to this file.
    #[arg(long = "json", value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write Locust's CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv (a row each
    /// second), PREFIX_failures.csv, PREFIX_exceptions.csv.
    #[arg(long = "csv", value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// With --csv: a history row per request name each second, not only the aggregated one.
    #[arg(long = "csv-full-history", requires = "csv")]
    pub csv_full_history: bool,
    /// Write a self-contained HTML report (charts, sortable table, percentiles of any time
    /// range; opens offline) to this file.
    #[arg(long = "html", value_name = "PATH")]
    pub html: Option<PathBuf>,
}

/// Where a run's results go besides the terminal (raw, as typed).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub files: ReportFileArgs,
    /// Write a result file (each second's requests as HDR histograms, checks, metrics) that
    /// `horde merge` combines exactly with the files of the run's other execution segments.
    #[arg(long = "out", value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Stream each second's results to `horde aggregate` at this URL (e.g.
    /// http://10.0.0.5:6566/), which merges the segments of a run live.
    #[arg(long = "report-to", value_name = "URL")]
    pub report_to: Option<String>,
    /// A file holding the run's segment token (the aggregator's too); without it the token
    /// is read from HORDE_TOKEN. Needed with --report-to.
    #[arg(long = "token-file", value_name = "PATH", requires = "report_to")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate (PEM) an https:// --report-to aggregator's certificate is checked
    /// against (default: the web PKI's roots).
    #[arg(long = "report-ca", value_name = "PEM", requires = "report_to")]
    pub report_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9646
    /// (port 0 picks a free one). After the run it waits up to 30 s for one last scrape.
    #[arg(long = "prometheus", value_name = "ADDR")]
    pub prometheus: Option<String>,
    /// Serve the live web UI (charts, table, controls: users, rate, stop, reset, downloads)
    /// and /metrics; `--web` alone is http://127.0.0.1:8089, `--web ADDR` another address. The
    /// controls need the token the URL printed at the start carries; an address other than
    /// loopback needs it for every request. After the run the page stays up until Ctrl-C.
    #[arg(
        long = "web",
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = DEFAULT_WEB
    )]
    pub web: Option<String>,
    /// The web UI's token, at least 16 characters (default: a random one, printed in the URL).
    /// Given here it shows in the process list; HORDE_WEB_TOKEN does not.
    #[arg(
        long = "web-token",
        value_name = "TOKEN",
        env = "HORDE_WEB_TOKEN",
        hide_env_values = true
    )]
    pub web_token: Option<String>,
    /// The most users the web UI may set (default: the users the run starts with, or the
    /// largest stage target).
    #[arg(long = "max-users", value_name = "N", requires = "web")]
    pub max_users: Option<u32>,
    /// The highest arrival rate (iterations/s) the web UI may set (default: the highest rate
    /// the run's schedule has).
    #[arg(long = "max-rate", value_name = "RATE", requires = "web")]
    pub max_rate: Option<f64>,
}

/// Where `--web` listens when given no address (Locust's web UI port).
pub const DEFAULT_WEB: &str = "127.0.0.1:8089";

/// Validated output destinations.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub html: Option<PathBuf>,
    /// `--out`: the result file for `horde merge`.
    pub out: Option<PathBuf>,
    /// `--report-to`: the aggregator's URL, the segment token and TLS.
    pub report_to: Option<super::super::output::forward::ReportTo>,
    pub prometheus: Option<SocketAddr>,
    pub web: Option<SocketAddr>,
    /// Required by the web UI's controls, and off loopback by its every
    /// request (always set when `web` is).
    pub web_token: Option<String>,
    /// `--max-users`: the most users the web UI may set.
    pub max_users: Option<u32>,
    /// `--max-rate`: the highest arrival rate the web UI may set.
    pub max_rate: Option<f64>,
    /// What the web UI's and `/metrics`' servers let clients hold (`None`:
    /// [`ServerLimits::WEB`] and [`ServerLimits::METRICS`]; tests shorten
    /// the timeouts).
    pub server_limits: Option<ServerLimits>,
}

impl OutputArgs {
    /// Check the flags that need it: `--prometheus` must be an IP address
    /// and port.
    pub fn validate(&self) -> Result<Outputs> {
        let prometheus = self
            .prometheus
            .as_deref()
            .map(|text| parse_listen_address(text, "--prometheus"))
            .transpose()?;
        let web = self
            .web
            .as_deref()
            .map(|text| parse_listen_address(text, "--web"))
            .transpose()?;
        let web_token = match (&web, &self.web_token) {
            // HORDE_WEB_TOKEN may be set for runs without the web UI.
            (None, _) => None,
            (Some(_), Some(token)) if token.len() < 16 => bail!(
                "--web-token must be at least 16 characters (it guards the run's controls); \
                 leave it out for a random one"
            ),
            (Some(_), Some(token)) => Some(token.clone()),
            (Some(_), None) => Some(crate::output::web::random_token()),
        };
        if let Some(users) = self.max_users
            && !(1..=MAX_VUS).contains(&users)
        {
            bail!("--max-users must be between 1 and {MAX_VUS} (got {users})");
        }
        if let Some(rate) = self.max_rate
            && !(rate.is_finite() && rate > 0.0 && rate <= MAX_ARRIVAL_RATE)
        {
            bail!(
                "--max-rate must be a number of iterations per second above 0 and at most \
                 {MAX_ARRIVAL_RATE}, e.g. --max-rate 200 (got {rate})"
            );
        }
        let report_to = match self.report_to.as_deref() {
            Some(text) => {
                let url = match url::Url::parse(text.trim()) {
                    Ok(url)
                        if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() =>
                    {
                        url
                    }
                    _ => bail!(
                        "--report-to {text:?} is not the aggregator's address; give the URL \
                         `horde aggregate` prints, e.g. --report-to http://10.0.0.5:6566/"
                    ),
                };
                let tls = match url.scheme() {
                    "https" => Some(crate::segment_tls::client_config(
                        self.report_ca.as_deref(),
                    )?),
                    _ if self.report_ca.is_some() => bail!(
                        "--report-ca is for an https:// aggregator; --report-to {url} is plain \
                         http (start the aggregator with --tls-cert and --tls-key)"
                    ),
                    _ => None,
                };
                Some(crate::output::forward::ReportTo {
                    url,
                    token: crate::segment_token::SegmentToken::from_file_or_env(
                        self.token_file.as_deref(),
                        "--report-to",
                    )?,
                    tls,
                })
            }
            None => None,
        };
        Ok(Outputs {
            html: self.files.html.clone(),
            out: self.out.clone(),
            report_to,
            prometheus,
            web,
            web_token,
            max_users: self.max_users,
            max_rate: self.max_rate,
            server_limits: None,
        })
    }
}

/// An address to listen on, `IP:PORT` (`[::1]:PORT` for IPv6), or a bare
/// port, which means loopback (`9646` is `127.0.0.1:9646`).
pub fn parse_listen_address(text: &str, flag: &str) -> Result<SocketAddr> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        bail!(
            "{flag} takes an address to listen on, not a URL: e.g. 127.0.0.1:9646 (got {text:?})"
        );
    }
    let address: SocketAddr = text.parse().with_context(|| {
        format!(
            "{flag} {text:?} is not an address to listen on: give IP:PORT, e.g. 127.0.0.1:9646 \
             or 0.0.0.0:9646 (all interfaces), or a port alone for loopback"
        )
    })?;
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_ui_always_has_a_token_and_bounds_are_checked() {
        let args = |extra: &[&str]| {
            use clap::Parser;
            #[derive(clap::Parser)]
            struct Cli {
                #[command(flatten)]
                outputs: OutputArgs,
            }
            let mut argv = vec!["horde"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| cli.outputs)
        };
        let loopback = args(&["--web", "127.0.0.1:0"]).unwrap().validate().unwrap();
        assert_eq!(loopback.web_token.as_deref().map(str::len), Some(32));
        let short = args(&["--web", "--web-token", "short"]).unwrap().validate();
        assert!(format!("{:#}", short.unwrap_err()).contains("16 characters"));
        let users = args(&["--web", "--max-users", "0"]).unwrap().validate();
        assert!(format!("{:#}", users.unwrap_err()).contains("--max-users"));
        let rate = args(&["--web", "--max-rate", "inf"]).unwrap().validate();
        assert!(format!("{:#}", rate.unwrap_err()).contains("--max-rate"));
        assert!(
            args(&["--max-users", "5"]).is_err(),
            "--max-users needs --web"
        );
        let bounded = args(&["--web", "--max-users", "50", "--max-rate", "20"])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            (bounded.max_users, bounded.max_rate),
            (Some(50), Some(20.0))
        );
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address("9646", "--prometheus").unwrap(),
            "127.0.0.1:9646".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::1]:0", "--prometheus").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        for bad in ["localhost:9646", "http://127.0.0.1:9646", "1.2.3.4", ""] {
            let error = parse_listen_address(bad, "--prometheus").unwrap_err();
            assert!(
                format!("{error:#}").contains("--prometheus"),
                "{bad}: {error:#}"
            );
        }
    }
}
