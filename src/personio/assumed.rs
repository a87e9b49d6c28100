//! Signed webhook deliveries: a contract Personio has NOT published in the reference this
//! service follows, and that it therefore assumes.
//!
//! `personio-api.md` §7.5 says deliveries carry only a static token (`auth_type` `TOKEN`
//! or `CUSTOM`) and "no HMAC signature, no signature header, no timestamp header and no
//! replay window" (marked documented). Issue 12 reports that Personio's webhook
//! documentation now describes HMAC-SHA256 signing over each delivery's timestamp and
//! body with a secret shared between Personio and the receiver, but names neither the
//! headers nor where the secret comes from. Everything below is therefore *assumed*,
//! kept in this one place so the real names can be adopted by changing it:
//!
//! | What | Assumed | Where used |
//! |---|---|---|
//! | timestamp header | [`TIMESTAMP_HEADER`] `X-Personio-Timestamp`: Unix seconds | [`verify`], the simulator |
//! | signature header | [`SIGNATURE_HEADER`] `X-Personio-Signature`: lowercase hex of the MAC, optionally prefixed `sha256=` | [`verify`], the simulator |
//! | signed message | `"{timestamp}.{raw body}"` | [`sign`], [`verify`] |
//! | algorithm | HMAC-SHA256 (RustCrypto `hmac` + `sha2`) | [`sign`], [`verify`] |
//! | replay window | [`MAX_SKEW`]: 5 minutes either way; each delivery attempt is signed when sent, so a retry days later carries a fresh timestamp | [`verify`], the simulator |
//! | the secret | shown by Personio to the customer's admin, who gives it to the operator: the optional tenant spec field `personio.webhook_signing_secret` (stored sealed, never shown) | the front door |
//!
//! Surviving its absence: a tenant without a signing secret is verified by its token
//! alone, exactly as the reference documents. A tenant with one must present both the
//! token and a valid, fresh signature.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signing time, Unix seconds (assumed).
pub const TIMESTAMP_HEADER: &str = "x-personio-timestamp";

/// Header carrying the HMAC-SHA256 signature, hex (assumed).
pub const SIGNATURE_HEADER: &str = "x-personio-signature";

/// Optional prefix of the signature value (assumed; accepted, not required).
const SIGNATURE_PREFIX: &str = "sha256=";

/// Deliveries signed further than this from now, either way, are refused.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a signed delivery was refused. The messages name the problem and never carry
/// the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No timestamp or no signature header.
    #[error("the delivery is not signed: `{0}` is missing")]
    Missing(&'static str),
    /// The timestamp is not Unix seconds.
    #[error("the signature timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is too far from now.
    #[error(
        "the signature timestamp is {skew_secs} s away from now; more than {} s is refused",
        MAX_SKEW.as_secs()
    )]
    Stale {
        /// Distance from now, seconds.
        skew_secs: u64,
    },
    /// The signature is not 64 hex digits.
    #[error("the signature is not a hex HMAC-SHA256")]
    Malformed,
    /// The signature does not match the body and timestamp.
    #[error("the signature does not match the delivery")]
    Mismatch,
}

/// The MAC of `"{timestamp}.{body}"` under `secret`, before finalisation.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` signed at `timestamp` (Unix seconds): lowercase
/// hex of HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks a delivery's signature headers against `body` and `secret`, at `now` (Unix
/// seconds). The comparison is constant-time (`hmac`'s `verify_slice`).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
    let timestamp = std::str::from_utf8(timestamp)
        .map_err(|_| SignatureError::BadTimestamp)?
        .trim();
    let signed_at: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew_secs = now.abs_diff(signed_at);
    if skew_secs > MAX_SKEW.as_secs() {
        return Err(SignatureError::Stale { skew_secs });
    }
    let signature = std::str::from_utf8(signature)
        .map_err(|_| SignatureError::Malformed)?
        .trim();
    let hex = signature
        .strip_prefix(SIGNATURE_PREFIX)
        .unwrap_or(signature);
    let presented = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    if presented.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    mac(secret, timestamp, body)
        .verify_slice(&presented)
        .map_err(|_| SignatureError::Mismatch)
}

/// Bytes of an even-length hex string (either case), `None` if it is not one.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test";
    const BODY: &[u8] = br#"{"event_name":"person.updated"}"#;
    const NOW: i64 = 1_767_000_000;

    fn check(timestamp: &str, signature: &str) -> Result<(), SignatureError> {
        verify(
            SECRET,
            Some(timestamp.as_bytes()),
            Some(signature.as_bytes()),
            BODY,
            NOW,
        )
    }

    #[test]
    fn a_fresh_valid_signature_is_accepted_with_or_without_prefix() {
        let signature = sign(SECRET, NOW - 10, BODY);
        assert_eq!(signature.len(), 64);
        assert_eq!(check(&(NOW - 10).to_string(), &signature), Ok(()));
        let prefixed = format!("sha256={}", signature.to_uppercase());
        assert_eq!(check(&(NOW - 10).to_string(), &prefixed), Ok(()));
    }

    #[test]
    fn the_signed_message_is_timestamp_dot_body() {
        // Computed independently: Python `hmac.new(key, b'42.' + body, sha256)`.
        assert_eq!(
            sign(SECRET, 42, BODY),
            "1cbd65ad943ea1cc1c85dd87f6bf0711291723a4d3f6df0f1e16c9e4fbedcdc7"
        );
    }

    #[test]
    fn wrong_body_secret_or_timestamp_is_a_mismatch() {
        let signature = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(
                SECRET,
                Some(NOW.to_string().as_bytes()),
                Some(signature.as_bytes()),
                b"{}",
                NOW
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"other",
                Some(NOW.to_string().as_bytes()),
                Some(signature.as_bytes()),
                BODY,
                NOW
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&(NOW - 1).to_string(), &signature),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let old = NOW - 301;
        assert_eq!(
            check(&old.to_string(), &sign(SECRET, old, BODY)),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        let future = NOW + 400;
        assert_eq!(
            check(&future.to_string(), &sign(SECRET, future, BODY)),
            Err(SignatureError::Stale { skew_secs: 400 })
        );
        let edge = NOW - 300;
        assert_eq!(check(&edge.to_string(), &sign(SECRET, edge, BODY)), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let signature = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(SECRET, None, Some(signature.as_bytes()), BODY, NOW),
            Err(SignatureError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify(SECRET, Some(b"1"), None, BODY, NOW),
            Err(SignatureError::Missing(SIGNATURE_HEADER))
        );
        assert_eq!(
            check("yesterday", &signature),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            check(&NOW.to_string(), "zz"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(&NOW.to_string(), "abc"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(&NOW.to_string(), "abcd"),
            Err(SignatureError::Malformed)
        );
        let text = SignatureError::Mismatch.to_string();
        assert!(!text.contains(&signature));
    }
}
