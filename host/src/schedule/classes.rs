//! User classes: several kinds of virtual user in one run (Locust's several
//! `User` classes with `weight` and `fixed_count`, k6's scenarios with their
//! own `exec` function). A scenario declares them as default options
//! `("class", "NAME;weight=3;tasks=0,1;wait=between:500:2000")`; this module
//! parses them, picks the ones `--user-class` names, and says which class
//! each VU (closed model) or arrival (open model) belongs to.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{TaskTable, Wait};
use crate::bindings::user;

/// The tag every event of a VU of a class carries, naming the class, so
/// `breakdown.user_class` reports results per class.
pub const CLASS_TAG: &str = "user_class";
/// Longest class name, in bytes.
const MAX_NAME_LEN: usize = 64;
/// Most classes one scenario may declare.
const MAX_CLASSES: usize = 64;
/// Largest sum of the weights of the weighted classes (weights are ratios:
/// 3 and 1 mix as 30 and 10 do).
const MAX_TOTAL_WEIGHT: u64 = 10_000;

/// One class: its tasks, wait time and share of the users.
#[derive(Debug, Clone)]
pub struct UserClass {
    /// None for a scenario without classes.
    pub name: Option<String>,
    /// Share of the users not taken by fixed counts (Locust's `weight`).
    pub weight: u32,
    /// Exactly this many users, started first (Locust's `fixed_count`);
    /// 0 for a weighted class.
    pub fixed_count: u32,
    pub tasks: TaskTable,
    pub wait: Wait,
}

/// The run's classes and how users are dealt out to them: the first
/// `fixed-count` user slots go to the fixed classes in declaration order,
/// the rest follow a smooth weighted round robin over the weighted ones
/// (nginx's), so any `k * total weight` consecutive slots hold each class
/// exactly `k * weight` times and every prefix is as close as it can be.
#[derive(Debug, Clone)]
pub struct UserClasses {
    classes: Vec<UserClass>,
    /// The scenario's task names, by the index `run-task` takes.
    task_names: Vec<String>,
    fixed_total: u64,
    /// One period of the weighted round robin: class indices.
    rotation: Vec<usize>,
}

