//! Webhook management under `/v2/webhooks` and delivery with Personio's rules
//! (reference §7): created `DISABLED` unless told, `auth_type` `TOKEN` by default, at most
//! three `custom_headers` with forbidden names, 409 for a second subscription with the
//! same URL, 422 problem+json for invalid bodies. Deliveries POST
//! `{company_id, event_name, occurred_at, payload, meta}` with the token verbatim in
//! `Authorization`, a 3 s timeout, no redirects, and retries on timeouts, transport
//! errors and 5xx except 501. URLs must be HTTPS, except `http://` to a loopback host
//! (local testing). With a signing secret set, deliveries carry the signature headers
//! of [`signing`](super::signing).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::Shared;
use super::delivery::{deliver, delivery_body};
use super::errors::{bad_request, first, problem, query_pairs, resource_not_found, uuid_like};
use crate::secret::Secret;

use super::subscription::{
    FORBIDDEN_HEADERS, KNOWN_EVENTS, SimWebhook, WebhookAuthType, WebhookStatus,
};

/// A create or patch body applied on top of the current values.
#[derive(Debug, Clone, Default)]
struct Draft {
    url: Option<String>,
    description: Option<String>,
    status: Option<WebhookStatus>,
    auth_type: Option<WebhookAuthType>,
    token: Option<String>,
    custom_headers: BTreeMap<String, String>,
    enabled_events: Option<Vec<String>>,
}

impl Draft {
    fn from_webhook(hook: &SimWebhook) -> Self {
        Self {
            url: Some(hook.url.clone()),
            description: Some(hook.description.clone()),
            status: Some(hook.status),
            auth_type: Some(hook.auth_type),
            token: hook.token.as_ref().map(|token| token.expose().to_string()),
            custom_headers: hook
                .custom_headers
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_string()))
                .collect(),
            enabled_events: Some(hook.enabled_events.clone()),
        }
    }
}

fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, String> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(value)) => Ok(Some(Some(value.clone()))),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

/// Applies the fields present in `body` to `draft`.
fn apply(mut draft: Draft, body: &Map<String, Value>) -> Result<Draft, String> {
    if let Some(url) = string_field(body, "url")? {
        draft.url = url;
    }
    if let Some(description) = string_field(body, "description")? {
        draft.description = description;
    }
    if let Some(token) = string_field(body, "token")? {
        draft.token = token;
    }
    if let Some(status) = string_field(body, "status")? {
        draft.status = match status {
            None => None,
            Some(raw) => {
                Some(WebhookStatus::parse(&raw).ok_or("'status' must be ENABLED or DISABLED")?)
            }
        };
    }
    if let Some(auth_type) = string_field(body, "auth_type")? {
        draft.auth_type = match auth_type {
            None => None,
            Some(raw) => Some(
                WebhookAuthType::parse(&raw).ok_or("'auth_type' must be NONE, TOKEN or CUSTOM")?,
            ),
        };
    }
    match body.get("enabled_events") {
        None => {}
        Some(Value::Array(items)) => {
            let events: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect();
            draft.enabled_events = Some(events.ok_or("'enabled_events' must hold strings")?);
        }
        Some(Value::Null) => draft.enabled_events = None,
        Some(_) => return Err("'enabled_events' must be an array".to_string()),
    }
    match body.get("custom_headers") {
        None => {}
        Some(Value::Null) => draft.custom_headers.clear(),
        Some(Value::Object(headers)) => {
            let mut parsed = BTreeMap::new();
            for (name, value) in headers {
                let value = value
                    .as_str()
                    .ok_or("custom header values must be strings")?;
                parsed.insert(name.clone(), value.to_string());
            }
            draft.custom_headers = parsed;
        }
        Some(_) => return Err("'custom_headers' must be an object".to_string()),
    }
    Ok(draft)
}

/// Why a delivery URL is refused: Personio requires an absolute HTTPS URL (reference
/// §7.2); plain `http://` passes only to a loopback host, for local testing.
fn url_problem(url: &str) -> Option<&'static str> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some("'url' must be an absolute https URL");
    };
    let Some(host) = parsed.host_str() else {
        return Some("'url' must be an absolute https URL");
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some("'url' must use https: webhooks are only delivered over HTTPS"),
        _ => Some("'url' must be an absolute https URL"),
    }
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    if headers.len() > 3 {
        return Err("At most 3 custom headers are allowed".to_string());
    }
    for name in headers.keys() {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.iter().any(|bad| lower.starts_with(bad)) {
            return Err(format!("Custom header name '{name}' is not allowed"));
        }
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("Custom header name '{name}' is invalid"));
        }
    }
    Ok(())
}

