//! Results by tag value: which tag keys a run tracks (`--breakdown KEY`,
//! thresholds that select a tag), the cap on each key's values, and the
//! entries kept per (key, value, type, name), merged like the others.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;

use super::report::NameStats;
use super::{Entry, GROUP_TYPE};

/// Most tags one VU may set at once (more are ignored).
pub const MAX_TAGS: usize = 16;
/// Longest tag key or value kept, in bytes (longer ones are cut).
pub const MAX_TAG_LEN: usize = 128;
/// Distinct values kept per tracked key; more are counted under
/// [`OVERFLOW_VALUE`].
pub const MAX_TAG_VALUES: usize = 100;
/// The value that values beyond the cap are counted under.
pub const OVERFLOW_VALUE: &str = "(other values: cap reached)";

/// Tags an event carries: (key, value) pairs.
pub type Tags = [(String, String)];

/// (tag key, tag value, type, name).
pub(crate) type TagKey = (String, String, String, String);

/// The tracked keys and the values admitted so far for each.
#[derive(Debug, Default)]
pub(crate) struct TagTracker {
    keys: Vec<String>,
    values: Mutex<HashMap<String, Vec<String>>>,
}

impl TagTracker {
    pub(crate) fn new(mut keys: Vec<String>) -> TagTracker {
        keys.sort();
        keys.dedup();
        TagTracker {
            keys,
            values: Mutex::default(),
        }
    }

    /// True when `key` is tracked.
    pub(crate) fn tracks(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// The value `value` of `key` is counted under: itself while the key has
    /// fewer than [`MAX_TAG_VALUES`] or already has it, else the overflow.
    pub(crate) fn admit(&self, key: &str, value: &str) -> String {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let known = values.entry(key.to_string()).or_default();
        if known.iter().any(|v| v == value) {
            value.to_string()
        } else if known.len() < MAX_TAG_VALUES {
            known.push(value.to_string());
            value.to_string()
        } else {
            OVERFLOW_VALUE.to_string()
        }
    }
}

/// One value of a tracked tag: its requests in total and per type and name.
#[derive(Debug, Clone, Serialize)]
pub struct TagValueStats {
    pub value: String,
    /// Every request with this value (groups excluded), as the Aggregated row.
    pub total: NameStats,
    /// Per type and name (groups included, as in `stats`).
    pub stats: Vec<NameStats>,
}

/// The report's `breakdown`: tag key -> one entry per value.
pub type Breakdown = BTreeMap<String, Vec<TagValueStats>>;

/// Build the breakdown from the tagged entries; `stats_of` makes a row.
pub(crate) fn breakdown(
    tagged: &BTreeMap<TagKey, Entry>,
    stats_of: impl Fn(&str, &str, &Entry) -> NameStats,
    merge: impl Fn(&mut Entry, &Entry),
) -> Breakdown {
    let mut by_value: BTreeMap<(&str, &str), (Entry, Vec<NameStats>)> = BTreeMap::new();
    for ((key, value, kind, name), entry) in tagged {
        let (total, rows) = by_value
            .entry((key, value))
            .or_insert_with(|| (Entry::new(), Vec::new()));
        if kind != GROUP_TYPE {
            merge(total, entry);
        }
        rows.push(stats_of(kind, name, entry));
    }
    let mut breakdown = Breakdown::new();
    for ((key, value), (total, stats)) in by_value {
        breakdown
            .entry(key.to_string())
            .or_default()
            .push(TagValueStats {
                value: value.to_string(),
                total: stats_of("", "Aggregated", &total),
                stats,
            });
    }
    breakdown
}
