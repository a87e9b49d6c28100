//! Errors of the Personio client, and the parsing of Personio's three error body
//! families: the v1 envelope, v2 `application/problem+json`, and the OAuth2 error object
//! of the token endpoint (reference §10).

use serde_json::Value;

/// Longest server-provided message kept in an error (bodies may be whole HTML pages).
#[cfg(test)]
const MAX_MESSAGE_CHARS: usize = crate::domain::redact::MAX_EXCERPT_CHARS;

/// What went wrong talking to Personio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonioError {
    /// The credentials were refused (token endpoint error, or a 401 that persisted after
    /// fetching a fresh token). The operator must fix the client id / secret.
    #[error("Personio refused the credentials: {message}")]
    Unauthorized {
        /// Personio's explanation (an OAuth2 error code or the error message).
        message: String,
    },
    /// Access denied (a 403 that persisted after a fresh token, or a missing scope).
    #[error("Personio denied access: {message}")]
    Forbidden {
        /// Personio's explanation.
        message: String,
    },
    /// Still rate limited (429) after every allowed retry.
    #[error("Personio rate limit still exceeded after retrying")]
    RateLimited,
    /// Personio answered 5xx, after every allowed retry (or 501).
    #[error("Personio server error (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
        /// `personio_trace_id` (v2) or `trace_id` (token endpoint), for Personio support.
        trace_id: Option<String>,
    },
    /// Personio could not be reached, or the request timed out, after every retry.
    #[error("Personio unreachable: {0}")]
    Transport(String),
    /// Personio's answer could not be understood (or paging did not advance).
    #[error("unexpected answer from Personio: {0}")]
    Decode(String),
    /// Any other refusal (400, 404 where an object was required, 422, …): not retried.
    #[error("Personio answered HTTP {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Personio's explanation.
        message: String,
        /// The trace id, if Personio sent one.
        trace_id: Option<String>,
    },
    /// A caller-supplied value (an id) cannot be sent to Personio; nothing was sent.
    #[error("invalid input for Personio: {0}")]
    InvalidInput(String),
    /// A 404 without Personio's own error body (an HTML page from a proxy, another server
    /// behind a wrong base URL): it says nothing about the resource, so it is never read
    /// as "deleted". Retried later, like a server error.
    #[error(
        "Personio answered 404 without its own error body ({excerpt}); check the tenant's Personio base_url; retrying automatically"
    )]
    ForeignNotFound {
        /// The start of the body (or its content type when empty).
        excerpt: String,
    },
    /// The OpenID provider refused the refresh token of the tenant's "Sign in with
    /// Personio" connection (`invalid_grant`): only a new connection helps.
    #[error("Personio refused the connection's refresh token")]
    ConnectionRevoked,
    /// The OpenID provider refused this service's own client (`invalid_client`,
    /// `unauthorized_client`) while refreshing: the operator's `[personio_oidc]` is wrong,
    /// and a new connection would not help.
    #[error("Personio's OpenID provider refused this service's client: {message}")]
    OidcClientRefused {
        /// The provider's error code and description.
        message: String,
    },
    /// 409: the resource conflicts with an existing one (e.g. a second webhook for a URL).
    #[error("Personio reported a conflict: {message}")]
    Conflict {
        /// Personio's explanation.
        message: String,
        /// The trace id, if Personio sent one.
        trace_id: Option<String>,
    },
}

impl PersonioError {
    /// Whether trying again later may succeed (rate limit, 5xx, network trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::Server { .. }
                | Self::Transport(_)
                | Self::ForeignNotFound { .. }
        )
    }

    /// Whether the credentials (or their permissions) are the problem: the operator must act.
    pub fn is_credentials(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized { .. }
                | Self::Forbidden { .. }
                | Self::ConnectionRevoked
                | Self::OidcClientRefused { .. }
        )
    }

    /// Personio's trace id for support requests, when the answer carried one.
    pub fn trace_id(&self) -> Option<&str> {
        match self {
            Self::Server { trace_id, .. }
            | Self::Api { trace_id, .. }
            | Self::Conflict { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        }
    }
}

