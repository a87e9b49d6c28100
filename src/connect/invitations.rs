//! Invitations: a link `<public_url>/connect/<token>` an operator sends to the customer's
//! administrator. The token is 256 random bits (hex, URL-safe); only its SHA-256 is
//! stored (`store::invitations`), with the tenant, the optional email, the times and a
//! revoked flag. Opening looks the hash up, so no stored token is ever compared.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::domain::tenant::random_hex;
use crate::store::{InvitationRecord, Store, StoreError};

/// Days an invitation is valid when the operator does not say.
pub const DEFAULT_DAYS: u32 = 7;
/// Longest validity an operator may give, in days.
pub const MAX_DAYS: u32 = 30;
/// Random bytes of a token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Longest accepted email.
const MAX_EMAIL_CHARS: usize = 254;

/// Why an invitation could not be made, opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// No invitation has this token (never made, or its tenant was deleted).
    #[error("this invitation link is not valid")]
    Unknown,
    /// The invitation expired.
    #[error("this invitation link expired at {at}")]
    Expired {
        /// When it expired.
        at: DateTime<Utc>,
    },
    /// An operator revoked the invitation.
    #[error("this invitation link was revoked")]
    Revoked,
    /// No tenant has this id.
    #[error("no tenant with id `{0}`")]
    UnknownTenant(String),
    /// A value of the request is invalid (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InvitationError {
    /// A sentence for the customer's administrator who opened the link: what happened
    /// and what to do. No secret, no internal detail.
    pub fn customer_message(&self) -> String {
        match self {
            Self::Unknown | Self::UnknownTenant(_) => "This invitation link is not valid. Ask the person who sent it for a new invitation.".into(),
            Self::Expired { at } => format!(
                "This invitation link expired on {}. Ask the person who sent it for a new invitation.",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            Self::Revoked => "This invitation link was withdrawn. Ask the person who sent it for a new invitation.".into(),
            Self::Invalid(..) | Self::Store(_) => "The invitation could not be checked just now. Please try again in a few minutes.".into(),
        }
    }
}

/// A new invitation, as the admin API answers it. `Debug` hides the URL (it holds the
/// token).
#[derive(Clone)]
pub struct NewInvitation {
    /// `<public_url>/connect/<token>`.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("url", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An invitation that may be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvitation {
    /// The tenant it connects (the web session is bound to this tenant only).
    pub tenant_id: String,
    /// Whom it was sent to, if the operator said.
    pub email: Option<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When a connection was made through it: the web layer then shows the app's
    /// overview instead of the connect page.
    pub used_at: Option<DateTime<Utc>>,
}

/// The invitations of every tenant.
#[derive(Clone)]
pub struct Invitations {
    store: Store,
    clock: SharedClock,
    public_url: String,
}

impl Invitations {
    /// Invitations kept in `store`, judged by `clock`, linking under `public_url`.
    pub fn new(store: Store, clock: SharedClock, public_url: String) -> Self {
        Self {
            store,
            clock,
            public_url,
        }
    }

    /// Makes an invitation for tenant `tenant_id`, valid `days` days (default
    /// [`DEFAULT_DAYS`], 1–[`MAX_DAYS`]); durable on return.
    pub async fn create(
        &self,
        tenant_id: &str,
        email: Option<String>,
        days: Option<u32>,
    ) -> Result<NewInvitation, InvitationError> {
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(InvitationError::Invalid(
                "expires_in_days",
                format!("must be between 1 and {MAX_DAYS}"),
            ));
        }
        let email = email.map(|email| email.trim().to_string());
        if let Some(email) = &email
            && (email.chars().count() > MAX_EMAIL_CHARS
                || !email.contains('@')
                || email.chars().any(char::is_whitespace))
        {
            return Err(InvitationError::Invalid(
                "email",
                "must be an email address".into(),
            ));
        }
        if self.store.tenant_spec(tenant_id).await?.is_none() {
            return Err(InvitationError::UnknownTenant(tenant_id.to_string()));
        }
        let now = self.clock.now();
        let expires_at = now + chrono::Duration::days(i64::from(days));
        let token = random_hex(TOKEN_BYTES);
        let record = InvitationRecord {
            tenant_id: tenant_id.to_string(),
            email,
            created_at: now.to_rfc3339(),
            expires_at: expires_at.to_rfc3339(),
            revoked: false,
            used_at: None,
        };
        self.store.put_invitation(&hash(&token), &record).await?;
        tracing::info!(tenant_id, %expires_at, "invitation created");
        Ok(NewInvitation {
            url: format!("{}/connect/{token}", self.public_url.trim_end_matches('/')),
            expires_at,
        })
    }

    /// Revokes every open invitation of `tenant_id`; how many were open.
    pub async fn revoke_all(&self, tenant_id: &str) -> Result<usize, InvitationError> {
        if self.store.tenant_spec(tenant_id).await?.is_none() {
            return Err(InvitationError::UnknownTenant(tenant_id.to_string()));
        }
        let now = self.clock.now();
        let mut revoked = 0;
        for (hash, mut record) in self.store.invitations_of(tenant_id).await? {
            if record.revoked || expiry(&record).is_some_and(|at| at <= now) {
                continue;
            }
            record.revoked = true;
            self.store.put_invitation(&hash, &record).await?;
            revoked += 1;
        }
        tracing::info!(tenant_id, revoked, "invitations revoked");
        Ok(revoked)
    }

    /// The invitation of `token`, if it may be used now.
    pub async fn open(&self, token: &str) -> Result<OpenInvitation, InvitationError> {
        let (_, record) = self.lookup(token).await?;
        if record.revoked {
            return Err(InvitationError::Revoked);
        }
        let expires_at = expiry(&record).ok_or(InvitationError::Unknown)?;
        if expires_at <= self.clock.now() {
            return Err(InvitationError::Expired { at: expires_at });
        }
        Ok(OpenInvitation {
            tenant_id: record.tenant_id,
            email: record.email,
            expires_at,
            used_at: record.used_at.as_deref().and_then(parse_time),
        })
    }

    /// Records that a connection was made through the invitation of `token` (it stays
    /// openable until it expires).
    pub async fn mark_used(&self, token: &str) -> Result<(), InvitationError> {
        let (hash, mut record) = self.lookup(token).await?;
        record.used_at = Some(self.clock.now().to_rfc3339());
        self.store.put_invitation(&hash, &record).await?;
        Ok(())
    }

    /// The stored record of `token`, by its hash.
    async fn lookup(&self, token: &str) -> Result<(String, InvitationRecord), InvitationError> {
        if token.is_empty() || token.len() > 256 {
            return Err(InvitationError::Unknown);
        }
        let hash = hash(token);
        let record = self
            .store
            .invitation(&hash)
            .await?
            .ok_or(InvitationError::Unknown)?;
        Ok((hash, record))
    }
}

