//! The three Personio error families: the v1 envelope, v2 `application/problem+json`,
//! and the OAuth2 error object of the token endpoint (reference §10).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::Rng;
use serde_json::{Value, json};

/// Which error family a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `/v1/...`: `{"success": false, "error": {code, message}}`.
    V1,
    /// `/v2/auth/...`: the OAuth2 error object.
    Token,
    /// Every other path: `application/problem+json`.
    V2,
}

impl Family {
    /// The family of a request path.
    pub(crate) fn of(path: &str) -> Self {
        if path.starts_with("/v2/auth/") {
            Self::Token
        } else if path.starts_with("/v1/") {
            Self::V1
        } else {
            Self::V2
        }
    }
}

/// A random uuid-shaped id (trace ids, webhook ids).
pub(crate) fn uuid_like() -> String {
    let mut rng = rand::rng();
    let bytes: [u8; 16] = rng.random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The v1 error envelope.
pub(crate) fn v1_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"success": false, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The v1 404 Personio answers for an unknown employee (German, code 0).
pub(crate) fn v1_not_found() -> Response {
    v1_error(StatusCode::NOT_FOUND, 0, "Es ist ein Problem aufgetreten")
}

/// A v2 `application/problem+json` answer with one error.
pub(crate) fn problem(status: StatusCode, title: &str, detail: &str, anchor: &str) -> Response {
    let body = json!({
        "personio_trace_id": uuid_like(),
        "timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        "errors": [{
            "title": title,
            "detail": detail,
            "type": format!("https://developer.personio.de/reference/errors#{anchor}"),
            "_meta": {},
        }],
    });
    with_content_type(status, &body, "application/problem+json")
}

/// The OAuth2 error object of `/v2/auth/token` (always `application/problem+json`).
pub(crate) fn oauth_error(
    status: StatusCode,
    error: &str,
    description: &str,
    meta: Value,
) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("https://developer.personio.de/reference/errors#credentials.oauth2.{error}"),
        "timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "trace_id": uuid_like(),
        "meta": meta,
    });
    with_content_type(status, &body, "application/problem+json")
}

pub(crate) fn with_content_type(
    status: StatusCode,
    body: &Value,
    content_type: &'static str,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 429 in the family of `path`, without `Retry-After` (Personio sends none).
pub(crate) fn too_many_requests(path: &str) -> Response {
    let status = StatusCode::TOO_MANY_REQUESTS;
    match Family::of(path) {
        Family::V1 => v1_error(status, 429, "Too Many Requests"),
        Family::Token => oauth_error(
            status,
            "temporarily_unavailable",
            "Rate limit exceeded, try again later",
            json!({}),
        ),
        Family::V2 => problem(
            status,
            "Too Many Requests",
            "Rate limit exceeded. Please try again later.",
            "common.too_many_requests",
        ),
    }
}

/// The body of a failure injected by the fault knobs (v2 problem+json, no Retry-After).
pub(crate) fn injected(status: StatusCode) -> Response {
    let (title, anchor) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("Too Many Requests", "common.too_many_requests"),
        StatusCode::BAD_GATEWAY => ("Bad Gateway", "common.bad_gateway"),
        StatusCode::SERVICE_UNAVAILABLE => ("Service Unavailable", "common.service_unavailable"),
        StatusCode::GATEWAY_TIMEOUT => ("Gateway Timeout", "common.gateway_timeout"),
        _ => ("Internal Server Error", "common.internal_server_error"),
    };
    problem(status, title, "Please try again later", anchor)
}

/// 404 for a path no route matches, in the path's family.
pub(crate) fn unknown_route(path: &str) -> Response {
    match Family::of(path) {
        Family::V1 => v1_error(StatusCode::NOT_FOUND, 404, "Etwas ist schiefgelaufen ..."),
        _ => problem(
            StatusCode::NOT_FOUND,
            "Requested resource not found",
            "The requested resource does not exist.",
            "common.requested_resource_not_found",
        ),
    }
}

/// A v2 400 "Bad request".
pub(crate) fn bad_request(detail: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Bad request",
        detail,
        "common.bad_request",
    )
}

/// A v2 404 "Resource not found".
pub(crate) fn resource_not_found(detail: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Resource not found",
        detail,
        "common.resource_not_found",
    )
}

/// Parses a raw query string into its pairs (repeated keys kept, bad encoding → empty).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.and_then(|query| serde_urlencoded::from_str::<Vec<(String, String)>>(query).ok())
        .unwrap_or_default()
}

/// The first value of `key` in `pairs`.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_path() {
        assert_eq!(Family::of("/v2/auth/token"), Family::Token);
        assert_eq!(Family::of("/v1/auth"), Family::V1);
        assert_eq!(Family::of("/v1/company/employees"), Family::V1);
        assert_eq!(Family::of("/v2/webhooks"), Family::V2);
    }

    #[test]
    fn uuid_like_has_the_uuid_shape() {
        let id = uuid_like();
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_ne!(id, uuid_like());
    }

    #[test]
    fn injected_errors_carry_no_retry_after() {
        let response = injected(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
