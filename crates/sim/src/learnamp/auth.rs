//! `POST /oauth/token` (client credentials), the bearer-token check with scopes, the
//! `Accept` check (406) and the optional rate limit (429).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::{ApiError, not_acceptable};
use super::form::{bare_media_type, header_str, read_form};
use super::model::TokenRec;

/// Documented token lifetime (`expires_in: 7200`).
pub(super) const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7200);

/// Every documented scope, plus the legacy `public`.
const KNOWN_SCOPES: [&str; 17] = [
    "public",
    "users:read",
    "users:create",
    "users:update",
    "users:delete",
    "users:deactivate",
    "users:reactivate",
    "teams:read",
    "teams:create",
    "teams:update",
    "teams:delete",
    "team_users:read",
    "team_users:create",
    "team_users:delete",
    "roles:read",
    "languages:read",
    "user_channels_progress:read",
];

/// Constant-time string comparison (credentials).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A fresh random token (256 bits, hex).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the requested scope list; `None` if any scope is unknown.
fn parse_scopes(raw: Option<&str>) -> Option<Vec<String>> {
    let scopes: Vec<String> = raw
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return Some(vec!["public".to_string()]);
    }
    scopes
        .iter()
        .all(|s| KNOWN_SCOPES.contains(&s.as_str()))
        .then_some(scopes)
}

/// 401 `invalid_client`: unknown client, wrong secret, or no credentials at all.
fn invalid_client() -> ApiError {
    ApiError::oauth(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
    )
}

/// `POST /oauth/token`.
pub(super) async fn token(State(shared): State<AppState>, request: Request) -> Response {
    match issue_token(&shared, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Validates the client-credentials request and issues a token.
async fn issue_token(shared: &AppState, request: Request) -> Result<Response, ApiError> {
    let form = read_form(request).await.map_err(|_| {
        ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be read.",
        )
    })?;
    let (Some(client_id), Some(client_secret)) = (form.get("client_id"), form.get("client_secret"))
    else {
        return Err(invalid_client());
    };
    match form.get("grant_type") {
        Some("client_credentials") => {}
        None => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type.",
            ));
        }
        Some(_) => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            ));
        }
    }
    if !(same(client_id, &shared.config.client_id)
        && same(client_secret, &shared.config.client_secret))
    {
        tracing::debug!("learnamp sim: token refused (invalid client)");
        return Err(invalid_client());
    }
    let unscoped = form
        .get("scope")
        .is_none_or(|scope| scope.trim().is_empty());
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    if unscoped {
        shared
            .unscoped_token_requests
            .fetch_add(1, Ordering::Relaxed);
    }
    let invalid_scope = || {
        ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        )
    };
    let scopes = parse_scopes(form.get("scope")).ok_or_else(invalid_scope)?;
    // Scope-restricted credentials may not have `public`, the fallback of a request
    // without `scope` (§2.3).
    if shared.config.scoped_credentials && scopes.iter().any(|scope| scope == "public") {
        tracing::debug!("learnamp sim: token refused (invalid scope for scoped credentials)");
        return Err(invalid_scope());
    }
    let token = new_token();
    let scope = scopes.join(" ");
    let ttl = shared.token_ttl();
    shared.lock().tokens.insert(
        token.clone(),
        TokenRec {
            issued: Instant::now(),
            scopes,
        },
    );
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(axum::Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
        "created_at": created_at,
    }))
    .into_response())
}

/// The scope the reference lists for a route (`pattern` is the matched route).
pub(super) fn required_scope(method: &Method, pattern: &str) -> &'static str {
    let path = pattern.strip_suffix(".json").unwrap_or(pattern);
    let is_team = path.starts_with("/v1/teams");
    let is_membership = is_team && path.contains("/users");
    if is_membership {
        return match *method {
            Method::GET => "team_users:read",
            Method::DELETE => "team_users:delete",
            _ => "team_users:create",
        };
    }
    if is_team {
        return match *method {
            Method::GET => "teams:read",
            Method::POST => "teams:create",
            Method::DELETE => "teams:delete",
            _ => "teams:update",
        };
    }
    if path.ends_with("/deactivate") {
        return "users:deactivate";
    }
    if path.ends_with("/reactivate") {
        return "users:reactivate";
    }
    if path.ends_with("/invitation") || path.ends_with("/avatar") {
        return "users:update";
    }
    match *method {
        Method::GET => "users:read",
        Method::POST => "users:create",
        Method::DELETE => "users:delete",
        _ => "users:update",
    }
}

