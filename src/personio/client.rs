//! The Personio client: its endpoints, identification header, v1 pacing, v1 offset
//! paging, v2 cursor paging and error mapping (reference §2.2, §4, §7, §9, §10, §13), on
//! the shared [`crate::api_client`] core (token cache, retries, body cap, metrics).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::error::{ErrorBody, PersonioError, is_personio_not_found, parse_error_body};
use super::model::{self, AttributeInfo, EmployeePage, OrgUnit, Webhook, WebhookSpec};
use crate::api_client::{self, Api, ApiCore, ApiRequest, FreshToken, Raw, RequestBody, SendError};
use crate::domain::{Employee, Secret};
use crate::pacer::{Pacer, Rate};
use crate::retry::RetryPolicy;

/// Timeout of every single HTTP request the client builds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = api_client::DEFAULT_REQUEST_TIMEOUT;
/// Page size of `GET /v1/company/employees` (Personio's maximum since 2025).
const PAGE_SIZE: usize = 100;
/// Safety bound on v1 pages (500,000 employees at full pages): stops a total that grows
/// forever.
const MAX_EMPLOYEE_PAGES: usize = 5_000;
/// Safety bound on v2 webhook list pages.
const MAX_WEBHOOK_PAGES: usize = 1_000;
/// Minimum wait after a 429 on v1 employees, as Personio advises (§9).
const V1_EMPLOYEES_MIN_429_WAIT: Duration = Duration::from_secs(1);
/// `Accept` of the profile-picture endpoint.
const ACCEPT_IMAGES: &str = "image/png, image/jpeg";
/// The identification header sent on every call (§1.3).
const APP_ID_HEADER: &str = "X-Personio-App-ID";
/// What sets Personio apart in the shared client core.
const PERSONIO: Api = Api {
    system: "personio",
    default_token_lifetime: Duration::from_secs(3_600),
    trace_id,
};

/// How to reach one tenant's Personio account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonioConfig {
    /// API base, e.g. `https://api.personio.de` (no trailing path needed).
    pub base_url: String,
    /// The credential's client id.
    pub client_id: String,
    /// The credential's client secret (never logged).
    pub client_secret: Secret,
    /// Value of `X-Personio-App-ID` (`UPPER_SNAKE_CASE`).
    pub app_id: String,
}

/// Where the bearer tokens of a client connected through OpenID Connect come from
/// (`connect::tokens`): one source per tenant, shared by all its clients, so that one
/// refresh is in flight per tenant whatever client asks.
pub trait TokenSource: Send + Sync {
    /// A valid access token: the cached one, or one just refreshed.
    fn access_token(&self) -> futures::future::BoxFuture<'_, Result<Secret, PersonioError>>;
    /// Personio refused `token` (401, or 403 on v1): it is not handed out again.
    fn refused(&self, token: &Secret);
}

/// A Personio API client for one tenant. Cheap to clone; clones share the token cache
/// and the request counter.
#[derive(Clone)]
pub struct PersonioClient {
    inner: Arc<Inner>,
}

/// The shared state behind a [`PersonioClient`].
struct Inner {
    /// Transport, retries, token cache, counter (see [`crate::api_client`]).
    core: ApiCore,
    config: PersonioConfig,
    /// Paces every v1 call under Personio's 2,000/min per-IP limit. One per process,
    /// shared by every tenant's client (see [`PersonioClient::with_v1_pacer`]).
    v1_pacer: Arc<Pacer>,
    /// Paces the employee list under its 300/min (15/s burst) limit.
    list_pacer: Arc<Pacer>,
    /// Tokens of an OpenID Connect grant instead of client credentials, when set.
    token_source: Option<Arc<dyn TokenSource>>,
}

/// Default pace of all v1 calls: just under the documented 2,000 requests/min (the
/// service's own pace comes from `personio.v1_requests_per_minute`).
pub const V1_RATE: Rate = Rate {
    per_second: 30.0,
    burst: 30,
};

/// Default pace of `GET /v1/company/employees`: just under 300/min, bursts of 10.
pub const EMPLOYEE_LIST_RATE: Rate = Rate {
    per_second: 4.8,
    burst: 10,
};

