//! Groups (k6's `group`, a transaction): time a block as one entry of type
//! `group`, and file the requests made inside it under the group's name
//! (`checkout::/login`).
//!
//! ```ignore
//! group("checkout", || {
//!     http::post("/cart").send()?;
//!     http::post("/pay").send()?;
//!     Ok(())
//! })?;
//! ```

use std::fmt::Display;

use crate::bindings::horde::scenario::group as wit;

/// Run `block` inside group `name` (nested in the current group, if any)
/// and return what it returns. The group's duration is recorded when the
/// block ends; an `Err` marks the group failed with its message.
pub fn group<T, E: Display>(name: &str, block: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    wit::enter(name);
    let result = block();
    let error = result.as_ref().err().map(ToString::to_string);
    wit::leave(error.as_deref());
    result
}
