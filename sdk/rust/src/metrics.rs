//! Checks and request events the guest reports itself.

use crate::bindings::horde::scenario::metrics as wit;

pub use wit::{Event, MetricError};

/// Record a named check; returns `ok` so it can guard further steps.
pub fn check(name: &str, ok: bool) -> bool {
    wit::check(name, ok);
    ok
}

/// Record a request event for a protocol the guest speaks itself.
pub fn record(
    request_type: &str,
    name: &str,
    duration_ms: f64,
    response_length: u64,
    error: Option<String>,
) -> Result<(), MetricError> {
    wit::record(&Event {
        request_type: request_type.to_string(),
        name: name.to_string(),
        duration_ms,
        response_length,
        error,
    })
}

/// Add to a counter (reported as its total and rate per second).
pub fn counter(name: &str, value: f64) {
    wit::add_counter(name, value)
}

/// Set a gauge (reported as its last, min and max values).
pub fn gauge(name: &str, value: f64) {
    wit::set_gauge(name, value)
}

/// Add a value to a trend (reported with avg, min, max, percentiles).
pub fn trend(name: &str, value: f64) {
    wit::add_trend(name, value)
}
