//! The `grpc` capability: unary calls and streams on raw protobuf bytes over
//! tonic with a pass-through codec, channels kept per VU and target and
//! connected through the shared policy-checked connector; JSON messages via
//! a `.proto` compiled at run time. Every call or stream becomes one event.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{
    AsciiMetadataValue, BinaryMetadataValue, KeyAndValueRef, MetadataKey, MetadataMap,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use url::Url;
use wasmtime::component::Resource;

use crate::bindings::grpc::{self as wit, Error, MetadataEntry, Options, Reply};
use crate::bindings::http::Error as HttpError;
use crate::caps::net::{error_chain, open_stream};
use crate::stats::{InFlight, RequestEvent};
use crate::vu::VuState;

mod json;
mod streams;

pub use json::{ProtoSchema, load_schema};

pub use streams::{BidiStream, ClientStream, ServerStream};
use streams::{Inbound, Outbound, StreamRecord, record_stream, table_error};

/// Messages buffered between a guest's `send` and the wire.
const SEND_BUFFER: usize = 16;

/// Passes message bytes through unchanged: the guest encodes protobuf.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One VU's channels, by target.
#[derive(Debug, Default)]
pub struct VuGrpc {
    channels: HashMap<String, Channel>,
}

/// A client on `channel` that accepts gzip- and deflate-compressed replies,
/// as grpcio's client does, and messages of at most `max_receive` bytes
/// (`--max-grpc-receive-size`; gRPC's default is 4 MiB).
fn client(channel: Channel, max_receive: usize) -> tonic::client::Grpc<Channel> {
    use tonic::codec::CompressionEncoding;
    tonic::client::Grpc::new(channel)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .max_decoding_message_size(max_receive)
}

/// tonic's words for a message over the receive limit (an OUT_OF_RANGE
/// status it makes itself, before reading the message).
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";

/// A message over the receive limit is RESOURCE_EXHAUSTED in gRPC
/// (doc/statuscodes.md) and grpcio's words, which tonic reports as
/// OUT_OF_RANGE: that status in gRPC's terms, None for any other status.
fn receive_limit_status(status: &Status) -> Option<Status> {
    let rest = status.message().strip_prefix(TONIC_TOO_LARGE)?;
    if status.code() != Code::OutOfRange {
        return None;
    }
    let numbers: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .collect();
    let (found, limit) = match numbers[..] {
        [found, limit, ..] => (found, limit),
        _ => ("?", "?"),
    };
    Some(Status::resource_exhausted(format!(
        "Received message larger than max ({found} vs. {limit}): raise --max-grpc-receive-size"
    )))
}

/// The canonical name of a status code, e.g. `NOT_FOUND`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// tonic reports a call cut by its own deadline as CANCELLED; gRPC calls
/// that DEADLINE_EXCEEDED, so do we when the deadline has passed.
fn deadline_status(status: Status, started: Instant, deadline: Duration) -> Status {
    if status.code() == Code::Cancelled && started.elapsed() >= deadline {
        Status::deadline_exceeded(format!("deadline of {} ms exceeded", deadline.as_millis()))
    } else {
        status
    }
}

/// The guest's error for a status (in gRPC's terms where tonic's differ:
/// [`receive_limit_status`]).
fn from_status(status: &Status) -> Error {
    if let Some(exhausted) = receive_limit_status(status) {
        return from_status(&exhausted);
    }
    Error::Status(wit::Status {
        code: status.code() as u32,
        message: status.message().to_string(),
        details: status.details().to_vec(),
    })
}

/// The failure message recorded for an error.
/// The gRPC status code of a finished call (0 is OK); `None` when it never
/// got one (a transport failure, a call that could not be made).
pub(super) fn grpc_status(outcome: Option<&Error>) -> Option<u16> {
    match outcome {
        None => Some(0),
        Some(Error::Status(status)) => u16::try_from(status.code).ok(),
        Some(_) => None,
    }
}

fn describe(error: &Error) -> String {
    match error {
        Error::Status(s) => {
            let name = code_name(Code::from_i32(s.code as i32));
            if s.message.is_empty() {
                name.to_string()
            } else {
                format!("{name}: {}", s.message)
            }
        }
        Error::Transport(e) => crate::caps::http::describe_error(e),
        Error::Invalid(m) => format!("invalid: {m}"),
        Error::Malformed(m) => format!("malformed reply: {m}"),
    }
}

