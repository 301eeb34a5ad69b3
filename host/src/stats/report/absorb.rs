//! How an aggregate takes in one second's window, with the run's caps on
//! every kind of name (requests, tag values, messages, checks, custom
//! metrics), in the window's sorted order, so a run and the merge of its
//! result file keep the same names and fold the same ones.

use std::time::Instant;

use super::super::tags::{MAX_TAG_VALUES, MAX_TAGS, OVERFLOW_VALUE};
use super::super::{
    Delta, Entry, GaugeValue, MAX_DISTINCT_MESSAGES, OVERFLOW_MESSAGE, OVERFLOW_NAME,
    OVERFLOW_TYPE, WindowEntry, saturating_sum,
};
use super::{Aggregate, capped};

/// Add a window's row to a kept one.
fn merge_window_into(all: &mut Entry, entry: &WindowEntry) {
    super::add_row(
        all,
        &entry.latency_us,
        entry.corrected_us.as_ref(),
        [
            entry.failures,
            entry.bytes,
            entry.messages_sent,
            entry.messages_received,
        ],
        &entry.statuses,
    );
}

impl Aggregate {
    /// The (type, name) row a request row is kept under: itself while
    /// fewer than `max_names` names are kept (overflow rows aside) or it
    /// is kept already; else its type's overflow row when the type is
    /// known, else the one row of unknown types, as [`super::Stats`]
    /// admits names in a run.
    fn entry_key(&mut self, kind: &str, name: &str) -> (String, String) {
        let key = (kind.to_string(), name.to_string());
        if self.entries.contains_key(&key) || self.max_names == 0 {
            return key;
        }
        if name != OVERFLOW_NAME && self.named_entries < self.max_names {
            self.named_entries += 1;
            return key;
        }
        let known = self
            .entries
            .range((kind.to_string(), String::new())..)
            .next()
            .is_some_and(|((k, _), _)| k == kind);
        if known {
            (key.0, OVERFLOW_NAME.to_string())
        } else {
            (OVERFLOW_TYPE.to_string(), OVERFLOW_NAME.to_string())
        }
    }

    /// The value of tag `key` a tagged row is kept under: itself while the
    /// key has fewer than [`MAX_TAG_VALUES`] values, else the overflow;
    /// keys past [`MAX_TAGS`] are not kept at all (None).
    fn tag_value(&mut self, key: &str, value: &str) -> Option<String> {
        let known = self.tag_values.entry(key.to_string());
        if matches!(known, std::collections::btree_map::Entry::Vacant(_))
            && self.tag_values.len() >= MAX_TAGS
        {
            return None;
        }
        let values = self.tag_values.entry(key.to_string()).or_default();
        if values.contains(value) || values.len() < MAX_TAG_VALUES {
            values.insert(value.to_string());
            Some(value.to_string())
        } else {
            Some(OVERFLOW_VALUE.to_string())
        }
    }

    /// Add one second's window (a run's own, or a merged one read back
    /// from result files), in the window's order (sorted), so a run and
    /// the merge of its result file fold the same names past the caps.
    /// `at` orders gauges: a later window's value wins.
    pub(crate) fn absorb_window(&mut self, window: &Delta, at: Instant) {
        for ((kind, name), entry) in &window.entries {
            let key = self.entry_key(kind, name);
            self.total_count = self.total_count.saturating_add(entry.count());
            self.total_failures = self.total_failures.saturating_add(entry.failures);
            match self.entries.get_mut(&key) {
                Some(existing) => merge_window_into(existing, entry),
                None => {
                    self.entries.insert(key, entry.to_entry());
                }
            }
        }
        for ((tag, value, kind, name), entry) in &window.tagged {
            let Some(value) = self.tag_value(tag, value) else {
                continue;
            };
            let (kind, name) = match self.entries.contains_key(&(kind.clone(), name.clone())) {
                true => (kind.clone(), name.clone()),
                false => self.entry_key(kind, name),
            };
            match self
                .tagged
                .get_mut(&(tag.clone(), value.clone(), kind.clone(), name.clone()))
            {
                Some(existing) => merge_window_into(existing, entry),
                None => {
                    self.tagged
                        .insert((tag.clone(), value, kind, name), entry.to_entry());
                }
            }
        }
        for (key, count) in &window.errors {
            let key = if self.errors.len() < MAX_DISTINCT_MESSAGES || self.errors.contains_key(key)
            {
                key.clone()
            } else {
                (key.0.clone(), key.1.clone(), OVERFLOW_MESSAGE.to_string())
            };
            let total = self.errors.entry(key).or_insert(0);
            *total = total.saturating_add(*count);
        }
        for (key, count) in &window.exceptions {
            let key = if self.exceptions.len() < MAX_DISTINCT_MESSAGES
                || self.exceptions.contains_key(key)
            {
                key.clone()
            } else {
                OVERFLOW_MESSAGE.to_string()
            };
            let total = self.exceptions.entry(key).or_insert(0);
            *total = total.saturating_add(*count);
        }
        let max = if self.max_names == 0 {
            usize::MAX
        } else {
            self.max_names
        };
        for (key, (passes, fails)) in &window.checks {
            let counts = self
                .checks
                .entry(capped(&self.checks, key.clone(), max))
                .or_default();
            counts.0 = counts.0.saturating_add(*passes);
            counts.1 = counts.1.saturating_add(*fails);
        }
        for (key, value) in &window.counters {
            let total = self
                .counters
                .entry(capped(&self.counters, key.clone(), max))
                .or_insert(0.0);
            *total = saturating_sum(*total, *value);
        }
        for (key, last) in &window.gauges {
            let (min, max_value) = window
                .gauge_ranges
                .get(key)
                .copied()
                .unwrap_or((*last, *last));
            let key = capped(&self.gauges, key.clone(), max);
            match self.gauges.get_mut(&key) {
                Some(existing) => {
                    if at >= existing.at {
                        existing.last = *last;
                        existing.at = at;
                    }
                    existing.min = existing.min.min(min);
                    existing.max = existing.max.max(max_value);
                }
                None => {
                    self.gauges.insert(
                        key,
                        GaugeValue {
                            last: *last,
                            at,
                            min,
                            max: max_value,
                        },
                    );
                }
            }
        }
        for (key, histogram) in &window.trends {
            let key = capped(&self.trends, key.clone(), max);
            match self.trends.get_mut(&key) {
                Some(existing) => {
                    let _ = existing.add(histogram);
                }
                None => {
                    self.trends.insert(key, histogram.clone());
                }
            }
        }
    }
}
