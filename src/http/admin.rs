//! The admin API (contract §3): tenants created, listed, shown, patched, deleted,
//! synced, dry-run and restarted, their people listed; every route behind the admin
//! bearer token. [`api`] is the one list of routes: it builds both the router and the
//! OpenAPI document served at `/admin/openapi.json` (from each handler's
//! `#[utoipa::path]` and the `ToSchema` types it names).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ractor::rpc::CallResult;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actors::status::{TenantState, TenantView};
use crate::actors::supervisor::SupervisorMsg;
use crate::actors::tenant::{InviteError, InviteOutcome, TenantMsg};
use crate::domain::tenant::{
    ApiCredentials, ConnectionInfo, ConnectionMethod, Settings, TenantSpec, WebhookSecrets,
    merge_patch, parse_spec,
};
use crate::sync::plan::view::PlanView;

use super::error::{ApiError, ErrorBody};
use super::people;
use super::{AppShared, AppState};
use crate::app::directory::{Command, CommandFailure, CommandOutcome, FailureKind};

/// How long the admin API waits for the supervisor to acknowledge a command.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dry run may take.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The document's frame: title, version, the admin token's security scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "personio-sync admin API",
        description = "Tenants, their syncs and their people. Every route needs `Authorization: Bearer <admin token>`; errors are `{error, message}` (ErrorBody)."
    ),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Adds the `admin_token` bearer scheme the routes name.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every admin route, each with its OpenAPI operation. Handlers of one path go in one
/// `routes!` (axum refuses a path routed twice). A new route: a handler with
/// `#[utoipa::path(...)]` naming its request and answer types (which derive
/// `ToSchema`), added here; `openapi_covers_every_admin_route` checks it.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(show_tenant, patch_tenant, delete_tenant))
        .routes(routes!(sync_tenant))
        .routes(routes!(restart_tenant))
        .routes(routes!(people::list_people))
        .routes(routes!(people::show_person))
        .routes(routes!(
            super::invitations::create,
            super::invitations::revoke
        ))
        .routes(routes!(invite_employee))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 document of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The admin routes, behind the bearer-token check.
pub fn routes(state: AppState) -> Router<AppState> {
    let (router, _) = api().split_for_parts();
    router.route_layer(middleware::from_fn_with_state(state, require_admin_token))
}

/// The document, rendered once.
static OPENAPI_JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

/// The OpenAPI 3.1 document of this API (behind the admin token: the front door faces
/// the internet, and the admin surface's map is for operators).
#[utoipa::path(
    get,
    path = "/admin/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the admin API", body = Object, content_type = "application/json"),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
    )
)]
async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON.as_str(),
    )
        .into_response()
}

/// A new tenant: its spec, and whether to take over data kept by an earlier delete.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTenant {
    /// 1–63 of `a-z 0-9 -`.
    pub id: String,
    /// Personio API access; absent: the tenant awaits its connection by the customer's
    /// administrator (`POST …/invitations`).
    pub personio: Option<ApiCredentials>,
    /// Learn Amp API access.
    pub learnamp: ApiCredentials,
    /// Settings (every one optional).
    #[serde(default)]
    pub settings: Option<Settings>,
    /// Take over the data of an earlier tenant with this id deleted without purge.
    #[serde(default)]
    pub adopt_data: Option<bool>,
}

/// A JSON merge patch (RFC 7396) of a tenant spec: any part of `personio`,
/// `learnamp` and `settings`; `id` cannot change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TenantPatch {
    /// Changed Personio credentials (a new `base_url` or `client_id` needs the
    /// `client_secret`).
    #[schema(value_type = Option<Object>)]
    pub personio: Option<serde_json::Value>,
    /// Changed Learn Amp credentials (same rule).
    #[schema(value_type = Option<Object>)]
    pub learnamp: Option<serde_json::Value>,
    /// Changed settings (`null` restores a default).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// The answer of an accepted command.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusAnswer {
    /// `accepted` (sync) or `restarting` (restart).
    pub status: String,
}

