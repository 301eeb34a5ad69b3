//! The `Scenario` trait, its task table and wait times, and the glue the
//! export macro calls.

use std::cell::RefCell;
use std::fmt;

use crate::bindings::exports::horde::scenario::user as wit;

/// What a task returns; `?` works on HTTP errors, failed checks and strings.
pub type TaskResult = Result<(), TaskError>;

/// A task failed: counted by the host as an exception with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError(pub String);

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(error: E) -> Self {
        TaskError(error.to_string())
    }
}

/// Time a VU waits between tasks.
#[derive(Debug, Clone, Copy)]
pub struct WaitTime(wit::WaitTime);

/// Wait a uniformly random time between `min` and `max` seconds.
pub fn between(min_seconds: f64, max_seconds: f64) -> WaitTime {
    WaitTime(wit::WaitTime::Between(wit::Range {
        min_ms: seconds_to_ms(min_seconds),
        max_ms: seconds_to_ms(max_seconds),
    }))
}

/// Always wait `seconds`.
pub fn constant(seconds: f64) -> WaitTime {
    WaitTime(wit::WaitTime::Constant(seconds_to_ms(seconds)))
}

/// Start a task every `seconds` (the wait shrinks by the task's duration).
pub fn constant_pacing(seconds: f64) -> WaitTime {
    WaitTime(wit::WaitTime::ConstantPacing(seconds_to_ms(seconds)))
}

/// At most `tasks_per_second` tasks per second for this VU.
pub fn constant_throughput(tasks_per_second: f64) -> WaitTime {
    WaitTime(wit::WaitTime::ConstantThroughput(tasks_per_second))
}

/// No wait between tasks.
pub fn no_wait() -> WaitTime {
    WaitTime(wit::WaitTime::None)
}

fn seconds_to_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    }
}

type TaskFn<S> = fn(&mut S) -> TaskResult;

/// A scenario's task table, wait time and default host; with several user
/// classes (`export_scenario!(Shopper, Admin)`), also its class's name and
/// share of the users.
pub struct Config<S> {
    tasks: Vec<(String, u32, TaskFn<S>)>,
    wait: WaitTime,
    default_host: Option<String>,
    defaults: Vec<(String, String)>,
    class_name: Option<String>,
    weight: Option<u32>,
    fixed_count: Option<u32>,
}

impl<S> Default for Config<S> {
    fn default() -> Self {
        Config {
            tasks: Vec::new(),
            wait: no_wait(),
            default_host: None,
            defaults: Vec::new(),
            class_name: None,
            weight: None,
            fixed_count: None,
        }
    }
}

impl<S> Config<S> {
    /// An empty configuration: no tasks, no wait.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a task picked with probability proportional to `weight`.
    pub fn task(mut self, weight: u32, name: &str, task: TaskFn<S>) -> Self {
        self.tasks.push((name.to_string(), weight, task));
        self
    }

    /// Set the wait time between tasks.
    pub fn wait(mut self, wait: WaitTime) -> Self {
        self.wait = wait;
        self
    }

    /// The host used when the command line gives no `--host`.
    pub fn default_host(mut self, host: &str) -> Self {
        self.default_host = Some(host.to_string());
        self
    }

    /// A default for a `horde run` option, by its long flag without dashes:
    /// `.option("rate", "100/s").option("run-time", "1m")`. The command line wins.
    pub fn option(mut self, flag: &str, value: &str) -> Self {
        self.defaults.push((flag.to_string(), value.to_string()));
        self
    }

    /// A data feed the scenario reads, with the options it needs:
    /// `.data("users;strategy=unique")`. The run then requires the
    /// operator to grant a file for it (`--data users=users.csv`), whose
    /// own options win. A scenario never names the file.
    pub fn data(self, feed: &str) -> Self {
        self.option("data", feed)
    }

    /// A pass/fail threshold in k6 syntax, e.g. `http_req_duration: p(95)<200`.
    pub fn threshold(self, threshold: &str) -> Self {
        self.option("threshold", threshold)
    }

    /// With several user classes: this class's share of the users
    /// (Locust's `weight`, default 1): weights 3 and 1 give 3 of every 4
    /// users to the first.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = Some(weight);
        self
    }

    /// With several user classes: exactly `count` users of this class,
    /// started before the weighted ones (Locust's `fixed_count`); the
    /// closed model only.
    pub fn fixed_count(mut self, count: u32) -> Self {
        self.fixed_count = Some(count);
        self
    }

    /// With several user classes: the class's name in the report and for
    /// `--user-class` (default: the type's name, e.g. `Shopper`).
    pub fn class_name(mut self, name: &str) -> Self {
        self.class_name = Some(name.to_string());
        self
    }
}

/// One virtual user's behaviour. The struct holds the VU's own state (one
/// instance per VU), created with `Default` before `on_start`.
pub trait Scenario: Default + 'static {
    /// The task table and wait time.
    fn config() -> Config<Self>;

    /// Runs once when the VU starts (log in, fetch a token). An error stops the VU.
    fn on_start(&mut self) -> TaskResult {
        Ok(())
    }

    /// Runs once when the VU stops.
    fn on_stop(&mut self) -> TaskResult {
        Ok(())
    }
}

/// Glue between the exported `user` interface and a [`Scenario`]. The
/// component instance is single-threaded, so thread-locals hold its state.
pub mod runtime {
    use super::*;
    use std::any::Any;

