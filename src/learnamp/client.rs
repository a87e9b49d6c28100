//! The Learn Amp HTTP client: the documented users and teams endpoints and pagination
//! (reference §2–§9) on the shared [`crate::api_client`] core (tokens with the scopes of
//! [`scopes`], retries, body cap, metrics). User writes and the assumed contracts are in
//! `users.rs` and `assumed.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::api_client::{
    self, Api, ApiCore, ApiRequest, FormPairs, FreshToken, Raw, RequestBody, SendError,
    encode_path_segment,
};
use crate::domain::Secret;
use crate::retry::RetryPolicy;

use super::error::{LearnAmpError, error_for_status, token_error};
use super::model::{Team, TeamFields, User, UserFilter, team_form};
use super::scopes;

/// Page size of list calls.
const PER_PAGE: u32 = 100;
/// Hard stop for pagination, whatever the headers say.
const MAX_PAGES: u32 = 100_000;
/// What sets Learn Amp apart in the shared client core (token lifetime when the server
/// does not say: 2 h, reference §2.1).
const LEARNAMP: Api = Api {
    system: "learnamp",
    default_token_lifetime: Duration::from_secs(7200),
    trace_id: |_| None,
};

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

/// A Learn Amp API client. Cheap to clone; clones share the token and the counters.
#[derive(Clone)]
pub struct LearnAmpClient {
    inner: Arc<Inner>,
}

/// Shared state of a client.
struct Inner {
    /// Transport, retries, token cache, counter (see [`crate::api_client`]).
    core: ApiCore,
    client_id: String,
    /// Space-separated scopes sent with every token request (never empty).
    scope: String,
}

/// The token endpoint's answer (reference §2.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl std::fmt::Debug for LearnAmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnAmpClient")
            .field("base_url", &self.inner.core.base())
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

impl LearnAmpClient {
    /// A client for one account. `http` should be shared process-wide.
    pub fn new(config: LearnAmpConfig, http: reqwest::Client, retry: RetryPolicy) -> Self {
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
                core: ApiCore::new(
                    LEARNAMP,
                    &config.base_url,
                    http,
                    retry,
                    api_client::DEFAULT_REQUEST_TIMEOUT,
                    config.client_secret,
                ),
                client_id: config.client_id,
                scope: requested.join(" "),
            }),
        }
    }

    /// HTTP requests sent so far (token requests and retries included).
    pub fn requests_made(&self) -> u64 {
        self.inner.core.requests_made()
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

    /// The first user (lowest page) matching `filter`, reading one page of one user.
    pub async fn first_user(&self, filter: &UserFilter) -> Result<Option<User>, LearnAmpError> {
        let mut query = filter.query_pairs();
        query.push(("page".to_string(), "1".to_string()));
        query.push(("perPage".to_string(), "1".to_string()));
        let request = ApiRequest::new(Method::GET, "/v1/users").query(query);
        let raw = self.send_checked(&request).await?;
        let users: Vec<User> = parse_envelope(&raw.body, "users")?;
        Ok(users.into_iter().next())
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
        let raw = self.send_checked(request).await?;
        serde_json::from_slice(&raw.body).map_err(|err| {
            LearnAmpError::Decode(format!("{} {}: {err}", request.method, request.path))
        })
    }

    /// Sends an authorised request that answers 2xx with no useful body.
    pub(crate) async fn send_no_content(&self, request: &ApiRequest) -> Result<(), LearnAmpError> {
        self.send_checked(request).await.map(drop)
    }

    /// Sends an authorised request (the token renewed once on a 401); any non-2xx
    /// answer becomes an error, a second 401 [`LearnAmpError::Unauthorized`].
    pub(crate) async fn send_checked(&self, request: &ApiRequest) -> Result<Raw, LearnAmpError> {
        let raw = self
            .inner
            .core
            .send_authorized(request, || self.fetch_token())
            .await?;
        if raw.status.is_success() {
            return Ok(raw);
        }
        let error = error_for_status(raw.status.as_u16(), &raw.body);
        Err(name_missing_scope(request, error))
    }

    // ----- tokens -----------------------------------------------------------------------

    /// `POST /oauth/token` with the client credentials and the scopes.
    async fn fetch_token(&self) -> Result<FreshToken, LearnAmpError> {
        let core = &self.inner.core;
        let form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), self.inner.client_id.clone()),
            (
                "client_secret".to_string(),
                core.secret().expose().to_string(),
            ),
            ("scope".to_string(), self.inner.scope.clone()),
        ];
        let request = ApiRequest::new(Method::POST, "/oauth/token").body(RequestBody::Form(form));
        let raw = core.send(&request, None).await?;
        let status = raw.status.as_u16();
        if !raw.status.is_success() {
            let body = core.scrub(&String::from_utf8_lossy(&raw.body));
            let error = token_error(status, body.as_bytes());
            warn!(status, error = %error, "Learn Amp token request failed");
            return Err(error);
        }
        let token: TokenResponse = serde_json::from_slice(&raw.body)
            .map_err(|err| LearnAmpError::Decode(format!("token response: {err}")))?;
        debug!(
            expires_in_s = token.expires_in,
            "fetched a Learn Amp access token"
        );
        Ok(FreshToken {
            value: token.access_token,
            expires_in: token.expires_in,
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
            let raw = self.send_checked(&request).await?;
            let total_pages = header_number(&raw.headers, "total-pages");
            let page_items: Vec<T> = parse_envelope(&raw.body, envelope)?;
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

impl From<SendError> for LearnAmpError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Transport(reason) => Self::Transport(reason),
            SendError::TooLarge => Self::Decode(SendError::too_large_message()),
        }
    }
}

#[cfg(test)]
mod tests;
