//! A faithful, strict fake of Learn Amp's public API (axum), following
//! `/work/shared/reference/learnamp-api.md` §2–§9 and §14, plus the **assumed** contracts
//! A–C of its final section (invitation route, `leaveDate`, avatar upload).
//!
//! Choices where the reference says **[unconfirmed]** (each is the stricter or the more
//! common Rails/Grape reading):
//! - `GET /v1/users` and `GET /v1/teams`: default `perPage` is 25; a larger `perPage` than
//!   [`LearnAmpSimConfig::max_per_page`] is capped (the `Per-Page` header shows the cap);
//!   `page`/`perPage` below 1 or not numeric give 400 `page is invalid`. Order is id
//!   ascending. `Total-Pages` is `ceil(Total / Per-Page)` (0 for an empty result).
//! - Without a `filters[status]` filter, **deactivated users are not listed**.
//! - `filters[email]` is an exact, case-insensitive match. `filters[name]` on teams is a
//!   case-insensitive substring match.
//! - `by_integration_external_id` finds deactivated users too.
//! - Deactivating an already deactivated user answers 204 (no change).
//! - `customFields` in forms: Rails encoding `customFields[][name]=…&customFields[][value]=…`
//!   (a new entry starts when a key repeats) and the indexed `customFields[0][name]` form.
//! - Users and teams endpoints accept form bodies only (URL-encoded or multipart); any other
//!   non-empty body gives 400. Membership endpoints accept JSON only.
//! - Status display objects: "Not invited" (time `null`), "Invite scheduled"
//!   ("Scheduled 01 Jan 25"), "Invite pending" ("Sent …"), "Confirmed" ("On …"),
//!   "Deactivated" ("On …").
//! - Tokens carry the requested scopes; a token without `public` must hold the scope the
//!   reference lists for the route (403 `{"error": "Insufficient scope: …"}` otherwise).
//! - Changing a user's primary team (by update or by membership `isPrimary`) replaces the
//!   old primary membership; `secondaryTeamIds[]` replaces the whole secondary list
//!   (`secondaryTeamIds[]=` with an empty value clears it).
//! - No occupation roles exist in the simulated company: any non-empty `occupationRole`
//!   gives 422.
//! - The simulator stops serving when the [`LearnAmpSim`] value is dropped.
//!
//! Two options make it as strict as a real account can be (`personio-sync simulate
//! learnamp --documented-only --scoped-credentials`):
//! - [`LearnAmpSimConfig::documented_only`]: none of the assumed contracts. The
//!   invitation and avatar routes answer 404 `{"error": "Not found"}` like any unknown
//!   route; `leaveDate` is an unknown attribute, ignored on writes and never shown.
//! - [`LearnAmpSimConfig::scoped_credentials`]: the credentials are provisioned for
//!   specific scopes (§2.3). A token request without `scope` falls back to `public`,
//!   which they may not have, and fails with 400 `invalid_scope`, as does one that asks
//!   for `public`; every route then needs its documented scope (403 otherwise).

mod auth;
mod avatar;
mod error;
mod form;
mod indexes;
mod model;
mod paging;
mod state;
mod teams;
#[cfg(test)]
mod tests;
mod users;
mod views;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::common::{CallLog, FaultLayerState, Knobs, RateLimit, RateLimiter, fault_middleware};

pub use model::{InvitationRecord, SimTeam, SimUser, SimUserStatus};

use state::Inner;

/// How the simulator is set up.
#[derive(Clone)]
pub struct LearnAmpSimConfig {
    /// The accepted OAuth client id.
    pub client_id: String,
    /// The accepted OAuth client secret (never printed by `Debug`).
    pub client_secret: String,
    /// Names of the custom fields that exist in the simulated company.
    pub custom_fields: Vec<String>,
    /// Optional rate limit over every route (429 `{"error":"Too many requests"}`).
    pub rate_limit: Option<RateLimit>,
    /// Largest accepted `perPage`; larger values are capped.
    pub max_per_page: u32,
    /// No assumed contract: no invitation or avatar route (404), `leaveDate` ignored
    /// and never shown.
    pub documented_only: bool,
    /// Credentials provisioned for specific scopes: a token request must name them
    /// (without `scope`, or with `public`: 400 `invalid_scope`).
    pub scoped_credentials: bool,
}

impl Default for LearnAmpSimConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-client".to_string(),
            client_secret: "sim-secret".to_string(),
            custom_fields: vec!["Cost code".to_string()],
            rate_limit: None,
            max_per_page: 100,
            documented_only: false,
            scoped_credentials: false,
        }
    }
}