impl std::fmt::Debug for PersonioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioClient")
            .field("base_url", &self.inner.core.base())
            .field("client_id", &self.inner.config.client_id)
            .field("app_id", &self.inner.config.app_id)
            .finish_non_exhaustive()
    }
}

impl PersonioClient {
    /// A client for `config`, sending through `http` (share one `reqwest::Client` between
    /// tenants) and retrying transient failures per `retry`, with its own v1 pacer at
    /// [`V1_RATE`] (the service shares one instead, see [`Self::with_v1_pacer`]).
    pub fn new(config: PersonioConfig, http: reqwest::Client, retry: RetryPolicy) -> Self {
        Self::assemble(
            config,
            http,
            retry,
            DEFAULT_REQUEST_TIMEOUT,
            Arc::new(Pacer::new(V1_RATE)),
            None,
        )
    }

    /// The same client taking its bearer tokens from `source` (an OpenID Connect
    /// grant) instead of the client credentials of its config.
    pub fn with_token_source(self, source: Arc<dyn TokenSource>) -> Self {
        Self::assemble(
            self.inner.config.clone(),
            self.inner.core.http().clone(),
            self.inner.core.retry(),
            self.inner.core.timeout(),
            self.inner.v1_pacer.clone(),
            Some(source),
        )
    }

