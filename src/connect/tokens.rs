//! Access tokens of tenants connected through "Sign in with Personio".
//!
//! One [`OidcTokens`] per tenant, shared by every Personio client of that tenant (the
//! registry is [`OidcTokenSources`] in the services), so one refresh is in flight per
//! tenant. A token is refreshed shortly before it expires (or when Personio refuses it)
//! with the refresh token read from storage, never from a copy of the spec; with
//! rotation the new refresh token is sealed and stored durably *before* the new access
//! token is used, and only if the stored one is still the one that was used (a
//! reconnection meanwhile wins).
//!
//! The refresh runs in a task of its own, which holds the tenant's refresh lock until
//! the rotated refresh token is stored and the access token cached. A caller dropped
//! mid-refresh (a page's timeout, a closed browser, a tenant actor killed by a restart)
//! therefore neither loses the answer that carries the only valid refresh token nor
//! lets a second refresh start with the spent one, which the provider would take for
//! theft and answer by revoking the grant (RFC 9700 §4.14).
//!
//! Only a refusal of the refresh token itself (`invalid_grant`) ends the connection
//! ([`PersonioError::ConnectionRevoked`]); a provider that cannot be reached, answers
//! 5xx, `temporarily_unavailable`/`server_error` or something unparsable, a failed
//! discovery and a reconnection racing the refresh are
//! [`PersonioError::Transport`]: the tenant is `degraded` and tries again later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::domain::Secret;
use crate::personio::oidc::{OidcError, RelyingParty};
use crate::personio::{PersonioError, TokenSource};
use crate::store::Store;

/// Tokens are refreshed this long before they expire (half the lifetime for short ones).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The token sources of every OpenID-connected tenant, by tenant id.
#[derive(Default)]
pub struct OidcTokenSources {
    sources: Mutex<HashMap<String, Arc<OidcTokens>>>,
}

impl OidcTokenSources {
    /// The source of tenant `tenant_id` (made on first use).
    pub fn source(
        &self,
        tenant_id: &str,
        services: &crate::app::services::Services,
    ) -> Arc<dyn TokenSource> {
        self.get(tenant_id, &services.store, services.oidc.clone())
    }

    /// The source of `tenant_id`, made with `store` and `rp` if there is none.
    pub fn get(
        &self,
        tenant_id: &str,
        store: &Store,
        rp: Option<Arc<RelyingParty>>,
    ) -> Arc<OidcTokens> {
        crate::locks::lock(&self.sources)
            .entry(tenant_id.to_string())
            .or_insert_with(|| {
                Arc::new(OidcTokens {
                    grant: Arc::new(Grant {
                        tenant_id: tenant_id.to_string(),
                        store: store.clone(),
                        rp,
                        cached: Mutex::new(None),
                        refresh: tokio::sync::Mutex::new(()),
                        generation: std::sync::atomic::AtomicU64::new(0),
                    }),
                })
            })
            .clone()
    }

    /// Forgets a tenant's source (tenant deleted).
    pub fn forget(&self, tenant_id: &str) {
        crate::locks::lock(&self.sources).remove(tenant_id);
    }
}

/// An access token and when to refresh it.
struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// The access tokens of one tenant's grant.
pub struct OidcTokens {
    /// Shared with the refresh task, which outlives a dropped caller.
    grant: Arc<Grant>,
}

/// What the refresh task and the callers share.
struct Grant {
    tenant_id: String,
    store: Store,
    rp: Option<Arc<RelyingParty>>,
    cached: Mutex<Option<Cached>>,
    /// Held by the refresh task until the refresh's result is stored and cached: one in
    /// flight per tenant, whoever stops waiting for it.
    refresh: tokio::sync::Mutex<()>,
    /// Bumped by [`OidcTokens::reset`]: a refresh started before it does not cache.
    generation: std::sync::atomic::AtomicU64,
}

impl OidcTokens {
    /// Starts over with the access token of a new grant (a new connection).
    pub fn reset(&self, token: Secret, lifetime: Duration) {
        self.grant
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *crate::locks::lock(&self.grant.cached) = Some(Cached {
            token,
            renew_at: Instant::now() + renewal_delay(lifetime),
        });
    }

    async fn token(&self) -> Result<Secret, PersonioError> {
        if let Some(token) = self.grant.cached() {
            return Ok(token);
        }
        // The lock is taken, and the result stored and cached, inside the task: a
        // caller that stops waiting leaves the refresh running under the lock.
        let grant = self.grant.clone();
        tokio::spawn(async move { grant.refreshed_token().await })
            .await
            .map_err(|error| PersonioError::Transport(format!("token refresh stopped: {error}")))?
    }
}

impl Grant {
    fn cached(&self) -> Option<Secret> {
        crate::locks::lock(&self.cached)
            .as_ref()
            .filter(|cached| Instant::now() < cached.renew_at)
            .map(|cached| cached.token.clone())
    }

    /// The cached token, or a refreshed one (stored and cached before the lock is
    /// released). Runs in the refresh task.
    async fn refreshed_token(&self) -> Result<Secret, PersonioError> {
        let _refreshing = self.refresh.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let (token, lifetime) =
            refresh(self.tenant_id.clone(), self.store.clone(), self.rp.clone()).await?;
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            *crate::locks::lock(&self.cached) = Some(Cached {
                token: token.clone(),
                renew_at: Instant::now() + renewal_delay(lifetime),
            });
        }
        Ok(token)
    }
}

