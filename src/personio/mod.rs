//! The Personio API client: v2 client-credentials tokens, the v1 employee list parsed
//! into [`crate::domain::Employee`], org-unit lookups and webhook management.
//!
//! - [`client`]: the reqwest client (token cache, retries, paging).
//! - [`model`]: wire formats and their lenient, pure parsing.
//! - [`error`]: [`PersonioError`] and the parsing of Personio's error bodies.
//! - [`assumed`]: signed webhook deliveries, which the reference does not document.
//! - [`oidc`]: "Sign in with Personio", the OpenID Connect relying party.
//! - [`scopes`]: the API scopes the service needs.

pub mod assumed;
pub mod client;
pub mod error;
pub mod model;
pub mod oidc;
pub mod scopes;

pub use client::{DEFAULT_REQUEST_TIMEOUT, PersonioClient, PersonioConfig, TokenSource};
pub use error::PersonioError;
pub use model::{AttributeInfo, OrgUnit, Webhook, WebhookSpec};
