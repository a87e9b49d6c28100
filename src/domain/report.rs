//! What a full sync did, as shown in the tenant view's `last_sync`.

use serde::{Deserialize, Serialize};

/// Counts and times of one full sync (initial or reconciliation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Always `"full"`.
    pub kind: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Learn Amp users created.
    pub created: u64,
    /// Users updated (adoptions included).
    pub updated: u64,
    /// Users deactivated.
    pub deactivated: u64,
    /// Users reactivated.
    pub reactivated: u64,
    /// Invitations sent.
    pub invited: u64,
    /// Employees that needed no write.
    pub unchanged: u64,
    /// Employees whose change failed (retried by the next sync) or clashed.
    pub failed: u64,
}
