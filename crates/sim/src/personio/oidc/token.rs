//! `POST /oauth/token`: the authorization code and refresh token grants (RFC 6749 §4.1.3,
//! §6; PKCE per RFC 7636 §4.6; refresh token rotation per RFC 9700 §4.14).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::super::errors::first;
use super::super::{Shared, SimState};
use super::{CODE_TTL, FOREIGN_AUDIENCE, Grant, ID_TOKEN_TTL_SECS, IdTokenFault, unix_now};

/// A refusal: the OAuth error code, a description, and whether the client tried Basic.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic: bool,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic: false,
        }
    }

    fn client(description: &str, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.to_string(),
            basic,
        }
    }

    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = no_store((self.status, axum::Json(body)).into_response());
        if self.basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"personio-sim\""),
            );
        }
        response
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&shared, &headers, &body) {
        Ok(body) => no_store(axum::Json(body).into_response()),
        Err(refusal) => refusal.into_response(),
    }
}

fn answer(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Refusal::new(
            "invalid_request",
            "The body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| Refusal::new("invalid_request", "The body could not be parsed"))?;
    for (index, (key, _)) in pairs.iter().enumerate() {
        if pairs[..index].iter().any(|(seen, _)| seen == key) {
            return Err(Refusal::new(
                "invalid_request",
                format!("The parameter {key} is repeated"),
            ));
        }
    }
    let params = Params(pairs);
    let mut sim = shared.state();
    let client_id = authenticate(&sim, headers, &params)?;
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code(shared, &mut sim, &client_id, &params),
        Some("refresh_token") => refresh(shared, &mut sim, &client_id, &params),
        Some(other) => Err(Refusal::new(
            "unsupported_grant_type",
            format!("The grant type {other} is not supported"),
        )),
        None => Err(Refusal::new("invalid_request", "grant_type is missing")),
    }
}

/// The form parameters of a token request.
struct Params(Vec<(String, String)>);

impl Params {
    /// The value of `key`, when present and not empty.
    fn get(&self, key: &str) -> Option<&str> {
        first(&self.0, key).filter(|value| !value.is_empty())
    }
}

