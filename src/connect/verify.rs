//! The check a connection must pass before anything is stored: a token is obtained
//! (client credentials, or the access token of a fresh sign-in), its scopes are read,
//! and the readable employee attributes are checked against what the tenant needs
//! (contract §5: `sync::needed_attributes`).

use std::sync::Arc;

use crate::app::services::Services;
use crate::domain::Secret;
use crate::domain::tenant::{ConnectionMethod, Settings};
use crate::personio::{PersonioClient, PersonioError};
use crate::retry::RetryPolicy;

/// What is checked.
#[derive(Debug, Clone)]
pub enum Credential {
    /// API credentials.
    ClientCredentials {
        /// The Personio API base.
        base_url: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
    },
    /// The access token of a sign-in (never refreshed while checking).
    AccessToken {
        /// The Personio API base.
        base_url: String,
        /// The access token.
        token: Secret,
        /// The scopes the provider said it granted (`None`: not said).
        scopes: Option<Vec<String>>,
    },
}

impl Credential {
    /// The connection method this credential stands for.
    pub fn method(&self) -> ConnectionMethod {
        match self {
            Self::ClientCredentials { .. } => ConnectionMethod::ClientCredentials,
            Self::AccessToken { .. } => ConnectionMethod::Oidc,
        }
    }
}

/// Why a connection was refused. Each has [`VerifyError::customer_message`], a sentence
/// for the customer's administrator (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Personio refused the credentials (wrong client id or secret, or a token refused).
    #[error("Personio refused the credentials")]
    CredentialsRefused,
    /// The signed-in Personio user may not read employee data (403).
    #[error("this Personio user lacks administrator access")]
    NotAdministrator,
    /// The connection cannot read employee attributes the sync needs.
    #[error("the connection cannot read the employee attributes {}", attributes.join(", "))]
    MissingAttributes {
        /// The attributes, by their Personio names (keys, e.g. `termination_date`).
        attributes: Vec<String>,
        /// How the customer is connecting (where to enable them differs).
        method: ConnectionMethod,
    },
    /// The token lacks API scopes the service needs.
    #[error("the connection lacks the Personio API scopes {}", .0.join(", "))]
    MissingScopes(Vec<String>),
    /// Personio could not be reached or answered with a server error.
    #[error("Personio could not be reached: {0}")]
    Unreachable(String),
}

impl VerifyError {
    /// What the customer's administrator reads on the connect page.
    pub fn customer_message(&self) -> String {
        match self {
            Self::CredentialsRefused => "Personio did not accept these credentials. Check the client ID and client secret (Personio: Settings → Integrations → API credentials) and try again.".into(),
            Self::NotAdministrator => "This Personio user lacks administrator access. Sign in with a Personio account that has administrator rights, or use API credentials.".into(),
            Self::MissingAttributes { attributes, method } => {
                let fix = match method {
                    ConnectionMethod::ClientCredentials => "In Personio, open Settings → Integrations → API credentials, edit this credential and tick them under its readable employee attributes, then connect again.",
                    ConnectionMethod::Oidc => "In Personio, give your user's role read access to them (Settings → People → Roles → employee attribute rights), then sign in again.",
                };
                format!(
                    "Personio does not let this connection read these employee attributes: {}. {fix}",
                    attributes.join(", ")
                )
            }
            Self::MissingScopes(scopes) => format!(
                "The connection lacks these Personio API permissions: {}. Enable them for the credential in Personio (Settings → Integrations → API credentials), then connect again.",
                scopes.join(", ")
            ),
            Self::Unreachable(_) => "Personio could not be reached just now. Nothing was saved; please try again in a few minutes.".into(),
        }
    }
}

/// The result of a passed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scopes the token was granted (`None`: the answer named none).
    pub scopes: Option<Vec<String>>,
}

/// Checks `credential` for a tenant with `settings`. Stores nothing.
pub async fn verify(
    services: &Services,
    credential: &Credential,
    settings: &Settings,
) -> Result<Verified, VerifyError> {
    let client = client_for(services, credential);
    let method = credential.method();
    let scopes = match credential {
        Credential::ClientCredentials { .. } => client
            .granted_scopes()
            .await
            .map_err(|error| refusal(error, method))?,
        Credential::AccessToken { scopes, .. } => scopes.clone(),
    };
    let missing = crate::personio::scopes::missing(scopes.as_deref());
    if !missing.is_empty() {
        return Err(VerifyError::MissingScopes(missing));
    }
    match crate::sync::check_attributes(&client, settings).await {
        Ok(()) => Ok(Verified { scopes }),
        Err(crate::sync::SyncError::MissingAttributes(attributes)) => {
            Err(VerifyError::MissingAttributes { attributes, method })
        }
        Err(crate::sync::SyncError::Personio(error)) => Err(refusal(error, method)),
        Err(other) => Err(VerifyError::Unreachable(other.to_string())),
    }
}

/// A client for checking `credential`: a few quick retries, and a token that is never
/// refreshed.
fn client_for(services: &Services, credential: &Credential) -> PersonioClient {
    let retry = RetryPolicy {
        max_attempts: services.retry.max_attempts.min(3),
        ..services.retry
    };
    let config = crate::app::services::personio_config;
    let client = match credential {
        Credential::ClientCredentials {
            base_url,
            client_id,
            client_secret,
        } => PersonioClient::new(
            config(base_url, client_id, client_secret.clone()),
            services.http.clone(),
            retry,
        ),
        Credential::AccessToken {
            base_url, token, ..
        } => PersonioClient::new(
            config(base_url, "", Secret::default()),
            services.http.clone(),
            retry,
        )
        .with_token_source(Arc::new(super::tokens::FixedToken(token.clone()))),
    };
    client.with_v1_pacer(services.personio_v1_pacer.clone())
}

/// A Personio failure as a refusal of the connection.
fn refusal(error: PersonioError, method: ConnectionMethod) -> VerifyError {
    match error {
        PersonioError::Forbidden { .. } if method == ConnectionMethod::Oidc => {
            VerifyError::NotAdministrator
        }
        PersonioError::Unauthorized { .. }
        | PersonioError::Forbidden { .. }
        | PersonioError::ConnectionRevoked => VerifyError::CredentialsRefused,
        other => VerifyError::Unreachable(other.to_string()),
    }
}
