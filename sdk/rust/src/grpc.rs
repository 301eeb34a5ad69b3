//! gRPC calls: `grpc::call("", "/pkg.Service/Method").unary(bytes)`, typed
//! with prost messages (feature `prost`), or JSON with the run's `--proto`.
//! The host records each unary call, and each stream when it ends.

use crate::bindings::horde::scenario::grpc as wit;

pub use wit::{BidiStream, ClientStream, Error, MetadataEntry, Reply, ServerStream, Status};

/// A call being set up.
#[derive(Debug, Clone)]
pub struct Call {
    target: String,
    method: String,
    options: wit::Options,
}

/// Start a call of `method` (`/package.Service/Method`) on `target`
/// (`http://host:port` for h2c, `https://...`, or "" for `--host`).
pub fn call(target: &str, method: &str) -> Call {
    Call {
        target: target.to_string(),
        method: method.to_string(),
        options: wit::Options {
            metadata: Vec::new(),
            deadline_ms: None,
            record_event: true,
        },
    }
}

impl Call {
    /// Add a metadata entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.options.metadata.push(MetadataEntry { key: key.to_string(), value: value.to_string() });
        self
    }

    /// Give up after this many milliseconds.
    pub fn deadline_ms(mut self, ms: u32) -> Self {
        self.options.deadline_ms = Some(ms);
        self
    }

    /// Unary call with an encoded protobuf message.
    pub fn unary(&self, request: &[u8]) -> Result<Reply, Error> {
        wit::call(&self.target, &self.method, request, &self.options)
    }

    /// Unary call with JSON messages (the run needs `--proto FILE`).
    pub fn json(&self, request: &str) -> Result<String, Error> {
        wit::call_json(&self.target, &self.method, request, &self.options)
    }

    /// Unary call with prost messages.
    #[cfg(feature = "prost")]
    pub fn message<Req: prost::Message, Resp: prost::Message + Default>(&self, request: &Req) -> Result<Resp, Error> {
        let reply = self.unary(&request.encode_to_vec())?;
        Resp::decode(reply.message.as_slice()).map_err(|e| Error::Malformed(e.to_string()))
    }

    /// Server-streaming call: one request, then `next()` until `None`.
    pub fn server_stream(&self, request: &[u8]) -> Result<ServerStream, Error> {
        wit::open_server_stream(&self.target, &self.method, request, &self.options)
    }

    /// Client-streaming call: `send()` messages, then `finish()` for the reply.
    pub fn client_stream(&self) -> Result<ClientStream, Error> {
        wit::open_client_stream(&self.target, &self.method, &self.options)
    }

    /// Bidirectional call: `send()`, `close_send()`, `next()` in any order.
    pub fn bidi_stream(&self) -> Result<BidiStream, Error> {
        wit::open_bidi_stream(&self.target, &self.method, &self.options)
    }
}
