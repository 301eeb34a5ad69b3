//! gRPC streams: the `server-stream`, `client-stream` and `bidi-stream`
//! resources, the messages a guest sends (held in its memory budget until
//! the call takes them) and the one event each stream records when it ends.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::PathAndQuery;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use wasmtime::component::Resource;

use super::{Counts, SEND_BUFFER, deadline_status, describe, from_status, reply_metadata};
use crate::bindings::grpc::{self as wit, Error, Options, Reply};
use crate::bindings::http::Error as HttpError;
use crate::budget::HostHold;
use crate::stats::RequestEvent;
use crate::vu::{RunContext, VuState};

/// What every stream keeps to record its event once, when it ends.
#[derive(Debug)]
pub(super) struct StreamRecord {
    pub(super) method: String,
    pub(super) started: Instant,
    pub(super) deadline: Duration,
    /// The iteration's start lag (open model).
    pub(super) lag: Option<Duration>,
    pub(super) counts: Counts,
    pub(super) recorded: bool,
    /// The VU's tags when the stream opened.
    pub(super) tags: std::sync::Arc<Vec<(String, String)>>,
}

impl StreamRecord {
    pub(super) fn new(method: &str, deadline: Duration, lag: Option<Duration>) -> StreamRecord {
        StreamRecord {
            method: method.to_string(),
            started: Instant::now(),
            deadline,
            lag,
            counts: Counts::default(),
            recorded: false,
            tags: Default::default(),
        }
    }

    pub(super) fn error(&self, status: Status) -> Error {
        from_status(&deadline_status(status, self.started, self.deadline))
    }
}

pub(super) fn record_stream(run: &RunContext, record: &mut StreamRecord, error: Option<&Error>) {
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
        status: super::grpc_status(error),
        tags: &record.tags,
    });
}

pub(super) type StreamingCall = JoinHandle<Result<tonic::Response<Streaming<Bytes>>, Status>>;

/// Where the replies of a stream come from.
pub(super) enum Inbound {
    /// The call has not answered with headers yet.
    Pending(StreamingCall),
    Open(Box<Streaming<Bytes>>),
    Done,
}

impl Inbound {
    pub(super) async fn next(&mut self, record: &mut StreamRecord) -> Result<Option<Bytes>, Error> {
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
pub(super) fn cancelled(message: &str) -> Error {
    Error::Status(wit::Status {
        code: Code::Cancelled as u32,
        message: message.to_string(),
        details: Vec::new(),
    })
}

/// The next message of a stream; its event is recorded when the stream ends.
pub(super) async fn next_recorded(
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
pub(super) fn record_drop(run: &RunContext, inbound: &Inbound, record: &mut StreamRecord) {
    let error = (!matches!(inbound, Inbound::Done)).then(|| cancelled("dropped before the end"));
    record_stream(run, record, error.as_ref());
}

/// A server-streaming call (the `server-stream` resource).
pub struct ServerStream {
    pub(super) record: StreamRecord,
    pub(super) inbound: Inbound,
}

/// A client-streaming call (the `client-stream` resource).
pub struct ClientStream {
    pub(super) record: StreamRecord,
    pub(super) sender: Option<mpsc::Sender<HeldMessage>>,
    pub(super) call: Option<JoinHandle<Result<tonic::Response<Bytes>, Status>>>,
}

/// A bidirectional call (the `bidi-stream` resource).
pub struct BidiStream {
    pub(super) record: StreamRecord,
    pub(super) sender: Option<mpsc::Sender<HeldMessage>>,
    pub(super) inbound: Inbound,
}

pub(super) fn table_error(e: wasmtime::component::ResourceTableError) -> wasmtime::Error {
    wasmtime::format_err!("grpc stream handle: {e}")
}

/// A message a guest sent on a stream, with its bytes held in the VU's
/// memory budget until the call takes it.
pub(super) type HeldMessage = (Bytes, HostHold);

/// The messages of a stream as the call reads them; each hold is given
/// back when its message is taken.
pub(super) struct HeldMessages(mpsc::Receiver<HeldMessage>);

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

/// A stream the guest sends on (client and bidi streams).
pub(super) trait Sending: Send + 'static {
    fn sending(&mut self) -> (&Option<mpsc::Sender<HeldMessage>>, &mut StreamRecord);
}

impl Sending for ClientStream {
    fn sending(&mut self) -> (&Option<mpsc::Sender<HeldMessage>>, &mut StreamRecord) {
        (&self.sender, &mut self.record)
    }
}

impl Sending for BidiStream {
    fn sending(&mut self) -> (&Option<mpsc::Sender<HeldMessage>>, &mut StreamRecord) {
        (&self.sender, &mut self.record)
    }
}

impl VuState {
    /// Send `message` on `stream`, its bytes held in the VU's memory budget
    /// until the call takes it.
    async fn send_message<S: Sending>(
        &mut self,
        stream: &Resource<S>,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let hold = match self.hold_memory(message.len(), "the stream message") {
            Ok(hold) => hold,
            Err(message) => return Ok(Err(Error::Invalid(message))),
        };
        let (sender, record) = self.table.get_mut(stream).map_err(table_error)?.sending();
        Ok(send_on(sender, (message, hold), record).await)
    }
}

pub(super) async fn send_on(
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
        self.send_message(&stream, message).await
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
        self.send_message(&stream, message).await
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

/// The sending side of a client or bidi stream, before its call starts.
pub(super) struct Outbound {
    pub(super) record: StreamRecord,
    pub(super) sender: mpsc::Sender<HeldMessage>,
    pub(super) request: tonic::Request<HeldMessages>,
    pub(super) client: tonic::client::Grpc<Channel>,
    pub(super) path: PathAndQuery,
}

impl VuState {
    /// Prepare a stream the guest sends on; a failure is recorded as its event.
    pub(super) async fn open_outbound(
        &mut self,
        target: &str,
        method: &str,
        opts: &Options,
    ) -> Result<Outbound, Error> {
        let mut record = StreamRecord::new(
            &self.groups.name(method),
            self.grpc_deadline(opts),
            self.iteration_lag,
        );
        record.tags = self.tags.clone();
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
            client: super::client(prepared.channel, prepared.max_receive),
            path: prepared.path,
        })
    }
}
