//! Invitations to connect a tenant to Personio, in the `meta` tree under
//! `invite\0<sha256 of the token, hex>`: only the token's hash is stored, so a copy of the
//! database opens no connect page. Lookup is by hash (no comparison of tokens at all).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

/// Key prefix of an invitation in `meta`.
const INVITATION_PREFIX: &str = "invite\0";

/// One stored invitation (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// The tenant it connects.
    pub tenant_id: String,
    /// Whom it was sent to, if the operator said.
    #[serde(default)]
    pub email: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; the link opens nothing from then on.
    pub expires_at: String,
    /// Revoked by an operator.
    #[serde(default)]
    pub revoked: bool,
    /// When a connection was made through it (RFC 3339); it may still be opened (the
    /// web layer then shows the app's overview).
    #[serde(default)]
    pub used_at: Option<String>,
}

impl Store {
    /// The invitation whose token hashes to `hash` (hex).
    pub async fn invitation(&self, hash: &str) -> Result<Option<InvitationRecord>, StoreError> {
        let key = format!("{INVITATION_PREFIX}{hash}");
        self.backend
            .meta_get(key.as_bytes())
            .await?
            .map(|value| decode(key.as_bytes(), &value))
            .transpose()
    }

    /// Stores an invitation under its token's hash and makes it durable.
    pub async fn put_invitation(
        &self,
        hash: &str,
        record: &InvitationRecord,
    ) -> Result<(), StoreError> {
        let key = format!("{INVITATION_PREFIX}{hash}");
        self.backend
            .meta_insert(key.as_bytes(), encode(record))
            .await?;
        self.flush().await
    }

    /// Every invitation of `tenant_id`, by hash.
    pub async fn invitations_of(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<(String, InvitationRecord)>, StoreError> {
        let mut found = Vec::new();
        for (key, value) in self
            .backend
            .meta_scan_prefix(INVITATION_PREFIX.as_bytes())
            .await?
        {
            let record: InvitationRecord = decode(&key, &value)?;
            if record.tenant_id == tenant_id {
                let hash = String::from_utf8_lossy(&key[INVITATION_PREFIX.len()..]).into_owned();
                found.push((hash, record));
            }
        }
        Ok(found)
    }

    /// Removes every invitation of `tenant_id` (not flushed: the caller flushes).
    pub(crate) async fn remove_invitations_of(&self, tenant_id: &str) -> Result<(), StoreError> {
        for (hash, _) in self.invitations_of(tenant_id).await? {
            let key = format!("{INVITATION_PREFIX}{hash}");
            self.backend.meta_remove(key.as_bytes()).await?;
        }
        Ok(())
    }
}
