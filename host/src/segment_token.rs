//! The shared secret of a run's segments and its aggregator (`HORDE_TOKEN`
//! or `--token-file`): every record a segment POSTs carries an HMAC-SHA256
//! of its body (RFC 2104) under the secret, and every answer of the
//! aggregator carries one over the request's signature and the answer, so
//! neither a stranger who reaches the aggregator nor one who answers in its
//! place can forge a result, close a segment or stop one. HMACs are made and
//! checked (in constant time) with `ring`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ring::hmac;

/// The header that carries a signature (lowercase hex of the HMAC).
pub const SIGNATURE_HEADER: &str = "x-horde-signature";
/// The variable that holds the token.
pub const TOKEN_VARIABLE: &str = "HORDE_TOKEN";
/// The shortest token taken.
const MIN_LEN: usize = 16;

/// A run's segment token, as a key ready to sign and verify.
#[derive(Clone)]
pub struct SegmentToken {
    key: hmac::Key,
}

impl std::fmt::Debug for SegmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself.
        f.write_str("SegmentToken(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl SegmentToken {
    /// A token from its text (trailing newline and spaces dropped); at
    /// least 16 characters.
    pub fn new(text: &str, source: &str) -> Result<SegmentToken> {
        let text = text.trim();
        if text.len() < MIN_LEN {
            bail!(
                "{source}: the segment token must be at least {MIN_LEN} characters; make one with \
                 `head -c 24 /dev/urandom | base64`"
            );
        }
        Ok(SegmentToken {
            key: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()),
        })
    }

    /// The token from `--token-file PATH`, else from `HORDE_TOKEN`; `what`
    /// names the command for the message when neither is set.
    pub fn from_file_or_env(file: Option<&Path>, what: &str) -> Result<SegmentToken> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "--token-file {}: cannot read the segment token",
                    path.display()
                )
            })?;
            return SegmentToken::new(&text, &format!("--token-file {}", path.display()));
        }
        match std::env::var(TOKEN_VARIABLE) {
            Ok(text) => SegmentToken::new(&text, TOKEN_VARIABLE),
            Err(_) => bail!(
                "{what} needs the run's segment token, the same for the aggregator and every \
                 segment: set {TOKEN_VARIABLE} (e.g. export {TOKEN_VARIABLE}=$(head -c 24 \
                 /dev/urandom | base64)) or give --token-file PATH; it is never put in a URL"
            ),
        }
    }

    /// The signature of a record's body, as the header carries it.
    pub fn sign(&self, body: &[u8]) -> String {
        hex(hmac::sign(&self.key, body).as_ref())
    }

    /// True when `signature` (the header's text) signs `body`.
    pub fn verify(&self, body: &[u8], signature: Option<&str>) -> bool {
        signature
            .and_then(unhex)
            .is_some_and(|tag| hmac::verify(&self.key, body, &tag).is_ok())
    }

    fn answer_message(request_signature: &str, answer: &[u8]) -> Vec<u8> {
        let mut message = b"answer\n".to_vec();
        message.extend_from_slice(request_signature.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(answer);
        message
    }

    /// The signature of an answer to the request signed `request_signature`
    /// (so an answer is good for that request only).
    pub fn sign_answer(&self, request_signature: &str, answer: &[u8]) -> String {
        self.sign(&Self::answer_message(request_signature, answer))
    }

    /// True when `signature` signs `answer` to the request signed
    /// `request_signature`.
    pub fn verify_answer(
        &self,
        request_signature: &str,
        answer: &[u8],
        signature: Option<&str>,
    ) -> bool {
        self.verify(&Self::answer_message(request_signature, answer), signature)
    }
}

/// A fresh random session key (128 bits, hex), handed to a segment when it
/// registers: only that segment's records carry it.
pub fn session_key() -> String {
    let mut bytes = [0u8; 16];
    // The system's generator; on the rare machine without one, a key from
    // fastrand still differs per segment (the HMAC guards the records).
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_signed_with_the_token_verifies_and_nothing_else_does() {
        let token = SegmentToken::new("0123456789abcdef-secret", "test").unwrap();
        let other = SegmentToken::new("another-token-of-the-kind", "test").unwrap();
        let body = br#"{"id":1,"seq":2}"#;
        let signature = token.sign(body);
        assert!(token.verify(body, Some(&signature)));
        assert!(!token.verify(br#"{"id":1,"seq":3}"#, Some(&signature)));
        assert!(!other.verify(body, Some(&signature)));
        assert!(!token.verify(body, None));
        assert!(!token.verify(body, Some("zz")));
        let answer = token.sign_answer(&signature, b"{}");
        assert!(token.verify_answer(&signature, b"{}", Some(&answer)));
        assert!(!token.verify_answer(&token.sign(b"x"), b"{}", Some(&answer)));
        assert_ne!(session_key(), session_key());
    }

    #[test]
    fn a_short_token_is_refused_with_how_to_make_one() {
        let error = SegmentToken::new("short\n", "HORDE_TOKEN").unwrap_err();
        assert!(format!("{error}").contains("at least 16"), "{error}");
        assert_eq!(
            format!("{:?}", SegmentToken::new(&"x".repeat(20), "t").unwrap()),
            "SegmentToken(..)"
        );
    }
}
