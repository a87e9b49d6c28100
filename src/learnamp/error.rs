//! Errors of the Learn Amp client, and the mapping of Learn Amp's error answers
//! (`{"error": "…", "fullErrors": {"field": ["…"]}}`, reference §9) onto them.
//!
//! No variant ever carries a client secret or a token: messages come from the server's
//! `error` field, from OAuth error codes, or from transport descriptions.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The message Learn Amp uses in `fullErrors` for a uniqueness violation (reference §5.5, §6.3).
const TAKEN: &str = "has already been taken";

/// Everything that can go wrong talking to Learn Amp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LearnAmpError {
    /// 401, or a rejected token request (`invalid_client`, `invalid_scope`, …).
    #[error("Learn Amp rejected the credentials: {message}")]
    Unauthorized {
        /// The server's error text or OAuth error code.
        message: String,
    },
    /// 403: the credentials lack a permission (typically a scope).
    #[error("Learn Amp refused the request: {message}")]
    Forbidden {
        /// The server's error text.
        message: String,
    },
    /// 404 on a resource route (unknown user, team or custom field).
    #[error("not found in Learn Amp")]
    NotFound,
    /// 400, 422 or another non-retryable 4xx, or a request the client refused to send.
    #[error("Learn Amp rejected the request ({status}): {message}")]
    Validation {
        /// HTTP status.
        status: u16,
        /// The `error` text.
        message: String,
        /// `fullErrors`: field name → messages (empty when absent).
        fields: BTreeMap<String, Vec<String>>,
    },
    /// 409.
    #[error("conflict in Learn Amp: {message}")]
    Conflict {
        /// The `error` text.
        message: String,
    },
    /// 429 after every retry was used up.
    #[error("Learn Amp rate limit: retries exhausted")]
    RateLimited,
    /// 5xx after every retry was used up.
    #[error("Learn Amp server error {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// Connection failure or timeout after every retry was used up.
    #[error("transport error talking to Learn Amp: {0}")]
    Transport(String),
    /// A success answer that could not be understood.
    #[error("unexpected answer from Learn Amp: {0}")]
    Decode(String),
    /// The account does not offer an assumed contract (route missing: 404 for a user
    /// that exists, 405 or 501; see `assumed.rs`).
    #[error("Learn Amp does not offer the assumed {}", .0.contract())]
    Unsupported(super::model::Assumed),
}

impl LearnAmpError {
    /// Whether trying again later may succeed (rate limit, server error, transport).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Server { .. } | Self::Transport(_)
        )
    }

    /// Whether the tenant's credentials are at fault (bad secret, or missing permission
    /// or scope): retrying will not help until an admin fixes the configuration.
    pub fn is_credentials(&self) -> bool {
        matches!(self, Self::Unauthorized { .. } | Self::Forbidden { .. })
    }

    /// Whether this is a validation error saying `field` "has already been taken"
    /// (e.g. a duplicate `integrationExternalId`).
    pub fn is_taken(&self, field: &str) -> bool {
        match self {
            Self::Validation { fields, .. } => fields
                .get(field)
                .is_some_and(|messages| messages.iter().any(|m| m.contains(TAKEN))),
            _ => false,
        }
    }

    /// A validation error raised by the client itself, before anything was sent.
    pub(crate) fn refused(status: u16, message: impl Into<String>) -> Self {
        Self::Validation {
            status,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }
}

/// Learn Amp's documented error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default, rename = "error_description")]
    error_description: Option<String>,
    #[serde(default)]
    full_errors: Option<serde_json::Value>,
}

/// The parts of an error body: the `error` text and the `fullErrors` map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ParsedError {
    /// `error` (or an excerpt of a non-JSON body).
    pub message: String,
    /// `error_description`, present on OAuth errors.
    pub description: Option<String>,
    /// `fullErrors`.
    pub fields: BTreeMap<String, Vec<String>>,
}

/// Parses an error body leniently: JSON of the documented shape, or any text.
pub(crate) fn parse_error_body(body: &[u8]) -> ParsedError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => ParsedError {
            message: parsed
                .error
                .map(|error| crate::domain::redact::upstream_excerpt(&value_text(error)))
                .unwrap_or_default(),
            description: parsed
                .error_description
                .map(|text| crate::domain::redact::upstream_excerpt(&text)),
            fields: parsed.full_errors.map(full_errors).unwrap_or_default(),
        },
        Err(_) => ParsedError {
            message: excerpt(body),
            ..ParsedError::default()
        },
    }
}

