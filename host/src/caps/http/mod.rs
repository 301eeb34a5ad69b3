//! The `http` capability: a per-VU client with keep-alive connections per
//! origin, a cookie jar, HTTP/1.1 and HTTP/2 (h2c prior knowledge, ALPN over
//! TLS), redirects, timeouts and content codings; every call is timed and
//! recorded (with the decoded body's length, as Locust records it).

use std::time::{Duration, Instant};

use bytes::Bytes;
use cookie_store::{CookieStore, RawCookie};
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use crate::bindings::http::{self as wit, Error as HttpError};
use crate::caps::net::{error_chain, open_stream};
use crate::stats::{InFlight, RequestEvent};
use crate::vu::VuState;

mod body;
mod decode;
mod keep_alive;
pub(crate) mod latin1;
mod redirect;
mod settings;

pub(crate) use body::collect as collect_response;
use body::{Keep, RawResponse, read_response};
pub(crate) use decode::left_after_decoding;
pub use decode::{ACCEPT_ENCODING, decode};
pub(crate) use keep_alive::{Idle, Received, may_resend};
pub use settings::HttpSettings;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// An HTTP connection: its sender, and how many bytes it has received
/// (a request that failed with none of its response is safe to resend).
pub(crate) struct Connection {
    pub(crate) sender: Sender,
    pub(crate) received: Received,
}

/// The sending half of an HTTP/1.1 or HTTP/2 connection.
pub(crate) enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    pub(crate) fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(sender) => sender.is_closed(),
            Sender::H2(sender) => sender.is_closed(),
        }
    }

    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// Another handle on a shared HTTP/2 connection (None for HTTP/1.1).
    pub(crate) fn share(&self) -> Option<Connection> {
        match &self.sender {
            Sender::H2(sender) => Some(Connection {
                sender: Sender::H2(sender.clone()),
                received: self.received.clone(),
            }),
            Sender::H1(_) => None,
        }
    }
}

impl Origin {
    /// Whether `url` is served by this origin (no allocation: this runs per request).
    fn serves(&self, url: &Url) -> bool {
        self.tls == (url.scheme() == "https")
            && Some(self.port) == url.port_or_known_default()
            && bare_host(url).is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
    }
}

/// The URL's host without an IPv6 address's brackets.
fn bare_host(url: &Url) -> Option<&str> {
    url.host_str().map(crate::policy::unbracketed)
}

/// A VU's open connection to one origin, with the `Host` header it sends
/// there (the same for every URL of the origin: `url` omits a default port).
struct OpenConnection {
    origin: Origin,
    connection: Connection,
    host_header: HeaderValue,
    /// Since when it is idle, and how long the server keeps it.
    idle: Option<Idle>,
}

/// One VU's HTTP client state: open connections and cookies.
#[derive(Default)]
pub struct VuHttp {
    /// One per origin; a VU talks to a few origins, so a scan beats hashing.
    connections: Vec<OpenConnection>,
    cookies: Option<Box<CookieStore>>,
}

impl VuHttp {
    fn position(&self, url: &Url) -> Option<usize> {
        self.connections
            .iter()
            .position(|open| open.origin.serves(url))
    }
}

impl std::fmt::Debug for VuHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuHttp")
            .field("connections", &self.connections.len())
            .finish()
    }
}

/// What one exchange produced, before it becomes an event.
pub(crate) struct Exchange {
    pub(crate) status: StatusCode,
    /// `name: value\n` lines.
    pub(crate) headers: String,
    /// Empty when the request discarded it.
    pub(crate) body: Bytes,
    /// The body's length once decoded (also of a discarded body).
    pub(crate) body_length: u64,
    pub(crate) url: Url,
}

