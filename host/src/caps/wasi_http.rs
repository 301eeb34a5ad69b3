//! `wasi:http/outgoing-handler` for guests that bring their own HTTP library
//! (JavaScript `fetch`, Python clients on wasi:http): the same grants as the
//! `http` capability, a per-VU pool of keep-alive connections, and one
//! request event per request, timed to the end of its response body.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use wasmtime_wasi_http::{
    Error as WasiHttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::bindings::http::Error as HttpError;
use crate::budget::{HostHold, MAX_FIELDS_BYTES, MemoryBudget};
use crate::caps::http::{
    Connection, Idle, Origin, Sender, collect_response, connect, describe_error, may_resend,
};
use crate::caps::net::error_chain;
use crate::stats::RequestEvent;
use crate::vu::{RunContext, VuState};

/// A request header that names the request in the statistics (like
/// Locust's `name=`); the host removes it before sending.
pub const NAME_HEADER: &str = "x-horde-name";

/// Idle HTTP/1.1 connections kept per origin and VU.
const MAX_IDLE_PER_ORIGIN: usize = 8;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
                ),
                WasiHttpError,
            >,
        > + Send,
>;

/// Open connections of one VU's wasi:http requests, by origin. HTTP/1.1
/// connections are lent to one request at a time and come back when its
/// response body ends; an HTTP/2 connection is shared.
/// Connections idle for about as long as their server said it keeps them
/// ([`Idle::reusable`]) are closed rather than reused.
#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Origin, Vec<(Connection, Idle)>>>,
}

impl Pool {
    fn take(&self, origin: &Origin) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.get_mut(origin)?;
        while let Some((connection, since)) = connections.pop() {
            if connection.is_closed() || !since.reusable() {
                continue;
            }
            if let Some(shared) = connection.share() {
                connections.push((connection, since));
                return Some(shared);
            }
            return Some(connection);
        }
        None
    }

    /// `idle`: from the headers of the response just finished.
    fn give_back(&self, origin: Origin, connection: Connection, idle: Idle) {
        if connection.is_closed() {
            return;
        }
        let mut idle_connections = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle_connections.entry(origin).or_default();
        let shared_h2 = connection.is_h2() && connections.iter().any(|(c, _)| c.is_h2());
        if !shared_h2 && connections.len() < MAX_IDLE_PER_ORIGIN {
            connections.push((connection, idle));
        }
    }
}

/// The wasi:http state of one VU.
pub struct VuWasiHttp {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

impl std::fmt::Debug for VuWasiHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuWasiHttp").finish_non_exhaustive()
    }
}

impl VuWasiHttp {
    /// The wasi:http state of one VU whose request bodies count against `memory`.
    pub fn new(run: Arc<RunContext>, memory: Arc<MemoryBudget>) -> VuWasiHttp {
        let mut ctx = WasiHttpCtx::new();
        ctx.set_field_size_limit(MAX_FIELDS_BYTES);
        VuWasiHttp {
            ctx,
            hooks: Hooks {
                run,
                memory,
                pool: None,
                lag: None,
                group: None,
                tags: Arc::default(),
            },
        }
    }
}

struct Hooks {
    run: Arc<RunContext>,
    /// The VU's memory budget: request bodies are collected within it.
    memory: Arc<MemoryBudget>,
    /// Created on the first request: most scenarios never use wasi:http.
    pool: Option<Arc<Pool>>,
    /// The current iteration's start lag (open model), copied from the VU.
    lag: Option<Duration>,
    /// The VU's current group path and tags, copied from the VU.
    group: Option<Arc<str>>,
    tags: Arc<Vec<(String, String)>>,
}

