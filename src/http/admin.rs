//! The admin API (contract §3): tenants created, listed, shown, patched, deleted,
//! synced, dry-run and restarted, every route behind the admin bearer token.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ractor::rpc::CallResult;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::actors::status::TenantView;
use crate::actors::supervisor::SupervisorMsg;
use crate::actors::tenant::{InviteError, TenantMsg};
use crate::domain::tenant::{
    ConnectionInfo, ConnectionMethod, TenantSpec, WebhookSecrets, merge_patch, parse_spec,
};

use super::AppState;
use super::error::ApiError;

/// How long the admin API waits for the supervisor to acknowledge a command.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dry run may take.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The admin routes, behind the bearer-token check.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/admin/tenants/{id}",
            get(show_tenant).patch(patch_tenant).delete(delete_tenant),
        )
        .route("/admin/tenants/{id}/sync", post(sync_tenant))
        .route("/admin/tenants/{id}/restart", post(restart_tenant))
        .route(
            "/admin/tenants/{id}/invitations",
            post(super::invitations::create).delete(super::invitations::revoke),
        )
        .route(
            "/admin/tenants/{id}/employees/{personio_id}/invite",
            post(invite_employee),
        )
        .route_layer(middleware::from_fn_with_state(state, require_admin_token))
}

async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let expected = state.admin_token.expose().as_bytes();
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::as_bytes)
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(presented.ct_eq(expected)) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

fn parse_json(body: &Bytes) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON: {error}")))
}

fn view_of(state: &AppState, id: &str) -> Result<TenantView, ApiError> {
    state
        .views
        .view(id)
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))
}

async fn create_tenant(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let mut document = parse_json(&body)?;
    let adopt_data = match document
        .as_object_mut()
        .and_then(|fields| fields.remove("adopt_data"))
    {
        None => false,
        Some(serde_json::Value::Bool(adopt)) => adopt,
        Some(_) => {
            return Err(ApiError::Invalid {
                field: "adopt_data".into(),
                message: "must be true or false".into(),
            });
        }
    };
    let mut spec = parse_spec(document)?;
    spec.webhook = Some(WebhookSecrets::generate());
    spec.connection = operator_connection(&spec, state.services.clock.now());
    if state.store.tenant_spec(&spec.id)?.is_some() {
        return Err(ApiError::Conflict(spec.id));
    }
    if !adopt_data && state.store.has_tenant_data(&spec.id) {
        return Err(ApiError::WrongState(format!(
            "data of an earlier tenant `{}` (deleted without purge) is kept: create the tenant with \"adopt_data\": true to take it over",
            spec.id
        )));
    }
    if !state.store.insert_new_tenant_spec(&spec).await? {
        return Err(ApiError::Conflict(spec.id));
    }
    let id = spec.id.clone();
    tracing::info!(tenant_id = %id, "tenant created");
    start_tenant(&state, spec).await?;
    Ok((StatusCode::CREATED, Json(view_of(&state, &id)?)))
}

/// The connection of a spec an operator posts: client credentials by an operator (no
/// email), now; none while the tenant awaits its connection.
fn operator_connection(
    spec: &TenantSpec,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<ConnectionInfo> {
    spec.personio.as_ref().map(|_| ConnectionInfo {
        method: ConnectionMethod::ClientCredentials,
        by: None,
        at: now.to_rfc3339(),
    })
}

/// Asks the supervisor to spawn a tenant.
pub async fn start_tenant(state: &AppState, spec: TenantSpec) -> Result<(), ApiError> {
    let answer = state
        .supervisor
        .call(
            |reply| SupervisorMsg::StartTenant(spec, reply),
            Some(SUPERVISOR_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(Ok(()))) => Ok(()),
        Ok(CallResult::Success(Err(message))) => Err(ApiError::Unavailable(message)),
        _ => Err(ApiError::Unavailable(
            "the supervisor did not answer".into(),
        )),
    }
}

async fn list_tenants(State(state): State<AppState>) -> Json<Vec<TenantView>> {
    Json(state.views.views())
}

async fn show_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    Ok(Json(view_of(&state, &id)?))
}

