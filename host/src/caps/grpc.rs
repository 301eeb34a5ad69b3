//! The `grpc` capability: unary calls and streams on raw protobuf bytes over
//! tonic with a pass-through codec, channels kept per VU and target and
//! connected through the shared policy-checked connector; JSON messages via
//! a `.proto` compiled at run time. Every call or stream becomes one event.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{
    AsciiMetadataValue, BinaryMetadataValue, KeyAndValueRef, MetadataKey, MetadataMap,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};
use url::Url;
use wasmtime::component::Resource;

use crate::bindings::grpc::{self as wit, Error, MetadataEntry, Options, Reply};
use crate::bindings::http::Error as HttpError;
use crate::budget::HostHold;
use crate::caps::net::{error_chain, open_stream};
use crate::stats::{InFlight, RequestEvent};
use crate::vu::{RunContext, VuState};

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

/// The `.proto` definitions given with `--proto`, for JSON messages.
#[derive(Debug)]
pub struct ProtoSchema {
    pool: DescriptorPool,
}

impl ProtoSchema {
    /// Compile `file` (imports resolved against `includes` and the file's folder).
    pub fn load(file: &Path, includes: &[std::path::PathBuf]) -> anyhow::Result<ProtoSchema> {
        let mut dirs: Vec<std::path::PathBuf> = includes.to_vec();
        if let Some(parent) = file.parent() {
            dirs.push(if parent.as_os_str().is_empty() {
                ".".into()
            } else {
                parent.to_path_buf()
            });
        }
        let descriptors = protox::compile([file], dirs)
            .map_err(|e| anyhow::anyhow!("compiling {}: {e}", file.display()))?;
        let pool = DescriptorPool::from_file_descriptor_set(descriptors)
            .map_err(|e| anyhow::anyhow!("reading the descriptors of {}: {e}", file.display()))?;
        if pool.services().next().is_none() {
            anyhow::bail!(
                "{} declares no service; --proto needs the file with the service",
                file.display()
            );
        }
        Ok(ProtoSchema { pool })
    }

    fn method(&self, path: &str) -> Result<MethodDescriptor, Error> {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "method {path:?} is not of the form /package.Service/Method"
                ))
            })?;
        let service = self.pool.get_service_by_name(service).ok_or_else(|| {
            Error::Invalid(format!("the --proto file has no service {service:?}"))
        })?;
        service
            .methods()
            .find(|m| m.name() == method)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "service {} has no method {method:?}",
                    service.full_name()
                ))
            })
    }
}

