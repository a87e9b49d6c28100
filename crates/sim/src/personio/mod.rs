//! A faithful, strict Personio API simulator (axum) for tests, benchmarks and the demo.
//!
//! It serves what the sync uses (reference `personio-api.md` §12): the v1 and v2 token
//! endpoints, the v1 employee list/detail/attributes/profile-picture endpoints with
//! attribute whitelisting, `GET /v2/org-units/{id}`, webhook management under
//! `/v2/webhooks`, and webhook delivery with Personio's retry rules. Errors come in the
//! family of the endpoint (v1 envelope, v2 problem+json, OAuth2 object), rate limits answer
//! 429 without `Retry-After`, and the fault knobs of [`crate::common`] apply to every
//! call.
//!
//! Per source IP it counts v1 calls (and enforces the all-v1 per-IP limit, reference §9),
//! see [`PersonioSim::ip_usage`]. Successful v1 personnel-data answers carry the
//! presented token back in `Authorization` (§2.1). [`PersonioSim::script`] replaces the
//! answer of one route (an HTML 404 from a proxy, a 409, …) for fault drills, and
//! [`PersonioSimConfig::page_cap`] serves fewer rows than `limit`, as Personio may.
//! With a signing secret ([`PersonioSim::set_signing_secret`]) deliveries are signed as
//! the service's `personio::assumed` describes.
//!
//! Besides the main API credential, [`PersonioSimConfig::extra_credentials`] adds
//! credentials with their own readable attributes. The [`oidc`] module adds an OpenID
//! Connect provider (assumed: Personio documents none) whose access tokens the API
//! accepts with the signed-in user's rights.
//!
//! Deliberate deviations from real Personio, for local testing:
//! - webhook URLs may be `http://` when their host is loopback (Personio requires HTTPS;
//!   any other `http://` URL is refused with a 422);
//! - retry delays default to 100 ms doubling (Personio: up to 3 days), see
//!   [`PersonioSim::set_retry_delays`]; each attempt is a single request (Personio makes
//!   up to two quick requests per attempt);
//! - an out-of-range v1 `limit` answers 400 with the v1 envelope and the message
//!   "The limit must be between 1 and 100" (the real status is unconfirmed).
//!
//! Dropping the [`PersonioSim`] handle (or calling [`PersonioSim::shutdown`]) stops the
//! server gracefully and stops pending webhook retries.

mod auth;
mod delivery;
mod employees;
mod errors;
mod ip_usage;
pub mod oidc;
mod org_units;
mod scripts;
pub mod signing;
mod subscription;
mod webhooks;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::common::{CallLog, FaultLayerState, Knobs, RateLimit, RateLimiter, fault_middleware};
use crate::generator::{self, SimCompany, SimEmployee, SimOrgUnit, employment_id_for};
use crate::person::OrgRef;
use crate::secret::Secret;

pub(crate) use ip_usage::IpTally;
pub use ip_usage::IpUsage;
pub use oidc::{Consent, IdTokenFault, SignInError};
pub use scripts::ScriptedAnswer;
use scripts::take_script;
pub use subscription::{
    DeliveryOutcome, DeliveryRecord, SimWebhook, WebhookAuthType, WebhookStatus,
};

/// How the simulator starts.
#[derive(Clone)]
pub struct PersonioSimConfig {
    /// Number of generated employees.
    pub employees: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// The one accepted client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// Readable employee attributes (`None` = every attribute). `id` is always readable.
    pub readable_attributes: Option<Vec<String>>,
    /// Whether the documented rate limits are enforced.
    pub rate_limits: bool,
    /// Most rows one v1 list page serves whatever `limit` asks (`None` = `limit`).
    pub page_cap: Option<usize>,
    /// The all-v1 limit per source IP, requests per minute (reference §9: 2,000).
    pub v1_per_ip_per_minute: f64,
    /// The secret deliveries are signed with (`None` = unsigned, as documented today).
    pub signing_secret: Option<String>,
    /// Further API credentials, each with its own readable attributes (the main
    /// credential's knobs do not touch them).
    pub extra_credentials: Vec<SimCredential>,
}

