//! The services every part of the process shares: the store, the tenant views, the
//! webhook router, the HTTP client pool and the settings that apply to every tenant.
//! Built once by `Application::build` and cloned into the supervisor, each
//! tenant actor and the front door.

use std::sync::Arc;
use std::time::Duration;

use crate::actors::router::WebhookRouter;
use crate::actors::status::{TenantState, TenantView, TenantViews};
use crate::clock::SharedClock;
use crate::domain::Secret;
use crate::domain::tenant::TenantSpec;
use crate::learnamp::{LearnAmpClient, LearnAmpConfig};
use crate::personio::{PersonioClient, PersonioConfig};
use crate::retry::RetryPolicy;
use crate::store::Store;

/// `X-Personio-App-ID` sent on every Personio call.
pub const PERSONIO_APP_ID: &str = "PERSONIO_SYNC";

/// What the supervisor, every tenant actor and the front door share with the process.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Store,
    /// Every tenant's view.
    pub views: Arc<TenantViews>,
    /// Webhook routes and running tenant actors.
    pub router: Arc<WebhookRouter>,
    /// The HTTP client pool.
    pub http: reqwest::Client,
    /// Retry policy of both API clients.
    pub retry: RetryPolicy,
    /// Learn Amp writes in flight during a full sync.
    pub concurrency: usize,
    /// Time between reconciliations.
    pub reconcile_interval: Duration,
    /// Base of webhook URLs.
    pub public_url: String,
    /// Where "now" comes from.
    pub clock: SharedClock,
    /// First restart delay of a crashed tenant (doubles per failure).
    pub restart_base: Duration,
    /// Bounds how many tenants run their start-up checks at once (the tenant actor's
    /// `START_GATE`).
    pub start_gate: Arc<tokio::sync::Semaphore>,
    /// Paces the Personio v1 calls of every tenant together: Personio limits v1 by
    /// source IP, which all tenants share.
    pub personio_v1_pacer: Arc<crate::pacer::Pacer>,
    /// The Personio API of tenants connected from the connect page (`[personio]
    /// base_url`).
    pub personio_base_url: String,
    /// "Sign in with Personio" (the OpenID Connect relying party), when
    /// `[personio_oidc] issuer` is configured.
    pub oidc: Option<Arc<crate::personio::oidc::RelyingParty>>,
    /// The access tokens of tenants connected through OpenID Connect, one refresher per
    /// tenant shared by all its clients.
    pub oidc_tokens: Arc<crate::connect::tokens::OidcTokenSources>,
}

impl Services {
    /// The webhook URL of a tenant with webhook key `key`.
    pub fn webhook_url(&self, key: &str) -> String {
        format!(
            "{}/webhooks/personio/{key}",
            self.public_url.trim_end_matches('/')
        )
    }

    /// Makes a tenant known before its actor runs: routes its webhook URL to it and
    /// shows a `starting` view if it has none yet. Called by the supervisor before a
    /// spawn and by the application for every stored tenant before it serves.
    pub async fn announce(&self, spec: &TenantSpec) {
        if let Some(secrets) = &spec.webhook {
            self.router.register_webhook(
                &spec.id,
                &secrets.key,
                &secrets.token,
                spec.webhook_signing_secret(),
            );
        }
        if self.views.view(&spec.id).is_none() {
            let webhook_url = spec
                .webhook
                .as_ref()
                .map(|secrets| self.webhook_url(secrets.key.expose()))
                .unwrap_or_default();
            let mut view = TenantView::starting(&spec.id, webhook_url);
            view.connection = spec.connection.clone();
            if !spec.is_connected() {
                view.state = TenantState::AwaitingConnection;
            }
            // What is stored shows at once: the last sync and the events waiting in
            // the inbox (the actor refreshes both once it runs).
            match self.store.tenant(&spec.id).await {
                Ok(store) => {
                    view.pending_events = store.pending_count().await as u64;
                    view.last_sync = store.last_sync().ok().flatten();
                    view.learnamp_unsupported = store.learnamp_unsupported().unwrap_or_default();
                }
                Err(error) => {
                    tracing::warn!(tenant_id = %spec.id, error = %error, "stored state unreadable");
                }
            }
            // Another announce (or the actor) may have made the view while the store
            // was read: that one is newer.
            self.views.insert_if_absent(view);
        }
    }

    /// Builds the two API clients of a tenant.
    pub fn clients(&self, spec: &TenantSpec) -> (PersonioClient, LearnAmpClient) {
        self.clients_with(spec, self.retry)
    }

    /// Builds the two API clients of a tenant with retry policy `retry`.
    pub fn clients_with(
        &self,
        spec: &TenantSpec,
        retry: RetryPolicy,
    ) -> (PersonioClient, LearnAmpClient) {
        let personio = self.personio_client(spec, retry);
        let learnamp = LearnAmpClient::new(
            LearnAmpConfig {
                base_url: spec.learnamp.base_url.trim_end_matches('/').to_string(),
                client_id: spec.learnamp.client_id.clone(),
                client_secret: spec.learnamp.client_secret.clone(),
                scopes: crate::learnamp::scopes::requested(spec.settings.remove_empty_teams),
            },
            self.http.clone(),
            retry,
        );
        (personio, learnamp)
    }

    /// The Personio client of a tenant: client credentials, or the tokens of its
    /// OpenID Connect grant. A tenant awaiting its connection gets a client without
    /// credentials (its actor never runs, so it is never used).
    pub fn personio_client(&self, spec: &TenantSpec, retry: RetryPolicy) -> PersonioClient {
        let config = personio_config;
        let client = match (&spec.personio, &spec.personio_oidc) {
            (Some(credentials), _) => PersonioClient::new(
                config(
                    &credentials.base_url,
                    &credentials.client_id,
                    credentials.client_secret.clone(),
                ),
                self.http.clone(),
                retry,
            ),
            (None, Some(oidc)) => PersonioClient::new(
                config(&oidc.base_url, "", Secret::default()),
                self.http.clone(),
                retry,
            )
            .with_token_source(self.oidc_tokens.source(&spec.id, self)),
            (None, None) => PersonioClient::new(
                config(&self.personio_base_url, "", Secret::default()),
                self.http.clone(),
                retry,
            ),
        };
        client.with_v1_pacer(self.personio_v1_pacer.clone())
    }

    /// The invitations of every tenant (create, revoke, open).
    pub fn invitations(&self) -> crate::connect::Invitations {
        crate::connect::Invitations::new(
            self.store.clone(),
            self.clock.clone(),
            self.public_url.clone(),
        )
    }
}

/// The Personio client settings of this service for `base_url` (no trailing slash) and
/// a client id and secret (empty for a connection whose tokens come from elsewhere).
pub fn personio_config(base_url: &str, client_id: &str, client_secret: Secret) -> PersonioConfig {
    PersonioConfig {
        base_url: base_url.trim_end_matches('/').to_string(),
        client_id: client_id.to_string(),
        client_secret,
        app_id: PERSONIO_APP_ID.into(),
    }
}
