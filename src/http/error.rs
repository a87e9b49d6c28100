//! The admin API's error answer: `{"error": "<code>", "message": "<sentence>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The body of every admin API error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A code: `bad_request`, `unauthorized`, `not_found`, `conflict`, `wrong_state`,
    /// `invalid`, `unavailable`, `upstream_failed`.
    pub error: String,
    /// A sentence saying what is wrong and, where it helps, what to do.
    pub message: String,
    /// The field at fault (`invalid` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An admin API error, mapped to its status code in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong admin token.
    #[error("a valid admin bearer token is required")]
    Unauthorized,
    /// 404: no such tenant.
    #[error("no tenant with id `{0}`")]
    TenantNotFound(String),
    /// 404: no such route or employee.
    #[error("{0}")]
    NotFound(String),
    /// 409: the tenant exists.
    #[error("a tenant with id `{0}` already exists")]
    Conflict(String),
    /// 409: the tenant is in a state where the action makes no sense.
    #[error("{0}")]
    WrongState(String),
    /// 422: a field is invalid (named in the message).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// 503: storage or the actor system is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 502: an upstream API failed during a synchronous request (dry run).
    #[error("{0}")]
    Upstream(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::TenantNotFound(_) | Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::WrongState(_) => (StatusCode::CONFLICT, "wrong_state"),
            Self::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(error = %error, "storage failed during an admin request");
        Self::Unavailable("storage is unavailable; retry later".into())
    }
}

impl From<crate::domain::tenant::FieldError> for ApiError {
    fn from(error: crate::domain::tenant::FieldError) -> Self {
        Self::Invalid {
            field: error.field,
            message: error.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let body = ErrorBody {
            error: code.to_string(),
            message: self.to_string(),
            field: match &self {
                Self::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
        };
        (status, Json(body)).into_response()
    }
}
