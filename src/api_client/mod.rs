//! The core both API clients (Personio, Learn Amp) are built on; each client keeps only
//! its endpoints and its error mapping.
//!
//! - `ApiCore::send`: one request with bounded retries of transient failures (429,
//!   500/502/503/504, connection failures, timeouts) using the shared
//!   [`crate::retry::RetryPolicy`] back-off, a capped `Retry-After`, pacing, the body cap,
//!   the request counter and the `api_calls`/`api_retries` metrics.
//! - `ApiCore::send_authorized`: the same with the cached bearer token, refreshed once
//!   when the server refuses it.
//! - `token`: the token cache (one refresh in flight).
//! - `request`: the request as data, its body and path encoding.
//! - `scrub`: keeps the client secret out of texts built from answers.

pub(crate) mod request;
pub(crate) mod token;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};

use crate::domain::Secret;
use crate::retry::{RetryPolicy, retry_after};

pub(crate) use request::{ApiRequest, FormPairs, RequestBody, encode_path_segment};
pub(crate) use token::{FreshToken, TokenCache};

/// Timeout of every single HTTP request, unless a client is given another.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read from either API (profile pictures included): a runaway body
/// fails the call instead of filling memory.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Longest server-requested `Retry-After` honoured, for both APIs. The call sleeps inside
/// the tenant's actor, so every webhook of that tenant waits behind it: 60 s covers the
/// per-minute windows Personio documents (Learn Amp documents none, and may not send the
/// header at all), and a longer outage is better left to the tenant-level retry, which
/// releases the actor, than slept through here.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Retry policies with a base delay below this are test policies: a request's
/// `min_429_wait` does not apply to them.
const MIN_429_WAIT_APPLIES_FROM: Duration = Duration::from_millis(100);

/// What tells one API's client apart in the core.
pub(crate) struct Api {
    /// The `system` label of the metrics and logs (`personio`, `learnamp`).
    pub(crate) system: &'static str,
    /// Lifetime of a token whose answer gives no `expires_in`.
    pub(crate) default_token_lifetime: Duration,
    /// The API's trace id in an error body, for logs.
    pub(crate) trace_id: fn(&[u8]) -> Option<String>,
}

/// A raw HTTP answer, body read in full (within [`MAX_BODY_BYTES`]).
pub(crate) struct Raw {
    /// The status.
    pub(crate) status: StatusCode,
    /// The headers (never logged).
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// A request that got no answer; each client maps it onto its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// No answer (connection, timeout, broken body), after every retry; with its causes.
    Transport(String),
    /// The answer was larger than [`MAX_BODY_BYTES`].
    TooLarge,
}

impl SendError {
    /// The text of [`SendError::TooLarge`] as the clients report it.
    pub(crate) fn too_large_message() -> String {
        format!("answer larger than {MAX_BODY_BYTES} bytes")
    }
}

/// The shared state of one client: HTTP client, base URL, identification headers,
/// retry policy, timeout, token cache, client secret (for scrubbing) and counter.
pub(crate) struct ApiCore {
    api: Api,
    http: reqwest::Client,
    /// The API base without trailing slashes.
    base: String,
    /// Headers every request carries (identification).
    headers: HeaderMap,
    retry: RetryPolicy,
    timeout: Duration,
    secret: Secret,
    tokens: TokenCache,
    /// HTTP requests sent (token requests and retries included).
    requests: AtomicU64,
}

impl ApiCore {
    /// A core for `api` at `base_url`.
    pub(crate) fn new(
        api: Api,
        base_url: &str,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
        secret: Secret,
    ) -> Self {
        let tokens = TokenCache::new(api.default_token_lifetime);
        Self {
            api,
            http,
            base: base_url.trim().trim_end_matches('/').to_string(),
            headers: HeaderMap::new(),
            retry,
            timeout,
            secret,
            tokens,
            requests: AtomicU64::new(0),
        }
    }

    /// The same core sending `headers` with every request.
    pub(crate) fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// The API base without trailing slashes.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy.
    pub(crate) fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client secret, for the token form only.
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// HTTP requests sent so far (token requests and retries included).
    pub(crate) fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `text` with the client secret replaced (defence in depth for messages built
    /// from server answers).
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(text, self.secret.expose())
    }

    /// Sends `request` with the cached bearer token (fetched by `fetch` when missing or
    /// due). A 401 (or a 403 where the request says so) drops the token and tries once
    /// more with a fresh one; the final answer is returned whatever its status.
    pub(crate) async fn send_authorized<E, F, Fut>(
        &self,
        request: &ApiRequest,
        fetch: F,
    ) -> Result<Raw, E>
    where
        E: From<SendError>,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FreshToken, E>>,
    {
        let mut refreshed = false;
        loop {
            let token = self.tokens.get(&fetch).await?;
            let raw = self.send(request, Some(&token)).await?;
            let refused = raw.status == StatusCode::UNAUTHORIZED
                || (request.refresh_on_403 && raw.status == StatusCode::FORBIDDEN);
            if !refused || refreshed {
                return Ok(raw);
            }
            tracing::info!(
                system = self.api.system,
                endpoint = %request.endpoint,
                status = raw.status.as_u16(),
                "the API refused the token; fetching a fresh one"
            );
            self.tokens.invalidate(&token);
            refreshed = true;
        }
    }

