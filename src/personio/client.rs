//! The reqwest implementation of the Personio client: token cache, identification
//! headers, bounded retries, v1 offset paging and v2 cursor paging (reference §2.2, §4,
//! §7, §9, §10, §13).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{ErrorBody, PersonioError, is_personio_not_found, parse_error_body, scrub};
use super::model::{self, AttributeInfo, EmployeePage, OrgUnit, TokenAnswer, Webhook, WebhookSpec};
use crate::domain::{Employee, Secret};
use crate::pacer::{Pacer, Rate};
use crate::retry::{RetryPolicy, retry_after};

/// Timeout of every single HTTP request the client builds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Page size of `GET /v1/company/employees` (Personio's maximum since 2025).
const PAGE_SIZE: usize = 100;
/// Safety bound on v1 pages (500,000 employees at full pages): stops a total that grows
/// forever.
const MAX_EMPLOYEE_PAGES: usize = 5_000;
/// Safety bound on v2 webhook list pages.
const MAX_WEBHOOK_PAGES: usize = 1_000;
/// Largest body read from Personio (profile pictures included).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Renew a token this long before it expires (at most half its lifetime).
const RENEW_MARGIN_SECS: u64 = 60;
/// Lifetime assumed when the token answer gives no `expires_in`.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3_600;
/// Longest server-requested `Retry-After` honoured (a larger value would stall the tenant).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Minimum wait after a 429 on v1 employees, as Personio advises (§9).
const V1_EMPLOYEES_MIN_429_WAIT: Duration = Duration::from_secs(1);
/// Retry policies with a base delay below this are test policies: no 1 s floor.
const MIN_429_WAIT_APPLIES_FROM: Duration = Duration::from_millis(100);
/// `Accept` of JSON endpoints.
const ACCEPT_JSON: &str = "application/json";
/// `Accept` of the profile-picture endpoint.
const ACCEPT_IMAGES: &str = "image/png, image/jpeg";
/// The identification header sent on every call (§1.3).
const APP_ID_HEADER: &str = "X-Personio-App-ID";

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

/// A Personio API client for one tenant. Cheap to clone; clones share the token cache
/// and the request counter.
#[derive(Clone)]
pub struct PersonioClient {
    inner: Arc<Inner>,
}

/// The shared state behind a [`PersonioClient`].
struct Inner {
    http: reqwest::Client,
    config: PersonioConfig,
    /// `config.base_url` without trailing slashes.
    base: String,
    /// The app id header value, if it is a valid header value.
    app_id: Option<HeaderValue>,
    retry: RetryPolicy,
    timeout: Duration,
    /// The cached v2 token. Held across a refresh so only one refresh is ever in flight.
    token: Mutex<Option<CachedToken>>,
    /// HTTP requests sent (token requests included).
    requests: AtomicU64,
    /// Paces every v1 call under Personio's 2,000/min per-IP limit. One per process,
    /// shared by every tenant's client (see [`PersonioClient::with_v1_pacer`]).
    v1_pacer: Arc<Pacer>,
    /// Paces the employee list under its 300/min (15/s burst) limit.
    list_pacer: Pacer,
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

/// A token and when to stop using it.
struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

/// One API request, as data, so that it can be re-sent.
struct Call {
    method: Method,
    url: String,
    query: Vec<(&'static str, String)>,
    json: Option<Value>,
    accept: &'static str,
    /// Endpoint name for logs.
    label: &'static str,
    /// A v1 endpoint: a 403 may mean an expired token.
    v1: bool,
    /// Apply Personio's "wait at least 1 s after a 429" (v1 employee list).
    min_429_wait: bool,
}

impl Call {
    /// A call expecting JSON back.
    fn new(method: Method, url: String, label: &'static str) -> Self {
        Self {
            method,
            url,
            query: Vec::new(),
            json: None,
            accept: ACCEPT_JSON,
            label,
            v1: false,
            min_429_wait: false,
        }
    }

    /// A GET expecting JSON back.
    fn get(url: String, label: &'static str) -> Self {
        Self::new(Method::GET, url, label)
    }