    /// The same client with another per-request timeout (and a fresh token cache).
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        Self::assemble(
            self.inner.config.clone(),
            self.inner.core.http().clone(),
            self.inner.core.retry(),
            timeout,
            self.inner.v1_pacer.clone(),
            self.inner.token_source.clone(),
        )
    }

    /// The same client pacing its v1 calls with `pacer` (and a fresh token cache).
    /// Personio limits v1 calls per source IP, so the service gives every tenant's
    /// client the one pacer of the process.
    pub fn with_v1_pacer(self, pacer: Arc<Pacer>) -> Self {
        Self::assemble(
            self.inner.config.clone(),
            self.inner.core.http().clone(),
            self.inner.core.retry(),
            self.inner.core.timeout(),
            pacer,
            self.inner.token_source.clone(),
        )
    }

    /// Builds the shared state.
    fn assemble(
        config: PersonioConfig,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
        v1_pacer: Arc<Pacer>,
        token_source: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        let app_id = HeaderValue::from_str(config.app_id.trim())
            .ok()
            .filter(|value| !value.is_empty());
        let mut headers = HeaderMap::new();
        match app_id {
            Some(app_id) => {
                headers.insert(APP_ID_HEADER, app_id);
            }
            None => tracing::warn!(
                app_id = %config.app_id,
                "Personio app id is empty or not a valid header value; X-Personio-App-ID is not sent"
            ),
        }
        let core = ApiCore::new(
            PERSONIO,
            &config.base_url,
            http,
            retry,
            timeout,
            config.client_secret.clone(),
        )
        .with_headers(headers);
        Self {
            inner: Arc::new(Inner {
                core,
                config,
                v1_pacer,
                list_pacer: Arc::new(Pacer::new(EMPLOYEE_LIST_RATE)),
                token_source,
            }),
        }
    }

    /// HTTP requests sent so far by this client and its clones (token requests included).
    pub fn requests_made(&self) -> u64 {
        self.inner.core.requests_made()
    }

    /// Every employee the credential can see (all statuses), via
    /// `GET /v1/company/employees?limit=100&offset=…`, deduplicated by id.
    ///
    /// `offset` is a record offset (reference §4.1), so it advances by the rows a page
    /// actually held: Personio may serve fewer than `limit`. Paging ends at the total
    /// `metadata.total_elements` gives, or at an empty page, never at a short page.
    ///
    /// Fails with [`PersonioError::Decode`] if paging stops advancing.
    pub async fn list_employees(&self) -> Result<Vec<Employee>, PersonioError> {
        let mut employees = Vec::new();
        let mut seen = HashSet::new();
        let mut previous_first: Option<String> = None;
        let mut offset = 0usize;
        for _ in 0..MAX_EMPLOYEE_PAGES {
            let page = self.employee_page(offset).await?;
            let count = page.employees.len();
            let Some(first) = page.employees.first().map(|e| e.id.clone()) else {
                return Ok(employees);
            };
            if previous_first.as_deref() == Some(first.as_str()) {
                return Err(not_advancing(
                    offset,
                    "starts with the same employee as the previous page",
                ));
            }
            let before = employees.len();
            employees.extend(
                page.employees
                    .into_iter()
                    .filter(|e| seen.insert(e.id.clone())),
            );
            if employees.len() == before && count >= PAGE_SIZE {
                return Err(not_advancing(offset, "holds only employees already seen"));
            }
            previous_first = Some(first);
            offset += count;
            let reached_total = page
                .total_elements
                .is_some_and(|total| u64::try_from(offset).is_ok_and(|o| o >= total));
            if reached_total {
                return Ok(employees);
            }
        }
        Err(PersonioError::Decode(format!(
            "employee list did not end after {MAX_EMPLOYEE_PAGES} pages"
        )))
    }

    /// One page of the v1 employee list.
    async fn employee_page(&self, offset: usize) -> Result<EmployeePage, PersonioError> {
        let mut call = self
            .v1_get("/v1/company/employees".into(), "list_employees")
            .query(vec![
                ("limit".into(), PAGE_SIZE.to_string()),
                ("offset".into(), offset.to_string()),
            ])
            .paced(&self.inner.list_pacer);
        call.min_429_wait = Some(V1_EMPLOYEES_MIN_429_WAIT);
        let body = self.expect_body(&call, false).await?.unwrap_or_default();
        model::parse_employee_page(&body).map_err(PersonioError::Decode)
    }

    /// One employee by v1 id; `None` if Personio answers 404 with its own not-found body.
    /// A 404 with any other body (HTML, a wrong base URL) is
    /// [`PersonioError::ForeignNotFound`], never `None`: `None` deactivates.
    pub async fn get_employee(&self, id: &str) -> Result<Option<Employee>, PersonioError> {
        let path = format!("/v1/company/employees/{}", path_segment(id, "employee id")?);
        let call = self.v1_get(path, "get_employee");
        match self.expect_body(&call, true).await? {
            Some(body) => model::parse_single_employee(&body)
                .map(Some)
                .map_err(PersonioError::Decode),
            None => Ok(None),
        }
    }

    /// The attributes the credential may read (`GET /v1/company/employees/attributes`).
    pub async fn readable_attributes(&self) -> Result<Vec<AttributeInfo>, PersonioError> {
        let call = self.v1_get(
            "/v1/company/employees/attributes".into(),
            "readable_attributes",
        );
        let body = self.expect_body(&call, false).await?.unwrap_or_default();
        model::parse_attributes(&body).map_err(PersonioError::Decode)
    }

    /// The profile picture bytes at `width` pixels; `None` on 404 (no picture, not
    /// whitelisted, or no such employee) or an empty body.
    pub async fn profile_picture(
        &self,
        id: &str,
        width: u32,
    ) -> Result<Option<Vec<u8>>, PersonioError> {
        let path = format!(
            "/v1/company/employees/{}/profile-picture/{width}",
            path_segment(id, "employee id")?
        );
        let mut call = self.v1_get(path, "profile_picture");
        call.accept = ACCEPT_IMAGES;
        Ok(self
            .expect_body(&call, true)
            .await?
            .filter(|bytes| !bytes.is_empty()))
    }

    /// A department or team (`kind` = `"department"` or `"team"`) from
    /// `GET /v2/org-units/{id}?type=…&include_parent_chain=true`; `None` on 404.
    pub async fn get_org_unit(
        &self,
        id: &str,
        kind: &str,
    ) -> Result<Option<OrgUnit>, PersonioError> {
        let path = format!("/v2/org-units/{}", path_segment(id, "org unit id")?);
        let call = ApiRequest::new(Method::GET, path)
            .endpoint("get_org_unit")
            .query(vec![
                ("type".into(), kind.to_string()),
                ("include_parent_chain".into(), "true".to_string()),
            ]);
        match self.expect_body(&call, true).await? {
            Some(body) => model::parse_org_unit(&body)
                .map(Some)
                .map_err(PersonioError::Decode),
            None => Ok(None),
        }
    }

    /// Every webhook subscription, following `_meta.links.next.href` cursors.
    ///
    /// Fails with [`PersonioError::Decode`] if a cursor repeats.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, PersonioError> {
        let mut call = ApiRequest::new(Method::GET, "/v2/webhooks")
            .endpoint("list_webhooks")
            .query(vec![("limit".into(), "100".to_string())]);
        let mut webhooks: Vec<Webhook> = Vec::new();
        let mut seen_ids = HashSet::new();
        let mut seen_links = HashSet::new();
        for _ in 0..MAX_WEBHOOK_PAGES {
            let body = self.expect_body(&call, false).await?.unwrap_or_default();
            let page = model::parse_webhook_page(&body).map_err(PersonioError::Decode)?;
            webhooks.extend(
                page.webhooks
                    .into_iter()
                    .filter(|hook| seen_ids.insert(hook.id.clone())),
            );
            let Some(href) = page.next_href else {
                return Ok(webhooks);
            };
            let next = self.resolve_link(&href)?;
            if !seen_links.insert(next.clone()) {
                return Err(PersonioError::Decode(format!(
                    "webhook list cursor repeats ({href}); paging does not advance"
                )));
            }
            call.path = next;
            call.query.clear();
        }
        Err(PersonioError::Decode(format!(
            "webhook list did not end after {MAX_WEBHOOK_PAGES} pages"
        )))
    }

    /// Registers a webhook subscription (`POST /v2/webhooks`, 201). A second subscription
    /// for the same URL is [`PersonioError::Conflict`].
    pub async fn create_webhook(&self, spec: &WebhookSpec) -> Result<Webhook, PersonioError> {
        let call = ApiRequest::new(Method::POST, "/v2/webhooks")
            .endpoint("create_webhook")
            .body(RequestBody::Json(webhook_body(spec)));
        let body = self.expect_body(&call, false).await?.unwrap_or_default();
        model::parse_webhook_body(&body).map_err(PersonioError::Decode)
    }

    /// Replaces the settings of webhook `id` (`PATCH /v2/webhooks/{id}`). An empty 2xx
    /// answer yields the webhook as requested.
    pub async fn update_webhook(
        &self,
        id: &str,
        spec: &WebhookSpec,
    ) -> Result<Webhook, PersonioError> {
        let path = format!("/v2/webhooks/{}", path_segment(id, "webhook id")?);
        let call = ApiRequest::new(Method::PATCH, path)
            .endpoint("update_webhook")
            .body(RequestBody::Json(webhook_body(spec)));
        let body = self.expect_body(&call, false).await?.unwrap_or_default();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(webhook_from_spec(id, spec));
        }
        model::parse_webhook_body(&body).map_err(PersonioError::Decode)
    }

    /// Deletes webhook `id` (`DELETE /v2/webhooks/{id}`). A webhook that is already gone
    /// (404) counts as deleted.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), PersonioError> {
        let path = format!("/v2/webhooks/{}", path_segment(id, "webhook id")?);
        let call = ApiRequest::new(Method::DELETE, path).endpoint("delete_webhook");
        if self.expect_body(&call, true).await?.is_none() {
            tracing::info!(webhook_id = %id, "Personio webhook was already gone");
        }
        Ok(())
    }

    /// A v1 GET: paced by the per-IP pacer, and a 403 may mean an expired token.
    fn v1_get(&self, path: String, label: &'static str) -> ApiRequest {
        let mut call = ApiRequest::new(Method::GET, path)
            .endpoint(label)
            .paced(&self.inner.v1_pacer);
        call.refresh_on_403 = true;
        call
    }

    /// Turns a `next` link into a path on our base: the bearer token is never sent to
    /// another host, whatever the link says.
    fn resolve_link(&self, href: &str) -> Result<String, PersonioError> {
        let href = href.trim();
        if let Some(path) = href.strip_prefix(self.inner.core.base()) {
            return Ok(path.to_string());
        }
        if href.starts_with('/') {
            return Ok(href.to_string());
        }
        if href.starts_with('?') {
            return Ok(format!("/v2/webhooks{href}"));
        }
        match reqwest::Url::parse(href) {
            Ok(parsed) => {
                let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
                Ok(format!("{}{query}", parsed.path()))
            }
            Err(_) => Err(PersonioError::Decode(format!(
                "webhook list `next` link is not a URL: {href}"
            ))),
        }
    }

    /// Runs `call`; a 2xx gives its body, a 404 gives `None` when `allow_404`, anything
    /// else is an error.
    async fn expect_body(
        &self,
        call: &ApiRequest,
        allow_404: bool,
    ) -> Result<Option<Vec<u8>>, PersonioError> {
        let raw = self.execute(call).await?;
        if raw.status.is_success() {
            return Ok(Some(raw.body));
        }
        if allow_404 && raw.status == StatusCode::NOT_FOUND {
            if is_personio_not_found(&raw.body, call.path.starts_with("/v1/")) {
                return Ok(None);
            }
            let excerpt = parse_error_body(&raw.body)
                .message
                .map(|text| text.chars().take(80).collect::<String>())
                .unwrap_or_else(|| "empty body".to_string());
            tracing::warn!(
                endpoint = %call.endpoint,
                excerpt = %excerpt,
                "Personio answered 404 without its own error body; not taken as not found"
            );
            return Err(PersonioError::ForeignNotFound { excerpt });
        }
        Err(failure(
            &call.endpoint,
            raw.status,
            &parse_error_body(&raw.body),
        ))
    }

    /// Sends `call` with a token, retrying transient failures per the policy and
    /// refreshing the token once after an authorisation refusal (401; 403 on v1).
    ///
    /// Successful v1 answers carry the token back in their `Authorization` header
    /// (reference §2.1). Today's tokens are stable for 24 h and "rotation is no longer
    /// required", so that header is deliberately not read: the cached token stays in use
    /// until it is due for renewal or refused. Headers are never logged.
    async fn execute(&self, call: &ApiRequest) -> Result<Raw, PersonioError> {
        if let Some(source) = &self.inner.token_source {
            return self.execute_with_source(call, source.as_ref()).await;
        }
        self.inner
            .core
            .send_authorized(call, || self.fetch_token())
            .await
    }

    /// [`Self::execute`] with tokens from an OpenID Connect grant: the source caches
    /// and refreshes them (one refresh per tenant); a refused token is reported to it
    /// and the call is tried once more with a fresh one.
    async fn execute_with_source(
        &self,
        call: &ApiRequest,
        source: &dyn TokenSource,
    ) -> Result<Raw, PersonioError> {
        let mut refreshed = false;
        loop {
            let token = source.access_token().await?;
            let raw = self.inner.core.send(call, Some(&token)).await?;
            let refused = raw.status == StatusCode::UNAUTHORIZED
                || (call.refresh_on_403 && raw.status == StatusCode::FORBIDDEN);
            if !refused || refreshed {
                return Ok(raw);
            }
            source.refused(&token);
            refreshed = true;
        }
    }

    /// The scopes granted to the client credentials, as the token endpoint names them
    /// (`None` when its answer names none). Asks for a token of its own.
    pub async fn granted_scopes(&self) -> Result<Option<Vec<String>>, PersonioError> {
        let answer = self.request_token().await?;
        Ok(answer.scope.map(|scope| {
            scope
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }))
    }

    /// `POST /v2/auth/token` with client credentials (form-encoded, no scope), retrying
    /// transient failures (an OAuth `server_error` or `temporarily_unavailable` too).
    async fn fetch_token(&self) -> Result<FreshToken, PersonioError> {
        let answer = self.request_token().await?;
        Ok(FreshToken {
            value: answer.access_token,
            expires_in: answer.expires_in,
        })
    }

    /// The token request of [`Self::fetch_token`], its answer whole.
    async fn request_token(&self) -> Result<model::TokenAnswer, PersonioError> {
        let core = &self.inner.core;
        let form = vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), self.inner.config.client_id.clone()),
            ("client_secret".into(), core.secret().expose().to_string()),
        ];
        let mut request = ApiRequest::new(Method::POST, "/v2/auth/token")
            .endpoint("auth_token")
            .body(RequestBody::Form(form));
        request.transient_body = Some(oauth_transient);
        let raw = core.send(&request, None).await?;
        if raw.status.is_success() {
            return model::parse_token(&raw.body).map_err(PersonioError::Decode);
        }
        Err(self.token_failure(raw.status, &parse_error_body(&raw.body)))
    }

    /// The error for a final non-2xx token answer; the secret is scrubbed from it.
    fn token_failure(&self, status: StatusCode, body: &ErrorBody) -> PersonioError {
        let code = status.as_u16();
        let message = self.inner.core.scrub(
            body.message
                .as_deref()
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused")),
        );
        tracing::warn!(
            endpoint = "auth_token",
            status = code,
            oauth_error = body.oauth_error.as_deref().unwrap_or(""),
            trace_id = body.trace_id.as_deref().unwrap_or(""),
            "Personio token request refused"
        );
        match code {
            429 => PersonioError::RateLimited,
            500..=599 => PersonioError::Server {
                status: code,
                trace_id: body.trace_id.clone(),
            },
            400 | 401 | 403 => PersonioError::Unauthorized {
                message: format!("token request refused: {message}"),
            },
            _ => PersonioError::Api {
                status: code,
                message,
                trace_id: body.trace_id.clone(),
            },
        }
    }
}

