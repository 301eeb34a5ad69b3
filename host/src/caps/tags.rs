//! The `tags` capability: the key-value pairs a VU's events carry (k6's
//! VU tags), cut to the host's limits.

use std::sync::Arc;

use crate::bindings::tags as wit;
use crate::schedule::classes::CLASS_TAG;
use crate::stats::{MAX_TAG_LEN, MAX_TAGS, truncate};
use crate::vu::VuState;

/// `tags` as a VU keeps them: at most [`MAX_TAGS`] pairs (later ones are
/// dropped), keys and values cut to [`MAX_TAG_LEN`] bytes, empty keys
/// dropped, a repeated key keeping its last value.
pub fn clean(tags: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::new();
    for (key, value) in tags {
        let key = truncate(key.trim(), MAX_TAG_LEN);
        if key.is_empty() {
            continue;
        }
        let value = truncate(&value, MAX_TAG_LEN);
        if let Some(existing) = kept.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else if kept.len() < MAX_TAGS {
            kept.push((key, value));
        }
    }
    kept
}

/// `tags` (already cleaned) with the VU's user class as the `user_class`
/// tag: the host's, so it replaces one the scenario set and keeps a place
/// within [`MAX_TAGS`].
pub fn with_class(mut tags: Vec<(String, String)>, class: &str) -> Vec<(String, String)> {
    tags.retain(|(key, _)| key != CLASS_TAG);
    tags.truncate(MAX_TAGS - 1);
    tags.push((CLASS_TAG.to_string(), class.to_string()));
    tags
}

impl wit::Host for VuState {
    async fn set(&mut self, tags: Vec<(String, String)>) -> wasmtime::Result<()> {
        let tags = clean(tags);
        self.tags = Arc::new(match &self.user_class {
            Some(class) => with_class(tags, class),
            None => tags,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_capped_and_deduplicated() {
        let many = (0..40)
            .map(|i| (format!("k{i}"), "v".repeat(500)))
            .collect();
        let kept = clean(many);
        assert_eq!(kept.len(), MAX_TAGS);
        assert_eq!(kept[0].1.len(), MAX_TAG_LEN);
        let kept = clean(vec![
            ("flow".into(), "a".into()),
            (" ".into(), "x".into()),
            ("flow".into(), "b".into()),
        ]);
        assert_eq!(kept, vec![("flow".to_string(), "b".to_string())]);
        let many = clean((0..40).map(|i| (format!("k{i}"), "v".into())).collect());
        let classed = with_class(many, "admin");
        assert_eq!(classed.len(), MAX_TAGS);
        assert_eq!(classed[MAX_TAGS - 1], (CLASS_TAG.into(), "admin".into()));
        let replaced = with_class(vec![(CLASS_TAG.into(), "me".into())], "admin");
        assert_eq!(replaced, vec![(CLASS_TAG.to_string(), "admin".to_string())]);
    }
}
