//! Scenario a: webhook ingest. Many keep-alive connections post valid deliveries to one
//! tenant's webhook URL (each answered 200 only once stored durably), alternating in
//! rounds with a bare axum route in the same process that answers 200 without storing:
//! the ceiling of this machine. Reports both, and their ratio per round.
//!
//! The service is started in this process (on sled or a fresh PostgreSQL database,
//! `--backend`), or is any running one at a base URL (a
//! load balancer in front of several nodes), or is N `personio-sync serve` nodes behind
//! nginx started for the run ([`IngestTarget`]). Out of process, the tenant is created
//! and watched through the admin API and deleted afterwards, and group commits are not
//! counted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde::Serialize;
use serde_json::json;

use super::harness::{Harness, HarnessConfig};
use super::rawhttp::{LoadResult, drive, post_request};
use super::stats::{median, ratio};
use crate::Backend;
use personio_sync::actors::status::TenantState;
use personio_sync::admin_client::AdminClient;
use personio_sync::config::Config;
use personio_sync::domain::Secret;
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};
use personio_sync_testkit::cluster::{Cluster, merge_toml, nginx_binary};

/// How to run the ingest scenario.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Concurrent connections.
    pub connections: usize,
    /// Measured seconds per round and target.
    pub duration: Duration,
    /// Rounds (bare, then service, each round).
    pub rounds: usize,
    /// Which service receives the deliveries.
    pub target: IngestTarget,
    /// Where the service in process stores (out of process the nodes' config decides).
    pub backend: Backend,
}

/// Which service the ingest scenario measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestTarget {
    /// The service started in this process on a temporary sled store.
    InProcess,
    /// A running service (or a load balancer in front of several) at this base URL,
    /// with the admin token `admin_token`; it must reach this machine's loopback, where
    /// the simulators run.
    Url {
        /// `http://host:port`.
        base: String,
        /// The admin bearer token.
        admin_token: String,
    },
    /// `nodes` `personio-sync serve` processes (the binary beside this one) behind
    /// nginx, each config changed by the TOML fragments `node_configs` in order (e.g. a
    /// shared storage backend).
    Cluster {
        /// How many nodes.
        nodes: usize,
        /// TOML merged into every node's config, one fragment after another.
        node_configs: Vec<String>,
    },
}

/// One round: both targets under the same load.
#[derive(Debug, Clone, Serialize)]
pub struct IngestRound {
    /// The bare endpoint.
    pub bare: LoadResult,
    /// The service's webhook front door.
    pub service: LoadResult,
    /// Service events/s ÷ bare requests/s.
    pub ratio: f64,
}

/// What the ingest scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct IngestFigures {
    /// The service measured: `in process`, its base URL, or `N nodes behind nginx`.
    pub target: String,
    /// The backend: `sled` or `postgres` (in process, or nodes given a fresh database),
    /// or `node config` (a running service, or nodes on sled / the `--node-config` one).
    pub backend: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Every round.
    pub rounds: Vec<IngestRound>,
    /// Median of the per-round ratios.
    pub ratio: f64,
    /// Events the front door stored (answered 200) in the measured windows.
    pub events_stored: u64,
    /// Seconds the tenant needed after the last round to apply the events left.
    pub drain_seconds: f64,
    /// Events still pending when the drain wait gave up (0 = fully drained).
    pub left_pending: u64,
    /// Group commits (sled write + flush) while the service was under load, warm-ups
    /// included (flushes of the tenant's own writes count too); `None` out of process.
    pub group_commits: Option<u64>,
    /// Events stored per group commit, estimated: service events/s over commits/s.
    pub events_per_commit: Option<f64>,
}

/// A delivery as Personio sends it, for person `person_id`.
pub fn delivery(person_id: &str) -> Vec<u8> {
    let body = json!({
        "company_id": "100001",
        "event_name": "employment.updated",
        "occurred_at": "2025-03-01T10:15:30Z",
        "payload": {"id": "00000000-0000-4000-8000-000000001001", "person_id": person_id},
        "meta": {}
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

async fn start_bare() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/bare/{key}",
        post(|_body: Bytes| async { personio_sync::http::webhooks::stored_response() }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(error = %error, "bare endpoint stopped");
        }
    });
    Ok(addr)
}

