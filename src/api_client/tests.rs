use super::*;

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
