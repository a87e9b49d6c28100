//! Learn Amp API client (reference `learnamp-api.md` §2–§9 and §13).
//!
//! - `client`: tokens, retries, pagination, and the users and teams endpoints.
//! - `model`: the user and team objects as read, and the form encoding of writes.
//! - `error`: [`LearnAmpError`] and the mapping of Learn Amp's error bodies.
//! - `assumed`: the contracts Learn Amp has not published (invitation, leave date,
//!   avatar), each behind exactly one function, and how their absence is told apart.
//! - `scopes`: the OAuth scopes every token request names, and the scope of each route.

mod assumed;
mod client;
mod error;
mod model;
pub mod scopes;

pub use assumed::{Assumed, LeaveDateEcho};
pub use client::{LearnAmpClient, LearnAmpConfig, Written};
pub use error::LearnAmpError;
pub use model::{InvitationOutcome, Team, TeamFields, TeamSummary, User, UserFilter, UserStatus};
