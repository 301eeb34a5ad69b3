//! Content codings of response bodies (RFC 9110 §8.4.1): `gzip`, `deflate`,
//! `br` and `zstd` are decoded before the scenario sees the body, as
//! `requests` and browsers' `fetch()` do, within the body size limit (a
//! small body that inflates past it is refused, not buffered). Unknown
//! codings are left as they are (as `requests` leaves them).

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use crate::bindings::http::Error as HttpError;

/// The `Accept-Encoding` sent when the scenario sets none (what browsers send).
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// The codings to undo, in the order they are undone (the last applied
/// first), up to the first one Horde does not know (it and the ones
/// applied before it stay, as `requests` leaves an unknown coding).
pub(crate) fn codings(headers: &HeaderMap) -> Vec<String> {
    let mut named: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    named.reverse();
    let known = named
        .iter()
        .take_while(|coding| {
            matches!(
                coding.as_str(),
                "gzip" | "x-gzip" | "deflate" | "br" | "zstd"
            )
        })
        .count();
    named.truncate(known);
    named
}

/// The `Content-Encoding` that describes a body once [`decode`] has undone
/// what it can: None when it undoes nothing (the headers stand as they
/// came), else the codings left (empty: none, and the header goes). A
/// decoded body's `Content-Length` no longer holds either.
pub(crate) fn left_after_decoding(headers: &HeaderMap) -> Option<String> {
    let undone = codings(headers).len();
    if undone == 0 {
        return None;
    }
    let named: Vec<&str> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
        .collect();
    Some(named[..named.len() - undone].join(", "))
}

/// A reader of `coded` with `codings` (from [`codings`]) undone.
pub(crate) fn decoder<'a>(
    codings: &[String],
    coded: Box<dyn Read + Send + 'a>,
) -> Result<Box<dyn Read + Send + 'a>, HttpError> {
    let mut reader = coded;
    for coding in codings {
        reader = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            "deflate" => {
                // RFC 9110's deflate is zlib-wrapped; some servers send it raw.
                let mut buffered = BufReader::new(reader);
                let start = buffered.fill_buf().map_err(|e| undecodable(coding, &e))?;
                if is_zlib_header(start) {
                    Box::new(flate2::read::ZlibDecoder::new(buffered))
                } else {
                    Box::new(flate2::read::DeflateDecoder::new(buffered))
                }
            }
            "br" => Box::new(brotli_decompressor::Decompressor::new(reader, 8192)),
            "zstd" => {
                // The window is checked before ruzstd allocates it.
                let mut header = Vec::with_capacity(ZSTD_HEADER_MAX);
                (&mut reader)
                    .take(ZSTD_HEADER_MAX as u64)
                    .read_to_end(&mut header)
                    .map_err(|e| undecodable(coding, &e))?;
                if let Some(window) = zstd_window(&header)
                    && window > MAX_ZSTD_WINDOW
                {
                    return Err(HttpError::TooLarge(format!(
                        "the zstd body asks for a {} MiB window; HTTP clients accept at most 8 \
                         MiB (RFC 9659 §3)",
                        window.div_ceil(1 << 20)
                    )));
                }
                let reader = std::io::Cursor::new(header).chain(reader);
                Box::new(
                    ruzstd::decoding::StreamingDecoder::new(reader)
                        .map_err(|e| HttpError::Protocol(format!("decoding the zstd body: {e}")))?,
                )
            }
            other => unreachable!("codings() keeps known codings only, not {other}"),
        };
    }
    Ok(reader)
}

/// The largest zstd window an HTTP client must accept, and may refuse past
/// (RFC 9659 §3): 8 MiB. Decoding holds a window in memory.
const MAX_ZSTD_WINDOW: u64 = 8 << 20;
/// Longest zstd frame header (RFC 8878 §3.1.1): magic, descriptor, window
/// descriptor, dictionary ID, content size.
const ZSTD_HEADER_MAX: usize = 4 + 1 + 1 + 4 + 8;

/// The window size a zstd frame header declares (RFC 8878 §3.1.1.1.2), or
/// None when `header` is not a whole zstd frame header (the decoder then
/// reports what is wrong).
fn zstd_window(header: &[u8]) -> Option<u64> {
    let (magic, rest) = header.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*magic) != 0xFD2F_B528 {
        return None;
    }
    let (&descriptor, rest) = rest.split_first()?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let window_descriptor = *rest.first()?;
        let base = 1u64 << (10 + u64::from(window_descriptor >> 3));
        return Some(base + (base / 8) * u64::from(window_descriptor & 7));
    }
    // A single segment's window is its content size.
    let dictionary_bytes = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let size_bytes = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
    let field = rest.get(dictionary_bytes..dictionary_bytes + size_bytes)?;
    let mut value = [0u8; 8];
    value[..size_bytes].copy_from_slice(field);
    let size = u64::from_le_bytes(value);
    Some(if size_bytes == 2 { size + 256 } else { size })
}