impl WasiHttpView for VuState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // Called for every wasi:http host call: copy the group and tags
        // (reference counts) only when they changed.
        let hooks = &mut self.wasi_http.hooks;
        hooks.lag = self.iteration_lag;
        let group = self.groups.path();
        let same_group = match (&hooks.group, group) {
            (Some(held), Some(now)) => Arc::ptr_eq(held, now),
            (held, now) => held.is_none() && now.is_none(),
        };
        if !same_group {
            hooks.group = group.cloned();
        }
        if !Arc::ptr_eq(&hooks.tags, &self.tags) {
            hooks.tags = self.tags.clone();
        }
        WasiHttpCtxView {
            ctx: &mut self.wasi_http.ctx,
            table: &mut self.table,
            hooks: &mut self.wasi_http.hooks,
        }
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ) -> SendFuture {
        let run = self.run.clone();
        let memory = self.memory.clone();
        let pool = self.pool.get_or_insert_with(Default::default).clone();
        let lag = self.lag;
        let group = self.group.clone();
        let tags = self.tags.clone();
        Box::new(async move {
            let started = Instant::now();
            let mut request = request;
            let method = request.method().as_str().to_string();
            let name = match request.headers_mut().remove(NAME_HEADER) {
                Some(name) => String::from_utf8_lossy(name.as_bytes()).into_owned(),
                None => request
                    .uri()
                    .path_and_query()
                    .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            };
            let name = crate::caps::group::filed(group.as_deref(), &name).into_owned();
            let mut pending = PendingEvent {
                run: run.clone(),
                method,
                name,
                started,
                lag,
                status: None,
                recorded: false,
                tags,
            };
            match send(&run, &memory, &pool, request, options).await {
                Ok((response, origin, connection)) => {
                    let (parts, body) = response.into_parts();
                    pending.status = Some(parts.status.as_u16());
                    let failure = (parts.status.as_u16() >= 400).then(|| {
                        format!(
                            "HTTP {} {}",
                            parts.status.as_u16(),
                            parts.status.canonical_reason().unwrap_or("")
                        )
                    });
                    let between_bytes = options
                        .and_then(|o| o.between_bytes_timeout)
                        .unwrap_or(run.limits.request_timeout);
                    let left_coded = if body.is_end_stream() {
                        None
                    } else {
                        crate::caps::http::left_after_decoding(&parts.headers)
                    };
                    if let Some(left_coded) = left_coded {
                        // A coded body is read whole and decoded, as fetch()
                        // gives it (the headers then describe the decoded body).
                        let max = run.limits.max_body_bytes;
                        let read = collect_response(
                            body,
                            &parts.headers,
                            max,
                            &memory,
                            Some(between_bytes),
                        );
                        let body = match read.await {
                            Ok(body) => body,
                            Err(error) => {
                                pending.record(0, Some(&describe_error(&error)));
                                return Err(to_wasi_error(&error));
                            }
                        };
                        pending.record(body.len() as u64, failure.as_deref());
                        pool.give_back(origin, connection, Idle::after(&parts.headers));
                        let mut parts = parts;
                        parts.headers.remove(header::CONTENT_ENCODING);
                        parts.headers.remove(header::CONTENT_LENGTH);
                        if !left_coded.is_empty()
                            && let Ok(value) = HeaderValue::from_str(&left_coded)
                        {
                            parts.headers.insert(header::CONTENT_ENCODING, value);
                        }
                        let body = Full::new(body).map_err(|never| match never {});
                        let response = Response::from_parts(parts, body.boxed_unsync());
                        let io: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send> =
                            Box::new(async { Ok(()) });
                        return Ok((response, io));
                    }
                    let body = RecordingBody {
                        inner: body,
                        received: 0,
                        keep_alive: Idle::after(&parts.headers),
                        failure,
                        event: Some(pending),
                        connection: Some((pool, origin, connection)),
                        idle_timeout: between_bytes,
                        timer: Box::pin(tokio::time::sleep(between_bytes)),
                    };
                    let response = Response::from_parts(parts, body.boxed_unsync());
                    let io: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send> =
                        Box::new(async { Ok(()) });
                    Ok((response, io))
                }
                Err(error) => {
                    pending.record(0, Some(&describe_error(&error)));
                    Err(to_wasi_error(&error))
                }
            }
        })
    }
}

/// Collect a request body within the VU's memory budget; the hold is given
/// back when the request is done.
async fn collect_body(
    body: WasiBody,
    memory: &Arc<MemoryBudget>,
) -> Result<(Bytes, HostHold), HttpError> {
    let mut body = std::pin::pin!(body);
    let mut held = memory.hold();
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| HttpError::Protocol(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !held.grow(data.len()) {
            return Err(HttpError::Protocol(format!(
                "reading the request body: the VU's memory budget (--max-vu-memory, {} MiB, \
                 linear memory plus request bodies held by the host) is used up",
                memory.max() >> 20
            )));
        }
        collected.extend_from_slice(&data);
    }
    Ok((collected.freeze(), held))
}

