//! The provider's ID-token signing key (ES256, P-256, made at start), its JWKS, and the
//! compact JWS encoding of ID tokens (RFC 7515, 7517, 7518).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand::Rng;
use serde_json::{Value, json};

/// The one signing algorithm the provider advertises and uses.
pub(crate) const ALG: &str = "ES256";

/// The provider's key pair, plus a foreign one for the bad-signature test knob.
pub(crate) struct Keys {
    /// Key id published in the JWKS and put in every ID token header.
    pub(crate) kid: String,
    signing: SigningKey,
    /// Not in the JWKS: signs ID tokens while the `ForeignKey` fault is set.
    foreign: SigningKey,
}

impl Keys {
    /// Two fresh P-256 keys; the kid is derived from the public key (RFC 7638 style
    /// thumbprint, shortened).
    pub(crate) fn generate() -> Self {
        let signing = random_key();
        let foreign = random_key();
        let jwk = public_jwk(signing.verifying_key(), "");
        let thumbprint_input = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        );
        let digest = <sha2::Sha256 as sha2::Digest>::digest(thumbprint_input.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        Self {
            kid,
            signing,
            foreign,
        }
    }

    /// `{"keys": [the public key]}`.
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [public_jwk(self.signing.verifying_key(), &self.kid)]})
    }

    /// A compact JWS over `claims`, with the published kid; signed with the foreign key
    /// when `foreign` (the signature then fails against the JWKS).
    pub(crate) fn sign(&self, claims: &Value, foreign: bool) -> String {
        let header = json!({"alg": ALG, "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = if foreign {
            &self.foreign
        } else {
            &self.signing
        };
        let signature: Signature = key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

fn random_key() -> SigningKey {
    // A random 32-byte scalar is valid with overwhelming probability; retry otherwise.
    loop {
        let bytes: [u8; 32] = rand::rng().random();
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// The public JWK of `key` (RFC 7518 §6.2).
fn public_jwk(key: &VerifyingKey, kid: &str) -> Value {
    let point = key.to_sec1_point(false);
    let coordinate = |c: Option<&[u8]>| URL_SAFE_NO_PAD.encode(c.unwrap_or_default());
    json!({
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": ALG,
        "kid": kid,
        "x": coordinate(point.x().map(|x| x.as_slice())),
        "y": coordinate(point.y().map(|y| y.as_slice())),
    })
}

/// Verifies a compact ES256 JWS against a JWK set; the claims when it holds (test helper,
/// also what a relying party does).
#[cfg(test)]
pub(crate) fn verify(jws: &str, jwks: &Value) -> Option<Value> {
    use p256::ecdsa::signature::Verifier;
    let mut parts = jws.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != ALG {
        return None;
    }
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|key| key["kid"] == header["kid"])?;
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str()?).ok()?);
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str()?).ok()?);
    let key = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
    let signing_input = &jws[..jws.rfind('.')?];
    key.verify(signing_input.as_bytes(), &signature).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_against_the_jwks_and_foreign_ones_do_not() {
        let keys = Keys::generate();
        let claims = json!({"sub": "someone", "n": 1});
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["kid"], keys.kid.as_str());
        assert_eq!(
            verify(&keys.sign(&claims, false), &jwks),
            Some(claims.clone())
        );
        assert_eq!(verify(&keys.sign(&claims, true), &jwks), None);
        // A tampered payload fails too.
        let token = keys.sign(&claims, false);
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(json!({"sub": "someone else"}).to_string());
        parts[1] = &other;
        assert_eq!(verify(&parts.join("."), &jwks), None);
    }
}