async fn patch_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TenantView>, ApiError> {
    let patch = parse_json(&body)?;
    if !patch.is_object() {
        return Err(ApiError::Invalid {
            field: "spec".into(),
            message: "a merge patch must be a JSON object".into(),
        });
    }
    for forbidden in ["id", "webhook", "personio_oidc", "connection"] {
        if patch.get(forbidden).is_some() {
            return Err(ApiError::Invalid {
                field: forbidden.into(),
                message: "cannot be changed".into(),
            });
        }
    }
    let stored = state
        .store
        .tenant_spec(&id)?
        .ok_or_else(|| ApiError::TenantNotFound(id.clone()))?;
    require_restated_secrets(&stored, &patch)?;
    let secrets = stored.webhook.clone();
    let connection = stored.connection.clone();
    let mut document = serde_json::to_value(TenantSpec {
        webhook: None,
        personio_oidc: None,
        connection: None,
        ..stored
    })
    .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    merge_patch(&mut document, &patch);
    let mut updated = parse_spec(document)?;
    updated.webhook = secrets;
    // Credentials in the patch are the operator's connection; otherwise the stored
    // connection (an OpenID grant whose refresh token may rotate meanwhile) is kept.
    let new_credentials = patch.get("personio").is_some_and(|p| !p.is_null());
    updated.connection = match connection {
        Some(info) if !new_credentials => Some(info),
        _ => operator_connection(&updated, state.services.clock.now()),
    };
    let updated = state
        .store
        .update_tenant_spec(&id, |current| {
            let mut next = updated.clone();
            if !new_credentials {
                next.personio_oidc = current.personio_oidc.clone();
            }
            if !next.is_connected() {
                next.connection = None;
            }
            *current = next.clone();
            next
        })
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.clone()))?;
    tracing::info!(tenant_id = %id, "tenant spec patched");
    let answer = state
        .supervisor
        .call(
            |reply| SupervisorMsg::RestartTenant(id.clone(), Some(updated), reply),
            Some(SUPERVISOR_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(_)) => Ok(Json(view_of(&state, &id)?)),
        _ => Err(ApiError::Unavailable(
            "the supervisor did not answer".into(),
        )),
    }
}

/// A patch that points a system at another host or client (`base_url`, `client_id`)
/// must restate that system's `client_secret`: the stored secret is never sent to a
/// host or for a client it was not given for.
fn require_restated_secrets(
    stored: &TenantSpec,
    patch: &serde_json::Value,
) -> Result<(), ApiError> {
    let mut systems = vec![(
        "learnamp",
        &stored.learnamp.base_url,
        &stored.learnamp.client_id,
    )];
    if let Some(personio) = &stored.personio {
        systems.push(("personio", &personio.base_url, &personio.client_id));
    }
    for (system, base_url, client_id) in systems {
        let Some(section) = patch.get(system) else {
            continue;
        };
        let changes = |field: &str, current: &str| {
            section
                .get(field)
                .is_some_and(|value| value.as_str() != Some(current))
        };
        let restated = section
            .get("client_secret")
            .is_some_and(|secret| !secret.is_null());
        if (changes("base_url", base_url) || changes("client_id", client_id)) && !restated {
            return Err(ApiError::Invalid {
                field: format!("{system}.client_secret"),
                message: format!(
                    "must be given with a new {system}.base_url or {system}.client_id (the stored secret is never sent to a new host or client)"
                ),
            });
        }
    }
    Ok(())
}

/// `?purge=true`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

