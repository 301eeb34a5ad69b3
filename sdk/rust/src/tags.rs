//! Tags (k6's tags): key-value pairs this VU's events carry, so thresholds
//! (`http_req_duration{flow:checkout}`) and `horde run --breakdown flow`
//! can select and break results down by them.
//!
//! ```ignore
//! tags::set(&[("flow", "browse")]);                 // from now on
//! tags::with(&[("flow", "checkout")], || { ... })?; // for a block
//! http::post("/pay").tag("step", "pay").send()?;    // for one request
//! ```

use std::cell::RefCell;

use crate::bindings::horde::scenario::tags as wit;

thread_local! {
    /// The tags the host has for this VU (its copy, to restore them).
    static CURRENT: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// This VU's tags from now on (an empty slice clears them). At most 16
/// pairs; keys and values are cut to 128 bytes by the host.
pub fn set(tags: &[(&str, &str)]) {
    let owned = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    replace(owned);
}

/// This VU's current tags.
pub fn current() -> Vec<(String, String)> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Run `block` with `tags` added to this VU's tags (a key already set
/// takes the new value), then restore them.
pub fn with<T>(tags: &[(&str, &str)], block: impl FnOnce() -> T) -> T {
    let before = current();
    let mut merged = before.clone();
    for (key, value) in tags {
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(existing) => existing.1 = value.to_string(),
            None => merged.push((key.to_string(), value.to_string())),
        }
    }
    replace(merged);
    let result = block();
    replace(before);
    result
}

fn replace(tags: Vec<(String, String)>) {
    wit::set(&tags);
    CURRENT.with(|current| *current.borrow_mut() = tags);
}
