//! Per-VU state (the Store's data), the run-wide context every VU shares,
//! and one VU's instance lifecycle: instantiate, configure, start, tasks, stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use tokio::sync::watch;
use url::Url;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{Scenario, ScenarioPre, user};
use crate::budget::{HostHold, MAX_RESOURCES, MemoryBudget, MemoryCap};
use crate::caps::data::Feeds;
use crate::caps::grpc::{ProtoSchema, VuGrpc};
use crate::caps::http::{HttpSettings, VuHttp};
use crate::caps::resources::ResourceAudit;
use crate::caps::wasi_http::VuWasiHttp;
use crate::engine::{EPOCH_TICK, YIELD_AFTER};
use crate::guest_log::{GuestLogger, GuestOutput, RecentLines};
use crate::policy::{Limits, NetworkPolicy, SocketGrants};
use crate::stats::Stats;

/// What every VU of a run shares; built once per run.
#[derive(Debug)]
pub struct RunContext {
    pub stats: Arc<Stats>,
    pub policy: NetworkPolicy,
    /// Addresses guests may reach with their own sockets.
    pub sockets: SocketGrants,
    pub limits: Limits,
    pub base_url: Option<Url>,
    pub vars: HashMap<String, String>,
    pub logger: Arc<GuestLogger>,
    pub http: HttpSettings,
    /// Message types from `--proto`, for JSON gRPC calls.
    pub proto: Option<Arc<ProtoSchema>>,
    /// Test data feeds (`--data`), read once for every VU.
    pub data: Arc<Feeds>,
    pub stop: watch::Sender<bool>,
    /// Set by a second signal: stop at once, without the grace period.
    pub abort: watch::Sender<bool>,
    stop_reason: Mutex<Option<String>>,
    misuse: Mutex<Option<String>>,
}

