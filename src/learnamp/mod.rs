//! Learn Amp API client (reference `learnamp-api.md` §2–§9 and §13).
//!
//! - `client`: pagination and the documented users and teams endpoints, on the shared
//!   [`crate::api_client`] core (tokens, retries, body cap, metrics).
//! - `users`: user writes (create, update) and the public methods of the assumed
//!   contracts; it uses both `client` and `assumed`, which never use it.
//! - `model`: the user and team objects as read, and the form encoding of team writes.
//! - `error`: [`LearnAmpError`] and the mapping of Learn Amp's error bodies.
//! - `assumed`: the contracts Learn Amp has not published (invitation, leave date,
//!   avatar), each behind exactly one function, and how their absence is told apart.
//! - `scopes`: the OAuth scopes every token request names, and the scope of each route.

mod assumed;
mod client;
mod error;
mod model;
pub mod scopes;
mod users;

pub use assumed::{Assumed, LeaveDateEcho};
pub use client::{LearnAmpClient, LearnAmpConfig};
pub use error::LearnAmpError;
pub use model::{InvitationOutcome, Team, TeamFields, TeamSummary, User, UserFilter, UserStatus};
pub use users::Written;
