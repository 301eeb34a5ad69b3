//! The `xmlrpc` capability: encodes calls from the guest's flat pre-order
//! node list, sends them through the VU's HTTP client, and decodes responses
//! and faults back into nodes, without recursion and with a depth cap.

use std::fmt::Write;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::bindings::http as http_wit;
use crate::bindings::xmlrpc::{self as wit, Error, Node};
use crate::caps::http::describe_error;
use crate::stats::{InFlight, RequestEvent};
use crate::vu::VuState;

mod decode;

pub use decode::{Decoded, MAX_KEPT_CODE_BYTES, ServerFault, decode_response};

/// Deepest nesting of arrays and structs accepted either way.
pub const MAX_DEPTH: usize = 64;
/// Most nodes in one parameter list or response.
pub const MAX_NODES: usize = 1_000_000;

/// An open array or struct while walking a node list.
enum Open<'a> {
    Array { left: u32 },
    Struct { names: &'a [String], next: usize },
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Payloads bigger than this are encoded on a blocking thread.
const ENCODE_INLINE_BYTES: usize = 256 * 1024;

/// The bytes of text and binary data in `params`, plus a little per node.
fn payload_bytes(params: &[Node]) -> usize {
    params
        .iter()
        .map(|node| {
            32 + match node {
                Node::String(s) | Node::DateTime(s) => s.len(),
                Node::Base64(b) => b.len() * 2,
                Node::Struct(names) => names.iter().map(|n| n.len() + 32).sum(),
                _ => 0,
            }
        })
        .fold(0usize, usize::saturating_add)
}

/// Encode a `methodCall` document. Validates the node list as it goes:
/// child counts must match, depth is capped, floats must be finite.
pub fn encode_call(method: &str, params: &[Node]) -> Result<String, String> {
    if method.is_empty()
        || !method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/".contains(c))
    {
        return Err(format!(
            "method name {method:?} must be non-empty and use only letters, digits, _ . : /"
        ));
    }
    if params.len() > MAX_NODES {
        return Err(format!(
            "{} nodes is over the limit of {MAX_NODES}",
            params.len()
        ));
    }
    let mut out = String::with_capacity(128 + params.len() * 32);
    out.push_str("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    escape(method, &mut out);
    out.push_str("</methodName><params>");
    let mut open: Vec<Open<'_>> = Vec::new();
    for node in params {
        match open.last_mut() {
            None => out.push_str("<param>"),
            Some(Open::Struct { names, next }) => {
                out.push_str("<member><name>");
                escape(&names[*next], &mut out);
                out.push_str("</name>");
            }
            Some(Open::Array { .. }) => {}
        }
        out.push_str("<value>");
        let mut value_complete = true;
        match node {
            Node::Int(v) => {
                let _ = write!(out, "<int>{v}</int>");
            }
            Node::I8(v) => {
                let _ = write!(out, "<i8>{v}</i8>");
            }
            Node::Boolean(v) => {
                let _ = write!(out, "<boolean>{}</boolean>", u8::from(*v));
            }
            Node::String(v) => {
                out.push_str("<string>");
                escape(v, &mut out);
                out.push_str("</string>");
            }
            Node::Double(v) => {
                if !v.is_finite() {
                    return Err(format!(
                        "double {v} cannot be sent: XML-RPC has no NaN or infinity"
                    ));
                }
                let _ = write!(out, "<double>{v:?}</double>");
            }
            Node::DateTime(v) => {
                out.push_str("<dateTime.iso8601>");
                escape(v, &mut out);
                out.push_str("</dateTime.iso8601>");
            }
            Node::Base64(v) => {
                out.push_str("<base64>");
                out.push_str(&BASE64.encode(v));
                out.push_str("</base64>");
            }
            Node::Nil => out.push_str("<nil/>"),
            Node::Array(count) => {
                out.push_str("<array><data>");
                if *count == 0 {
                    out.push_str("</data></array>");
                } else {
                    open.push(Open::Array { left: *count });
                    value_complete = false;
                }
            }
            Node::Struct(names) => {
                out.push_str("<struct>");
                if names.is_empty() {
                    out.push_str("</struct>");
                } else {
                    open.push(Open::Struct { names, next: 0 });
                    value_complete = false;
                }
            }
        }
        if open.len() > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        // Close this value, and every container it completes.
        while value_complete {
            out.push_str("</value>");
            match open.last_mut() {
                None => {
                    out.push_str("</param>");
                    value_complete = false;
                }
                Some(Open::Array { left }) => {
                    *left -= 1;
                    if *left == 0 {
                        open.pop();
                        out.push_str("</data></array>");
                    } else {
                        value_complete = false;
                    }
                }
                Some(Open::Struct { names, next }) => {
                    out.push_str("</member>");
                    *next += 1;
                    if *next == names.len() {
                        open.pop();
                        out.push_str("</struct>");
                    } else {
                        value_complete = false;
                    }
                }
            }
        }
    }
    if !open.is_empty() {
        return Err(format!(
            "the node list ends inside {} unfinished array or struct value(s): a child count or \
             member list promises more values than follow",
            open.len()
        ));
    }
    out.push_str("</params></methodCall>\n");
    Ok(out)
}

/// The failure message recorded for an XML-RPC error.
fn describe(error: &Error) -> String {
    match error {
        Error::Fault(f) => format!("fault {}: {}", f.code, f.message),
        Error::Transport(e) => describe_error(e),
        Error::Status(s) => format!("HTTP {s}"),
        Error::Malformed(m) => format!("malformed response: {m}"),
        Error::InvalidParams(m) => format!("invalid params: {m}"),
    }
}

impl wit::Host for VuState {
    async fn last_fault_code(&mut self) -> wasmtime::Result<Vec<Node>> {
        Ok(self.xmlrpc_fault_code.clone())
    }

    async fn call(
        &mut self,
        endpoint: String,
        method: String,
        params: Vec<Node>,
    ) -> wasmtime::Result<Result<Vec<Node>, Error>> {
        let started = Instant::now();
        self.xmlrpc_fault_code = Vec::new();
        let mut fault_message = None;
        let name = crate::stats::truncate(&method, self.run.limits.max_name_len);
        let in_flight = InFlight::new(
            self.run.stats.clone(),
            "xmlrpc",
            &self.groups.name(&name),
            self.iteration_lag,
        )
        .tagged(&self.tags);
        // The lifted params and the document made from them (escaping
        // makes text up to 6 times longer) are held in the VU's budget.
        let payload = payload_bytes(&params);
        let encoded = match self.hold_memory(payload.saturating_mul(7), "the XML-RPC call") {
            Err(message) => Err(message),
            // Big documents are encoded off the worker thread, so the VUs
            // sharing it are not held up.
            Ok(held) if payload > ENCODE_INLINE_BYTES => {
                let method = method.clone();
                tokio::task::spawn_blocking(move || encode_call(&method, &params))
                    .await
                    .unwrap_or_else(|e| Err(format!("encoding failed: {e}")))
                    .map(|document| (document, held))
            }
            Ok(held) => encode_call(&method, &params).map(|document| (document, held)),
        };
        let (outcome, length) = match encoded.map(|(document, _held)| document) {
            Err(message) => (Err(Error::InvalidParams(message)), 0),
            Ok(document) => {
                let request = http_wit::Request {
                    method: "POST".into(),
                    url: endpoint,
                    headers: vec![http_wit::Header {
                        name: "content-type".into(),
                        value: "text/xml".into(),
                    }],
                    body: document.into_bytes(),
                    name: None,
                    timeout_ms: None,
                    expect_status: Vec::new(),
                    follow_redirects: false,
                    cookie_jar: true,
                    record_event: true,
                    discard_body: false,
                };
                match self.perform(&request, "POST", false).await.0 {
                    Err(error) => (Err(Error::Transport(error)), 0),
                    Ok(exchange) if exchange.status.as_u16() != 200 => (
                        Err(Error::Status(exchange.status.as_u16())),
                        exchange.body.len(),
                    ),
                    Ok(exchange) => {
                        let length = exchange.body.len();
                        match decode_response(&exchange.body) {
                            Ok(Decoded::Value(nodes)) => (Ok(nodes), length),
                            Ok(Decoded::Fault(fault)) => {
                                fault_message = Some(format!(
                                    "fault {}: {}",
                                    fault.code_text, fault.fault.message
                                ));
                                self.xmlrpc_fault_code = fault.code;
                                (Err(Error::Fault(fault.fault)), length)
                            }
                            Err(message) => (Err(Error::Malformed(message)), length),
                        }
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        in_flight.done();
        let message = fault_message.or_else(|| outcome.as_ref().err().map(describe));
        self.run.stats.record(&RequestEvent {
            request_type: "xmlrpc",
            name: &self.groups.name(&name),
            duration: elapsed,
            response_length: length as u64,
            error: message.as_deref(),
            messages_sent: 0,
            messages_received: 0,
            lag: self.iteration_lag,
            status: None,
            tags: &self.tags,
        });
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(params: &[Node]) -> Vec<Node> {
        let call = encode_call("m", params).unwrap();
        // Turn the call's params into a response document and decode it back.
        let inner = call
            .split("<params>")
            .nth(1)
            .unwrap()
            .split("</params>")
            .next()
            .unwrap();
        let response = format!("<methodResponse><params>{inner}</params></methodResponse>");
        match decode_response(response.as_bytes()).unwrap() {
            Decoded::Value(nodes) => nodes,
            Decoded::Fault(f) => panic!("{f:?}"),
        }
    }

    #[test]
    fn nested_values_round_trip() {
        let value = vec![
            Node::Struct(vec![
                "list".into(),
                "when".into(),
                "blob".into(),
                "text".into(),
            ]),
            Node::Array(3),
            Node::Int(-7),
            Node::Struct(vec![]),
            Node::Array(2),
            Node::Boolean(true),
            Node::Nil,
            Node::DateTime("20260101T12:00:00".into()),
            Node::Base64(vec![0, 1, 2, 255]),
            Node::String("a < b & \"c\"".into()),
        ];
        assert_eq!(round_trip(&value), value);
        for scalar in [
            Node::Double(0.1),
            Node::Double(-2.5e300),
            Node::I8(1 << 40),
            Node::Int(i32::MIN),
        ] {
            assert_eq!(round_trip(std::slice::from_ref(&scalar)), vec![scalar]);
        }
    }

    #[test]
    fn bad_node_lists_are_refused() {
        assert!(
            encode_call("m", &[Node::Array(2), Node::Int(1)])
                .unwrap_err()
                .contains("unfinished")
        );
        assert!(encode_call("m", &[Node::Double(f64::NAN)]).is_err());
        assert!(encode_call("bad name", &[]).is_err());
        let deep: Vec<Node> = (0..=MAX_DEPTH)
            .map(|_| Node::Array(1))
            .chain([Node::Nil])
            .collect();
        assert!(encode_call("m", &deep).unwrap_err().contains("deeper"));
    }
}
