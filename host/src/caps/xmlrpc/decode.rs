//! Decoding `methodResponse` documents into pre-order nodes, iteratively
//! and with a depth cap; faults keep their faultCode of any type, as
//! `xmlrpc.client` does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{MAX_DEPTH, MAX_NODES, payload_bytes};
use crate::bindings::xmlrpc::{Fault, Node};

/// Most bytes of a faultCode kept for `last-fault-code` (a longer one is
/// kept as its text, cut); a faultCode is normally a number or a word.
pub const MAX_KEPT_CODE_BYTES: usize = 64 * 1024;

/// What a response held: a value, or a fault.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Value(Vec<Node>),
    Fault(ServerFault),
}

/// A fault the server returned, with its faultCode of any type.
#[derive(Debug, PartialEq)]
pub struct ServerFault {
    /// The WIT record: the faultCode when it is an int (else 0), and the
    /// faultString (as text when the server sent another type).
    pub fault: Fault,
    /// The faultCode as text, for the failure message: "4", "Client".
    pub code_text: String,
    /// The faultCode's value in pre-order, as the server sent it.
    pub code: Vec<Node>,
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

/// The nodes of the value that starts `nodes` (its whole subtree).
fn subtree(nodes: &[Node]) -> &[Node] {
    let (mut open, mut end) = (1usize, 0usize);
    while open > 0 && end < nodes.len() {
        open += match &nodes[end] {
            Node::Array(n) => *n as usize,
            Node::Struct(names) => names.len(),
            _ => 0,
        };
        open -= 1;
        end += 1;
    }
    &nodes[..end]
}

/// A value as text, for failure messages: a scalar's text, `<array>` or
/// `<struct>` otherwise.
fn value_text(value: &[Node]) -> String {
    match value.first() {
        Some(Node::Int(v)) => v.to_string(),
        Some(Node::I8(v)) => v.to_string(),
        Some(Node::Boolean(v)) => v.to_string(),
        Some(Node::String(v) | Node::DateTime(v)) => v.clone(),
        Some(Node::Double(v)) => v.to_string(),
        Some(Node::Base64(v)) => format!("<base64 of {} bytes>", v.len()),
        Some(Node::Nil) => "nil".into(),
        Some(Node::Array(_)) => "<array>".into(),
        Some(Node::Struct(_)) | None => "<struct>".into(),
    }
}

fn fault_from_nodes(nodes: &[Node]) -> Result<ServerFault, String> {
    let Some(Node::Struct(names)) = nodes.first() else {
        return Err("the fault is not a struct".into());
    };
    let (mut code, mut message) = (None, None);
    let mut rest = &nodes[1..];
    for name in names {
        let value = subtree(rest);
        rest = &rest[value.len()..];
        match name.as_str() {
            "faultCode" => code = Some(value),
            "faultString" => message = Some(value),
            _ => {}
        }
    }
    let (Some(code), Some(message)) = (code, message) else {
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        return Err(format!(
            "the fault struct lacks a faultCode or a faultString member (its {} members \
             begin {shown:?})",
            names.len()
        ));
    };
    // xmlrpc.client keeps a faultCode of any type (SOAP::Lite servers send
    // strings such as "Client"): the record holds an int code, and the
    // value itself is kept for `last-fault-code`.
    let int_code = match code.first() {
        Some(Node::Int(v)) => Some(*v),
        Some(Node::I8(v)) => i32::try_from(*v).ok(),
        _ => None,
    };
    let mut kept = code.to_vec();
    if payload_bytes(&kept) > MAX_KEPT_CODE_BYTES {
        let mut cut = value_text(code);
        let mut end = MAX_KEPT_CODE_BYTES.min(cut.len());
        while !cut.is_char_boundary(end) {
            end -= 1;
        }
        cut.truncate(end);
        kept = vec![Node::String(cut)];
    }
    Ok(ServerFault {
        fault: Fault {
            code: int_code.unwrap_or(0),
            message: value_text(message),
        },
        code_text: value_text(code),
        code: kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_malformed_responses_are_told_apart() {
        let fault = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><int>4</int></value></member>\
            <member><name>faultString</name><value><string>Too many</string></value></member>\
            </struct></value></fault></methodResponse>";
        assert_eq!(
            decode_response(fault.as_bytes()).unwrap(),
            Decoded::Fault(ServerFault {
                fault: Fault {
                    code: 4,
                    message: "Too many".into()
                },
                code_text: "4".into(),
                code: vec![Node::Int(4)],
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

    #[test]
    fn a_fault_keeps_a_faultcode_of_any_type() {
        // SOAP::Lite servers send a string faultCode; xmlrpc.client raises
        // Fault('Client', ...) for it, so this is a fault, not malformed.
        let fault = "<?xml version=\"1.0\"?><methodResponse><fault><value><struct>\
            <member><name>faultString</name><value><string>Denied access to method (login)</string></value></member>\
            <member><name>faultCode</name><value><string>Client</string></value></member>\
            </struct></value></fault></methodResponse>";
        let Decoded::Fault(decoded) = decode_response(fault.as_bytes()).unwrap() else {
            panic!("not a fault");
        };
        assert_eq!(decoded.fault.message, "Denied access to method (login)");
        assert_eq!(decoded.fault.code, 0);
        assert_eq!(decoded.code_text, "Client");
        assert_eq!(decoded.code, vec![Node::String("Client".into())]);
        // A struct code and an extra member: the code's subtree is kept whole.
        let fault = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><struct><member><name>n</name><value><i8>7</i8></value></member></struct></value></member>\
            <member><name>extra</name><value><array><data><value>x</value></data></array></value></member>\
            <member><name>faultString</name><value><int>5</int></value></member>\
            </struct></value></fault></methodResponse>";
        let Decoded::Fault(decoded) = decode_response(fault.as_bytes()).unwrap() else {
            panic!("not a fault");
        };
        assert_eq!(
            decoded.code,
            vec![Node::Struct(vec!["n".into()]), Node::I8(7)]
        );
        assert_eq!(decoded.fault.message, "5");
        // An i8 code that fits is the record's code.
        let fault = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><i8>-32601</i8></value></member>\
            <member><name>faultString</name><value>no such method</value></member>\
            </struct></value></fault></methodResponse>";
        let Decoded::Fault(decoded) = decode_response(fault.as_bytes()).unwrap() else {
            panic!("not a fault");
        };
        assert_eq!(decoded.fault.code, -32601);
        // Without both members it is not a fault xmlrpc.client accepts.
        let bad = "<methodResponse><fault><value><struct>\
            <member><name>faultString</name><value>x</value></member>\
            </struct></value></fault></methodResponse>";
        let err = decode_response(bad.as_bytes()).unwrap_err();
        assert!(err.contains("lacks a faultCode"), "{err}");
    }

    #[test]
    fn a_huge_faultcode_is_kept_as_its_text_cut() {
        let code = "é".repeat(MAX_KEPT_CODE_BYTES);
        let fault = format!(
            "<methodResponse><fault><value><struct>\
             <member><name>faultCode</name><value><string>{code}</string></value></member>\
             <member><name>faultString</name><value>x</value></member>\
             </struct></value></fault></methodResponse>"
        );
        let Decoded::Fault(decoded) = decode_response(fault.as_bytes()).unwrap() else {
            panic!("not a fault");
        };
        let [Node::String(kept)] = decoded.code.as_slice() else {
            panic!("{:?}", decoded.code.len());
        };
        assert!(kept.len() <= MAX_KEPT_CODE_BYTES && kept.len() > MAX_KEPT_CODE_BYTES - 4);
        assert!(code.starts_with(kept.as_str()));
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
