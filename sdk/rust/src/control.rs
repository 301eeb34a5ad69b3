//! Run control: sleep, VU id, iteration, run variables, logging, stopping.

use std::cell::Cell;

use crate::bindings::horde::scenario::control as wit;

pub use wit::LogLevel;

/// Suspend this VU (other VUs go on).
pub fn sleep_ms(ms: u64) {
    wit::sleep(ms)
}

/// This VU's id, 1-based.
pub fn vu_id() -> u32 {
    wit::vu_id()
}

/// The user class this VU belongs to (`export_scenario!(A, B)`), by its
/// name; None when the scenario has one kind of user.
pub fn user_class() -> Option<String> {
    wit::user_class()
}

/// Tasks this VU has started, including the current one.
pub fn iteration() -> u64 {
    wit::iteration()
}

/// The run's `--host` (else the scenario's default host), for building absolute URLs.
pub fn base_url() -> Option<String> {
    wit::base_url()
}

/// A run variable given with `horde run --var key=value`.
pub fn var(key: &str) -> Option<String> {
    wit::get_var(key)
}

/// Log a line through the host's logger.
pub fn log(message: &str) {
    wit::log(LogLevel::Info, message)
}

/// Log with an explicit level.
pub fn log_at(level: LogLevel, message: &str) {
    wit::log(level, message)
}

/// Stop this VU after the current task.
pub fn stop_user() {
    wit::stop_user()
}

/// End the whole run after the current task.
pub fn stop_test(reason: &str) {
    wit::stop_test(reason)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded from wasi:random, so VUs get distinct streams.
    RandomState::new().hash_one(vu_id()) | 1
}

/// A random integer in `low..high` (wyrand; not for cryptography).
pub fn random_range(low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    let next = RNG.with(|rng| {
        let state = rng.get().wrapping_add(0xa076_1d64_78bd_642f);
        rng.set(state);
        let wide = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        ((wide >> 64) ^ wide) as u64
    });
    low + next % (high - low)
}