/// What a manual invitation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteAnswer {
    /// The person.
    pub personio_id: String,
    /// `sent`, or `already_invited` (nothing sent).
    pub outcome: InviteOutcome,
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

/// The actor of a running tenant, or 404 / 409 saying what the operator can do.
fn running_actor(state: &AppShared, id: &str) -> Result<ractor::ActorRef<TenantMsg>, ApiError> {
    let view = state
        .views
        .view(id)
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
    state.router.actor(id).ok_or_else(|| {
        ApiError::WrongState(if view.state == TenantState::AwaitingConnection {
            format!(
                "tenant `{id}` is awaiting its Personio connection: invite the customer's admin with POST /admin/tenants/{id}/invitations (personio-sync tenants invite {id})"
            )
        } else {
            format!("tenant `{id}` is not running; restart it with POST /admin/tenants/{id}/restart")
        })
    })
}

/// Runs `command` for tenant `id` on the node that runs it (here, or its owner through
/// the cluster directory), waiting at most `deadline`.
async fn dispatch(
    state: &AppState,
    id: &str,
    command: Command,
    deadline: Duration,
) -> Result<serde_json::Value, ApiError> {
    state
        .directory
        .run(state.as_ref(), id, command, deadline)
        .await
        .map_err(api_error)
}

/// A failed command as the contract answers it.
fn api_error(failure: CommandFailure) -> ApiError {
    match failure.kind {
        FailureKind::NotFound => ApiError::NotFound(failure.message),
        FailureKind::WrongState => ApiError::WrongState(failure.message),
        FailureKind::Upstream => ApiError::Upstream(failure.message),
        FailureKind::Unavailable => ApiError::Unavailable(failure.message),
    }
}

/// An API error as a failed command (the owner's side of [`dispatch`]).
fn failure(error: ApiError) -> CommandFailure {
    let kind = match &error {
        ApiError::TenantNotFound(_) | ApiError::NotFound(_) => FailureKind::NotFound,
        ApiError::WrongState(_) | ApiError::Conflict(_) => FailureKind::WrongState,
        ApiError::Upstream(_) => FailureKind::Upstream,
        _ => FailureKind::Unavailable,
    };
    CommandFailure::new(kind, error.to_string())
}

/// Restarts tenant `id` here with its stored spec (the owner's side of a restart).
async fn restart_with_stored_spec(state: &AppShared, id: &str) -> CommandOutcome {
    let spec = state
        .store
        .tenant_spec(id)
        .await
        .map_err(|e| failure(e.into()))?;
    crate::actors::supervisor::restart_tenant(&state.supervisor, id, spec)
        .await
        .map_err(|message| CommandFailure::new(FailureKind::Unavailable, message))?;
    Ok(serde_json::Value::Null)
}

