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

/// Creates or repairs the subscription. The token cannot be read back, so an existing
/// subscription is always patched once with it (one call per tenant start).
pub async fn ensure(
    personio: &PersonioClient,
    tenant_id: &str,
    url: &str,
    token: &Secret,
) -> Result<Ensured, PersonioError> {
    if url.starts_with("http://") {
        tracing::warn!(
            tenant_id,
            "the webhook URL is http: real Personio accepts only https URLs"
        );
    }
    let wanted = spec(tenant_id, url, token);
    let ours: Vec<Webhook> = personio
        .list_webhooks()
        .await?
        .into_iter()
        .filter(|webhook| is_ours(webhook, tenant_id, url))
        .collect();
    let Some((keep, extra)) = ours.split_first() else {
        match personio.create_webhook(&wanted).await {
            Ok(_) => return Ok(Ensured::Created),
            // Created by an earlier attempt whose answer was lost: repair it instead.
            Err(PersonioError::Conflict { .. }) => {
                return Box::pin(ensure(personio, tenant_id, url, token)).await;
            }
            Err(error) => return Err(error),
        }
    };
    for duplicate in extra {
        personio.delete_webhook(&duplicate.id).await?;
    }
    personio.update_webhook(&keep.id, &wanted).await?;
    if extra.is_empty() {
        Ok(Ensured::Repaired)
    } else {
        Ok(Ensured::Deduplicated(extra.len()))
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
