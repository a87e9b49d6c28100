//! The webhook subscription model of the Personio simulator: subscriptions, their
//! status and authentication, and the record of each delivery attempt. The webhook routes
//! manage them; the delivery module sends to them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::secret::Secret;

/// Event names a subscription may list.
pub const KNOWN_EVENTS: &[&str] = &[
    "person.created",
    "person.updated",
    "person.deleted",
    "employment.created",
    "employment.updated",
    "employment.deleted",
    "employment.started",
    "employment.terminated",
    "absence-period.created",
    "absence-period.updated.timerange",
    "absence-period.updated.status",
    "absence-period.deleted",
    "attendance-period.created",
    "attendance-period.updated",
    "attendance-period.deleted",
];

/// Header names custom headers may not equal or start with (case-insensitive).
pub(super) const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "content-type",
];

/// Whether a subscription receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    /// Deliveries are sent.
    Enabled,
    /// No delivery (the default on create).
    Disabled,
}

impl WebhookStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "ENABLED" => Some(Self::Enabled),
            "DISABLED" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// How deliveries authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAuthType {
    /// No header.
    None,
    /// `Authorization: <token>` verbatim (the default).
    Token,
    /// Up to three custom headers.
    Custom,
}

impl WebhookAuthType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Token => "TOKEN",
            Self::Custom => "CUSTOM",
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "NONE" => Some(Self::None),
            "TOKEN" => Some(Self::Token),
            "CUSTOM" => Some(Self::Custom),
            _ => None,
        }
    }
}

/// A registered subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWebhook {
    /// uuid-shaped id.
    pub id: String,
    /// Delivery URL.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Enabled or disabled.
    pub status: WebhookStatus,
    /// Delivery authentication.
    pub auth_type: WebhookAuthType,
    /// The token sent verbatim in `Authorization` (with `TOKEN`).
    pub token: Option<Secret>,
    /// Custom headers (with `CUSTOM`).
    pub custom_headers: BTreeMap<String, Secret>,
    /// Subscribed event names.
    pub enabled_events: Vec<String>,
}

impl SimWebhook {
    /// The Webhook object as the API returns it.
    pub(super) fn to_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .custom_headers
            .iter()
            .map(|(name, value)| (name.clone(), json!(value.expose())))
            .collect();
        json!({
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "status": self.status.as_str(),
            "auth_type": self.auth_type.as_str(),
            "token": self.token.as_ref().map(Secret::expose),
            "custom_headers": headers,
            "enabled_events": self.enabled_events,
        })
    }
}

/// Result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer: timeout, connection error, or an unsendable header.
    Error(String),
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// Subscription id.
    pub webhook_id: String,
    /// Where it was sent.
    pub url: String,
    /// The event.
    pub event_name: String,
    /// The event payload (ids only).
    pub payload: Value,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// What happened.
    pub outcome: DeliveryOutcome,
}