/// The bearer token of a request, if any.
fn bearer(request: &Request) -> Option<&str> {
    let value = header_str(request.headers(), header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks the token and its scope for every `/v1` route.
pub(super) async fn require_token(
    State(shared): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let scopes = {
        let Some(token) = bearer(&request) else {
            return ApiError::message(
                StatusCode::UNAUTHORIZED,
                "Not authorized: missing bearer token",
            )
            .into_response();
        };
        let inner = shared.lock();
        match inner.tokens.get(token) {
            None => {
                return ApiError::message(StatusCode::UNAUTHORIZED, "The access token is invalid")
                    .into_response();
            }
            Some(rec) if rec.issued.elapsed() >= shared.token_ttl() => {
                return ApiError::message(StatusCode::UNAUTHORIZED, "The access token expired")
                    .into_response();
            }
            Some(rec) => rec.scopes.clone(),
        }
    };
    let revoked = shared
        .revoked_scopes
        .lock()
        .expect("revoked scopes poisoned")
        .clone();
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|scope| !revoked.contains(scope))
        .collect();
    if !scopes.iter().any(|s| s == "public") {
        let pattern = request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let needed = required_scope(request.method(), &pattern);
        if !scopes.iter().any(|s| s == needed) {
            return ApiError::message(
                StatusCode::FORBIDDEN,
                format!("Insufficient scope: {needed} is required"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether an `Accept` header allows JSON.
pub(super) fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let media = bare_media_type(part);
        media.is_empty()
            || media == "*/*"
            || media == "application/*"
            || media == "application/json"
            || media.ends_with("+json")
    })
}

/// 406 when the client asks for a non-JSON format.
pub(super) async fn check_accept(request: Request, next: Next) -> Response {
    if header_str(request.headers(), header::ACCEPT).is_some_and(|accept| !accepts_json(accept)) {
        return not_acceptable().into_response();
    }
    next.run(request).await
}

/// The optional rate limit: 429 `{"error": "Too many requests"}`, no `Retry-After`.
pub(super) async fn rate_limit(
    State(shared): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limit) = shared.config.rate_limit
        && !shared.limiter.try_acquire("api", limit)
    {
        return ApiError::message(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_must_be_known() {
        assert_eq!(parse_scopes(None), Some(vec!["public".to_string()]));
        assert_eq!(
            parse_scopes(Some("users:read teams:read")),
            Some(vec!["users:read".to_string(), "teams:read".to_string()])
        );
        assert_eq!(parse_scopes(Some("users:read users:everything")), None);
    }

    #[test]
    fn routes_map_to_their_documented_scope() {
        let cases = [
            (Method::GET, "/v1/users", "users:read"),
            (Method::PUT, "/v1/users/{id}/deactivate", "users:deactivate"),
            (Method::POST, "/v1/users/{id}/invitation", "users:update"),
            (
                Method::POST,
                "/v1/teams/{id}/users.json",
                "team_users:create",
            ),
            (Method::DELETE, "/v1/teams/{id}", "teams:delete"),
            (
                Method::PUT,
                "/v1/users/by_integration_external_id/{ext}",
                "users:update",
            ),
        ];
        for (method, pattern, scope) in cases {
            assert_eq!(
                required_scope(&method, pattern),
                scope,
                "{method} {pattern}"
            );
        }
    }

    #[test]
    fn accept_header_parsing() {
        assert!(accepts_json("application/json"));
        assert!(accepts_json("text/html, */*;q=0.1"));
        assert!(!accepts_json("application/xml"));
        assert!(!accepts_json("text/csv"));
    }
}
