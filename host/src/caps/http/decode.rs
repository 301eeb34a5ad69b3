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

/// Whether every coding `headers` name is one Horde undoes (then the
/// decoded body no longer matches `Content-Encoding` and `Content-Length`).
pub(crate) fn all_undone(headers: &HeaderMap) -> bool {
    let named = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter(|coding| {
            !coding.trim().is_empty() && !coding.trim().eq_ignore_ascii_case("identity")
        })
        .count();
    named > 0 && codings(headers).len() == named
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
            "zstd" => Box::new(
                ruzstd::decoding::StreamingDecoder::new(reader)
                    .map_err(|e| HttpError::Protocol(format!("decoding the zstd body: {e}")))?,
            ),
            other => unreachable!("codings() keeps known codings only, not {other}"),
        };
    }
    Ok(reader)
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
            "response body over {max} bytes once decoded ({})",
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