    /// Sends `request` (with `bearer`, if any), retrying transient failures within the
    /// retry policy. The final answer is returned whatever its status.
    pub(crate) async fn send(
        &self,
        request: &ApiRequest,
        bearer: Option<&Secret>,
    ) -> Result<Raw, SendError> {
        let mut attempt: u32 = 1;
        loop {
            for pacer in &request.pacers {
                pacer.acquire().await;
            }
            let started = std::time::Instant::now();
            let outcome = self.attempt(request, bearer).await;
            let status = match &outcome {
                Ok(raw) => raw.status.as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            crate::metrics::api_call(
                self.api.system,
                &request.endpoint,
                &status,
                started.elapsed(),
            );
            let transient = match &outcome {
                Ok(raw) => is_transient(request, raw),
                Err(failure) => failure.transient,
            };
            if !transient || !self.retry.may_retry(attempt) {
                return outcome.map_err(|failure| failure.error);
            }
            let wait = self.retry_delay(request, outcome.as_ref().ok(), attempt);
            let (cause, trace_id) = match &outcome {
                Ok(raw) => (status, (self.api.trace_id)(&raw.body)),
                Err(failure) => (format!("{:?}", failure.error), None),
            };
            tracing::warn!(
                system = self.api.system,
                method = %request.method,
                endpoint = %request.endpoint,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                cause = %cause,
                trace_id = trace_id.as_deref().unwrap_or(""),
                "transient API failure; retrying"
            );
            crate::metrics::api_retry(self.api.system, &request.endpoint);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// The wait before retrying after attempt `attempt`: the policy's back-off, a
    /// longer `Retry-After` (capped at [`MAX_RETRY_AFTER`]) and the request's least wait
    /// after a 429.
    fn retry_delay(&self, request: &ApiRequest, answer: Option<&Raw>, attempt: u32) -> Duration {
        let server = answer
            .and_then(|raw| retry_after(&raw.headers))
            .map(|wait| wait.min(MAX_RETRY_AFTER));
        let delay = self.retry.delay(attempt, server);
        let floor = request.min_429_wait.filter(|_| {
            answer.is_some_and(|raw| raw.status == StatusCode::TOO_MANY_REQUESTS)
                && self.retry.base_delay >= MIN_429_WAIT_APPLIES_FROM
        });
        floor.map_or(delay, |floor| delay.max(floor))
    }

    /// Sends one attempt and reads its answer (bounded), counting it. Response headers
    /// are never logged; Personio's v1 answers carry the token back in `Authorization`,
    /// which is deliberately not read (see the Personio client).
    async fn attempt(
        &self,
        request: &ApiRequest,
        bearer: Option<&Secret>,
    ) -> Result<Raw, AttemptFailure> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self
            .build(request, bearer)
            .send()
            .await
            .map_err(AttemptFailure::transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(AttemptFailure::transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AttemptFailure {
                    error: SendError::TooLarge,
                    transient: false,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Raw {
            status,
            headers,
            body,
        })
    }

    /// Builds one attempt of `request`.
    fn build(&self, request: &ApiRequest, bearer: Option<&Secret>) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .header(ACCEPT, request.accept);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(token) = bearer {
            builder = builder.bearer_auth(token.expose());
        }
        match &request.body {
            RequestBody::Empty => builder,
            RequestBody::Form(pairs) => builder.form(pairs),
            RequestBody::Json(value) => builder.json(value),
            RequestBody::Bytes { data, content_type } => builder
                .header(CONTENT_TYPE, *content_type)
                .body(data.clone()),
        }
    }
}

/// A failed attempt and whether another may follow.
struct AttemptFailure {
    error: SendError,
    transient: bool,
}

impl AttemptFailure {
    /// A network-level failure: transient unless the request itself was bad.
    fn transport(err: reqwest::Error) -> Self {
        Self {
            transient: !err.is_builder() && !err.is_redirect() && !err.is_status(),
            error: SendError::Transport(describe_transport(&err)),
        }
    }
}

/// Whether an answer is worth another attempt: 429, 500, 502, 503, 504 (not 501, which
/// will not change), or a body the request marks transient.
fn is_transient(request: &ApiRequest, raw: &Raw) -> bool {
    let status = matches!(raw.status.as_u16(), 429 | 500 | 502 | 503 | 504);
    let body = !raw.status.is_success()
        && request
            .transient_body
            .is_some_and(|transient| transient(&raw.body));
    status || body
}

/// A transport error with its causes (no secrets: credentials travel in bodies and
/// headers, never in URLs).
fn describe_transport(err: &reqwest::Error) -> String {
    let mut reason = if err.is_timeout() {
        format!("timed out: {err}")
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// Replaces every occurrence of `secret` in `text` by `***`.
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "***")
    }
}
