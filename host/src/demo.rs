//! `horde demo`: a built-in shop API on 127.0.0.1 with small realistic
//! delays, and the example scenario embedded in the binary to run against it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The Rust HTTP example (guest-examples/rust-http), built by host/build.rs.
pub const DEMO_SCENARIO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo_scenario.wasm"));

/// Requests a demo target has served.
#[derive(Debug, Default)]
pub struct Served {
    pub total: AtomicU64,
    /// Of which over HTTP/2.
    pub http2: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// The usernames of successful `POST /login`s, in the order served.
    pub logins: std::sync::Mutex<Vec<String>>,
}

impl Served {
    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The usernames logged in so far, in order.
    pub fn logins(&self) -> Vec<String> {
        self.logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// (total, over HTTP/2) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.total.load(Ordering::Relaxed),
            self.http2.load(Ordering::Relaxed),
        )
    }
}

/// A running demo target; stops when dropped.
#[derive(Debug)]
pub struct DemoTarget {
    pub addr: SocketAddr,
    pub served: Arc<Served>,
    tls: bool,
    task: JoinHandle<()>,
}

impl DemoTarget {
    /// Serve plain HTTP/1.1 and h2c on 127.0.0.1 at a free port. With
    /// `delays` false it answers at once (for throughput measurements).
    pub async fn start(delays: bool) -> std::io::Result<DemoTarget> {
        Self::serve(delays, None).await
    }

    /// Serve HTTPS with this TLS configuration (set its ALPN protocols to
    /// offer HTTP/2).
    pub async fn start_tls(
        delays: bool,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<DemoTarget> {
        Self::serve(delays, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn serve(
        delays: bool,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<DemoTarget> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(Served::default());
        let counter = served.clone();
        let started = std::time::Instant::now();
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                counter.connections.fetch_add(1, Ordering::Relaxed);
                let counter = counter.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        counter.total.fetch_add(1, Ordering::Relaxed);
                        if req.version() == http::Version::HTTP_2 {
                            counter.http2.fetch_add(1, Ordering::Relaxed);
                        }
                        handle(req, delays, started, counter.clone())
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(DemoTarget {
            addr,
            served,
            tls: is_tls,
            task,
        })
    }

    /// The base URL, e.g. http://127.0.0.1:41234.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    reply(status, "application/json", body)
}

async fn pause(delays: bool, min_ms: u64, max_ms: u64) {
    if delays {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(min_ms..=max_ms))).await;
    }
}

/// Sleep `duration` to within a few tens of microseconds: the timer wheel
/// for all but the last 2 ms, then yield until the deadline.
async fn precise_sleep(duration: Duration) {
    let deadline = std::time::Instant::now() + duration;
    if let Some(coarse) = duration.checked_sub(Duration::from_millis(2)) {
        tokio::time::sleep(coarse).await;
    }
    while std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

async fn handle(
    req: Request<Incoming>,
    delays: bool,
    started: std::time::Instant,
    served: Arc<Served>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let response = match (&parts.method, path.as_str()) {
        (&Method::GET, "/") => {
            pause(delays, 2, 6).await;
            reply(
                StatusCode::OK,
                "text/html",
                "<html><body><h1>Horde demo shop</h1></body></html>",
            )
        }
        (&Method::POST, "/login") => {
            pause(delays, 5, 12).await;
            let user = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("username")
                        .and_then(|u| u.as_str())
                        .map(str::to_string)
                });
            match user {
                Some(user) => {
                    served
                        .logins
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(user.clone());
                    let mut response = json(
                        StatusCode::OK,
                        serde_json::json!({ "token": format!("token-{user}") }).to_string(),
                    );
                    response.headers_mut().insert(
                        header::SET_COOKIE,
                        header::HeaderValue::from_str(&format!("session={user}; Path=/"))
                            .unwrap_or(header::HeaderValue::from_static("session=x; Path=/")),
                    );
                    response
                }
                None => json(
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"username required"}"#.into(),
                ),
            }
        }
        (&Method::GET, item) if item.starts_with("/item/") => {
            pause(delays, 1, 4).await;
            match item["/item/".len()..].parse::<u32>() {
                Ok(id) if (1..=1000).contains(&id) => json(
                    StatusCode::OK,
                    format!(r#"{{"id":{id},"name":"item {id}","price":{}.99}}"#, id % 50),
                ),
                _ => json(StatusCode::NOT_FOUND, r#"{"error":"no such item"}"#.into()),
            }
        }
        (&Method::POST, "/cart") => {
            pause(delays, 3, 8).await;
            let authorized = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer token-"));
            if authorized {
                json(StatusCode::OK, r#"{"items":1}"#.into())
            } else {
                json(
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"log in first"}"#.into(),
                )
            }
        }
        (&Method::GET, "/admin/orders") => {
            pause(delays, 2, 6).await;
            let admin = parts
                .headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == b"Bearer token-admin");
            if admin {
                let logins = served
                    .logins
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .len();
                json(StatusCode::OK, format!(r#"{{"logins":{logins}}}"#))
            } else {
                json(
                    StatusCode::FORBIDDEN,
                    r#"{"error":"log in as admin"}"#.into(),
                )
            }
        }
        (&Method::GET, "/slow") => {
            let ms = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(100)
                .min(30_000);
            precise_sleep(Duration::from_millis(ms)).await;
            reply(StatusCode::OK, "text/plain", "slow")
        }
        (&Method::GET, "/stall") => {
            // The whole target stalls from `at` ms after it started for `ms` ms:
            // every request arriving in that window waits for its end.
            let query = parts.uri.query().unwrap_or("");
            let param = |key: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let window_start = started + Duration::from_millis(param("at").unwrap_or(1000));
            let window_end =
                window_start + Duration::from_millis(param("ms").unwrap_or(1000).min(30_000));
            let now = std::time::Instant::now();
            if now >= window_start && now < window_end {
                tokio::time::sleep_until(window_end.into()).await;
            }
            reply(StatusCode::OK, "text/plain", "stall")
        }
        (&Method::GET, "/redirect") => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, "/")
            .body(Full::new(Bytes::new()))
            .expect("static response parts are valid"),
        (&Method::POST, "/broken-xmlrpc") => {
            reply(StatusCode::OK, "text/xml", "<methodResponse><params><oops")
        }
        (&Method::GET, "/cookie") => {
            let cookie = parts
                .headers
                .get(header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            reply(StatusCode::OK, "text/plain", cookie)
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
    };
    Ok(response)
}