impl wit::Host for VuState {
    async fn send(
        &mut self,
        req: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, HttpError>> {
        let started = Instant::now();
        let method = req.method.to_ascii_uppercase();
        let (outcome, name) = self.perform(&req, &method, true).await;
        let elapsed = started.elapsed();
        let status_failure = match &outcome {
            Ok(exchange) if !status_expected(exchange.status, &req.expect_status) => Some(format!(
                "HTTP {} {}",
                exchange.status.as_u16(),
                exchange.status.canonical_reason().unwrap_or("")
            )),
            _ => None,
        };
        let error_message = match &outcome {
            Err(error) => Some(describe_error(error)),
            Ok(_) => status_failure,
        };
        if req.record_event {
            self.run.stats.record(&RequestEvent {
                request_type: &method,
                name: &self.groups.name(&name),
                duration: elapsed,
                response_length: outcome.as_ref().map_or(0, |e| e.body_length),
                error: error_message.as_deref(),
                messages_sent: 0,
                messages_received: 0,
                lag: self.iteration_lag,
                status: outcome
                    .as_ref()
                    .ok()
                    .map(|exchange| exchange.status.as_u16()),
                tags: &self.tags,
            });
        }
        Ok(outcome.map(|exchange| wit::Response {
            status: exchange.status.as_u16(),
            headers: exchange.headers,
            body: exchange.body.to_vec(),
            url: exchange.url.to_string(),
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        }))
    }
}

fn status_expected(status: StatusCode, expected: &[u16]) -> bool {
    if expected.is_empty() {
        status.as_u16() < 400
    } else {
        expected.contains(&status.as_u16())
    }
}

/// The failure message recorded for a transport error.
pub fn describe_error(error: &HttpError) -> String {
    match error {
        HttpError::Denied(m) => format!("denied: {m}"),
        HttpError::InvalidUrl(m) => format!("invalid URL: {m}"),
        HttpError::Dns(m) => format!("DNS: {m}"),
        HttpError::Connect(m) => format!("connect: {m}"),
        HttpError::Timeout => "timeout".to_string(),
        HttpError::Tls(m) => format!("TLS: {m}"),
        HttpError::Protocol(m) => format!("protocol: {m}"),
        HttpError::TooLarge(m) => format!("too large: {m}"),
    }
}

pub(crate) fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// Resolve an absolute URL, or a path under `--host` and its path ([`under_base`]).
pub fn resolve_url(base: Option<&Url>, raw: &str) -> Result<Url, HttpError> {
    let url = match Url::parse(raw) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => {
                under_base(base, raw).map_err(|e| HttpError::InvalidUrl(format!("{raw}: {e}")))?
            }
            None => {
                return Err(HttpError::InvalidUrl(format!(
                    "{raw} is a relative URL and the run has no --host to resolve it against"
                )));
            }
        },
        Err(e) => return Err(HttpError::InvalidUrl(format!("{raw}: {e}"))),
    };
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(HttpError::InvalidUrl(format!(
            "{raw}: scheme {other:?} is not supported; use http or https"
        ))),
    }
}

/// A relative reference resolved under the base URL's path, as Locust
/// joins `--host` and a request path: with `--host http://h/api` (with or
/// without a trailing slash), `/users` and `users` both mean
/// `http://h/api/users`. A query (`?q`), a fragment or a network-path
/// reference (`//other/x`) is resolved by RFC 3986 rules.
fn under_base(base: &Url, raw: &str) -> Result<Url, url::ParseError> {
    if raw.starts_with("//") || raw.starts_with('?') || raw.starts_with('#') {
        return base.join(raw);
    }
    let mut directory = base.clone();
    if !directory.path().ends_with('/') {
        let path = format!("{}/", directory.path());
        directory.set_path(&path);
    }
    directory.join(raw.trim_start_matches('/'))
}

fn origin_of(url: &Url) -> Result<Origin, HttpError> {
    let host = bare_host(url)
        .ok_or_else(|| HttpError::InvalidUrl(format!("{url} has no host")))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| HttpError::InvalidUrl(format!("{url} has no port")))?;
    Ok(Origin {
        tls: url.scheme() == "https",
        host,
        port,
    })
}