    thread_local! {
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
        static TASKS: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    fn with_state<S: Scenario, R>(f: impl FnOnce(&mut S) -> R) -> R {
        STATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let state = slot.get_or_insert_with(|| Box::new(S::default()));
            f(state.downcast_mut::<S>().expect("one scenario type per component"))
        })
    }

    fn task_fn<S: Scenario>(index: u32) -> Option<TaskFn<S>> {
        TASKS.with(|cell| {
            let mut slot = cell.borrow_mut();
            let table = slot.get_or_insert_with(|| {
                let fns: Vec<TaskFn<S>> = S::config().tasks.iter().map(|t| t.2).collect();
                Box::new(fns)
            });
            table.downcast_ref::<Vec<TaskFn<S>>>()?.get(index as usize).copied()
        })
    }

    pub fn configure<S: Scenario>() -> wit::Config {
        let config = S::config();
        wit::Config {
            tasks: config
                .tasks
                .iter()
                .map(|(name, weight, _)| wit::Task { name: name.clone(), weight: *weight })
                .collect(),
            wait: config.wait.0,
            default_host: config.default_host,
            defaults: config.defaults,
        }
    }

    pub fn on_start<S: Scenario>() -> Result<(), String> {
        with_state::<S, _>(|s| s.on_start()).map_err(|e| e.0)
    }

    pub fn run_task<S: Scenario>(index: u32) -> Result<(), String> {
        let task = task_fn::<S>(index).ok_or_else(|| format!("no task at index {index}"))?;
        with_state::<S, _>(task).map_err(|e| e.0)
    }

    pub fn on_stop<S: Scenario>() -> Result<(), String> {
        with_state::<S, _>(|s| s.on_stop()).map_err(|e| e.0)
    }

    /// One user class of a component that exports several
    /// (`export_scenario!(A, B)`): its configuration and entry points.
    pub struct Class {
        configure: fn() -> (String, Option<u32>, Option<u32>, wit::Config),
        on_start: fn() -> Result<(), String>,
        run_task: fn(u32) -> Result<(), String>,
        on_stop: fn() -> Result<(), String>,
    }

    fn class_configure<S: Scenario>() -> (String, Option<u32>, Option<u32>, wit::Config) {
        let config = S::config();
        let name = config.class_name.clone().unwrap_or_else(|| {
            let full = std::any::type_name::<S>();
            full.rsplit("::").next().unwrap_or(full).to_string()
        });
        (name, config.weight, config.fixed_count, configure::<S>())
    }

    /// The [`Class`] of scenario type `S`.
    pub const fn class<S: Scenario>() -> Class {
        Class {
            configure: class_configure::<S>,
            on_start: on_start::<S>,
            run_task: run_task::<S>,
            on_stop: on_stop::<S>,
        }
    }

    /// `wait` as a class declaration's `wait=` value.
    fn wait_text(wait: &wit::WaitTime) -> String {
        match wait {
            wit::WaitTime::None => "none".into(),
            wit::WaitTime::Constant(ms) => format!("constant:{ms}"),
            wit::WaitTime::Between(range) => format!("between:{}:{}", range.min_ms, range.max_ms),
            wit::WaitTime::ConstantPacing(ms) => format!("pacing:{ms}"),
            wit::WaitTime::ConstantThroughput(rate) => format!("throughput:{rate}"),
        }
    }

    /// The component's configuration: every class's tasks one after the
    /// other, each class declared as a `class` default naming its tasks'
    /// indices, weight or fixed count, and wait; the classes' options and
    /// thresholds together (each once).
    pub fn configure_classes(classes: &[Class]) -> wit::Config {
        let mut merged = wit::Config {
            tasks: Vec::new(),
            wait: wit::WaitTime::None,
            default_host: None,
            defaults: Vec::new(),
        };
        for (i, class) in classes.iter().enumerate() {
            let (name, weight, fixed_count, config) = (class.configure)();
            let first = merged.tasks.len();
            merged.tasks.extend(config.tasks);
            let indices: Vec<String> = (first..merged.tasks.len()).map(|i| i.to_string()).collect();
            let mut declaration = format!("{name};tasks={}", indices.join(","));
            if let Some(weight) = weight {
                declaration += &format!(";weight={weight}");
            }
            if let Some(count) = fixed_count {
                declaration += &format!(";fixed-count={count}");
            }
            declaration += &format!(";wait={}", wait_text(&config.wait));
            if i == 0 {
                merged.wait = config.wait;
            }
            merged.default_host = merged.default_host.or(config.default_host);
            for pair in config.defaults {
                if !merged.defaults.contains(&pair) {
                    merged.defaults.push(pair);
                }
            }
            merged.defaults.push(("class".into(), declaration));
        }
        merged
    }

    thread_local! {
        static CLASS: std::cell::Cell<Option<(usize, u32)>> = const { std::cell::Cell::new(None) };
    }

    /// This VU's class (by `control::user_class()`) and its first task's index.
    fn current(classes: &[Class]) -> (usize, u32) {
        if let Some(known) = CLASS.get() {
            return known;
        }
        let mine = crate::control::user_class();
        let mut first = 0u32;
        let mut found = (0, 0);
        for (i, class) in classes.iter().enumerate() {
            let (name, _, _, config) = (class.configure)();
            if Some(&name) == mine.as_ref() {
                found = (i, first);
                break;
            }
            first += config.tasks.len() as u32;
        }
        CLASS.set(Some(found));
        found
    }

    pub fn on_start_classes(classes: &[Class]) -> Result<(), String> {
        (classes[current(classes).0].on_start)()
    }

    pub fn run_task_classes(classes: &[Class], index: u32) -> Result<(), String> {
        let (class, first) = current(classes);
        let local = index.checked_sub(first).ok_or_else(|| format!("no task at index {index}"))?;
        (classes[class].run_task)(local)
    }

    pub fn on_stop_classes(classes: &[Class]) -> Result<(), String> {
        (classes[current(classes).0].on_stop)()
    }
}
