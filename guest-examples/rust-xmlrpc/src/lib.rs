//! Example scenario: Locust's XML-RPC user. One task calls `get_time()`, the
//! other `get_random_number(0, 100)`; the host records each call as type
//! `xmlrpc`, named by the method, with faults as failures.

use horde_sdk::prelude::*;

#[derive(Default)]
struct XmlRpcUser;

impl Scenario for XmlRpcUser {
    fn config() -> Config<Self> {
        let wait = match control::var("wait").as_deref() {
            Some("none") => no_wait(),
            _ => between(0.1, 1.0),
        };
        Config::new()
            .task(1, "get_time", XmlRpcUser::get_time)
            .task(1, "get_random_number", XmlRpcUser::get_random_number)
            .wait(wait)
            .default_host("http://127.0.0.1:8877")
    }
}

impl XmlRpcUser {
    fn get_time(&mut self) -> TaskResult {
        xmlrpc::call("/", "get_time", &[])?;
        Ok(())
    }

    fn get_random_number(&mut self) -> TaskResult {
        let number = xmlrpc::call("/", "get_random_number", &[0.into(), 100.into()])?;
        check("random number in 0..=100", number.as_i64().is_some_and(|n| (0..=100).contains(&n)));
        Ok(())
    }
}

horde_sdk::export_scenario!(XmlRpcUser);
