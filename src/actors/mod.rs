//! The actor tree:
//!
//! ```text
//! Supervisor (supervisor.rs)
//! └── TenantActor, one per tenant (tenant/mod.rs, messages in tenant/messages.rs)
//!     ├── InviteScheduler (tenant/scheduler.rs): wakes the tenant when due work is due
//!     └── TeamMapper (tenant/team_mapper.rs): serialises the tenant's team writes
//! ```
//!
//! Tenants publish their state in the shared [`status::TenantViews`]; the webhook front
//! door finds a tenant and wakes its actor through the [`router::WebhookRouter`].

pub mod router;
pub mod status;
pub mod supervisor;
pub mod tenant;
