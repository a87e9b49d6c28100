//! # personio-sync
//!
//! Keeps the users of Learn Amp in step with Personio, for many tenants from one process.
//!
//! ## The actor tree
//!
//! ```text
//! app (app.rs: start-up, shutdown; app/services.rs: what every tenant shares)
//! ├── http::server: one accept loop with deadlines and caps, serving
//! │   ├── http::webhooks   POST /webhooks/personio/{key}   (the front door)
//! │   └── http::admin      /admin/…, /healthz, /metrics
//! ├── cluster::manager::LeaseManager (PostgreSQL only): renews this node's tenant
//! │   leases, takes its fair share, starts and stops tenants through the supervisor
//! └── actors::supervisor::Supervisor: spawns, restarts (backoff) and stops tenants
//!     └── actors::tenant::TenantActor, one per tenant: its clients, its sled tree
//!         ├── actors::tenant::scheduler::InviteScheduler: wakes the tenant when
//!         │   invitations or deactivations fall due
//!         └── actors::tenant::team_mapper::TeamMapper: one team write at a time
//! ```
//!
//! ## Two paths
//!
//! A full sync (initial, reconciliation, `POST /admin/tenants/{id}/sync`):
//!
//! ```text
//! TenantActor ─► sync::gather (both APIs read) ─► sync::plan (pure: steps of actions)
//!             ─► sync::apply (actions → Learn Amp calls, records stored after each)
//! ```
//!
//! One webhook:
//!
//! ```text
//! http::webhooks (key, token, signature, delivery parsed by http::delivery)
//!   ─► store::inbox push + store::flusher group commit (fsync) ─► 200
//!   ─► actors::router wakes the tenant (TenantMsg::InboxWake, coalesced)
//!   ─► sync::live::drain (one round: events coalesced per person, parked people held)
//!   ─► sync::live::apply_person (fetch from Personio, plan, apply)
//!   ─► store: record written, then the events removed from the inbox
//! ```
//!
//! A newcomer's tour of one webhook, five files in order: `src/http/webhooks.rs`,
//! `src/store/flusher.rs`, `src/actors/tenant/mod.rs` (the `InboxWake` arm),
//! `src/sync/live/drain.rs`, `src/sync/live.rs` (then `src/sync/apply.rs` for the calls).
//!
//! ## Durability rules, and where each is enforced
//!
//! - **200 only after the inbox write is flushed**: `http::webhooks` answers after
//!   `store::flusher::GroupFlusher` reports the group commit that covers the event as
//!   flushed (`src/store/flusher.rs`); a failed flush answers 503.
//! - **An invitation's intent is flushed before the call**: `sync::invite::write_intent`
//!   (`src/sync/invite.rs`) is the only writer of `invite_started`, and every path that
//!   may invite (create with the documented invite, the assumed invitation route, the
//!   operator's manual invite) goes through it; after a crash, Learn Amp's own status
//!   decides and nothing is sent twice (the route is called only for a user Learn Amp
//!   shows not invited).
//! - **An event leaves the inbox only after its effect is recorded**:
//!   `sync::live::drain` (`src/sync/live/drain.rs`) removes a round's events only for
//!   people whose apply returned and whose record was stored; a parked person's events
//!   stay, in order.
//! - **A write to Learn Amp is followed by its record** (`sync::apply`): what exists only
//!   in sled (Personio id → Learn Amp id, the last applied fields, invitations) is
//!   written right after the call that caused it, so a crash between the two leads to a
//!   re-plan that adopts instead of duplicating, and a full sync compares with Learn
//!   Amp's own listing so a lost record is repaired.
//!
//! ## Modules
//!
//! - [`domain`]: the pure rules (employee model, tenant spec, field mapping).
//! - [`api_client`]: what both API clients share (token cache, retries, body cap,
//!   redaction, metrics); [`personio`] and [`learnamp`] keep only their endpoints.
//!   Learn Amp and Personio contracts that are assumed, not documented, live in
//!   `learnamp/assumed.rs` and `personio/assumed.rs`.
//! - [`connect`]: the customer's side of connecting Personio (invitations, the check
//!   before saving, OpenID Connect token refresh); `personio::oidc` is the relying party.
//! - [`store`]: the only module that talks to sled.
//! - [`cluster`]: several nodes on one PostgreSQL database; each tenant runs on the
//!   node holding its lease (fair share, renew, takeover of expired leases, fencing epochs).
//! - [`sync`]: gather, plan, apply, live updates, invitations.
//! - [`web`]: the customer's pages (connect flow, app), sessions and CSRF, rendered
//!   from askama templates under `templates/`.
//! - The `personio-sync-sim` crate (`crates/sim`) holds faithful fakes of both APIs for
//!   tests, benchmarks and `personio-sync demo`; `crates/testkit` starts the service
//!   against them for the tests and the load tool (`crates/loadtest`).

pub mod actors;
pub mod admin_client;
pub mod api_client;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connect;
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
pub mod web;