/// Collect the request body, then send it on a pooled (or new) connection
/// to the granted origin, within the connect and first-byte timeouts.
async fn send(
    run: &RunContext,
    memory: &Arc<MemoryBudget>,
    pool: &Pool,
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(Response<Incoming>, Origin, Connection), HttpError> {
    let (mut parts, body) = request.into_parts();
    let origin = origin_of(&parts.uri)?;
    let (body, _held) = collect_body(body, memory).await?;
    if !parts.headers.contains_key(header::USER_AGENT) {
        parts
            .headers
            .insert(header::USER_AGENT, HeaderValue::from_static("horde/0.1"));
    }
    if !parts.headers.contains_key(header::ACCEPT_ENCODING) {
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(crate::caps::http::ACCEPT_ENCODING),
        );
    }
    // gRPC over HTTP/2 requires `te: trailers`, which `fetch()` never sends
    // (the Fetch standard forbids scripts to set TE), so gRPC calls made
    // with `fetch()` get it here, as every gRPC client sends it.
    let grpc = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc && !parts.headers.contains_key(header::TE) {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(run.limits.request_timeout);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(run.limits.request_timeout);
    // A request that fails on a pooled connection before its response is
    // sent once more on a fresh one when that is safe ([`may_resend`]).
    let method = parts.method.clone();
    for attempt in 0..2 {
        let (mut connection, reused) = match pool.take(&origin) {
            Some(connection) if attempt == 0 => (connection, true),
            _ => {
                let connection = tokio::time::timeout(connect_timeout, connect(run, &origin))
                    .await
                    .map_err(|_| HttpError::Timeout)??;
                (connection, false)
            }
        };
        // Only a request on a reused connection may need a second attempt.
        let this_attempt = if reused {
            parts.clone()
        } else {
            std::mem::replace(&mut parts, Request::new(()).into_parts().0)
        };
        let mut outgoing = Request::from_parts(this_attempt, Full::new(body.clone()));
        let received_before = connection.received.get();
        let sent = tokio::time::timeout(first_byte_timeout, async {
            match &mut connection.sender {
                Sender::H1(sender) => {
                    // HTTP/1.1 sends the path; the authority goes in `Host`.
                    let path = outgoing
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_string();
                    *outgoing.uri_mut() = path
                        .parse::<Uri>()
                        .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
                    sender.ready().await.map_err(Sent::from)?;
                    Ok(sender.send_request(outgoing).await.map_err(Sent::from)?)
                }
                Sender::H2(sender) => {
                    outgoing.headers_mut().remove(header::HOST);
                    sender.ready().await.map_err(Sent::from)?;
                    Ok(sender.send_request(outgoing).await.map_err(Sent::from)?)
                }
            }
        })
        .await
        .map_err(|_| HttpError::Timeout)?;
        match sent {
            Ok(response) => return Ok((response, origin, connection)),
            Err(Sent::Hyper(e))
                if reused
                    && connection.received.get() == received_before
                    && may_resend(&e, &method) =>
            {
                continue;
            }
            Err(Sent::Hyper(e)) => return Err(HttpError::Protocol(error_chain(&e))),
            Err(Sent::Other(e)) => return Err(e),
        }
    }
    Err(HttpError::Protocol(
        "the connection closed before the request was sent".into(),
    ))
}

/// Why sending failed: hyper's error (a closed pooled connection is retried) or ours.
enum Sent {
    Hyper(hyper::Error),
    Other(HttpError),
}

impl From<hyper::Error> for Sent {
    fn from(error: hyper::Error) -> Sent {
        Sent::Hyper(error)
    }
}

impl From<HttpError> for Sent {
    fn from(error: HttpError) -> Sent {
        Sent::Other(error)
    }
}

fn origin_of(uri: &Uri) -> Result<Origin, HttpError> {
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => {
            return Err(HttpError::InvalidUrl(format!(
                "{uri}: scheme {other:?} is not supported; use http or https"
            )));
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| HttpError::InvalidUrl(format!("{uri} has no host")))?;
    let host = crate::policy::unbracketed(authority.host()).to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Origin { tls, host, port })
}

