//! Learn Amp API client (reference `learnamp-api.md` §2–§9 and §13).
//!
//! - `client`: tokens, retries, pagination, and the users and teams endpoints.
//! - `model`: the user and team objects as read, and the form encoding of writes.
//! - `error`: [`LearnAmpError`] and the mapping of Learn Amp's error bodies.
//! - `assumed`: the contracts Learn Amp has not published (invitation, leave date,
//!   avatar), each behind exactly one function.

mod assumed;
mod client;
mod error;
mod model;

pub use client::{LearnAmpClient, LearnAmpConfig};
pub use error::LearnAmpError;
pub use model::{InvitationOutcome, Team, TeamFields, TeamSummary, User, UserFilter, UserStatus};
