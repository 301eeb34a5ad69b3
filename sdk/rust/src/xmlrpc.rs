//! XML-RPC calls with native values: `xmlrpc::call("/RPC2", "add", &[1.into(), 2.into()])`.

use crate::bindings::horde::scenario::xmlrpc::{self as wit, Node};

pub use wit::{Error, Fault};

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i32),
    /// The `<i8>` extension.
    I8(i64),
    Bool(bool),
    String(String),
    Double(f64),
    /// `dateTime.iso8601` text, e.g. "20260101T12:00:00".
    DateTime(String),
    Base64(Vec<u8>),
    /// The `<nil/>` extension.
    Nil,
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// The integer, if this is an int or i8.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(i64::from(*v)),
            Value::I8(v) => Some(*v),
            _ => None,
        }
    }

    /// The text, if this is a string or dateTime.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::DateTime(s) => Some(s),
            _ => None,
        }
    }

    /// A struct member by name.
    pub fn get(&self, member: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(n, _)| n == member).map(|(_, v)| v),
            _ => None,
        }
    }

    fn push_nodes(&self, out: &mut Vec<Node>) {
        match self {
            Value::Int(v) => out.push(Node::Int(*v)),
            Value::I8(v) => out.push(Node::I8(*v)),
            Value::Bool(v) => out.push(Node::Boolean(*v)),
            Value::String(v) => out.push(Node::String(v.clone())),
            Value::Double(v) => out.push(Node::Double(*v)),
            Value::DateTime(v) => out.push(Node::DateTime(v.clone())),
            Value::Base64(v) => out.push(Node::Base64(v.clone())),
            Value::Nil => out.push(Node::Nil),
            Value::Array(items) => {
                out.push(Node::Array(items.len() as u32));
                items.iter().for_each(|item| item.push_nodes(out));
            }
            Value::Struct(members) => {
                out.push(Node::Struct(members.iter().map(|(n, _)| n.clone()).collect()));
                members.iter().for_each(|(_, v)| v.push_nodes(out));
            }
        }
    }

    /// Rebuild a value from its pre-order nodes (the host has checked
    /// counts and depth).
    fn from_nodes(nodes: &mut std::vec::IntoIter<Node>) -> Option<Value> {
        Some(match nodes.next()? {
            Node::Int(v) => Value::Int(v),
            Node::I8(v) => Value::I8(v),
            Node::Boolean(v) => Value::Bool(v),
            Node::String(v) => Value::String(v),
            Node::Double(v) => Value::Double(v),
            Node::DateTime(v) => Value::DateTime(v),
            Node::Base64(v) => Value::Base64(v),
            Node::Nil => Value::Nil,
            Node::Array(count) => {
                Value::Array((0..count).map(|_| Value::from_nodes(nodes)).collect::<Option<_>>()?)
            }
            Node::Struct(names) => Value::Struct(
                names
                    .into_iter()
                    .map(|name| Value::from_nodes(nodes).map(|v| (name, v)))
                    .collect::<Option<_>>()?,
            ),
        })
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::$variant(v.into()) }
        }
    )*};
}
value_from!(i32 => Int, i64 => I8, bool => Bool, f64 => Double, String => String, &str => String, Vec<u8> => Base64);

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

/// Call `method` at `endpoint` (absolute URL or path relative to `--host`).
/// The host records the call as type `xmlrpc` named by the method.
pub fn call(endpoint: &str, method: &str, params: &[Value]) -> Result<Value, Error> {
    let mut nodes = Vec::new();
    params.iter().for_each(|p| p.push_nodes(&mut nodes));
    let result = wit::call(endpoint, method, &nodes)?;
    Value::from_nodes(&mut result.into_iter())
        .ok_or_else(|| Error::Malformed("the host returned an empty value".into()))
}

/// The faultCode of this VU's last [`call`], when it ended in a fault
/// ([`Error::Fault`]), whatever its type: `Fault::code` holds an int code
/// only (0 otherwise), this also gives a string code such as "Client", as
/// `xmlrpc.client` keeps it. None when the last call did not end in a fault.
pub fn last_fault_code() -> Option<Value> {
    Value::from_nodes(&mut wit::last_fault_code().into_iter())
}