/// Executes `command` for tenant `id`, which runs in this process: the one
/// implementation of every command, whether the request came to this node or through
/// the cluster directory from another.
pub async fn execute(state: &AppShared, id: &str, command: Command) -> CommandOutcome {
    match command {
        Command::Sync { confirm } => {
            running_actor(state, id)
                .map_err(failure)?
                .cast(TenantMsg::FullSync { confirm })
                .map_err(|_| {
                    CommandFailure::new(
                        FailureKind::WrongState,
                        format!("tenant `{id}` is stopping"),
                    )
                })?;
            Ok(serde_json::Value::Null)
        }
        Command::DryRun => {
            let actor = running_actor(state, id).map_err(failure)?;
            match actor.call(TenantMsg::DryRun, Some(DRY_RUN_TIMEOUT)).await {
                Ok(CallResult::Success(Ok(plan))) => {
                    Ok(serde_json::to_value(plan).expect("plans serialise to JSON"))
                }
                Ok(CallResult::Success(Err(message))) => {
                    Err(CommandFailure::new(FailureKind::Upstream, message))
                }
                _ => Err(CommandFailure::new(
                    FailureKind::Unavailable,
                    "the tenant did not answer the dry run in time",
                )),
            }
        }
        Command::Preview { settings } => {
            let actor = running_actor(state, id).map_err(failure)?;
            let timezone = settings.tz();
            let answer = actor
                .call(
                    |reply| TenantMsg::DryRunWith(settings, reply),
                    Some(crate::web::settings::PREVIEW_TIMEOUT),
                )
                .await;
            match answer {
                Ok(CallResult::Success(Ok(plan))) => {
                    let preview = crate::web::settings::Preview::of(&plan, timezone);
                    Ok(serde_json::to_value(preview).expect("previews serialise to JSON"))
                }
                Ok(CallResult::Success(Err(message))) => {
                    Err(CommandFailure::new(FailureKind::Upstream, message))
                }
                _ => Err(CommandFailure::new(
                    FailureKind::Unavailable,
                    "the tenant did not answer the preview in time",
                )),
            }
        }
        Command::Reconnected => {
            let store = state
                .store
                .tenant(id)
                .await
                .map_err(|e| failure(e.into()))?;
            if store.initial_sync_done().map_err(|e| failure(e.into()))? {
                store.mark_reconcile_due().map_err(|e| failure(e.into()))?;
                store.flush().await.map_err(|e| failure(e.into()))?;
            }
            restart_with_stored_spec(state, id).await
        }
        Command::Restart => restart_with_stored_spec(state, id).await,
        Command::Stop => {
            let answer = state
                .supervisor
                .call(
                    |reply| SupervisorMsg::StopTenant(id.to_string(), reply),
                    Some(SUPERVISOR_TIMEOUT),
                )
                .await;
            match answer {
                Ok(CallResult::Success(())) => Ok(serde_json::Value::Null),
                _ => Err(CommandFailure::new(
                    FailureKind::Unavailable,
                    "the supervisor did not confirm that the tenant stopped in time; nothing was removed, retry the DELETE",
                )),
            }
        }
        Command::InviteNow { personio_id } => {
            let actor = running_actor(state, id).map_err(failure)?;
            let answer = actor
                .call(
                    |reply| TenantMsg::InviteNow(personio_id.clone(), reply),
                    Some(DRY_RUN_TIMEOUT),
                )
                .await;
            match answer {
                Ok(CallResult::Success(Ok(outcome))) => {
                    Ok(serde_json::to_value(outcome).expect("outcomes serialise to JSON"))
                }
                Ok(CallResult::Success(Err(InviteError::UnknownPerson(person)))) => {
                    Err(CommandFailure::new(
                        FailureKind::NotFound,
                        format!("Personio person {person} has no Learn Amp user in tenant `{id}`"),
                    ))
                }
                Ok(CallResult::Success(Err(
                    error @ (InviteError::Deactivated(_) | InviteError::InvitationUnsupported(_)),
                ))) => Err(CommandFailure::new(
                    FailureKind::WrongState,
                    error.to_string(),
                )),
                Ok(CallResult::Success(Err(error))) => Err(CommandFailure::new(
                    FailureKind::Upstream,
                    error.to_string(),
                )),
                _ => Err(CommandFailure::new(
                    FailureKind::Unavailable,
                    "the tenant did not answer in time",
                )),
            }
        }
    }
}

/// Creates a tenant and starts it.
#[utoipa::path(
    post,
    path = "/admin/tenants",
    tag = "tenants",
    request_body = NewTenant,
    responses(
        (status = 201, description = "Created; the tenant starts", body = TenantView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 409, description = "The id is taken, or kept data needs `adopt_data`", body = ErrorBody),
        (status = 422, description = "A field is invalid (named)", body = ErrorBody),
    )
)]
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
    if state.store.tenant_spec(&spec.id).await?.is_some() {
        return Err(ApiError::Conflict(spec.id));
    }
    if !adopt_data && state.store.has_tenant_data(&spec.id).await {
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
    state
        .start_tenant(spec)
        .await
        .map_err(ApiError::Unavailable)
}

