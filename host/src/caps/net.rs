//! Policy-checked connections shared by the network capabilities: resolve,
//! check every address against the grants, connect only to a checked
//! address, then TLS (with ALPN) when asked.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::bindings::http::Error as HttpError;
use crate::vu::RunContext;

/// A connected stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum NetStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl NetStream {
    /// True when TLS negotiated HTTP/2 by ALPN.
    pub fn alpn_h2(&self) -> bool {
        match self {
            NetStream::Plain(_) => false,
            NetStream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetStream::Plain(s) => s.is_write_vectored(),
            NetStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An error with its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// Connect to `host:port` within the run's grants; TLS when `tls`.
pub async fn open_stream(
    run: &RunContext,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<NetStream, HttpError> {
    run.policy
        .check_name(host, port)
        .map_err(|denied| HttpError::Denied(denied.to_string()))?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| HttpError::Dns(format!("{host}: {e}")))?
            .collect(),
    };
    let mut first_denial = None;
    let mut last_error = None;
    let mut stream = None;
    for addr in addrs {
        if let Err(denied) = run.policy.check_resolved(host, addr) {
            first_denial.get_or_insert(denied);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(format!("{addr}: {e}")),
        }
    }
    let stream = match (stream, last_error, first_denial) {
        (Some(stream), _, _) => stream,
        (None, Some(error), _) => return Err(HttpError::Connect(error)),
        (None, None, Some(denied)) => return Err(HttpError::Denied(denied.to_string())),
        (None, None, None) => return Err(HttpError::Dns(format!("{host} has no addresses"))),
    };
    let _ = stream.set_nodelay(true);
    if !tls {
        return Ok(NetStream::Plain(stream));
    }
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| HttpError::InvalidUrl(format!("{host}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(run.http.tls.clone())
        .connect(server_name, stream)
        .await
        .map_err(|e| HttpError::Tls(error_chain(&e)))?;
    Ok(NetStream::Tls(Box::new(tls)))
}
