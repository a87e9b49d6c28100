//! Sessions of the customer pages in `meta`, under `session\0<SHA-256 of the session
//! id, hex>`: the session id itself is never stored, and what a session keeps that is
//! secret (its sign-in in progress, the invitation token that opened it) is sealed
//! under the store's key. Stored in `meta` so every node of a cluster serves a
//! signed-in browser, and a session survives a restart.

use serde::{Deserialize, Serialize};

use super::crypto::encode_hex;
use super::{Store, StoreError, decode, encode};

/// Key prefix of a session in `meta`.
pub(crate) const SESSION_PREFIX: &str = "session\0";

/// One stored session (the id is the key's hash; never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The one tenant the session may see and act for.
    pub tenant_id: String,
    /// The token every form of the session carries.
    pub csrf: String,
    /// Start, in nanoseconds since the Unix epoch.
    pub created_unix_nanos: i64,
    /// What the web layer keeps secret (sealed at rest), if anything.
    pub secret: Option<Vec<u8>>,
}

/// The stored form of a [`SessionRecord`].
#[derive(Serialize, Deserialize)]
struct Stored {
    tenant_id: String,
    csrf: String,
    created_unix_nanos: i64,
    #[serde(default)]
    sealed: Option<String>,
}

fn key_of(hash: &[u8; 32]) -> Vec<u8> {
    format!("{SESSION_PREFIX}{}", encode_hex(hash)).into_bytes()
}

/// The hash a stored key names (`None` for a malformed key).
fn hash_of(key: &[u8]) -> Option<[u8; 32]> {
    let hex = std::str::from_utf8(key.strip_prefix(SESSION_PREFIX.as_bytes())?).ok()?;
    super::crypto::decode_hex(hex)?.try_into().ok()
}

impl Store {
    /// The stored form of `record` under `key` (its secret sealed, bound to the key).
    fn seal_session(&self, key: &[u8], record: &SessionRecord) -> Result<Vec<u8>, StoreError> {
        let sealed = match &record.secret {
            Some(secret) => Some(self.secrets.seal(secret, key)?),
            None => None,
        };
        Ok(encode(&Stored {
            tenant_id: record.tenant_id.clone(),
            csrf: record.csrf.clone(),
            created_unix_nanos: record.created_unix_nanos,
            sealed,
        }))
    }

    /// The record stored under `key`; `None` when its secret does not open (sealed
    /// under another key, or damaged): such a session is no session at all, never one
    /// without its sign-in or invitation.
    fn open_session(&self, key: &[u8], value: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let stored: Stored = decode(key, value)?;
        let secret = match stored.sealed {
            Some(sealed) => match self.secrets.open(&sealed, key) {
                Some(secret) => Some(secret),
                None => {
                    tracing::warn!(
                        "a stored session's secret does not open; the session is ignored"
                    );
                    return Ok(None);
                }
            },
            None => None,
        };
        Ok(Some(SessionRecord {
            tenant_id: stored.tenant_id,
            csrf: stored.csrf,
            created_unix_nanos: stored.created_unix_nanos,
            secret,
        }))
    }

    /// Stores the session whose id hashes to `hash` (on sled durable at the next flush).
    pub async fn put_session(
        &self,
        hash: &[u8; 32],
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        let key = key_of(hash);
        let value = self.seal_session(&key, record)?;
        self.backend.meta_insert(&key, value).await
    }

    /// The session whose id hashes to `hash`.
    pub async fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let key = key_of(hash);
        match self.backend.meta_get(&key).await? {
            Some(value) => self.open_session(&key, &value),
            None => Ok(None),
        }
    }

    /// Replaces the session under `hash` by `change(current)` only if nobody changed it
    /// meanwhile (retried until then); what `change` answered for the record it was
    /// applied to, or `None` when there is no such session.
    pub async fn update_session<T>(
        &self,
        hash: &[u8; 32],
        mut change: impl FnMut(&mut SessionRecord) -> T,
    ) -> Result<Option<T>, StoreError> {
        let key = key_of(hash);
        loop {
            let Some(current) = self.backend.meta_get(&key).await? else {
                return Ok(None);
            };
            let Some(mut record) = self.open_session(&key, &current)? else {
                return Ok(None);
            };
            let answer = change(&mut record);
            let next = self.seal_session(&key, &record)?;
            if self
                .backend
                .meta_compare_and_swap(&key, Some(&current), Some(next))
                .await?
            {
                return Ok(Some(answer));
            }
        }
    }

    /// Every stored session, by the hash of its id (malformed entries skipped).
    pub async fn sessions(&self) -> Result<Vec<([u8; 32], SessionRecord)>, StoreError> {
        let mut found = Vec::new();
        for (key, value) in self
            .backend
            .meta_scan_prefix(SESSION_PREFIX.as_bytes())
            .await?
        {
            let Some(hash) = hash_of(&key) else { continue };
            match self.open_session(&key, &value) {
                Ok(Some(record)) => found.push((hash, record)),
                Ok(None) => {}
                Err(error) => tracing::warn!(error = %error, "stored session unreadable; skipped"),
            }
        }
        Ok(found)
    }

    /// Removes the session whose id hashes to `hash` (on sled durable at the next
    /// flush).
    pub async fn remove_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.backend.meta_remove(&key_of(hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_stored_by_hash_with_its_secret_sealed() {
        let store = Store::temporary().await.unwrap();
        let hash = [7u8; 32];
        let record = SessionRecord {
            tenant_id: "acme".into(),
            csrf: "c".repeat(64),
            created_unix_nanos: 1_700_000_000_000_000_000,
            secret: Some(b"pkce-verifier-and-token".to_vec()),
        };
        store.put_session(&hash, &record).await.unwrap();
        assert_eq!(store.session(&hash).await.unwrap(), Some(record.clone()));
        // At rest: keyed by the hash, the secret nowhere in clear, never exported.
        let value = store
            .backend
            .meta_get(&key_of(&hash))
            .await
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&value).contains("pkce-verifier"));
        assert!(
            store
                .other_meta_entries()
                .await
                .unwrap()
                .iter()
                .all(|(key, _)| !key.starts_with(SESSION_PREFIX.as_bytes()))
        );
        // A secret that does not open makes no session (never one without its secret).
        let mut damaged = value.clone();
        let at = damaged.len() - 10;
        damaged[at] = if damaged[at] == b'0' { b'1' } else { b'0' };
        store
            .backend
            .meta_insert(&key_of(&[8u8; 32]), damaged)
            .await
            .unwrap();
        assert_eq!(store.session(&[8u8; 32]).await.unwrap(), None);
        store.remove_session(&[8u8; 32]).await.unwrap();
        // Updated in place, listed, removed.
        let taken = store
            .update_session(&hash, |record| record.secret.take())
            .await
            .unwrap();
        assert_eq!(taken, Some(Some(b"pkce-verifier-and-token".to_vec())));
        assert_eq!(store.session(&hash).await.unwrap().unwrap().secret, None);
        assert_eq!(store.sessions().await.unwrap().len(), 1);
        store.remove_session(&hash).await.unwrap();
        assert_eq!(store.session(&hash).await.unwrap(), None);
        assert_eq!(store.update_session(&hash, |_| ()).await.unwrap(), None);
    }
}