/// A further API credential of the simulated company.
#[derive(Clone)]
pub struct SimCredential {
    /// Its client id (must differ from every other credential's).
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// Readable employee attributes (`None` = every attribute). `id` is always readable.
    pub readable_attributes: Option<Vec<String>>,
}

impl std::fmt::Debug for SimCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("readable_attributes", &self.readable_attributes)
            .finish()
    }
}

impl Default for PersonioSimConfig {
    fn default() -> Self {
        Self {
            employees: 50,
            seed: 1,
            client_id: "sim-client".to_string(),
            client_secret: "sim-secret".to_string(),
            readable_attributes: None,
            rate_limits: true,
            page_cap: None,
            v1_per_ip_per_minute: V1_PER_IP_PER_MINUTE,
            signing_secret: None,
            extra_credentials: Vec::new(),
        }
    }
}

impl std::fmt::Debug for PersonioSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioSimConfig")
            .field("employees", &self.employees)
            .field("seed", &self.seed)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("readable_attributes", &self.readable_attributes)
            .field("rate_limits", &self.rate_limits)
            .field("page_cap", &self.page_cap)
            .field("v1_per_ip_per_minute", &self.v1_per_ip_per_minute)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "***"),
            )
            .field("extra_credentials", &self.extra_credentials)
            .finish()
    }
}

/// Personio's documented limit on all v1 calls from one source IP (reference §9).
pub const V1_PER_IP_PER_MINUTE: f64 = 2000.0;

/// Default token lifetime (24 h, as documented).
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_400);

/// Scopes every token of the simulated credential may carry.
pub(crate) const GRANTED_SCOPES: &[&str] = &[
    "personio:persons:read",
    "personio:org-units:read",
    "personio:webhooks:read",
    "personio:webhooks:write",
];

/// One issued access token.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// The credential it was issued to.
    pub(crate) client_id: String,
    pub(crate) token: Secret,
    pub(crate) scope: String,
    pub(crate) issued_at: std::time::Instant,
}

/// Employee map key: numeric ids in numeric order, others after them.
pub(crate) type EmployeeKey = (u64, String);

/// The key of employee `id`.
pub(crate) fn employee_key(id: &str) -> EmployeeKey {
    (id.parse().unwrap_or(u64::MAX), id.to_string())
}

/// Mutable simulator state (behind a std mutex, never held across an await).
pub(crate) struct SimState {
    pub(crate) employees: BTreeMap<EmployeeKey, SimEmployee>,
    pub(crate) org_units: Vec<SimOrgUnit>,
    pub(crate) offices: Vec<OrgRef>,
    pub(crate) readable: Option<BTreeSet<String>>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) tokens: Vec<IssuedToken>,
    pub(crate) token_ttl: Duration,
    pub(crate) webhooks: Vec<SimWebhook>,
    pub(crate) deliveries: Vec<DeliveryRecord>,
    pub(crate) retry_delays: Vec<Duration>,
    /// Per employee, per attribute: when it last changed (for `updated_since`).
    pub(crate) changed_at: HashMap<String, BTreeMap<String, DateTime<Utc>>>,
    /// Most rows per v1 list page (`None` = `limit`).
    pub(crate) page_cap: Option<usize>,
    /// The delivery signing secret, if any.
    pub(crate) signing_secret: Option<Secret>,
    /// Canned answers replacing real ones (fault drills), first match wins.
    pub(crate) scripts: Vec<ScriptedAnswer>,
    /// Further credentials: client id, secret, readable attributes (`None` = all).
    pub(crate) extra_credentials: Vec<(String, Secret, Option<BTreeSet<String>>)>,
    /// The OpenID Connect provider.
    pub(crate) oidc: oidc::OidcState,
}

/// Whose rights a request carries: set by the guard from its bearer token, read by the
/// handlers that filter attributes.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    readable: Option<BTreeSet<String>>,
}

impl Caller {
    /// Whether attribute `key` is readable by the caller (`id` always is).
    pub(crate) fn readable(&self, key: &str) -> bool {
        key == "id"
            || self
                .readable
                .as_ref()
                .is_none_or(|readable| readable.contains(key))
    }
}