/// One VU's channels, by target.
#[derive(Debug, Default)]
pub struct VuGrpc {
    channels: HashMap<String, Channel>,
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

fn from_status(status: &Status) -> Error {
    Error::Status(wit::Status {
        code: status.code() as u32,
        message: status.message().to_string(),
        details: status.details().to_vec(),
    })
}

/// The failure message recorded for an error.
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

fn reply_metadata(map: &MetadataMap) -> Vec<MetadataEntry> {
    map.iter()
        .filter_map(|entry| match entry {
            KeyAndValueRef::Ascii(key, value) => Some(MetadataEntry {
                key: key.as_str().to_string(),
                value: value.to_str().unwrap_or_default().to_string(),
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
        })
    }

    /// A unary call in flight: recorded as abandoned if its VU is cut.
    fn grpc_in_flight(&self, method: &str) -> InFlight {
        let name = crate::stats::truncate(method, self.run.limits.max_name_len);
        InFlight::new(self.run.stats.clone(), "grpc", &name, self.iteration_lag)
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
        let name = crate::stats::truncate(method, self.run.limits.max_name_len);
        self.run.stats.record(&RequestEvent {
            request_type: "grpc",
            name: &name,
            duration: elapsed,
            response_length: counts.bytes_received,
            error: message.as_deref(),
            messages_sent: counts.sent,
            messages_received: counts.received,
            lag: self.iteration_lag,
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
        let mut client = tonic::client::Grpc::new(prepared.channel);
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

impl VuState {
    /// A unary call with JSON messages: the reply's JSON and its size on the wire.
    async fn json_unary(
        &mut self,
        target: &str,
        method: &str,
        request_json: &str,
        opts: &Options,
    ) -> Result<(String, usize), Error> {
        let Some(schema) = self.run.proto.clone() else {
            let message = format!(
                "the scenario calls {method} with JSON messages (call-json), which needs the \
                 service's .proto file: run it with --proto FILE"
            );
            self.run.misuse(message.clone());
            return Err(Error::Invalid(message));
        };
        let descriptor = schema.method(method).inspect_err(|error| {
            if let Error::Invalid(message) = error {
                self.run
                    .misuse(format!("{message} (in the --proto file given to the run)"));
            }
        })?;
        let mut deserializer = serde_json::Deserializer::from_str(request_json);
        let request = DynamicMessage::deserialize(descriptor.input(), &mut deserializer)
            .map_err(|e| {
                Error::Invalid(format!(
                    "the request is not a JSON {}: {e}",
                    descriptor.input().full_name()
                ))
            })?
            .encode_to_vec();
        let reply = self
            .unary(target, method, Bytes::from(request), opts)
            .await?;
        let message = DynamicMessage::decode(descriptor.output(), reply.message.as_slice())
            .map_err(|e| {
                Error::Malformed(format!("not a {}: {e}", descriptor.output().full_name()))
            })?;
        let json = serde_json::to_string(&message).map_err(|e| Error::Malformed(e.to_string()))?;
        Ok((json, reply.message.len()))
    }
}

/// Message counts of a call.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    received: u64,
    bytes_received: u64,
}

/// What every stream keeps to record its event once, when it ends.
#[derive(Debug)]
struct StreamRecord {
    method: String,
    started: Instant,
    deadline: Duration,
    /// The iteration's start lag (open model).
    lag: Option<Duration>,
    counts: Counts,
    recorded: bool,
}

impl StreamRecord {
    fn new(method: &str, deadline: Duration, lag: Option<Duration>) -> StreamRecord {
        StreamRecord {
            method: method.to_string(),
            started: Instant::now(),
            deadline,
            lag,
            counts: Counts::default(),
            recorded: false,
        }
    }

    fn error(&self, status: Status) -> Error {
        from_status(&deadline_status(status, self.started, self.deadline))
    }
}

fn record_stream(run: &RunContext, record: &mut StreamRecord, error: Option<&Error>) {
    if record.recorded {
        return;
    }
    record.recorded = true;
    let message = error.map(describe);
    let name = crate::stats::truncate(&record.method, run.limits.max_name_len);
    run.stats.record(&RequestEvent {
        request_type: "grpc",
        name: &name,
        duration: record.started.elapsed(),
        response_length: record.counts.bytes_received,
        error: message.as_deref(),
        messages_sent: record.counts.sent,
        messages_received: record.counts.received,
        lag: record.lag,
    });
}

type StreamingCall = JoinHandle<Result<tonic::Response<Streaming<Bytes>>, Status>>;

/// Where the replies of a stream come from.
enum Inbound {
    /// The call has not answered with headers yet.
    Pending(StreamingCall),
    Open(Box<Streaming<Bytes>>),
    Done,
}

impl Inbound {
    async fn next(&mut self, record: &mut StreamRecord) -> Result<Option<Bytes>, Error> {
        loop {
            match self {
                Inbound::Done => return Ok(None),
                Inbound::Pending(call) => {
                    let response = call
                        .await
                        .map_err(|e| Error::Invalid(format!("the call was cancelled: {e}")))?;
                    match response {
                        Ok(response) => *self = Inbound::Open(Box::new(response.into_inner())),
                        Err(status) => {
                            *self = Inbound::Done;
                            return Err(record.error(status));
                        }
                    }
                }
                Inbound::Open(streaming) => {
                    return match streaming.message().await {
                        Ok(Some(message)) => {
                            record.counts.received += 1;
                            record.counts.bytes_received += message.len() as u64;
                            Ok(Some(message))
                        }
                        Ok(None) => {
                            *self = Inbound::Done;
                            Ok(None)
                        }
                        Err(status) => {
                            *self = Inbound::Done;
                            Err(record.error(status))
                        }
                    };
                }
            }
        }
    }
}

/// A CANCELLED status for a stream the guest dropped early.
fn cancelled(message: &str) -> Error {
    Error::Status(wit::Status {
        code: Code::Cancelled as u32,
        message: message.to_string(),
        details: Vec::new(),
    })
}

/// The next message of a stream; its event is recorded when the stream ends.
async fn next_recorded(
    run: &RunContext,
    inbound: &mut Inbound,
    record: &mut StreamRecord,
) -> Result<Option<Vec<u8>>, Error> {
    let result = inbound.next(record).await;
    match &result {
        Ok(None) => record_stream(run, record, None),
        Err(error) => record_stream(run, record, Some(error)),
        Ok(Some(_)) => {}
    }
    result.map(|m| m.map(|b| b.to_vec()))
}

/// Record a dropped stream: fine if it had ended, CANCELLED if not.
fn record_drop(run: &RunContext, inbound: &Inbound, record: &mut StreamRecord) {
    let error = (!matches!(inbound, Inbound::Done)).then(|| cancelled("dropped before the end"));
    record_stream(run, record, error.as_ref());
}

/// A server-streaming call (the `server-stream` resource).
pub struct ServerStream {
    record: StreamRecord,
    inbound: Inbound,
}

/// A client-streaming call (the `client-stream` resource).
pub struct ClientStream {
    record: StreamRecord,
    sender: Option<mpsc::Sender<HeldMessage>>,
    call: Option<JoinHandle<Result<tonic::Response<Bytes>, Status>>>,
}

/// A bidirectional call (the `bidi-stream` resource).
pub struct BidiStream {
    record: StreamRecord,
    sender: Option<mpsc::Sender<HeldMessage>>,
    inbound: Inbound,
}

fn table_error(e: wasmtime::component::ResourceTableError) -> wasmtime::Error {
    wasmtime::format_err!("grpc stream handle: {e}")
}

/// A message a guest sent on a stream, with its bytes held in the VU's
/// memory budget until the call takes it.
type HeldMessage = (Bytes, HostHold);

/// The messages of a stream as the call reads them; each hold is given
/// back when its message is taken.
struct HeldMessages(mpsc::Receiver<HeldMessage>);

impl tokio_stream::Stream for HeldMessages {
    type Item = Bytes;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Bytes>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|(bytes, _hold)| bytes))
    }
}

async fn send_on(
    sender: &Option<mpsc::Sender<HeldMessage>>,
    message: (Vec<u8>, HostHold),
    record: &mut StreamRecord,
) -> Result<(), Error> {
    let Some(sender) = sender else {
        return Err(Error::Invalid("the sending side is already closed".into()));
    };
    let (message, hold) = message;
    sender
        .send((Bytes::from(message), hold))
        .await
        .map_err(|_| {
            Error::Transport(HttpError::Protocol(
                "the call ended before the message was sent".into(),
            ))
        })?;
    record.counts.sent += 1;
    Ok(())
}

impl wit::HostServerStream for VuState {
    async fn next(
        &mut self,
        stream: Resource<ServerStream>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let run = self.run.clone();
        let state = self.table.get_mut(&stream).map_err(table_error)?;
        let result = next_recorded(&run, &mut state.inbound, &mut state.record).await;
        Ok(result)
    }

    async fn drop(&mut self, stream: Resource<ServerStream>) -> wasmtime::Result<()> {
        let mut state = self.table.delete(stream).map_err(table_error)?;
        record_drop(&self.run, &state.inbound, &mut state.record);
        Ok(())
    }
}

impl wit::HostClientStream for VuState {
    async fn send(
        &mut self,
        stream: Resource<ClientStream>,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let hold = match self.hold_memory(message.len(), "the stream message") {
            Ok(hold) => hold,
            Err(message) => return Ok(Err(Error::Invalid(message))),
        };
        let state = self.table.get_mut(&stream).map_err(table_error)?;
        let result = send_on(&state.sender, (message, hold), &mut state.record).await;
        Ok(result)
    }

    async fn finish(
        &mut self,
        stream: Resource<ClientStream>,
    ) -> wasmtime::Result<Result<Reply, Error>> {
        let run = self.run.clone();
        let state = self.table.get_mut(&stream).map_err(table_error)?;
        state.sender = None;
        let result = match state.call.take() {
            None => Err(Error::Invalid("finish was already called".into())),
            Some(call) => match call.await {
                Err(e) => Err(Error::Invalid(format!("the call was cancelled: {e}"))),
                Ok(Err(status)) => Err(state.record.error(status)),
                Ok(Ok(response)) => {
                    let metadata = reply_metadata(response.metadata());
                    let message = response.into_inner();
                    state.record.counts.received += 1;
                    state.record.counts.bytes_received += message.len() as u64;
                    Ok(Reply {
                        message: message.to_vec(),
                        metadata,
                    })
                }
            },
        };
        record_stream(&run, &mut state.record, result.as_ref().err());
        Ok(result)
    }

    async fn drop(&mut self, stream: Resource<ClientStream>) -> wasmtime::Result<()> {
        let mut state = self.table.delete(stream).map_err(table_error)?;
        if let Some(call) = state.call.take() {
            call.abort();
        }
        record_stream(
            &self.run,
            &mut state.record,
            Some(&cancelled("dropped before finish")),
        );
        Ok(())
    }
}

impl wit::HostBidiStream for VuState {
    async fn send(
        &mut self,
        stream: Resource<BidiStream>,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let hold = match self.hold_memory(message.len(), "the stream message") {
            Ok(hold) => hold,
            Err(message) => return Ok(Err(Error::Invalid(message))),
        };
        let state = self.table.get_mut(&stream).map_err(table_error)?;
        let result = send_on(&state.sender, (message, hold), &mut state.record).await;
        Ok(result)
    }

    async fn close_send(&mut self, stream: Resource<BidiStream>) -> wasmtime::Result<()> {
        self.table.get_mut(&stream).map_err(table_error)?.sender = None;
        Ok(())
    }

    async fn next(
        &mut self,
        stream: Resource<BidiStream>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let run = self.run.clone();
        let state = self.table.get_mut(&stream).map_err(table_error)?;
        let result = next_recorded(&run, &mut state.inbound, &mut state.record).await;
        Ok(result)
    }

    async fn drop(&mut self, stream: Resource<BidiStream>) -> wasmtime::Result<()> {
        let mut state = self.table.delete(stream).map_err(table_error)?;
        record_drop(&self.run, &state.inbound, &mut state.record);
        Ok(())
    }
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
        let mut record = StreamRecord::new(&method, self.grpc_deadline(&opts), self.iteration_lag);
        let opened = async {
            let prepared = self.prepare(&target, &method, &opts).await?;
            let mut request = tonic::Request::from_parts(
                prepared.metadata,
                Default::default(),
                Bytes::from(request),
            );
            request.set_timeout(prepared.deadline);
            let mut client = tonic::client::Grpc::new(prepared.channel);
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

/// The sending side of a client or bidi stream, before its call starts.
struct Outbound {
    record: StreamRecord,
    sender: mpsc::Sender<HeldMessage>,
    request: tonic::Request<HeldMessages>,
    client: tonic::client::Grpc<Channel>,
    path: PathAndQuery,
}

impl VuState {
    /// Prepare a stream the guest sends on; a failure is recorded as its event.
    async fn open_outbound(
        &mut self,
        target: &str,
        method: &str,
        opts: &Options,
    ) -> Result<Outbound, Error> {
        let mut record = StreamRecord::new(method, self.grpc_deadline(opts), self.iteration_lag);
        let prepared = match self.prepare(target, method, opts).await {
            Ok(prepared) => prepared,
            Err(error) => {
                record_stream(&self.run, &mut record, Some(&error));
                return Err(error);
            }
        };
        let (sender, receiver) = mpsc::channel(SEND_BUFFER);
        let mut request = tonic::Request::from_parts(
            prepared.metadata,
            Default::default(),
            HeldMessages(receiver),
        );
        request.set_timeout(prepared.deadline);
        Ok(Outbound {
            record,
            sender,
            request,
            client: tonic::client::Grpc::new(prepared.channel),
            path: prepared.path,
        })
    }
}

/// Load `--proto` once for the run.
pub fn load_schema(
    file: Option<&Path>,
    includes: &[std::path::PathBuf],
) -> anyhow::Result<Option<Arc<ProtoSchema>>> {
    file.map(|f| ProtoSchema::load(f, includes).map(Arc::new))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_maps_methods_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let proto = dir.path().join("hello.proto");
        std::fs::write(
            &proto,
            r#"syntax = "proto3";
            package hello;
            message HelloRequest { string name = 1; }
            message HelloResponse { string message = 1; }
            service HelloService { rpc SayHello(HelloRequest) returns (HelloResponse); }"#,
        )
        .unwrap();
        let schema = ProtoSchema::load(&proto, &[]).unwrap();
        let method = schema.method("/hello.HelloService/SayHello").unwrap();
        let mut de = serde_json::Deserializer::from_str(r#"{"name":"horde"}"#);
        let bytes = DynamicMessage::deserialize(method.input(), &mut de)
            .unwrap()
            .encode_to_vec();
        assert_eq!(bytes, b"\x0a\x05horde");
        assert!(matches!(
            schema.method("/hello.HelloService/Nope"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            schema.method("/nope.Svc/SayHello"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(schema.method("SayHello"), Err(Error::Invalid(_))));
    }

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