impl UserClasses {
    /// A scenario's tasks and wait: one unnamed class when `declarations`
    /// (the scenario's `class` defaults) is empty, else the declared classes
    /// that `picked` (`--user-class`; empty: all) names.
    pub fn new(
        tasks: &[user::Task],
        wait: &user::WaitTime,
        declarations: &[String],
        picked: &[String],
    ) -> Result<UserClasses> {
        let all: Vec<u32> = (0..tasks.len() as u32).collect();
        let task_names = tasks.iter().map(|t| t.name.clone()).collect();
        if declarations.is_empty() {
            if let Some(name) = picked.first() {
                bail!(
                    "--user-class {name}: the scenario declares no user classes (it runs one kind \
                     of user); drop --user-class"
                );
            }
            let only = UserClass {
                name: None,
                weight: 1,
                fixed_count: 0,
                tasks: TaskTable::new(tasks, &all)?,
                wait: Wait::from_guest(wait)?,
            };
            return Ok(UserClasses::from_classes(vec![only], task_names));
        }
        if declarations.len() > MAX_CLASSES {
            bail!(
                "the scenario declares {} user classes; at most {MAX_CLASSES} are supported",
                declarations.len()
            );
        }
        let mut classes = Vec::new();
        for declaration in declarations {
            let class = parse_class(declaration, tasks, wait)?;
            if classes.iter().any(|c: &UserClass| c.name == class.name) {
                bail!(
                    "the scenario declares user class {:?} twice; give each class its own name",
                    class.name.unwrap_or_default()
                );
            }
            classes.push(class);
        }
        let names = |classes: &[UserClass]| {
            classes
                .iter()
                .filter_map(|c| c.name.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in picked {
            if name.is_empty() {
                bail!(
                    "--user-class: an empty class name (a stray comma?); give names such as \
                     --user-class {}",
                    names(&classes)
                );
            }
            if !classes.iter().any(|c| c.name.as_deref() == Some(name)) {
                let close = classes
                    .iter()
                    .filter_map(|c| c.name.as_deref())
                    .find(|n| n.eq_ignore_ascii_case(name))
                    .map(|n| format!(" (names are case-sensitive: did you mean {n}?)"))
                    .unwrap_or_default();
                bail!(
                    "--user-class {name}: the scenario has no such user class{close}; it declares: {}",
                    names(&classes)
                );
            }
        }
        if !picked.is_empty() {
            classes.retain(|c| picked.iter().any(|p| c.name.as_deref() == Some(p)));
        }
        if classes.iter().all(|c| c.weight == 0 && c.fixed_count == 0) {
            bail!(
                "every user class to run ({}) has weight 0 and no fixed-count: give one a weight \
                 above 0",
                names(&classes)
            );
        }
        let total: u64 = classes
            .iter()
            .filter(|c| c.fixed_count == 0)
            .map(|c| u64::from(c.weight))
            .sum();
        if total > MAX_TOTAL_WEIGHT {
            bail!(
                "the user classes' weights add up to {total}; keep the sum at most \
                 {MAX_TOTAL_WEIGHT} (weights are ratios: 3 and 1 mix as 30 and 10 do)"
            );
        }
        Ok(UserClasses::from_classes(classes, task_names))
    }

    fn from_classes(classes: Vec<UserClass>, task_names: Vec<String>) -> UserClasses {
        let fixed_total = classes.iter().map(|c| u64::from(c.fixed_count)).sum();
        // Smooth weighted round robin: each turn every weighted class gains
        // its weight; the one with the most goes and pays the total back.
        let weighted: Vec<(usize, i64)> = classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fixed_count == 0 && c.weight > 0)
            .map(|(i, c)| (i, i64::from(c.weight)))
            .collect();
        let total: i64 = weighted.iter().map(|(_, w)| w).sum();
        let mut current = vec![0i64; weighted.len()];
        let mut rotation = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (credit, (_, weight)) in current.iter_mut().zip(&weighted) {
                *credit += weight;
            }
            let best = (0..weighted.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .expect("total > 0 means a weighted class");
            current[best] -= total;
            rotation.push(weighted[best].0);
        }
        UserClasses {
            classes,
            task_names,
            fixed_total,
            rotation,
        }
    }

    /// True when the scenario declares classes (VUs are then tagged).
    pub fn named(&self) -> bool {
        self.classes[0].name.is_some()
    }

    pub fn get(&self, class: usize) -> &UserClass {
        &self.classes[class]
    }

    pub fn all(&self) -> &[UserClass] {
        &self.classes
    }

    /// The name of the task at index `index` of the scenario's tasks.
    pub fn task_name(&self, index: u32) -> &str {
        self.task_names
            .get(index as usize)
            .map_or("?", String::as_str)
    }

    /// The class of the user in run-wide slot `slot` (1-based: the first
    /// user of the run is slot 1), or None when only fixed-count classes
    /// run and their counts are used up.
    pub fn for_slot(&self, slot: u32) -> Option<usize> {
        let slot = u64::from(slot.max(1));
        if slot <= self.fixed_total {
            let mut end = 0;
            return self.classes.iter().position(|c| {
                end += u64::from(c.fixed_count);
                slot <= end
            });
        }
        let position = slot - self.fixed_total - 1;
        (!self.rotation.is_empty())
            .then(|| self.rotation[(position % self.rotation.len() as u64) as usize])
    }

    /// Refuse a threshold that selects a user class the run does not have
    /// (`{user_class:admin}` for `Admin` would never match a request).
    pub fn check_thresholds(&self, thresholds: &[crate::thresholds::Threshold]) -> Result<()> {
        let names: Vec<&str> = self
            .classes
            .iter()
            .filter_map(|c| c.name.as_deref())
            .collect();
        for threshold in thresholds {
            if let Some((CLASS_TAG, value)) = threshold.tag()
                && !names.contains(&value)
            {
                let close = names.iter().find(|n| n.eq_ignore_ascii_case(value));
                bail!(
                    "threshold {:?} selects user class {value:?}, which this run does not have{}; \
                     its classes: {}",
                    threshold.source,
                    close
                        .map(|n| format!(" (did you mean {n}?)"))
                        .unwrap_or_default(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
            }
        }
        Ok(())
    }

    /// The most users that can run when only fixed-count classes do (their
    /// counts' sum); None when a weighted class takes any number.
    pub fn user_limit(&self) -> Option<u64> {
        self.rotation.is_empty().then_some(self.fixed_total)
    }

    /// The class of arrival `n` (0-based) in the open model: weighted round
    /// robin over the weighted classes.
    pub fn for_arrival(&self, n: u64) -> usize {
        self.rotation[(n % self.rotation.len() as u64) as usize]
    }

    /// The open model deals arrivals, not users: a fixed count means nothing
    /// there. The error names the classes.
    pub fn check_open_model(&self) -> Result<()> {
        let fixed: Vec<&str> = self
            .classes
            .iter()
            .filter(|c| c.fixed_count > 0)
            .filter_map(|c| c.name.as_deref())
            .collect();
        if !fixed.is_empty() {
            bail!(
                "user class {} has a fixed-count, which needs the closed model (--users or user \
                 stages); with --rate arrivals are dealt out by weight: run the other classes \
                 with --user-class, or give it a weight",
                fixed.join(", ")
            );
        }
        if self.rotation.is_empty() {
            bail!("no user class has a weight above 0 to take arrivals");
        }
        Ok(())
    }

    /// How many of a segment's first `users` VUs (the run's users
    /// `offset + 1 ..= offset + users`) each class gets.
    pub fn users_of(&self, users: u32, offset: u32) -> Vec<u32> {
        let mut counts = vec![0u32; self.classes.len()];
        for local in 1..=users {
            if let Some(class) = self.for_slot(offset.saturating_add(local)) {
                counts[class] += 1;
            }
        }
        counts
    }

    /// The report's `user_classes`: each class with its users at `peak`
    /// users (closed model; None in the open model, where arrivals follow
    /// the weights).
    pub fn report(&self, peak: Option<u32>, offset: u32) -> Vec<ClassReport> {
        let users = peak.map(|peak| self.users_of(peak, offset));
        let period = self.rotation.len();
        self.classes
            .iter()
            .enumerate()
            .map(|(i, class)| ClassReport {
                name: class.name.clone().unwrap_or_default(),
                weight: class.weight,
                fixed_count: class.fixed_count,
                users: users.as_ref().map(|counts| counts[i]),
                arrival_share: (peak.is_none() && period > 0).then(|| {
                    self.rotation.iter().filter(|&&c| c == i).count() as f64 / period as f64
                }),
            })
            .collect()
    }
}

/// One user class in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub name: String,
    pub weight: u32,
    /// 0 for a weighted class.
    pub fixed_count: u32,
    /// Closed model: the class's VUs at the run's peak user count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Open model: the class's share of the arrivals (0..1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival_share: Option<f64>,
}

/// Parse one declaration: `NAME;weight=W;fixed-count=N;tasks=I,J;wait=...`.
fn parse_class(text: &str, tasks: &[user::Task], wait: &user::WaitTime) -> Result<UserClass> {
    let usage = "a user class is declared as NAME;tasks=0,1[;weight=W][;fixed-count=N][;wait=none|\
                 constant:MS|between:MIN:MAX|pacing:MS|throughput:PER_S]";
    let mut parts = text.split(';');
    let name = parts.next().unwrap_or("").trim();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        bail!(
            "the scenario's user class {text:?} has no usable name: names are 1 to \
             {MAX_NAME_LEN} letters, digits, '_', '-' or '.'; {usage}"
        );
    }
    let (mut weight, mut fixed_count, mut indices, mut class_wait) = (None, None, None, None);
    for part in parts {
        let Some((key, value)) = part.split_once('=') else {
            bail!("user class {name}: {part:?} is not KEY=VALUE; {usage}");
        };
        let (key, value) = (key.trim(), value.trim());
        let number = |what: &str| {
            value.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("user class {name}: {what} {value:?} is not a whole number >= 0")
            })
        };
        let seen = match key {
            "weight" => weight.replace(number("weight")?).is_some(),
            "fixed-count" => fixed_count.replace(number("fixed-count")?).is_some(),
            "tasks" => indices
                .replace(parse_indices(name, value, tasks.len())?)
                .is_some(),
            "wait" => class_wait.replace(parse_wait(name, value)?).is_some(),
            _ => bail!("user class {name}: unknown option {key:?}; {usage}"),
        };
        if seen {
            bail!("user class {name}: {key} is given twice");
        }
    }
    let Some(indices) = indices else {
        bail!("user class {name} names no tasks; {usage}");
    };
    let table =
        TaskTable::new(tasks, &indices).map_err(|e| anyhow::anyhow!("user class {name}: {e}"))?;
    let wait = Wait::from_guest(class_wait.as_ref().unwrap_or(wait))
        .map_err(|e| anyhow::anyhow!("user class {name}: {e}"))?;
    Ok(UserClass {
        name: Some(name.to_string()),
        weight: weight.unwrap_or(1),
        fixed_count: fixed_count.unwrap_or(0),
        tasks: table,
        wait,
    })
}