/// What could be read from an error body, whatever its family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// A human-readable message (v1 `error.message`, v2 `title: detail`, OAuth2
    /// `error: error_description`, or a short plain-text excerpt).
    pub message: Option<String>,
    /// `personio_trace_id` (v2) or `trace_id` (OAuth2).
    pub trace_id: Option<String>,
    /// The OAuth2 `error` code (`invalid_client`, …), token endpoint only.
    pub oauth_error: Option<String>,
}

/// Reads any of Personio's error bodies. Never fails: unknown bodies give what they can.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    match serde_json::from_slice::<Value>(body) {
        Ok(doc) if doc.is_object() => parse_json_error(&doc),
        _ => ErrorBody {
            message: plain_text_excerpt(body),
            ..ErrorBody::default()
        },
    }
}

/// The three JSON families.
fn parse_json_error(doc: &Value) -> ErrorBody {
    let trace_id = ["personio_trace_id", "trace_id"]
        .iter()
        .find_map(|key| doc.get(*key).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    let (message, oauth_error) = match doc.get("error") {
        Some(Value::Object(v1)) => (
            v1.get("message")
                .and_then(Value::as_str)
                .map(str::to_string),
            None,
        ),
        Some(Value::String(code)) => (Some(oauth_message(code, doc)), Some(code.clone())),
        _ => (v2_message(doc), None),
    };
    ErrorBody {
        message: message.map(|text| truncate(&text)),
        trace_id,
        oauth_error,
    }
}

/// `code: description` of an OAuth2 error object.
fn oauth_message(code: &str, doc: &Value) -> String {
    match doc.get("error_description").and_then(Value::as_str) {
        Some(description) if !description.is_empty() => format!("{code}: {description}"),
        _ => code.to_string(),
    }
}

/// `title: detail` of the first v2 problem entry (also a top-level `message`/`title`).
fn v2_message(doc: &Value) -> Option<String> {
    let first = doc
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    let source = first.unwrap_or(doc);
    let title = source.get("title").and_then(Value::as_str);
    let detail = source
        .get("detail")
        .or_else(|| source.get("message"))
        .and_then(Value::as_str);
    match (title, detail) {
        (Some(title), Some(detail)) => Some(format!("{title}: {detail}")),
        (Some(only), None) | (None, Some(only)) => Some(only.to_string()),
        (None, None) => None,
    }
}

/// Whether a 404's body is Personio's own error body for the endpoint's family: for v1
/// the envelope `{"success": false, "error": {"code": 0 | 404, "message": …}}` (v1 spec,
/// `Employee404ErrorResponse`; reference §4.3, §10.1), for v2 a problem body with an
/// `errors` list (§10.2). Anything else (HTML, an empty body, another API's JSON, the
/// other family's body) is not.
pub(crate) fn is_personio_not_found(body: &[u8], v1_endpoint: bool) -> bool {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let v1 = doc.get("success") == Some(&Value::Bool(false))
        && doc
            .get("error")
            .and_then(Value::as_object)
            .and_then(|error| error.get("code"))
            .and_then(Value::as_i64)
            .is_some_and(|code| code == 0 || code == 404);
    let v2 = doc
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| !errors.is_empty());
    if v1_endpoint { v1 } else { v2 }
}

/// A short excerpt of a non-JSON body, or `None` if empty.
fn plain_text_excerpt(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then(|| truncate(&collapsed))
}

