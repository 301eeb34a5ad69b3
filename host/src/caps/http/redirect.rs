//! How a request changes when a redirect is followed, by the Fetch
//! standard's HTTP-redirect fetch (which RFC 9110 §15.4 leaves to clients):
//! 301 and 302 turn POST into GET, 303 turns anything but GET and HEAD into
//! GET, 307 and 308 keep the method and body; a request that becomes GET
//! loses its body and the headers that describe it; and credentials the
//! scenario set (`Authorization`, `Proxy-Authorization`, `Cookie`) are not
//! sent to another origin, as `requests` and browsers drop them (the cookie
//! jar still sends that origin's own cookies).

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use url::Url;

/// Headers that describe a request body (Fetch: request-body-header names).
const BODY_HEADERS: [header::HeaderName; 5] = [
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
];

/// Headers that carry credentials meant for one origin.
const CREDENTIAL_HEADERS: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Rewrite the request for following a `status` redirect from `from` to `to`.
pub(super) fn rewrite(
    status: StatusCode,
    from: &Url,
    to: &Url,
    method: &mut Method,
    headers: &mut HeaderMap,
    body: &mut Bytes,
) {
    let to_get = match status {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => *method == Method::POST,
        StatusCode::SEE_OTHER => *method != Method::GET && *method != Method::HEAD,
        _ => false,
    };
    if to_get {
        *method = Method::GET;
        *body = Bytes::new();
        for name in &BODY_HEADERS {
            headers.remove(name);
        }
    }
    if from.origin() != to.origin() {
        for name in &CREDENTIAL_HEADERS {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn follow(status: u16, method: Method, to: &str) -> (Method, HeaderMap, Bytes) {
        let from = Url::parse("http://a.test:8080/start").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let mut method = method;
        let mut body = Bytes::from_static(b"payload");
        rewrite(
            StatusCode::from_u16(status).unwrap(),
            &from,
            &Url::parse(to).unwrap(),
            &mut method,
            &mut headers,
            &mut body,
        );
        (method, headers, body)
    }

    #[test]
    fn methods_and_bodies_follow_the_fetch_standard() {
        let same = "http://a.test:8080/next";
        for status in [301, 302] {
            let (method, headers, body) = follow(status, Method::POST, same);
            assert_eq!((method, body.len()), (Method::GET, 0), "{status}");
            assert!(!headers.contains_key(header::CONTENT_TYPE));
            assert_eq!(follow(status, Method::PUT, same).0, Method::PUT, "{status}");
        }
        assert_eq!(follow(303, Method::PUT, same).0, Method::GET);
        assert_eq!(follow(303, Method::HEAD, same).0, Method::HEAD);
        for status in [307, 308] {
            let (method, headers, body) = follow(status, Method::POST, same);
            assert_eq!((method, &body[..]), (Method::POST, &b"payload"[..]));
            assert!(headers.contains_key(header::CONTENT_TYPE));
        }
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        for same in ["http://a.test:8080/next", "/next"] {
            let to = Url::parse("http://a.test:8080/start")
                .unwrap()
                .join(same)
                .unwrap();
            let (_, headers, _) = follow(302, Method::GET, to.as_str());
            assert!(headers.contains_key(header::AUTHORIZATION), "{same}");
        }
        for other in [
            "http://b.test:8080/",
            "http://a.test:8081/",
            "https://a.test:8080/",
        ] {
            let (_, headers, _) = follow(302, Method::GET, other);
            assert!(!headers.contains_key(header::AUTHORIZATION), "{other}");
            assert!(headers.contains_key(header::ACCEPT), "{other}");
        }
    }
}