/// Maps a non-success status and its body onto an error (401 included).
pub(crate) fn error_for_status(status: u16, body: &[u8]) -> LearnAmpError {
    let parsed = parse_error_body(body);
    match status {
        401 => LearnAmpError::Unauthorized {
            message: non_empty(parsed.message, "unauthorized"),
        },
        403 => LearnAmpError::Forbidden {
            message: non_empty(parsed.message, "forbidden"),
        },
        404 => LearnAmpError::NotFound,
        409 => LearnAmpError::Conflict {
            message: parsed.message,
        },
        429 => LearnAmpError::RateLimited,
        500..=599 => LearnAmpError::Server { status },
        _ => LearnAmpError::Validation {
            status,
            message: parsed.message,
            fields: parsed.fields,
        },
    }
}

/// Maps a failed token request. Only the OAuth error code (and description) is kept,
/// never anything that was sent.
pub(crate) fn token_error(status: u16, body: &[u8]) -> LearnAmpError {
    let parsed = parse_error_body(body);
    match status {
        400 | 401 => {
            let code = non_empty(parsed.message, "token request rejected");
            let message = match parsed.description {
                Some(description) if !description.is_empty() => format!("{code}: {description}"),
                _ => code,
            };
            LearnAmpError::Unauthorized { message }
        }
        _ => error_for_status(status, body),
    }
}

/// The text of an `error` value (normally a string).
fn value_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `fullErrors` as field → messages; a single string counts as one message.
fn full_errors(value: serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let serde_json::Value::Object(map) = value else {
        return BTreeMap::new();
    };
    map.into_iter()
        .map(|(field, messages)| {
            let messages = match messages {
                serde_json::Value::Array(items) => items.into_iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            (field, messages)
        })
        .collect()
}

/// A short, lossy excerpt of a body that is not JSON, secret-looking values redacted.
fn excerpt(body: &[u8]) -> String {
    crate::domain::redact::upstream_excerpt(&String::from_utf8_lossy(body))
}

/// `text`, or `fallback` when `text` is empty.
fn non_empty(text: String, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_external_id_is_taken() {
        let body = br#"{"error": "Validation failed: Integration external id has already been taken", "fullErrors": {"integrationExternalId": ["has already been taken"]}}"#;
        let error = error_for_status(400, body);
        assert!(error.is_taken("integrationExternalId"));
        assert!(!error.is_taken("email"));
        assert!(!error.is_transient());
        let LearnAmpError::Validation { message, .. } = error else {
            panic!("not a validation error");
        };
        assert!(message.starts_with("Validation failed"));
    }

    #[test]
    fn statuses_map_to_variants() {
        let not_found = br#"{"error": "Not found"}"#;
        assert_eq!(error_for_status(404, not_found), LearnAmpError::NotFound);
        assert!(error_for_status(503, b"").is_transient());
        assert!(error_for_status(429, b"").is_transient());
        assert!(error_for_status(401, b"").is_credentials());
        assert!(error_for_status(403, br#"{"error":"scope"}"#).is_credentials());
        assert_eq!(
            error_for_status(409, br#"{"error": "User is deactivated"}"#),
            LearnAmpError::Conflict {
                message: "User is deactivated".into()
            }
        );
        let LearnAmpError::Validation { status, fields, .. } =
            error_for_status(422, b"<html>oops</html>")
        else {
            panic!("not a validation error");
        };
        assert_eq!(status, 422);
        assert!(fields.is_empty());
    }

    #[test]
    fn full_errors_without_arrays_are_tolerated() {
        let parsed = parse_error_body(br#"{"error": "x", "fullErrors": {"email": "is empty"}}"#);
        assert_eq!(parsed.fields["email"], vec!["is empty".to_string()]);
    }

    #[test]
    fn token_errors_keep_only_the_code() {
        let error = token_error(
            401,
            br#"{"error": "invalid_client", "error_description": "Client authentication failed"}"#,
        );
        assert_eq!(
            error,
            LearnAmpError::Unauthorized {
                message: "invalid_client: Client authentication failed".into()
            }
        );
        assert!(error.is_credentials());
    }
}