/// A zlib stream's first two bytes (RFC 1950 §2.2): method 8 (deflate) and
/// a header checksum that is a multiple of 31.
fn is_zlib_header(start: &[u8]) -> bool {
    match start {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => true,
    }
}

fn undecodable(coding: &str, error: &std::io::Error) -> HttpError {
    HttpError::Protocol(format!("decoding the {coding} body: {error}"))
}

/// `body` with the codings named in `headers` undone, at most `max` bytes.
pub fn decode(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, HttpError> {
    let codings = codings(headers);
    if body.is_empty() || codings.is_empty() {
        return Ok(body);
    }
    let reader = decoder(&codings, Box::new(&body[..]))?;
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| undecodable(&codings.join(", "), &e))?;
    if out.len() > max {
        return Err(HttpError::TooLarge(format!(
            "response body over {max} bytes once decoded ({}; --max-response-body): raise the \
             limit, or have the request discard its body",
            codings.join(", ")
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use http::HeaderValue;

    use super::*;

    fn headers(coding: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_str(coding).unwrap());
        headers
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn codings_are_undone_in_order() {
        let json = br#"{"items":[1,2,3]}"#;
        let body = Bytes::from(gzip(json));
        assert_eq!(decode(&headers("gzip"), body, 1000).unwrap(), &json[..]);
        let twice = Bytes::from(gzip(&gzip(json)));
        assert_eq!(
            decode(&headers("gzip, gzip"), twice, 1000).unwrap(),
            &json[..]
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(json).unwrap();
        let zlib = Bytes::from(zlib.finish().unwrap());
        assert_eq!(decode(&headers("deflate"), zlib, 1000).unwrap(), &json[..]);
        let plain = Bytes::from_static(b"as is");
        assert_eq!(
            decode(&headers("compress"), plain.clone(), 1000).unwrap(),
            plain
        );
        assert_eq!(
            decode(&HeaderMap::new(), plain.clone(), 1000).unwrap(),
            plain
        );
    }

    #[test]
    fn brotli_and_zstd_bodies_are_decoded() {
        let json = br#"{"items":[1,2,3]}"#;
        let zstd = ruzstd::encoding::compress_to_vec(
            &json[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(
            decode(&headers("zstd"), Bytes::from(zstd), 1000).unwrap(),
            &json[..]
        );
        let mut br = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            writer.write_all(json).unwrap();
        }
        assert_eq!(
            decode(&headers("br"), Bytes::from(br), 1000).unwrap(),
            &json[..]
        );
    }

    #[test]
    fn headers_describe_what_is_left_coded() {
        assert_eq!(left_after_decoding(&headers("gzip")).as_deref(), Some(""));
        assert_eq!(
            left_after_decoding(&headers("foo, gzip")).as_deref(),
            Some("foo")
        );
        assert_eq!(left_after_decoding(&headers("gzip, foo")), None);
        assert_eq!(left_after_decoding(&HeaderMap::new()), None);
    }

    #[test]
    fn a_zstd_window_over_8_mib_is_refused() {
        // Magic, descriptor (no single segment), window descriptor 2^(10+31).
        let mut huge = 0xFD2F_B528u32.to_le_bytes().to_vec();
        huge.extend([0x00, 31 << 3, 0, 0, 0, 0]);
        assert_eq!(zstd_window(&huge), Some(1 << 41));
        assert!(matches!(
            decode(&headers("zstd"), Bytes::from(huge), 1000),
            Err(HttpError::TooLarge(m)) if m.contains("RFC 9659")
        ));
        let small = ruzstd::encoding::compress_to_vec(
            &[7u8; 1000][..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert!(zstd_window(&small).is_some_and(|w| w <= MAX_ZSTD_WINDOW));
    }

    #[test]
    fn a_body_that_inflates_past_the_limit_is_refused() {
        let bomb = Bytes::from(gzip(&vec![0u8; 1 << 20]));
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode(&headers("gzip"), bomb, 64 * 1024),
            Err(HttpError::TooLarge(_))
        ));
        assert!(matches!(
            decode(&headers("gzip"), Bytes::from_static(b"not gzip"), 1000),
            Err(HttpError::Protocol(_))
        ));
    }
}
