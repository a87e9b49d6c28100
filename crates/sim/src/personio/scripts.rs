//! Scripted answers: fault drills that replace the answer of one route (an HTML 404 from
//! a proxy in front of Personio, a 409 on webhook creation, …).

use axum::http::{Method, StatusCode, header};
use axum::response::Response;

use super::Shared;

/// A canned answer the simulator gives instead of the real one, for fault drills
/// (an HTML 404 from a proxy in front of Personio, a 409, a 503 from the OpenID
/// provider's token endpoint, …). Rate limits and the token check still apply first.
#[derive(Debug, Clone)]
pub struct ScriptedAnswer {
    /// The method it answers.
    pub method: Method,
    /// The exact path it answers.
    pub path: String,
    /// The status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: String,
    /// How many more times it answers (`None` = until cleared).
    pub times: Option<usize>,
}

impl ScriptedAnswer {
    /// An answer to `method path` until cleared.
    pub fn new(method: Method, path: &str, status: u16, content_type: &str, body: &str) -> Self {
        Self {
            method,
            path: path.to_string(),
            status,
            content_type: content_type.to_string(),
            body: body.to_string(),
            times: None,
        }
    }

    /// The 404 a web server or proxy answers (HTML), not Personio's own.
    pub fn html_not_found(path: &str) -> Self {
        Self::new(
            Method::GET,
            path,
            404,
            "text/html; charset=utf-8",
            "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
        )
    }

    /// Answers only the next `times` matching calls.
    pub fn times(mut self, times: usize) -> Self {
        self.times = Some(times);
        self
    }

    /// The answer as an HTTP response.
    pub(crate) fn response(&self) -> Response {
        let mut response = Response::new(axum::body::Body::from(self.body.clone()));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(value) = axum::http::HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    }
}

/// The first scripted answer for `method path`, counting it down.
pub(crate) fn take_script(shared: &Shared, method: &Method, path: &str) -> Option<ScriptedAnswer> {
    let mut state = shared.state();
    let index = state
        .scripts
        .iter()
        .position(|script| script.method == *method && script.path == path)?;
    let script = &mut state.scripts[index];
    let answer = script.clone();
    match &mut script.times {
        Some(1) => {
            state.scripts.remove(index);
        }
        Some(left) => *left -= 1,
        None => {}
    }
    Some(answer)
}