/// SHA-256 of a token, hex: the only form in which a token is stored.
pub fn hash(token: &str) -> String {
    crate::store::crypto::encode_hex(&Sha256::digest(token.as_bytes()))
}

fn expiry(record: &InvitationRecord) -> Option<DateTime<Utc>> {
    parse_time(&record.expires_at)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, TokioClock};
    use std::sync::Arc;

    async fn setup() -> (Invitations, Store) {
        let store = Store::temporary().await.unwrap();
        let spec = crate::domain::tenant::parse_spec(serde_json::json!({
            "id": "acme",
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "d"}
        }))
        .unwrap();
        assert!(store.insert_new_tenant_spec(&spec).await.unwrap());
        let clock: SharedClock = Arc::new(TokioClock::starting_at(Utc::now()));
        (
            Invitations::new(store.clone(), clock, "https://sync.example/".into()),
            store,
        )
    }

    fn token_of(url: &str) -> &str {
        url.rsplit('/').next().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_invitation_opens_until_it_expires_and_only_its_hash_is_stored() {
        let (invitations, store) = setup().await;
        let made = invitations
            .create("acme", Some("admin@acme.test".into()), Some(2))
            .await
            .unwrap();
        assert!(made.url.starts_with("https://sync.example/connect/"));
        let token = token_of(&made.url);
        assert_eq!(token.len(), 64, "256 bits as hex");
        assert!(!format!("{made:?}").contains(token));
        let open = invitations.open(token).await.unwrap();
        assert_eq!(open.tenant_id, "acme");
        assert_eq!(open.email.as_deref(), Some("admin@acme.test"));
        assert_eq!(open.used_at, None);
        let stored = store.invitations_of("acme").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].0, hash(token));
        assert!(!serde_json::to_string(&stored[0].1).unwrap().contains(token));
        assert!(matches!(
            invitations.open("0".repeat(64).as_str()).await,
            Err(InvitationError::Unknown)
        ));
        invitations.mark_used(token).await.unwrap();
        assert!(invitations.open(token).await.unwrap().used_at.is_some());
        tokio::time::advance(std::time::Duration::from_secs(2 * 86_400 + 1)).await;
        let error = invitations.open(token).await.unwrap_err();
        assert!(
            matches!(error, InvitationError::Expired { at } if at == made.expires_at),
            "{error}"
        );
        assert!(error.customer_message().contains("new invitation"));
    }

    #[tokio::test(start_paused = true)]
    async fn revoking_closes_every_open_invitation_of_the_tenant() {
        let (invitations, _store) = setup().await;
        let first = invitations.create("acme", None, None).await.unwrap();
        let second = invitations.create("acme", None, Some(30)).await.unwrap();
        assert_eq!(invitations.revoke_all("acme").await.unwrap(), 2);
        for made in [&first, &second] {
            assert!(matches!(
                invitations.open(token_of(&made.url)).await,
                Err(InvitationError::Revoked)
            ));
        }
        let third = invitations.create("acme", None, None).await.unwrap();
        assert!(invitations.open(token_of(&third.url)).await.is_ok());
        let clock = TokioClock::starting_at(Utc::now());
        assert!(third.expires_at > clock.now() + chrono::Duration::days(6));
    }

    #[tokio::test]
    async fn bad_requests_are_refused_naming_the_field() {
        let (invitations, _store) = setup().await;
        for days in [0, 31] {
            let error = invitations
                .create("acme", None, Some(days))
                .await
                .unwrap_err();
            assert!(matches!(
                error,
                InvitationError::Invalid("expires_in_days", _)
            ));
        }
        let error = invitations
            .create("acme", Some("not an email".into()), None)
            .await
            .unwrap_err();
        assert!(matches!(error, InvitationError::Invalid("email", _)));
        assert!(matches!(
            invitations.create("nope", None, None).await.unwrap_err(),
            InvitationError::UnknownTenant(_)
        ));
        assert!(matches!(
            invitations.revoke_all("nope").await.unwrap_err(),
            InvitationError::UnknownTenant(_)
        ));
    }
}
