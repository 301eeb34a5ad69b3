//! Example scenario: Locust's gRPC user. Calls `HelloService.SayHello` on
//! `--host` (h2c: `http://127.0.0.1:50051`); the host records each call as
//! type `grpc` named `/hello.HelloService/SayHello`. With `--var mode=json`
//! it sends JSON instead, which needs `--proto hello.proto`.

use horde_sdk::prelude::*;

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloResponse {
    #[prost(string, tag = "1")]
    message: String,
}

const SAY_HELLO: &str = "/hello.HelloService/SayHello";

#[derive(Default)]
struct GrpcUser;

impl Scenario for GrpcUser {
    fn config() -> Config<Self> {
        let wait = match control::var("wait").as_deref() {
            Some("none") => no_wait(),
            _ => between(0.1, 0.5),
        };
        Config::new().task(1, "say_hello", GrpcUser::say_hello).wait(wait).default_host("http://127.0.0.1:50051")
    }
}

impl GrpcUser {
    fn say_hello(&mut self) -> TaskResult {
        let name = format!("VU {}", control::vu_id());
        let greeting = if control::var("mode").as_deref() == Some("json") {
            let reply = grpc::call("", SAY_HELLO).json(&json!({ "name": name }).to_string())?;
            let reply: horde_sdk::serde_json::Value = horde_sdk::serde_json::from_str(&reply)?;
            reply["message"].as_str().unwrap_or_default().to_string()
        } else {
            let reply: HelloResponse = grpc::call("", SAY_HELLO).message(&HelloRequest { name: name.clone() })?;
            reply.message
        };
        check("greeting names the caller", greeting.contains(&name));
        Ok(())
    }
}

horde_sdk::export_scenario!(GrpcUser);
