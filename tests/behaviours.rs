//! An HTTP/1.1 server on loopback that behaves the way real servers do at
//! the edges the HTTP tests check: coded bodies, large downloads, a keep-alive
//! connection closed under the next request, an advertised idle timeout. It
//! speaks HTTP over a raw socket so each edge is exact (no library would
//! close a connection under a request on purpose).
//!
//! Paths (any method):
//! - `/coded/{gzip,deflate,br,zstd}`: a JSON body ([`CODED_JSON`]) with that content coding.
//! - `/bytes?mb=N` (`&coding=gzip`): N MiB of `x`, with a `Content-Length`.
//! - `/race...`: answered on a fresh connection; on a connection that
//!   already carried a request it is read and the connection closed without
//!   an answer, as a server's idle close racing a new request looks.
//! - `/partial`: answered on a fresh connection; on a reused one, half a
//!   status line is sent and the connection closed (a response was begun).
//! - `/advertised`: answered with `Keep-Alive: timeout=1`; the connection
//!   is kept open (so only the client's own rule keeps it from reuse).
//! - `/latin1`: header values with bytes outside ASCII, as streaming and
//!   legacy servers send them ([`LATIN1_HEADERS`]).
//! - anything else: `ok`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The JSON every `/coded/...` path answers, before coding.
pub const CODED_JSON: &str = r#"{"items":[1,2,3,4,5,6,7,8,9,10],"name":"coded"}"#;

/// The header lines `/latin1` answers with: an ISO-8859-1 byte (0xE9, as
/// in an icy-name header), the UTF-8 bytes of a value holding U+2028, and a
/// plain header after them. Clients read them as ISO-8859-1, as
/// `http.client` does: "Café de Paris" and "Intro\u{e2}\u{80}\u{a8}Part two".
pub const LATIN1_HEADERS: &[u8] =
    b"x-station: Caf\xe9 de Paris\r\nx-title: Intro\xe2\x80\xa8Part two\r\nx-after: 1\r\n";

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections that carried a request (a reachability probe carries none).
    pub connections: AtomicU64,
    /// Requests answered, as `METHOD path` lines.
    pub answered: Mutex<Vec<String>>,
    /// Requests read and left unanswered (the connection closed under them).
    pub unanswered: Mutex<Vec<String>>,
}

/// The running server; stops when dropped.
pub struct BehavioursServer {
    pub address: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BehavioursServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BehavioursServer {
    pub async fn start() -> BehavioursServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        BehavioursServer {
            address,
            seen,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn answered(&self) -> Vec<String> {
        self.seen.answered.lock().unwrap().clone()
    }

    pub fn unanswered(&self) -> Vec<String> {
        self.seen.unanswered.lock().unwrap().clone()
    }

    pub fn connections(&self) -> u64 {
        self.seen.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut socket: TcpStream, seen: Arc<Seen>) {
    let mut buffered = Vec::new();
    let mut served_here = 0u32;
    loop {
        let Some((method, target)) = read_request(&mut socket, &mut buffered).await else {
            return;
        };
        if served_here == 0 {
            seen.connections.fetch_add(1, Ordering::SeqCst);
        }
        let line = format!("{method} {target}");
        if target.starts_with("/race") && served_here > 0 {
            seen.unanswered.lock().unwrap().push(line);
            return;
        }
        if target.starts_with("/partial") && served_here > 0 {
            let _ = socket.write_all(b"HTTP/1.1 20").await;
            seen.unanswered.lock().unwrap().push(line);
            return;
        }
        served_here += 1;
        let (headers, body) = answer(&target);
        let mut head =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n", body.len()).into_bytes();
        head.extend_from_slice(&headers);
        head.extend_from_slice(b"\r\n");
        seen.answered.lock().unwrap().push(line);
        if socket.write_all(&head).await.is_err()
            || (method != "HEAD" && socket.write_all(&body).await.is_err())
        {
            return;
        }
    }
}

/// Read one request (head and `Content-Length` body); its method and target.
async fn read_request(socket: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while buffered.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
        }
    }
    buffered.drain(..head_end + length);
    let mut words = head.split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

/// Extra header lines and the body for a request target.
fn answer(target: &str) -> (Vec<u8>, Vec<u8>) {
    let (headers, body) = answer_text(target);
    match headers {
        Some(headers) => (headers.into_bytes(), body),
        None => (LATIN1_HEADERS.to_vec(), body),
    }
}

/// Extra header lines (None: [`LATIN1_HEADERS`]) and the body.
fn answer_text(target: &str) -> (Option<String>, Vec<u8>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(coding) = path.strip_prefix("/coded/") {
        let body = encode(coding, CODED_JSON.as_bytes());
        return (
            Some(format!(
                "content-type: application/json\r\ncontent-encoding: {coding}\r\n"
            )),
            body,
        );
    }
    if path == "/bytes" {
        let parameter = |key: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        };
        let mib: usize = parameter("mb").and_then(|n| n.parse().ok()).unwrap_or(1);
        let plain = vec![b'x'; mib << 20];
        return match parameter("coding") {
            Some(coding) => (
                Some(format!(
                    "content-type: application/octet-stream\r\ncontent-encoding: {coding}\r\n"
                )),
                encode(coding, &plain),
            ),
            None => (
                Some("content-type: application/octet-stream\r\n".into()),
                plain,
            ),
        };
    }
    if path == "/advertised" {
        return (Some("keep-alive: timeout=1\r\n".into()), b"ok".to_vec());
    }
    if path == "/latin1" {
        return (None, b"ok".to_vec());
    }
    (Some(String::new()), b"ok".to_vec())
}

/// `data` coded with `coding` (RFC 9110 §8.4.1; deflate is zlib-wrapped).
pub fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        "zstd" => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        other => panic!("the behaviours server does not code {other}"),
    }
}