impl SimState {
    /// The rights of credential `client_id` (the main one's when it is not an extra one).
    pub(crate) fn caller(&self, client_id: &str) -> Caller {
        let readable = self
            .extra_credentials
            .iter()
            .find(|(id, _, _)| id == client_id)
            .map_or(&self.readable, |(_, _, readable)| readable);
        Caller {
            readable: readable.clone(),
        }
    }

    /// The live token equal to `presented`, if any.
    pub(crate) fn valid_token(&self, presented: &str) -> Option<&IssuedToken> {
        self.tokens.iter().find(|token| {
            token.token.expose() == presented && token.issued_at.elapsed() < self.token_ttl
        })
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) base_url: String,
    pub(crate) company_id: String,
    pub(crate) rate_limits: bool,
    pub(crate) limiter: RateLimiter,
    pub(crate) state: Mutex<SimState>,
    pub(crate) http: reqwest::Client,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) without_app_id: AtomicUsize,
    pub(crate) shut_down: AtomicBool,
    /// The all-v1 limit per source IP.
    pub(crate) v1_per_ip: RateLimit,
    /// v1 calls per source IP.
    pub(crate) ip_usage: Mutex<HashMap<IpAddr, IpTally>>,
    /// The OpenID Connect provider's signing keys (made at start).
    pub(crate) oidc_keys: oidc::Keys,
}

impl Shared {
    /// Locks the state.
    pub(crate) fn state(&self) -> MutexGuard<'_, SimState> {
        crate::common::lock(&self.state)
    }
}

