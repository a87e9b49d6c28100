//! Delivering webhook events with Personio's rules (reference §7): each enabled
//! subscription listing the event gets `{company_id, event_name, occurred_at, payload,
//! meta}` with its token verbatim in `Authorization` (or its custom headers), a 3 s
//! timeout, no redirects, and retries on timeouts, transport errors and 5xx except 501.
//! With a signing secret set, deliveries carry the signature headers of
//! [`signing`](super::signing).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::{Value, json};

use super::Shared;
use super::signing as assumed;
use super::subscription::{
    DeliveryOutcome, DeliveryRecord, SimWebhook, WebhookAuthType, WebhookStatus,
};

pub(super) fn delivery_body(shared: &Shared, event_name: &str, payload: Value) -> Value {
    json!({
        "company_id": shared.company_id,
        "event_name": event_name,
        "occurred_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "payload": payload,
        "meta": {},
    })
}

/// Sends `event_name` to every enabled subscription listing it, each in its own task.
pub(crate) fn dispatch(shared: &Arc<Shared>, event_name: &str, payload: Value) {
    let targets: Vec<SimWebhook> = shared
        .state()
        .webhooks
        .iter()
        .filter(|hook| {
            hook.status == WebhookStatus::Enabled
                && hook.enabled_events.iter().any(|event| event == event_name)
        })
        .cloned()
        .collect();
    if targets.is_empty() {
        return;
    }
    let body = delivery_body(shared, event_name, payload);
    for hook in targets {
        shared.runtime.spawn(deliver(
            shared.clone(),
            hook,
            event_name.to_string(),
            body.clone(),
        ));
    }
}

/// Whether an outcome is retried: timeouts, transport errors, and 5xx except 501.
fn should_retry(outcome: &DeliveryOutcome) -> bool {
    match outcome {
        DeliveryOutcome::Status(status) => *status >= 500 && *status != 501,
        DeliveryOutcome::Error(_) => true,
    }
}

async fn send_once(shared: &Shared, hook: &SimWebhook, body: &Value) -> DeliveryOutcome {
    let text = body.to_string();
    let signing_secret = shared.state().signing_secret.clone();
    let mut request = shared
        .http
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = signing_secret {
        // Signed at each attempt, so a retry carries a fresh timestamp.
        let now = Utc::now().timestamp();
        let signature = assumed::sign(secret.expose().as_bytes(), now, text.as_bytes());
        request = request
            .header(assumed::TIMESTAMP_HEADER, now.to_string())
            .header(assumed::SIGNATURE_HEADER, signature);
    }
    let mut request = request.body(text);
    match hook.auth_type {
        WebhookAuthType::Token => {
            if let Some(token) = &hook.token {
                let Ok(value) = reqwest::header::HeaderValue::from_str(token.expose()) else {
                    return DeliveryOutcome::Error("token is not a valid header value".into());
                };
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        WebhookAuthType::Custom => {
            for (name, value) in &hook.custom_headers {
                let Ok(value) = reqwest::header::HeaderValue::from_str(value.expose()) else {
                    return DeliveryOutcome::Error("custom header is not a valid value".into());
                };
                request = request.header(name.as_str(), value);
            }
        }
        WebhookAuthType::None => {}
    }
    match request.send().await {
        Ok(response) => DeliveryOutcome::Status(response.status().as_u16()),
        Err(error) if error.is_timeout() => DeliveryOutcome::Error("timeout".into()),
        Err(error) => DeliveryOutcome::Error(error.without_url().to_string()),
    }
}

/// Delivers one event to one subscription, retrying per Personio's rules.
pub(super) async fn deliver(
    shared: Arc<Shared>,
    hook: SimWebhook,
    event_name: String,
    body: Value,
) {
    let delays = shared.state().retry_delays.clone();
    let mut attempt: u32 = 1;
    loop {
        if shared.shut_down.load(Ordering::Relaxed) {
            return;
        }
        let outcome = send_once(&shared, &hook, &body).await;
        tracing::debug!(webhook_id = %hook.id, event = %event_name, attempt, outcome = ?outcome, "personio sim: delivery");
        let retry = should_retry(&outcome);
        shared.state().deliveries.push(DeliveryRecord {
            webhook_id: hook.id.clone(),
            url: hook.url.clone(),
            event_name: event_name.clone(),
            payload: body["payload"].clone(),
            attempt,
            outcome,
        });
        let Some(delay) = delays.get(attempt as usize - 1).copied().filter(|_| retry) else {
            return;
        };
        tokio::time::sleep(delay).await;
        let still_there = shared.state().webhooks.iter().any(|h| h.id == hook.id);
        if !still_there {
            return;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        assert!(should_retry(&DeliveryOutcome::Status(503)));
        assert!(should_retry(&DeliveryOutcome::Status(500)));
        assert!(!should_retry(&DeliveryOutcome::Status(501)));
        assert!(!should_retry(&DeliveryOutcome::Status(404)));
        assert!(!should_retry(&DeliveryOutcome::Status(302)));
        assert!(!should_retry(&DeliveryOutcome::Status(200)));
        assert!(should_retry(&DeliveryOutcome::Error("timeout".into())));
    }
}