/// Every tenant's view.
#[utoipa::path(
    get,
    path = "/admin/tenants",
    tag = "tenants",
    responses((status = 200, description = "Every tenant's view, by id", body = Vec<TenantView>))
)]
async fn list_tenants(State(state): State<AppState>) -> Json<Vec<TenantView>> {
    Json(state.views.views())
}

/// One tenant's view.
#[utoipa::path(
    get,
    path = "/admin/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant's view", body = TenantView),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
async fn show_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    Ok(Json(view_of(&state, &id)?))
}

/// Merges a patch into the spec and restarts the tenant with it.
#[utoipa::path(
    patch,
    path = "/admin/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    request_body = TenantPatch,
    responses(
        (status = 200, description = "Patched; the tenant restarts", body = TenantView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "A field is invalid (named)", body = ErrorBody),
    )
)]
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
        .tenant_spec(&id)
        .await?
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
    Ok(Json(restart_with(&state, updated).await?))
}

/// Stores new `settings` for tenant `id` (the rest of its spec as stored at that
/// moment, so a refresh token rotated meanwhile is kept) and restarts it with them; the
/// tenant runs a full reconciliation when the settings changed. The settings page's
/// PATCH; the caller has validated `settings`.
pub async fn store_settings(
    state: &AppState,
    id: &str,
    settings: Settings,
) -> Result<TenantView, ApiError> {
    let updated = state
        .store
        .update_tenant_spec(id, |current| {
            current.settings = settings.clone();
            current.clone()
        })
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
    tracing::info!(tenant_id = %id, "tenant settings changed on the settings page");
    restart_with(state, updated).await
}

/// Restarts a tenant with its just-stored spec.
async fn restart_with(state: &AppState, updated: TenantSpec) -> Result<TenantView, ApiError> {
    let id = updated.id.clone();
    tracing::info!(tenant_id = %id, "tenant spec patched");
    if !state.directory.runs_here(state.as_ref(), &id) {
        // The owner restarts with the spec just stored.
        dispatch(state, &id, Command::Restart, SUPERVISOR_TIMEOUT).await?;
        return view_of(state, &id);
    }
    let answer = state
        .supervisor
        .call(
            |reply| SupervisorMsg::RestartTenant(id.clone(), Some(updated), reply),
            Some(SUPERVISOR_TIMEOUT),
        )
        .await;
    match answer {
        Ok(CallResult::Success(_)) => view_of(state, &id),
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
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Remove the tenant's data too (else it is kept, for a later `adopt_data`).
    #[serde(default)]
    purge: bool,
}

/// Stops a tenant and removes it (its data too with `purge`).
#[utoipa::path(
    delete,
    path = "/admin/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The stop was not confirmed in time; nothing removed", body = ErrorBody),
    )
)]
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
    let stored = state.store.tenant_spec(&id).await?;
    // No delivery is stored for the tenant from now on, neither while it stops nor
    // after its data is gone. Until the supervisor confirms they get a 503, which
    // Personio retries: if the delete is refused, nothing is lost.
    state.router.close_webhook(&id);
    if let Err(error) = dispatch(&state, &id, Command::Stop, SUPERVISOR_TIMEOUT).await {
        match &stored {
            Some(spec) => state.services.announce(spec).await,
            None => state.router.unregister_webhook(&id),
        }
        tracing::warn!(tenant_id = %id, "delete refused: the supervisor did not confirm the stop");
        return Err(error);
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
    state.sessions.end_tenant(&id).await;
    state.services.oidc_tokens.forget(&id);
    state.router.remove(&id);
    state.views.remove(&id);
    tracing::info!(tenant_id = %id, purge = query.purge, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `?dry_run=true` / `?confirm=true`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SyncQuery {
    /// Answer the plan and write nothing.
    #[serde(default)]
    dry_run: bool,
    /// Lift the mass-deactivation guard once.
    #[serde(default)]
    confirm: bool,
}

/// Starts a full reconciliation, or plans one (`dry_run`).
#[utoipa::path(
    post,
    path = "/admin/tenants/{id}/sync",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id"), SyncQuery),
    responses(
        (status = 200, description = "`dry_run`: the plan, nothing written", body = PlanView),
        (status = 202, description = "The sync starts; follow `progress` and `last_sync` in the view", body = StatusAnswer),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant is not running", body = ErrorBody),
        (status = 502, description = "`dry_run`: an API failed", body = ErrorBody),
    )
)]
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
    if query.dry_run {
        let plan = dispatch(&state, &id, Command::DryRun, DRY_RUN_TIMEOUT).await?;
        return Ok(Json(plan).into_response());
    }
    let command = Command::Sync {
        confirm: query.confirm,
    };
    dispatch(&state, &id, command, SUPERVISOR_TIMEOUT).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StatusAnswer {
            status: "accepted".into(),
        }),
    )
        .into_response())
}

