//! The service and both simulators on loopback, in this process: what the ingest,
//! end-to-end and full-sync scenarios run against.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::app::{Application, Options};
use crate::config::Config;
use crate::domain::Secret;
use crate::domain::tenant::random_hex;
use crate::http::AppState;
use crate::retry::RetryPolicy;
use crate::store::Store;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

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
}

/// A running service with its simulators and a temporary data directory.
pub struct Harness {
    /// `http://127.0.0.1:PORT` of the service.
    pub base: String,
    /// The service address.
    pub addr: SocketAddr,
    /// The Personio simulator.
    pub personio: PersonioSim,
    /// The Learn Amp simulator.
    pub learnamp: LearnAmpSim,
    /// The service's shared state.
    pub state: AppState,
    http: reqwest::Client,
    token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
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
        let personio = PersonioSim::start(config.personio).await?;
        let learnamp = LearnAmpSim::start(config.learnamp).await?;
        let data_dir = tempfile::tempdir().context("temporary data dir")?;
        let mut service = Config::default();
        service.server.listen = "127.0.0.1:0".into();
        service.server.metrics_listen = String::new();
        service.storage.data_dir = data_dir.path().to_path_buf();
        service.sync.concurrency = config.concurrency;
        let store = Store::open(data_dir.path(), service.storage.cache_mb)?;
        let token = random_hex(24);
        let options = Options {
            retry: config.retry,
            request_timeout: Duration::from_secs(30),
            ..Options::default()
        };
        let app = Application::build(&service, store, Secret::new(token.clone()), options).await?;
        let addr = app.local_addr();
        let state = app.state().clone();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            personio,
            learnamp,
            state,
            http: reqwest::Client::new(),
            token,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
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
        let response = self
            .http
            .post(format!("{}/admin/tenants", self.base))
            .bearer_auth(&self.token)
            .json(&spec)
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() != 201 {
            bail!(
                "creating tenant {id} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Restarts a tenant as an operator would (`POST /admin/tenants/{id}/restart`, 202).
    pub async fn restart_tenant(&self, id: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/admin/tenants/{id}/restart", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() != 202 {
            bail!(
                "restarting tenant {id} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Deletes a tenant (`DELETE /admin/tenants/{id}`, with `?purge=true` if `purge`; 204).
    pub async fn delete_tenant(&self, id: &str, purge: bool) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(format!("{}/admin/tenants/{id}?purge={purge}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() != 204 {
            bail!(
                "deleting tenant {id} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The tenant view (`GET /admin/tenants/{id}`).
    pub async fn view(&self, id: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/admin/tenants/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Polls the view every `every` until `done` holds; fails after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        every: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.view(id).await?;
            if done(&view) {
                return Ok(view);
            }
            if Instant::now() >= deadline {
                bail!("tenant {id} not ready within {timeout:?}: {view}");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until the first full sync finished and the tenant is `live`.
    pub async fn wait_live_after_sync(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_for(id, timeout, Duration::from_millis(100), |view| {
            view["last_sync"]["finished_at"].is_string() && view["state"] == "live"
        })
        .await
    }

    /// The webhook target of a tenant, read from its stored spec.
    pub fn webhook_target(&self, id: &str) -> anyhow::Result<WebhookTarget> {
        let spec = self
            .state
            .store
            .tenant_spec(id)?
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