impl From<SendError> for PersonioError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Transport(reason) => Self::Transport(reason),
            SendError::TooLarge => Self::Decode(SendError::too_large_message()),
        }
    }
}

/// The trace id of a Personio error body, for the core's retry logs.
fn trace_id(body: &[u8]) -> Option<String> {
    parse_error_body(body).trace_id
}

/// Whether a token answer's body names a transient OAuth error.
fn oauth_transient(body: &[u8]) -> bool {
    matches!(
        parse_error_body(body).oauth_error.as_deref(),
        Some("server_error" | "temporarily_unavailable")
    )
}

/// The error for a final non-2xx answer of an API endpoint, logged with its trace id.
fn failure(endpoint: &str, status: StatusCode, body: &ErrorBody) -> PersonioError {
    let code = status.as_u16();
    let message = body
        .message
        .clone()
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    tracing::warn!(
        endpoint,
        status = code,
        trace_id = body.trace_id.as_deref().unwrap_or(""),
        message = %message,
        "Personio refused the request"
    );
    let trace_id = body.trace_id.clone();
    match code {
        401 => PersonioError::Unauthorized { message },
        403 => PersonioError::Forbidden { message },
        409 => PersonioError::Conflict { message, trace_id },
        429 => PersonioError::RateLimited,
        500..=599 => PersonioError::Server {
            status: code,
            trace_id,
        },
        _ => PersonioError::Api {
            status: code,
            message,
            trace_id,
        },
    }
}