/// Turns a complete draft into a webhook, or says what is invalid.
fn finish(draft: Draft, id: String) -> Result<SimWebhook, String> {
    let url = draft
        .url
        .filter(|url| !url.is_empty())
        .ok_or("'url' is required")?;
    if let Some(problem) = url_problem(&url) {
        return Err(problem.to_string());
    }
    let description = draft.description.ok_or("'description' is required")?;
    let events = draft
        .enabled_events
        .filter(|events| !events.is_empty())
        .ok_or("'enabled_events' must list at least one event")?;
    if let Some(unknown) = events
        .iter()
        .find(|event| !KNOWN_EVENTS.contains(&event.as_str()))
    {
        return Err(format!("Unknown event '{unknown}'"));
    }
    let auth_type = draft.auth_type.unwrap_or(WebhookAuthType::Token);
    let token = draft.token.filter(|token| !token.is_empty());
    if auth_type == WebhookAuthType::Token && token.is_none() {
        return Err("'token' is required when auth_type is TOKEN".to_string());
    }
    match auth_type {
        WebhookAuthType::Custom if draft.custom_headers.is_empty() => {
            return Err("'custom_headers' are required when auth_type is CUSTOM".to_string());
        }
        WebhookAuthType::Custom => check_headers(&draft.custom_headers)?,
        _ if !draft.custom_headers.is_empty() => {
            return Err("'custom_headers' are only allowed with auth_type CUSTOM".to_string());
        }
        _ => {}
    }
    let mut unique = Vec::new();
    for event in events {
        if !unique.contains(&event) {
            unique.push(event);
        }
    }
    Ok(SimWebhook {
        id,
        url,
        description,
        status: draft.status.unwrap_or(WebhookStatus::Disabled),
        auth_type,
        token: token.map(Secret::new),
        custom_headers: draft
            .custom_headers
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect(),
        enabled_events: unique,
    })
}

fn unprocessable(detail: &str) -> Response {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Unprocessable entity",
        detail,
        "common.unprocessable_entity",
    )
}

fn conflict() -> Response {
    problem(
        StatusCode::CONFLICT,
        "Conflict",
        "A webhook with this url already exists.",
        "common.conflict",
    )
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Box::new(bad_request(
            "The request body must be a JSON object.",
        ))),
    }
}

fn webhook_not_found() -> Response {
    resource_not_found("The webhook was not found.")
}

/// `POST /v2/webhooks`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let object = match json_object(&body) {
        Ok(object) => object,
        Err(response) => return *response,
    };
    let hook = match apply(Draft::default(), &object).and_then(|d| finish(d, uuid_like())) {
        Ok(hook) => hook,
        Err(detail) => return unprocessable(&detail),
    };
    let mut state = shared.state();
    if state
        .webhooks
        .iter()
        .any(|existing| existing.url == hook.url)
    {
        return conflict();
    }
    let answer = hook.to_json();
    tracing::debug!(webhook_id = %hook.id, "personio sim: webhook created");
    state.webhooks.push(hook);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `PATCH /v2/webhooks/{id}`: a partial update.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let object = match json_object(&body) {
        Ok(object) => object,
        Err(response) => return *response,
    };
    let mut state = shared.state();
    let Some(index) = state.webhooks.iter().position(|hook| hook.id == id) else {
        return webhook_not_found();
    };
    let draft = Draft::from_webhook(&state.webhooks[index]);
    let hook = match apply(draft, &object).and_then(|d| finish(d, id.clone())) {
        Ok(hook) => hook,
        Err(detail) => return unprocessable(&detail),
    };
    if state
        .webhooks
        .iter()
        .any(|other| other.id != id && other.url == hook.url)
    {
        return conflict();
    }
    let answer = hook.to_json();
    state.webhooks[index] = hook;
    axum::Json(answer).into_response()
}

/// `GET /v2/webhooks/{id}`.
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.webhooks.iter().find(|hook| hook.id == id) {
        Some(hook) => axum::Json(hook.to_json()).into_response(),
        None => webhook_not_found(),
    }
}

