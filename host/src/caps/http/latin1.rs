//! Header values as text across the WIT boundary, where they are strings:
//! ISO-8859-1 (Latin-1), one character per byte, as Python's `http.client`
//! (and so `requests` and Locust) and browsers' `fetch` read them. Every
//! byte a server sends survives (RFC 9110 §5.5: bytes 0x80-0xFF are opaque
//! data), and a value read from a response goes back out byte for byte.

use std::borrow::Cow;

use http::header::{HeaderName, InvalidHeaderValue};
use http::{HeaderMap, HeaderValue};

use crate::bindings::http::{Error as HttpError, Header};

/// A header value's bytes as text, one character U+0000..=U+00FF per byte
/// (`b"Caf\xe9"` is "Café"; UTF-8 bytes become one character each, as
/// `http.client` gives them: `value.encode("latin-1").decode("utf-8")`
/// undoes it). Borrowed when the value is ASCII.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Cow::Borrowed(text),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// A guest's header value as bytes: one byte per character when every
/// character is at most U+00FF (what `decode` gives and `http.client`
/// sends), so a value read from a response goes back unchanged; a value
/// with a character beyond U+00FF, which Latin-1 cannot hold, is sent as
/// its UTF-8 bytes (as a Rust `&str` header is).
pub(crate) fn encode(text: &str) -> Cow<'_, [u8]> {
    if text.is_ascii() {
        return Cow::Borrowed(text.as_bytes());
    }
    if text.chars().all(|c| u32::from(c) <= 0xFF) {
        return Cow::Owned(text.chars().map(|c| c as u8).collect());
    }
    Cow::Borrowed(text.as_bytes())
}

/// A guest's header value, encoded by [`encode`]; control characters other
/// than tab are refused, as HTTP refuses them.
pub(crate) fn header_value(text: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    HeaderValue::from_bytes(&encode(text))
}

/// A request's headers as the guest gave them, values encoded by [`encode`].
pub(crate) fn guest_headers(headers: &[Header]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(headers.len() + 2);
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HttpError::InvalidUrl(format!("header name {:?} is not valid", h.name)))?;
        let value = header_value(&h.value).map_err(|_| {
            HttpError::InvalidUrl(format!(
                "header {:?} has an invalid value: a header value may not hold control \
                 characters such as a line break",
                h.name
            ))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_survives_the_round_trip() {
        let all: Vec<u8> = (0u8..=255).collect();
        let text = decode(&all);
        assert_eq!(text.chars().count(), 256);
        assert_eq!(encode(&text).as_ref(), all.as_slice());
        assert_eq!(decode(b"Caf\xe9 de Paris"), "Café de Paris");
        // UTF-8 text comes as one character per byte, the way http.client
        // gives it, and never holds a line break the bytes did not.
        let title = decode("Intro\u{2028}Part two".as_bytes());
        assert_eq!(title, "Intro\u{e2}\u{80}\u{a8}Part two");
        assert!(!title.contains('\u{2028}'));
    }

    #[test]
    fn values_beyond_latin1_are_sent_as_utf8() {
        assert_eq!(encode("plain").as_ref(), b"plain");
        assert_eq!(encode("Café").as_ref(), b"Caf\xe9");
        assert_eq!(encode("東京").as_ref(), "東京".as_bytes());
        assert_eq!(header_value("Café").unwrap().as_bytes(), b"Caf\xe9");
        assert!(header_value("a\nb").is_err());
    }
}