impl std::fmt::Debug for LearnAmpSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnAmpSimConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("custom_fields", &self.custom_fields)
            .field("rate_limit", &self.rate_limit)
            .field("max_per_page", &self.max_per_page)
            .field("documented_only", &self.documented_only)
            .field("scoped_credentials", &self.scoped_credentials)
            .finish()
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    config: LearnAmpSimConfig,
    base_url: String,
    inner: Mutex<Inner>,
    limiter: RateLimiter,
    token_ttl_ms: AtomicU64,
    /// Token requests answered (any outcome).
    token_requests: AtomicU64,
    /// Token requests that named no scope.
    unscoped_token_requests: AtomicU64,
    /// Scopes withdrawn from every token (an owner narrowed the credentials).
    revoked_scopes: Mutex<Vec<String>>,
}

impl Shared {
    /// Locks the state (never held across an await).
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::common::lock(&self.inner)
    }

    /// The current token lifetime.
    fn token_ttl(&self) -> Duration {
        Duration::from_millis(self.token_ttl_ms.load(Ordering::Relaxed))
    }
}

/// Handler state.
pub(crate) type AppState = Arc<Shared>;

/// A running Learn Amp simulator.
pub struct LearnAmpSim {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// Fault knobs (latency, error rate, outage).
    pub knobs: Arc<Knobs>,
    /// Every call answered.
    pub log: Arc<CallLog>,
    shared: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LearnAmpSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnAmpSim")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for LearnAmpSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LearnAmpSim {
    /// Binds `127.0.0.1:0` and serves in a spawned task.
    pub async fn start(config: LearnAmpSimConfig) -> std::io::Result<LearnAmpSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::start_on(listener, config).await
    }

    /// Serves on an already bound listener, in a spawned task.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: LearnAmpSimConfig,
    ) -> std::io::Result<LearnAmpSim> {
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let knobs = Arc::new(Knobs::default());
        let log = Arc::new(CallLog::default());
        let shared = Arc::new(Shared {
            config,
            base_url: base_url.clone(),
            inner: Mutex::new(Inner::default()),
            limiter: RateLimiter::default(),
            token_ttl_ms: AtomicU64::new(auth::DEFAULT_TOKEN_TTL.as_millis() as u64),
            token_requests: AtomicU64::new(0),
            unscoped_token_requests: AtomicU64::new(0),
            revoked_scopes: Mutex::new(Vec::new()),
        });
        let app = router(shared.clone(), knobs.clone(), log.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "learnamp simulator stopped");
            }
        });
        tracing::info!(base_url = %base_url, "learnamp simulator listening");
        Ok(LearnAmpSim {
            base_url,
            knobs,
            log,
            shared,
            task,
        })
    }

    /// Every user, deactivated ones included, by id.
    pub fn users(&self) -> Vec<SimUser> {
        let inner = self.shared.lock();
        inner.users().values().map(|u| inner.sim_user(u)).collect()
    }

    /// One user by id.
    pub fn user(&self, id: u64) -> Option<SimUser> {
        let inner = self.shared.lock();
        inner.user(id).map(|u| inner.sim_user(u))
    }

    /// One user by exact `integrationExternalId`.
    pub fn user_by_external_id(&self, ext: &str) -> Option<SimUser> {
        let inner = self.shared.lock();
        inner
            .user_id_by_ext(ext)
            .and_then(|id| inner.user(id))
            .map(|u| inner.sim_user(u))
    }

    /// Every team, by id.
    pub fn teams(&self) -> Vec<SimTeam> {
        let inner = self.shared.lock();
        inner.teams().values().map(SimTeam::from).collect()
    }

    /// Inserts a pre-existing, confirmed user (role viewer, language en); returns its id.
    pub fn insert_user(
        &self,
        email: &str,
        first: &str,
        last: &str,
        external_id: Option<&str>,
    ) -> u64 {
        self.shared
            .lock()
            .insert_confirmed_user(email, first, last, external_id)
    }

    /// Marks a user as having accepted the invitation (status confirmed); false if unknown.
    pub fn confirm_user(&self, id: u64) -> bool {
        self.shared.lock().confirm(id)
    }

    /// Every invitation sent so far, in order.
    pub fn invitations(&self) -> Vec<InvitationRecord> {
        self.shared.lock().invitations.clone()
    }

    /// Changes the token lifetime; it applies to tokens already issued too, so a short TTL
    /// expires them (tests force expiry this way).
    pub fn set_token_ttl(&self, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.shared.token_ttl_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the simulator offers none of the assumed contracts.
    pub fn documented_only(&self) -> bool {
        self.shared.config.documented_only
    }

    /// Token requests answered so far, and how many of them named no scope.
    pub fn token_requests(&self) -> (u64, u64) {
        (
            self.shared.token_requests.load(Ordering::Relaxed),
            self.shared.unscoped_token_requests.load(Ordering::Relaxed),
        )
    }

    /// Withdraws `scope` from every token, issued or not (as when the account owner
    /// narrows the credentials): routes needing it answer 403 from now on.
    pub fn revoke_scope(&self, scope: &str) {
        self.shared
            .revoked_scopes
            .lock()
            .expect("revoked scopes poisoned")
            .push(scope.to_string());
    }

    /// Sets a user's status (tests: e.g. a pre-existing user who was never invited);
    /// false if unknown.
    pub fn set_status(&self, id: u64, status: SimUserStatus) -> bool {
        self.shared
            .lock()
            .update_user(id, |user| user.set_status(status, chrono::Utc::now()))
            .is_some()
    }

    /// Sets a user's job title behind the service's back (tests: Learn Amp differing from
    /// what the service recorded); false if unknown.
    pub fn set_job_title(&self, id: u64, title: Option<&str>) -> bool {
        self.shared
            .lock()
            .update_user(id, |user| user.job_title = title.map(str::to_string))
            .is_some()
    }

    /// The custom field values of a user (a convenience over [`LearnAmpSim::user`]).
    pub fn custom_fields_of(&self, id: u64) -> Option<BTreeMap<String, String>> {
        self.user(id).map(|u| u.custom_fields)
    }
}