/// The error for paging that does not advance.
fn not_advancing(offset: usize, what: &str) -> PersonioError {
    PersonioError::Decode(format!(
        "employee page at offset {offset} {what}; paging does not advance"
    ))
}

/// `value` percent-encoded as one URL path segment; empty and dot-only values are
/// refused because a URL parser would treat them as navigation.
fn path_segment(value: &str, what: &str) -> Result<String, PersonioError> {
    if value.is_empty() || value.chars().all(|c| c == '.') {
        return Err(PersonioError::InvalidInput(format!(
            "{what} {value:?} cannot be used in a URL"
        )));
    }
    Ok(api_client::encode_path_segment(value))
}

/// The JSON body of a webhook create / update (the one place the token is sent).
fn webhook_body(spec: &WebhookSpec) -> Value {
    let mut body = json!({
        "url": spec.url,
        "description": spec.description,
        "status": spec.status,
        "auth_type": spec.auth_type,
        "enabled_events": spec.enabled_events,
    });
    if !spec.token.expose().is_empty() {
        body["token"] = Value::String(spec.token.expose().to_string());
    }
    body
}

/// The webhook as requested, for an update answered without a body.
fn webhook_from_spec(id: &str, spec: &WebhookSpec) -> Webhook {
    Webhook {
        id: id.to_string(),
        url: spec.url.clone(),
        description: Some(spec.description.clone()),
        status: Some(spec.status.clone()),
        auth_type: Some(spec.auth_type.clone()),
        enabled_events: spec.enabled_events.clone(),
    }
}

#[cfg(test)]
mod tests;
