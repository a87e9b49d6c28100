//! The HTTP front door: admin API, health, metrics and (later) webhooks, on one axum
//! router.

pub mod admin;
pub mod error;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use ractor::ActorRef;

use crate::actors::status::StatusBoard;
use crate::actors::supervisor::SupervisorMsg;
use crate::actors::tenant::TenantDeps;
use crate::domain::Secret;
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The status board.
    pub board: Arc<StatusBoard>,
    /// The supervisor.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The admin bearer token.
    pub admin_token: Secret,
    /// Shared tenant dependencies (URLs, clients).
    pub deps: TenantDeps,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(admin::routes(state.clone()))
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .with_state(state)
}
