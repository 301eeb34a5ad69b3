//! Option values: durations, sizes, counts, rates, stages and the load
//! model they make, each parsed with an error that names the flag and says
//! what is expected.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use url::Url;

/// Ramping stages: each ramps linearly to its target over its duration.
#[derive(Debug, Clone, PartialEq)]
pub enum Stages {
    Users(Vec<(Duration, u32)>),
    /// Targets in iterations per second.
    Rates(Vec<(Duration, f64)>),
}

impl Stages {
    pub(super) fn parse(value: &str, flag: &str) -> Result<Stages> {
        let mut users = Vec::new();
        let mut rates = Vec::new();
        for stage in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (duration, target) = stage.split_once(':').ok_or_else(|| {
                anyhow::anyhow!(
                    "{flag}: stage {stage:?} is not DURATION:TARGET, e.g. 30s:10 or 30s:50/s"
                )
            })?;
            let duration = parse_duration(duration, flag)?;
            if target.contains('/') {
                rates.push((duration, parse_arrival_rate(target, flag)?));
            } else {
                let count = target
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_VUS)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{flag}: stage {stage:?} has target {target:?}, not a user count \
                             (at most {MAX_VUS}) or a rate like 50/s"
                        )
                    })?;
                users.push((duration, count));
            }
        }
        match (users.is_empty(), rates.is_empty()) {
            (true, true) => bail!("{flag} has no stages; e.g. 30s:10,1m:100,30s:0"),
            (false, false) => bail!("{flag} mixes user counts and rates; use one kind"),
            (false, true) => Ok(Stages::Users(users)),
            (true, false) => Ok(Stages::Rates(rates)),
        }
    }

    pub(super) fn total(&self) -> Duration {
        match self {
            Stages::Users(s) => s.iter().map(|(d, _)| *d).sum(),
            Stages::Rates(s) => s.iter().map(|(d, _)| *d).sum(),
        }
    }
}

/// A stretch of the open model where the rate moves linearly from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSegment {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

/// Keep the segments' first `limit` (a --run-time shorter than the stages).
pub(super) fn cut_segments(
    segments: Vec<RateSegment>,
    limit: Option<Duration>,
) -> Vec<RateSegment> {
    let Some(limit) = limit else { return segments };
    let mut at = Duration::ZERO;
    let mut kept = Vec::new();
    for segment in segments {
        if at >= limit {
            break;
        }
        if at + segment.duration <= limit {
            kept.push(segment);
        } else {
            let part = limit - at;
            let fraction = part.as_secs_f64() / segment.duration.as_secs_f64();
            let to = segment.from + (segment.to - segment.from) * fraction;
            kept.push(RateSegment {
                duration: part,
                from: segment.from,
                to,
            });
        }
        at += segment.duration;
    }
    kept
}

pub(super) fn rate_segments(start: f64, stages: &[(Duration, f64)]) -> Vec<RateSegment> {
    let mut from = start;
    stages
        .iter()
        .map(|&(duration, to)| {
            let segment = RateSegment { duration, from, to };
            from = to;
            segment
        })
        .collect()
}

/// How VUs are driven.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// `users` VUs started at `spawn_rate` per second.
    Closed { users: u32, spawn_rate: f64 },
    /// VU counts ramped linearly through stages from `start`.
    ClosedStages {
        start: u32,
        stages: Vec<(Duration, u32)>,
    },
    /// Iterations started at a rate, on a pool of VUs.
    Open {
        segments: Vec<RateSegment>,
        pre_vus: u32,
        max_vus: u32,
        max_queue_time: Duration,
    },
}

impl LoadModel {
    /// One line for reports, e.g. `closed: 20 users, spawn rate 10/s`,
    /// `open: 50/s for 1m, 10-100 VUs`.
    pub fn describe(&self) -> String {
        let secs = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            LoadModel::Closed { users, spawn_rate } => {
                format!("closed: {users} users, spawn rate {spawn_rate}/s")
            }
            LoadModel::ClosedStages { start, stages } => {
                let steps: Vec<String> = stages
                    .iter()
                    .map(|(d, users)| format!("{}:{users}", secs(d)))
                    .collect();
                format!("closed stages: from {start} users, {}", steps.join(", "))
            }
            LoadModel::Open {
                segments,
                pre_vus,
                max_vus,
                ..
            } => {
                let steps: Vec<String> = segments
                    .iter()
                    .map(|s| {
                        if s.from == s.to {
                            format!("{}/s for {}", s.from, secs(&s.duration))
                        } else {
                            format!("{}/s to {}/s over {}", s.from, s.to, secs(&s.duration))
                        }
                    })
                    .collect();
                format!(
                    "open: {}, {pre_vus}-{max_vus} VUs",
                    if steps.is_empty() {
                        "no arrivals".to_string()
                    } else {
                        steps.join(", ")
                    }
                )
            }
        }
    }
}

