//! What both simulators share: fault knobs (latency, error rate, outage, rate limits),
//! the record of every call, and the axum middleware that applies them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

/// Locks `mutex`, recovering the guard if an earlier holder panicked: every critical
/// section in the simulators is a read or a single update, so the data stays consistent
/// and one panicking request must not break every later one.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Fault knobs, changeable while the simulator runs (tests flip them mid-run).
#[derive(Debug, Default)]
pub struct Knobs {
    /// Added to every answer, in milliseconds.
    pub latency_ms: AtomicU64,
    /// Share of calls (in millionths, 0..=1_000_000) answered with an injected 5xx or
    /// 429 *before* the call has any effect.
    pub error_rate_ppm: AtomicU64,
    /// When set, every call is answered 503 without effect.
    pub outage: AtomicBool,
    /// Paths (without query) answered 503 without effect, forever: one record that
    /// keeps failing while the rest of the API answers.
    pub failing_paths: Mutex<std::collections::HashSet<String>>,
}

impl Knobs {
    /// Sets the simulated latency.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Sets the share of calls that fail (0.0..=1.0).
    pub fn set_error_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        self.error_rate_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Starts or ends an outage.
    pub fn set_outage(&self, outage: bool) {
        self.outage.store(outage, Ordering::Relaxed);
    }

    /// Makes every call to `path` (e.g. `/v1/company/employees/4711`) answer 503, or
    /// answer normally again.
    pub fn set_path_failing(&self, path: &str, failing: bool) {
        let mut paths = lock(&self.failing_paths);
        if failing {
            paths.insert(path.to_string());
        } else {
            paths.remove(path);
        }
    }

    fn path_fails(&self, path: &str) -> bool {
        lock(&self.failing_paths).contains(path)
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// HTTP method.
    pub method: Method,
    /// Path without the query string.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Status answered.
    pub status: u16,
    /// Whether the status was injected by a knob (the call had no effect).
    pub injected: bool,
}

impl CallRecord {
    /// Whether the call could change state (anything but GET/HEAD).
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }
}

/// Every call a simulator answered, in order.
#[derive(Debug, Default)]
pub struct CallLog {
    calls: Mutex<Vec<CallRecord>>,
}

impl CallLog {
    /// A copy of every call so far.
    pub fn all(&self) -> Vec<CallRecord> {
        crate::common::lock(&self.calls).clone()
    }

    /// Number of calls so far.
    pub fn len(&self) -> usize {
        crate::common::lock(&self.calls).len()
    }

    /// Whether no call was made yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every recorded call (tests call this between phases).
    pub fn clear(&self) {
        crate::common::lock(&self.calls).clear();
    }

    /// Calls that could change state and were not injected failures.
    pub fn writes(&self) -> Vec<CallRecord> {
        self.all()
            .into_iter()
            .filter(|call| call.is_write() && !call.injected)
            .collect()
    }

    fn push(&self, record: CallRecord) {
        crate::common::lock(&self.calls).push(record);
    }
}

/// A token-bucket rate limit: `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per minute, sustained.
    pub per_minute: f64,
    /// Bucket size.
    pub burst: f64,
}

/// Token buckets keyed by a name the simulator chooses (an endpoint group).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one token from bucket `key`; `false` means the caller must answer 429.
    pub fn try_acquire(&self, key: &str, limit: RateLimit) -> bool {
        let mut buckets = crate::common::lock(&self.buckets);
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((limit.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * limit.per_minute / 60.0;
        *tokens = (*tokens + refill).min(limit.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Shared state of the fault middleware.
#[derive(Clone)]
pub struct FaultLayerState {
    /// The knobs.
    pub knobs: Arc<Knobs>,
    /// The call record.
    pub log: Arc<CallLog>,
    /// Builds the body of an injected failure in the simulator's own error format.
    pub error_body: fn(StatusCode) -> Response,
}

/// axum middleware: applies latency, outage and injected errors, and records the call.
pub async fn fault_middleware(
    State(state): State<FaultLayerState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let latency = state.knobs.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let injected_status =
        if state.knobs.outage.load(Ordering::Relaxed) || state.knobs.path_fails(&path) {
            Some(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            let ppm = state.knobs.error_rate_ppm.load(Ordering::Relaxed);
            let mut rng = rand::rng();
            if ppm > 0 && rng.random_range(0..1_000_000) < ppm {
                let choices = [
                    StatusCode::INTERNAL_SERVER_ERROR,
                    StatusCode::BAD_GATEWAY,
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::TOO_MANY_REQUESTS,
                ];
                Some(choices[rng.random_range(0..choices.len())])
            } else {
                None
            }
        };
    let (response, injected) = match injected_status {
        Some(status) => ((state.error_body)(status), true),
        None => (next.run(request).await, false),
    };
    state.log.push(CallRecord {
        method,
        path,
        query,
        status: response.status().as_u16(),
        injected,
    });
    response
}

/// A plain-text answer, for the rare case no API format applies.
pub fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, Body::from(text)).into_response()
}
