//! The `group` capability: a VU's open groups (k6's `group`), the group
//! path every request event's name is filed under, and each group's
//! duration recorded as an event of type `group`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::group as wit;
use crate::stats::{GROUP_TYPE, RequestEvent};
use crate::vu::VuState;

/// How deep groups nest; deeper ones share their parent's path.
pub const MAX_DEPTH: usize = 16;

/// Between a group path and what it holds: "checkout::/login".
pub const SEPARATOR: &str = "::";

/// A group the VU is inside.
#[derive(Debug, Clone)]
pub struct OpenGroup {
    /// "checkout", or "checkout::pay" inside "checkout".
    pub path: Arc<str>,
    started: Instant,
}

/// The groups a VU is inside, outermost first.
#[derive(Debug, Default)]
pub struct Groups {
    open: Vec<OpenGroup>,
}

impl Groups {
    /// The innermost group's path, if inside one.
    pub fn path(&self) -> Option<&Arc<str>> {
        self.open.last().map(|group| &group.path)
    }

    /// `name` filed under the current group: "checkout::/login"; unchanged
    /// outside groups.
    pub fn name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        filed(self.path().map(|p| &**p), name)
    }

    /// A new task starts outside every group.
    pub fn clear(&mut self) {
        self.open.clear();
    }

    fn enter(&mut self, name: &str, max_len: usize) {
        let name = crate::stats::truncate(name.trim(), max_len);
        let name = if name.is_empty() { "(unnamed)" } else { &name };
        let path: Arc<str> = match self.path() {
            Some(parent) if self.open.len() >= MAX_DEPTH => parent.clone(),
            Some(parent) => format!("{parent}{SEPARATOR}{name}").into(),
            None => name.into(),
        };
        self.open.push(OpenGroup {
            path,
            started: Instant::now(),
        });
    }

    fn leave(&mut self) -> Option<(Arc<str>, Duration)> {
        let group = self.open.pop()?;
        Some((group.path, group.started.elapsed()))
    }
}

/// `name` filed under `group` ("checkout::/login"), or itself.
pub fn filed<'a>(group: Option<&str>, name: &'a str) -> Cow<'a, str> {
    match group {
        Some(group) => Cow::Owned(format!("{group}{SEPARATOR}{name}")),
        None => Cow::Borrowed(name),
    }
}

impl wit::Host for VuState {
    async fn enter(&mut self, name: String) -> wasmtime::Result<()> {
        let max_len = self.run.limits.max_name_len;
        self.groups.enter(&name, max_len);
        Ok(())
    }

    async fn leave(&mut self, error: Option<String>) -> wasmtime::Result<()> {
        if let Some((path, duration)) = self.groups.leave() {
            let error = error.map(|e| crate::stats::truncate(&e, crate::stats::MAX_MESSAGE_LEN));
            self.run.stats.record(&RequestEvent {
                request_type: GROUP_TYPE,
                name: &path,
                duration,
                response_length: 0,
                error: error.as_deref(),
                messages_sent: 0,
                messages_received: 0,
                lag: None,
                status: None,
                tags: &self.tags,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_and_stop_growing_past_the_depth() {
        let mut groups = Groups::default();
        assert_eq!(groups.name("/login"), "/login");
        groups.enter("checkout", 64);
        groups.enter("pay", 64);
        assert_eq!(groups.name("/card"), "checkout::pay::/card");
        assert_eq!(&*groups.leave().unwrap().0, "checkout::pay");
        assert_eq!(groups.name("/login"), "checkout::/login");
        for _ in 0..40 {
            groups.enter("deeper", 64);
        }
        assert_eq!(
            groups.path().unwrap().matches(SEPARATOR).count(),
            MAX_DEPTH - 1
        );
        groups.clear();
        assert!(groups.leave().is_none());
    }
}