impl VuState {
    /// Resolve the URL and send the request within its timeout; returns the
    /// outcome and the event name (the request's name, else the URL's path
    /// and query). Recording is the caller's: each protocol records its own
    /// event. `from_guest`: the request was lifted from the guest (the `http`
    /// capability), so the lifted body is held in the VU's budget too and,
    /// when the request records an event, a call abandoned mid-way (the VU
    /// was cut) is recorded as such.
    pub(crate) async fn perform(
        &mut self,
        req: &wit::Request,
        method: &str,
        from_guest: bool,
    ) -> (Result<Exchange, HttpError>, String) {
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.run.limits.request_timeout);
        let url = resolve_url(self.run.base_url.as_ref(), &req.url);
        let name = match (&req.name, &url) {
            (Some(name), _) => name.clone(),
            (None, Ok(url)) => path_and_query(url),
            (None, Err(_)) => req.url.clone(),
        };
        let in_flight = (from_guest && req.record_event).then(|| {
            InFlight::new(
                self.run.stats.clone(),
                method,
                &self.groups.name(&name),
                self.iteration_lag,
            )
            .tagged(&self.tags)
        });
        // `exchange` copies the body to send it; the lifted request is one more copy.
        let copies = if from_guest { 2 } else { 1 };
        let held = self
            .hold_memory(req.body.len().saturating_mul(copies), "the request body")
            .map_err(HttpError::TooLarge);
        let outcome = match (url, held) {
            (Ok(url), Ok(_held)) => {
                match tokio::time::timeout(timeout, self.exchange(req, method, url)).await {
                    Ok(result) => result,
                    Err(_) => Err(HttpError::Timeout),
                }
            }
            (Err(error), _) | (_, Err(error)) => Err(error),
        };
        if let Some(in_flight) = in_flight {
            in_flight.done();
        }
        (outcome, name)
    }

    /// Send a request, following redirects when asked.
    async fn exchange(
        &mut self,
        req: &wit::Request,
        method: &str,
        mut url: Url,
    ) -> Result<Exchange, HttpError> {
        let mut method = Method::from_bytes(method.as_bytes())
            .map_err(|_| HttpError::InvalidUrl(format!("{method:?} is not a valid HTTP method")))?;
        let mut body = Bytes::from(req.body.clone());
        let mut headers = latin1::guest_headers(&req.headers)?;
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, HeaderValue::from_static("horde/0.1"));
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(decode::ACCEPT_ENCODING),
            );
        }
        let max_redirects = self.run.limits.max_redirects;
        let mut redirects = 0;
        loop {
            let response = self
                .send_once(&method, &url, &headers, body.clone(), req)
                .await?;
            let status = response.status;
            let location = response.location.clone();
            if !(req.follow_redirects && status.is_redirection()) || location.is_none() {
                return Ok(Exchange {
                    status,
                    headers: response.headers,
                    body: response.body,
                    body_length: response.body_length,
                    url,
                });
            }
            redirects += 1;
            if redirects > max_redirects {
                return Err(HttpError::Protocol(format!(
                    "more than {max_redirects} redirects, the last to {url}"
                )));
            }
            let location = location.unwrap_or_default();
            let next = url.join(&location).map_err(|e| {
                HttpError::Protocol(format!("redirect to an invalid location {location:?}: {e}"))
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(HttpError::Protocol(format!(
                    "redirect to unsupported URL {next}"
                )));
            }
            redirect::rewrite(status, &url, &next, &mut method, &mut headers, &mut body);
            url = next;
        }
    }

    async fn send_once(
        &mut self,
        method: &Method,
        url: &Url,
        headers: &http::HeaderMap,
        body: Bytes,
        req: &wit::Request,
    ) -> Result<RawResponse, HttpError> {
        let cookie_jar = req.cookie_jar;
        let mut cookie = None;
        if let Some(cookies) = self.http.cookies.as_ref().filter(|_| cookie_jar) {
            let pairs: Vec<String> = cookies
                .get_request_values(url)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            if !pairs.is_empty() {
                let value = latin1::header_value(&pairs.join("; ")).map_err(|_| {
                    HttpError::Protocol("a stored cookie is not a valid header".into())
                })?;
                cookie = Some(value);
            }
        }
        // A fresh connection is used once more if a reused one turns out closed.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut position = self.http.position(url);
            // A connection the server closed (HTTP/1.0, `Connection: close`),
            // or idle for about as long as the server said it keeps one, is not reused.
            if let Some(index) = position
                && (self.http.connections[index].connection.is_closed()
                    || self.http.connections[index]
                        .idle
                        .is_some_and(|idle| !idle.reusable()))
            {
                self.http.connections.swap_remove(index);
                position = None;
            }
            let reused = position.is_some();
            let index = match position {
                Some(index) => index,
                None => {
                    let origin = origin_of(url)?;
                    // Boxed: the handshake's state would otherwise make every
                    // request's future larger (and slower to move).
                    let connection = Box::pin(connect(&self.run, &origin)).await?;
                    self.http.connections.push(OpenConnection {
                        origin,
                        connection,
                        host_header: host_header_value(url)?,
                        idle: None,
                    });
                    self.http.connections.len() - 1
                }
            };
            let open = &mut self.http.connections[index];
            open.idle = None;
            let is_h2 = open.connection.is_h2();
            let received_before = open.connection.received.get();
            let uri: Uri = if is_h2 {
                url.as_str().parse()
            } else {
                url[url::Position::BeforePath..url::Position::AfterQuery].parse()
            }
            .map_err(|e| HttpError::InvalidUrl(format!("{url}: {e}")))?;
            let mut request_headers = headers.clone();
            if let Some(cookie) = &cookie {
                request_headers.insert(header::COOKIE, cookie.clone());
            }
            if !is_h2 && !request_headers.contains_key(header::HOST) {
                request_headers.insert(header::HOST, open.host_header.clone());
            }
            let mut built = Request::new(Full::new(body.clone()));
            *built.method_mut() = method.clone();
            *built.uri_mut() = uri;
            *built.headers_mut() = request_headers;
            let sent = match &mut open.connection.sender {
                Sender::H1(sender) => match sender.ready().await {
                    Ok(()) => sender.send_request(built).await,
                    Err(e) => Err(e),
                },
                Sender::H2(sender) => match sender.ready().await {
                    Ok(()) => sender.send_request(built).await,
                    Err(e) => Err(e),
                },
            };
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    let answered =
                        self.http.connections[index].connection.received.get() != received_before;
                    self.http.connections.swap_remove(index);
                    if reused && attempts == 1 && !answered && may_resend(&e, method) {
                        continue;
                    }
                    return Err(HttpError::Protocol(error_chain(&e)));
                }
            };
            let memory = self.memory().clone();
            let keep = if req.discard_body {
                Keep::Count
            } else {
                Keep::Whole {
                    max: self.run.limits.max_body_bytes,
                    memory: &memory,
                }
            };
            let raw = match read_response(response, keep).await {
                Ok(raw) => raw,
                Err(e) => {
                    self.http.connections.swap_remove(index);
                    return Err(e);
                }
            };
            self.http.connections[index].idle = Some(raw.idle);
            if cookie_jar && !raw.set_cookies.is_empty() {
                let jar = self.http.cookies.get_or_insert_with(Default::default);
                let cookies = raw
                    .set_cookies
                    .iter()
                    .filter_map(|c| RawCookie::parse(c.clone()).ok());
                jar.store_response_cookies(cookies, url);
            }
            return Ok(raw);
        }
    }
}

