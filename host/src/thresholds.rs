//! Pass/fail thresholds in k6's syntax, parsed once and evaluated against
//! the run's cumulative aggregate (at the end, and every second for
//! `abortOnFail`).
//!
//! `METRIC[{key:value,...}]: COND[, COND...][; abortOnFail][; delayAbortEval=DURATION]`
//! where COND is `AGG OP NUMBER`, AGG one of `avg min max med p(N) rate count value`.

use std::time::Duration;

use serde::Serialize;

use crate::stats::{Aggregate, Entry, GROUP_TYPE};

/// Which events or values a threshold looks at.
#[derive(Debug, Clone, PartialEq)]
enum Metric {
    /// Latency in ms. `http`: HTTP requests only; `corrected`: from intended start.
    Duration {
        http: bool,
        corrected: bool,
    },
    /// Share of failed requests (rate) or their number (count).
    Failed {
        http: bool,
    },
    /// Requests: count, or per second (rate).
    Requests {
        http: bool,
    },
    /// Durations of groups (`group.leave`), in ms.
    GroupDuration,
    /// Share of passing checks.
    Checks,
    Iterations,
    DroppedIterations,
    /// A counter, gauge or trend the scenario reports.
    Custom(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    Percentile(f64),
    Rate,
    Count,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, actual: f64, bound: f64) -> bool {
        match self {
            Op::Lt => actual < bound,
            Op::Le => actual <= bound,
            Op::Gt => actual > bound,
            Op::Ge => actual >= bound,
            Op::Eq => actual == bound,
            Op::Ne => actual != bound,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    text: String,
    aggregation: Aggregation,
    op: Op,
    bound: f64,
}

/// Tag filters: `{name:/login}`, `{type:GET}`, `{check:has body}`,
/// `{group:checkout}` (k6's `group:::checkout` too).
#[derive(Debug, Clone, Default, PartialEq)]
struct Selector {
    name: Option<String>,
    kind: Option<String>,
    check: Option<String>,
    /// A group path: the group itself for `group_duration`, the requests
    /// inside it (nested groups included) for the other metrics.
    group: Option<String>,
    /// Any other key is a tag (`tags.set`): `{flow:checkout}`; one per threshold.
    tag: Option<(String, String)>,
}

/// One parsed threshold line.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub source: String,
    metric: Metric,
    selector: Selector,
    conditions: Vec<Condition>,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

/// The verdict on one condition.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub threshold: String,
    pub condition: String,
    /// The measured value; None when the metric has no data.
    pub actual: Option<f64>,
    pub passed: bool,
}

fn bad(source: &str, reason: &str) -> String {
    format!(
        "invalid threshold {source:?}: {reason}. Expected e.g. 'http_req_duration: p(95)<200' or \
         'req_failed{{name:/login}}: rate<0.01'"
    )
}

fn parse_condition(source: &str, text: &str) -> Result<Condition, String> {
    let text = text.trim();
    let op_at = text
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| bad(source, &format!("{text:?} has no comparison")))?;
    let (aggregation_text, rest) = text.split_at(op_at);
    let (op, number) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .into_iter()
    .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|n| (op, n)))
    .ok_or_else(|| bad(source, &format!("{text:?} has an unknown comparison")))?;
    let bound: f64 = number
        .trim()
        .parse()
        .map_err(|_| bad(source, &format!("{:?} is not a number", number.trim())))?;
    let aggregation = match aggregation_text.trim() {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        "value" => Aggregation::Value,
        other => {
            let percent = other
                .strip_prefix("p(")
                .and_then(|p| p.strip_suffix(')'))
                .and_then(|p| p.trim().parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    bad(
                        source,
                        &format!("{other:?} is not avg, min, max, med, p(N), rate, count or value"),
                    )
                })?;
            Aggregation::Percentile(percent)
        }
    };
    Ok(Condition {
        text: text.to_string(),
        aggregation,
        op,
        bound,
    })
}

fn allowed(metric: &Metric, aggregation: Aggregation) -> bool {
    use Aggregation::*;
    match metric {
        Metric::Duration { .. } | Metric::GroupDuration => {
            matches!(aggregation, Avg | Min | Max | Med | Percentile(_) | Count)
        }
        Metric::Failed { .. } | Metric::Checks => matches!(aggregation, Rate | Count),
        Metric::Requests { .. } | Metric::Iterations | Metric::DroppedIterations => {
            matches!(aggregation, Rate | Count)
        }
        Metric::Custom(_) => true,
    }
}

