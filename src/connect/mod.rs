//! Connecting a tenant to Personio from the customer's side (issue 15, contract §7):
//! invitations, the check before saving, and the connection itself. The pages live in
//! `src/web/`; this module is what they call.
//!
//! - [`invitations`]: `POST/DELETE /admin/tenants/{id}/invitations`, and
//!   [`Invitations::open`] for the connect page.
//! - [`verify`]: a token obtained, scopes read, readable attributes checked; typed
//!   refusals with a sentence for the customer.
//! - [`connect_tenant`]: verifies, stores the connection (secrets sealed), and starts
//!   (or restarts) the tenant: webhook subscription and initial sync, as for a tenant
//!   an operator creates with credentials. Mappings are kept, so reconnecting never
//!   duplicates a user.
//! - [`tokens`]: the access tokens of OpenID-connected tenants (refresh, rotation).

pub mod invitations;
pub mod tokens;
pub mod verify;

use crate::actors::status::TenantView;
use crate::actors::supervisor;
use crate::domain::Secret;
use crate::domain::tenant::{
    ApiCredentials, ConnectionInfo, ConnectionMethod, OidcConnection, TenantSpec,
};
use crate::http::AppShared;
use crate::personio::oidc::OidcGrant;
use crate::store::StoreError;

pub use invitations::{InvitationError, Invitations, NewInvitation, OpenInvitation};
pub use verify::{Credential, Verified, VerifyError, verify};

/// A connection the customer's administrator made on the connect page.
#[derive(Debug, Clone)]
pub enum Connection {
    /// Pasted API credentials (used at `[personio] base_url`).
    ClientCredentials {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
    },
    /// "Sign in with Personio": the grant [`crate::personio::oidc::RelyingParty::finish`]
    /// answered.
    Oidc(OidcGrant),
}

