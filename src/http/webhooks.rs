//! The webhook front door (contract §4): `POST /webhooks/personio/{key}`. Verifies the
//! per-tenant token in constant time and, for a tenant with a signing secret, the
//! delivery's HMAC signature and its freshness (assumed contract,
//! [`crate::personio::assumed`]), validates the delivery, stores it in the tenant's
//! inbox and makes it durable before answering 200, then wakes the tenant. Neither the
//! supervisor nor the tenant is on this path, so the answer takes milliseconds whatever
//! the tenant is doing.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

pub use super::delivery::parse_delivery;
use crate::metrics;
use crate::personio::assumed;
use crate::store::inbox::InboxEvent;

use super::AppState;

/// The 200's body, `{"status":"stored"}`, written once.
const STORED_BODY: &str = r#"{"status":"stored"}"#;

/// The answer to a stored delivery (also what the load tool's bare endpoint answers,
/// so the two differ only in the work between request and answer).
pub fn stored_response() -> Response {
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        STORED_BODY,
    )
        .into_response()
}

/// Largest accepted delivery.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `Retry-After` (seconds) of the 503 for a full inbox.
const INBOX_FULL_RETRY_AFTER: &str = "60";

/// `Retry-After` (seconds) of the 503 for a tenant whose DELETE is pending: the admin
/// API waits at most 10 s for the supervisor, so a retry then finds it settled.
const CLOSING_RETRY_AFTER: &str = "15";

fn answer(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

/// Handles one delivery.
pub async fn receive(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = receive_inner(&state, &key, &headers, body).await;
    metrics::webhook_received(response.status().as_u16());
    response
}

async fn receive_inner(state: &AppState, key: &str, headers: &HeaderMap, body: Body) -> Response {
    let Some(route) = state.router.webhook_route(key) else {
        return answer(StatusCode::NOT_FOUND, "not_found", "unknown webhook URL");
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(route.token.expose().as_bytes())) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong Authorization token",
        );
    }
    if route.closing {
        let mut response = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "tenant_closing",
            "this tenant is being deleted; retry later",
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(CLOSING_RETRY_AFTER),
        );
        return response;
    }
    if state.router.pending_events(&route.tenant_id) >= state.inbox_cap {
        tracing::warn!(tenant_id = %route.tenant_id, inbox_cap = state.inbox_cap, "inbox full: delivery refused");
        let mut response = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "inbox_full",
            "this tenant's inbox is full; retry later",
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(INBOX_FULL_RETRY_AFTER),
        );
        return response;
    }
    let bytes = match read_limited(body).await {
        Ok(bytes) => bytes,
        Err(BodyError::Incomplete) => {
            // The client hung up or missed the body deadline (the server answers 408 for
            // the latter itself); counted apart from oversized deliveries.
            return answer(
                StatusCode::REQUEST_TIMEOUT,
                "incomplete_body",
                "the delivery's body did not arrive completely",
            );
        }
        Err(BodyError::TooLarge) => {
            let mut response = answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a delivery may not exceed {MAX_BODY_BYTES} bytes"),
            );
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return response;
        }
    };
    if let Some(secret) = &route.signing_secret {
        let header = |name: &str| headers.get(name).map(|value| value.as_bytes());
        let verified = assumed::verify(
            secret.expose().as_bytes(),
            header(assumed::TIMESTAMP_HEADER),
            header(assumed::SIGNATURE_HEADER),
            &bytes,
            state.services.clock.now().timestamp(),
        );
        if let Err(reason) = verified {
            tracing::warn!(tenant_id = %route.tenant_id, reason = %reason, "webhook signature refused");
            return answer(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                reason.to_string(),
            );
        }
    }
    let event = match parse_delivery(&bytes) {
        Ok(event) => InboxEvent {
            received_at: state.services.clock.now().to_rfc3339(),
            ..event
        },
        Err(reason) => return answer(StatusCode::BAD_REQUEST, "bad_request", reason),
    };
    // Copied for the log line only when it is written.
    let logged = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (event.event_name.clone(), event.person_id.clone()));
    if let Err(error) = state
        .store
        .append_event(route.tenant_id.clone(), event)
        .await
    {
        tracing::error!(tenant_id = %route.tenant_id, error = %error, "webhook not stored");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event could not be stored; retry later",
        );
    }
    state.router.event_stored(&route.tenant_id);
    if let Some((event_name, person_id)) = logged {
        tracing::debug!(tenant_id = %route.tenant_id, event = %event_name, person_id = ?person_id, "webhook stored");
    }
    stored_response()
}

