//! The `metrics` capability: request events and checks reported by the guest.

use std::time::Duration;

use crate::bindings::metrics::{self as wit, Event, MetricError};
use crate::stats::RequestEvent;
use crate::vu::VuState;

/// Longest duration a guest may report (one day).
const MAX_REPORTED_MS: f64 = 86_400_000.0;

fn validate(event: &Event, max_name_len: usize) -> Result<(), MetricError> {
    if !event.duration_ms.is_finite() || event.duration_ms < 0.0 {
        return Err(MetricError::Invalid(format!(
            "duration-ms must be a finite number >= 0, got {}",
            event.duration_ms
        )));
    }
    if event.duration_ms > MAX_REPORTED_MS {
        return Err(MetricError::Invalid(format!(
            "duration-ms {} is over one day",
            event.duration_ms
        )));
    }
    for (field, value) in [("request-type", &event.request_type), ("name", &event.name)] {
        if value.is_empty() {
            return Err(MetricError::Invalid(format!("{field} is empty")));
        }
        if value.len() > max_name_len {
            return Err(MetricError::Invalid(format!(
                "{field} is {} bytes, over the limit of {max_name_len}",
                value.len()
            )));
        }
    }
    Ok(())
}

impl wit::Host for VuState {
    async fn record(&mut self, event: Event) -> wasmtime::Result<Result<(), MetricError>> {
        if let Err(error) = validate(&event, self.run.limits.max_name_len) {
            return Ok(Err(error));
        }
        self.run.stats.record(&RequestEvent {
            request_type: &event.request_type,
            name: &self.groups.name(&event.name),
            duration: Duration::from_secs_f64(event.duration_ms / 1000.0),
            response_length: event.response_length,
            error: event.error.as_deref(),
            messages_sent: 0,
            messages_received: 0,
            lag: self.iteration_lag,
            status: None,
            tags: &self.tags,
        });
        Ok(Ok(()))
    }

    async fn check(&mut self, name: String, ok: bool) -> wasmtime::Result<()> {
        self.run.stats.record_check(&name, ok);
        Ok(())
    }

    async fn add_counter(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        self.run.stats.add_counter(&name, value);
        Ok(())
    }

    async fn set_gauge(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        self.run.stats.set_gauge(&name, value);
        Ok(())
    }

    async fn add_trend(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        self.run.stats.add_trend(&name, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(duration_ms: f64, name: &str) -> Event {
        Event {
            request_type: "redis".into(),
            name: name.into(),
            duration_ms,
            response_length: 0,
            error: None,
        }
    }

    #[test]
    fn guest_values_are_validated() {
        assert!(validate(&event(1.5, "GET"), 16).is_ok());
        assert!(validate(&event(-1.0, "GET"), 16).is_err());
        assert!(validate(&event(f64::NAN, "GET"), 16).is_err());
        assert!(validate(&event(f64::INFINITY, "GET"), 16).is_err());
        assert!(validate(&event(1.0, ""), 16).is_err());
        assert!(validate(&event(1.0, &"x".repeat(17)), 16).is_err());
    }
}