/// The guest-visible error for a failed request.
fn to_wasi_error(error: &HttpError) -> WasiHttpError {
    match error {
        HttpError::Denied(_) => WasiHttpError::HttpRequestDenied,
        HttpError::InvalidUrl(_) => WasiHttpError::HttpRequestUriInvalid,
        HttpError::Dns(message) => WasiHttpError::DnsError {
            rcode: Some(message.clone()),
            info_code: None,
        },
        HttpError::Connect(_) => WasiHttpError::ConnectionRefused,
        HttpError::Timeout => WasiHttpError::ConnectionTimeout,
        HttpError::Tls(_) => WasiHttpError::TlsProtocolError,
        HttpError::Protocol(_) => WasiHttpError::HttpProtocolError,
        HttpError::TooLarge(_) => WasiHttpError::HttpResponseBodySize(None),
    }
}

/// A request whose event is recorded when its response ends, or as
/// abandoned when it is dropped first (its VU was cut at the end of the run).
struct PendingEvent {
    run: Arc<RunContext>,
    method: String,
    name: String,
    started: Instant,
    lag: Option<Duration>,
    /// The response's status, once its head arrived.
    status: Option<u16>,
    recorded: bool,
    tags: Arc<Vec<(String, String)>>,
}

impl Drop for PendingEvent {
    fn drop(&mut self) {
        self.write(0, Some(crate::stats::ABANDONED));
    }
}

impl PendingEvent {
    fn record(mut self, response_length: u64, error: Option<&str>) {
        self.write(response_length, error);
    }

    fn write(&mut self, response_length: u64, error: Option<&str>) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        self.run.stats.record(&RequestEvent {
            request_type: &self.method,
            name: &self.name,
            duration: self.started.elapsed(),
            response_length,
            error,
            messages_sent: 0,
            messages_received: 0,
            lag: self.lag,
            status: self.status,
            tags: &self.tags,
        });
    }
}

/// The response body handed to the guest as a stream (of any size: the
/// guest keeps what it keeps within its memory): counts bytes, enforces the
/// between-bytes timeout, records the event at its end (or when the guest
/// drops it), and returns the connection to the pool when the body was
/// read to the end.
struct RecordingBody {
    inner: Incoming,
    received: u64,
    /// The response's keep-alive terms, for the connection's next request.
    keep_alive: Idle,
    /// An unexpected status: the event is a failure even if the body arrives.
    failure: Option<String>,
    event: Option<PendingEvent>,
    connection: Option<(Arc<Pool>, Origin, Connection)>,
    idle_timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl RecordingBody {
    fn finish(&mut self, error: Option<String>) {
        if let Some(event) = self.event.take() {
            let message = error.or_else(|| self.failure.take());
            event.record(self.received, message.as_deref());
        }
    }
}

impl Body for RecordingBody {
    type Data = Bytes;
    type Error = WasiHttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiHttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finish(None);
                if let Some((pool, origin, connection)) = this.connection.take() {
                    pool.give_back(origin, connection, this.keep_alive.restart());
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                let deadline = tokio::time::Instant::now() + this.idle_timeout;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.connection = None;
                this.finish(Some(format!(
                    "protocol: reading the body: {}",
                    error_chain(&e)
                )));
                Poll::Ready(Some(Err(WasiHttpError::HttpProtocolError)))
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.connection = None;
                    this.finish(Some("timeout".to_string()));
                    return Poll::Ready(Some(Err(WasiHttpError::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordingBody {
    fn drop(&mut self) {
        // A body with nothing left (HEAD, 204) may never be polled: its
        // connection is still reusable. Otherwise the guest stopped reading
        // early and the connection, mid-response, is dropped.
        if self.inner.is_end_stream()
            && let Some((pool, origin, connection)) = self.connection.take()
        {
            pool.give_back(origin, connection, self.keep_alive.restart());
        }
        self.finish(None);
    }
}
