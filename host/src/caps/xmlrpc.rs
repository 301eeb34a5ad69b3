//! The `xmlrpc` capability: encodes calls from the guest's flat pre-order
//! node list, sends them through the VU's HTTP client, and decodes responses
//! and faults back into nodes, without recursion and with a depth cap.

use std::fmt::Write;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::bindings::http as http_wit;
use crate::bindings::xmlrpc::{self as wit, Error, Fault, Node};
use crate::caps::http::describe_error;
use crate::stats::{InFlight, RequestEvent};
use crate::vu::VuState;

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

/// What a response held: a value, or a fault.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Value(Vec<Node>),
    Fault(Fault),
}

fn element_children<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> {
    node.children().filter(|c| c.is_element())
}

fn only_child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Result<roxmltree::Node<'a, 'input>, String> {
    let mut children = element_children(node);
    match (children.next(), children.next()) {
        (Some(child), None) if child.tag_name().name() == name => Ok(child),
        _ => Err(format!(
            "<{}> must hold exactly one <{name}>",
            node.tag_name().name()
        )),
    }
}

fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.children().filter_map(|c| c.text()).collect()
}

/// Decode one `<value>` element into nodes, iteratively.
fn decode_value(root: roxmltree::Node<'_, '_>, out: &mut Vec<Node>) -> Result<(), String> {
    let mut work = vec![(root, 0usize)];
    while let Some((value, depth)) = work.pop() {
        if depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        if out.len() >= MAX_NODES {
            return Err(format!("more than {MAX_NODES} values"));
        }
        let mut children = element_children(value);
        let Some(typed) = children.next() else {
            out.push(Node::String(text_of(value)));
            continue;
        };
        if children.next().is_some() {
            return Err("a <value> holds more than one element".into());
        }
        let text = || text_of(typed);
        let bad = |kind: &str, text: &str| format!("<{kind}> holds {text:?}, not a valid {kind}");
        let node = match typed.tag_name().name() {
            kind @ ("int" | "i4") => {
                Node::Int(text().trim().parse().map_err(|_| bad(kind, &text()))?)
            }
            "i8" => Node::I8(text().trim().parse().map_err(|_| bad("i8", &text()))?),
            "boolean" => match text().trim() {
                "1" => Node::Boolean(true),
                "0" => Node::Boolean(false),
                other => return Err(bad("boolean", other)),
            },
            "string" => Node::String(text()),
            "double" => Node::Double(text().trim().parse().map_err(|_| bad("double", &text()))?),
            "dateTime.iso8601" => Node::DateTime(text().trim().to_string()),
            "base64" => {
                let compact: String = text().chars().filter(|c| !c.is_whitespace()).collect();
                Node::Base64(
                    BASE64
                        .decode(compact)
                        .map_err(|e| format!("<base64> is not valid base64: {e}"))?,
                )
            }
            "nil" => Node::Nil,
            "array" => {
                let data = only_child(typed, "data")?;
                let items: Vec<_> = element_children(data).collect();
                if let Some(other) = items.iter().find(|i| i.tag_name().name() != "value") {
                    return Err(format!(
                        "<data> holds <{}>, expected <value>",
                        other.tag_name().name()
                    ));
                }
                out.push(Node::Array(items.len() as u32));
                work.extend(items.into_iter().rev().map(|item| (item, depth + 1)));
                continue;
            }
            "struct" => {
                let mut names = Vec::new();
                let mut values = Vec::new();
                for member in element_children(typed) {
                    if member.tag_name().name() != "member" {
                        return Err(format!(
                            "<struct> holds <{}>, expected <member>",
                            member.tag_name().name()
                        ));
                    }
                    let name = element_children(member).find(|c| c.tag_name().name() == "name");
                    let value = element_children(member).find(|c| c.tag_name().name() == "value");
                    match (name, value) {
                        (Some(name), Some(value)) => {
                            names.push(text_of(name));
                            values.push(value);
                        }
                        _ => return Err("a <member> lacks its <name> or <value>".into()),
                    }
                }
                out.push(Node::Struct(names));
                work.extend(values.into_iter().rev().map(|v| (v, depth + 1)));
                continue;
            }
            other => return Err(format!("<{other}> is not an XML-RPC type")),
        };
        out.push(node);
    }
    Ok(())
}