impl TokenSource for OidcTokens {
    fn access_token(&self) -> BoxFuture<'_, Result<Secret, PersonioError>> {
        Box::pin(self.token())
    }

    fn refused(&self, token: &Secret) {
        let mut cached = crate::locks::lock(&self.grant.cached);
        if cached
            .as_ref()
            .is_some_and(|current| &current.token == token)
        {
            *cached = None;
        }
    }
}

/// A fixed access token (a grant being verified before anything is stored): never
/// refreshed, so verifying never rotates a refresh token that is not stored yet.
pub struct FixedToken(pub Secret);

impl TokenSource for FixedToken {
    fn access_token(&self) -> BoxFuture<'_, Result<Secret, PersonioError>> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }

    fn refused(&self, _token: &Secret) {}
}

/// One refresh: the stored refresh token is exchanged; a rotated one is stored (sealed,
/// durable) before the access token is answered.
async fn refresh(
    tenant_id: String,
    store: Store,
    rp: Option<Arc<RelyingParty>>,
) -> Result<(Secret, Duration), PersonioError> {
    let stored = |error: crate::store::StoreError| {
        PersonioError::Transport(format!(
            "the connection's tokens could not be stored: {error}"
        ))
    };
    let spec = store.tenant_spec(&tenant_id).await.map_err(stored)?;
    // Without a stored grant the tenant was deleted or connected otherwise meanwhile:
    // its actor is being replaced, and the replacement does not ask this source.
    let Some(connection) = spec.and_then(|spec| spec.personio_oidc) else {
        return Err(PersonioError::Transport(
            "the tenant is no longer connected through Sign in with Personio".into(),
        ));
    };
    let Some(rp) = rp else {
        return Err(PersonioError::Unauthorized {
            message: "Sign in with Personio is not configured ([personio_oidc] issuer), so the connection's tokens cannot be refreshed".into(),
        });
    };
    let used = connection.refresh_token;
    let refreshed = rp.refresh(&used).await.map_err(refresh_error)?;
    if let Some(rotated) = refreshed.refresh_token.filter(|new| *new != used) {
        let replaced = store
            .update_tenant_spec(&tenant_id, |spec| match spec.personio_oidc.as_mut() {
                Some(oidc) if oidc.refresh_token == used => {
                    oidc.refresh_token = rotated.clone();
                    true
                }
                _ => false,
            })
            .await
            .map_err(stored)?;
        // A reconnection stored another grant meanwhile: the next try uses that one.
        if replaced != Some(true) {
            return Err(PersonioError::Transport(
                "the tenant's Personio connection was replaced while its tokens were refreshed"
                    .into(),
            ));
        }
    }
    tracing::info!(tenant_id = %tenant_id, "access token refreshed (Sign in with Personio)");
    Ok((refreshed.access_token, refreshed.expires_in))
}

/// What a failed refresh means for the tenant: a refused refresh token ends the
/// connection, a refusal of the request or the client needs an operator, and anything
/// that may pass by itself (an outage, a failed discovery, an unparsable answer) is
/// transient.
fn refresh_error(error: OidcError) -> PersonioError {
    match error {
        OidcError::GrantRevoked => PersonioError::ConnectionRevoked,
        OidcError::Refused { ref error, .. }
            if error == "invalid_client" || error == "unauthorized_client" =>
        {
            PersonioError::OidcClientRefused {
                message: error.to_string(),
            }
        }
        transient if transient.is_transient() => PersonioError::Transport(transient.to_string()),
        other => PersonioError::Unauthorized {
            message: other.to_string(),
        },
    }
}

/// When to refresh a token of the given lifetime.
fn renewal_delay(lifetime: Duration) -> Duration {
    if lifetime > REFRESH_MARGIN * 2 {
        lifetime - REFRESH_MARGIN
    } else {
        lifetime / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_ends_the_connection_and_an_outage_is_transient() {
        let revoked = refresh_error(OidcError::GrantRevoked);
        assert!(matches!(revoked, PersonioError::ConnectionRevoked));
        for passing in [
            OidcError::Unreachable("the provider answered HTTP 503 Service Unavailable".into()),
            OidcError::Unreachable("it answered temporarily_unavailable".into()),
            OidcError::Discovery("Server returned invalid response".into()),
            OidcError::BadAnswer("expected value at line 1 column 1".into()),
        ] {
            let error = refresh_error(passing.clone());
            assert!(
                error.is_transient() && !error.is_credentials(),
                "{passing:?}: {error:?}"
            );
        }
        for refused in [
            OidcError::Refused {
                error: "invalid_client".into(),
                description: None,
            },
            OidcError::Refused {
                error: "unauthorized_client".into(),
                description: None,
            },
        ] {
            let error = refresh_error(refused.clone());
            assert!(
                error.is_credentials() && !error.is_transient(),
                "{refused:?}: {error:?}"
            );
            assert!(
                matches!(error, PersonioError::OidcClientRefused { .. }),
                "the service's own client, not the connection: {error:?}"
            );
        }
    }
}