impl RunContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stats: Arc<Stats>,
        policy: NetworkPolicy,
        sockets: SocketGrants,
        limits: Limits,
        base_url: Option<Url>,
        vars: HashMap<String, String>,
        logger: Arc<GuestLogger>,
        http: HttpSettings,
        proto: Option<Arc<ProtoSchema>>,
        data: Arc<Feeds>,
    ) -> Arc<RunContext> {
        Arc::new(RunContext {
            stats,
            policy,
            sockets,
            limits,
            base_url,
            vars,
            logger,
            http,
            proto,
            data,
            stop: watch::Sender::new(false),
            abort: watch::Sender::new(false),
            stop_reason: Mutex::new(None),
            misuse: Mutex::new(None),
        })
    }

    /// A context with default limits and no variables, granting `policy`:
    /// for tools and benchmarks that drive VUs without a command line.
    pub fn standalone(stats: Arc<Stats>, policy: NetworkPolicy) -> Arc<RunContext> {
        let limits = Limits::default();
        let logger = GuestLogger::new(limits.log_lines_per_second);
        RunContext::new(
            stats,
            policy,
            SocketGrants::default(),
            limits,
            None,
            HashMap::new(),
            logger,
            HttpSettings::new(false, false),
            None,
            Arc::default(),
        )
    }

    /// Ask every VU to stop after its current task; the first reason wins.
    pub fn request_stop(&self, reason: String) {
        let mut slot = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.stop.send_replace(true);
    }

    /// The scenario used a capability in a way no call can succeed with
    /// until the command line changes (`message` says how): stop the run at
    /// once; it ends as bad input (exit code 2), its results still written.
    pub fn misuse(&self, message: String) {
        {
            let mut slot = self.misuse.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(message.clone());
            }
        }
        self.request_stop(format!(
            "stopped at the first call that cannot work: {message}"
        ));
        self.abort.send_replace(true);
    }

    /// The first misuse reported, if any.
    pub fn misuse_reported(&self) -> Option<String> {
        self.misuse
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn stop_reason(&self) -> Option<String> {
        self.stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// CPU time of a VU's current call: the time its future spends being
/// polled (running wasm, and host code working for it), not the time it
/// waits for the network or a timer. Shared by the call's metering wrapper
/// and the epoch callback, hence atomics (never contended).
#[derive(Debug)]
pub struct CpuBudget {
    base: Instant,
    /// Nanoseconds of finished polls in this call.
    spent: AtomicU64,
    /// When the current poll started (nanoseconds after `base`, plus one); 0 between polls.
    polling_since: AtomicU64,
    /// Guest time of the current call when the epoch last made it yield.
    at_yield: AtomicU64,
}

impl Default for CpuBudget {
    fn default() -> CpuBudget {
        CpuBudget {
            base: Instant::now(),
            spent: AtomicU64::new(0),
            polling_since: AtomicU64::new(0),
            at_yield: AtomicU64::new(0),
        }
    }
}

impl CpuBudget {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1
    }

    fn begin(&self) {
        self.spent.store(0, Ordering::Relaxed);
        self.at_yield.store(0, Ordering::Relaxed);
    }

    /// Poll `call` to completion, counting the time spent in its polls.
    async fn meter<F: Future>(&self, call: F) -> F::Output {
        self.begin();
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| {
            let started = self.now();
            self.polling_since.store(started, Ordering::Relaxed);
            let result = call.as_mut().poll(cx);
            self.polling_since.store(0, Ordering::Relaxed);
            self.spent
                .fetch_add(self.now() - started, Ordering::Relaxed);
            result
        })
        .await
    }

    fn guest_time(&self) -> Duration {
        let mut nanos = self.spent.load(Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Relaxed);
        if since != 0 {
            nanos += self.now().saturating_sub(since);
        }
        Duration::from_nanos(nanos)
    }

    /// What the epoch callback does: yield once the call has computed
    /// [`YIELD_AFTER`] since it last yielded, else go on until the earliest
    /// tick at which that could happen.
    fn next_deadline(&self, guest_time: Duration) -> UpdateDeadline {
        let nanos = u64::try_from(guest_time.as_nanos()).unwrap_or(u64::MAX);
        let since_yield = nanos.saturating_sub(self.at_yield.load(Ordering::Relaxed));
        let yield_after = YIELD_AFTER.as_nanos() as u64;
        if since_yield >= yield_after {
            self.at_yield.store(nanos, Ordering::Relaxed);
            // tokio's yield lets the runtime poll its timers and sockets
            // first, so the VUs sharing this thread get their turn.
            return UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()));
        }
        let ticks = (yield_after - since_yield).div_ceil(EPOCH_TICK.as_nanos() as u64);
        UpdateDeadline::Continue(ticks.max(1))
    }
}

/// The data of one VU's Store.
pub struct VuState {
    pub run: Arc<RunContext>,
    pub vu_id: u32,
    /// Tasks started by this VU (across instance replacements).
    pub iteration: u64,
    /// Set by `control.stop-user` (and by a data feed that ran out).
    pub stop_requested: bool,
    /// Set when a data feed ran out and stopped this VU or the run: the
    /// current task's error is then the stop, not an exception.
    pub data_stopped: bool,
    /// The groups the current task is inside (`group.enter`).
    pub groups: crate::caps::group::Groups,
    /// The tags this VU's events carry (`tags.set`, and the user class).
    pub tags: Arc<Vec<(String, String)>>,
    /// The user class the host dealt this VU to (`control.user-class`).
    pub user_class: Option<Arc<str>>,
    /// Open model: how late the current iteration started (None: closed model).
    pub iteration_lag: Option<Duration>,
    pub http: VuHttp,
    pub grpc: VuGrpc,
    /// The faultCode of this VU's last XML-RPC call, when it ended in a
    /// fault (`xmlrpc.last-fault-code`); at most `MAX_KEPT_CODE_BYTES`.
    pub(crate) xmlrpc_fault_code: Vec<crate::bindings::xmlrpc::Node>,
    /// wasi:http requests (guests with their own HTTP library).
    pub(crate) wasi_http: VuWasiHttp,
    pub budget: Arc<CpuBudget>,
    /// Sockets and header sets this VU holds, checked where they are made.
    pub(crate) audit: ResourceAudit,
    wasi: WasiCtx,
    /// Resources handed to the guest (WASI streams, gRPC streams).
    pub(crate) table: ResourceTable,
    limiter: MemoryCap,
    stderr_tail: RecentLines,
}