/// A running Personio simulator. Dropping it stops the server.
pub struct PersonioSim {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// Fault knobs (latency, error rate, outage).
    pub knobs: Arc<Knobs>,
    /// Every call answered.
    pub log: Arc<CallLog>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for PersonioSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioSim")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl PersonioSim {
    /// Starts a simulator on `127.0.0.1` with a free port.
    pub async fn start(config: PersonioSimConfig) -> std::io::Result<PersonioSim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, config).await
    }

    /// Starts a simulator on a bound listener; serves in a spawned task.
    pub async fn start_on(
        listener: TcpListener,
        config: PersonioSimConfig,
    ) -> std::io::Result<PersonioSim> {
        let address = listener.local_addr()?;
        let host = if address.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            address.ip().to_string()
        };
        let base_url = if address.is_ipv6() && !address.ip().is_unspecified() {
            format!("http://[{host}]:{}", address.port())
        } else {
            format!("http://{host}:{}", address.port())
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let company = generator::generate(config.employees, config.seed);
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            company_id: company.company_id.clone(),
            rate_limits: config.rate_limits,
            limiter: RateLimiter::default(),
            state: Mutex::new(initial_state(company, &config)),
            http,
            runtime: tokio::runtime::Handle::current(),
            without_app_id: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            // No burst is documented: one second's worth.
            v1_per_ip: RateLimit {
                per_minute: config.v1_per_ip_per_minute,
                burst: (config.v1_per_ip_per_minute / 60.0).floor().max(1.0),
            },
            ip_usage: Mutex::new(HashMap::new()),
            oidc_keys: oidc::Keys::generate(),
        });
        let knobs = Arc::new(Knobs::default());
        let log = Arc::new(CallLog::default());
        let app = router(shared.clone(), knobs.clone(), log.clone());
        let (shutdown, mut signal) = watch::channel(false);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = signal.wait_for(|stop| *stop).await;
            };
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %error, "personio simulator stopped");
            }
        });
        tracing::info!(base_url = %base_url, "personio simulator listening");
        Ok(PersonioSim {
            base_url,
            knobs,
            log,
            shared,
            shutdown,
        })
    }

    /// Every employee, ordered by id.
    pub fn employees(&self) -> Vec<SimEmployee> {
        self.shared.state().employees.values().cloned().collect()
    }

    /// One employee.
    pub fn employee(&self, id: &str) -> Option<SimEmployee> {
        self.shared
            .state()
            .employees
            .get(&employee_key(id))
            .cloned()
    }

    /// Creates or replaces an employee, bumps its `last_modified_at` and emits the
    /// webhook events Personio would: `person.created` + `employment.created` for a new
    /// one; `person.updated` for a name, email or custom attribute change;
    /// `employment.updated` for status, position, office, department, team, supervisor,
    /// employment type or date changes. Picture changes emit nothing (as in Personio).
    pub fn upsert_employee(&self, employee: SimEmployee) {
        let events = employees::upsert(&self.shared, employee);
        for (event_name, payload) in events {
            delivery::dispatch(&self.shared, &event_name, payload);
        }
    }

    /// Deletes an employee; emits `person.deleted` and `employment.deleted`.
    pub fn delete_employee(&self, id: &str) -> bool {
        let removed = {
            let mut state = self.shared.state();
            state.changed_at.remove(id);
            state.employees.remove(&employee_key(id)).is_some()
        };
        if removed {
            delivery::dispatch(&self.shared, "person.deleted", json!({"id": id}));
            delivery::dispatch(
                &self.shared,
                "employment.deleted",
                json!({"id": employment_id_for(id), "person_id": id}),
            );
        }
        removed
    }

    /// Changes the readable attribute whitelist (`None` = everything).
    pub fn set_readable_attributes(&self, attrs: Option<Vec<String>>) {
        self.shared.state().readable = attrs.map(|list| list.into_iter().collect());
    }

    /// Changes the accepted credentials and revokes every issued token.
    pub fn set_credentials(&self, client_id: &str, client_secret: &str) {
        let mut state = self.shared.state();
        state.client_id = client_id.to_string();
        state.client_secret = Secret::new(client_secret);
        state.tokens.clear();
    }

    /// Sets the token lifetime; applies to tokens already issued too, so
    /// `set_token_ttl(Duration::ZERO)` expires every token at once (for good: tokens
    /// expired under the new lifetime are forgotten and never come back).
    pub fn set_token_ttl(&self, ttl: Duration) {
        let mut state = self.shared.state();
        state.token_ttl = ttl;
        state.tokens.retain(|token| token.issued_at.elapsed() < ttl);
    }

    /// Sets the delays between webhook delivery retries (their count is the retry count).
    pub fn set_retry_delays(&self, delays: Vec<Duration>) {
        self.shared.state().retry_delays = delays;
    }

    /// The current company state.
    pub fn company(&self) -> SimCompany {
        let state = self.shared.state();
        SimCompany {
            company_id: self.shared.company_id.clone(),
            employees: state.employees.values().cloned().collect(),
            org_units: state.org_units.clone(),
            offices: state.offices.clone(),
        }
    }

    /// Registered webhook subscriptions, in creation order.
    pub fn webhooks(&self) -> Vec<SimWebhook> {
        self.shared.state().webhooks.clone()
    }

    /// Every delivery attempt so far, in order.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.state().deliveries.clone()
    }

    /// Delivers an arbitrary event to every enabled subscription listing it.
    pub fn emit_event(&self, event_name: &str, payload: Value) {
        delivery::dispatch(&self.shared, event_name, payload);
    }

    /// Sets the most rows one v1 list page serves (`None` = as many as `limit` asks).
    pub fn set_page_cap(&self, cap: Option<usize>) {
        self.shared.state().page_cap = cap;
    }

    /// Sets (or, with `None`, removes) the secret deliveries are signed with.
    pub fn set_signing_secret(&self, secret: Option<&str>) {
        self.shared.state().signing_secret = secret.map(Secret::new);
    }

    /// Answers `answer.method answer.path` with `answer` instead of the real answer.
    pub fn script(&self, answer: ScriptedAnswer) {
        self.shared.state().scripts.push(answer);
    }

    /// Removes every scripted answer.
    pub fn clear_scripts(&self) {
        self.shared.state().scripts.clear();
    }

    /// v1 calls per source IP so far.
    pub fn ip_usage(&self) -> HashMap<IpAddr, IpUsage> {
        self.shared
            .ip_usage
            .lock()
            .expect("personio sim ip usage poisoned")
            .iter()
            .map(|(ip, tally)| (*ip, tally.usage()))
            .collect()
    }

    /// Number of calls that came without an `X-Personio-App-ID` header.
    pub fn calls_without_app_id(&self) -> usize {
        self.shared.without_app_id.load(Ordering::Relaxed)
    }

    /// The OpenID Connect test administrator: `(email, password)`. Their access tokens
    /// read what the main API credential reads.
    pub fn oidc_admin(&self) -> (String, String) {
        (
            oidc::ADMIN_EMAIL.to_string(),
            oidc::ADMIN_PASSWORD.to_string(),
        )
    }

    /// The OpenID Connect test user without administrator rights: `(email, password)`.
    /// Their access tokens get 403 on every API route.
    pub fn oidc_non_admin(&self) -> (String, String) {
        (
            oidc::MEMBER_EMAIL.to_string(),
            oidc::MEMBER_PASSWORD.to_string(),
        )
    }

    /// Revokes every grant of the OpenID Connect provider: every refresh token and
    /// access token it issued stops working (refresh: `invalid_grant`; API: 401).
    pub fn revoke_oidc_grants(&self) {
        self.shared.state().oidc.revoke_all();
    }

    /// Makes every ID token issued from now on wrong in the given way (`None`: correct
    /// again).
    pub fn set_id_token_fault(&self, fault: Option<IdTokenFault>) {
        self.shared.state().oidc.fault = fault;
    }

    /// Sets the lifetime of provider access tokens issued from now on (default 1 h);
    /// `expires_in` says it, rounded up to whole seconds.
    pub fn set_oidc_access_token_ttl(&self, ttl: Duration) {
        self.shared.state().oidc.access_ttl = ttl;
    }

    /// Does the browser's part of the code flow for `authorize_url` (built by a relying
    /// party): opens it, signs in with `email` and `password` and answers the consent
    /// page. Returns the URL the provider redirects back to (`redirect_uri?code=…&state=…`
    /// or `?error=access_denied&state=…`); a page instead of a redirect (an error page, a
    /// refused password, an error redirect before the login) is a [`SignInError::Page`].
    pub async fn oidc_sign_in(
        &self,
        authorize_url: &str,
        email: &str,
        password: &str,
        consent: Consent,
    ) -> Result<String, SignInError> {
        oidc::sign_in(authorize_url, email, password, consent).await
    }

    /// Stops the server (open connections finish) and pending delivery retries.
    pub fn shutdown(&self) {
        self.shared.shut_down.store(true, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
    }
}

