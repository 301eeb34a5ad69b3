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

/// A scenario's task table, wait time and default host.
pub struct Config<S> {
    tasks: Vec<(String, u32, TaskFn<S>)>,
    wait: WaitTime,
    default_host: Option<String>,
    defaults: Vec<(String, String)>,
}

impl<S> Default for Config<S> {
    fn default() -> Self {
        Config { tasks: Vec::new(), wait: no_wait(), default_host: None, defaults: Vec::new() }
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
}
