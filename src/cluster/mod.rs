//! Tenants leased across nodes (several `serve` processes on one PostgreSQL database).
//!
//! Each tenant is run by exactly one node: the one holding its row in the `leases` table
//! (owner, epoch, expiry by the database's clock). Every node runs a
//! [`manager::LeaseManager`] that heartbeats its `nodes` row, renews its leases, takes up
//! to its fair share of free or expired ones ([`share`]) and gives up the excess; the
//! SQL lives in [`lease`]. The epoch of a lease fences the tenant's writes (the store
//! refuses a commit whose lease is no longer this node's with that epoch), so a node that
//! paused past its expiry can never write for that tenant again.

pub mod host;
pub mod lease;
pub mod manager;
pub mod share;

#[cfg(test)]
mod testdb;

/// The lease a tenant's writes are fenced by on this node: commits for the tenant go
/// through only while the lease row still names this owner with this epoch and has not
/// expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// This node's id (`leases.owner`).
    pub owner: String,
    /// The epoch this node's acquire set (`leases.epoch`).
    pub epoch: i64,
}
