//! The services every part of the process shares: the store, the tenant views, the
//! webhook router, the HTTP client pool and the settings that apply to every tenant.
//! Built once by `Application::build` and cloned into the supervisor, each
//! tenant actor and the front door.

use std::sync::Arc;
use std::time::Duration;

use crate::actors::router::WebhookRouter;
use crate::actors::status::{TenantView, TenantViews};
use crate::clock::SharedClock;
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
    pub fn announce(&self, spec: &TenantSpec) {
        if let Some(secrets) = &spec.webhook {
            self.router.register_webhook(
                &spec.id,
                &secrets.key,
                &secrets.token,
                spec.personio.webhook_signing_secret.as_ref(),
            );
        }
        if self.views.view(&spec.id).is_none() {
            let webhook_url = spec
                .webhook
                .as_ref()
                .map(|secrets| self.webhook_url(secrets.key.expose()))
                .unwrap_or_default();
            let mut view = TenantView::starting(&spec.id, webhook_url);
            // What is stored shows at once: the last sync and the events waiting in
            // the inbox (the actor refreshes both once it runs).
            match self.store.tenant(&spec.id) {
                Ok(store) => {
                    view.pending_events = store.pending_count() as u64;
                    view.last_sync = store.last_sync().ok().flatten();
                    view.learnamp_unsupported = store.learnamp_unsupported().unwrap_or_default();
                }
                Err(error) => {
                    tracing::warn!(tenant_id = %spec.id, error = %error, "stored state unreadable");
                }
            }
            self.views.insert(view);
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
        let personio = PersonioClient::new(
            PersonioConfig {
                base_url: spec.personio.base_url.trim_end_matches('/').to_string(),
                client_id: spec.personio.client_id.clone(),
                client_secret: spec.personio.client_secret.clone(),
                app_id: PERSONIO_APP_ID.into(),
            },
            self.http.clone(),
            retry,
        )
        .with_v1_pacer(self.personio_v1_pacer.clone());
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
}