/// A connect failure carried through tonic back to us, typed.
#[derive(Debug)]
struct ConnectError(HttpError);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::caps::http::describe_error(&self.0))
    }
}

impl std::error::Error for ConnectError {}

fn find_connect_error(error: &(dyn std::error::Error + 'static)) -> Option<HttpError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(ConnectError(inner)) = e.downcast_ref::<ConnectError>() {
            return Some(inner.clone());
        }
        current = e.source();
    }
    None
}

/// Largest total size of a call's metadata (keys and values), as the
/// header sets of wasi:http.
const MAX_METADATA_BYTES: usize = crate::budget::MAX_FIELDS_BYTES;

fn request_metadata(entries: &[MetadataEntry]) -> Result<MetadataMap, Error> {
    let total = entries
        .iter()
        .map(|e| e.key.len() + e.value.len())
        .fold(0usize, usize::saturating_add);
    if total > MAX_METADATA_BYTES {
        return Err(Error::Invalid(format!(
            "the call's metadata is {total} bytes, over the limit of {MAX_METADATA_BYTES}"
        )));
    }
    let mut map = MetadataMap::with_capacity(entries.len());
    for entry in entries {
        let key = entry.key.to_ascii_lowercase();
        if key.ends_with("-bin") {
            let key = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| {
                Error::Invalid(format!("metadata key {:?} is not valid", entry.key))
            })?;
            map.append_bin(key, BinaryMetadataValue::from_bytes(entry.value.as_bytes()));
        } else {
            let key = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| {
                Error::Invalid(format!("metadata key {:?} is not valid", entry.key))
            })?;
            let value = AsciiMetadataValue::from_str(&entry.value).map_err(|_| {
                Error::Invalid(format!(
                    "metadata {:?} has a value that is not ASCII",
                    entry.key
                ))
            })?;
            map.append(key, value);
        }
    }
    Ok(map)
}

