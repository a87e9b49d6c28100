//! One API request as data, so that every attempt of a retry can rebuild it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::pacer::Pacer;

/// Form or query pairs, in order (repeated keys allowed).
pub(crate) type FormPairs = Vec<(String, String)>;

/// `Accept` of JSON endpoints.
pub(crate) const ACCEPT_JSON: &str = "application/json";

/// The body of a request. Its `Debug` shows form keys only (the token form carries the
/// client secret, a webhook body its token).
#[derive(Clone)]
pub(crate) enum RequestBody {
    /// No body.
    Empty,
    /// `application/x-www-form-urlencoded`.
    Form(FormPairs),
    /// `application/json`.
    Json(Value),
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
            Self::Json(_) => f.write_str("Json(..)"),
            Self::Bytes { data, content_type } => f
                .debug_struct("Bytes")
                .field("len", &data.len())
                .field("content_type", content_type)
                .finish(),
        }
    }
}

/// One API request, rebuilt for every attempt.
#[derive(Clone)]
pub(crate) struct ApiRequest {
    /// The HTTP method.
    pub(crate) method: Method,
    /// Path after the API base, starting with `/` (may carry its own query string).
    pub(crate) path: String,
    /// Query pairs added to the path.
    pub(crate) query: FormPairs,
    /// The body.
    pub(crate) body: RequestBody,
    /// `Accept`.
    pub(crate) accept: &'static str,
    /// Endpoint name for metrics and logs (a path template by default).
    pub(crate) endpoint: Cow<'static, str>,
    /// A 403 may mean an expired token (Personio v1): refresh the token once on it too.
    pub(crate) refresh_on_403: bool,
    /// Least wait after a 429, when the API advises one (Personio's employee list).
    pub(crate) min_429_wait: Option<Duration>,
    /// Pacers every attempt waits on before it is sent.
    pub(crate) pacers: Vec<Arc<Pacer>>,
    /// Also retry a non-2xx answer whose body this says is transient (OAuth errors).
    pub(crate) transient_body: Option<fn(&[u8]) -> bool>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("body", &self.body)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    /// A request without query or body expecting JSON; `path` starts with `/`.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        let path = path.into();
        Self {
            method,
            endpoint: Cow::Owned(crate::metrics::endpoint_template(&path)),
            path,
            query: FormPairs::new(),
            body: RequestBody::Empty,
            accept: ACCEPT_JSON,
            refresh_on_403: false,
            min_429_wait: None,
            pacers: Vec::new(),
            transient_body: None,
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

    /// Names the endpoint in metrics and logs.
    pub(crate) fn endpoint(mut self, name: &'static str) -> Self {
        self.endpoint = Cow::Borrowed(name);
        self
    }

    /// Waits on `pacer` before every attempt.
    pub(crate) fn paced(mut self, pacer: &Arc<Pacer>) -> Self {
        self.pacers.push(pacer.clone());
        self
    }
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