/// Runs the scenario against `config.target`.
pub async fn run(config: IngestConfig) -> anyhow::Result<IngestFigures> {
    match &config.target {
        IngestTarget::InProcess => run_in_process(&config).await,
        IngestTarget::Url { base, admin_token } => {
            let admin = AdminClient::new(base.clone(), Secret::new(admin_token.clone()));
            run_remote(&config, admin, base.clone(), "node config".into()).await
        }
        IngestTarget::Cluster {
            nodes,
            node_configs,
        } => {
            anyhow::ensure!(*nodes > 0, "--nodes must be at least 1");
            nginx_binary().context(
                "nginx is needed for --nodes (apt-get install nginx-light, or set NGINX)",
            )?;
            let mut checked = Config::default();
            for fragment in node_configs {
                merge_toml(&mut checked, fragment)
                    .map_err(|error| anyhow::anyhow!("--node-config: {error}"))?;
            }
            let cluster = Cluster::start(*nodes, |_, node| {
                for fragment in node_configs {
                    merge_toml(node, fragment).expect("checked above");
                }
            })
            .await;
            let admin =
                AdminClient::new(cluster.lb_url(), Secret::new(personio_sync_testkit::TOKEN));
            let described = format!(
                "{nodes} node{} behind nginx at {}",
                if *nodes == 1 { "" } else { "s" },
                cluster.lb_url()
            );
            // A fresh PostgreSQL database comes first in the fragments (see `run`).
            let backend = if config.backend == Backend::Postgres {
                "postgres"
            } else {
                "node config"
            };
            run_remote(&config, admin, described, backend.into()).await
        }
    }
}

/// The service in this process: the store's group commits are counted.
async fn run_in_process(config: &IngestConfig) -> anyhow::Result<IngestFigures> {
    let harness = Harness::start(HarnessConfig {
        personio: simulated_company(),
        learnamp: LearnAmpSimConfig::default(),
        concurrency: 8,
        retry: RetryPolicy::default(),
        backend: config.backend,
    })
    .await?;
    harness.create_tenant("ingest", json!({})).await?;
    harness
        .wait_live_after_sync("ingest", Duration::from_secs(120))
        .await?;
    let target = harness.webhook_target("ingest").await?;
    let body = delivery(&first_person(&harness.personio));
    let authorization = target.authorization.expose().to_string();
    let service_request = post_request(&target.path, Some(&authorization), &body);
    let store = &harness.state.store;
    let measured = measure(
        config,
        target.addr,
        &service_request,
        &authorization,
        &body,
        || Some(store.group_flushes()),
    )
    .await?;
    let (drain_seconds, left_pending) = wait_drained(|| async {
        Ok(harness
            .state
            .store
            .tenant("ingest")
            .await?
            .pending_count()
            .await as u64)
    })
    .await?;
    Ok(measured.figures(
        config,
        "in process".into(),
        config.backend.name().into(),
        drain_seconds,
        left_pending,
    ))
}