/// Decode a `methodResponse` document.
pub fn decode_response(body: &[u8]) -> Result<Decoded, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the response is not UTF-8".to_string())?;
    let doc =
        roxmltree::Document::parse(text).map_err(|e| format!("the response is not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "methodResponse" {
        return Err(format!(
            "the root element is <{}>, not <methodResponse>",
            root.tag_name().name()
        ));
    }
    let body = element_children(root)
        .next()
        .ok_or("<methodResponse> is empty")?;
    match body.tag_name().name() {
        "params" => {
            let param = only_child(body, "param")?;
            let value = only_child(param, "value")?;
            let mut nodes = Vec::new();
            decode_value(value, &mut nodes)?;
            Ok(Decoded::Value(nodes))
        }
        "fault" => {
            let value = only_child(body, "value")?;
            let mut nodes = Vec::new();
            decode_value(value, &mut nodes)?;
            fault_from_nodes(&nodes).map(Decoded::Fault)
        }
        other => Err(format!(
            "<methodResponse> holds <{other}>, expected <params> or <fault>"
        )),
    }
}

fn fault_from_nodes(nodes: &[Node]) -> Result<Fault, String> {
    let Some(Node::Struct(names)) = nodes.first() else {
        return Err("the fault is not a struct".into());
    };
    // Members are scalars in a well-formed fault: one node each.
    let mut fault = Fault {
        code: 0,
        message: String::new(),
    };
    let (mut has_code, mut has_message) = (false, false);
    for (name, value) in names.iter().zip(&nodes[1..]) {
        match (name.as_str(), value) {
            ("faultCode", Node::Int(code)) => {
                fault.code = *code;
                has_code = true;
            }
            ("faultString", Node::String(message)) => {
                fault.message = message.clone();
                has_message = true;
            }
            _ => {}
        }
    }
    if has_code && has_message {
        Ok(fault)
    } else {
        Err("the fault lacks an int faultCode or a string faultString".into())
    }
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
    async fn call(
        &mut self,
        endpoint: String,
        method: String,
        params: Vec<Node>,
    ) -> wasmtime::Result<Result<Vec<Node>, Error>> {
        let started = Instant::now();
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
                            Ok(Decoded::Fault(fault)) => (Err(Error::Fault(fault)), length),
                            Err(message) => (Err(Error::Malformed(message)), length),
                        }
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        in_flight.done();
        let message = outcome.as_ref().err().map(describe);
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

    #[test]
    fn faults_and_malformed_responses_are_told_apart() {
        let fault = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><int>4</int></value></member>\
            <member><name>faultString</name><value><string>Too many</string></value></member>\
            </struct></value></fault></methodResponse>";
        assert_eq!(
            decode_response(fault.as_bytes()).unwrap(),
            Decoded::Fault(Fault {
                code: 4,
                message: "Too many".into()
            })
        );
        for bad in [
            "not xml",
            "<html/>",
            "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><bogus/></value></param></params></methodResponse>",
        ] {
            assert!(decode_response(bad.as_bytes()).is_err(), "{bad}");
        }
        // An untyped value is a string.
        let plain =
            "<methodResponse><params><param><value>hi</value></param></params></methodResponse>";
        assert_eq!(
            decode_response(plain.as_bytes()).unwrap(),
            Decoded::Value(vec![Node::String("hi".into())])
        );
    }

    #[test]
    fn deep_responses_are_refused_without_recursion() {
        let depth = 100_000;
        let doc = format!(
            "<methodResponse><params><param><value>{}<nil/>{}</value></param></params></methodResponse>",
            "<array><data><value>".repeat(depth),
            "</value></data></array>".repeat(depth)
        );
        // roxmltree refuses extreme depth itself, or our cap does: either way an error, no overflow.
        assert!(decode_response(doc.as_bytes()).is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_response_bytes_panic(body in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_response(&body);
        }

        #[test]
        fn no_response_shaped_xml_panics(
            value in "(<int>-?[0-9]{0,25}</int>|<i8>[0-9-]{0,25}</i8>|<double>[0-9.eE+-]{0,20}</double>|<boolean>[0-9]{0,2}</boolean>|<string>[a-z&;<>]{0,10}</string>|<base64>[A-Za-z0-9+/=]{0,12}</base64>|<dateTime.iso8601>[0-9T:-]{0,20}</dateTime.iso8601>|<array><data>(<value>[a-z]{0,3}</value>){0,3}</data></array>|<struct>(<member><name>[a-z]{0,3}</name><value>[0-9]{0,3}</value></member>){0,3}</struct>|<nil/>|[a-z]{0,5})",
            fault in any::<bool>(),
        ) {
            let body = if fault {
                format!("<?xml version=\"1.0\"?><methodResponse><fault><value>{value}</value></fault></methodResponse>")
            } else {
                format!("<?xml version=\"1.0\"?><methodResponse><params><param><value>{value}</value></param></params></methodResponse>")
            };
            let _ = decode_response(body.as_bytes());
        }
    }
}