/// The authenticated client id (Basic or form fields, not both).
fn authenticate(sim: &SimState, headers: &HeaderMap, params: &Params) -> Result<String, Refusal> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim().to_string());
    let used_basic = basic.is_some();
    let (client_id, secret) = match basic {
        Some(encoded) => {
            if params.get("client_secret").is_some() {
                return Err(Refusal::new(
                    "invalid_request",
                    "Use one client authentication method, not two",
                ));
            }
            let malformed = || Refusal::client("Malformed Basic credentials", true);
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(malformed)?;
            let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
            let (id, secret) = (form_decode(id), form_decode(secret));
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(Refusal::new(
                    "invalid_request",
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        None => match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            _ => return Err(Refusal::client("Client authentication is missing", false)),
        },
    };
    let secret_ok: bool = secret
        .as_bytes()
        .ct_eq(sim.client_secret.expose().as_bytes())
        .into();
    if client_id != sim.client_id || !secret_ok {
        return Err(Refusal::client("Client authentication failed", used_basic));
    }
    Ok(client_id)
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(component: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={component}"))
        .ok()
        .and_then(|pairs| pairs.into_iter().next())
        .map_or_else(|| component.to_string(), |(_, value)| value)
}

/// Whether `verifier` is a well-formed PKCE code verifier (RFC 7636 §4.1).
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

/// `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorization_code(
    shared: &Shared,
    sim: &mut SimState,
    client_id: &str,
    params: &Params,
) -> Result<Value, Refusal> {
    let (Some(presented), Some(redirect_uri)) = (params.get("code"), params.get("redirect_uri"))
    else {
        return Err(Refusal::new(
            "invalid_request",
            "code and redirect_uri are required",
        ));
    };
    sim.oidc.purge();
    let Some(code) = sim.oidc.codes.get(presented) else {
        return Err(Refusal::new(
            "invalid_grant",
            "The code is unknown or expired",
        ));
    };
    if let Some(grant) = code.redeemed {
        sim.oidc.revoke(grant);
        tracing::info!("personio sim oidc: code replayed; its grant is revoked");
        return Err(Refusal::new(
            "invalid_grant",
            "The code was already used; the tokens issued from it are revoked",
        ));
    }
    if code.issued.elapsed() >= CODE_TTL {
        return Err(Refusal::new("invalid_grant", "The code expired"));
    }
    if code.client_id != client_id {
        return Err(Refusal::new(
            "invalid_grant",
            "The code was issued to another client",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(Refusal::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        ));
    }
    let Some(verifier) = params.get("code_verifier") else {
        return Err(Refusal::new("invalid_request", "code_verifier is required"));
    };
    if !valid_verifier(verifier) {
        return Err(Refusal::new(
            "invalid_request",
            "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
        ));
    }
    let matches: bool = s256(verifier)
        .as_bytes()
        .ct_eq(code.code_challenge.as_bytes())
        .into();
    if !matches {
        return Err(Refusal::new(
            "invalid_grant",
            "code_verifier does not match the code challenge",
        ));
    }
    let grant = Grant {
        client_id: code.client_id.clone(),
        user: code.user,
        scope: code.scope.clone(),
        nonce: code.nonce.clone(),
        auth_time: code.auth_time,
        revoked: false,
    };
    let grant = sim.oidc.add_grant(grant);
    if let Some(code) = sim.oidc.codes.get_mut(presented) {
        code.redeemed = Some(grant);
    }
    Ok(issue(shared, sim, grant))
}

fn refresh(
    shared: &Shared,
    sim: &mut SimState,
    client_id: &str,
    params: &Params,
) -> Result<Value, Refusal> {
    let Some(presented) = params.get("refresh_token") else {
        return Err(Refusal::new("invalid_request", "refresh_token is required"));
    };
    let grant = sim
        .oidc
        .spend_refresh(presented, client_id)
        .map_err(|problem| Refusal::new("invalid_grant", problem))?;
    if let Some(requested) = params.get("scope") {
        let granted = sim
            .oidc
            .grants
            .get(&grant)
            .map(|grant| grant.scope.clone())
            .unwrap_or_default();
        if requested
            .split_whitespace()
            .any(|scope| !granted.split_whitespace().any(|have| have == scope))
        {
            return Err(Refusal::new(
                "invalid_scope",
                "The scope exceeds what was granted",
            ));
        }
    }
    Ok(issue(shared, sim, grant))
}

/// New tokens for `grant`, with an ID token (the original nonce and auth_time).
fn issue(shared: &Shared, sim: &mut SimState, grant: u64) -> Value {
    let (access_token, refresh_token) = sim.oidc.issue_tokens(grant);
    let expires_in = sim.oidc.access_ttl.as_secs_f64().ceil() as u64;
    let fault = sim.oidc.fault;
    let Some(grant) = sim.oidc.grants.get(&grant) else {
        return json!({});
    };
    let email = sim
        .oidc
        .users
        .get(grant.user)
        .map(|user| (user.sub.clone(), user.email.clone()));
    let (sub, email) = email.unwrap_or_default();
    let now = unix_now();
    let iat = if fault == Some(IdTokenFault::Expired) {
        now - 2 * 3600
    } else {
        now
    };
    let audience = if fault == Some(IdTokenFault::WrongAudience) {
        FOREIGN_AUDIENCE
    } else {
        grant.client_id.as_str()
    };
    let claims = json!({
        "iss": shared.base_url,
        "sub": sub,
        "aud": audience,
        "exp": if fault == Some(IdTokenFault::Expired) { now - 3600 } else { iat + ID_TOKEN_TTL_SECS },
        "iat": iat,
        "auth_time": grant.auth_time,
        "nonce": grant.nonce,
        "email": email,
        "email_verified": true,
    });
    let id_token = shared
        .oidc_keys
        .sign(&claims, fault == Some(IdTokenFault::ForeignKey));
    json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "id_token": id_token,
        "scope": grant.scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_must_have_the_rfc_7636_shape() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"-._~".repeat(32)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn basic_components_are_form_decoded() {
        assert_eq!(form_decode("sim%2Bclient"), "sim+client");
        assert_eq!(form_decode("a+b"), "a b");
        assert_eq!(form_decode("plain"), "plain");
    }
}
