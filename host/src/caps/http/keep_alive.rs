//! Keep-alive reuse of connections, shared by the `http` capability and
//! wasi:http: when an idle connection is too old to reuse (the server's
//! advertised `Keep-Alive: timeout`), and when a request that failed on a
//! reused connection is sent again on a fresh one (RFC 9112 §9.3.1,
//! RFC 9110 §9.2.2), as browsers and urllib3 do.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use http::header::HeaderName;
use http::{HeaderMap, Method};

/// When a connection last finished a response, and how long its server
/// said it keeps an idle connection open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle {
    since: Instant,
    limit: Option<Duration>,
}

impl Idle {
    /// Idle from now on, with the limit the last response's headers advertise.
    pub(crate) fn after(headers: &HeaderMap) -> Idle {
        Idle {
            since: Instant::now(),
            limit: advertised_limit(headers),
        }
    }

    /// The same terms, idle from now on (the response's body just ended).
    pub(crate) fn restart(self) -> Idle {
        Idle {
            since: Instant::now(),
            ..self
        }
    }

    /// Whether the connection may carry another request: always, unless the
    /// server advertised an idle timeout and the connection has been idle
    /// for most of it. A margin (a quarter of the timeout, at most 1 s)
    /// covers the time between the server's last write, when its timer
    /// starts, and our last read; a server that closes a connection without
    /// advertising its timeout is covered by [`may_resend`].
    pub(crate) fn reusable(&self) -> bool {
        match self.limit {
            None => true,
            Some(limit) => {
                let margin = (limit / 4).min(Duration::from_secs(1));
                self.since.elapsed() < limit.saturating_sub(margin)
            }
        }
    }
}

/// The idle timeout in a `Keep-Alive: timeout=5, max=100` response header
/// (RFC 2068 §19.7.1.1; what Apache, nginx and Node send).
fn advertised_limit(headers: &HeaderMap) -> Option<Duration> {
    let name = HeaderName::from_static("keep-alive");
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|parameter| {
            let (key, value) = parameter.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("timeout")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .map(Duration::from_secs)
        .next()
}

/// Bytes a connection has received: a request that failed while this did
/// not move got no byte of a response.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received(Arc<AtomicU64>);

impl Received {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// `io`, counting what is read from it here.
    pub(crate) fn counting<T>(&self, io: T) -> Counting<T> {
        Counting {
            io,
            received: self.0.clone(),
        }
    }
}

/// A stream that counts the bytes read from it.
pub(crate) struct Counting<T> {
    io: T,
    received: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.received.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Whether a request that failed on a reused connection with no byte of a
/// response (the caller checks with [`Received`]) may be sent once more on a fresh connection: always
/// when hyper had not written it (the connection was found closed), and
/// for idempotent methods (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE) when the connection closed or was reset under it, which is how
/// a server's idle close racing a new request shows (RFC 9112 §9.3.1).
/// Other failures (a malformed response, a timeout) are the server's answer
/// and are not retried.
pub(crate) fn may_resend(error: &hyper::Error, method: &Method) -> bool {
    if error.is_canceled() {
        return true;
    }
    method.is_idempotent()
        && (error.is_closed() || error.is_incomplete_message() || was_reset(error))
}

fn was_reset(error: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("keep-alive", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_advertised_timeout_is_read() {
        assert_eq!(
            advertised_limit(&headers("timeout=5, max=100")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            advertised_limit(&headers("max=100, Timeout = \"2\"")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(advertised_limit(&headers("max=100")), None);
        assert_eq!(advertised_limit(&headers("timeout=soon")), None);
        assert_eq!(advertised_limit(&HeaderMap::new()), None);
    }

    #[test]
    fn an_idle_connection_near_its_timeout_is_not_reused() {
        let fresh = Idle::after(&headers("timeout=5"));
        assert!(fresh.reusable());
        let old = Idle {
            since: Instant::now() - Duration::from_millis(4100),
            limit: Some(Duration::from_secs(5)),
        };
        assert!(
            !old.reusable(),
            "4.1 s idle of 5 s is within the 1 s margin"
        );
        let zero = Idle::after(&headers("timeout=0"));
        assert!(!zero.reusable());
        let unadvertised = Idle {
            since: Instant::now() - Duration::from_secs(3600),
            limit: None,
        };
        assert!(unadvertised.reusable());
    }
}
