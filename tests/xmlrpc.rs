//! XML-RPC against Python's standard SimpleXMLRPCServer (a real third-party
//! server; its faults have int and string faultCodes), plus a malformed
//! response from the in-process fixture.

use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::{PythonServer, config, guests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_task_user_against_simplexmlrpcserver() {
    two_task_user(guests::RUST_XMLRPC).await;
}

/// The Python port (guest-examples/python-xmlrpc) records the same calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_port_of_the_two_task_user() {
    two_task_user(guests::PYTHON_XMLRPC).await;
}

async fn two_task_user(guest: &str) {
    let server = PythonServer::start("xmlrpc_server.py");
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guest, &server.url(), dir.path());
    run.users = 4;
    run.spawn_rate = 100.0;
    run.run_time = Some(Duration::from_secs(3));
    // Without waits each task runs hundreds of times: its share is never in doubt.
    run.vars.insert("wait".into(), "none".into());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    let names: Vec<(&str, &str)> = report
        .stats
        .iter()
        .map(|s| (s.request_type.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("xmlrpc", "get_random_number"), ("xmlrpc", "get_time")]
    );
    assert!(
        report.stats.iter().all(|s| s.count >= 50),
        "{:?}",
        report.stats
    );
    let numbers = &report.checks[0];
    assert_eq!(
        (numbers.name.as_str(), numbers.fails),
        ("random number in 0..=100", 0)
    );
    assert_eq!(numbers.passes, report.stats[0].count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_faults_malformed_and_denied() {
    let server = PythonServer::start("xmlrpc_server.py");
    let broken = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_XMLRPC, &server.url(), dir.path());
    run.iterations = Some(2);
    run.allow_hosts
        .push(horde::policy::Grant::parse(&broken.addr.to_string()).unwrap());
    run.vars.insert(
        "malformed".into(),
        format!("{}/broken-xmlrpc", broken.url()),
    );
    run.vars
        .insert("denied".into(), "http://127.0.0.3:9/".into());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.checks.len(), 10, "{:?}", report.checks);
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (2, 0), "{check:?}");
    }
    let failure = |name: &str| {
        report
            .errors
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(failure("fail"), ["fault 42: no such luck"]);
    // A string faultCode is a fault too, recorded with its code (it was a
    // "malformed response" and the fault's text was lost).
    assert_eq!(
        failure("fail_client"),
        ["fault Client: Denied access to method (login)"]
    );
    assert_eq!(failure("nested"), Vec::<&str>::new());
    let get_time = failure("get_time");
    assert!(
        get_time
            .iter()
            .any(|m| m.starts_with("malformed response:")),
        "{get_time:?}"
    );
    assert!(
        get_time.iter().any(|m| m.starts_with("denied:")),
        "{get_time:?}"
    );
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
}
