//! The tenant's Personio webhook subscription: exactly one, enabled, token-authenticated,
//! with every person and employment event, for the tenant's URL.

use crate::domain::Secret;
use crate::personio::{PersonioClient, PersonioError, Webhook, WebhookSpec};

/// Events the service subscribes to.
pub const EVENTS: [&str; 8] = [
    "person.created",
    "person.updated",
    "person.deleted",
    "employment.created",
    "employment.updated",
    "employment.deleted",
    "employment.started",
    "employment.terminated",
];

/// The description that marks a subscription as this tenant's.
pub fn description(tenant_id: &str) -> String {
    format!("personio-sync tenant {tenant_id}")
}

fn spec(tenant_id: &str, url: &str, token: &Secret) -> WebhookSpec {
    WebhookSpec {
        url: url.to_string(),
        description: description(tenant_id),
        status: "ENABLED".into(),
        auth_type: "TOKEN".into(),
        token: token.clone(),
        enabled_events: EVENTS.iter().map(|event| event.to_string()).collect(),
    }
}

fn is_ours(webhook: &Webhook, tenant_id: &str, url: &str) -> bool {
    webhook.url == url || webhook.description.as_deref() == Some(description(tenant_id).as_str())
}

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// A new subscription was created.
    Created,
    /// An existing one was repaired (disabled, wrong URL, events or token).
    Repaired,
    /// Duplicates were deleted so that one remains.
    Deduplicated(usize),
}

/// Why the subscription could not be ensured; each message says what to do and that
/// live updates wait for reconciliation meanwhile. No message carries the URL (its path
/// is the tenant's webhook key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// Creating answered 409 twice, the second time after a fresh list showed no
    /// subscription of this tenant.
    #[error(
        "Personio answered 409 Conflict to creating the webhook subscription, again after a fresh list showed none for this tenant: a subscription this credential cannot see holds the URL; remove it in Personio, then restart the tenant (live updates wait for reconciliation until then)"
    )]
    Conflict {
        /// Personio's trace id of the last 409.
        trace_id: Option<String>,
    },
    /// Personio refused the `http://` webhook URL (it delivers only over HTTPS).
    #[error(
        "Personio refused the webhook URL because it is not https ({message}): set server.public_url to an https:// URL and restart the service (live updates wait for reconciliation until then)"
    )]
    HttpsRequired {
        /// Personio's explanation.
        message: String,
    },
    /// Any other failure.
    #[error(
        "webhook subscription not ensured: {0} (retried automatically; live updates wait for reconciliation until then)"
    )]
    Personio(PersonioError),
}

impl SubscriptionError {
    /// Whether trying again later may succeed without an operator (Personio down or
    /// rate limiting).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Personio(error) if error.is_transient())
    }

    /// Names the https refusal of an `http://` URL; other errors pass through. A
    /// message that echoes the URL has it (and its key) replaced, so the key never
    /// reaches a log or `last_error`.
    fn from_personio(error: PersonioError, url: &str) -> Self {
        let key = url.rsplit('/').next().unwrap_or_default();
        let scrub = |message: String| {
            let message = message.replace(url, "<webhook URL>");
            if key.is_empty() {
                message
            } else {
                message.replace(key, "***")
            }
        };
        match error {
            PersonioError::Api {
                status: 400 | 422,
                message,
                ..
            } if url.starts_with("http://") => Self::HttpsRequired {
                message: scrub(message),
            },
            PersonioError::Api {
                status,
                message,
                trace_id,
            } => Self::Personio(PersonioError::Api {
                status,
                message: scrub(message),
                trace_id,
            }),
            other => Self::Personio(other),
        }
    }
}

/// Creates or repairs the subscription. The token cannot be read back, so an existing
/// subscription is always patched once with it (one call per tenant start).
///
/// A 409 on creation (e.g. created by an earlier attempt whose answer was lost) is
/// retried once after a fresh list; a second 409 is [`SubscriptionError::Conflict`].
pub async fn ensure(
    personio: &PersonioClient,
    tenant_id: &str,
    url: &str,
    token: &Secret,
) -> Result<Ensured, SubscriptionError> {
    if url.starts_with("http://") {
        tracing::warn!(
            tenant_id,
            "the webhook URL is http: real Personio accepts only https URLs"
        );
    }
    let wanted = spec(tenant_id, url, token);
    let fail = |error: PersonioError| SubscriptionError::from_personio(error, url);
    let mut conflicts = 0;
    loop {
        let ours: Vec<Webhook> = personio
            .list_webhooks()
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|webhook| is_ours(webhook, tenant_id, url))
            .collect();
        if let Some((keep, extra)) = ours.split_first() {
            for duplicate in extra {
                personio.delete_webhook(&duplicate.id).await.map_err(fail)?;
            }
            personio
                .update_webhook(&keep.id, &wanted)
                .await
                .map_err(fail)?;
            return Ok(if extra.is_empty() {
                Ensured::Repaired
            } else {
                Ensured::Deduplicated(extra.len())
            });
        }
        match personio.create_webhook(&wanted).await {
            Ok(_) => return Ok(Ensured::Created),
            Err(PersonioError::Conflict { trace_id, .. }) => {
                conflicts += 1;
                tracing::warn!(
                    tenant_id,
                    conflicts,
                    trace_id = trace_id.as_deref().unwrap_or(""),
                    "Personio answered 409 to creating the webhook subscription"
                );
                if conflicts >= 2 {
                    return Err(SubscriptionError::Conflict { trace_id });
                }
            }
            Err(error) => return Err(fail(error)),
        }
    }
}

/// Deletes this tenant's subscriptions.
pub async fn remove(
    personio: &PersonioClient,
    tenant_id: &str,
    url: &str,
) -> Result<usize, PersonioError> {
    let mut removed = 0;
    for webhook in personio.list_webhooks().await? {
        if is_ours(&webhook, tenant_id, url) {
            personio.delete_webhook(&webhook.id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named_and_never_echo_the_webhook_key() {
        let url = "http://sync.example.com/webhooks/personio/0123abcd";
        let refused = SubscriptionError::from_personio(
            PersonioError::Api {
                status: 422,
                message: format!("url {url} must be https"),
                trace_id: None,
            },
            url,
        );
        assert!(matches!(refused, SubscriptionError::HttpsRequired { .. }));
        let text = refused.to_string();
        assert!(
            text.contains("server.public_url") && !text.contains("0123abcd"),
            "{text}"
        );
        let https = url.replace("http://", "https://");
        let other = SubscriptionError::from_personio(
            PersonioError::Api {
                status: 422,
                message: "bad key 0123abcd".into(),
                trace_id: None,
            },
            &https,
        );
        assert!(matches!(other, SubscriptionError::Personio(_)));
        assert!(!other.to_string().contains("0123abcd"));
        assert!(!other.is_transient());
        let down = SubscriptionError::from_personio(PersonioError::RateLimited, url);
        assert!(down.is_transient());
        assert!(!SubscriptionError::Conflict { trace_id: None }.is_transient());
    }
}
