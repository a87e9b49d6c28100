//! Learn Amp's error bodies: `{"error": "…"}`, plus `fullErrors` for validation, plus the
//! OAuth `{"error", "error_description"}` shape on the token route.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Field-level validation messages, in the order they were found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct FieldErrors(Vec<(String, Vec<String>)>);

impl FieldErrors {
    /// Errors holding one message for one field.
    pub(super) fn one(field: &str, message: &str) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    /// Adds one message for one field.
    pub(super) fn add(&mut self, field: &str, message: &str) {
        match self.0.iter_mut().find(|(name, _)| name == field) {
            Some((_, messages)) => messages.push(message.to_string()),
            None => self.0.push((field.to_string(), vec![message.to_string()])),
        }
    }

    /// Whether nothing was added.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was added, else the 400 parameter error ([`ApiError::params`]).
    pub(super) fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::params(self))
        }
    }

    /// The Grape-style summary: `"email is missing, email is empty, firstName is missing"`.
    pub(super) fn summary(&self) -> String {
        self.0
            .iter()
            .flat_map(|(field, messages)| messages.iter().map(move |m| format!("{field} {m}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `fullErrors` object.
    fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(field, messages)| (field.clone(), json!(messages)))
            .collect();
        Value::Object(map)
    }
}

/// An answer other than success.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// `{"error": message}`.
    #[error("{status}: {message}")]
    Message {
        /// HTTP status.
        status: StatusCode,
        /// The `error` text.
        message: String,
    },
    /// `{"error": message, "fullErrors": {…}}`.
    #[error("{status}: {message}")]
    Validation {
        /// HTTP status.
        status: StatusCode,
        /// The `error` text.
        message: String,
        /// The per-field messages.
        full_errors: FieldErrors,
    },
    /// OAuth error on `/oauth/token`: `{"error": code, "error_description": description}`.
    #[error("{status}: {code}")]
    OAuth {
        /// HTTP status.
        status: StatusCode,
        /// The OAuth error code (`invalid_client`, `invalid_scope`, …).
        code: &'static str,
        /// Human text.
        description: String,
    },
}

impl ApiError {
    /// `{"error": message}` with any status.
    pub(super) fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Message {
            status,
            message: message.into(),
        }
    }

    /// 404 `{"error": "Not found"}`.
    pub(super) fn not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "Not found")
    }

    /// 400 `{"error": message}` without `fullErrors`.
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::message(StatusCode::BAD_REQUEST, message)
    }

    /// 400 parameter validation: the message is the Grape summary of `errors`.
    pub(super) fn params(errors: FieldErrors) -> Self {
        Self::Validation {
            status: StatusCode::BAD_REQUEST,
            message: errors.summary(),
            full_errors: errors,
        }
    }

    /// 400 parameter validation of one field: `{"error": "field message", "fullErrors": …}`.
    pub(super) fn param(field: &str, message: &str) -> Self {
        Self::params(FieldErrors::one(field, message))
    }

    /// 400 with an explicit message and field errors (model validation).
    pub(super) fn validation(message: impl Into<String>, errors: FieldErrors) -> Self {
        Self::Validation {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            full_errors: errors,
        }
    }

    /// An OAuth error on the token route.
    pub(super) fn oauth(status: StatusCode, code: &'static str, description: &str) -> Self {
        Self::OAuth {
            status,
            code,
            description: description.to_string(),
        }
    }

    /// The status of this error.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::Message { status, .. }
            | Self::Validation { status, .. }
            | Self::OAuth { status, .. } => *status,
        }
    }

    /// The JSON body of this error.
    pub(super) fn body(&self) -> Value {
        match self {
            Self::Message { message, .. } => json!({ "error": message }),
            Self::Validation {
                message,
                full_errors,
                ..
            } => json!({ "error": message, "fullErrors": full_errors.to_json() }),
            Self::OAuth {
                code, description, ..
            } => json!({ "error": code, "error_description": description }),
        }
    }

    /// The HTTP answer.
    pub(super) fn into_response_body(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_body()
    }
}

/// The default message for a bare status.
pub(super) fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        StatusCode::BAD_GATEWAY => "Bad gateway",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Internal server error",
    }
}

/// 406 for a non-JSON format.
pub(super) fn not_acceptable() -> ApiError {
    ApiError::message(
        StatusCode::NOT_ACCEPTABLE,
        "Not acceptable: only JSON is available",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_the_documented_required_fields_message() {
        let mut errors = FieldErrors::default();
        errors.add("email", "is missing");
        errors.add("email", "is empty");
        errors.add("firstName", "is missing");
        errors.add("lastName", "is missing");
        assert_eq!(
            errors.summary(),
            "email is missing, email is empty, firstName is missing, lastName is missing"
        );
        let body = ApiError::params(errors).body();
        assert_eq!(
            body["fullErrors"]["email"],
            json!(["is missing", "is empty"])
        );
        assert_eq!(body["fullErrors"]["lastName"], json!(["is missing"]));
    }

    #[test]
    fn oauth_errors_use_the_oauth_shape() {
        let body = ApiError::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "bad client").body();
        assert_eq!(
            body,
            json!({"error": "invalid_client", "error_description": "bad client"})
        );
    }
}
