//! The service and both simulators on loopback, in this process: what the ingest,
//! end-to-end and full-sync scenarios run against.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use personio_sync::actors::status::{TenantState, TenantView};
use personio_sync::app::Options;
use personio_sync::config::Config;
use personio_sync::domain::Secret;
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::learnamp::LearnAmpSimConfig;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};
use personio_sync_testkit::postgres::TestDatabase;
use personio_sync_testkit::{Setup, TestApp, spawn, use_postgres};

use crate::Backend;

/// How to set up a harness.
pub struct HarnessConfig {
    /// The Personio simulator.
    pub personio: PersonioSimConfig,
    /// The Learn Amp simulator.
    pub learnamp: LearnAmpSimConfig,
    /// `sync.concurrency`.
    pub concurrency: usize,
    /// Retry policy of the API clients.
    pub retry: RetryPolicy,
    /// Where the service stores its data.
    pub backend: Backend,
}

/// A running service with its simulators and a temporary data directory: the test kit's
/// [`TestApp`] with the service's production timings (30 s calls, default restarts)
/// and no metrics listener, on sled or on a fresh PostgreSQL database (dropped after
/// the service).
pub struct Harness {
    app: TestApp,
    _database: Option<TestDatabase>,
}

impl Deref for Harness {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// Where and how to post webhook deliveries for a tenant.
pub struct WebhookTarget {
    /// The service address.
    pub addr: SocketAddr,
    /// `/webhooks/personio/{key}`.
    pub path: String,
    /// The `Authorization` value Personio sends.
    pub authorization: Secret,
}

impl Harness {
    /// Starts both simulators and the service on port 0 with an on-disk store.
    pub async fn start(config: HarnessConfig) -> anyhow::Result<Self> {
        let setup = Setup {
            personio: config.personio,
            learnamp: config.learnamp,
            retry: config.retry,
            request_timeout: Duration::from_secs(30),
            restart_base: Options::default().restart_base,
            metrics: false,
            cache_mb: Config::default().storage.cache_mb,
        };
        let concurrency = config.concurrency;
        let database = match config.backend {
            Backend::Sled => None,
            Backend::Postgres => Some(crate::fresh_database("bench").await?),
        };
        let app = spawn(setup, |service| {
            service.sync.concurrency = concurrency;
            if let Some(database) = &database {
                use_postgres(service, database);
                // The production pool, not the tests' small one.
                service.storage.postgres_pool = Config::default().storage.postgres_pool;
            }
        })
        .await?;
        Ok(Self {
            app,
            _database: database,
        })
    }

    /// Creates a tenant against the harness's simulators (`POST /admin/tenants`).
    pub async fn create_tenant(&self, id: &str, settings: Value) -> anyhow::Result<()> {
        self.create_tenant_on(
            id,
            &self.personio.base_url,
            &self.learnamp.base_url,
            settings,
        )
        .await
    }

    /// Creates a tenant against simulators at the given base URLs (`POST
    /// /admin/tenants`), with the simulators' default credentials.
    pub async fn create_tenant_on(
        &self,
        id: &str,
        personio_base: &str,
        learnamp_base: &str,
        settings: Value,
    ) -> anyhow::Result<()> {
        let spec = json!({
            "id": id,
            "personio": {"base_url": personio_base, "client_id": "sim-client", "client_secret": "sim-secret"},
            "learnamp": {"base_url": learnamp_base, "client_id": "sim-client", "client_secret": "sim-secret"},
            "settings": settings,
        });
        self.admin
            .create(&spec)
            .await
            .with_context(|| format!("creating tenant {id}"))?;
        Ok(())
    }

    /// Restarts a tenant as an operator would (`POST /admin/tenants/{id}/restart`, 202).
    pub async fn restart_tenant(&self, id: &str) -> anyhow::Result<()> {
        self.admin
            .restart(id)
            .await
            .with_context(|| format!("restarting tenant {id}"))
    }

    /// Deletes a tenant (`DELETE /admin/tenants/{id}`, with `?purge=true` if `purge`; 204).
    pub async fn delete_tenant(&self, id: &str, purge: bool) -> anyhow::Result<()> {
        self.admin
            .delete(id, purge)
            .await
            .with_context(|| format!("deleting tenant {id}"))
    }

    /// Polls the view every `every` until `done` holds; fails after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        every: Duration,
        done: impl Fn(&TenantView) -> bool,
    ) -> anyhow::Result<TenantView> {
        Ok(self.admin.wait_for(id, timeout, every, done).await?)
    }

    /// Waits until the first full sync finished and the tenant is `live`.
    pub async fn wait_live_after_sync(
        &self,
        id: &str,
        timeout: Duration,
    ) -> anyhow::Result<TenantView> {
        self.wait_for(id, timeout, Duration::from_millis(100), |view| {
            view.last_sync.is_some() && view.state == TenantState::Live
        })
        .await
    }

    /// The webhook target of a tenant, read from its stored spec.
    pub async fn webhook_target(&self, id: &str) -> anyhow::Result<WebhookTarget> {
        let spec = self
            .state
            .store
            .tenant_spec(id)
            .await?
            .with_context(|| format!("tenant {id} is not stored"))?;
        let secrets = spec
            .webhook
            .with_context(|| format!("tenant {id} has no webhook secrets"))?;
        Ok(WebhookTarget {
            addr: self.addr,
            path: format!("/webhooks/personio/{}", secrets.key.expose()),
            authorization: secrets.token,
        })
    }
}

/// Sets the simulated latency of both simulators.
pub fn set_latency(harness: &Harness, latency: Duration) {
    harness.personio.knobs.set_latency(latency);
    harness.learnamp.knobs.set_latency(latency);
}

/// Ids of `personio`'s active employees for which `synced` holds (typically: Learn Amp
/// shows a user with that external id), in the simulator's order.
pub fn synced_active_people(personio: &PersonioSim, synced: impl Fn(&str) -> bool) -> Vec<String> {
    personio
        .employees()
        .into_iter()
        .filter(|person| !person.employee.is_inactive())
        .map(|person| person.employee.id)
        .filter(|id| synced(id))
        .collect()
}

/// Sets `id`'s position to `title` in the Personio simulator (which delivers the
/// webhook) and polls every `poll` until the Learn Amp simulator shows it: the time
/// that took, or `None` after `timeout`.
pub async fn time_position_change(
    harness: &Harness,
    id: &str,
    title: String,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<Option<Duration>> {
    let mut person = harness
        .personio
        .employee(id)
        .with_context(|| format!("employee {id} vanished"))?;
    person.employee.position = Some(title.clone());
    let started = Instant::now();
    harness.personio.upsert_employee(person);
    loop {
        let shown = harness
            .learnamp
            .user_by_external_id(id)
            .and_then(|user| user.job_title)
            .is_some_and(|job_title| job_title == title);
        if shown {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > timeout {
            return Ok(None);
        }
        tokio::time::sleep(poll).await;
    }
}
