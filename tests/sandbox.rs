//! The hostile-scenario suite: one guest (test-hostile) with an attack per
//! `--var mode=` (and `--var configure=` for attacks on the configuration).
//! For each: the attack is contained, the host stays alive, the honest VUs
//! keep recording, and the report is complete.

use std::time::Duration;

use horde::RunOutcome;
use horde::demo::DemoTarget;
use horde_tests::{config, guests};

/// VUs 3 and 6 run the attack; 1, 2, 4 and 5 GET / every 10 ms.
fn hostile_config(
    target: &DemoTarget,
    cache: &std::path::Path,
    mode: &str,
) -> horde::cli::RunConfig {
    let mut run = config(guests::TEST_HOSTILE, &target.url(), cache);
    run.users = 6;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    run.stop_timeout = Duration::from_secs(1);
    run.limits.max_task_cpu = Duration::from_millis(300);
    run.limits.max_vu_memory = 32 << 20;
    run.vars.insert("mode".into(), mode.into());
    run
}

async fn run_hostile(mode: &str) -> RunOutcome {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    horde::run(&hostile_config(&target, dir.path(), mode))
        .await
        .unwrap()
}

/// The honest VUs' GET / entry: recorded, never failed, not starved.
fn assert_honest_recorded(outcome: &RunOutcome) {
    let good = outcome
        .report
        .stats
        .iter()
        .find(|s| s.request_type == "GET" && s.name == "/")
        .expect("well-behaved VUs recorded requests");
    assert_eq!(good.failures, 0, "{:?}", outcome.report.errors);
    // 4 good VUs at one request per ~10 ms for 3 s would be ~1200; demand a
    // fraction of that so a noisy machine does not fail the test, while a
    // starved run (a few requests) still does.
    assert!(
        good.count > 200,
        "honest VUs were starved: {} requests",
        good.count
    );
}

fn exceptions_with(outcome: &RunOutcome, text: &str) -> u64 {
    outcome
        .report
        .exceptions
        .iter()
        .filter(|e| e.message.contains(text))
        .map(|e| e.count)
        .sum()
}