fn parse_indices(class: &str, text: &str, count: usize) -> Result<Vec<u32>> {
    let mut indices = Vec::new();
    for item in text.split(',') {
        match item.trim().parse::<u32>() {
            Ok(i) if (i as usize) < count => {
                if !indices.contains(&i) {
                    indices.push(i);
                }
            }
            _ => bail!(
                "user class {class}: task {item:?} is not an index of the scenario's {count} tasks \
                 (0 to {})",
                count.saturating_sub(1)
            ),
        }
    }
    Ok(indices)
}

/// `none`, `constant:MS`, `between:MIN:MAX`, `pacing:MS` or `throughput:PER_S`.
fn parse_wait(class: &str, text: &str) -> Result<user::WaitTime> {
    let fields: Vec<&str> = text.split(':').map(str::trim).collect();
    let ms = |s: &str| s.parse::<u64>().ok();
    let wait = match fields.as_slice() {
        ["none"] => Some(user::WaitTime::None),
        ["constant", m] => ms(m).map(user::WaitTime::Constant),
        ["pacing", m] => ms(m).map(user::WaitTime::ConstantPacing),
        ["between", a, b] => ms(a)
            .zip(ms(b))
            .map(|(min_ms, max_ms)| user::WaitTime::Between(user::Range { min_ms, max_ms })),
        ["throughput", r] => r
            .parse::<f64>()
            .ok()
            .map(user::WaitTime::ConstantThroughput),
        _ => None,
    };
    wait.ok_or_else(|| {
        anyhow::anyhow!(
            "user class {class}: wait {text:?} is not none, constant:MS, between:MIN:MAX, \
             pacing:MS or throughput:PER_S (milliseconds; tasks per second)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(n: usize) -> Vec<user::Task> {
        (0..n)
            .map(|i| user::Task {
                name: format!("t{i}"),
                weight: 1,
            })
            .collect()
    }

    fn classes(declarations: &[&str], picked: &[&str]) -> Result<UserClasses> {
        let declarations: Vec<String> = declarations.iter().map(|s| s.to_string()).collect();
        let picked: Vec<String> = picked.iter().map(|s| s.to_string()).collect();
        UserClasses::new(&tasks(3), &user::WaitTime::None, &declarations, &picked)
    }

    #[test]
    fn fixed_counts_come_first_then_weights_in_smooth_rotation() {
        let c = classes(
            &["shopper;tasks=0,1;weight=3", "admin;tasks=2;fixed-count=1"],
            &[],
        )
        .unwrap();
        assert_eq!(c.for_slot(1), Some(1));
        // Slots 2.. are all shoppers (the only weighted class).
        assert!((2..50).all(|s| c.for_slot(s) == Some(0)));
        assert_eq!(c.users_of(10, 0), vec![9, 1]);
        assert_eq!(c.users_of(0, 0), vec![0, 0]);
        // Segments of 12 users deal users 1-3, 4-6, ...: the admin is in the first.
        let parts: Vec<Vec<u32>> = (0..4).map(|i| c.users_of(3, 3 * i)).collect();
        assert_eq!(parts, [vec![2, 1], vec![3, 0], vec![3, 0], vec![3, 0]]);

        let c = classes(&["a;tasks=0;weight=3", "b;tasks=1;weight=1"], &[]).unwrap();
        let first: Vec<usize> = (1..=8).map(|s| c.for_slot(s).unwrap()).collect();
        assert_eq!(first, [0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(c.users_of(8, 0), vec![6, 2]);
        assert_eq!(c.users_of(7, 0), vec![5, 2]);
        // Every 4 consecutive slots hold 3 a and 1 b.
        for start in [1, 5, 101] {
            let b = (start..start + 4)
                .filter(|&s| c.for_slot(s) == Some(1))
                .count();
            assert_eq!(b, 1);
        }
    }

    #[test]
    fn only_fixed_classes_leave_the_other_slots_empty() {
        let c = classes(&["a;tasks=0;fixed-count=2", "b;tasks=1;fixed-count=1"], &[]).unwrap();
        assert_eq!(
            (1..=4).map(|s| c.for_slot(s)).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(1), None]
        );
        assert_eq!(c.users_of(10, 0), vec![2, 1]);
        assert!(c.check_open_model().is_err());
    }

    #[test]
    fn picking_and_bad_declarations_are_explained() {
        let c = classes(&["a;tasks=0", "b;tasks=1,2;wait=constant:5"], &["b"]).unwrap();
        assert_eq!(c.all().len(), 1);
        assert_eq!(c.get(0).name.as_deref(), Some("b"));
        assert_eq!(c.task_name(2), "t2");
        let error = |d: &[&str], p: &[&str]| format!("{:#}", classes(d, p).unwrap_err());
        assert!(error(&["a;tasks=0"], &["c"]).contains("it declares: a"));
        assert!(error(&[], &["c"]).contains("declares no user classes"));
        assert!(error(&["a;tasks=0", "a;tasks=1"], &[]).contains("twice"));
        assert!(error(&["a;tasks=7"], &[]).contains("0 to 2"));
        assert!(error(&["a"], &[]).contains("names no tasks"));
        assert!(error(&["a;tasks=0;wait=soon"], &[]).contains("between:MIN:MAX"));
        assert!(error(&["a;tasks=0;weight=0"], &[]).contains("weight 0"));
        assert!(error(&["a b;tasks=0"], &[]).contains("no usable name"));
        assert!(error(&["a;tasks=0;colour=red"], &[]).contains("unknown option"));
        assert!(error(&["a;tasks=0;weight=9000", "b;tasks=1;weight=9000"], &[]).contains("18000"));
    }
}