/// `DELETE /v2/webhooks/{id}`: 204.
pub(crate) async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut state = shared.state();
    let before = state.webhooks.len();
    state.webhooks.retain(|hook| hook.id != id);
    if state.webhooks.len() == before {
        return webhook_not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v2/webhooks/{id}/ping`: sends a `ping` event to this subscription (even when
/// disabled) and answers 202 with an empty body.
pub(crate) async fn ping(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let hook = shared
        .state()
        .webhooks
        .iter()
        .find(|hook| hook.id == id)
        .cloned();
    let Some(hook) = hook else {
        return webhook_not_found();
    };
    let body = delivery_body(&shared, "ping", json!({}));
    shared
        .runtime
        .spawn(deliver(shared.clone(), hook, "ping".to_string(), body));
    StatusCode::ACCEPTED.into_response()
}

/// List filters and paging.
struct ListQuery {
    limit: usize,
    start: usize,
    status: Option<WebhookStatus>,
    events: Vec<String>,
}

fn list_query(pairs: &[(String, String)]) -> Result<ListQuery, Box<Response>> {
    let limit = match first(pairs, "limit") {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(limit) if (1..=200).contains(&limit) => limit,
            _ => return Err(Box::new(bad_request("'limit' must be between 1 and 200."))),
        },
    };
    let start = match first(pairs, "cursor") {
        None => 0,
        Some(raw) => raw
            .strip_prefix("cur_")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Box::new(bad_request("Provided cursor is invalid.")))?,
    };
    let status = match first(pairs, "status") {
        None => None,
        Some(raw) => Some(
            WebhookStatus::parse(raw)
                .ok_or_else(|| Box::new(bad_request("'status' must be ENABLED or DISABLED.")))?,
        ),
    };
    let events = pairs
        .iter()
        .filter(|(key, _)| key == "enabled_events" || key == "enabled_events[]")
        .flat_map(|(_, value)| value.split(',').map(|e| e.trim().to_string()))
        .filter(|event| !event.is_empty())
        .collect();
    Ok(ListQuery {
        limit,
        start,
        status,
        events,
    })
}

/// `GET /v2/webhooks`: `_data`/`_meta.links` with cursor paging. `enabled_events`
/// (comma-separated or repeated) keeps subscriptions listing **any** of the given events;
/// `status` filters exactly.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let filter = match list_query(&pairs) {
        Ok(filter) => filter,
        Err(response) => return *response,
    };
    let state = shared.state();
    let matching: Vec<&SimWebhook> = state
        .webhooks
        .iter()
        .filter(|hook| filter.status.is_none_or(|status| hook.status == status))
        .filter(|hook| {
            filter.events.is_empty()
                || filter
                    .events
                    .iter()
                    .any(|e| hook.enabled_events.contains(e))
        })
        .collect();
    let data: Vec<Value> = matching
        .iter()
        .skip(filter.start)
        .take(filter.limit)
        .map(|hook| hook.to_json())
        .collect();
    let base = format!("{}/v2/webhooks", shared.base_url);
    let self_href = match &query {
        Some(query) if !query.is_empty() => format!("{base}?{query}"),
        _ => base.clone(),
    };
    let mut links = json!({"self": {"href": self_href}});
    let next_start = filter.start + filter.limit;
    if next_start < matching.len() {
        links["next"] =
            json!({"href": format!("{base}?cursor=cur_{next_start}&limit={}", filter.limit)});
    }
    axum::Json(json!({"_data": data, "_meta": {"links": links}})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn create(value: Value) -> Result<SimWebhook, String> {
        apply(Draft::default(), &body(value)).and_then(|d| finish(d, "id".into()))
    }

    #[test]
    fn defaults_are_disabled_and_token() {
        let hook = create(json!({"url": "https://x.example/h", "description": "d",
            "enabled_events": ["person.created"], "token": "Bearer t"}))
        .unwrap();
        assert_eq!(hook.status, WebhookStatus::Disabled);
        assert_eq!(hook.auth_type, WebhookAuthType::Token);
        assert_eq!(hook.token.unwrap().expose(), "Bearer t");
    }

    #[test]
    fn invalid_bodies_are_refused() {
        let base = json!({"url": "https://x.example/h", "description": "d", "enabled_events": ["person.created"], "token": "t"});
        let with = |key: &str, value: Value| {
            let mut object = base.clone();
            object[key] = value;
            object
        };
        assert!(create(with("url", json!("not a url"))).is_err());
        assert!(create(with("enabled_events", json!([]))).is_err());
        assert!(create(with("enabled_events", json!(["person.exploded"]))).is_err());
        assert!(create(with("token", json!(""))).is_err());
        assert!(create(with("status", json!("ON"))).is_err());
        let mut custom = with("auth_type", json!("CUSTOM"));
        custom["custom_headers"] = json!({"a": "1", "b": "2", "c": "3", "d": "4"});
        assert!(create(custom.clone()).is_err());
        custom["custom_headers"] = json!({"Content-Type-X": "1"});
        assert!(create(custom.clone()).is_err());
        custom["custom_headers"] = json!({"X-Auth": "1"});
        assert!(create(custom).is_ok());
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("description");
        assert!(create(missing).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let hook = create(json!({"url": "https://x.example/h", "description": "d",
            "enabled_events": ["person.created"], "token": "supersecret"}))
        .unwrap();
        assert!(!format!("{hook:?}").contains("supersecret"));
    }
}
