//! Content codings of response bodies (RFC 9110 §8.4.1): `gzip`, `deflate`,
//! `br` and `zstd` are decoded before the scenario sees the body, as
//! `requests` and browsers' `fetch()` do, within the body size limit (a
//! small body that inflates past it is refused, not buffered). Unknown
//! codings are left as they are (as `requests` leaves them).

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use crate::bindings::http::Error as HttpError;

/// The `Accept-Encoding` sent when the scenario sets none (what browsers send).
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// `body` with the codings named in `headers` undone (the last applied
/// first), at most `max` bytes.
pub fn decode(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, HttpError> {
    if body.is_empty() {
        return Ok(body);
    }
    let codings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    let mut body = body;
    for coding in codings.iter().rev() {
        body = match coding.as_str() {
            "gzip" | "x-gzip" => {
                inflate(flate2::read::MultiGzDecoder::new(&body[..]), max, coding)?
            }
            "deflate" => {
                // RFC 9110's deflate is zlib-wrapped; some servers send it raw.
                inflate(flate2::read::ZlibDecoder::new(&body[..]), max, coding).or_else(|_| {
                    inflate(flate2::read::DeflateDecoder::new(&body[..]), max, coding)
                })?
            }
            "br" => inflate(
                brotli_decompressor::Decompressor::new(&body[..], 8192),
                max,
                coding,
            )?,
            "zstd" => {
                let decoder = ruzstd::decoding::StreamingDecoder::new(&body[..])
                    .map_err(|e| HttpError::Protocol(format!("decoding the zstd body: {e}")))?;
                inflate(decoder, max, coding)?
            }
            // Unknown codings reach the scenario as they came.
            _ => return Ok(body),
        };
    }
    Ok(body)
}

fn inflate(reader: impl Read, max: usize, coding: &str) -> Result<Bytes, HttpError> {
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| HttpError::Protocol(format!("decoding the {coding} body: {e}")))?;
    if out.len() > max {
        return Err(HttpError::TooLarge(format!(
            "response body over {max} bytes once decoded ({coding})"
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