impl Drop for PersonioSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn initial_state(company: SimCompany, config: &PersonioSimConfig) -> SimState {
    let company_id = company.company_id.clone();
    SimState {
        employees: company
            .employees
            .into_iter()
            .map(|employee| (employee_key(&employee.employee.id), employee))
            .collect(),
        org_units: company.org_units,
        offices: company.offices,
        readable: config
            .readable_attributes
            .clone()
            .map(|list| list.into_iter().collect()),
        client_id: config.client_id.clone(),
        client_secret: Secret::new(config.client_secret.clone()),
        tokens: Vec::new(),
        token_ttl: DEFAULT_TOKEN_TTL,
        webhooks: Vec::new(),
        deliveries: Vec::new(),
        retry_delays: (0..6).map(|n| Duration::from_millis(100 << n)).collect(),
        changed_at: HashMap::new(),
        page_cap: config.page_cap,
        signing_secret: config.signing_secret.clone().map(Secret::new),
        scripts: Vec::new(),
        extra_credentials: config
            .extra_credentials
            .iter()
            .map(|credential| {
                (
                    credential.client_id.clone(),
                    Secret::new(credential.client_secret.clone()),
                    credential
                        .readable_attributes
                        .clone()
                        .map(|list| list.into_iter().collect()),
                )
            })
            .collect(),
        oidc: oidc::OidcState::new(&company_id),
    }
}

