//! The Learn Amp HTTP client: OAuth2 client-credentials tokens (cached, renewed 60 s
//! before expiry, one refresh in flight, renewed once on a 401), bounded retries of
//! transient failures, pagination, and the users and teams endpoints (reference §2–§9).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::domain::Secret;
use crate::domain::fields::UserFields;
use crate::retry::{RetryPolicy, retry_after};

use super::assumed::{self, LeaveDateEcho};
use super::error::{LearnAmpError, error_for_status, token_error};
use super::model::{
    FormPairs, InvitationOutcome, Team, TeamFields, User, UserFilter, create_user_form, team_form,
    user_form,
};
use super::scopes;

/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Token lifetime when the server does not say (reference §2.1: 2 h).
const DEFAULT_TOKEN_LIFETIME: u64 = 7200;
/// Page size of list calls.
const PER_PAGE: u32 = 100;
/// Hard stop for pagination, whatever the headers say.
const MAX_PAGES: u32 = 100_000;
/// Longest server-requested `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Connection settings of one tenant's Learn Amp account.
#[derive(Debug, Clone)]
pub struct LearnAmpConfig {
    /// The account's API host, e.g. `https://api.learnamp.com` (no `/v1`).
    pub base_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Scopes to request (reference §2.3), normally [`scopes::requested`]; an empty list
    /// requests every scope the service may use. A token request always names them.
    pub scopes: Vec<String>,
}

/// A user as a create or update left it, and whether the assumed `leaveDate` was echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The user as Learn Amp answered (or as read back).
    pub user: User,
    /// What became of a `leaveDate` the write carried.
    pub leave_date: LeaveDateEcho,
}

/// A Learn Amp API client. Cheap to clone; clones share the token and the counters.
#[derive(Clone)]
pub struct LearnAmpClient {
    inner: Arc<Inner>,
}

/// Shared state of a client.
struct Inner {
    base_url: String,
    client_id: String,
    client_secret: Secret,
    /// Space-separated scopes sent with every token request (never empty).
    scope: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// The current token, read without waiting.
    token: StdMutex<Option<CachedToken>>,
    /// Held while a token is fetched, so that only one refresh is in flight.
    refresh: tokio::sync::Mutex<()>,
    /// HTTP requests sent (token requests and retries included).
    requests: AtomicU64,
}

/// A bearer token and when to renew it.
struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

/// The token endpoint's answer (reference §2.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The body of a request. Its `Debug` shows form keys only (the token form carries the
/// client secret).
#[derive(Clone)]
pub(crate) enum RequestBody {
    /// No body.
    Empty,
    /// `application/x-www-form-urlencoded`.
    Form(FormPairs),
    /// Raw bytes with their content type.
    Bytes {
        /// The bytes.
        data: Vec<u8>,
        /// `Content-Type`.
        content_type: &'static str,
    },
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Form(pairs) => f
                .debug_tuple("Form")
                .field(
                    &pairs
                        .iter()
                        .map(|(key, _)| key.as_str())
                        .collect::<Vec<_>>(),
                )
                .finish(),
            Self::Bytes { data, content_type } => f
                .debug_struct("Bytes")
                .field("len", &data.len())
                .field("content_type", content_type)
                .finish(),
        }
    }
}

/// One API request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    method: Method,
    path: String,
    query: FormPairs,
    body: RequestBody,
}

impl ApiRequest {
    /// A request without query or body; `path` starts with `/`.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: FormPairs::new(),
            body: RequestBody::Empty,
        }
    }

    /// Adds query pairs.
    pub(crate) fn query(mut self, pairs: FormPairs) -> Self {
        self.query.extend(pairs);
        self
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }
}

impl std::fmt::Debug for LearnAmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnAmpClient")
            .field("base_url", &self.inner.base_url)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

