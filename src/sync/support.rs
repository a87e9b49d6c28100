//! Which assumed Learn Amp contracts (invitation route, `leaveDate`, avatar route; see
//! `learnamp/assumed.rs`) this tenant's account lacks. A missing one is recorded in the
//! tenant's store with the time it was found missing (shown as `learnamp_unsupported` in
//! the tenant view), logged once, and skipped; a day later (by the tenant's clock) the
//! next use tries it again, and a success forgets the record.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::learnamp::Assumed;
use crate::store::{StoreError, TenantStore};

/// How long a contract found missing is skipped before it is tried again.
pub const PROBE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The support records of one tenant, judged at `now`.
#[derive(Clone, Copy)]
pub struct Support<'a> {
    store: &'a TenantStore,
    now: DateTime<Utc>,
    tenant_id: &'a str,
}

impl<'a> Support<'a> {
    /// The records of `store`, judged at `now`.
    pub fn new(store: &'a TenantStore, now: DateTime<Utc>, tenant_id: &'a str) -> Self {
        Self {
            store,
            now,
            tenant_id,
        }
    }

    /// Whether `assumed` was found missing less than [`PROBE_AFTER`] ago, so that it is
    /// not tried now.
    pub fn skipped(&self, assumed: Assumed) -> Result<bool, StoreError> {
        let records = self.store.learnamp_unsupported()?;
        Ok(records
            .get(assumed.name())
            .is_some_and(|since| skipped_at(since, self.now)))
    }

    /// Records that `assumed` is missing now. Logged (and written to the history) the
    /// first time only; a failed daily probe just moves the time.
    pub fn missing(&self, assumed: Assumed) -> Result<(), StoreError> {
        let newly = self
            .store
            .mark_learnamp_unsupported(assumed.name(), &self.now.to_rfc3339())?;
        if newly {
            warn!(
                tenant_id = self.tenant_id,
                contract = assumed.name(),
                "Learn Amp does not offer the assumed {}; carrying on without it and trying again in a day",
                assumed.contract()
            );
            self.store.append_history(&format!(
                "Learn Amp does not offer the assumed {}; carrying on without it",
                assumed.contract()
            ))?;
        }
        Ok(())
    }

    /// Whether a probe found `assumed` present less than [`PROBE_AFTER`] ago.
    pub fn verified_recently(&self, assumed: Assumed) -> Result<bool, StoreError> {
        Ok(self
            .store
            .learnamp_verified(assumed.name())?
            .is_some_and(|at| skipped_at(&at, self.now)))
    }

    /// Records that a probe found `assumed` present (or could not tell) now.
    pub fn verified(&self, assumed: Assumed) -> Result<(), StoreError> {
        self.store
            .mark_learnamp_verified(assumed.name(), &self.now.to_rfc3339())
    }

    /// Records that `assumed` worked: a record of it missing is forgotten.
    pub fn works(&self, assumed: Assumed) -> Result<(), StoreError> {
        // Read first: the common case (nothing recorded) writes nothing.
        if !self
            .store
            .learnamp_unsupported()?
            .contains_key(assumed.name())
        {
            return Ok(());
        }
        if self.store.clear_learnamp_unsupported(assumed.name())? {
            info!(
                tenant_id = self.tenant_id,
                contract = assumed.name(),
                "Learn Amp now offers the assumed {}",
                assumed.contract()
            );
        }
        Ok(())
    }
}

/// Whether a contract found missing at `since` (RFC 3339) is still skipped at `now`. An
/// unreadable time counts as long ago (tried again).
fn skipped_at(since: &str, now: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(since)
        .is_ok_and(|since| now.signed_duration_since(since) < PROBE_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn a_missing_contract_is_skipped_for_a_day_then_tried_again() {
        let store = Store::temporary().await.unwrap().tenant("t").await.unwrap();
        let found: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let support = Support::new(&store, found, "t");
        assert!(!support.skipped(Assumed::Invitation).unwrap());
        support.missing(Assumed::Invitation).unwrap();
        support.missing(Assumed::Invitation).unwrap();
        assert!(support.skipped(Assumed::Invitation).unwrap());
        assert!(!support.skipped(Assumed::Avatar).unwrap());
        // Logged once: one history line for two findings.
        assert_eq!(store.history().unwrap().len(), 1);
        let later = Support::new(&store, found + chrono::TimeDelta::hours(23), "t");
        assert!(later.skipped(Assumed::Invitation).unwrap());
        let next_day = Support::new(&store, found + PROBE_AFTER, "t");
        assert!(!next_day.skipped(Assumed::Invitation).unwrap());
        // The probe fails again: skipped for another day from then.
        next_day.missing(Assumed::Invitation).unwrap();
        assert!(next_day.skipped(Assumed::Invitation).unwrap());
        assert_eq!(store.history().unwrap().len(), 1);
        next_day.works(Assumed::Invitation).unwrap();
        assert!(store.learnamp_unsupported().unwrap().is_empty());
    }
}
