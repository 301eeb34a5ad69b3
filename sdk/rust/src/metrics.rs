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
