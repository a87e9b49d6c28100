//! The actor tree: one [`supervisor::Supervisor`] owns one [`tenant::TenantActor`] per
//! tenant; tenants publish their state on the shared [`status::StatusBoard`].

pub mod status;
pub mod supervisor;
pub mod tenant;
