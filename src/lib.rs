//! # personio-sync
//!
//! Keeps the users of Learn Amp in step with Personio, for many tenants from one process.
//!
//! ## Architecture
//!
//! ```text
//!            axum front door (http)                 admin API (http::admin)
//!  webhook ─► verify ─► inbox in sled ─► wake ─┐          │
//!                                              ▼          ▼
//!                         Supervisor (actors::supervisor) ── one TenantActor per tenant
//!                                                             │  owns its Personio and
//!                                                             │  Learn Amp clients and its
//!                                                             ▼  sled tree (store)
//!                                     sync::gather ─► sync::plan (pure) ─► sync::apply
//! ```
//!
//! - [`domain`] holds the pure rules (employee model, tenant spec, field mapping).
//! - [`personio`] and [`learnamp`] are the two API clients; the
//!   [`personio_sync_sim`] crate (`crates/sim`) holds faithful fake
//!   servers of both APIs used by tests, benchmarks and `personio-sync demo`.
//! - [`store`] is the only module that talks to sled.
//! - [`sync`] reads both sides, plans the changes as data, and applies the plan.
//!
//! Durability rules: what exists only in sled (the Personio id → Learn Amp id mapping,
//! the last applied record, invitations sent) is written right after the Learn Amp call
//! that caused it, so a crash at any point leads to a re-plan that adopts instead of
//! duplicating.

pub mod actors;
pub mod admin_client;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod export;
pub mod http;
pub mod learnamp;
pub mod locks;
pub mod metrics;
pub mod pacer;
pub mod personio;
pub mod retry;
pub mod store;
pub mod sync;
pub mod telemetry;
