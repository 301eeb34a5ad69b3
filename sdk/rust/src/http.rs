//! HTTP requests with a builder: `http::get("/item/1").name("/item/[id]").send()`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::horde::scenario::http as wit;
use crate::scenario::TaskError;

pub use wit::Error;


/// A request being built.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: wit::Request,
    /// Tags for this request only, added to the VU's.
    tags: Vec<(String, String)>,
}

/// Start a request with any method.
pub fn request(method: &str, url: impl Into<String>) -> RequestBuilder {
    RequestBuilder {
        request: wit::Request {
            method: method.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            name: None,
            timeout_ms: None,
            expect_status: Vec::new(),
            follow_redirects: true,
            cookie_jar: true,
            record_event: true,
            discard_body: false,
        },
        tags: Vec::new(),
    }
}

/// GET `url` (absolute, or a path relative to `--host`).
pub fn get(url: impl Into<String>) -> RequestBuilder {
    request("GET", url)
}
/// POST to `url`.
pub fn post(url: impl Into<String>) -> RequestBuilder {
    request("POST", url)
}
/// PUT to `url`.
pub fn put(url: impl Into<String>) -> RequestBuilder {
    request("PUT", url)
}
/// PATCH `url`.
pub fn patch(url: impl Into<String>) -> RequestBuilder {
    request("PATCH", url)
}
/// DELETE `url`.
pub fn delete(url: impl Into<String>) -> RequestBuilder {
    request("DELETE", url)
}
/// HEAD `url`.
pub fn head(url: impl Into<String>) -> RequestBuilder {
    request("HEAD", url)
}

impl RequestBuilder {
    /// Group statistics under this name instead of the URL (e.g. "/item/[id]").
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.request.name = Some(name.into());
        self
    }

    /// Tag this request (added to the VU's tags for this request only):
    /// thresholds and `--breakdown` select on it.
    pub fn tag(mut self, key: &str, value: impl Into<String>) -> Self {
        self.tags.push((key.to_string(), value.into()));
        self
    }

    /// Add a header. A value whose characters are all at most U+00FF is
    /// sent one byte each (ISO-8859-1), so a value read from a response goes
    /// back unchanged; one with a character beyond is sent as UTF-8.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request.headers.push(wit::Header { name: name.to_string(), value: value.into() });
        self
    }

    /// Add `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Send raw bytes as the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Send `value` as a JSON body with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// Give up after this many milliseconds.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.request.timeout_ms = Some(ms);
        self
    }

    /// Count these statuses as success (others, even 2xx, are failures).
    pub fn expect_status(mut self, statuses: &[u16]) -> Self {
        self.request.expect_status = statuses.to_vec();
        self
    }

    /// Do not follow redirects; the 3xx response is returned.
    pub fn no_redirects(mut self) -> Self {
        self.request.follow_redirects = false;
        self
    }

    /// Read the response body to its end without keeping it (k6's
    /// `responseType: "none"`): `bytes()` is empty, and the event records
    /// the body's length. For downloads of any size; `--max-response-body`
    /// (32 MiB by default) bounds only bodies that are kept.
    pub fn discard_body(mut self) -> Self {
        self.request.discard_body = true;
        self
    }

    /// Send the request. The host records it whatever the outcome.
    pub fn send(self) -> Result<Response, wit::Error> {
        if self.tags.is_empty() {
            return wit::send(&self.request).map(Response);
        }
        let tags: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::tags::with(&tags, || wit::send(&self.request).map(Response))
    }
}

/// A received response.
#[derive(Debug, Clone)]
pub struct Response(pub wit::Response);

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// The body bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0.body
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }

    /// Parse the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_slice(&self.0.body)
            .map_err(|e| TaskError(format!("response from {} is not the JSON expected: {e}", self.0.url)))
    }

    /// The first header with this name (case-insensitive). Values are
    /// ISO-8859-1, one character per byte the server sent (as Python's
    /// `http.client` reads them): `Caf\xe9` is "Café", and UTF-8 text comes
    /// one character per byte; [`Response::header_bytes`] gives the bytes.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header with this name, as the bytes the server sent
    /// (`String::from_utf8(..)` reads a UTF-8 value).
    pub fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        // Each character of a value is one byte, U+0000..=U+00FF.
        self.header(name).map(|value| value.chars().map(|c| c as u8).collect())
    }

    /// Every header as (name, value), in the order received; names are
    /// lower-case, values ISO-8859-1 (see [`Response::header`]). Lines end
    /// at "\n" only, never inside a value.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .headers
            .lines()
            .filter_map(|line| line.split_once(": "))
    }

    /// Fail the task unless the status is `expected`.
    pub fn ensure_status(self, expected: u16) -> Result<Self, TaskError> {
        if self.0.status == expected {
            Ok(self)
        } else {
            Err(TaskError(format!(
                "expected status {expected} from {}, got {}",
                self.0.url, self.0.status
            )))
        }
    }
}