fn assert_replaced_for(outcome: &RunOutcome, expected_message: &str) {
    assert_honest_recorded(outcome);
    let hits = exceptions_with(outcome, expected_message);
    assert!(
        hits >= 2,
        "expected exceptions containing {expected_message:?}, got {:?}",
        outcome.report.exceptions
    );
    assert!(
        outcome.replaced_instances >= 2,
        "replaced {}",
        outcome.replaced_instances
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guest_is_stopped_by_the_cpu_limit() {
    assert_replaced_for(&run_hostile("spin").await, "more than 300ms of CPU");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_guest_is_stopped_by_the_memory_limit() {
    assert_replaced_for(&run_hostile("alloc").await, "exceeded its memory limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_guest_is_replaced() {
    assert_replaced_for(&run_hostile("trap").await, "trap in task work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_flood_is_capped_per_vu() {
    let outcome = run_hostile("sockets").await;
    assert_honest_recorded(&outcome);
    let held = &outcome.report.metrics.gauges["sockets held"];
    assert_eq!(held.max, horde::caps::resources::MAX_SOCKETS as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_header_sets_are_capped_per_vu() {
    assert_replaced_for(&run_hostile("fields").await, "header sets do not fit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_held_by_the_host_count_against_the_vu_memory() {
    let outcome = run_hostile("bodies").await;
    assert_honest_recorded(&outcome);
    let refused: u64 = outcome
        .report
        .errors
        .iter()
        .filter(|e| e.message.contains("memory budget"))
        .map(|e| e.count)
        .sum();
    assert!(refused > 0, "{:?}", outcome.report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xml_rpc_call_is_built_within_the_vu_memory() {
    let outcome = run_hostile("big-call").await;
    assert_honest_recorded(&outcome);
    let refused = outcome
        .report
        .errors
        .iter()
        .find(|e| e.request_type == "xmlrpc")
        .expect("the call is recorded");
    assert!(refused.message.contains("memory budget"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statistics_map_is_capped() {
    let outcome = run_hostile("names").await;
    assert_honest_recorded(&outcome);
    let report = &outcome.report;
    let metrics = &report.metrics;
    // 1000 names plus one overflow row each.
    for (what, len) in [
        ("trends", metrics.trends.len()),
        ("counters", metrics.counters.len()),
        ("gauges", metrics.gauges.len()),
        ("checks", report.checks.len()),
        ("request names", report.stats.len()),
    ] {
        assert!(len <= 1002, "{what}: {len} entries");
    }
    assert!(metrics.trends.contains_key(horde::stats::OVERFLOW_NAME));
    assert!(
        report.errors.len() <= 2100,
        "{} error rows",
        report.errors.len()
    );
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.message.len() <= horde::stats::MAX_MESSAGE_LEN),
        "error messages are cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_strings_cannot_drive_the_terminal() {
    let outcome = run_hostile("escape").await;
    let summary = horde::output::summary::render(&outcome.report);
    let reason = outcome.stop_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("reason"),
        "the scenario stopped the test: {reason}"
    );
    let shown = format!("{summary}\n{}", horde::output::printable(&reason));
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .all(|line| !line.trim_start().starts_with("FAKE LINE")),
        "{shown}"
    );
    assert!(
        shown.contains("\\u{1b}[2J"),
        "escapes are shown, not dropped: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_log_message_does_not_starve_the_other_vus() {
    assert_honest_recorded(&run_hostile("log").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_of_guest_values_saturate() {
    let outcome = run_hostile("overflow").await;
    assert_honest_recorded(&outcome);
    let report = &outcome.report;
    let huge = report.stats.iter().find(|s| s.name == "huge").unwrap();
    assert_eq!(huge.bytes, u64::MAX);
    assert_eq!(
        report.total.bytes,
        u64::MAX,
        "the total is never below one entry"
    );
    let counter = &report.metrics.counters["huge-counter"];
    assert!(counter.total.is_finite() && counter.total == f64::MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vu_that_will_not_stop_does_not_stretch_the_rates() {
    let outcome = run_hostile("hang").await;
    assert_honest_recorded(&outcome);
    assert!(
        outcome.interrupted_users >= 2,
        "cut: {}",
        outcome.interrupted_users
    );
    // -t 3s and a 1 s stop timeout that the hung VUs use up: the load window
    // ends when the honest VUs left, not when the hung ones were cut.
    assert!(
        outcome.report.duration_s < 3.8,
        "{}",
        outcome.report.duration_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_attacks_are_denied() {
    let outcome = run_hostile("net").await;
    assert_honest_recorded(&outcome);
    let checks = &outcome.report.checks;
    assert_eq!(checks.len(), 6, "{checks:?}");
    for check in checks {
        assert!(check.passes > 0 && check.fails == 0, "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_without_a_port_reaches_no_other_service() {
    // `--allow-host 127.0.0.1` once granted every port of the address: the
    // "other port" attack reached a service the operator never named.
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_config(&target, dir.path(), "net");
    run.allow_hosts
        .push(horde::policy::Grant::parse("127.0.0.1").unwrap());
    let outcome = horde::run(&run).await.unwrap();
    let other = outcome
        .report
        .checks
        .iter()
        .find(|c| c.name == "denied: other port")
        .expect("the other-port attack ran");
    assert!(other.passes > 0 && other.fails == 0, "{other:?}");
    let denial = outcome
        .report
        .errors
        .iter()
        .find(|e| e.name == "attack: other port")
        .expect("the denial is recorded");
    assert!(
        denial
            .message
            .contains("`--allow-host 127.0.0.1` names no port, so it grants ports 80 and 443 only"),
        "{denial:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_cannot_raise_the_operators_limits() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_config(&target, dir.path(), "alloc");
    run.vars.insert("configure".into(), "raise".into());
    let outcome = horde::run(&run).await.unwrap();
    // The scenario's 1GiB is ignored: the 32 MiB cap still holds.
    assert_replaced_for(&outcome, "exceeded its memory limit");
    let mut run = hostile_config(&target, dir.path(), "hang");
    run.vars.insert("configure".into(), "raise".into());
    let started = std::time::Instant::now();
    let outcome = horde::run(&run).await.unwrap();
    // The scenario's stop-timeout of 1h is ignored: cut after the operator's 1 s.
    assert!(outcome.interrupted_users >= 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configure_that_never_returns_is_refused() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_config(&target, dir.path(), "trap");
    run.vars.insert("configure".into(), "hang".into());
    let error = horde::run(&run).await.unwrap_err();
    assert!(error.downcast_ref::<horde::BadInput>().is_some());
    assert!(
        format!("{error:#}").contains("did not return within"),
        "{error:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_wait_is_bad_input() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_config(&target, dir.path(), "trap");
    run.vars.insert("configure".into(), "throughput".into());
    let error = horde::run(&run).await.unwrap_err();
    assert!(error.downcast_ref::<horde::BadInput>().is_some());
    assert!(
        format!("{error:#}").contains("constant-throughput"),
        "{error:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_default_host_is_not_granted_without_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_HTTP, "http://127.0.0.1:1", dir.path());
    run.host = None;
    run.run_time = Some(Duration::from_secs(1));
    let error = horde::run(&run).await.unwrap_err();
    assert!(error.downcast_ref::<horde::BadInput>().is_some());
    let message = format!("{error:#}");
    assert!(
        message.contains("--host http://127.0.0.1:8089"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_report_is_refused_before_the_run() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = hostile_config(&target, dir.path(), "trap");
    run.json = Some(dir.path().join("no-such-dir/report.json"));
    let started = std::time::Instant::now();
    let error = horde::run(&run).await.unwrap_err();
    assert!(error.downcast_ref::<horde::BadInput>().is_some());
    assert!(format!("{error:#}").contains("--json"), "{error:#}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused before the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_does_not_pass() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(
        guests::TEST_HOSTILE,
        &format!("http://{address}"),
        dir.path(),
    );
    // VUs 1 and 2 GET /, VU 3 makes an XML-RPC call: all three wait forever.
    run.users = 3;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(1));
    run.stop_timeout = Duration::from_millis(500);
    run.vars.insert("mode".into(), "calls".into());
    let outcome = horde::run(&run).await.unwrap();
    accepting.abort();
    assert_eq!(outcome.interrupted_users, 3);
    let report = &outcome.report;
    assert_eq!(report.total.failures, 3, "{:?}", report.errors);
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.message.contains("abandoned"))
    );
    assert!(report.errors.iter().any(|e| e.request_type == "xmlrpc"));
    assert_eq!(outcome.judgement(), horde::Judgement::Failures);
}

/// A scenario component in WAT, with no imports: task 0 ("honest", weight
/// 4) returns at once; task 1 ("tables", weight 1) grows each of its 40
/// tables by 1M elements (320 MB of host memory if nothing counted them).
fn table_growing_scenario() -> Vec<u8> {
    let tables = "(table 0 funcref)".repeat(40);
    let grows: String = (0..40)
        .map(|t| format!("(drop (table.grow {t} (ref.null func) (i32.const 1000000)))"))
        .collect();
    // Memory: task names at 16 and 32, the task list at 64 (name pointer,
    // name length, weight), the config record at 128 (tasks pointer and
    // length, then zeros: wait none, no default host, no defaults) and an
    // ok result at 256.
    let wat = format!(
        r#"(component
        (core module $m
            (memory (export "memory") 1)
            {tables}
            (data (i32.const 16) "honest")
            (data (i32.const 32) "tables")
            (data (i32.const 64) "\10\00\00\00\06\00\00\00\04\00\00\00\20\00\00\00\06\00\00\00\01\00\00\00")
            (data (i32.const 128) "\40\00\00\00\02\00\00\00")
            (func (export "configure") (result i32) (i32.const 128))
            (func (export "ok") (result i32) (i32.const 256))
            (func (export "run-task") (param i32) (result i32)
                (if (local.get 0) (then {grows}))
                (i32.const 256)))
        (core instance $i (instantiate $m))
        (alias core export $i "memory" (core memory $memory))
        (type $task (record (field "name" string) (field "weight" u32)))
        (type $range (record (field "min-ms" u64) (field "max-ms" u64)))
        (type $wait (variant (case "none") (case "constant" u64) (case "between" $range)
            (case "constant-pacing" u64) (case "constant-throughput" f64)))
        (type $config (record (field "tasks" (list $task)) (field "wait" $wait)
            (field "default-host" (option string))
            (field "defaults" (list (tuple string string)))))
        (type $outcome (result (error string)))
        (func $configure (result $config)
            (canon lift (core func $i "configure") (memory $memory)))
        (func $ok (result $outcome) (canon lift (core func $i "ok") (memory $memory)))
        (func $run-task (param "index" u32) (result $outcome)
            (canon lift (core func $i "run-task") (memory $memory)))
        (instance $user
            (export "task" (type $task))
            (export "range" (type $range))
            (export "wait-time" (type $wait))
            (export "config" (type $config))
            (export "configure" (func $configure))
            (export "on-start" (func $ok))
            (export "run-task" (func $run-task))
            (export "on-stop" (func $ok)))
        (export "horde:scenario/user@0.1.0" (instance $user)))"#
    );
    wat::parse_str(wat).expect("the WAT scenario parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_over_the_memory_budget_fail_that_vu_alone() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tables.wasm");
    std::fs::write(&scenario, table_growing_scenario()).unwrap();
    let target = DemoTarget::start(false).await.unwrap();
    let mut run = config(scenario.to_str().unwrap(), &target.url(), dir.path());
    run.users = 3;
    run.spawn_rate = 100.0;
    run.iterations = Some(200);
    run.limits.max_vu_memory = 32 << 20;
    let outcome = horde::run(&run).await.unwrap();
    let report = &outcome.report;
    // Each "tables" task fits two 16 MB tables in the 32 MiB budget, then
    // traps on the third: counted, its instance replaced, the others run.
    let over = exceptions_with(
        &outcome,
        "exceeded its memory limit: a table of 1000000 elements",
    );
    assert!(over >= 1, "{:?}", report.exceptions);
    let all: u64 = report.exceptions.iter().map(|e| e.count).sum();
    assert_eq!(all, over, "no other failure: {:?}", report.exceptions);
    assert_eq!(outcome.replaced_instances, over);
    assert!(
        report.iterations >= 200,
        "the run went on: {}",
        report.iterations
    );
    assert!(
        over < report.iterations / 2,
        "{over} of {}",
        report.iterations
    );
}