/// A service out of process, reached through `admin` (and its base URL for the
/// deliveries): simulators here, a tenant created for the run and deleted afterwards.
async fn run_remote(
    config: &IngestConfig,
    admin: AdminClient,
    described: String,
    backend: String,
) -> anyhow::Result<IngestFigures> {
    let personio = PersonioSim::start(simulated_company()).await?;
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default()).await?;
    let tenant = format!("ingest-{}", chrono::Utc::now().timestamp_millis());
    let spec = json!({
        "id": tenant,
        "personio": {"base_url": personio.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "learnamp": {"base_url": learnamp.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "settings": {},
    });
    admin
        .create(&spec)
        .await
        .with_context(|| format!("creating tenant {tenant} at {}", admin.base()))?;
    let result = measure_remote(config, &admin, &tenant, &personio, described, backend).await;
    if let Err(error) = admin.delete(&tenant, true).await {
        tracing::warn!(tenant_id = %tenant, error = %error, "the ingest tenant was not deleted");
    }
    result
}

async fn measure_remote(
    config: &IngestConfig,
    admin: &AdminClient,
    tenant: &str,
    personio: &PersonioSim,
    described: String,
    backend: String,
) -> anyhow::Result<IngestFigures> {
    // Behind a load balancer the next request may reach a node that learns of the new
    // tenant a moment later (from the shared database): wait until 10 views in a row
    // (every node of a round robin more than once) answer, for up to 30 s.
    let known_by = Instant::now() + Duration::from_secs(30);
    let mut in_a_row = 0;
    while in_a_row < 10 {
        match admin.view(tenant).await {
            Ok(_) => in_a_row += 1,
            Err(error) => {
                anyhow::ensure!(
                    Instant::now() < known_by,
                    "tenant {tenant} not visible at {} within 30 s: {error}",
                    admin.base()
                );
                in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let view = admin
        .wait_for(
            tenant,
            Duration::from_secs(120),
            Duration::from_millis(100),
            |view| view.last_sync.is_some() && view.state == TenantState::Live,
        )
        .await?;
    // The subscription the tenant made at the simulator holds the token Personio sends.
    let webhook_url = reqwest::Url::parse(&view.webhook_url)
        .with_context(|| format!("webhook_url {:?}", view.webhook_url))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let authorization = loop {
        let token = personio
            .webhooks()
            .into_iter()
            .find(|hook| hook.url == view.webhook_url)
            .and_then(|hook| hook.token);
        if let Some(token) = token {
            break token.expose().to_string();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "tenant {tenant} made no webhook subscription for {} within 30 s",
            view.webhook_url
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let addr = resolve(admin.base()).await?;
    let body = delivery(&first_person(personio));
    let service_request = post_request(webhook_url.path(), Some(&authorization), &body);
    let measured = measure(
        config,
        addr,
        &service_request,
        &authorization,
        &body,
        || None,
    )
    .await?;
    let (drain_seconds, left_pending) =
        wait_drained(|| async { Ok(admin.view(tenant).await?.pending_events) }).await?;
    Ok(measured.figures(config, described, backend, drain_seconds, left_pending))
}

/// The first address `base` (`http://host:port`) resolves to.
async fn resolve(base: &str) -> anyhow::Result<SocketAddr> {
    let url = reqwest::Url::parse(base).with_context(|| format!("target URL {base:?}"))?;
    anyhow::ensure!(
        url.scheme() == "http",
        "target {base}: only http:// is supported"
    );
    let host = url.host_str().context("target URL without a host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .with_context(|| format!("{host} resolves to no address"))
}

fn simulated_company() -> PersonioSimConfig {
    PersonioSimConfig {
        employees: 20,
        seed: 3,
        ..PersonioSimConfig::default()
    }
}

/// One person for every event: the tenant coalesces a batch into one fetch, so its
/// own processing stays small beside the front door being measured.
fn first_person(personio: &PersonioSim) -> String {
    personio
        .employees()
        .first()
        .map(|person| person.employee.id.clone())
        .unwrap_or_else(|| "1001".into())
}

/// The rounds, and the group commits under load if counted.
struct Measured {
    rounds: Vec<IngestRound>,
    events_stored: u64,
    group_commits: Option<u64>,
    loaded_seconds: f64,
}

impl Measured {
    fn figures(
        self,
        config: &IngestConfig,
        target: String,
        backend: String,
        drain_seconds: f64,
        left_pending: u64,
    ) -> IngestFigures {
        let ratios: Vec<f64> = self.rounds.iter().map(|round| round.ratio).collect();
        let events_per_second = self
            .rounds
            .iter()
            .map(|round| round.service.per_second)
            .sum::<f64>()
            / self.rounds.len().max(1) as f64;
        let events_per_commit = self.group_commits.map(|commits| {
            if commits == 0 {
                0.0
            } else {
                events_per_second / (commits as f64 / self.loaded_seconds)
            }
        });
        IngestFigures {
            target,
            backend,
            connections: config.connections,
            ratio: median(&ratios),
            rounds: self.rounds,
            events_stored: self.events_stored,
            drain_seconds,
            left_pending,
            group_commits: self.group_commits,
            events_per_commit,
        }
    }
}

/// The rounds: the bare endpoint, then `service_request` to `service`, each under the
/// same load; `commits` reads the group-commit counter (`None`: not counted).
async fn measure(
    config: &IngestConfig,
    service: SocketAddr,
    service_request: &[u8],
    authorization: &str,
    body: &[u8],
    commits: impl Fn() -> Option<u64>,
) -> anyhow::Result<Measured> {
    let bare_addr = start_bare().await?;
    let bare_request = post_request("/bare/0123456789abcdef", Some(authorization), body);
    let warmup = Duration::from_millis(500);
    let mut rounds = Vec::new();
    let mut events_stored = 0;
    let mut group_commits = commits().map(|_| 0);
    for _ in 0..config.rounds.max(1) {
        let bare = drive(
            bare_addr,
            &bare_request,
            config.connections,
            warmup,
            config.duration,
        )
        .await?;
        let commits_before = commits();
        let service = drive(
            service,
            service_request,
            config.connections,
            warmup,
            config.duration,
        )
        .await?;
        events_stored += service.ok;
        if let (Some(total), Some(before), Some(after)) =
            (group_commits.as_mut(), commits_before, commits())
        {
            *total += after - before;
        }
        let round_ratio = ratio(service.per_second, bare.per_second);
        rounds.push(IngestRound {
            bare,
            service,
            ratio: round_ratio,
        });
    }
    let loaded_seconds = (warmup + config.duration).as_secs_f64() * rounds.len() as f64;
    Ok(Measured {
        rounds,
        events_stored,
        group_commits,
        loaded_seconds,
    })
}

/// How long the tenant may take to apply what the rounds stored. It applies at
/// Personio's pace: one employee read per drained batch of up to 256 events (all for
/// the one person), reads paced at 30/s, so about 7,700 events/s: a million events
/// need a little over two minutes.
const DRAIN_WAIT: Duration = Duration::from_secs(240);

/// Polls `pending` (the tenant's events not yet applied) until it is 0 or the drain
/// wait is over: the seconds that took and what was left.
async fn wait_drained<F, Fut>(pending: F) -> anyhow::Result<(f64, u64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let started = Instant::now();
    let deadline = started + DRAIN_WAIT;
    loop {
        let pending = pending().await?;
        if pending == 0 || Instant::now() >= deadline {
            return Ok((started.elapsed().as_secs_f64(), pending));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