/// Builds the body of an injected failure: `{"error": "…"}`.
fn error_body(status: StatusCode) -> Response {
    error::ApiError::message(status, error::default_message(status)).into_response_body()
}

/// Registers `path` and, when the last segment is literal, `path.json` too.
fn route2(
    router: Router<AppState>,
    path: &str,
    method: MethodRouter<AppState>,
) -> Router<AppState> {
    let router = router.route(path, method.clone());
    if path.ends_with('}') {
        router
    } else {
        router.route(&format!("{path}.json"), method)
    }
}

/// The routes of one team, named by the path segment that ends `prefix` and read as `K`.
fn team_routes<K: teams::TeamKey + 'static>(prefix: &str) -> [(String, MethodRouter<AppState>); 3] {
    [
        (
            prefix.to_string(),
            get(teams::show::<K>)
                .put(teams::update::<K>)
                .delete(teams::delete::<K>),
        ),
        (
            format!("{prefix}/users"),
            get(teams::members::<K>).post(teams::add_member::<K>),
        ),
        (
            format!("{prefix}/users/{{user_id}}"),
            delete(teams::remove_member::<K>),
        ),
    ]
}

/// The whole application: token route, `/v1` routes, middleware.
fn router(shared: AppState, knobs: Arc<Knobs>, log: Arc<CallLog>) -> Router {
    let documented_only = shared.config.documented_only;
    let routes: [(&str, MethodRouter<AppState>); 8] = [
        ("/v1/users", get(users::list).post(users::create)),
        (
            "/v1/users/{id}",
            get(users::show).put(users::update).delete(users::delete),
        ),
        (
            "/v1/users/by_integration_external_id/{ext}",
            get(users::show_by_ext).put(users::update_by_ext),
        ),
        ("/v1/users/{id}/deactivate", put(users::deactivate)),
        ("/v1/users/{id}/reactivate", put(users::reactivate)),
        ("/v1/users/{id}/invitation", post(users::invite)),
        (
            "/v1/users/{id}/avatar",
            put(avatar::put_avatar)
                .delete(avatar::delete_avatar)
                .layer(DefaultBodyLimit::disable()),
        ),
        ("/v1/teams", get(teams::list).post(teams::create)),
    ];
    let v1 = routes
        .map(|(path, method)| (path.to_string(), method))
        .into_iter()
        // Without the assumed contracts, their routes are unknown (the fallback's 404).
        .filter(|(path, _)| {
            !(documented_only && (path.ends_with("/invitation") || path.ends_with("/avatar")))
        })
        .chain(team_routes::<teams::ById>("/v1/teams/{id}"))
        .chain(team_routes::<teams::ByExt>(
            "/v1/teams/by_external_id/{ext}",
        ))
        .fold(Router::new(), |router, (path, method)| {
            route2(router, &path, method)
        });
    let v1 = v1.route_layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        auth::require_token,
    ));
    let fault = FaultLayerState {
        knobs,
        log,
        error_body,
    };
    Router::new()
        .route("/oauth/token", post(auth::token))
        .merge(v1)
        .fallback(form::fallback)
        .layer(axum::middleware::from_fn(auth::check_accept))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            fault,
            fault_middleware,
        ))
        .with_state(shared)
}
