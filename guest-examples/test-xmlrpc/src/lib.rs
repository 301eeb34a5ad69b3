//! Test guest: checks XML-RPC behaviour against the Python test server
//! (`--host`) and a broken server (`--var malformed=URL`), and that an
//! ungranted endpoint (`--var denied=URL`) is refused.

use horde_sdk::http::Error as HttpError;
use horde_sdk::prelude::*;
use horde_sdk::xmlrpc::Error;

#[derive(Default)]
struct XmlRpcChecks;

impl Scenario for XmlRpcChecks {
    fn config() -> Config<Self> {
        Config::new().task(1, "checks", XmlRpcChecks::checks)
    }
}

impl XmlRpcChecks {
    fn checks(&mut self) -> TaskResult {
        let nested = xmlrpc::call("/", "nested", &[])?;
        let expected = Value::Struct(vec![
            ("name".into(), Value::String("horde & <co>".into())),
            ("count".into(), Value::Int(3)),
            ("ratio".into(), Value::Double(0.25)),
            ("ok".into(), Value::Bool(true)),
            ("when".into(), Value::DateTime("20260102T03:04:05".into())),
            ("blob".into(), Value::Base64(vec![0, 1, 2, 254, 255])),
            ("nothing".into(), Value::Nil),
            (
                "items".into(),
                Value::Array(vec![
                    Value::Int(1),
                    Value::Array(vec![Value::String("deep".into())]),
                    Value::Struct(vec![("k".into(), Value::String("v".into()))]),
                ]),
            ),
        ]);
        check("nested struct decodes to native values", nested == expected);

        let echoed = xmlrpc::call("/", "echo", &[expected.clone()])?;
        check("nested values survive a round trip", echoed == expected);

        let fault = xmlrpc::call("/", "fail", &[]);
        let is_fault = matches!(&fault, Err(Error::Fault(f)) if f.code == 42 && f.message.contains("no such luck"));
        check("a Fault is a typed error with code and message", is_fault);
        check("an int faultCode is kept", xmlrpc::last_fault_code() == Some(Value::Int(42)));

        // A string faultCode (SOAP::Lite servers): still a fault, code kept.
        let fault = xmlrpc::call("/", "fail_client", &[]);
        let is_fault = matches!(&fault, Err(Error::Fault(f)) if f.code == 0 && f.message == "Denied access to method (login)");
        check("a fault with a string faultCode is a fault", is_fault);
        check(
            "a string faultCode is kept",
            xmlrpc::last_fault_code() == Some(Value::String("Client".into())),
        );
        let _ = xmlrpc::call("/", "echo", &[Value::Int(1)])?;
        check("a call without a fault has no fault code", xmlrpc::last_fault_code().is_none());

        let missing = xmlrpc::call("/", "no_such_method", &[]);
        check("an unknown method is a fault", matches!(missing, Err(Error::Fault(_))));

        if let Some(url) = control::var("malformed") {
            let broken = xmlrpc::call(&url, "get_time", &[]);
            check("a malformed response is reported", matches!(broken, Err(Error::Malformed(_))));
        }
        if let Some(url) = control::var("denied") {
            let denied = xmlrpc::call(&url, "get_time", &[]);
            let named = matches!(&denied, Err(Error::Transport(HttpError::Denied(m))) if m.contains("--allow-host"));
            check("an ungranted endpoint is denied", named);
        }
        Ok(())
    }
}

horde_sdk::export_scenario!(XmlRpcChecks);
