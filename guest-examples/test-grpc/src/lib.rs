//! Test guest: checks gRPC error paths against the Python grpcio test
//! server (`--host`): a status error with its code, a deadline, a reply that
//! is not the declared type (JSON), a 5 MiB reply (RESOURCE_EXHAUSTED over
//! gRPC's default 4 MiB limit; received whole with `--var raised=on`, for a
//! run with a raised `--max-grpc-receive-size`), an ungranted target
//! (`--var denied=URL`) and a target that is not gRPC (`--var not_grpc=URL`).

use horde_sdk::grpc::Error;
use horde_sdk::http::Error as HttpError;
use horde_sdk::prelude::*;

#[derive(Default)]
struct GrpcChecks;

impl Scenario for GrpcChecks {
    fn config() -> Config<Self> {
        Config::new().task(1, "checks", GrpcChecks::checks)
    }
}

impl GrpcChecks {
    fn checks(&mut self) -> TaskResult {
        let fail = grpc::call("", "/hello.HelloService/Fail").unary(&[]);
        let not_found = matches!(&fail, Err(Error::Status(s)) if s.code == 5 && s.message == "no such greeting");
        check("a status error carries code and message", not_found);

        let meta = grpc::call("", "/hello.HelloService/Whoami").metadata("x-user", "alice").unary(&[])?;
        check("metadata reaches the server", meta.message == b"alice");

        let user = "z".repeat(1000);
        let gzip = grpc::call("", "/hello.HelloService/Whoami")
            .metadata("x-user", &user)
            .metadata("x-compress", "gzip")
            .unary(&[]);
        check("a gzip-compressed reply is decoded", gzip.is_ok_and(|r| r.message == user.as_bytes()));

        let big = grpc::call("", "/hello.HelloService/Sized").metadata("x-size", "5242880").unary(&[]);
        if control::var("raised").as_deref() == Some("on") {
            check("a reply within a raised limit arrives", big.is_ok_and(|r| r.message.len() == 5 << 20));
        } else {
            let exhausted = matches!(&big, Err(Error::Status(s)) if s.code == 8
                && s.message.starts_with("Received message larger than max (5242880 vs. 4194304)"));
            check("a reply over the receive limit is RESOURCE_EXHAUSTED", exhausted);
        }

        let slow = grpc::call("", "/hello.HelloService/Slow").deadline_ms(100).unary(&[]);
        check("a deadline gives DEADLINE_EXCEEDED", matches!(&slow, Err(Error::Status(s)) if s.code == 4));

        let garbage = grpc::call("", "/hello.HelloService/Garbage").json(r#"{"name":"x"}"#);
        check("a reply that is not the declared message is malformed", matches!(garbage, Err(Error::Malformed(_))));

        let json = grpc::call("", "/hello.HelloService/SayHello").json(r#"{"name":"json"}"#)?;
        check("JSON calls round-trip through --proto", json.contains("Hello, json!"));

        if let Some(url) = control::var("denied") {
            let denied = grpc::call(&url, "/hello.HelloService/SayHello").unary(&[]);
            let named = matches!(&denied, Err(Error::Transport(HttpError::Denied(m))) if m.contains("--allow-host"));
            check("an ungranted target is denied", named);
        }
        if let Some(url) = control::var("not_grpc") {
            let broken = grpc::call(&url, "/hello.HelloService/SayHello").unary(&[]);
            check("a server that is not gRPC gives a status error", matches!(broken, Err(Error::Status(_))));
        }
        Ok(())
    }
}

horde_sdk::export_scenario!(GrpcChecks);
