//! Responses of the `http` capability, and their bodies: read whole within
//! `--max-response-body` and the VU's memory budget, or counted and
//! discarded as they arrive (a request's `discard-body`: downloads of any
//! size). Either way content codings are undone and the recorded length is
//! the decoded one, as Locust records `len(response.content)`.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use http::header;
use http::{Response, StatusCode};

use super::decode::{self, codings, decode, decoder};
use super::{Idle, latin1};
use crate::bindings::http::Error as HttpError;
use crate::budget::MemoryBudget;
use crate::caps::net::error_chain;

/// Read a whole body: at most `max` bytes as received and once decoded,
/// each byte held in the VU's memory budget while it is read, and each
/// frame within `between_bytes` when given (wasi:http's option; the `http`
/// capability times the whole request instead).
pub(crate) async fn collect(
    body: Incoming,
    headers: &HeaderMap,
    max: usize,
    memory: &Arc<MemoryBudget>,
    between_bytes: Option<Duration>,
) -> Result<Bytes, HttpError> {
    let mut body = std::pin::pin!(body);
    let mut hold = memory.hold();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        let frame = match between_bytes {
            Some(limit) => tokio::time::timeout(limit, body.frame())
                .await
                .map_err(|_| HttpError::Timeout)?,
            None => body.frame().await,
        };
        let Some(frame) = frame else {
            break;
        };
        let Ok(data) = frame.map_err(reading)?.into_data() else {
            continue;
        };
        total += data.len();
        if total > max {
            return Err(too_large(max));
        }
        if !hold.grow(data.len()) {
            return Err(HttpError::TooLarge(format!(
                "the response body ({} MiB so far) does not fit the VU's memory budget \
                 (--max-vu-memory {} MiB, linear memory plus what the host holds for the VU; {} \
                 MiB in use): raise --max-vu-memory, or have the request discard its body",
                total.div_ceil(1 << 20),
                memory.max() >> 20,
                memory.used().div_ceil(1 << 20)
            )));
        }
        chunks.push(data);
    }
    // One chunk (most bodies) is passed on without a copy.
    let whole = if chunks.len() == 1 {
        chunks.pop().unwrap_or_default()
    } else {
        let mut whole = BytesMut::with_capacity(total);
        for chunk in chunks {
            whole.extend_from_slice(&chunk);
        }
        whole.freeze()
    };
    decode(headers, whole, max)
}

/// The failure for a body over `max` bytes; says how to get past it.
fn too_large(max: usize) -> HttpError {
    HttpError::TooLarge(format!(
        "response body over {max} bytes (--max-response-body {}): raise the limit, or have the \
         request discard its body (Rust .discard_body(), Python discard_body=True, JS \
         responseType: 'none') to count a download of any size",
        as_flag_value(max)
    ))
}

/// A size as `--max-response-body` takes it: `16MiB`, else bytes.
fn as_flag_value(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{bytes}B")
    }
}

fn reading(error: hyper::Error) -> HttpError {
    HttpError::Protocol(format!("reading the body: {}", error_chain(&error)))
}

/// Read a body to its end keeping none of it: returns its length once
/// decoded. A coded body is decoded on a blocking thread as it arrives
/// (a bounded channel keeps at most a few frames in memory); if this
/// future is dropped (the request timed out, the VU was cut), the thread
/// stops at its next write, however much the frames it holds inflate to.
pub(crate) async fn count(body: Incoming, headers: &HeaderMap) -> Result<u64, HttpError> {
    let mut body = std::pin::pin!(body);
    let codings = codings(headers);
    if codings.is_empty() {
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(reading)?.into_data() {
                total += data.len() as u64;
            }
        }
        return Ok(total);
    }
    let (frames, received) = tokio::sync::mpsc::channel::<Bytes>(4);
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancelled.clone());
    let decoding = tokio::task::spawn_blocking(move || {
        let mut reader = decoder(
            &codings,
            Box::new(ChannelReader {
                received,
                current: Bytes::new(),
            }),
        )?;
        let mut sink = CountingSink {
            bytes: 0,
            cancelled,
        };
        std::io::copy(&mut reader, &mut sink).map_err(|e| {
            HttpError::Protocol(format!("decoding the {} body: {e}", codings.join(", ")))
        })
    });
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(reading)?.into_data()
            && frames.send(data).await.is_err()
        {
            // The decoder stopped (a malformed body): its result says why.
            break;
        }
    }
    drop(frames);
    decoding
        .await
        .map_err(|e| HttpError::Protocol(format!("decoding the body: {e}")))?
}

