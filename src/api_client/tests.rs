use super::*;
use std::time::Duration;

#[test]
fn scrub_removes_secrets() {
    assert_eq!(
        scrub("bad secret s3cr3t here", "s3cr3t"),
        "bad secret *** here"
    );
    assert_eq!(scrub("text", ""), "text");
}

#[test]
fn transient_statuses() {
    let request = ApiRequest::new(reqwest::Method::GET, "/x");
    let raw = |status: u16| Raw {
        status: StatusCode::from_u16(status).expect("status"),
        headers: HeaderMap::new(),
        body: Vec::new(),
    };
    for status in [429, 500, 502, 503, 504] {
        assert!(is_transient(&request, &raw(status)), "{status}");
    }
    for status in [200, 400, 401, 403, 404, 409, 501] {
        assert!(!is_transient(&request, &raw(status)), "{status}");
    }
}

/// A core with the default (production) retry policy; never sends anything.
fn core() -> ApiCore {
    ApiCore::new(
        Api {
            system: "test",
            default_token_lifetime: Duration::from_secs(60),
            trace_id: |_| None,
        },
        "http://127.0.0.1:9/",
        reqwest::Client::new(),
        RetryPolicy::default(),
        DEFAULT_REQUEST_TIMEOUT,
        Secret::new("s3cr3t-value"),
    )
}

/// An answer with `status` and, if given, a `Retry-After` in seconds.
fn answer(status: u16, retry_after: Option<&str>) -> Raw {
    let mut headers = HeaderMap::new();
    if let Some(value) = retry_after {
        headers.insert(
            reqwest::header::RETRY_AFTER,
            value.parse().expect("header value"),
        );
    }
    Raw {
        status: StatusCode::from_u16(status).expect("status"),
        headers,
        body: Vec::new(),
    }
}

#[test]
fn retry_after_is_honoured_up_to_the_cap() {
    let core = core();
    let request = ApiRequest::new(reqwest::Method::GET, "/x");
    let short = core.retry_delay(&request, Some(&answer(429, Some("30"))), 1);
    assert_eq!(short, Duration::from_secs(30));
    let long = core.retry_delay(&request, Some(&answer(429, Some("3600"))), 1);
    assert_eq!(long, Duration::from_secs(60));
    let none = core.retry_delay(&request, Some(&answer(503, None)), 1);
    assert!(none <= RetryPolicy::default().base_delay, "{none:?}");
}

#[test]
fn a_least_wait_after_429_applies_to_429_only() {
    let core = core();
    let mut request = ApiRequest::new(reqwest::Method::GET, "/x");
    request.min_429_wait = Some(Duration::from_secs(1));
    let after_429 = core.retry_delay(&request, Some(&answer(429, None)), 1);
    assert_eq!(after_429, Duration::from_secs(1));
    let after_503 = core.retry_delay(&request, Some(&answer(503, None)), 1);
    assert!(after_503 < Duration::from_secs(1), "{after_503:?}");
}

#[test]
fn the_core_scrubs_its_own_secret() {
    let text = core().scrub("echoed s3cr3t-value back");
    assert_eq!(text, "echoed *** back");
}