/// A reply's text metadata; values as Latin-1, as every header the guest
/// reads (a byte outside ASCII is kept, not turned into an empty value).
fn reply_metadata(map: &MetadataMap) -> Vec<MetadataEntry> {
    map.iter()
        .filter_map(|entry| match entry {
            KeyAndValueRef::Ascii(key, value) => Some(MetadataEntry {
                key: key.as_str().to_string(),
                value: crate::caps::http::latin1::decode(value.as_encoded_bytes()).into_owned(),
            }),
            KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

/// A call's pieces, checked before anything is sent.
struct Prepared {
    channel: Channel,
    path: PathAndQuery,
    metadata: MetadataMap,
    deadline: Duration,
    max_receive: usize,
}

impl VuState {
    fn grpc_deadline(&self, opts: &Options) -> Duration {
        opts.deadline_ms
            .map_or(self.run.limits.request_timeout, |ms| {
                Duration::from_millis(u64::from(ms))
            })
    }

    async fn grpc_channel(&mut self, target: &str) -> Result<Channel, Error> {
        let url = if target.is_empty() {
            self.run.base_url.clone().ok_or_else(|| {
                Error::Invalid("the target is empty and the run has no --host".into())
            })?
        } else {
            Url::parse(target).map_err(|e| {
                Error::Invalid(format!(
                    "target {target:?}: {e}; e.g. http://127.0.0.1:50051"
                ))
            })?
        };
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(Error::Invalid(format!(
                    "target scheme {other:?}: use http (h2c) or https"
                )));
            }
        };
        let host = url
            .host_str()
            .map(crate::policy::unbracketed)
            .ok_or_else(|| Error::Invalid(format!("target {target:?} has no host")))?
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let key = format!("{}://{host}:{port}", url.scheme());
        if let Some(channel) = self.grpc.channels.get(&key) {
            return Ok(channel.clone());
        }
        let run = self.run.clone();
        let connector = tower::service_fn(move |_: http::Uri| {
            let (run, host) = (run.clone(), host.clone());
            async move {
                open_stream(&run, &host, port, tls)
                    .await
                    .map(TokioIo::new)
                    .map_err(ConnectError)
            }
        });
        // The connector does TLS itself, so tonic is given a plain URI.
        let endpoint = Endpoint::from_shared(format!("http://{}", url.authority()))
            .map_err(|e| Error::Invalid(format!("target {target:?}: {e}")))?;
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| {
                Error::Transport(
                    find_connect_error(&e).unwrap_or_else(|| HttpError::Protocol(error_chain(&e))),
                )
            })?;
        self.grpc.channels.insert(key, channel.clone());
        Ok(channel)
    }

    async fn prepare(
        &mut self,
        target: &str,
        method: &str,
        opts: &Options,
    ) -> Result<Prepared, Error> {
        if !method.starts_with('/') || method.matches('/').count() != 2 {
            return Err(Error::Invalid(format!(
                "method {method:?} is not of the form /package.Service/Method"
            )));
        }
        let path = PathAndQuery::from_str(method)
            .map_err(|e| Error::Invalid(format!("method {method:?}: {e}")))?;
        let metadata = request_metadata(&opts.metadata)?;
        let deadline = self.grpc_deadline(opts);
        let channel = self.grpc_channel(target).await?;
        Ok(Prepared {
            channel,
            path,
            metadata,
            deadline,
            max_receive: self.run.limits.max_grpc_receive,
        })
    }

    /// A unary call in flight: recorded as abandoned if its VU is cut.
    fn grpc_in_flight(&self, method: &str) -> InFlight {
        let name = crate::stats::truncate(&self.groups.name(method), self.run.limits.max_name_len);
        InFlight::new(self.run.stats.clone(), "grpc", &name, self.iteration_lag).tagged(&self.tags)
    }

    fn record_grpc(
        &mut self,
        method: &str,
        started: Instant,
        outcome: Option<&Error>,
        counts: Counts,
    ) {
        let elapsed = started.elapsed();
        let message = outcome.map(describe);
        let name = crate::stats::truncate(&self.groups.name(method), self.run.limits.max_name_len);
        self.run.stats.record(&RequestEvent {
            request_type: "grpc",
            name: &name,
            duration: elapsed,
            response_length: counts.bytes_received,
            error: message.as_deref(),
            messages_sent: counts.sent,
            messages_received: counts.received,
            lag: self.iteration_lag,
            status: grpc_status(outcome),
            tags: &self.tags,
        });
    }

    async fn unary(
        &mut self,
        target: &str,
        method: &str,
        request: Bytes,
        opts: &Options,
    ) -> Result<Reply, Error> {
        let prepared = self.prepare(target, method, opts).await?;
        let mut request =
            tonic::Request::from_parts(prepared.metadata, Default::default(), request);
        request.set_timeout(prepared.deadline);
        let mut client = client(prepared.channel, prepared.max_receive);
        let started = Instant::now();
        let call = async {
            client
                .ready()
                .await
                .map_err(|e| Status::unavailable(error_chain(&e)))?;
            client.unary(request, prepared.path, BytesCodec).await
        };
        match tokio::time::timeout(prepared.deadline, call).await {
            Ok(Ok(response)) => {
                let metadata = reply_metadata(response.metadata());
                Ok(Reply {
                    message: response.into_inner().to_vec(),
                    metadata,
                })
            }
            Ok(Err(status)) => Err(from_status(&deadline_status(
                status,
                started,
                prepared.deadline,
            ))),
            Err(_) => Err(from_status(&deadline_status(
                Status::cancelled("timed out"),
                started,
                prepared.deadline,
            ))),
        }
    }

    /// Time a unary call and record it.
    async fn timed_unary(
        &mut self,
        target: &str,
        method: &str,
        request: Bytes,
        opts: &Options,
    ) -> Result<Reply, Error> {
        let started = Instant::now();
        let sent_bytes = request.len();
        let in_flight = opts.record_event.then(|| self.grpc_in_flight(method));
        let outcome = match self.hold_memory(request.len(), "the request message") {
            Ok(_held) => self.unary(target, method, request, opts).await,
            Err(message) => Err(Error::Invalid(message)),
        };
        if let Some(in_flight) = in_flight {
            in_flight.done();
        }
        let counts = Counts {
            sent: 1,
            received: u64::from(outcome.is_ok()),
            bytes_received: outcome.as_ref().map_or(0, |r| r.message.len() as u64),
        };
        let _ = sent_bytes;
        if opts.record_event {
            self.record_grpc(method, started, outcome.as_ref().err(), counts);
        }
        outcome
    }
}

/// Message counts of a call.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    received: u64,
    bytes_received: u64,
}

impl wit::Host for VuState {
    async fn call(
        &mut self,
        target: String,
        method: String,
        request: Vec<u8>,
        opts: Options,
    ) -> wasmtime::Result<Result<Reply, Error>> {
        Ok(self
            .timed_unary(&target, &method, Bytes::from(request), &opts)
            .await)
    }