/// Why a connection was not made. Nothing was stored for any of them.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No tenant has this id.
    #[error("no tenant with id `{0}`")]
    UnknownTenant(String),
    /// The check before saving failed.
    #[error(transparent)]
    Refused(#[from] VerifyError),
    /// The input is unusable (empty client id or secret).
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The supervisor did not start the tenant (the connection is stored; the tenant
    /// starts with the next restart).
    #[error("the tenant could not be started: {0}")]
    NotStarted(String),
}

impl ConnectError {
    /// What the customer's administrator reads on the connect page (no secret).
    pub fn customer_message(&self) -> String {
        match self {
            Self::Refused(refusal) => refusal.customer_message(),
            Self::Invalid(message) => format!("{message}."),
            Self::UnknownTenant(_) => "This invitation no longer belongs to an account. Ask the person who sent it for a new invitation.".into(),
            Self::Store(_) => "The connection could not be saved just now. Nothing was changed; please try again in a few minutes.".into(),
            Self::NotStarted(_) => "Personio is connected; the first sync starts shortly.".into(),
        }
    }
}

/// Connects tenant `tenant_id` with `connection`: verifies it (nothing is stored if the
/// check fails), stores it with its secrets sealed, replacing any earlier connection
/// (mappings and history are kept), records the connection in the tenant view, marks the
/// invitation `invitation_token` (if given) used, and starts or restarts the tenant.
/// Answers the tenant view.
pub async fn connect_tenant(
    app: &AppShared,
    tenant_id: &str,
    connection: Connection,
    invitation_token: Option<&str>,
) -> Result<TenantView, ConnectError> {
    let services = &app.services;
    let spec = services
        .store
        .tenant_spec(tenant_id)
        .await?
        .ok_or_else(|| ConnectError::UnknownTenant(tenant_id.to_string()))?;
    // Only an invitation of this tenant counts (its email, marking it used).
    let invitation = match invitation_token {
        Some(token) => services.invitations().open(token).await.ok(),
        None => None,
    }
    .filter(|open| open.tenant_id == tenant_id);
    let base_url = services.personio_base_url.trim_end_matches('/').to_string();
    let credential = match &connection {
        Connection::ClientCredentials {
            client_id,
            client_secret,
        } => {
            if client_id.trim().is_empty() {
                return Err(ConnectError::Invalid("Enter the client ID".into()));
            }
            if client_secret.expose().is_empty() {
                return Err(ConnectError::Invalid("Enter the client secret".into()));
            }
            Credential::ClientCredentials {
                base_url: base_url.clone(),
                client_id: client_id.trim().to_string(),
                client_secret: client_secret.clone(),
            }
        }
        Connection::Oidc(grant) => Credential::AccessToken {
            base_url: base_url.clone(),
            token: grant.access_token.clone(),
            scopes: grant.scopes.clone(),
        },
    };
    verify(services, &credential, &spec.settings).await?;
    // A tenant that synced before reads everything again once reconnected: changes
    // made while it was disconnected (or failed) are not lost. (Where another node
    // runs the tenant, its owner marks it: see `Command::Reconnected`.)
    let tenant_store = services.store.tenant(tenant_id).await?;
    if tenant_store.initial_sync_done()? {
        tenant_store.mark_reconcile_due()?;
    }
    let now = services.clock.now().to_rfc3339();
    let (personio, personio_oidc, info) = match &connection {
        Connection::ClientCredentials { client_secret, .. } => {
            let Credential::ClientCredentials { client_id, .. } = &credential else {
                unreachable!("client credentials are checked as such");
            };
            (
                Some(ApiCredentials {
                    base_url: base_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    webhook_signing_secret: None,
                }),
                None,
                ConnectionInfo {
                    method: ConnectionMethod::ClientCredentials,
                    by: invitation.as_ref().and_then(|open| open.email.clone()),
                    at: now,
                },
            )
        }
        Connection::Oidc(grant) => (
            None,
            Some(OidcConnection {
                base_url: base_url.clone(),
                issuer: grant.issuer.clone(),
                subject: grant.subject.clone(),
                email: grant.email.clone(),
                refresh_token: grant.refresh_token.clone(),
            }),
            ConnectionInfo {
                method: ConnectionMethod::Oidc,
                by: grant.email.clone(),
                at: now,
            },
        ),
    };
    let updated = services
        .store
        .update_tenant_spec(tenant_id, |stored| {
            stored.personio = personio.clone();
            stored.personio_oidc = personio_oidc.clone();
            stored.connection = Some(info.clone());
            stored.clone()
        })
        .await?
        .ok_or_else(|| ConnectError::UnknownTenant(tenant_id.to_string()))?;
    if let Connection::Oidc(grant) = &connection {
        let lifetime = (grant.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        services
            .oidc_tokens
            .get(tenant_id, &services.store, services.oidc.clone())
            .reset(grant.access_token.clone(), lifetime);
    }
    services
        .views
        .update(tenant_id, |view| view.connection = Some(info.clone()));
    tracing::info!(tenant_id, method = ?info.method, "tenant connected to Personio");
    if let Some(token) = invitation_token.filter(|_| invitation.is_some())
        && let Err(error) = services.invitations().mark_used(token).await
    {
        tracing::warn!(tenant_id, error = %error, "invitation not marked used");
    }
    restart(app, updated).await?;
    app.views
        .view(tenant_id)
        .ok_or_else(|| ConnectError::UnknownTenant(tenant_id.to_string()))
}

/// Every stored spec, after recording the operator's connection of tenants stored by a
/// version without `connection` (client credentials, by an operator, as of now: the
/// creation time was not kept).
pub async fn record_operator_connections(
    store: &crate::store::Store,
) -> Result<Vec<TenantSpec>, StoreError> {
    let mut specs = store.tenant_specs().await?;
    for spec in &mut specs {
        if spec.connection.is_some() || spec.personio.is_none() {
            continue;
        }
        let info = ConnectionInfo {
            method: ConnectionMethod::ClientCredentials,
            by: None,
            at: chrono::Utc::now().to_rfc3339(),
        };
        let updated = store
            .update_tenant_spec(&spec.id, |stored| {
                if stored.connection.is_none() && stored.personio.is_some() {
                    stored.connection = Some(info.clone());
                }
                stored.clone()
            })
            .await?;
        if let Some(updated) = updated {
            *spec = updated;
        }
    }
    Ok(specs)
}

/// Restarts the tenant where it runs (here, or on its owner through the directory),
/// which first marks a tenant that synced before for one full reconciliation (see
/// `Command::Reconnected`); a tenant no node runs (it was awaiting its connection, so
/// no actor could restart) is started instead.
async fn restart(app: &AppShared, spec: TenantSpec) -> Result<(), ConnectError> {
    let restarted = app
        .directory
        .run(
            app,
            &spec.id,
            crate::app::directory::Command::Reconnected,
            supervisor::ANSWER_TIMEOUT,
        )
        .await;
    if restarted.is_ok() {
        return Ok(());
    }
    app.start_tenant(spec)
        .await
        .map_err(ConnectError::NotStarted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tenants_stored_before_connections_existed_get_the_operators() {
        let store = crate::store::Store::temporary().await.unwrap();
        let learnamp =
            serde_json::json!({"base_url": "http://l", "client_id": "c", "client_secret": "d"});
        let legacy = crate::domain::tenant::parse_spec(serde_json::json!({
            "id": "legacy",
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": "b"},
            "learnamp": learnamp
        }))
        .unwrap();
        let awaiting = crate::domain::tenant::parse_spec(serde_json::json!({
            "id": "awaiting", "learnamp": learnamp
        }))
        .unwrap();
        for spec in [&legacy, &awaiting] {
            assert!(store.insert_new_tenant_spec(spec).await.unwrap());
        }
        let specs = record_operator_connections(&store).await.unwrap();
        let find = |id: &str| specs.iter().find(|spec| spec.id == id).unwrap().clone();
        let info = find("legacy").connection.expect("recorded");
        assert_eq!(
            (info.method, info.by.clone()),
            (ConnectionMethod::ClientCredentials, None)
        );
        assert_eq!(find("awaiting").connection, None);
        let stored = store.tenant_spec("legacy").await.unwrap().unwrap();
        assert_eq!(stored.connection.as_ref().map(|c| &c.at), Some(&info.at));
        // Once recorded, it stays as it was.
        let again = record_operator_connections(&store).await.unwrap();
        assert_eq!(
            again
                .iter()
                .find(|spec| spec.id == "legacy")
                .unwrap()
                .connection,
            Some(info)
        );
    }
}