fn router(shared: Arc<Shared>, knobs: Arc<Knobs>, log: Arc<CallLog>) -> Router {
    let fault = FaultLayerState {
        knobs,
        log,
        error_body: errors::injected,
    };
    Router::new()
        .route("/v1/auth", post(auth::v1_auth))
        .route("/v2/auth/token", post(auth::v2_token))
        .route("/v2/auth/revoke", post(auth::v2_revoke))
        .route("/v1/company/employees", get(employees::list))
        .route(
            "/v1/company/employees/attributes",
            get(employees::attributes),
        )
        .route(
            "/v1/company/employees/custom-attributes",
            get(employees::attributes),
        )
        .route("/v1/company/employees/{id}", get(employees::one))
        .route(
            "/v1/company/employees/{id}/profile-picture",
            get(employees::picture_original),
        )
        .route(
            "/v1/company/employees/{id}/profile-picture/{width}",
            get(employees::picture),
        )
        .route("/v2/org-units/{id}", get(org_units::get_one))
        .route("/v2/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v2/webhooks/{id}",
            get(webhooks::get_one)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v2/webhooks/{id}/ping", post(webhooks::ping))
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/oauth/authorize", get(oidc::authorize))
        .route("/oauth/authorize/login", post(oidc::login))
        .route("/oauth/authorize/consent", post(oidc::consent))
        .route("/oauth/token", post(oidc::token))
        .route("/oauth/jwks", get(oidc::jwks))
        .fallback(unknown_route)
        .layer(from_fn_with_state(shared.clone(), guard))
        .layer(from_fn_with_state(fault, fault_middleware))
        .layer(from_fn_with_state(shared.clone(), count_app_id))
        .with_state(shared)
}

async fn unknown_route(request: Request) -> Response {
    errors::unknown_route(request.uri().path())
}

/// Counts API calls without `X-Personio-App-ID` (outermost layer: sees every call; the
/// OpenID Connect provider's routes are not Personio API calls and are not counted).
async fn count_app_id(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if !request.headers().contains_key("x-personio-app-id")
        && !is_oidc_endpoint(request.uri().path())
    {
        shared.without_app_id.fetch_add(1, Ordering::Relaxed);
    }
    next.run(request).await
}

/// Rate limits (per source IP for all v1 calls), then bearer-token and scope checks,
/// scripted answers (on the OpenID provider's routes too, which take no bearer token),
/// and the token carried back on successful v1 personnel-data answers.
async fn guard(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
    let v1 = path.starts_with("/v1/");
    let refused = if shared.rate_limits {
        refusing_limit(&shared, &method, &path, ip)
    } else {
        None
    };
    if v1 {
        shared
            .ip_usage
            .lock()
            .expect("personio sim ip usage poisoned")
            .entry(ip)
            .or_default()
            .record(refused == Some(V1_PER_IP_KEY));
    }
    if refused.is_some() {
        tracing::debug!(path = %path, "personio sim: rate limited");
        return errors::too_many_requests(&path);
    }
    if is_oidc_endpoint(&path)
        && let Some(answer) = take_script(&shared, &method, &path)
    {
        return answer.response();
    }
    if is_auth_endpoint(&path) || is_oidc_endpoint(&path) {
        return next.run(request).await;
    }
    match check_token(&shared, &method, &path, request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
        }
        Err(response) => return *response,
    }
    if let Some(answer) = take_script(&shared, &method, &path) {
        return answer.response();
    }
    let presented = bearer(request.headers()).map(str::to_string);
    let mut response = next.run(request).await;
    // "A successful personnel-data response also carries the token back in a response
    // header" (reference §2.1): the token presented, as `Bearer <token>`.
    if v1
        && response.status().is_success()
        && let Some(token) = presented
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
    {
        response.headers_mut().insert(header::AUTHORIZATION, value);
    }
    response
}

fn is_auth_endpoint(path: &str) -> bool {
    matches!(path, "/v1/auth" | "/v2/auth/token" | "/v2/auth/revoke")
}

/// The OpenID Connect provider's routes (no bearer token, no rate limit).
fn is_oidc_endpoint(path: &str) -> bool {
    path == "/.well-known/openid-configuration" || path.starts_with("/oauth/")
}