/// Up to this much of an oversize body is read (and dropped) before the 413, so the
/// sender, still writing, can read the answer instead of seeing a broken pipe.
const DRAIN_LIMIT_BYTES: usize = 1024 * 1024;

/// The body if it fits in [`MAX_BODY_BYTES`]; `None` (after draining a bounded amount)
/// if it does not or cannot be read.
/// Why a delivery's body was not read.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The body stream failed: the client hung up or missed the body deadline.
    Incomplete,
}

async fn read_limited(body: Body) -> Result<axum::body::Bytes, BodyError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Incomplete)?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT_BYTES {
            return Err(BodyError::TooLarge);
        }
    }
    if seen <= MAX_BODY_BYTES {
        Ok(axum::body::Bytes::from(kept))
    } else {
        Err(BodyError::TooLarge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[tokio::test]
    async fn a_body_that_breaks_off_is_incomplete_not_too_large() {
        let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
            Ok(b"{\"company_id\": 1".as_slice()),
            Err(std::io::Error::other("client hung up")),
        ];
        let broken = Body::from_stream(futures::stream::iter(chunks));
        assert_eq!(read_limited(broken).await, Err(BodyError::Incomplete));
        let large = Body::from(vec![b' '; MAX_BODY_BYTES + 1]);
        assert_eq!(read_limited(large).await, Err(BodyError::TooLarge));
        let fine = Body::from(b"{}".to_vec());
        assert_eq!(read_limited(fine).await.as_deref(), Ok(b"{}".as_slice()));
    }

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn person_ids_are_read_from_every_known_key() {
        let base = |event: &str, payload: Value| {
            body(
                json!({"company_id": "1", "event_name": event, "occurred_at": "2025-03-01T10:15:30Z", "payload": payload, "meta": {}}),
            )
        };
        let read =
            |event: &str, payload: Value| parse_delivery(&base(event, payload)).unwrap().person_id;
        assert_eq!(
            read("person.updated", json!({"id": "4711"})).as_deref(),
            Some("4711")
        );
        assert_eq!(
            read("person.updated", json!({"id": 4711})).as_deref(),
            Some("4711")
        );
        assert_eq!(
            read(
                "employment.updated",
                json!({"id": "uuid", "person_id": "12"})
            )
            .as_deref(),
            Some("12")
        );
        assert_eq!(
            read("employment.updated", json!({"personId": 13})).as_deref(),
            Some("13")
        );
        assert_eq!(
            read("employment.updated", json!({"employee_id": "14"})).as_deref(),
            Some("14")
        );
        assert_eq!(read("employment.updated", json!({"id": "uuid"})), None);
    }

    #[test]
    fn malformed_deliveries_name_the_problem() {
        assert!(
            parse_delivery(b"not json")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(parse_delivery(b"[]").unwrap_err().contains("object"));
        let missing = parse_delivery(&body(
            json!({"company_id": "1", "occurred_at": "2025-03-01T10:15:30Z", "payload": {}}),
        ))
        .unwrap_err();
        assert!(missing.contains("event_name"), "{missing}");
        let wrong = parse_delivery(&body(json!({"company_id": "1", "event_name": 3, "occurred_at": "2025-03-01T10:15:30Z", "payload": {}}))).unwrap_err();
        assert!(wrong.contains("event_name"), "{wrong}");
        let date = parse_delivery(&body(json!({"company_id": "1", "event_name": "x", "occurred_at": "yesterday", "payload": {}}))).unwrap_err();
        assert!(date.contains("occurred_at"), "{date}");
        let payload = parse_delivery(&body(json!({"company_id": "1", "event_name": "x", "occurred_at": "2025-03-01T10:15:30Z", "payload": "4711"}))).unwrap_err();
        assert!(payload.contains("payload"), "{payload}");
    }
}