/// Sets its flag when dropped: the request no longer waits for the count.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Counts decoded bytes and lets them go; fails once the request is gone.
struct CountingSink {
    bytes: u64,
    cancelled: Arc<AtomicBool>,
}

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the request ended"));
        }
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads the frames sent over a channel, on a blocking thread; the end of
/// the channel is the end of the body.
struct ChannelReader {
    received: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.received.blocking_recv() {
                Some(data) => self.current = data,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A response as the `http` capability hands it on.
pub(super) struct RawResponse {
    pub(super) status: StatusCode,
    pub(super) headers: String,
    pub(super) location: Option<String>,
    pub(super) set_cookies: Vec<String>,
    pub(super) body: Bytes,
    pub(super) body_length: u64,
    pub(super) idle: Idle,
}

/// What to do with a response body.
pub(super) enum Keep<'a> {
    /// Read it whole: at most `max` bytes, held in the VU's budget.
    Whole {
        max: usize,
        memory: &'a std::sync::Arc<crate::budget::MemoryBudget>,
    },
    /// Count it and let it go (the request's `discard-body`).
    Count,
}

/// Read a response's head and body as `keep` says.
pub(super) async fn read_response(
    response: Response<hyper::body::Incoming>,
    keep: Keep<'_>,
) -> Result<RawResponse, HttpError> {
    let (parts, body) = response.into_parts();
    // The scenario gets a decoded body with headers that describe it (as
    // wasi:http gives them): a client library on top, such as urllib3 under
    // `requests`, would otherwise decode it again. A response without a
    // body (HEAD, 204, 304), or a discarded body, keeps its headers.
    let left_coded = match keep {
        Keep::Whole { .. } if !hyper::body::Body::is_end_stream(&body) => {
            decode::left_after_decoding(&parts.headers)
        }
        _ => None,
    };
    let (body, body_length) = match keep {
        Keep::Whole { max, memory } => {
            let body = collect(body, &parts.headers, max, memory, None).await?;
            let length = body.len() as u64;
            (body, length)
        }
        Keep::Count => (Bytes::new(), count(body, &parts.headers).await?),
    };
    let mut headers = String::with_capacity(parts.headers.len() * 32);
    let mut set_cookies = Vec::new();
    for (name, value) in &parts.headers {
        if left_coded.is_some()
            && (name == header::CONTENT_ENCODING || name == header::CONTENT_LENGTH)
        {
            continue;
        }
        // Latin-1, as http.client reads headers: every byte survives.
        let value = latin1::decode(value.as_bytes());
        if name == header::SET_COOKIE {
            set_cookies.push(value.clone().into_owned());
        }
        headers.push_str(name.as_str());
        headers.push_str(": ");
        headers.push_str(&value);
        headers.push('\n');
    }
    if let Some(left) = left_coded.filter(|left| !left.is_empty()) {
        headers.push_str("content-encoding: ");
        headers.push_str(&left);
        headers.push('\n');
    }
    // A redirect target is read as UTF-8, as `requests` re-reads it.
    let location = parts
        .headers
        .get(header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Ok(RawResponse {
        status: parts.status,
        headers,
        location,
        set_cookies,
        body,
        body_length,
        idle: Idle::after(&parts.headers),
    })
}