/// Parse `100/s`, `600/m`, `3600/h`, or a bare number per second.
pub(super) fn parse_arrival_rate(value: &str, flag: &str) -> Result<f64> {
    let text = value.trim();
    let (number, per) = match text.split_once('/') {
        Some((n, unit)) => (n, unit.trim()),
        None => (text, "s"),
    };
    let seconds = match per {
        "s" | "1s" => 1.0,
        "m" | "1m" => 60.0,
        "h" | "1h" => 3600.0,
        other => bail!("{flag}: rate unit {other:?} is not s, m or h; e.g. 100/s"),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n / seconds <= MAX_ARRIVAL_RATE => Ok(n / seconds),
        Ok(n) if n.is_finite() && n >= 0.0 => bail!(
            "{flag} {value:?} is above the largest arrival rate, {MAX_ARRIVAL_RATE}/s; run \
             execution segments on several machines for more"
        ),
        _ => bail!("{flag} expects a rate such as 100/s or 600/m, got {value:?}"),
    }
}

/// The largest arrival rate, iterations per second.
pub const MAX_ARRIVAL_RATE: f64 = 1_000_000.0;

/// The most VUs any option may ask for (users, stage targets, VU pools).
pub const MAX_VUS: u32 = 1_000_000;

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

pub(super) fn parse_count(value: &str, flag: &str, max: u64) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        Ok(0) => bail!("{flag} must be at least 1, got 0"),
        Ok(n) => bail!("{flag} {n} is above the maximum of {max}"),
        Err(_) => bail!("{flag} expects a whole number such as 10, got {value:?}"),
    }
}

pub(super) fn parse_rate(value: &str, flag: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => bail!(
            "{flag} expects a number of users per second above 0 such as 10 or 0.5, got {value:?}"
        ),
    }
}

/// The longest duration any option takes: one year (longer values are
/// surely typos, and sums of stages stay far from overflowing).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parse `30s`, `5m`, `1h30m`, `250ms`, or a bare number of seconds; at
/// most [`MAX_DURATION`].
pub fn parse_duration(value: &str, flag: &str) -> Result<Duration> {
    let trimmed = value.trim();
    let duration = if let Ok(seconds) = trimmed.parse::<f64>() {
        Duration::try_from_secs_f64(seconds).map_err(|_| {
            anyhow::anyhow!(
                "{flag} expects a duration such as 30s, 5m or 1h30m, got {value:?} (a number of \
                 seconds must be finite and >= 0)"
            )
        })?
    } else {
        humantime::parse_duration(trimmed).map_err(|e| {
            anyhow::anyhow!(
                "{flag} expects a duration such as 30s, 5m or 1h30m, got {value:?} ({e})"
            )
        })?
    };
    if duration > MAX_DURATION {
        bail!("{flag} {value:?} is longer than a year; give a duration such as 30s, 5m or 1h30m");
    }
    Ok(duration)
}

/// `--start-at`: RFC 3339 (`2026-12-01T10:00:00Z`) or Unix seconds.
pub(super) fn parse_start_at(value: &str) -> Result<std::time::SystemTime> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(std::time::UNIX_EPOCH + Duration::from_secs(seconds));
    }
    humantime::parse_rfc3339_weak(value).map_err(|e| {
        anyhow::anyhow!(
            "--start-at {value:?} is not a time ({e}); give RFC 3339 in UTC such as \
             2026-12-01T10:00:00Z, or Unix seconds such as 1796119200"
        )
    })
}

pub(super) fn parse_size(value: &str, flag: &str) -> Result<u64> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            anyhow::anyhow!("{flag} expects a size such as 64MiB or 1GiB, got {value:?} ({e})")
        })
}

pub(super) fn parse_vars(vars: &[String]) -> Result<HashMap<String, String>> {
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
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_option_text_panics(text in "\\PC{0,40}") {
            let _ = parse_duration(&text, "--x");
            let _ = parse_size(&text, "--x");
            let _ = parse_count(&text, "--x", 1_000_000);
            let _ = parse_rate(&text, "--x");
            let _ = parse_arrival_rate(&text, "--x");
            let _ = parse_host_url(&text, "--host");
            if let Ok(stages) = Stages::parse(&text, "--stages") {
                let _ = stages.total();
            }
        }

        #[test]
        fn stage_lists_parse_to_what_they_say(
            stages in prop::collection::vec((0u64..100_000, 0u32..100_000), 1..8),
            huge in prop::bool::ANY,
        ) {
            let text: Vec<String> = stages
                .iter()
                .map(|(s, n)| format!("{}:{n}", if huge { format!("{s}e9") } else { format!("{s}s") }))
                .collect();
            match Stages::parse(&text.join(","), "--stages") {
                Ok(Stages::Users(parsed)) => {
                    prop_assert!(!huge || stages.iter().all(|(s, _)| *s == 0 || *s * 1_000_000_000 <= MAX_DURATION.as_secs()));
                    let expected: Vec<(Duration, u32)> = stages
                        .iter()
                        .map(|(s, n)| (Duration::from_secs(if huge { s * 1_000_000_000 } else { *s }), *n))
                        .collect();
                    prop_assert_eq!(parsed, expected);
                }
                Ok(other) => prop_assert!(false, "{other:?}"),
                Err(e) => prop_assert!(huge, "{e:#}"),
            }
        }

        #[test]
        fn durations_and_sizes_round_trip(ms in 0u64..MAX_DURATION.as_millis() as u64, mib in 0u64..1_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms"), "--x").unwrap(), Duration::from_millis(ms));
            prop_assert_eq!(parse_size(&format!("{mib}MiB"), "--x").unwrap(), mib << 20);
        }
    }
}
