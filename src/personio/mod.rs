//! The Personio API client: v2 client-credentials tokens, the v1 employee list parsed
//! into [`crate::domain::Employee`], org-unit lookups and webhook management.
//!
//! - [`client`]: the reqwest client (token cache, retries, paging).
//! - [`model`]: wire formats and their lenient, pure parsing.
//! - [`error`]: [`PersonioError`] and the parsing of Personio's error bodies.
//! - [`assumed`]: signed webhook deliveries, which the reference does not document.

pub mod assumed;
pub mod client;
pub mod error;
pub mod model;

pub use client::{DEFAULT_REQUEST_TIMEOUT, PersonioClient, PersonioConfig};
pub use error::PersonioError;
pub use model::{AttributeInfo, OrgUnit, Webhook, WebhookSpec};