    /// Marks the call as a v1 call.
    fn v1(mut self) -> Self {
        self.v1 = true;
        self
    }
}

/// A raw HTTP answer.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// What the retry loop does with an answer.
enum Disposition {
    /// Hand the answer to the caller.
    Done,
    /// Drop the token and try once more with a fresh one.
    Refresh,
    /// Transient: back off and retry.
    Retry,
}

impl std::fmt::Debug for PersonioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioClient")
            .field("base_url", &self.inner.base)
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
        )
    }

    /// The same client with another per-request timeout (and a fresh token cache).
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        Self::assemble(
            self.inner.config.clone(),
            self.inner.http.clone(),
            self.inner.retry,
            timeout,
            self.inner.v1_pacer.clone(),
        )
    }

    /// The same client pacing its v1 calls with `pacer` (and a fresh token cache).
    /// Personio limits v1 calls per source IP, so the service gives every tenant's
    /// client the one pacer of the process.
    pub fn with_v1_pacer(self, pacer: Arc<Pacer>) -> Self {
        Self::assemble(
            self.inner.config.clone(),
            self.inner.http.clone(),
            self.inner.retry,
            self.inner.timeout,
            pacer,
        )
    }

    /// Builds the shared state.
    fn assemble(
        config: PersonioConfig,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
        v1_pacer: Arc<Pacer>,
    ) -> Self {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let app_id = HeaderValue::from_str(config.app_id.trim())
            .ok()
            .filter(|value| !value.is_empty());
        if app_id.is_none() {
            tracing::warn!(
                app_id = %config.app_id,
                "Personio app id is empty or not a valid header value; X-Personio-App-ID is not sent"
            );
        }
        Self {
            inner: Arc::new(Inner {
                http,
                config,
                base,
                app_id,
                retry,
                timeout,
                token: Mutex::new(None),
                requests: AtomicU64::new(0),
                v1_pacer,
                list_pacer: Pacer::new(EMPLOYEE_LIST_RATE),
            }),
        }
    }

    /// HTTP requests sent so far by this client and its clones (token requests included).
    pub fn requests_made(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
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
        let mut call = Call::get(self.url("/v1/company/employees"), "list_employees").v1();
        call.query = vec![
            ("limit", PAGE_SIZE.to_string()),
            ("offset", offset.to_string()),
        ];
        call.min_429_wait = true;
        let body = self.expect_body(&call, false).await?.unwrap_or_default();
        model::parse_employee_page(&body).map_err(PersonioError::Decode)
    }

    /// One employee by v1 id; `None` if Personio answers 404 with its own not-found body.
    /// A 404 with any other body (HTML, a wrong base URL) is
    /// [`PersonioError::ForeignNotFound`], never `None`: `None` deactivates.
    pub async fn get_employee(&self, id: &str) -> Result<Option<Employee>, PersonioError> {
        let path = format!("/v1/company/employees/{}", path_segment(id, "employee id")?);
        let call = Call::get(self.url(&path), "get_employee").v1();
        match self.expect_body(&call, true).await? {
            Some(body) => model::parse_single_employee(&body)
                .map(Some)
                .map_err(PersonioError::Decode),
            None => Ok(None),
        }
    }

    /// The attributes the credential may read (`GET /v1/company/employees/attributes`).
    pub async fn readable_attributes(&self) -> Result<Vec<AttributeInfo>, PersonioError> {
        let call = Call::get(
            self.url("/v1/company/employees/attributes"),
            "readable_attributes",
        )
        .v1();
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
        let mut call = Call::get(self.url(&path), "profile_picture").v1();
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
        let mut call = Call::get(self.url(&path), "get_org_unit");
        call.query = vec![
            ("type", kind.to_string()),
            ("include_parent_chain", "true".to_string()),
        ];
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
        let mut call = Call::get(self.url("/v2/webhooks"), "list_webhooks");
        call.query = vec![("limit", "100".to_string())];
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
            call.url = next;
            call.query.clear();
        }
        Err(PersonioError::Decode(format!(
            "webhook list did not end after {MAX_WEBHOOK_PAGES} pages"
        )))
    }

    /// Registers a webhook subscription (`POST /v2/webhooks`, 201). A second subscription
    /// for the same URL is [`PersonioError::Conflict`].
    pub async fn create_webhook(&self, spec: &WebhookSpec) -> Result<Webhook, PersonioError> {
        let mut call = Call::new(Method::POST, self.url("/v2/webhooks"), "create_webhook");
        call.json = Some(webhook_body(spec));
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
        let mut call = Call::new(Method::PATCH, self.url(&path), "update_webhook");
        call.json = Some(webhook_body(spec));
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
        let call = Call::new(Method::DELETE, self.url(&path), "delete_webhook");
        if self.expect_body(&call, true).await?.is_none() {
            tracing::info!(webhook_id = %id, "Personio webhook was already gone");
        }
        Ok(())
    }

    /// `base + path`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base)
    }

    /// Turns a `next` link into a URL on our base: the bearer token is never sent to
    /// another host, whatever the link says.
    fn resolve_link(&self, href: &str) -> Result<String, PersonioError> {
        let href = href.trim();
        if href.starts_with(&self.inner.base) {
            return Ok(href.to_string());
        }
        if href.starts_with('/') {
            return Ok(self.url(href));
        }
        if href.starts_with('?') {
            return Ok(self.url(&format!("/v2/webhooks{href}")));
        }
        match reqwest::Url::parse(href) {
            Ok(parsed) => {
                let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
                Ok(self.url(&format!("{}{query}", parsed.path())))
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
        call: &Call,
        allow_404: bool,
    ) -> Result<Option<Vec<u8>>, PersonioError> {
        let raw = self.execute(call).await?;
        if raw.status.is_success() {
            return Ok(Some(raw.body));
        }
        if allow_404 && raw.status == StatusCode::NOT_FOUND {
            if is_personio_not_found(&raw.body, call.v1) {
                return Ok(None);
            }
            let excerpt = parse_error_body(&raw.body)
                .message
                .map(|text| text.chars().take(80).collect::<String>())
                .unwrap_or_else(|| "empty body".to_string());
            tracing::warn!(
                endpoint = call.label,
                excerpt = %excerpt,
                "Personio answered 404 without its own error body; not taken as not found"
            );
            return Err(PersonioError::ForeignNotFound { excerpt });
        }
        Err(failure(
            call.label,
            raw.status,
            &parse_error_body(&raw.body),
        ))
    }

    /// Sends `call` with a token, retrying transient failures per the policy and
    /// refreshing the token once after an authorisation refusal.
    async fn execute(&self, call: &Call) -> Result<Raw, PersonioError> {
        let mut attempt: u32 = 1;
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            if call.v1 {
                self.inner.v1_pacer.acquire().await;
            }
            if call.min_429_wait {
                self.inner.list_pacer.acquire().await;
            }
            let started = Instant::now();
            let raw = self.send(self.request(call, &token)).await;
            crate::metrics::api_call(
                "personio",
                call.label,
                &raw.as_ref()
                    .map(|raw| raw.status.as_u16().to_string())
                    .unwrap_or_else(|_| "error".into()),
                started.elapsed(),
            );
            let raw = match raw {
                Ok(raw) => raw,
                Err(PersonioError::Transport(reason)) => {
                    tracing::warn!(endpoint = call.label, attempt, %reason, "Personio request failed");
                    if self.back_off(call.label, &mut attempt, None).await {
                        continue;
                    }
                    return Err(PersonioError::Transport(reason));
                }
                Err(other) => return Err(other),
            };
            match disposition(call, raw.status) {
                Disposition::Done => return Ok(raw),
                Disposition::Refresh if !refreshed => {
                    tracing::info!(
                        endpoint = call.label,
                        status = raw.status.as_u16(),
                        "Personio refused the token; fetching a fresh one"
                    );
                    refreshed = true;
                    self.drop_token(&token).await;
                }
                Disposition::Refresh => return Ok(raw),
                Disposition::Retry => {
                    let wait = self.retry_delay(call, &raw, attempt);
                    let body = parse_error_body(&raw.body);
                    tracing::warn!(
                        endpoint = call.label,
                        status = raw.status.as_u16(),
                        attempt,
                        trace_id = body.trace_id.as_deref().unwrap_or(""),
                        "Personio answered with a transient error"
                    );
                    if !self.back_off(call.label, &mut attempt, Some(wait)).await {
                        return Ok(raw);
                    }
                }
            }
        }
    }

    /// The wait before retrying a transient answer.
    fn retry_delay(&self, call: &Call, raw: &Raw, attempt: u32) -> Duration {
        let retry = &self.inner.retry;
        let delay = retry.delay(attempt, server_retry_after(&raw.headers));
        let floor_applies = call.min_429_wait
            && raw.status == StatusCode::TOO_MANY_REQUESTS
            && retry.base_delay >= MIN_429_WAIT_APPLIES_FROM;
        if floor_applies {
            delay.max(V1_EMPLOYEES_MIN_429_WAIT)
        } else {
            delay
        }
    }

    /// Sleeps before the next attempt and counts it under `endpoint`; `false` when
    /// attempts are used up. `wait` defaults to the policy's delay.
    async fn back_off(
        &self,
        endpoint: &'static str,
        attempt: &mut u32,
        wait: Option<Duration>,
    ) -> bool {
        if !self.inner.retry.may_retry(*attempt) {
            return false;
        }
        let wait = wait.unwrap_or_else(|| self.inner.retry.delay(*attempt, None));
        crate::metrics::api_retry("personio", endpoint);
        tokio::time::sleep(wait).await;
        *attempt += 1;
        true
    }

    /// The request for `call`, with identification, `Accept`, bearer token and timeout.
    fn request(&self, call: &Call, token: &Secret) -> reqwest::RequestBuilder {
        let mut request = self
            .base_request(call.method.clone(), &call.url, call.accept)
            .bearer_auth(token.expose());
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.json {
            request = request.json(body);
        }
        request
    }

    /// A request with the headers every Personio call carries.
    fn base_request(
        &self,
        method: Method,
        url: &str,
        accept: &'static str,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .inner
            .http
            .request(method, url)
            .timeout(self.inner.timeout)
            .header(ACCEPT, accept);
        if let Some(app_id) = &self.inner.app_id {
            request = request.header(APP_ID_HEADER, app_id.clone());
        }
        request
    }

    /// Sends one request and reads its answer (bounded), counting it.
    ///
    /// Successful v1 answers carry the token back in their `Authorization` header
    /// (reference §2.1). Today's tokens are stable for 24 h and "rotation is no longer
    /// required", so that header is deliberately not read: the cached token stays in use
    /// until it is due for renewal or refused. Headers are never logged.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Raw, PersonioError> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(PersonioError::Decode(format!(
                    "answer larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Raw {
            status,
            headers,
            body,
        })
    }

    /// The cached token, or a fresh one. The cache lock is held while fetching, so
    /// concurrent callers wait for the single refresh instead of starting their own.
    async fn token(&self) -> Result<Secret, PersonioError> {
        let mut cache = self.inner.token.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.access_token.clone();
        *cache = Some(CachedToken {
            value: fresh.access_token,
            renew_at: renew_at(Instant::now(), fresh.expires_in),
        });
        Ok(value)
    }

    /// Forgets `stale` if it is still the cached token (a concurrent caller may already
    /// have replaced it).
    async fn drop_token(&self, stale: &Secret) {
        let mut cache = self.inner.token.lock().await;
        if cache.as_ref().is_some_and(|cached| &cached.value == stale) {
            *cache = None;
        }
    }

    /// `POST /v2/auth/token` with client credentials (form-encoded, no scope), retrying
    /// transient failures.
    async fn fetch_token(&self) -> Result<TokenAnswer, PersonioError> {
        let config = &self.inner.config;
        let url = self.url("/v2/auth/token");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.expose()),
        ];
        let mut attempt: u32 = 1;
        loop {
            let request = self
                .base_request(Method::POST, &url, ACCEPT_JSON)
                .form(&form);
            let raw = match self.send(request).await {
                Ok(raw) => raw,
                Err(PersonioError::Transport(reason)) => {
                    tracing::warn!(endpoint = "auth_token", attempt, %reason, "Personio token request failed");
                    if self.back_off("auth_token", &mut attempt, None).await {
                        continue;
                    }
                    return Err(PersonioError::Transport(reason));
                }
                Err(other) => return Err(other),
            };
            if raw.status.is_success() {
                return model::parse_token(&raw.body).map_err(PersonioError::Decode);
            }
            let body = parse_error_body(&raw.body);
            if token_answer_is_transient(raw.status, &body) {
                let wait = self
                    .inner
                    .retry
                    .delay(attempt, server_retry_after(&raw.headers));
                tracing::warn!(
                    endpoint = "auth_token",
                    status = raw.status.as_u16(),
                    attempt,
                    trace_id = body.trace_id.as_deref().unwrap_or(""),
                    "Personio token endpoint answered with a transient error"
                );
                if self.back_off("auth_token", &mut attempt, Some(wait)).await {
                    continue;
                }
            }
            return Err(self.token_failure(raw.status, &body));
        }
    }

    /// The error for a final non-2xx token answer; the secret is scrubbed from it.
    fn token_failure(&self, status: StatusCode, body: &ErrorBody) -> PersonioError {
        let secret = self.inner.config.client_secret.expose();
        let code = status.as_u16();
        let message = scrub(
            body.message
                .as_deref()
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused")),
            secret,
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

/// When a token with `expires_in` seconds of life, received at `now`, should be renewed.
fn renew_at(now: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
    let margin = RENEW_MARGIN_SECS.min(lifetime / 2);
    now + Duration::from_secs(lifetime - margin)
}

/// The server's `Retry-After`, capped at [`MAX_RETRY_AFTER`].
fn server_retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after(headers).map(|wait| wait.min(MAX_RETRY_AFTER))
}

/// Whether a non-2xx token answer is worth retrying.
fn token_answer_is_transient(status: StatusCode, body: &ErrorBody) -> bool {
    let server_side = status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED;
    let oauth_transient = matches!(
        body.oauth_error.as_deref(),
        Some("server_error" | "temporarily_unavailable")
    );
    server_side || status == StatusCode::TOO_MANY_REQUESTS || oauth_transient
}

/// What the retry loop does with `status`.
fn disposition(call: &Call, status: StatusCode) -> Disposition {
    match status.as_u16() {
        401 => Disposition::Refresh,
        403 if call.v1 => Disposition::Refresh,
        429 => Disposition::Retry,
        501 => Disposition::Done,
        500..=599 => Disposition::Retry,
        _ => Disposition::Done,
    }
}

/// The error for a final non-2xx answer of an API endpoint, logged with its trace id.
fn failure(endpoint: &'static str, status: StatusCode, body: &ErrorBody) -> PersonioError {
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

/// A network-level failure, with its cause chain (no secrets: URLs carry none).
fn transport(err: reqwest::Error) -> PersonioError {
    let mut reason = if err.is_timeout() {
        format!("timed out: {err}")
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    PersonioError::Transport(reason)
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
    Ok(value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect())
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
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;

    use super::*;

    /// One request the fake server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: String,
        headers: axum::http::HeaderMap,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> &str {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
        }

        fn bearer(&self) -> &str {
            self.header("authorization")
                .strip_prefix("Bearer ")
                .unwrap_or("")
        }

        fn query_value(&self, key: &str) -> Option<String> {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        }
    }

    /// The fake server's answer.
    struct Reply {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        delay: Duration,
    }

    impl Reply {
        fn json(status: u16, value: Value) -> Self {
            Self {
                status,
                content_type: "application/json",
                body: value.to_string().into_bytes(),
                delay: Duration::ZERO,
            }
        }

        fn problem(status: u16, trace_id: &str) -> Self {
            let mut reply = Self::json(
                status,
                json!({"personio_trace_id": trace_id, "errors": [{"title": "Bad Gateway", "detail": "Please try again later"}]}),
            );
            reply.content_type = "application/problem+json";
            reply
        }

        fn v1_error(status: u16, message: &str) -> Self {
            Self::json(
                status,
                json!({"success": false, "error": {"code": status, "message": message}}),
            )
        }

        fn empty(status: u16) -> Self {
            Self {
                status,
                content_type: "text/plain",
                body: Vec::new(),
                delay: Duration::ZERO,
            }
        }
    }

    type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;
    type Log = Arc<StdMutex<Vec<Seen>>>;

    struct Fake {
        base: String,
        log: Log,
    }

    impl Fake {
        fn seen(&self) -> Vec<Seen> {
            self.log.lock().expect("log").clone()
        }

        fn count(&self, path: &str) -> usize {
            self.seen().iter().filter(|s| s.path == path).count()
        }
    }

    async fn answer(State((script, log)): State<(Script, Log)>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        log.lock().expect("log").push(seen.clone());
        let reply = script(&seen);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut response = Response::builder()
            .status(reply.status)
            .header("content-type", reply.content_type);
        if seen.path.starts_with("/v1/") && (200..300).contains(&reply.status) {
            // Successful v1 answers carry a token back (reference §2.1); this one differs
            // from the token presented, to show the client does not switch to it.
            response = response.header("authorization", format!("Bearer {RETURNED_TOKEN}"));
        }
        response.body(Body::from(reply.body)).expect("response")
    }

    /// The token every successful v1 answer of the fake carries back.
    const RETURNED_TOKEN: &str = "papi-returned-in-header";

    /// A fake Personio on 127.0.0.1:0. The token endpoint hands out `tok-1`, `tok-2`, …
    /// (with `expires_in`) and insists on the app id and the form fields; every other
    /// request goes to `script`.
    async fn spawn_with_expiry(
        expires_in: u64,
        script: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let tokens = AtomicUsize::new(0);
        let script: Script = Arc::new(move |seen: &Seen| {
            if seen.header("x-personio-app-id") != "PERSONIO_SYNC" {
                return Reply::v1_error(400, "missing app id");
            }
            if seen.path == "/v2/auth/token" {
                let form: Vec<(String, String)> =
                    serde_urlencoded::from_str(&seen.body).unwrap_or_default();
                let expected = [
                    ("grant_type", "client_credentials"),
                    ("client_id", "cid"),
                    ("client_secret", "s3cret"),
                ];
                let matches = form.len() == 3
                    && expected
                        .iter()
                        .all(|(k, v)| form.iter().any(|(fk, fv)| fk == k && fv == v));
                if !matches {
                    return Reply::json(400, json!({"error": "invalid_request"}));
                }
                let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
                return Reply::json(
                    200,
                    json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}),
                );
            }
            script(seen)
        });
        let log: Log = Arc::default();
        let app = Router::new()
            .fallback(answer)
            .with_state((script, log.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            base: format!("http://{addr}"),
            log,
        }
    }

    async fn spawn(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        spawn_with_expiry(86_400, script).await
    }

    fn config(base: &str) -> PersonioConfig {
        PersonioConfig {
            base_url: format!("{base}/"),
            client_id: "cid".into(),
            client_secret: Secret::new("s3cret"),
            app_id: "PERSONIO_SYNC".into(),
        }
    }

    fn client(fake: &Fake) -> PersonioClient {
        PersonioClient::new(
            config(&fake.base),
            reqwest::Client::new(),
            RetryPolicy::fast(),
        )
    }

    fn employee(id: usize) -> Value {
        json!({"type": "Employee", "attributes": {
            "id": {"label": "ID", "value": id, "type": "integer", "universal_id": "id"},
            "email": {"label": "Email", "value": format!("e{id}@example.com"), "type": "standard", "universal_id": "email"}
        }})
    }

    fn page(ids: impl Iterator<Item = usize>, total: usize) -> Value {
        let data: Vec<Value> = ids.map(employee).collect();
        json!({"success": true, "metadata": {"total_elements": total, "current_page": 0, "total_pages": 1}, "data": data})
    }

    /// Serves `total` employees with honest offset paging.
    fn paged(seen: &Seen, total: usize) -> Reply {
        let offset: usize = seen
            .query_value("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let limit: usize = seen
            .query_value("limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        let end = (offset + limit).min(total);
        Reply::json(200, page((offset.min(end)..end).map(|i| i + 1), total))
    }

    fn spec() -> WebhookSpec {
        WebhookSpec {
            url: "https://sync.example.com/webhooks/personio/key".into(),
            description: "LMS sync".into(),
            status: "ENABLED".into(),
            auth_type: "TOKEN".into(),
            token: Secret::new("Bearer hook-token"),
            enabled_events: vec!["person.created".into(), "person.updated".into()],
        }
    }

    fn webhook_json(id: &str) -> Value {
        json!({"id": id, "url": "https://sync.example.com/webhooks/personio/key", "description": "LMS sync",
               "status": "ENABLED", "auth_type": "TOKEN", "token": "Bearer hook-token",
               "enabled_events": ["person.created", "person.updated"]})
    }

    #[tokio::test]
    async fn retries_503_twice_then_succeeds() {
        let calls = AtomicUsize::new(0);
        let fake = spawn(move |seen| {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Reply::problem(503, "trace-503")
            } else {
                paged(seen, 3)
            }
        })
        .await;
        let client = client(&fake);
        let employees = client.list_employees().await.unwrap();
        assert_eq!(employees.len(), 3);
        assert_eq!(employees[2].email.as_deref(), Some("e3@example.com"));
        assert_eq!(fake.count("/v1/company/employees"), 3);
        assert_eq!(client.requests_made(), 4, "one token + three attempts");
        let retries = crate::metrics::render(&[])
            .lines()
            .find(|line| {
                line.starts_with(
                    "personio_sync_api_retries_total{system=\"personio\",endpoint=\"list_employees\"}",
                )
            })
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
        assert!(
            retries.is_some_and(|count| count >= 2.0),
            "retries counted under the endpoint: {retries:?}"
        );
    }

    #[tokio::test]
    async fn a_401_fetches_one_fresh_token_and_retries_once() {
        let fake = spawn(|seen| {
            if seen.bearer() == "tok-1" {
                Reply::problem(401, "trace-401")
            } else {
                Reply::json(
                    200,
                    json!({"_data": [webhook_json("w1")], "_meta": {"links": {}}}),
                )
            }
        })
        .await;
        let client = client(&fake);
        let hooks = client.list_webhooks().await.unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(fake.count("/v2/auth/token"), 2);
        assert_eq!(fake.count("/v2/webhooks"), 2);
        // The fresh token is cached.
        client.list_webhooks().await.unwrap();
        assert_eq!(fake.count("/v2/auth/token"), 2);
    }

    #[tokio::test]
    async fn a_persistent_401_is_a_credentials_error_after_one_refresh() {
        let fake = spawn(|_| Reply::problem(401, "t")).await;
        let err = client(&fake).list_webhooks().await.unwrap_err();
        assert!(matches!(err, PersonioError::Unauthorized { .. }), "{err:?}");
        assert!(err.is_credentials());
        assert_eq!(fake.count("/v2/auth/token"), 2);
        assert_eq!(fake.count("/v2/webhooks"), 2);
    }

    #[tokio::test]
    async fn a_v1_expired_token_403_is_refreshed() {
        let fake = spawn(|seen| {
            if seen.bearer() == "tok-1" {
                Reply::v1_error(403, "Provided authorization is not valid")
            } else {
                paged(seen, 2)
            }
        })
        .await;
        let employees = client(&fake).list_employees().await.unwrap();
        assert_eq!(employees.len(), 2);
        assert_eq!(fake.count("/v2/auth/token"), 2);
    }

    #[tokio::test]
    async fn a_v2_403_is_forbidden_without_refresh() {
        let fake = spawn(|_| {
            Reply::json(
                403,
                json!({"errors": [{"title": "Insufficient access scope"}]}),
            )
        })
        .await;
        let err = client(&fake).list_webhooks().await.unwrap_err();
        assert_eq!(
            err,
            PersonioError::Forbidden {
                message: "Insufficient access scope".into()
            }
        );
        assert_eq!(fake.count("/v2/auth/token"), 1);
    }

    #[tokio::test]
    async fn pages_through_250_employees_100_at_a_time() {
        let fake = spawn(|seen| paged(seen, 250)).await;
        let employees = client(&fake).list_employees().await.unwrap();
        assert_eq!(employees.len(), 250);
        let ids: HashSet<&str> = employees.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 250);
        let pages: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.path == "/v1/company/employees")
            .collect();
        let offsets: Vec<String> = pages
            .iter()
            .filter_map(|s| s.query_value("offset"))
            .collect();
        assert_eq!(offsets, ["0", "100", "200"]);
        assert!(
            pages
                .iter()
                .all(|s| s.query_value("limit").as_deref() == Some("100"))
        );
    }

    #[tokio::test]
    async fn exact_multiple_of_the_page_size_stops_on_the_total() {
        let fake = spawn(|seen| paged(seen, 200)).await;
        assert_eq!(client(&fake).list_employees().await.unwrap().len(), 200);
        assert_eq!(fake.count("/v1/company/employees"), 2);
    }

    #[tokio::test]
    async fn the_token_carried_back_by_v1_answers_is_not_switched_to() {
        // Reference §2.1: tokens are stable for 24 h; single-use tokens returned in the
        // `Authorization` response header are legacy and "rotation is no longer
        // required". The cached token stays in use; the returned one is never sent.
        let fake = spawn(|seen| paged(seen, 150)).await;
        let client = client(&fake);
        assert_eq!(client.list_employees().await.unwrap().len(), 150);
        client.readable_attributes().await.ok();
        let calls: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.path.starts_with("/v1/"))
            .collect();
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|s| s.bearer() == "tok-1"), "{calls:?}");
        assert_eq!(fake.count("/v2/auth/token"), 1);
        assert!(!format!("{client:?}").contains(RETURNED_TOKEN));
    }

    #[tokio::test]
    async fn short_pages_do_not_end_the_list() {
        // The server serves at most 37 rows whatever `limit` says.
        let fake = spawn(|seen| {
            let offset: usize = seen
                .query_value("offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let end = (offset + 37).min(250);
            Reply::json(200, page((offset.min(end)..end).map(|i| i + 1), 250))
        })
        .await;
        let employees = client(&fake).list_employees().await.unwrap();
        assert_eq!(employees.len(), 250);
        let offsets: Vec<String> = fake
            .seen()
            .iter()
            .filter(|s| s.path == "/v1/company/employees")
            .filter_map(|s| s.query_value("offset"))
            .collect();
        assert_eq!(
            offsets,
            ["0", "37", "74", "111", "148", "185", "222"],
            "record offsets advance by the rows served"
        );
    }

    #[tokio::test]
    async fn without_a_total_the_list_ends_at_an_empty_page() {
        let fake = spawn(|seen| {
            let offset: usize = seen
                .query_value("offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let end = (offset + 30).min(70);
            let data: Vec<Value> = (offset.min(end)..end).map(|i| employee(i + 1)).collect();
            Reply::json(200, json!({"success": true, "data": data}))
        })
        .await;
        assert_eq!(client(&fake).list_employees().await.unwrap().len(), 70);
        assert_eq!(fake.count("/v1/company/employees"), 4);
    }

    #[tokio::test]
    async fn a_page_that_never_advances_is_an_error_not_a_hang() {
        let fake = spawn(|_| Reply::json(200, page(1..=100, 1_000))).await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), client(&fake).list_employees())
            .await
            .expect("list_employees must not loop");
        assert!(
            matches!(outcome, Err(PersonioError::Decode(_))),
            "{outcome:?}"
        );
        assert_eq!(fake.count("/v1/company/employees"), 2);
    }

    #[tokio::test]
    async fn duplicates_across_pages_are_dropped() {
        // The second page overlaps the first by one (a record shifted between calls).
        let fake = spawn(|seen| match seen.query_value("offset").as_deref() {
            Some("0") => Reply::json(200, page(1..=100, 150)),
            _ => Reply::json(200, page(100..=150, 150)),
        })
        .await;
        let employees = client(&fake).list_employees().await.unwrap();
        assert_eq!(employees.len(), 150);
    }

    #[tokio::test]
    async fn every_call_identifies_itself_and_token_form_has_no_scope() {
        let fake = spawn(|seen| match seen.path.as_str() {
            "/v1/company/employees/attributes" => Reply::json(
                200,
                json!({"success": true, "data": [{"key": "email", "label": "Email", "type": "standard"}]}),
            ),
            path if path.contains("profile-picture") => Reply {
                status: 200,
                content_type: "image/png",
                body: vec![0x89, b'P', b'N', b'G'],
                delay: Duration::ZERO,
            },
            _ => Reply::v1_error(404, "Es ist ein Problem aufgetreten"),
        })
        .await;
        let client = client(&fake);
        let attributes = client.readable_attributes().await.unwrap();
        assert_eq!(attributes[0].key, "email");
        let picture = client.profile_picture("4711", 256).await.unwrap();
        assert_eq!(picture.as_deref(), Some(&[0x89, b'P', b'N', b'G'][..]));
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter()
                .all(|s| s.header("x-personio-app-id") == "PERSONIO_SYNC")
        );
        assert!(!seen[0].body.contains("scope"));
        assert_eq!(seen[0].method, "POST");
        assert!(
            seen[0]
                .header("content-type")
                .starts_with("application/x-www-form-urlencoded")
        );
        assert_eq!(seen[1].header("accept"), "application/json");
        assert_eq!(seen[1].bearer(), "tok-1");
        assert_eq!(
            seen[2].path,
            "/v1/company/employees/4711/profile-picture/256"
        );
        assert_eq!(seen[2].header("accept"), "image/png, image/jpeg");
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_token_request() {
        let fake = spawn(|_| Reply::json(200, json!({"success": true, "data": []}))).await;
        let client = client(&fake);
        let calls = (0..8).map(|_| {
            let client = client.clone();
            async move { client.readable_attributes().await }
        });
        for outcome in futures::future::join_all(calls).await {
            assert!(outcome.unwrap().is_empty());
        }
        assert_eq!(fake.count("/v2/auth/token"), 1);
    }

    #[tokio::test]
    async fn an_expiring_token_is_renewed() {
        let fake = spawn_with_expiry(0, |_| {
            Reply::json(200, json!({"success": true, "data": []}))
        })
        .await;
        let client = client(&fake);
        client.readable_attributes().await.unwrap();
        client.readable_attributes().await.unwrap();
        assert_eq!(fake.count("/v2/auth/token"), 2);
        assert!(
            renew_at(Instant::now(), Some(86_400)) > Instant::now() + Duration::from_secs(86_000)
        );
        assert!(
            renew_at(Instant::now(), Some(86_400)) < Instant::now() + Duration::from_secs(86_341)
        );
    }

    #[tokio::test]
    async fn token_refusal_is_unauthorized_and_never_shows_the_secret() {
        let fake = spawn(|_| Reply::empty(200)).await;
        let mut config = config(&fake.base);
        config.client_secret = Secret::new("wrong-secret");
        // The fake answers invalid_request to a wrong form; answer like Personio instead.
        let personio = spawn_raw(|seen| {
            let secret = serde_urlencoded::from_str::<Vec<(String, String)>>(&seen.body)
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| k == "client_secret")
                .map(|(_, v)| v)
                .unwrap_or_default();
            Reply::json(
                400,
                json!({"error": "unauthorized_client", "error_description": format!("bad secret {secret}"), "trace_id": "t-9"}),
            )
        })
        .await;
        config.base_url = personio.base.clone();
        let client = PersonioClient::new(config, reqwest::Client::new(), RetryPolicy::fast());
        let err = client.list_employees().await.unwrap_err();
        let text = format!("{err} {err:?} {client:?}");
        assert!(err.is_credentials(), "{err:?}");
        assert!(text.contains("unauthorized_client"), "{text}");
        assert!(!text.contains("wrong-secret"), "{text}");
        assert_eq!(personio.count("/v2/auth/token"), 1, "no retry on a refusal");
        assert_eq!(fake.seen().len(), 0);
    }

    /// A fake without the token logic (for token endpoint tests).
    async fn spawn_raw(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let script: Script = Arc::new(script);
        let log: Log = Arc::default();
        let app = Router::new()
            .fallback(answer)
            .with_state((script, log.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            base: format!("http://{addr}"),
            log,
        }
    }

    #[tokio::test]
    async fn not_found_is_none_where_documented() {
        let fake = spawn(|seen| match seen.path.as_str() {
            "/v1/company/employees/7" => {
                Reply::json(200, json!({"success": true, "data": employee(7)}))
            }
            "/v2/org-units/401" => {
                assert_eq!(seen.query_value("type").as_deref(), Some("department"));
                assert_eq!(
                    seen.query_value("include_parent_chain").as_deref(),
                    Some("true")
                );
                Reply::json(
                    200,
                    json!({"id": 401, "name": "Support", "parent_id": "400"}),
                )
            }
            path if path.starts_with("/v2/") => {
                Reply::json(404, json!({"errors": [{"title": "Resource not found"}]}))
            }
            _ => Reply::v1_error(404, "Etwas ist schiefgelaufen"),
        })
        .await;
        let client = client(&fake);
        assert_eq!(client.get_employee("7").await.unwrap().unwrap().id, "7");
        assert_eq!(client.get_employee("8").await.unwrap(), None);
        assert_eq!(client.profile_picture("8", 128).await.unwrap(), None);
        let unit = client
            .get_org_unit("401", "department")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unit.parent_id.as_deref(), Some("400"));
        assert_eq!(client.get_org_unit("9", "team").await.unwrap(), None);
        let err = client.get_employee("..").await.unwrap_err();
        assert!(matches!(err, PersonioError::InvalidInput(_)));
        client.get_employee("a/b").await.unwrap();
        assert!(
            fake.seen()
                .iter()
                .any(|s| s.path == "/v1/company/employees/a%2Fb")
        );
    }

    #[tokio::test]
    async fn a_404_without_personios_body_is_never_not_found() {
        let fake = spawn(|seen| match seen.path.as_str() {
            "/v1/company/employees/1" => Reply {
                status: 404,
                content_type: "text/html",
                body: b"<html><body><h1>404 Not Found</h1></body></html>".to_vec(),
                delay: Duration::ZERO,
            },
            "/v1/company/employees/2" => Reply::json(
                404,
                json!({"errors": [{"title": "Requested resource not found"}]}),
            ),
            "/v1/company/employees/3" => Reply::empty(404),
            _ => Reply {
                status: 404,
                content_type: "text/html",
                body: b"<html>nginx</html>".to_vec(),
                delay: Duration::ZERO,
            },
        })
        .await;
        let client = client(&fake);
        for id in ["1", "2", "3"] {
            let err = client.get_employee(id).await.unwrap_err();
            assert!(
                matches!(err, PersonioError::ForeignNotFound { .. }),
                "{id}: {err:?}"
            );
            assert!(err.is_transient(), "kept and retried, never a deletion");
        }
        assert!(client.get_org_unit("9", "team").await.is_err());
        assert!(client.delete_webhook("w1").await.is_err());
        assert!(client.profile_picture("1", 64).await.is_err());
        assert_eq!(
            fake.count("/v1/company/employees/1"),
            1,
            "not retried at once"
        );
    }

    #[tokio::test]
    async fn webhook_management_round_trip() {
        let fake = spawn(|seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/v2/webhooks") if seen.query_value("cursor").is_none() => {
                assert_eq!(seen.query_value("limit").as_deref(), Some("100"));
                Reply::json(200, json!({"_data": [webhook_json("w1")],
                    "_meta": {"links": {"next": {"href": "https://api.personio.de/v2/webhooks?cursor=cur_2"}}}}))
            }
            ("GET", "/v2/webhooks") => Reply::json(200, json!({"_data": [webhook_json("w2")], "_meta": {"links": {}}})),
            ("POST", "/v2/webhooks") => {
                let body: Value = serde_json::from_str(&seen.body).unwrap_or_default();
                if body["url"] == "https://taken.example.com" {
                    return Reply::json(409, json!({"personio_trace_id": "t-409", "errors": [{"title": "Conflict"}]}));
                }
                assert_eq!(body["token"], "Bearer hook-token");
                assert_eq!(body["status"], "ENABLED");
                assert_eq!(body["auth_type"], "TOKEN");
                assert_eq!(body["enabled_events"][1], "person.updated");
                assert!(seen.header("content-type").starts_with("application/json"));
                Reply::json(201, webhook_json("w3"))
            }
            ("PATCH", "/v2/webhooks/w3") => Reply::empty(204),
            ("DELETE", "/v2/webhooks/w3") => Reply::empty(204),
            _ => Reply::json(404, json!({"errors": [{"title": "Not found"}]})),
        })
        .await;
        let client = client(&fake);
        let hooks = client.list_webhooks().await.unwrap();
        assert_eq!(
            hooks.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["w1", "w2"]
        );
        let created = client.create_webhook(&spec()).await.unwrap();
        assert_eq!(created.id, "w3");
        assert_eq!(created.status.as_deref(), Some("ENABLED"));
        assert!(!format!("{created:?}").contains("hook-token"));
        let mut taken = spec();
        taken.url = "https://taken.example.com".into();
        let err = client.create_webhook(&taken).await.unwrap_err();
        assert!(matches!(err, PersonioError::Conflict { .. }), "{err:?}");
        assert_eq!(err.trace_id(), Some("t-409"));
        let updated = client.update_webhook("w3", &spec()).await.unwrap();
        assert_eq!(updated.id, "w3");
        client.delete_webhook("w3").await.unwrap();
        client.delete_webhook("gone").await.unwrap();
        assert_eq!(fake.count("/v2/webhooks"), 4);
    }

    #[tokio::test]
    async fn a_repeating_cursor_aborts_the_listing() {
        let fake = spawn(|_| {
            Reply::json(
                200,
                json!({"_data": [webhook_json("w1")],
                "_meta": {"links": {"next": {"href": "/v2/webhooks?cursor=same"}}}}),
            )
        })
        .await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), client(&fake).list_webhooks())
            .await
            .expect("must not loop");
        assert!(
            matches!(outcome, Err(PersonioError::Decode(_))),
            "{outcome:?}"
        );
        assert_eq!(fake.count("/v2/webhooks"), 2);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let fake = spawn(|_| {
            Reply::json(422, json!({"personio_trace_id": "t-422", "errors": [{"title": "Unprocessable", "detail": "url must be https"}]}))
        })
        .await;
        let client = client(&fake);
        let err = client.create_webhook(&spec()).await.unwrap_err();
        assert_eq!(
            err,
            PersonioError::Api {
                status: 422,
                message: "Unprocessable: url must be https".into(),
                trace_id: Some("t-422".into())
            }
        );
        assert!(!err.is_transient());
        assert_eq!(fake.count("/v2/webhooks"), 1);
    }

    #[tokio::test]
    async fn rate_limits_without_retry_after_are_retried() {
        let calls = AtomicUsize::new(0);
        let fake = spawn(move |seen| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::empty(429)
            } else {
                paged(seen, 1)
            }
        })
        .await;
        let started = std::time::Instant::now();
        assert_eq!(client(&fake).list_employees().await.unwrap().len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "fast policy, no 1 s floor"
        );
        assert_eq!(fake.count("/v1/company/employees"), 2);
    }

    #[tokio::test]
    async fn exhausted_5xx_keeps_the_trace_id() {
        let fake = spawn(|_| Reply::problem(502, "trace-502")).await;
        let policy = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::fast()
        };
        let client = PersonioClient::new(config(&fake.base), reqwest::Client::new(), policy);
        let err = client.list_webhooks().await.unwrap_err();
        assert_eq!(
            err,
            PersonioError::Server {
                status: 502,
                trace_id: Some("trace-502".into())
            }
        );
        assert!(err.is_transient());
        assert_eq!(fake.count("/v2/webhooks"), 2);
    }

    #[tokio::test]
    async fn a_501_is_not_retried() {
        let fake = spawn(|_| Reply::empty(501)).await;
        let err = client(&fake).list_webhooks().await.unwrap_err();
        assert!(matches!(err, PersonioError::Server { status: 501, .. }));
        assert_eq!(fake.count("/v2/webhooks"), 1);
    }

    #[tokio::test]
    async fn timeouts_are_transient_transport_errors() {
        let fake = spawn(|_| {
            let mut reply = Reply::json(200, json!({"success": true, "data": []}));
            reply.delay = Duration::from_secs(3);
            reply
        })
        .await;
        let policy = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::fast()
        };
        let client = PersonioClient::new(config(&fake.base), reqwest::Client::new(), policy)
            .with_request_timeout(Duration::from_millis(200));
        let err = client.readable_attributes().await.unwrap_err();
        assert!(matches!(err, PersonioError::Transport(_)), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(fake.count("/v1/company/employees/attributes"), 2);
    }

    #[tokio::test]
    async fn unreachable_server_is_a_transport_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let policy = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::fast()
        };
        let client = PersonioClient::new(config(&base), reqwest::Client::new(), policy);
        let err = client.list_employees().await.unwrap_err();
        assert!(matches!(err, PersonioError::Transport(_)), "{err:?}");
        assert_eq!(client.requests_made(), 2);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let client = PersonioClient::new(
            config("http://127.0.0.1:1"),
            reqwest::Client::new(),
            RetryPolicy::fast(),
        );
        let text = format!("{client:?} {:?}", config("x"));
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("4711", "id").unwrap(), "4711");
        assert_eq!(path_segment("a b/c?", "id").unwrap(), "a%20b%2Fc%3F");
        assert!(path_segment("", "id").is_err());
        assert!(path_segment("..", "id").is_err());
    }
}