impl Threshold {
    /// Parse one threshold line.
    pub fn parse(source: &str) -> Result<Threshold, String> {
        let mut parts = source.split(';');
        let main = parts.next().unwrap_or_default();
        // The selector may itself contain ':' (name:/login), so split after it.
        let search_from = match main.find('{') {
            Some(open) if !main[..open].contains(':') => {
                open + main[open..]
                    .find('}')
                    .ok_or_else(|| bad(source, "unclosed '{' in the selector"))?
            }
            _ => 0,
        };
        let colon = main[search_from..]
            .find(':')
            .map(|i| i + search_from)
            .ok_or_else(|| bad(source, "missing ':' between the metric and its conditions"))?;
        let (metric_text, conditions_text) = (&main[..colon], &main[colon + 1..]);
        let metric_text = metric_text.trim();
        let (metric_name, selector_text) = match metric_text.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| bad(source, "the selector must end with '}'"))?;
                (name.trim(), Some(inner))
            }
            None => (metric_text, None),
        };
        let metric = match metric_name {
            "http_req_duration" => Metric::Duration {
                http: true,
                corrected: false,
            },
            "req_duration" => Metric::Duration {
                http: false,
                corrected: false,
            },
            "http_req_duration_corrected" => Metric::Duration {
                http: true,
                corrected: true,
            },
            "req_duration_corrected" => Metric::Duration {
                http: false,
                corrected: true,
            },
            "http_req_failed" => Metric::Failed { http: true },
            "req_failed" => Metric::Failed { http: false },
            "http_reqs" => Metric::Requests { http: true },
            "reqs" => Metric::Requests { http: false },
            "group_duration" => Metric::GroupDuration,
            "checks" => Metric::Checks,
            "iterations" => Metric::Iterations,
            "dropped_iterations" => Metric::DroppedIterations,
            "" => return Err(bad(source, "the metric name is empty")),
            custom => Metric::Custom(custom.to_string()),
        };
        let mut selector = Selector::default();
        if let Some(inner) = selector_text {
            for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
                let (key, value) = pair
                    .split_once(':')
                    .ok_or_else(|| bad(source, &format!("selector {pair:?} is not key:value")))?;
                let text = value.trim().to_string();
                let value = Some(text.clone());
                match key.trim() {
                    "name" => selector.name = value,
                    "type" | "method" => selector.kind = value,
                    "check" => selector.check = value,
                    "group" => {
                        selector.group = value.map(|g| {
                            g.trim_start_matches(crate::caps::group::SEPARATOR)
                                .to_string()
                        });
                    }
                    "" => return Err(bad(source, &format!("selector {pair:?} has no key"))),
                    tag => {
                        if selector.tag.is_some() {
                            return Err(bad(
                                source,
                                "a threshold selects on one tag at most (besides name, type, \
                                 check and group)",
                            ));
                        }
                        selector.tag = Some((tag.to_string(), text));
                    }
                }
            }
        }
        // Iterations are counted for the run as a whole: no event carries them.
        if matches!(metric, Metric::Iterations | Metric::DroppedIterations)
            && selector != Selector::default()
        {
            return Err(bad(
                source,
                &format!(
                    "{metric_name} counts the whole run's iterations and takes no selector; \
                     select requests instead, e.g. http_reqs{{user_class:Admin}}"
                ),
            ));
        }
        let conditions = conditions_text
            .split(',')
            .filter(|c| !c.trim().is_empty())
            .map(|c| parse_condition(source, c))
            .collect::<Result<Vec<_>, _>>()?;
        if conditions.is_empty() {
            return Err(bad(source, "no condition"));
        }
        if let Some(c) = conditions.iter().find(|c| !allowed(&metric, c.aggregation)) {
            return Err(bad(
                source,
                &format!("{:?} does not apply to {metric_name}", c.text),
            ));
        }
        let mut threshold = Threshold {
            source: source.trim().to_string(),
            metric,
            selector,
            conditions,
            abort_on_fail: false,
            delay_abort_eval: Duration::ZERO,
        };
        for option in parts.map(str::trim).filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                None if option == "abortOnFail" => threshold.abort_on_fail = true,
                Some(("delayAbortEval", value)) => {
                    threshold.delay_abort_eval =
                        crate::cli::parse_duration(value, "delayAbortEval")
                            .map_err(|e| bad(source, &e.to_string()))?;
                }
                _ => {
                    return Err(bad(
                        source,
                        &format!("unknown option {option:?} (abortOnFail, delayAbortEval=10s)"),
                    ));
                }
            }
        }
        Ok(threshold)
    }

    /// The tag key this threshold selects on, if any: results must be kept
    /// by it (`Stats::track_tags`).
    pub fn tag_key(&self) -> Option<&str> {
        self.selector.tag.as_ref().map(|(key, _)| key.as_str())
    }

    /// The request or group name this threshold selects (`{name:/login}`,
    /// `{group:checkout}`), if any: such names are always kept
    /// (`Stats::keep_names`), so no other name can push them out.
    pub fn selected_name(&self) -> Option<&str> {
        self.selector
            .name
            .as_deref()
            .or(self.selector.group.as_deref())
    }

    /// The tag (key, value) this threshold selects on, if any.
    pub fn tag(&self) -> Option<(&str, &str)> {
        self.selector
            .tag
            .as_ref()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Entries passing `keep`, merged: among those with the selected tag
    /// value when the threshold selects one.
    fn merged(&self, aggregate: &Aggregate, keep: impl Fn(&str, &str) -> bool) -> Entry {
        match &self.selector.tag {
            Some((key, value)) => aggregate.merged_tagged(key, value, keep),
            None => aggregate.merged(keep),
        }
    }

    fn keeps(&self, http: bool) -> impl Fn(&str, &str) -> bool + '_ {
        move |kind: &str, name: &str| {
            kind != GROUP_TYPE
                && (!http || is_http_type(kind))
                && self.selector.name.as_deref().is_none_or(|n| n == name)
                && self.selector.kind.as_deref().is_none_or(|k| k == kind)
                && self.selector.group.as_deref().is_none_or(|g| {
                    name.strip_prefix(g)
                        .is_some_and(|rest| rest.starts_with(crate::caps::group::SEPARATOR))
                })
        }
    }

    /// For `group_duration`: the selected group (or every group).
    fn keeps_group(&self) -> impl Fn(&str, &str) -> bool + '_ {
        move |kind: &str, name: &str| {
            kind == GROUP_TYPE
                && self.selector.group.as_deref().is_none_or(|g| g == name)
                && self.selector.name.as_deref().is_none_or(|n| n == name)
        }
    }

    fn value(
        &self,
        condition: &Condition,
        aggregate: &Aggregate,
        elapsed: Duration,
        iterations: (u64, u64),
    ) -> Option<f64> {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let quantile = |h: &hdrhistogram::Histogram<u64>, scale: f64| -> Option<f64> {
            if h.is_empty() {
                return None;
            }
            let v = |x: u64| x as f64 / scale;
            Some(match condition.aggregation {
                Aggregation::Avg => h.mean() / scale,
                Aggregation::Min => v(h.min()),
                Aggregation::Max => v(h.max()),
                Aggregation::Med => v(h.value_at_quantile(0.5)),
                Aggregation::Percentile(p) => v(h.value_at_quantile(p / 100.0)),
                Aggregation::Count => h.len() as f64,
                Aggregation::Rate => h.len() as f64 / seconds,
                Aggregation::Value => v(h.max()),
            })
        };
        let per = |count: u64| match condition.aggregation {
            Aggregation::Rate => count as f64 / seconds,
            _ => count as f64,
        };
        match &self.metric {
            Metric::Duration { http, corrected } => {
                let entry = self.merged(aggregate, self.keeps(*http));
                let histogram = if *corrected {
                    entry.corrected_us.as_ref()?
                } else {
                    &entry.latency_us
                };
                quantile(histogram, 1000.0)
            }
            Metric::GroupDuration => quantile(
                &self.merged(aggregate, self.keeps_group()).latency_us,
                1000.0,
            ),
            Metric::Failed { http } => {
                let entry = self.merged(aggregate, self.keeps(*http));
                let count = entry.latency_us.len();
                match condition.aggregation {
                    Aggregation::Rate => (count > 0).then(|| entry.failures as f64 / count as f64),
                    _ => Some(entry.failures as f64),
                }
            }
            Metric::Requests { http } => Some(per(self
                .merged(aggregate, self.keeps(*http))
                .latency_us
                .len())),
            Metric::Checks => {
                let (passes, fails) = aggregate.check_counts(self.selector.check.as_deref());
                match condition.aggregation {
                    Aggregation::Rate => {
                        (passes + fails > 0).then(|| passes as f64 / (passes + fails) as f64)
                    }
                    _ => Some(passes as f64),
                }
            }
            Metric::Iterations => Some(per(iterations.0)),
            Metric::DroppedIterations => Some(per(iterations.1)),
            Metric::Custom(name) => {
                if let Some(total) = aggregate.counter(name) {
                    return Some(match condition.aggregation {
                        Aggregation::Rate => total / seconds,
                        _ => total,
                    });
                }
                if let Some(gauge) = aggregate.gauge(name) {
                    return Some(match condition.aggregation {
                        Aggregation::Min => gauge.min,
                        Aggregation::Max => gauge.max,
                        _ => gauge.last,
                    });
                }
                aggregate.trend(name).and_then(|h| quantile(h, 1000.0))
            }
        }
    }

    /// Evaluate every condition against the aggregate.
    pub fn evaluate(
        &self,
        aggregate: &Aggregate,
        elapsed: Duration,
        iterations: (u64, u64),
    ) -> Vec<Verdict> {
        self.conditions
            .iter()
            .map(|condition| {
                let actual = self.value(condition, aggregate, elapsed, iterations);
                Verdict {
                    threshold: self.source.clone(),
                    condition: condition.text.clone(),
                    actual,
                    passed: actual.is_some_and(|a| condition.op.holds(a, condition.bound)),
                }
            })
            .collect()
    }
}

/// HTTP events have the request method as their type (all capitals).
fn is_http_type(kind: &str) -> bool {
    !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