async fn delete_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) = query.map_err(|error| ApiError::Invalid {
        field: "purge".into(),
        message: error.body_text(),
    })?;
    view_of(&state, &id)?;
    let stored = state.store.tenant_spec(&id)?;
    // No delivery is stored for the tenant from now on, neither while it stops nor
    // after its data is gone. Until the supervisor confirms they get a 503, which
    // Personio retries: if the delete is refused, nothing is lost.
    state.router.close_webhook(&id);
    let answer = state
        .supervisor
        .call(
            |reply| SupervisorMsg::StopTenant(id.clone(), reply),
            Some(SUPERVISOR_TIMEOUT),
        )
        .await;
    if !matches!(answer, Ok(CallResult::Success(()))) {
        match &stored {
            Some(spec) => state.services.announce(spec),
            None => state.router.unregister_webhook(&id),
        }
        tracing::warn!(tenant_id = %id, "delete refused: the supervisor did not confirm the stop");
        return Err(ApiError::Unavailable(
            "the supervisor did not confirm that the tenant stopped in time; nothing was removed, retry the DELETE".into(),
        ));
    }
    if let Some(spec) = stored
        && let Some(secrets) = &spec.webhook
        && spec.is_connected()
    {
        let (personio, _) = state.services.clients(&spec);
        let url = state.services.webhook_url(secrets.key.expose());
        if let Err(error) = crate::sync::subscription::remove(&personio, &id, &url).await {
            tracing::warn!(tenant_id = %id, error = %error, "webhook subscription not removed from Personio");
        }
    }
    state.store.remove_tenant(&id, query.purge).await?;
    state.services.oidc_tokens.forget(&id);
    state.router.remove(&id);
    state.views.remove(&id);
    tracing::info!(tenant_id = %id, purge = query.purge, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `?dry_run=true` / `?confirm=true`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    confirm: bool,
}

async fn sync_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|error| ApiError::Invalid {
        field: "query".into(),
        message: error.body_text(),
    })?;
    view_of(&state, &id)?;
    let actor = state.router.actor(&id).ok_or_else(|| {
        ApiError::WrongState(format!(
            "tenant `{id}` is not running; restart it with POST /admin/tenants/{id}/restart"
        ))
    })?;
    if query.dry_run {
        let answer = actor.call(TenantMsg::DryRun, Some(DRY_RUN_TIMEOUT)).await;
        return match answer {
            Ok(CallResult::Success(Ok(plan))) => Ok(Json(plan).into_response()),
            Ok(CallResult::Success(Err(message))) => Err(ApiError::Upstream(message)),
            _ => Err(ApiError::Unavailable(
                "the tenant did not answer the dry run in time".into(),
            )),
        };
    }
    actor
        .cast(TenantMsg::FullSync {
            confirm: query.confirm,
        })
        .map_err(|_| ApiError::WrongState(format!("tenant `{id}` is stopping")))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "accepted"})),
    )
        .into_response())
}

async fn restart_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    view_of(&state, &id)?;
    let spec = state.store.tenant_spec(&id)?;
    let answer = state
        .supervisor
        .call(
            |reply| SupervisorMsg::RestartTenant(id.clone(), spec, reply),
            Some(SUPERVISOR_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(Ok(()))) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"status": "restarting"})),
        )),
        Ok(CallResult::Success(Err(message))) => Err(ApiError::Unavailable(message)),
        _ => Err(ApiError::Unavailable(
            "the supervisor did not answer".into(),
        )),
    }
}

async fn invite_employee(
    State(state): State<AppState>,
    Path((id, personio_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    view_of(&state, &id)?;
    let actor = state.router.actor(&id).ok_or_else(|| {
        ApiError::WrongState(format!(
            "tenant `{id}` is not running; restart it with POST /admin/tenants/{id}/restart"
        ))
    })?;
    let answer = actor
        .call(
            |reply| TenantMsg::InviteNow(personio_id.clone(), reply),
            Some(DRY_RUN_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(Ok(outcome))) => Ok(Json(serde_json::json!({
            "personio_id": personio_id,
            "outcome": outcome,
        }))),
        Ok(CallResult::Success(Err(InviteError::UnknownPerson(person)))) => {
            Err(ApiError::NotFound(format!(
                "Personio person {person} has no Learn Amp user in tenant `{id}`"
            )))
        }
        Ok(CallResult::Success(Err(
            error @ (InviteError::Deactivated(_) | InviteError::InvitationUnsupported(_)),
        ))) => Err(ApiError::WrongState(error.to_string())),
        Ok(CallResult::Success(Err(error))) => Err(ApiError::Upstream(error.to_string())),
        _ => Err(ApiError::Unavailable(
            "the tenant did not answer in time".into(),
        )),
    }
}