/// The `Host` header for `url`: its host, and its port unless the scheme's default.
fn host_header_value(url: &Url) -> Result<HeaderValue, HttpError> {
    let host = url.host_str().unwrap_or_default();
    let value = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    HeaderValue::from_str(&value).map_err(|_| HttpError::InvalidUrl(format!("bad host in {url}")))
}

/// Open a policy-checked stream to the origin, then handshake HTTP.
pub(crate) async fn connect(
    run: &crate::vu::RunContext,
    origin: &Origin,
) -> Result<Connection, HttpError> {
    let stream = open_stream(run, &origin.host, origin.port, origin.tls).await?;
    let h2 = if origin.tls {
        stream.alpn_h2()
    } else {
        run.http.http2_prior_knowledge
    };
    let received = Received::default();
    let io = TokioIo::new(received.counting(stream));
    let sender = handshake(io, h2).await?;
    Ok(Connection { sender, received })
}

async fn handshake<T>(io: T, h2: bool) -> Result<Sender, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| HttpError::Protocol(format!("HTTP/2 handshake: {}", error_chain(&e))))?;
        tokio::spawn(connection);
        Ok(Sender::H2(sender))
    } else {
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|e| HttpError::Protocol(format!("HTTP/1.1 handshake: {}", error_chain(&e))))?;
        tokio::spawn(connection);
        Ok(Sender::H1(sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_need_a_host() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            resolve_url(Some(&base), "/item/1?x=2").unwrap().as_str(),
            "http://127.0.0.1:8080/item/1?x=2"
        );
        assert!(matches!(
            resolve_url(None, "/x"),
            Err(HttpError::InvalidUrl(_))
        ));
        // A base path is kept, as Locust keeps it.
        for base in ["http://h:1/api", "http://h:1/api/"] {
            let base = Url::parse(base).unwrap();
            for raw in ["/users?x=1", "users?x=1"] {
                assert_eq!(
                    resolve_url(Some(&base), raw).unwrap().as_str(),
                    "http://h:1/api/users?x=1",
                    "{base} + {raw}"
                );
            }
            assert_eq!(
                resolve_url(Some(&base), "//other:2/x").unwrap().as_str(),
                "http://other:2/x"
            );
        }
        assert!(matches!(
            resolve_url(Some(&base), "ftp://h/x"),
            Err(HttpError::InvalidUrl(_))
        ));
    }

    #[test]
    fn statuses_are_judged() {
        assert!(status_expected(StatusCode::OK, &[]));
        assert!(status_expected(StatusCode::FOUND, &[]));
        assert!(!status_expected(StatusCode::NOT_FOUND, &[]));
        assert!(status_expected(StatusCode::NOT_FOUND, &[404]));
        assert!(!status_expected(StatusCode::OK, &[404]));
    }
}