impl LearnAmpClient {
    /// A client for one account. `http` should be shared process-wide.
    pub fn new(config: LearnAmpConfig, http: reqwest::Client, retry: RetryPolicy) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let mut requested: Vec<String> = config
            .scopes
            .iter()
            .map(|scope| scope.trim().to_string())
            .filter(|scope| !scope.is_empty())
            .collect();
        if requested.is_empty() {
            requested = scopes::requested(true);
        }
        Self {
            inner: Arc::new(Inner {
                base_url,
                client_id: config.client_id,
                client_secret: config.client_secret,
                scope: requested.join(" "),
                http,
                retry,
                token: StdMutex::new(None),
                refresh: tokio::sync::Mutex::new(()),
                requests: AtomicU64::new(0),
            }),
        }
    }

    /// HTTP requests sent so far (token requests and retries included).
    pub fn requests_made(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// All users matching `filter`, in the full form (`expanded=true`), across all pages.
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<User>, LearnAmpError> {
        let mut query = vec![("expanded".to_string(), "true".to_string())];
        query.extend(filter.query_pairs());
        self.list_all("/v1/users", query, "users", |user: &User| user.id)
            .await
    }

    /// The user whose `integrationExternalId` is exactly `external_id`, if any.
    pub async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<User>, LearnAmpError> {
        if external_id.is_empty() {
            return Ok(None);
        }
        let path = format!(
            "/v1/users/by_integration_external_id/{}",
            encode_path_segment(external_id)
        );
        self.get_optional(&path).await
    }

    /// The user with Learn Amp id `id`, if any.
    pub async fn get_user(&self, id: u64) -> Result<Option<User>, LearnAmpError> {
        self.get_optional(&format!("/v1/users/{id}")).await
    }

    /// Creates a user. With `invite` the documented create sends the invitation email
    /// (no `skipInvitation`, reference §5.4); without, `skipInvitation=true` and a later
    /// invitation goes through [`send_invitation`](Self::send_invitation).
    pub async fn create_user(
        &self,
        fields: &UserFields,
        invite: bool,
    ) -> Result<Written, LearnAmpError> {
        let request = ApiRequest::new(Method::POST, "/v1/users")
            .body(RequestBody::Form(create_user_form(fields, invite)));
        let user: User = self.send_json(&request).await?;
        debug!(user_id = user.id, invite, "created Learn Amp user");
        let (user, leave_date) = assumed::confirm_leave_date(self, fields, user).await;
        Ok(Written { user, leave_date })
    }

    /// Updates a user with the given fields (absent keys are left alone, `""` clears).
    pub async fn update_user(
        &self,
        id: u64,
        fields: &UserFields,
    ) -> Result<Written, LearnAmpError> {
        let request = ApiRequest::new(Method::PUT, format!("/v1/users/{id}"))
            .body(RequestBody::Form(user_form(fields)));
        let user: User = self.send_json(&request).await?;
        let (user, leave_date) = assumed::confirm_leave_date(self, fields, user).await;
        Ok(Written { user, leave_date })
    }

    /// Deactivates a user (data kept).
    pub async fn deactivate_user(&self, id: u64) -> Result<(), LearnAmpError> {
        let request = ApiRequest::new(Method::PUT, format!("/v1/users/{id}/deactivate"));
        self.send_no_content(&request).await
    }

    /// Reactivates a deactivated user.
    pub async fn reactivate_user(&self, id: u64) -> Result<(), LearnAmpError> {
        let request = ApiRequest::new(Method::PUT, format!("/v1/users/{id}/reactivate"));
        self.send_no_content(&request).await
    }

    /// Sends (or re-sends) the invitation email. Assumed contract, see `assumed.rs`.
    pub async fn send_invitation(&self, id: u64) -> Result<InvitationOutcome, LearnAmpError> {
        assumed::send_invitation(self, id).await
    }

    /// Whether the assumed invitation route exists, found out without sending any email
    /// (see `assumed.rs`); `None` when the account has no user to ask about.
    pub async fn probe_invitation_route(&self) -> Result<Option<bool>, LearnAmpError> {
        assumed::probe_invitation(self).await
    }

    /// The first user (lowest page) matching `filter`, reading one page of one user.
    pub async fn first_user(&self, filter: &UserFilter) -> Result<Option<User>, LearnAmpError> {
        let mut query = filter.query_pairs();
        query.push(("page".to_string(), "1".to_string()));
        query.push(("perPage".to_string(), "1".to_string()));
        let request = ApiRequest::new(Method::GET, "/v1/users").query(query);
        let response = self.send_checked(&request).await?;
        let body = read_body(response).await?;
        let users: Vec<User> = parse_envelope(&body, "users")?;
        Ok(users.into_iter().next())
    }

    /// Uploads (PNG or JPEG) or, with `None`, removes a user's avatar. Assumed contract,
    /// see `assumed.rs`.
    pub async fn set_avatar(&self, id: u64, image: Option<&[u8]>) -> Result<(), LearnAmpError> {
        assumed::set_avatar(self, id, image).await
    }

    /// All teams, across all pages.
    pub async fn list_teams(&self) -> Result<Vec<Team>, LearnAmpError> {
        self.list_all("/v1/teams", FormPairs::new(), "teams", |team: &Team| {
            team.id
        })
        .await
    }

    /// The team whose `integrationExternalId` is exactly `external_id`, if any.
    pub async fn find_team_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Team>, LearnAmpError> {
        if external_id.is_empty() {
            return Ok(None);
        }
        let path = format!(
            "/v1/teams/by_external_id/{}",
            encode_path_segment(external_id)
        );
        self.get_optional(&path).await
    }

    /// Creates a team.
    pub async fn create_team(&self, team: &TeamFields) -> Result<Team, LearnAmpError> {
        let request =
            ApiRequest::new(Method::POST, "/v1/teams").body(RequestBody::Form(team_form(team)));
        self.send_json(&request).await
    }

    /// Updates a team.
    pub async fn update_team(&self, id: u64, team: &TeamFields) -> Result<Team, LearnAmpError> {
        let request = ApiRequest::new(Method::PUT, format!("/v1/teams/{id}"))
            .body(RequestBody::Form(team_form(team)));
        self.send_json(&request).await
    }

    /// Deletes a team (its users are kept); an already deleted team is fine.
    pub async fn delete_team(&self, id: u64) -> Result<(), LearnAmpError> {
        let request = ApiRequest::new(Method::DELETE, format!("/v1/teams/{id}"));
        match self.send_no_content(&request).await {
            Err(LearnAmpError::NotFound) => Ok(()),
            other => other,
        }
    }

    // ----- request plumbing -------------------------------------------------------------

    /// GET of one object; 404 → `None`.
    async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, LearnAmpError> {
        match self.send_json(&ApiRequest::new(Method::GET, path)).await {
            Ok(found) => Ok(Some(found)),
            Err(LearnAmpError::NotFound) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Sends an authorised request and decodes a 2xx JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
    ) -> Result<T, LearnAmpError> {
        let response = self.send_checked(request).await?;
        let body = read_body(response).await?;
        serde_json::from_slice(&body).map_err(|err| {
            LearnAmpError::Decode(format!("{} {}: {err}", request.method, request.path))
        })
    }

    /// Sends an authorised request that answers 2xx with no useful body.
    pub(crate) async fn send_no_content(&self, request: &ApiRequest) -> Result<(), LearnAmpError> {
        self.send_checked(request).await.map(drop)
    }

    /// Sends an authorised request; any non-2xx answer becomes an error.
    pub(crate) async fn send_checked(
        &self,
        request: &ApiRequest,
    ) -> Result<Response, LearnAmpError> {
        let response = self.send_authorized(request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = read_body(response).await?;
        Err(name_missing_scope(request, error_for_status(status, &body)))
    }

    /// Sends with the bearer token; on a 401 drops the token, fetches a fresh one and
    /// tries once more. Returns whatever the server finally answered, except that a
    /// second 401 becomes [`LearnAmpError::Unauthorized`].
    pub(crate) async fn send_authorized(
        &self,
        request: &ApiRequest,
    ) -> Result<Response, LearnAmpError> {
        let mut renewed = false;
        loop {
            let token = self.bearer().await?;
            let response = self.send_retrying(request, Some(&token)).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if renewed {
                let body = read_body(response).await?;
                return Err(error_for_status(401, &body));
            }
            debug!(path = %request.path, "Learn Amp answered 401; renewing the token once");
            self.invalidate(&token);
            renewed = true;
        }
    }

    /// Sends a request, retrying 429, 5xx (500/502/503/504) and transport failures
    /// within the retry policy. The final answer is returned whatever its status.
    async fn send_retrying(
        &self,
        request: &ApiRequest,
        bearer: Option<&Secret>,
    ) -> Result<Response, LearnAmpError> {
        let retry = self.inner.retry;
        let mut attempt: u32 = 1;
        loop {
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = self.build(request, bearer).send().await;
            let endpoint = crate::metrics::endpoint_template(&request.path);
            let status = match &outcome {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            crate::metrics::api_call("learnamp", &endpoint, &status, started.elapsed());
            let server_delay = match &outcome {
                Ok(response) if is_retryable_status(response.status()) => {
                    Some(capped_retry_after(response.headers()))
                }
                Err(err) if is_retryable_transport(err) => Some(None),
                _ => None,
            };
            match (outcome, server_delay) {
                (outcome, Some(server_delay)) if retry.may_retry(attempt) => {
                    let wait = retry.delay(attempt, server_delay);
                    let cause = match &outcome {
                        Ok(response) => response.status().as_u16().to_string(),
                        Err(err) => describe_transport(err),
                    };
                    warn!(
                        method = %request.method,
                        path = %request.path,
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        cause = %cause,
                        "transient Learn Amp failure; retrying"
                    );
                    crate::metrics::api_retry("learnamp", &endpoint);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                (Ok(response), _) => return Ok(response),
                (Err(err), _) => return Err(LearnAmpError::Transport(describe_transport(&err))),
            }
        }
    }

    /// Builds one attempt of `request`.
    fn build(&self, request: &ApiRequest, bearer: Option<&Secret>) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.inner.base_url, request.path);
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url)
            .timeout(REQUEST_TIMEOUT)
            .header(reqwest::header::ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(token) = bearer {
            builder = builder.bearer_auth(token.expose());
        }
        match &request.body {
            RequestBody::Empty => builder,
            RequestBody::Form(pairs) => builder.form(pairs),
            RequestBody::Bytes { data, content_type } => builder
                .header(CONTENT_TYPE, *content_type)
                .body(data.clone()),
        }
    }

    // ----- tokens -----------------------------------------------------------------------

    /// A valid bearer token: the cached one, or a fresh one (one refresh at a time).
    async fn bearer(&self) -> Result<Secret, LearnAmpError> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let _refreshing = self.inner.refresh.lock().await;
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *crate::locks::lock(&self.inner.token) = Some(fresh);
        Ok(value)
    }

    /// The cached token if it is not due for renewal.
    fn cached_token(&self) -> Option<Secret> {
        let guard = crate::locks::lock(&self.inner.token);
        guard
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
            .map(|token| token.value.clone())
    }

    /// Drops the cached token if it is still `used` (another task may have renewed it).
    fn invalidate(&self, used: &Secret) {
        let mut guard = crate::locks::lock(&self.inner.token);
        if guard.as_ref().is_some_and(|token| &token.value == used) {
            *guard = None;
        }
    }

    /// `POST /oauth/token` with the client credentials.
    async fn fetch_token(&self) -> Result<CachedToken, LearnAmpError> {
        let mut form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), self.inner.client_id.clone()),
            (
                "client_secret".to_string(),
                self.inner.client_secret.expose().to_string(),
            ),
        ];
        form.push(("scope".to_string(), self.inner.scope.clone()));
        let request = ApiRequest::new(Method::POST, "/oauth/token").body(RequestBody::Form(form));
        let response = self.send_retrying(&request, None).await?;
        let status = response.status().as_u16();
        let body = read_body(response).await?;
        if !(200..300).contains(&status) {
            let error = token_error(status, &body);
            warn!(status, error = %error, "Learn Amp token request failed");
            return Err(error);
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|err| LearnAmpError::Decode(format!("token response: {err}")))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        debug!(
            expires_in_s = lifetime.as_secs(),
            "fetched a Learn Amp access token"
        );
        Ok(CachedToken {
            value: token.access_token,
            renew_at: Instant::now() + renewal_delay(lifetime),
        })
    }

    // ----- pagination -------------------------------------------------------------------

    /// GETs every page of a list (`page=1..`, `perPage=100`) until `page >= Total-Pages`
    /// or an empty page. A page that brings no new ids stops the loop: an error when
    /// `Total-Pages` promised more, the collected items otherwise.
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: FormPairs,
        envelope: &str,
        id_of: fn(&T) -> u64,
    ) -> Result<Vec<T>, LearnAmpError> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        for page in 1..=MAX_PAGES {
            let mut page_query = query.clone();
            page_query.push(("page".to_string(), page.to_string()));
            page_query.push(("perPage".to_string(), PER_PAGE.to_string()));
            let request = ApiRequest::new(Method::GET, path).query(page_query);
            let response = self.send_checked(&request).await?;
            let total_pages = header_number(response.headers(), "total-pages");
            let body = read_body(response).await?;
            let page_items: Vec<T> = parse_envelope(&body, envelope)?;
            if page_items.is_empty() {
                break;
            }
            let fresh: Vec<T> = page_items
                .into_iter()
                .filter(|item| seen.insert(id_of(item)))
                .collect();
            if fresh.is_empty() {
                return non_advancing(path, page, total_pages, items);
            }
            items.extend(fresh);
            if total_pages.is_some_and(|total| u64::from(page) >= total) {
                break;
            }
        }
        Ok(items)
    }
}

