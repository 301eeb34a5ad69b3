//! Which request names a run keeps under the cap: names thresholds
//! select are always kept, and each VU may bring in only its share of new
//! names, so one VU that makes names up cannot push the others' out (the
//! rest fold into the overflow row); and how any name is cut to length
//! and kept under a map's cap.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::{OVERFLOW_NAME, OVERFLOW_TYPE, Stats};

/// The fewest new names a VU may bring in, however many VUs share the cap.
const MIN_VU_SHARE: usize = 10;

tokio::task_local! {
    /// The VU whose task is running (set by [`crate::workers`]): its new
    /// names count against its share of the cap.
    pub static CURRENT_VU: u32;
}

/// The (type, name) pairs a run admitted, and how many each VU brought in.
#[derive(Debug, Default)]
pub(super) struct Names {
    pub(super) admitted: HashSet<(String, String)>,
    pub(super) brought: HashMap<u32, usize>,
}

impl Stats {
    /// Always keep these request names (the names thresholds select), so
    /// no VU's names can fold them into the overflow row; set once.
    pub fn keep_names(&self, names: impl IntoIterator<Item = String>) {
        let names: HashSet<String> = names.into_iter().collect();
        if !names.is_empty() {
            let _ = self.declared.set(names);
        }
    }

    /// Share the name cap among `vus` VUs: each may bring in at most
    /// `max(cap / vus, 10)` names no other VU used first, so one VU that
    /// makes up names cannot push every other VU's names out.
    pub fn share_names_among(&self, vus: u32) {
        let share = (self.max_names / vus.max(1) as usize).max(MIN_VU_SHARE);
        self.vu_share.store(share, Ordering::Relaxed);
    }

    /// Admit a new (type, name) pair, or fold it: into this type's overflow
    /// name when the type is known, else into one overflow row, so neither
    /// unique names nor unique types grow the maps past the cap.
    pub(super) fn admit(&self, request_type: &str, name: &str) -> (String, String) {
        let kind = truncate(request_type, self.max_name_len);
        let name = truncate(name, self.max_name_len);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let key = (kind, name);
        if names.admitted.contains(&key) {
            return key;
        }
        if self.declared.get().is_some_and(|d| d.contains(&key.1)) {
            names.admitted.insert(key.clone());
            return key;
        }
        // The VU this call came from, when it ran inside one.
        let vu = CURRENT_VU.try_with(|vu| *vu).ok();
        let share = self.vu_share.load(Ordering::Relaxed);
        let within_share = match vu {
            Some(vu) if share > 0 => names.brought.get(&vu).copied().unwrap_or(0) < share,
            _ => true,
        };
        if within_share && names.admitted.len() < self.max_names {
            if let Some(vu) = vu {
                *names.brought.entry(vu).or_default() += 1;
            }
            names.admitted.insert(key.clone());
            key
        } else if names.admitted.iter().any(|(known, _)| *known == key.0) {
            (key.0, OVERFLOW_NAME.to_string())
        } else {
            (OVERFLOW_TYPE.to_string(), OVERFLOW_NAME.to_string())
        }
    }
}

/// The key a guest-chosen metric, check or message name is kept under in
/// `map`: itself (cut to `max_len`) while the map has fewer than `max`
/// keys or already holds it, else [`OVERFLOW_NAME`].
pub(crate) fn capped_key<V>(
    map: &HashMap<String, V>,
    name: &str,
    max: usize,
    max_len: usize,
) -> String {
    let name = truncate(name, max_len);
    if map.len() < max || map.contains_key(&name) {
        name
    } else {
        OVERFLOW_NAME.to_string()
    }
}

/// Cut `text` to at most `max` bytes at a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