/// The documented limits (reference §9) that apply to one call; the all-v1 limit is
/// `all_v1` and counts per source IP.
fn rate_limits_for(
    method: &Method,
    path: &str,
    all_v1: (&'static str, RateLimit),
) -> Vec<(&'static str, RateLimit)> {
    match (method, path) {
        (&Method::POST, "/v2/auth/token") => vec![(
            "v2-token",
            RateLimit {
                per_minute: 150.0,
                burst: 150.0,
            },
        )],
        (&Method::POST, "/v1/auth") => vec![
            (
                "v1-auth",
                RateLimit {
                    per_minute: 60.0,
                    burst: 60.0,
                },
            ),
            all_v1,
        ],
        (&Method::GET, "/v1/company/employees") => vec![
            (
                "v1-employees",
                RateLimit {
                    per_minute: 300.0,
                    burst: 15.0,
                },
            ),
            all_v1,
        ],
        (_, path) if path.starts_with("/v1/") => vec![all_v1],
        _ => Vec::new(),
    }
}

/// Bucket name of the all-v1 per-IP limit.
const V1_PER_IP_KEY: &str = "v1-all";

/// The first limit that refuses this call (its bucket name), if any.
fn refusing_limit(
    shared: &Shared,
    method: &Method,
    path: &str,
    ip: IpAddr,
) -> Option<&'static str> {
    rate_limits_for(method, path, (V1_PER_IP_KEY, shared.v1_per_ip))
        .into_iter()
        .find(|(key, limit)| {
            let bucket = if *key == V1_PER_IP_KEY {
                format!("{key}:{ip}")
            } else {
                (*key).to_string()
            };
            !shared.limiter.try_acquire(&bucket, *limit)
        })
        .map(|(key, _)| key)
}

/// The scope a v2 path needs, if any.
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    if path.starts_with("/v2/webhooks") {
        Some(if method == Method::GET {
            "personio:webhooks:read"
        } else {
            "personio:webhooks:write"
        })
    } else if path.starts_with("/v2/org-units") {
        Some("personio:org-units:read")
    } else {
        None
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn check_token(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    let v1 = errors::Family::of(path) == errors::Family::V1;
    let Some(presented) = bearer(headers) else {
        return Err(Box::new(if v1 {
            errors::v1_error(
                StatusCode::UNAUTHORIZED,
                401,
                "Authorization is not provided",
            )
        } else {
            errors::problem(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Missing bearer token",
                "common.unauthorized",
            )
        }));
    };
    let found = {
        let state = shared.state();
        match state.valid_token(presented) {
            Some(token) => Some((token.scope.clone(), state.caller(&token.client_id))),
            None => match state.oidc.api_access(presented) {
                // The administrator reads what the main API credential reads.
                Some(oidc::ApiAccess::Admin) => {
                    Some((GRANTED_SCOPES.join(" "), state.caller(&state.client_id)))
                }
                Some(access) => return Err(Box::new(oidc_refusal(access, v1))),
                None => None,
            },
        }
    };
    let Some((scope, caller)) = found else {
        return Err(Box::new(if v1 {
            errors::v1_error(
                StatusCode::FORBIDDEN,
                403,
                "Provided authorization is not valid",
            )
        } else {
            errors::problem(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The access token is invalid or expired",
                "common.unauthorized",
            )
        }));
    };
    match required_scope(method, path) {
        Some(needed) if !scope.split_whitespace().any(|s| s == needed) => {
            Err(Box::new(errors::problem(
                StatusCode::FORBIDDEN,
                "Insufficient access scope",
                &format!("The access token lacks the scope {needed}"),
                "common.forbidden",
            )))
        }
        _ => Ok(caller),
    }
}

/// The answer to a provider access token that may not read the API (assumed, like the
/// provider): 403 for a user without administrator rights, 401 once expired or revoked.
fn oidc_refusal(access: oidc::ApiAccess, v1: bool) -> Response {
    if access == oidc::ApiAccess::NonAdmin {
        if v1 {
            errors::v1_error(
                StatusCode::FORBIDDEN,
                403,
                "You do not have permission to access this resource",
            )
        } else {
            errors::problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The signed-in user lacks administrator rights",
                "common.forbidden",
            )
        }
    } else if v1 {
        errors::v1_error(
            StatusCode::UNAUTHORIZED,
            401,
            "The access token is expired or revoked",
        )
    } else {
        errors::problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token is invalid or expired",
            "common.unauthorized",
        )
    }
}