/// Restarts a failed or running tenant.
#[utoipa::path(
    post,
    path = "/admin/tenants/{id}/restart",
    tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 202, description = "The tenant restarts", body = StatusAnswer),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
async fn restart_tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<StatusAnswer>), ApiError> {
    view_of(&state, &id)?;
    dispatch(&state, &id, Command::Restart, SUPERVISOR_TIMEOUT).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StatusAnswer {
            status: "restarting".into(),
        }),
    ))
}

/// Invites one person now (never twice, never a deactivated user).
#[utoipa::path(
    post,
    path = "/admin/tenants/{id}/employees/{personio_id}/invite",
    tag = "people",
    params(
        ("id" = String, Path, description = "Tenant id"),
        ("personio_id" = String, Path, description = "Personio employee id"),
    ),
    responses(
        (status = 200, description = "What the invitation did", body = InviteAnswer),
        (status = 404, description = "No such tenant, or the person has no Learn Amp user", body = ErrorBody),
        (status = 409, description = "Deactivated, or the account lacks the invitation route", body = ErrorBody),
        (status = 502, description = "Learn Amp failed", body = ErrorBody),
    )
)]
async fn invite_employee(
    State(state): State<AppState>,
    Path((id, personio_id)): Path<(String, String)>,
) -> Result<Json<InviteAnswer>, ApiError> {
    view_of(&state, &id)?;
    let command = Command::InviteNow {
        personio_id: personio_id.clone(),
    };
    let outcome = dispatch(&state, &id, command, DRY_RUN_TIMEOUT).await?;
    let outcome = serde_json::from_value(outcome).map_err(|error| {
        ApiError::Unavailable(format!(
            "the invitation's outcome could not be read: {error}"
        ))
    })?;
    Ok(Json(InviteAnswer {
        personio_id,
        outcome,
    }))
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::{HttpMethod, Operation};
    use utoipa::openapi::{RefOr, Required};

    use super::*;

    /// The operations of the document, with their method and path.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, &'static str, Operation)> {
        let mut found = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                (HttpMethod::Get, "GET", &item.get),
                (HttpMethod::Post, "POST", &item.post),
                (HttpMethod::Patch, "PATCH", &item.patch),
                (HttpMethod::Delete, "DELETE", &item.delete),
                (HttpMethod::Put, "PUT", &item.put),
            ];
            for (_, name, operation) in methods {
                if let Some(operation) = operation {
                    found.push((path.clone(), name, operation.clone()));
                }
            }
        }
        found
    }

    /// Whether `schema` is a reference the document's components resolve, or inline.
    fn resolves(doc: &utoipa::openapi::OpenApi, schema: &RefOr<utoipa::openapi::Schema>) -> bool {
        match schema {
            RefOr::Ref(reference) => {
                let name = reference
                    .ref_location
                    .trim_start_matches("#/components/schemas/");
                doc.components
                    .as_ref()
                    .is_some_and(|components| components.schemas.contains_key(name))
            }
            RefOr::T(_) => true,
        }
    }

    /// Every operation of the admin router is in the document (the router and the
    /// document are built from one list, [`api`]), with its parameters, its request
    /// body's schema where it takes one, and a JSON schema for every answer that has a
    /// body; every schema named resolves.
    #[test]
    fn openapi_covers_every_admin_route() {
        let doc = openapi();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let operations = operations(&doc);
        let mut routes: Vec<String> = operations
            .iter()
            .map(|(path, method, _)| format!("{method} {path}"))
            .collect();
        routes.sort();
        // The routes README's table lists; a route added to `api` shows up here.
        assert_eq!(
            routes,
            [
                "DELETE /admin/tenants/{id}",
                "DELETE /admin/tenants/{id}/invitations",
                "GET /admin/openapi.json",
                "GET /admin/tenants",
                "GET /admin/tenants/{id}",
                "GET /admin/tenants/{id}/employees",
                "GET /admin/tenants/{id}/employees/{personio_id}",
                "PATCH /admin/tenants/{id}",
                "POST /admin/tenants",
                "POST /admin/tenants/{id}/employees/{personio_id}/invite",
                "POST /admin/tenants/{id}/invitations",
                "POST /admin/tenants/{id}/restart",
                "POST /admin/tenants/{id}/sync",
            ]
        );
        let with_body = ["POST /admin/tenants", "PATCH /admin/tenants/{id}"];
        for (path, method, operation) in &operations {
            let route = format!("{method} {path}");
            // Every `{param}` of the path is a declared path parameter.
            let declared: Vec<String> = operation
                .parameters
                .iter()
                .flatten()
                .map(|parameter| parameter.name.clone())
                .collect();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(['{', '}']);
                assert!(
                    declared.iter().any(|d| d == name),
                    "{route}: {name} undeclared"
                );
            }
            match &operation.request_body {
                Some(body) => {
                    let content = body.content.get("application/json").expect("JSON body");
                    assert!(
                        content.schema.as_ref().is_some_and(|s| resolves(&doc, s)),
                        "{route}"
                    );
                    assert!(matches!(body.required, Some(Required::True)), "{route}");
                }
                None => assert!(
                    !with_body.contains(&route.as_str()),
                    "{route} needs its request body"
                ),
            }
            assert!(
                !operation.responses.responses.is_empty(),
                "{route} has no answer"
            );
            let mut success = false;
            for (status, response) in &operation.responses.responses {
                let RefOr::T(response) = response else {
                    panic!("{route} {status}: response by reference")
                };
                success |= status.starts_with('2');
                if status == "204" {
                    assert!(response.content.is_empty(), "{route}: 204 with a body");
                    continue;
                }
                let content = response
                    .content
                    .get("application/json")
                    .unwrap_or_else(|| panic!("{route} {status}: no JSON answer"));
                let schema = content.schema.as_ref().expect("answer schema");
                assert!(
                    resolves(&doc, schema),
                    "{route} {status}: unresolved schema"
                );
            }
            assert!(success, "{route}: no success answer");
        }
        // The views and people answers are described field by field.
        let schemas = &doc.components.as_ref().unwrap().schemas;
        for name in [
            "TenantView",
            "PeoplePage",
            "PersonDetail",
            "PersonChange",
            "Progress",
            "NewTenant",
            "PlanView",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(name), "{name} missing from components");
        }
        let view = serde_json::to_value(&schemas["TenantView"]).unwrap();
        assert!(view["properties"]["progress"].is_object(), "{view}");
        // No secret's place is shown in an answer: spec secrets are write-only.
        let credentials = serde_json::to_value(&schemas["ApiCredentials"]).unwrap();
        assert_eq!(
            credentials["properties"]["client_secret"]["writeOnly"], true,
            "{credentials}"
        );
    }
}
