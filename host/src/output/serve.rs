//! The one hardened HTTP/1.1 server loop behind the web UI and `/metrics`:
//! a connection cap on accept (a semaphore; a connection over it is closed
//! at once), a header-read timeout that is also the idle timeout between
//! requests (hyper-util's server builder), a write timeout (a client that
//! stops reading is dropped; `tokio-io-timeout`), a time limit on each
//! request's handler and a body size limit on every endpoint (tower-http),
//! so no client can hold the run's descriptors or memory for long.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// How much one server lets its clients hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerLimits {
    /// Connections open at once; more are closed as soon as they are
    /// accepted. Never more than [`crate::descriptors::server_share`] allows.
    pub connections: usize,
    /// Time a client has to send a request's head, and the longest a
    /// kept-alive connection may wait for its next request.
    pub header_read: Duration,
    /// Time a write to the client may wait (a client that stops reading
    /// is dropped after it).
    pub write: Duration,
    /// Time a handler has to answer (a stream, such as `/events`, counts
    /// until its first byte).
    pub handler: Duration,
    /// The largest request body any endpoint takes, in bytes.
    pub body: usize,
}

impl ServerLimits {
    /// The web UI's: a few browser tabs, each with its event stream, plus
    /// downloads.
    pub const WEB: ServerLimits = ServerLimits {
        connections: 64,
        header_read: Duration::from_secs(10),
        write: Duration::from_secs(30),
        handler: Duration::from_secs(30),
        body: 4 * 1024,
    };

    /// `/metrics`': a few Prometheus servers scraping.
    pub const METRICS: ServerLimits = ServerLimits {
        connections: 16,
        header_read: Duration::from_secs(10),
        write: Duration::from_secs(30),
        handler: Duration::from_secs(30),
        body: 4 * 1024,
    };
}

impl ServerLimits {
    /// `horde aggregate`'s: the run's segments (each sends a record a
    /// second, up to a few MiB, and gives up on an answer after 5 s), so a
    /// request that is not whole within 5 s is dropped, and many may be
    /// open while some are strangers'.
    pub const AGGREGATOR: ServerLimits = ServerLimits {
        connections: 1024,
        header_read: Duration::from_secs(5),
        write: Duration::from_secs(5),
        handler: Duration::from_secs(5),
        body: 32 * 1024 * 1024,
    };
}

/// The largest request head (request line and headers) a client may send.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serve `router` on `listener` within `limits` until the returned task is
/// aborted (which also closes every open connection).
pub fn spawn(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
) -> tokio::task::JoinHandle<()> {
    let router = router.layer(RequestBodyLimitLayer::new(limits.body)).layer(
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.handler),
    );
    let connections = crate::descriptors::server_share(limits.connections);
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(connections));
        // Dropped with this task: every connection closes with the server.
        let mut open = JoinSet::new();
        loop {
            while open.try_join_next().is_some() {}
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors (EMFILE) or a connection reset before
                // it was accepted: wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Over the cap: closed at once, so it holds nothing.
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let mut stream = TimeoutStream::new(stream);
            stream.set_write_timeout(Some(limits.write));
            let io = TokioIo::new(Box::pin(stream));
            let service = TowerToHyperService::new(router.clone());
            let builder = builder.clone();
            open.spawn(async move {
                let _permit = permit;
                // A client's protocol error or timeout ends its connection only.
                let _ = builder.serve_connection(io, service).await;
            });
        }
    })
}