impl std::fmt::Debug for VuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuState")
            .field("vu_id", &self.vu_id)
            .finish()
    }
}

impl VuState {
    /// The state of VU `vu_id`, before any instance exists. Benchmarks call
    /// the capabilities on it directly (no wasm) as a baseline.
    pub fn new(run: Arc<RunContext>, vu_id: u32, iteration: u64) -> VuState {
        let stderr_tail = RecentLines::default();
        let memory = MemoryBudget::new(run.limits.max_vu_memory);
        let wasi_http = VuWasiHttp::new(run.clone(), memory.clone());
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        VuState {
            wasi: sandboxed_wasi(&run, vu_id, &stderr_tail),
            stderr_tail,
            table,
            audit: ResourceAudit::new(memory.hold()),
            limiter: MemoryCap::new(memory),
            run,
            vu_id,
            iteration,
            stop_requested: false,
            data_stopped: false,
            groups: Default::default(),
            tags: Arc::default(),
            user_class: None,
            iteration_lag: None,
            http: VuHttp::default(),
            grpc: VuGrpc::default(),
            xmlrpc_fault_code: Vec::new(),
            wasi_http,
            budget: Arc::default(),
        }
    }
}

impl VuState {
    /// This VU's memory budget (`--max-vu-memory`), for bytes the host
    /// holds for it as they arrive.
    pub(crate) fn memory(&self) -> &Arc<MemoryBudget> {
        self.limiter.budget()
    }

    /// Hold `bytes` of host memory (`what` names them: "the request body")
    /// in this VU's budget (`--max-vu-memory`) while the hold lives; the
    /// error says the budget cannot take them.
    pub(crate) fn hold_memory(&self, bytes: usize, what: &str) -> Result<HostHold, String> {
        let budget = self.limiter.budget();
        let mut hold = budget.hold();
        if hold.grow(bytes) {
            Ok(hold)
        } else {
            Err(format!(
                "{what} ({} MiB) does not fit the VU's memory budget (--max-vu-memory {} MiB, \
                 linear memory plus what the host holds for the VU; {} MiB in use)",
                bytes.div_ceil(1 << 20),
                budget.max() >> 20,
                budget.used().div_ceil(1 << 20)
            ))
        }
    }
}

impl WasiView for VuState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// WASI with nothing granted: no files, no environment, no arguments;
/// stdout/stderr go to the rate-limited logger. Sockets are checked by
/// `caps::sockets` (granted addresses only); name lookups are answered from
/// the grants by `caps::ip_name_lookup`, which replaces WASI's in the linker.
fn sandboxed_wasi(run: &RunContext, vu_id: u32, recent: &RecentLines) -> WasiCtx {
    let logger = &run.logger;
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(GuestOutput::new(logger.clone(), vu_id, "stdout"))
        .stderr(GuestOutput::new(logger.clone(), vu_id, "stderr").remembering(recent.clone()))
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(false);
    crate::caps::sockets::restrict(&mut builder, run.sockets.clone(), logger.clone(), vu_id);
    builder.build()
}

/// Why a guest call did not return normally.
#[derive(Debug)]
pub enum GuestFailure {
    /// The guest returned an error value: counted, the VU goes on.
    Error(String),
    /// The guest trapped or broke a limit: counted, the instance is replaced.
    Trap(String),
}

