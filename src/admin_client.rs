//! A typed client of the admin API (`/admin/tenants…`), for the `tenants` commands, the
//! demo, the tests and the load tool: one place that knows the routes, the bearer
//! token and how a refusal reads.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::actors::status::TenantView;
use crate::domain::Secret;

/// Why an admin call failed. Messages carry the service's own `{error, message}` and
/// never the token.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The service did not answer.
    #[error("cannot reach the service at {base}: {source}")]
    Unreachable {
        /// The service's base URL.
        base: String,
        /// The transport error (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with a status other than the one the call expects.
    #[error("{}", describe_failure(*status, body.as_ref(), text))]
    Refused {
        /// The answer's status.
        status: StatusCode,
        /// The answer as JSON, when it is JSON.
        body: Option<Value>,
        /// The answer as text.
        text: String,
    },
    /// A successful answer whose body is not what the route returns.
    #[error("the answer of {path} is not {what}: {detail}")]
    Unexpected {
        /// The route.
        path: String,
        /// What was expected.
        what: &'static str,
        /// The parse error.
        detail: String,
    },
    /// A wait ran out of time.
    #[error("tenant {id} not ready within {timeout:?}: {last:?}")]
    Timeout {
        /// The tenant.
        id: String,
        /// How long it waited.
        timeout: Duration,
        /// The last view seen.
        last: Box<TenantView>,
    },
}

/// One admin answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body as JSON, when it is JSON.
    pub body: Option<Value>,
    /// The body as text.
    pub text: String,
}

/// The admin API of one running service.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl AdminClient {
    /// A client of the service at `base` (`http://host:port`, no trailing slash needed)
    /// using the admin `token`.
    pub fn new(base: impl Into<String>, token: Secret) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Any admin call (`path` from `/admin…`, with its query), with the token; returns
    /// the answer whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, AdminError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |source: reqwest::Error| AdminError::Unreachable {
            base: self.base.clone(),
            source: source.without_url(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let body = serde_json::from_str(&text).ok();
        Ok(Answer { status, body, text })
    }

    /// A call that must answer `expected`; its body.
    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<Answer, AdminError> {
        let answer = self.send(method, path, body).await?;
        if answer.status != expected {
            return Err(AdminError::Refused {
                status: answer.status,
                body: answer.body,
                text: answer.text,
            });
        }
        Ok(answer)
    }

    /// A call that must answer `expected` with a body of type `T`.
    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: StatusCode,
        what: &'static str,
    ) -> Result<T, AdminError> {
        let answer = self.expect(method, path, body, expected).await?;
        serde_json::from_str(&answer.text).map_err(|error| AdminError::Unexpected {
            path: path.to_string(),
            what,
            detail: error.to_string(),
        })
    }

    /// `GET /admin/tenants`: every tenant's view.
    pub async fn list(&self) -> Result<Vec<TenantView>, AdminError> {
        self.typed(
            Method::GET,
            "/admin/tenants",
            None,
            StatusCode::OK,
            "a list of tenant views",
        )
        .await
    }

    /// `GET /admin/tenants/{id}`: one tenant's view.
    pub async fn view(&self, id: &str) -> Result<TenantView, AdminError> {
        let path = format!("/admin/tenants/{id}");
        self.typed(Method::GET, &path, None, StatusCode::OK, "a tenant view")
            .await
    }

    /// `POST /admin/tenants` with a tenant spec (201): the new tenant's view.
    pub async fn create(&self, spec: &Value) -> Result<TenantView, AdminError> {
        self.typed(
            Method::POST,
            "/admin/tenants",
            Some(spec),
            StatusCode::CREATED,
            "a tenant view",
        )
        .await
    }

    /// `POST /admin/tenants/{id}/restart` (202).
    pub async fn restart(&self, id: &str) -> Result<(), AdminError> {
        let path = format!("/admin/tenants/{id}/restart");
        self.expect(Method::POST, &path, None, StatusCode::ACCEPTED)
            .await
            .map(drop)
    }

    /// `DELETE /admin/tenants/{id}`, with `?purge=true` if `purge` (204).
    pub async fn delete(&self, id: &str, purge: bool) -> Result<(), AdminError> {
        let path = format!("/admin/tenants/{id}?purge={purge}");
        self.expect(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
            .await
            .map(drop)
    }

    /// `POST /admin/tenants/{id}/sync` (202): a full sync starts (`confirm` lifts the
    /// mass-deactivation guard once).
    pub async fn start_sync(&self, id: &str, confirm: bool) -> Result<(), AdminError> {
        let path = format!("/admin/tenants/{id}/sync?confirm={confirm}");
        self.expect(Method::POST, &path, None, StatusCode::ACCEPTED)
            .await
            .map(drop)
    }

    /// `GET /admin/tenants/{id}/employees?query=&cursor=&limit=`: one page of people.
    pub async fn people(
        &self,
        id: &str,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Answer, AdminError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(query) = query {
            params.push(("query", query.to_string()));
        }
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor.to_string()));
        }
        if let Some(limit) = limit {
            params.push(("limit", limit.to_string()));
        }
        let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
        let path = if encoded.is_empty() {
            format!("/admin/tenants/{id}/employees")
        } else {
            format!("/admin/tenants/{id}/employees?{encoded}")
        };
        self.expect(Method::GET, &path, None, StatusCode::OK).await
    }

    /// `GET /admin/tenants/{id}/employees/{personio_id}`: one person and their history.
    pub async fn person(&self, id: &str, personio_id: &str) -> Result<Answer, AdminError> {
        let path = format!("/admin/tenants/{id}/employees/{personio_id}");
        self.expect(Method::GET, &path, None, StatusCode::OK).await
    }

    /// `POST /admin/tenants/{id}/sync?dry_run=true`: the plan as the service shows it.
    pub async fn dry_run(&self, id: &str) -> Result<Value, AdminError> {
        let path = format!("/admin/tenants/{id}/sync?dry_run=true");
        self.typed(Method::POST, &path, None, StatusCode::OK, "a plan")
            .await
    }

    /// Polls the view of `id` every `every` until `done` holds; fails after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        every: Duration,
        done: impl Fn(&TenantView) -> bool,
    ) -> Result<TenantView, AdminError> {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.view(id).await?;
            if done(&view) {
                return Ok(view);
            }
            if Instant::now() >= deadline {
                return Err(AdminError::Timeout {
                    id: id.to_string(),
                    timeout,
                    last: Box::new(view),
                });
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// One line for a non-2xx answer: the status and the `{error, message}` body.
pub fn describe_failure(status: StatusCode, body: Option<&Value>, text: &str) -> String {
    let field = |name: &str| body.and_then(|body| body.get(name)).and_then(Value::as_str);
    match (field("error"), field("message")) {
        (Some(error), Some(message)) => format!("HTTP {status}: {error}: {message}"),
        _ if text.trim().is_empty() => format!("HTTP {status}"),
        _ => format!("HTTP {status}: {}", text.trim()),
    }
}