/// Cuts a message to [`crate::domain::redact::MAX_EXCERPT_CHARS`] characters,
/// secret-looking values redacted.
fn truncate(text: &str) -> String {
    crate::domain::redact::upstream_excerpt(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_envelope() {
        let body = parse_error_body(
            br#"{"success": false, "error": {"code": 403, "message": "Provided authorization is not valid"}}"#,
        );
        assert_eq!(
            body.message.as_deref(),
            Some("Provided authorization is not valid")
        );
        assert_eq!(body.trace_id, None);
        assert_eq!(body.oauth_error, None);
    }

    #[test]
    fn v2_problem_keeps_the_trace_id() {
        let body = parse_error_body(
            br#"{"personio_trace_id": "aswo3f-a202", "timestamp": "2021-05-28T11:17:30+00:00",
                "errors": [{"title": "Bad request", "detail": "Provided filter encoding is invalid.",
                "type": "https://developer.personio.de/reference/errors#common.bad_request", "_meta": {}}]}"#,
        );
        assert_eq!(body.trace_id.as_deref(), Some("aswo3f-a202"));
        assert_eq!(
            body.message.as_deref(),
            Some("Bad request: Provided filter encoding is invalid.")
        );
    }

    #[test]
    fn oauth_error_object() {
        let body = parse_error_body(
            br#"{"error": "unauthorized_client", "error_description": "Invalid Credentials",
                "error_uri": null, "trace_id": "baaaaaad", "meta": {}}"#,
        );
        assert_eq!(body.oauth_error.as_deref(), Some("unauthorized_client"));
        assert_eq!(
            body.message.as_deref(),
            Some("unauthorized_client: Invalid Credentials")
        );
        assert_eq!(body.trace_id.as_deref(), Some("baaaaaad"));
    }

    #[test]
    fn unknown_bodies_give_what_they_can() {
        assert_eq!(parse_error_body(b""), ErrorBody::default());
        let html = parse_error_body(b"<html>\n  <body>Bad   Gateway</body></html>");
        assert_eq!(
            html.message.as_deref(),
            Some("<html> <body>Bad Gateway</body></html>")
        );
        let long = "x".repeat(1000);
        let cut = parse_error_body(long.as_bytes()).message.unwrap();
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(parse_error_body(b"[1,2]").message.as_deref(), Some("[1,2]"));
    }

    #[test]
    fn classification() {
        assert!(PersonioError::RateLimited.is_transient());
        let server = PersonioError::Server {
            status: 502,
            trace_id: Some("t-1".into()),
        };
        assert!(server.is_transient());
        assert_eq!(server.trace_id(), Some("t-1"));
        assert!(PersonioError::Transport("timeout".into()).is_transient());
        let unauthorized = PersonioError::Unauthorized {
            message: "invalid_client".into(),
        };
        assert!(unauthorized.is_credentials() && !unauthorized.is_transient());
        assert!(
            PersonioError::Forbidden {
                message: String::new()
            }
            .is_credentials()
        );
        let api = PersonioError::Api {
            status: 422,
            message: "bad".into(),
            trace_id: None,
        };
        assert!(!api.is_transient() && !api.is_credentials());
        assert!(!PersonioError::Decode("x".into()).is_transient());
    }

    #[test]
    fn only_personio_bodies_make_a_404_a_not_found() {
        let v1_zero =
            br#"{"success": false, "error": {"code": 0, "message": "Es ist ein Problem aufgetreten"}}"#;
        let v1_404 =
            br#"{"success": false, "error": {"code": 404, "message": "Etwas ist schiefgelaufen ..."}}"#;
        let v2 = br#"{"personio_trace_id": "t", "errors": [{"title": "Resource not found"}]}"#;
        assert!(is_personio_not_found(v1_zero, true));
        assert!(is_personio_not_found(v1_404, true));
        assert!(is_personio_not_found(v2, false));
        assert!(!is_personio_not_found(v2, true), "the other family's body");
        assert!(
            !is_personio_not_found(v1_404, false),
            "the other family's body"
        );
        for v1 in [true, false] {
            assert!(!is_personio_not_found(
                b"<html><body><h1>404 Not Found</h1></body></html>",
                v1
            ));
            assert!(!is_personio_not_found(b"", v1));
            assert!(!is_personio_not_found(br#"{"message": "Not Found"}"#, v1));
            assert!(!is_personio_not_found(
                br#"{"success": false, "error": {"code": 500, "message": "x"}}"#,
                v1
            ));
            assert!(!is_personio_not_found(br#"{"errors": []}"#, v1));
        }
        assert!(
            PersonioError::ForeignNotFound {
                excerpt: "<html>".into()
            }
            .is_transient()
        );
    }
}
