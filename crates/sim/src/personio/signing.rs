//! Signing webhook deliveries the way the service assumes Personio signs them (HMAC-SHA256
//! over `"{timestamp}.{body}"`, hex, in two headers). The service's
//! `personio::assumed` module holds the verifying side and the reasons; the two are
//! checked against each other by the integration tests.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signing time, Unix seconds (assumed).
pub const TIMESTAMP_HEADER: &str = "x-personio-timestamp";

/// Header carrying the HMAC-SHA256 signature, hex (assumed).
pub const SIGNATURE_HEADER: &str = "x-personio-signature";

/// The signature header value for `body` signed at `timestamp` (Unix seconds): lowercase
/// hex of HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