/// Handles a page that repeated earlier results.
fn non_advancing<T>(
    path: &str,
    page: u32,
    total_pages: Option<u64>,
    items: Vec<T>,
) -> Result<Vec<T>, LearnAmpError> {
    match total_pages {
        Some(total) if u64::from(page) < total => Err(LearnAmpError::Decode(format!(
            "{path}: page {page} of {total} repeats earlier results; pagination does not advance"
        ))),
        _ => {
            warn!(
                path,
                page, "Learn Amp page repeats earlier results; stopping"
            );
            Ok(items)
        }
    }
}

/// The items of a list answer: `{"<envelope>": [...]}`, or a bare array.
fn parse_envelope<T: DeserializeOwned>(
    body: &[u8],
    envelope: &str,
) -> Result<Vec<T>, LearnAmpError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| LearnAmpError::Decode(format!("{envelope} list: {err}")))?;
    let list = match value {
        serde_json::Value::Array(_) => value,
        serde_json::Value::Object(mut map) => map
            .remove(envelope)
            .unwrap_or(serde_json::Value::Array(Vec::new())),
        _ => {
            return Err(LearnAmpError::Decode(format!(
                "{envelope} list: not an object"
            )));
        }
    };
    if list.is_null() {
        return Ok(Vec::new());
    }
    serde_json::from_value(list)
        .map_err(|err| LearnAmpError::Decode(format!("{envelope} list: {err}")))
}