    async fn call_json(
        &mut self,
        target: String,
        method: String,
        request_json: String,
        opts: Options,
    ) -> wasmtime::Result<Result<String, Error>> {
        let started = Instant::now();
        let in_flight = opts.record_event.then(|| self.grpc_in_flight(&method));
        // The JSON and the message encoded from it.
        let outcome = match self.hold_memory(request_json.len() * 2, "the request message") {
            Ok(_held) => {
                self.json_unary(&target, &method, &request_json, &opts)
                    .await
            }
            Err(message) => Err(Error::Invalid(message)),
        };
        if let Some(in_flight) = in_flight {
            in_flight.done();
        }
        let counts = Counts {
            sent: 1,
            received: u64::from(outcome.is_ok()),
            bytes_received: outcome.as_ref().map_or(0, |(_, len)| *len as u64),
        };
        if opts.record_event {
            self.record_grpc(&method, started, outcome.as_ref().err(), counts);
        }
        Ok(outcome.map(|(json, _)| json))
    }

    async fn open_server_stream(
        &mut self,
        target: String,
        method: String,
        request: Vec<u8>,
        opts: Options,
    ) -> wasmtime::Result<Result<Resource<ServerStream>, Error>> {
        let started = Instant::now();
        let mut record = StreamRecord::new(
            &self.groups.name(&method),
            self.grpc_deadline(&opts),
            self.iteration_lag,
        );
        record.tags = self.tags.clone();
        let opened = async {
            let prepared = self.prepare(&target, &method, &opts).await?;
            let mut request = tonic::Request::from_parts(
                prepared.metadata,
                Default::default(),
                Bytes::from(request),
            );
            request.set_timeout(prepared.deadline);
            let mut client = client(prepared.channel, prepared.max_receive);
            client
                .ready()
                .await
                .map_err(|e| from_status(&Status::unavailable(error_chain(&e))))?;
            let response = client
                .server_streaming(request, prepared.path, BytesCodec)
                .await
                .map_err(|s| from_status(&deadline_status(s, started, prepared.deadline)))?;
            Ok::<_, Error>(response.into_inner())
        }
        .await;
        record.counts.sent = 1;
        match opened {
            Ok(streaming) => {
                let resource = self
                    .table
                    .push(ServerStream {
                        record,
                        inbound: Inbound::Open(Box::new(streaming)),
                    })
                    .map_err(table_error)?;
                Ok(Ok(resource))
            }
            Err(error) => {
                record_stream(&self.run, &mut record, Some(&error));
                Ok(Err(error))
            }
        }
    }

    async fn open_client_stream(
        &mut self,
        target: String,
        method: String,
        opts: Options,
    ) -> wasmtime::Result<Result<Resource<ClientStream>, Error>> {
        let outbound = match self.open_outbound(&target, &method, &opts).await {
            Ok(outbound) => outbound,
            Err(error) => return Ok(Err(error)),
        };
        let Outbound {
            record,
            sender,
            request,
            mut client,
            path,
        } = outbound;
        let call = tokio::spawn(async move {
            client
                .ready()
                .await
                .map_err(|e| Status::unavailable(error_chain(&e)))?;
            client.client_streaming(request, path, BytesCodec).await
        });
        let stream = ClientStream {
            record,
            sender: Some(sender),
            call: Some(call),
        };
        Ok(Ok(self.table.push(stream).map_err(table_error)?))
    }

    async fn open_bidi_stream(
        &mut self,
        target: String,
        method: String,
        opts: Options,
    ) -> wasmtime::Result<Result<Resource<BidiStream>, Error>> {
        let outbound = match self.open_outbound(&target, &method, &opts).await {
            Ok(outbound) => outbound,
            Err(error) => return Ok(Err(error)),
        };
        let Outbound {
            record,
            sender,
            request,
            mut client,
            path,
        } = outbound;
        let call = tokio::spawn(async move {
            client
                .ready()
                .await
                .map_err(|e| Status::unavailable(error_chain(&e)))?;
            client.streaming(request, path, BytesCodec).await
        });
        let stream = BidiStream {
            record,
            sender: Some(sender),
            inbound: Inbound::Pending(call),
        };
        Ok(Ok(self.table.push(stream).map_err(table_error)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_by_code() {
        let error = from_status(&Status::not_found("no such user"));
        assert_eq!(describe(&error), "NOT_FOUND: no such user");
        assert_eq!(
            describe(&from_status(&Status::unavailable(""))),
            "UNAVAILABLE"
        );
    }
}
