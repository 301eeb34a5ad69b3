//! gRPC against a real Python grpcio server (unary, errors, JSON via
//! --proto) and an in-process tonic fixture (server, client and bidi streams).

use std::path::Path;
use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::numbers::NumbersServer;
use horde_tests::{PythonServer, config, guests, self_signed_tls};

fn hello_proto() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/rust-grpc/hello.proto")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn say_hello_against_grpcio() {
    let server = PythonServer::start("grpc_hello_server.py");
    let dir = tempfile::tempdir().unwrap();
    for json in [false, true] {
        let mut run = config(guests::RUST_GRPC, &server.url(), dir.path());
        run.users = 4;
        run.spawn_rate = 100.0;
        run.run_time = Some(Duration::from_secs(2));
        if json {
            run.vars.insert("mode".into(), "json".into());
            run.proto = Some(hello_proto());
        }
        let report = horde::run(&run).await.unwrap().report;
        assert_eq!(report.total.failures, 0, "{:?}", report.errors);
        assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
        let stat = &report.stats[0];
        assert_eq!(
            (stat.request_type.as_str(), stat.name.as_str()),
            ("grpc", "/hello.HelloService/SayHello")
        );
        assert!(stat.count >= 10, "{stat:?}");
        assert_eq!(report.checks[0].passes, stat.count);
        assert_eq!(report.checks[0].fails, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_calls_without_proto_or_with_a_wrong_method_stop_the_run_as_bad_input() {
    let server = PythonServer::start("grpc_hello_server.py");
    let dir = tempfile::tempdir().unwrap();
    let wrong_proto = dir.path().join("other.proto");
    std::fs::write(
        &wrong_proto,
        "syntax = \"proto3\";\npackage hello;\nmessage M { string name = 1; }\n\
         service HelloService { rpc Other (M) returns (M); }\n",
    )
    .unwrap();
    for (proto, expected) in [
        (None, "run it with --proto FILE"),
        (Some(wrong_proto), "has no method \"SayHello\""),
    ] {
        let mut run = config(guests::RUST_GRPC, &server.url(), dir.path());
        run.users = 4;
        run.spawn_rate = 100.0;
        run.run_time = Some(Duration::from_secs(20));
        run.vars.insert("mode".into(), "json".into());
        run.proto = proto;
        let outcome = horde::run(&run).await.unwrap();
        let misuse = outcome.misuse.clone().expect("the misuse is reported");
        assert!(misuse.contains(expected), "{misuse}");
        assert_eq!(outcome.judgement(), horde::Judgement::BadInput);
        // Stopped at the first calls, not after thousands of failures.
        assert!(
            outcome.report.total.count <= 8,
            "{:?}",
            outcome.report.total
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_deadlines_malformed_and_denied() {
    let server = PythonServer::start("grpc_hello_server.py");
    let not_grpc = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::TEST_GRPC, &server.url(), dir.path());
    run.iterations = Some(2);
    run.proto = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/hello_test.proto"));
    run.allow_hosts
        .push(horde::policy::Grant::parse(&not_grpc.addr.to_string()).unwrap());
    run.http2_prior_knowledge = true;
    run.vars
        .insert("denied".into(), "http://127.0.0.4:9".into());
    run.vars.insert("not_grpc".into(), not_grpc.url());
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.checks.len(), 9, "{:?}", report.checks);
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (2, 0), "{check:?}");
    }
    let failures = |name: &str| -> Vec<&str> {
        report
            .errors
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.message.as_str())
            .collect()
    };
    assert_eq!(
        failures("/hello.HelloService/Fail"),
        ["NOT_FOUND: no such greeting"]
    );
    assert!(
        failures("/hello.HelloService/Slow")[0].starts_with("DEADLINE_EXCEEDED"),
        "{:?}",
        report.errors
    );
    assert!(failures("/hello.HelloService/Garbage")[0].starts_with("malformed reply"));
    assert!(
        failures("/hello.HelloService/Sized")[0]
            .starts_with("RESOURCE_EXHAUSTED: Received message"),
        "{:?}",
        report.errors
    );
    let say_hello = failures("/hello.HelloService/SayHello");
    assert!(
        say_hello.iter().any(|m| m.starts_with("denied:")),
        "{say_hello:?}"
    );
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);

    // A raised --max-grpc-receive-size lets the 5 MiB reply through.
    run.limits.max_grpc_receive = 8 << 20;
    run.vars.insert("raised".into(), "on".into());
    let report = horde::run(&run).await.unwrap().report;
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (2, 0), "{check:?}");
    }
    assert!(
        !report
            .errors
            .iter()
            .any(|e| e.name == "/hello.HelloService/Sized"),
        "{:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_against_tonic_fixture() {
    let server = NumbersServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_GRPC_STREAMING, &server.url(), dir.path());
    run.users = 3;
    run.spawn_rate = 100.0;
    run.iterations = Some(60);
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    assert_eq!(report.total.count, 60);
    for check in &report.checks {
        assert_eq!(check.fails, 0, "{check:?}");
    }
    let stream = |method: &str| report.stats.iter().find(|s| s.name == method).unwrap();
    let count = stream("/horde.test.Numbers/Count");
    assert_eq!(
        (count.messages_sent, count.messages_received),
        (count.count, 5 * count.count)
    );
    let sum = stream("/horde.test.Numbers/Sum");
    assert_eq!(
        (sum.messages_sent, sum.messages_received),
        (4 * sum.count, sum.count)
    );
    let echo = stream("/horde.test.Numbers/Echo");
    assert_eq!(
        (echo.messages_sent, echo.messages_received),
        (3 * echo.count, 3 * echo.count)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_tls() {
    let server = NumbersServer::start_tls(self_signed_tls()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::RUST_GRPC_STREAMING, &server.url(), dir.path());
    run.iterations = Some(9);
    run.insecure = true;
    let report = horde::run(&run).await.unwrap().report;
    assert_eq!(report.total.failures, 0, "{:?}", report.errors);
    assert_eq!(report.total.count, 9);
    // Without --insecure the self-signed certificate is refused.
    run.insecure = false;
    let report = horde::run(&run).await.unwrap().report;
    assert!(report.total.count > 0);
    assert_eq!(report.total.failures, report.total.count);
    assert!(
        report.errors.iter().all(|e| e.message.starts_with("TLS:")),
        "{:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_generated_by_grpcio_tools_run_unchanged() {
    let server = PythonServer::start("grpc_hello_server.py");
    let dir = tempfile::tempdir().unwrap();
    let mut run = config(guests::PYTHON_GRPC, &server.url(), dir.path());
    run.users = 2;
    run.spawn_rate = 100.0;
    run.iterations = Some(6);
    run.vars.insert("mode".into(), "all".into());
    let report = horde::run(&run).await.unwrap().report;
    assert!(report.exceptions.is_empty(), "{:?}", report.exceptions);
    assert_eq!(report.checks.len(), 8, "{:?}", report.checks);
    for check in &report.checks {
        assert_eq!((check.passes, check.fails), (6, 0), "{check:?}");
    }
    // One `grpc` event per call (streams too), named by the method path;
    // SayHello twice per task, once through Locust's recording interceptor.
    for stat in &report.stats {
        assert_eq!(stat.request_type, "grpc");
        let calls = if stat.name == "/hello.HelloService/SayHello" {
            12
        } else {
            6
        };
        assert_eq!(stat.count, calls, "{stat:?}");
        let failing = ["/hello.HelloService/Fail", "/hello.HelloService/Slow"];
        let expected_failures = if failing.contains(&stat.name.as_str()) {
            6
        } else {
            0
        };
        assert_eq!(stat.failures, expected_failures, "{stat:?}");
    }
    assert_eq!(report.stats.len(), 7, "{:?}", report.stats);
}