/// A 403 names the scope the route needs (Learn Amp's own 403 body is unconfirmed and
/// may not), so that an operator knows which scope to grant.
fn name_missing_scope(request: &ApiRequest, error: LearnAmpError) -> LearnAmpError {
    match error {
        LearnAmpError::Forbidden { message } => {
            let scope = scopes::scope_for(&request.method, &request.path);
            let message = if message.contains(scope) {
                message
            } else {
                format!(
                    "{message} ({} {} needs the scope {scope})",
                    request.method,
                    crate::metrics::endpoint_template(&request.path)
                )
            };
            LearnAmpError::Forbidden { message }
        }
        other => other,
    }
}

/// Reads a numeric header such as `Total-Pages`.
fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Largest answer read from Learn Amp (as from Personio): a runaway body fails the
/// call instead of filling memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Reads a whole response body, up to [`MAX_BODY_BYTES`].
async fn read_body(mut response: Response) -> Result<Vec<u8>, LearnAmpError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| LearnAmpError::Transport(describe_transport(&err)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(LearnAmpError::Decode(format!(
                "answer larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Statuses worth another attempt.
fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// Transport failures worth another attempt (connect, timeout, broken connection).
fn is_retryable_transport(err: &reqwest::Error) -> bool {
    !err.is_builder() && !err.is_redirect() && !err.is_status()
}

/// `Retry-After`, capped so that one answer cannot stall a tenant for long.
fn capped_retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after(headers).map(|delay| delay.min(MAX_RETRY_AFTER))
}

/// When to renew a token of the given lifetime: 60 s early, or at half-life for
/// lifetimes too short for that margin.
fn renewal_delay(lifetime: Duration) -> Duration {
    if lifetime > TOKEN_MARGIN * 2 {
        lifetime - TOKEN_MARGIN
    } else {
        lifetime / 2
    }
}

/// A transport error with its causes (no secrets: credentials travel in bodies/headers).
fn describe_transport(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub(crate) fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
    use axum::response::IntoResponse;
    use axum::routing::{get, post, put};

    use super::*;
    use crate::domain::fields::{EXTERNAL_ID, FIRST_NAME};

    /// Counters shared between a test and its fake server.
    #[derive(Default)]
    struct Seen {
        tokens: AtomicUsize,
        hits: AtomicUsize,
        bodies: Mutex<Vec<String>>,
        queries: Mutex<Vec<String>>,
    }

    /// Serves `routes` plus a token endpoint that hands out `t1`, `t2`, … on 127.0.0.1:0.
    async fn serve(routes: Router, seen: Arc<Seen>) -> LearnAmpClient {
        let token_seen = seen.clone();
        let app = routes.route(
            "/oauth/token",
            post(move |body: String| {
                let seen = token_seen.clone();
                async move {
                    let n = seen.tokens.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.bodies.lock().expect("lock").push(body);
                    axum::Json(serde_json::json!({
                        "access_token": format!("t{n}"), "token_type": "Bearer",
                        "expires_in": 7200, "scope": "public", "created_at": 1_601_480_215
                    }))
                }
            }),
        );
        let addr = serve_app(app).await;
        client_for(addr, RetryPolicy::fast())
    }

    /// Serves `app` on 127.0.0.1:0.
    async fn serve_app(app: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        addr
    }

    /// A client for a server at `addr`.
    fn client_for(addr: std::net::SocketAddr, retry: RetryPolicy) -> LearnAmpClient {
        let config = LearnAmpConfig {
            base_url: format!("http://{addr}/"),
            client_id: "cid".into(),
            client_secret: Secret::new("top-secret"),
            scopes: vec!["users:read".into(), "users:update".into()],
        };
        LearnAmpClient::new(config, reqwest::Client::new(), retry)
    }

    fn user_json(id: u64) -> serde_json::Value {
        serde_json::json!({"id": id, "email": format!("u{id}@example.com"), "firstName": "U"})
    }

    fn page_of(query: &str) -> u64 {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("page="))
            .and_then(|page| page.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn lists_all_pages_using_total_pages() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new().route(
            "/v1/users",
            get(move |RawQuery(query): RawQuery| {
                let seen = server_seen.clone();
                async move {
                    let query = query.unwrap_or_default();
                    seen.queries.lock().expect("lock").push(query.clone());
                    let page = page_of(&query);
                    let users = vec![user_json(page * 10), user_json(page * 10 + 1)];
                    (
                        [("Total-Pages", "3"), ("Total", "6"), ("Per-Page", "2")],
                        axum::Json(serde_json::json!({ "users": users })),
                    )
                }
            }),
        );
        let client = serve(routes, seen.clone()).await;
        let filter = UserFilter {
            statuses: vec![super::super::UserStatus::Deactivated],
            ..UserFilter::default()
        };
        let users = client.list_users(&filter).await.expect("listed");
        let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
        assert_eq!(ids, vec![10, 11, 20, 21, 30, 31]);
        assert_eq!(client.requests_made(), 4);
        let queries = seen.queries.lock().expect("lock").clone();
        assert_eq!(queries.len(), 3);
        assert!(queries[0].contains("expanded=true"));
        assert!(queries[0].contains("perPage=100"));
        assert!(queries[0].contains("filters%5Bstatus%5D%5B%5D=deactivated"));
        let token_body = seen.bodies.lock().expect("lock")[0].clone();
        assert!(token_body.contains("grant_type=client_credentials"));
        assert!(token_body.contains("scope=users%3Aread+users%3Aupdate"));
    }

    #[tokio::test]
    async fn non_advancing_pages_are_caught() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new()
            .route(
                "/v1/users",
                get(|| async {
                    (
                        [("Total-Pages", "5")],
                        axum::Json(serde_json::json!({ "users": [user_json(1), user_json(2)] })),
                    )
                }),
            )
            .route(
                "/v1/teams",
                get(|| async {
                    axum::Json(serde_json::json!({ "teams": [{"id": 7, "name": "Support"}] }))
                }),
            );
        let client = serve(routes, seen).await;
        let error = client
            .list_users(&UserFilter::default())
            .await
            .expect_err("repeating pages must not loop");
        assert!(matches!(error, LearnAmpError::Decode(_)), "{error:?}");
        // Without Total-Pages, a repeated page ends the list.
        let teams = client.list_teams().await.expect("listed");
        assert_eq!(teams.len(), 1);
        assert_eq!(teams[0].name, "Support");
    }

    #[tokio::test]
    async fn retries_503_then_succeeds() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new().route(
            "/v1/users/{id}",
            get(move |Path(id): Path<u64>| {
                let seen = server_seen.clone();
                async move {
                    if seen.hits.fetch_add(1, Ordering::SeqCst) < 2 {
                        return AxumStatus::SERVICE_UNAVAILABLE.into_response();
                    }
                    axum::Json(user_json(id)).into_response()
                }
            }),
        );
        let client = serve(routes, seen.clone()).await;
        let user = client.get_user(5).await.expect("retried").expect("found");
        assert_eq!(user.id, 5);
        assert_eq!(seen.hits.load(Ordering::SeqCst), 3);
        assert_eq!(seen.tokens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_401_renews_the_token_once() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new()
            .route(
                "/v1/users/{id}",
                get(|headers: AxumHeaders, Path(id): Path<u64>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    if auth == "Bearer t1" {
                        return (AxumStatus::UNAUTHORIZED, "{\"error\":\"expired\"}")
                            .into_response();
                    }
                    axum::Json(user_json(id)).into_response()
                }),
            )
            .route(
                "/v1/teams/{id}",
                put(|| async { (AxumStatus::UNAUTHORIZED, "{\"error\":\"nope\"}") }),
            );
        let client = serve(routes, seen.clone()).await;
        let user = client.get_user(9).await.expect("renewed").expect("found");
        assert_eq!(user.id, 9);
        assert_eq!(seen.tokens.load(Ordering::SeqCst), 2);
        // The renewed token is cached.
        client.get_user(9).await.expect("cached").expect("found");
        assert_eq!(seen.tokens.load(Ordering::SeqCst), 2);
        // A second 401 in a row is final.
        let error = client
            .update_team(1, &TeamFields::default())
            .await
            .expect_err("unauthorized");
        assert_eq!(
            error,
            LearnAmpError::Unauthorized {
                message: "nope".into()
            }
        );
        assert_eq!(seen.tokens.load(Ordering::SeqCst), 3);
        assert!(!format!("{error:?} {error}").contains("top-secret"));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_token_fetch() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new().route(
            "/v1/users/{id}",
            get(|Path(id): Path<u64>| async move { axum::Json(user_json(id)) }),
        );
        let client = serve(routes, seen.clone()).await;
        let calls = (1..=8).map(|id| {
            let client = client.clone();
            async move { client.get_user(id).await }
        });
        for result in futures::future::join_all(calls).await {
            assert!(result.expect("ok").is_some());
        }
        assert_eq!(seen.tokens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invitation_outcomes() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new().route(
            "/v1/users/{id}/invitation",
            post(|Path(id): Path<u64>| async move {
                match id {
                    1 => (
                        AxumStatus::CONFLICT,
                        "{\"error\": \"User has already confirmed\"}",
                    )
                        .into_response(),
                    2 => (AxumStatus::CONFLICT, "{\"error\": \"User is deactivated\"}")
                        .into_response(),
                    3 => AxumStatus::NO_CONTENT.into_response(),
                    _ => (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response(),
                }
            }),
        );
        let client = serve(routes, seen).await;
        assert_eq!(
            client.send_invitation(1).await,
            Ok(InvitationOutcome::AlreadyConfirmed)
        );
        assert_eq!(
            client.send_invitation(2).await,
            Ok(InvitationOutcome::Deactivated)
        );
        assert_eq!(client.send_invitation(3).await, Ok(InvitationOutcome::Sent));
        assert_eq!(
            client.send_invitation(4).await,
            Err(LearnAmpError::NotFound)
        );
    }

    #[tokio::test]
    async fn create_skips_invitation_and_duplicates_are_taken() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new().route(
            "/v1/users",
            post(move |headers: AxumHeaders, body: String| {
                let seen = server_seen.clone();
                async move {
                    let form_typed = headers
                        .get("content-type")
                        .is_some_and(|v| v.as_bytes() == b"application/x-www-form-urlencoded");
                    seen.bodies.lock().expect("lock").push(body.clone());
                    if !form_typed {
                        return AxumStatus::UNSUPPORTED_MEDIA_TYPE.into_response();
                    }
                    if body.contains("integrationExternalId=dup") {
                        return (AxumStatus::BAD_REQUEST,
                            r#"{"error": "Validation failed: Integration external id has already been taken", "fullErrors": {"integrationExternalId": ["has already been taken"]}}"#)
                            .into_response();
                    }
                    (AxumStatus::CREATED, axum::Json(user_json(77))).into_response()
                }
            }),
        );
        let client = serve(routes, seen.clone()).await;
        let mut fields = UserFields::new();
        fields.insert(FIRST_NAME.into(), "Ada".into());
        fields.insert(EXTERNAL_ID.into(), "4711".into());
        let user = client
            .create_user(&fields, false)
            .await
            .expect("created")
            .user;
        assert_eq!(user.id, 77);
        let sent = seen
            .bodies
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            sent,
            "firstName=Ada&integrationExternalId=4711&skipInvitation=true"
        );

        fields.insert(EXTERNAL_ID.into(), "dup".into());
        let error = client
            .create_user(&fields, false)
            .await
            .expect_err("duplicate");
        assert!(error.is_taken("integrationExternalId"), "{error:?}");
        assert!(!error.is_transient());
    }

    #[tokio::test]
    async fn a_create_that_invites_sends_no_skip_invitation() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new().route(
            "/v1/users",
            post(move |body: String| {
                let seen = server_seen.clone();
                async move {
                    seen.bodies.lock().expect("lock").push(body);
                    (AxumStatus::CREATED, axum::Json(user_json(5)))
                }
            }),
        );
        let client = serve(routes, seen.clone()).await;
        let mut fields = UserFields::new();
        fields.insert(FIRST_NAME.into(), "Ada".into());
        fields.insert("skipInvitation".into(), "true".into());
        client.create_user(&fields, true).await.expect("created");
        let sent = seen.bodies.lock().expect("lock").last().cloned();
        assert_eq!(sent.as_deref(), Some("firstName=Ada"));
    }

    #[tokio::test]
    async fn missing_assumed_routes_are_told_from_unknown_users() {
        use super::super::Assumed;
        let seen = Arc::new(Seen::default());
        // A documented-only account: the show route exists, the assumed routes do not
        // (404 for user 3, who exists); user 4 does not exist; 405 and 501 for user 5, 6.
        let routes = Router::new()
            .route(
                "/v1/users/{id}",
                get(|Path(id): Path<u64>| async move {
                    if id == 4 {
                        (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response()
                    } else {
                        axum::Json(user_json(id)).into_response()
                    }
                }),
            )
            .route(
                "/v1/users/{id}/avatar",
                put(|Path(id): Path<u64>| async move {
                    match id {
                        5 => AxumStatus::METHOD_NOT_ALLOWED.into_response(),
                        6 => AxumStatus::NOT_IMPLEMENTED.into_response(),
                        _ => (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response(),
                    }
                }),
            );
        let client = serve(routes, seen).await;
        assert_eq!(
            client.send_invitation(3).await,
            Err(LearnAmpError::Unsupported(Assumed::Invitation))
        );
        assert_eq!(
            client.send_invitation(4).await,
            Err(LearnAmpError::NotFound)
        );
        let png = b"\x89PNG\r\n\x1a\nxx".as_slice();
        for id in [3, 5, 6] {
            assert_eq!(
                client.set_avatar(id, Some(png)).await,
                Err(LearnAmpError::Unsupported(Assumed::Avatar)),
                "user {id}"
            );
        }
        assert_eq!(
            client.set_avatar(4, Some(png)).await,
            Err(LearnAmpError::NotFound)
        );
    }

    #[tokio::test]
    async fn every_token_request_names_the_scopes() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new().route(
            "/v1/users/{id}",
            get(|Path(id): Path<u64>| async move { axum::Json(user_json(id)) }),
        );
        let addr = {
            let token_seen = seen.clone();
            let app = routes.route(
                "/oauth/token",
                post(move |body: String| {
                    let seen = token_seen.clone();
                    async move {
                        seen.bodies.lock().expect("lock").push(body);
                        axum::Json(serde_json::json!({"access_token": "t", "expires_in": 0}))
                    }
                }),
            );
            serve_app(app).await
        };
        // An empty scope list still names every scope; a 0 s token is renewed each call.
        let config = LearnAmpConfig {
            base_url: format!("http://{addr}"),
            client_id: "cid".into(),
            client_secret: Secret::new("top-secret"),
            scopes: Vec::new(),
        };
        let client = LearnAmpClient::new(config, reqwest::Client::new(), RetryPolicy::fast());
        for id in 1..=3 {
            client.get_user(id).await.expect("ok");
        }
        let bodies = seen.bodies.lock().expect("lock").clone();
        assert_eq!(bodies.len(), 3, "{bodies:?}");
        let expected = crate::learnamp::scopes::requested(true).join(" ");
        for body in bodies {
            let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).expect("form body");
            let scope = form.iter().find(|(key, _)| key == "scope").map(|(_, v)| v);
            assert_eq!(scope, Some(&expected), "{body}");
        }
    }

    #[tokio::test]
    async fn a_403_names_the_scope_the_route_needs() {
        let seen = Arc::new(Seen::default());
        let routes = Router::new().route(
            "/v1/users/{id}/deactivate",
            put(|| async { (AxumStatus::FORBIDDEN, r#"{"error": "Forbidden"}"#) }),
        );
        let client = serve(routes, seen).await;
        let error = client.deactivate_user(3).await.expect_err("forbidden");
        assert!(error.is_credentials());
        assert!(error.to_string().contains("users:deactivate"), "{error}");
    }

    #[tokio::test]
    async fn avatar_refuses_non_images_without_calling() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new().route(
            "/v1/users/{id}/avatar",
            put(move |headers: AxumHeaders, body: axum::body::Bytes| {
                let seen = server_seen.clone();
                async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.bodies
                        .lock()
                        .expect("lock")
                        .push(format!("{kind} {}", body.len()));
                    AxumStatus::NO_CONTENT
                }
            })
            .delete(|| async { (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}") }),
        );
        let client = serve(routes, seen.clone()).await;
        assert!(client.set_avatar(1, Some(b"GIF89a")).await.is_err());
        assert_eq!(client.requests_made(), 0);
        client
            .set_avatar(1, Some(b"\x89PNG\r\n\x1a\nxx"))
            .await
            .expect("uploaded");
        assert_eq!(
            seen.bodies.lock().expect("lock").last().cloned(),
            Some("image/png 10".into())
        );
        client
            .set_avatar(1, None)
            .await
            .expect("404 on delete is fine");
    }

    #[tokio::test]
    async fn token_refusal_is_unauthorized_without_the_secret() {
        let app = Router::new().route(
            "/oauth/token",
            post(|| async {
                (
                    AxumStatus::UNAUTHORIZED,
                    r#"{"error": "invalid_client", "error_description": "Client authentication failed"}"#,
                )
            }),
        );
        let client = client_for(serve_app(app).await, RetryPolicy::fast());
        let error = client.get_user(1).await.expect_err("refused");
        assert!(error.is_credentials());
        assert!(error.to_string().contains("invalid_client"));
        assert!(!format!("{error:?} {error}").contains("top-secret"));
        assert_eq!(client.requests_made(), 1);
        assert!(!format!("{client:?}").contains("top-secret"));
    }

    #[tokio::test]
    async fn unreachable_server_is_a_transient_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let retry = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::fast()
        };
        let client = client_for(addr, retry);
        let error = client.get_user(1).await.expect_err("unreachable");
        assert!(matches!(error, LearnAmpError::Transport(_)), "{error:?}");
        assert!(error.is_transient());
        assert_eq!(client.requests_made(), 3);
    }

    #[tokio::test]
    async fn rate_limits_are_retried_and_other_4xx_are_not() {
        let seen = Arc::new(Seen::default());
        let server_seen = seen.clone();
        let routes = Router::new()
            .route(
                "/v1/users/{id}/deactivate",
                put(move || {
                    let seen = server_seen.clone();
                    async move {
                        if seen.hits.fetch_add(1, Ordering::SeqCst) == 0 {
                            return ([("Retry-After", "0")], AxumStatus::TOO_MANY_REQUESTS)
                                .into_response();
                        }
                        AxumStatus::NO_CONTENT.into_response()
                    }
                }),
            )
            .route(
                "/v1/users/{id}/reactivate",
                put(|| async { (AxumStatus::FORBIDDEN, r#"{"error": "missing scope"}"#) }),
            );
        let client = serve(routes, seen.clone()).await;
        client.deactivate_user(3).await.expect("retried");
        assert_eq!(seen.hits.load(Ordering::SeqCst), 2);
        let before = client.requests_made();
        let error = client.reactivate_user(3).await.expect_err("forbidden");
        assert_eq!(
            error,
            LearnAmpError::Forbidden {
                message:
                    "missing scope (PUT /v1/users/{id}/reactivate needs the scope users:reactivate)"
                        .into()
            }
        );
        assert_eq!(client.requests_made(), before + 1);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("HR/1001"), "HR%2F1001");
        assert_eq!(encode_path_segment("a b+ä"), "a%20b%2B%C3%A4");
        assert_eq!(encode_path_segment("4711"), "4711");
    }

    #[test]
    fn request_debug_hides_form_values() {
        let request =
            ApiRequest::new(Method::POST, "/oauth/token").body(RequestBody::Form(vec![(
                "client_secret".into(),
                "top-secret".into(),
            )]));
        let shown = format!("{request:?}");
        assert!(shown.contains("client_secret"));
        assert!(!shown.contains("top-secret"));
    }

    #[test]
    fn tokens_renew_early() {
        assert_eq!(
            renewal_delay(Duration::from_secs(7200)),
            Duration::from_secs(7140)
        );
        assert_eq!(
            renewal_delay(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
    }
}
