//! `POST /admin/tenants/{id}/invitations` (a connect link for the customer's
//! administrator) and `DELETE …/invitations` (revoke every open one), contract §7.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::connect::InvitationError;

/// The optional body of `POST …/invitations` (an empty body is `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    /// Whom the link is for (shown on the connect page's records only).
    #[serde(default)]
    email: Option<String>,
    /// 1–30, default 7.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A new invitation link.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationAnswer {
    /// The connect link for the customer's administrator (holds the invitation token).
    pub url: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
}

/// `POST /admin/tenants/{id}/invitations` → 201 `{"url", "expires_at"}`.
#[utoipa::path(
    post,
    path = "/admin/tenants/{id}/invitations",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = InvitationRequest, description = "Optional: an empty body is `{}`"),
    responses(
        (status = 201, description = "A connect link for the customer's administrator", body = InvitationAnswer),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "A field is invalid (named)", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<InvitationAnswer>), ApiError> {
    let request: InvitationRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InvitationRequest::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|error| {
            ApiError::BadRequest(format!("the body is not valid JSON: {error}"))
        })?;
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            ApiError::Invalid {
                field: if path == "." { "body".into() } else { path },
                message: error.into_inner().to_string(),
            }
        })?
    };
    let made = state
        .services
        .invitations()
        .create(&id, request.email, request.expires_in_days)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationAnswer {
            url: made.url,
            expires_at: made.expires_at.to_rfc3339(),
        }),
    ))
}

/// `DELETE /admin/tenants/{id}/invitations` → 204.
#[utoipa::path(
    delete,
    path = "/admin/tenants/{id}/invitations",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 204, description = "Every open invitation link of the tenant is revoked"),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .invitations()
        .revoke_all(&id)
        .await
        .map_err(api_error)?;
    let ended = state.sessions.end_tenant(&id).await;
    tracing::info!(tenant_id = %id, sessions_ended = ended, "sessions of revoked invitations ended");
    Ok(StatusCode::NO_CONTENT)
}

fn api_error(error: InvitationError) -> ApiError {
    match error {
        InvitationError::UnknownTenant(id) => ApiError::TenantNotFound(id),
        InvitationError::Invalid(field, message) => ApiError::Invalid {
            field: field.into(),
            message,
        },
        InvitationError::Store(error) => error.into(),
        other => ApiError::NotFound(other.to_string()),
    }
}
