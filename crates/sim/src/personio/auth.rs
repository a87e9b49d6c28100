//! `POST /v2/auth/token` (form only, OAuth2 errors), `POST /v2/auth/revoke` and the
//! legacy `POST /v1/auth` (JSON or form). Tokens are `papi-…`, live 24 h by default, and
//! re-authenticating within their lifetime returns the same token (reference §2).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::errors::{first, oauth_error, v1_error, with_content_type};
use super::{GRANTED_SCOPES, IssuedToken, Shared, SimState};
use crate::secret::Secret;

const FORM: &str = "application/x-www-form-urlencoded";

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UnknownClient,
    WrongSecret,
    BadScope,
}

/// The token handed out: value and remaining lifetime in seconds.
struct Grant {
    token: String,
    expires_in: u64,
    scope: String,
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()
}

/// Checks credentials and returns the live token for (client, scope), issuing one if none.
fn grant(
    state: &mut SimState,
    client_id: &str,
    client_secret: &str,
    requested_scope: Option<&str>,
) -> Result<Grant, Refusal> {
    let expected = if client_id == state.client_id {
        &state.client_secret
    } else {
        match state
            .extra_credentials
            .iter()
            .find(|(id, _, _)| id == client_id)
        {
            Some((_, secret, _)) => secret,
            None => return Err(Refusal::UnknownClient),
        }
    };
    let secret_ok: bool = client_secret
        .as_bytes()
        .ct_eq(expected.expose().as_bytes())
        .into();
    if !secret_ok {
        return Err(Refusal::WrongSecret);
    }
    let scope = normalise_scope(requested_scope)?;
    let ttl = state.token_ttl;
    state.tokens.retain(|token| token.issued_at.elapsed() < ttl);
    let existing = state
        .tokens
        .iter()
        .find(|token| token.client_id == client_id && token.scope == scope);
    let issued = match existing {
        Some(token) => token.clone(),
        None => {
            let token = IssuedToken {
                client_id: client_id.to_string(),
                token: Secret::new(new_token()),
                scope: scope.clone(),
                issued_at: Instant::now(),
            };
            state.tokens.push(token.clone());
            token
        }
    };
    let remaining = ttl.saturating_sub(issued.issued_at.elapsed());
    Ok(Grant {
        token: issued.token.expose().to_string(),
        expires_in: remaining.as_secs_f64().round() as u64,
        scope,
    })
}

/// Every granted scope when none is requested; the requested ones (sorted) otherwise.
fn normalise_scope(requested: Option<&str>) -> Result<String, Refusal> {
    let Some(requested) = requested.filter(|scope| !scope.trim().is_empty()) else {
        return Ok(GRANTED_SCOPES.join(" "));
    };
    let mut scopes: Vec<&str> = requested.split_whitespace().collect();
    if scopes.iter().any(|scope| !GRANTED_SCOPES.contains(scope)) {
        return Err(Refusal::BadScope);
    }
    scopes.sort_unstable();
    scopes.dedup();
    Ok(scopes.join(" "))
}

fn new_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("papi-{hex}")
}

/// `POST /v2/auth/token`.
pub(crate) async fn v2_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type(&headers).starts_with(FORM) {
        return wrong_content_type();
    }
    let Some(pairs) = form_pairs(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be parsed",
            json!({}),
        );
    };
    let value = |key: &str| first(&pairs, key).filter(|value| !value.is_empty());
    let missing: Vec<&str> = ["grant_type", "client_id", "client_secret"]
        .into_iter()
        .filter(|key| value(key).is_none())
        .collect();
    if !missing.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter",
            json!({"missing_parameters": missing}),
        );
    }
    let grant_type = value("grant_type").unwrap_or_default();
    if grant_type != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
            json!({"grant_type": grant_type}),
        );
    }
    let result = grant(
        &mut shared.state(),
        value("client_id").unwrap_or_default(),
        value("client_secret").unwrap_or_default(),
        value("scope"),
    );
    match result {
        Ok(grant) => axum::Json(json!({
            "access_token": grant.token,
            "token_type": "Bearer",
            "expires_in": grant.expires_in,
            "scope": grant.scope,
        }))
        .into_response(),
        Err(refusal) => oauth_refusal(refusal),
    }
}

fn wrong_content_type() -> Response {
    // The spec example carries `type` instead of `error_uri` for this case.
    let body = json!({
        "error": "invalid_request",
        "error_description": "The content type must be application/x-www-form-urlencoded",
        "type": "https://developer.personio.de/reference/errors#credentials.oauth2.invalid_request",
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "trace_id": super::errors::uuid_like(),
        "meta": {},
    });
    with_content_type(StatusCode::BAD_REQUEST, &body, "application/problem+json")
}

fn oauth_refusal(refusal: Refusal) -> Response {
    let (error, description) = match refusal {
        Refusal::UnknownClient => ("invalid_client", "Client authentication failed"),
        Refusal::WrongSecret => ("unauthorized_client", "Invalid Credentials"),
        Refusal::BadScope => ("invalid_scope", "The requested scope is not allowed"),
    };
    oauth_error(StatusCode::BAD_REQUEST, error, description, json!({}))
}

/// `POST /v2/auth/revoke` (form `token=`): 200 with an empty body.
pub(crate) async fn v2_revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type(&headers).starts_with(FORM) {
        return wrong_content_type();
    }
    let pairs = form_pairs(&body).unwrap_or_default();
    let Some(token) = first(&pairs, "token").filter(|token| !token.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter",
            json!({"missing_parameters": ["token"]}),
        );
    };
    shared
        .state()
        .tokens
        .retain(|issued| issued.token.expose() != token);
    StatusCode::OK.into_response()
}

/// Reads `client_id`/`client_secret` from a JSON or form body, else from the query.
fn v1_credentials(
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> (Option<String>, Option<String>) {
    let mut pairs: Vec<(String, String)> = if content_type(headers).contains("json") {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|value| value.as_object().cloned())
            .map(|object| {
                object
                    .into_iter()
                    .filter_map(|(key, value)| value.as_str().map(|v| (key, v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        form_pairs(body).unwrap_or_default()
    };
    pairs.extend(super::errors::query_pairs(query));
    let get = |key: &str| {
        first(&pairs, key)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    (get("client_id"), get("client_secret"))
}

/// `POST /v1/auth` (JSON, form or query parameters).
pub(crate) async fn v1_auth(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(client_id), Some(client_secret)) = v1_credentials(&headers, &body, query.as_deref())
    else {
        return v1_error(
            StatusCode::BAD_REQUEST,
            400,
            "client_id and client_secret are required",
        );
    };
    match grant(&mut shared.state(), &client_id, &client_secret, None) {
        Ok(grant) => axum::Json(json!({
            "success": true,
            "data": {"token": grant.token, "expires_in": grant.expires_in, "scope": grant.scope},
        }))
        .into_response(),
        Err(_) => v1_error(
            StatusCode::UNAUTHORIZED,
            401,
            "Wrong client id or client secret",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_defaults_to_everything_and_rejects_unknown() {
        assert_eq!(normalise_scope(None).unwrap(), GRANTED_SCOPES.join(" "));
        assert_eq!(
            normalise_scope(Some("personio:webhooks:write personio:persons:read")).unwrap(),
            "personio:persons:read personio:webhooks:write"
        );
        assert_eq!(
            normalise_scope(Some("personio:salaries:read")),
            Err(Refusal::BadScope)
        );
    }

    #[test]
    fn tokens_have_the_papi_prefix() {
        let token = new_token();
        assert!(token.starts_with("papi-"));
        assert_ne!(token, new_token());
    }
}