/// One live instance of the scenario for one VU.
pub struct VuInstance {
    store: Store<VuState>,
    scenario: Scenario,
    /// The store's CPU budget, held here so a call can be metered while the
    /// store is borrowed by it.
    budget: Arc<CpuBudget>,
}

impl std::fmt::Debug for VuInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuInstance")
            .field("vu_id", &self.store.data().vu_id)
            .finish()
    }
}

/// The trap's root cause, plus the panic message the guest printed if any.
fn trap_message(error: &wasmtime::Error, recent: Option<&RecentLines>) -> String {
    let mut message = error.root_cause().to_string();
    if message.contains("resource table has no free keys") {
        message = format!(
            "the VU holds more than {MAX_RESOURCES} host resources at once (streams, pollables, \
             HTTP requests); it was replaced and its resources freed"
        );
    }
    if let Some(panic) = recent.and_then(RecentLines::take_panic) {
        message = format!("{message}; guest {panic}");
    }
    if message.len() > 800 {
        let mut end = 800;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message.replace('\n', " | ")
}

impl VuInstance {
    /// Create a fresh instance for VU `vu_id`.
    pub async fn new(
        engine: &Engine,
        pre: &ScenarioPre<VuState>,
        run: Arc<RunContext>,
        vu_id: u32,
        user_class: Option<&str>,
        iteration: u64,
    ) -> Result<VuInstance> {
        let mut state = VuState::new(run, vu_id, iteration);
        if let Some(class) = user_class {
            state.user_class = Some(Arc::from(class));
            state.tags = Arc::new(crate::caps::tags::with_class(Vec::new(), class));
        }
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            let limit = state.run.limits.max_task_cpu;
            let guest_time = state.budget.guest_time();
            if guest_time > limit {
                return Err(wasmtime::format_err!(
                    "the VU used more than {} of CPU in one call (raise it with --max-task-cpu)",
                    humantime::format_duration(limit)
                ));
            }
            // A guest that waits on the host yields there; only one that
            // computes without pause is made to yield.
            Ok(state.budget.next_deadline(guest_time))
        });
        let scenario = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("instantiating the scenario: {}", trap_message(&e, None)))?;
        let budget = store.data().budget.clone();
        Ok(VuInstance {
            store,
            scenario,
            budget,
        })
    }

    pub fn state(&self) -> &VuState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut VuState {
        self.store.data_mut()
    }

    /// Ask the scenario for its configuration.
    pub async fn configure(&mut self) -> Result<user::Config, GuestFailure> {
        let result = self
            .budget
            .meter(
                self.scenario
                    .horde_scenario_user()
                    .call_configure(&mut self.store),
            )
            .await;
        result
            .map_err(|e| GuestFailure::Trap(trap_message(&e, Some(&self.store.data().stderr_tail))))
    }

    pub async fn on_start(&mut self) -> Result<(), GuestFailure> {
        let result = self
            .budget
            .meter(
                self.scenario
                    .horde_scenario_user()
                    .call_on_start(&mut self.store),
            )
            .await;
        self.finish(result)
    }

    pub async fn run_task(&mut self, index: u32) -> Result<(), GuestFailure> {
        let result = self
            .budget
            .meter(
                self.scenario
                    .horde_scenario_user()
                    .call_run_task(&mut self.store, index),
            )
            .await;
        self.finish(result)
    }

    pub async fn on_stop(&mut self) -> Result<(), GuestFailure> {
        let result = self
            .budget
            .meter(
                self.scenario
                    .horde_scenario_user()
                    .call_on_stop(&mut self.store),
            )
            .await;
        self.finish(result)
    }

    fn finish(&mut self, result: wasmtime::Result<Result<(), String>>) -> Result<(), GuestFailure> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(GuestFailure::Error(message)),
            Err(trap) => Err(GuestFailure::Trap(trap_message(
                &trap,
                Some(&self.store.data().stderr_tail),
            ))),
        }
    }
}
