//! The output flags shared by `horde run` and `horde demo` (JSON, CSV, HTML,
//! Prometheus), as typed, and their validated form.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Where a run's results go besides the terminal (raw, as typed).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
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
    /// Serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9646
    /// (port 0 picks a free one). After the run it waits up to 30 s for one last scrape.
    #[arg(long = "prometheus", value_name = "ADDR")]
    pub prometheus: Option<String>,
}

/// Validated output destinations.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub html: Option<PathBuf>,
    pub prometheus: Option<SocketAddr>,
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
        Ok(Outputs {
            html: self.html.clone(),
            prometheus,
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
