//! Builds and runs the service: opens the store, starts the supervisor and every stored
//! tenant, binds the front door, and shuts down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;

pub mod directory;
pub mod services;

use crate::actors::router::WebhookRouter;
use crate::actors::status::TenantViews;
use crate::actors::supervisor::{Supervisor, SupervisorMsg};
use crate::config::Config;
use crate::domain::Secret;
use crate::domain::tenant::TenantSpec;
use crate::http::{self, AppState};
use crate::retry::RetryPolicy;
use crate::store::{Store, StoreError};
use services::Services;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor system failed.
    #[error("cannot start the supervisor: {0}")]
    Actors(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// The admin token is too short to resist guessing.
    #[error(
        "the admin token is {0} characters long; it must be at least {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -hex 24`)"
    )]
    AdminTokenTooShort(usize),
    /// A `[server]` address does not parse.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The lease tables (PostgreSQL) cannot be reached.
    #[error("cannot reach the lease tables of storage.postgres_url: {0}")]
    Leases(String),
}

/// What `run` needs to run tenants through leases (PostgreSQL backend).
struct Leasing {
    table: crate::cluster::lease::LeaseTable,
    config: crate::cluster::manager::ManagerConfig,
    wake: Arc<tokio::sync::Notify>,
    /// The most the lease manager's shutdown may take (SIGTERM ends the process
    /// within 10 s, the server's grace included).
    shutdown_budget: Duration,
}

/// The lease table of `config`'s PostgreSQL database, on a small pool of its own so
/// renewing never waits behind the tenants' commits.
async fn lease_table(
    config: &Config,
    node_id: String,
) -> Result<crate::cluster::lease::LeaseTable, StartError> {
    use std::str::FromStr;
    let mut options = sqlx::postgres::PgConnectOptions::from_str(&config.storage.postgres_url)
        .map_err(|_| StartError::Leases("storage.postgres_url is not a PostgreSQL URL".into()))?;
    if let Some(password) = config.postgres_password(|name| std::env::var(name).ok()) {
        options = options.password(&password);
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(|error| StartError::Leases(error.to_string()))?;
    Ok(crate::cluster::lease::LeaseTable::new(
        pool,
        node_id,
        Duration::from_secs(config.cluster.lease_seconds),
    ))
}

/// Shortest admin token accepted at start.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Checks that the admin token is long enough to resist guessing.
pub fn check_admin_token(token: &Secret) -> Result<(), StartError> {
    let length = token.expose().chars().count();
    if length < MIN_ADMIN_TOKEN_CHARS {
        return Err(StartError::AdminTokenTooShort(length));
    }
    Ok(())
}

/// Knobs that tests, the demo and benchmarks set differently from production.
#[derive(Debug, Clone)]
pub struct Options {
    /// Retry policy of the API clients.
    pub retry: RetryPolicy,
    /// Per-request timeout of the API clients.
    pub request_timeout: Duration,
    /// First restart delay of a crashed tenant (1 s in production).
    pub restart_base: Duration,
    /// The `[personio_oidc]` client secret; `None` = read from the variable
    /// `personio_oidc.client_secret_env` names (tests pass the simulator's).
    pub oidc_client_secret: Option<Secret>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            restart_base: Duration::from_secs(1),
            oidc_client_secret: None,
        }
    }
}

/// A built service, bound but not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The private metrics listener, if `server.metrics_listen` names one.
    metrics_listener: Option<TcpListener>,
    limits: http::server::Limits,
    state: AppState,
    local_addr: SocketAddr,
    /// Tenants found in storage, started by `run` while it serves.
    stored: Vec<TenantSpec>,
    /// Set on PostgreSQL: tenants start through leases instead.
    leasing: Option<Leasing>,
}

impl Application {
    /// Opens nothing itself: takes the store, checks the admin token, binds
    /// `config.server.listen` (port 0 allowed; then `public_url` follows the bound
    /// port) and `config.server.metrics_listen` (if set), starts the supervisor and
    /// registers every tenant found in storage (their actors start in [`Self::run`]).
    pub async fn build(
        config: &Config,
        store: Store,
        admin_token: Secret,
        options: Options,
    ) -> Result<Self, StartError> {
        check_admin_token(&admin_token)?;
        let (listener, local_addr) = bind(&config.server.listen).await?;
        let metrics_listener = match config.metrics_addr()? {
            Some(_) => Some(bind(config.server.metrics_listen.trim()).await?.0),
            None => None,
        };
        let public_url = if config.listen_addr().map(|a| a.port() == 0).unwrap_or(false) {
            format!("http://{local_addr}")
        } else {
            config.server.public_url.clone()
        };
        // Session cookies are `Secure` when the pages are served over https.
        let secure_cookie = public_url.starts_with("https://");
        if public_url.starts_with("http://")
            && !public_url.contains("127.0.0.1")
            && !public_url.contains("localhost")
        {
            tracing::warn!(public_url = %public_url, "public_url is not https: real Personio only accepts https webhook URLs");
        }
        // No redirects: a 3xx is an error naming the system, so a credential is never
        // re-sent to a host the tenant's spec does not name.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| StartError::Http(error.to_string()))?;
        let oidc = relying_party(config, &options, &http)?;
        let views = Arc::new(TenantViews::default());
        let router = Arc::new(WebhookRouter::new(views.clone()));
        let services = Services {
            store: store.clone(),
            views: views.clone(),
            router: router.clone(),
            http,
            retry: options.retry,
            concurrency: config.sync.concurrency,
            reconcile_interval: Duration::from_secs(config.sync.reconcile_interval_secs),
            public_url,
            clock: crate::clock::system(),
            restart_base: options.restart_base,
            start_gate: Arc::new(tokio::sync::Semaphore::new(
                crate::actors::tenant::START_GATE,
            )),
            personio_v1_pacer: Arc::new(crate::pacer::Pacer::new(config.personio.v1_rate())),
            personio_base_url: config.personio.base_url.clone(),
            oidc,
            oidc_tokens: Arc::default(),
        };
        let (supervisor, _handle) = Actor::spawn(None, Supervisor, services.clone())
            .await
            .map_err(|error| StartError::Actors(error.to_string()))?;
        let leasing = match config.storage.backend {
            crate::config::StorageBackend::Sled => None,
            crate::config::StorageBackend::Postgres => {
                let manager = crate::cluster::manager::ManagerConfig::from_section(
                    &config.cluster,
                    services.public_url.clone(),
                );
                let table = lease_table(config, manager.node_id.clone()).await?;
                let grace = config.server.shutdown_grace_secs;
                Some(Leasing {
                    table,
                    config: manager,
                    wake: Arc::new(tokio::sync::Notify::new()),
                    shutdown_budget: Duration::from_secs(9u64.saturating_sub(grace).max(1)),
                })
            }
        };
        let state: AppState = Arc::new(http::AppShared {
            store: store.clone(),
            views,
            router,
            supervisor,
            admin_token,
            services,
            inbox_cap: config.storage.inbox_cap,
            sessions: crate::web::Sessions::new(store.clone(), secure_cookie),
            directory: directory::Directory::of_store(&store),
            leases: leasing.as_ref().map(|leasing| leasing.wake.clone()),
        });
        // Stored tenants are known (views, webhook routes) before the first request is
        // served, so deliveries for them are stored from the first moment; their actors
        // start once the service is serving (see `run`) and drain what arrived meanwhile.
        // Decided once, before any tenant starts: each tenant reads its own mark.
        let reconcile = config.sync.reconcile_after_unclean_stop;
        if let crate::store::PreviousRun::Unclean { tenants } = store.begin_run(reconcile).await? {
            if reconcile {
                tracing::warn!(
                    tenants,
                    "the last run did not stop cleanly: every synced tenant runs one full reconciliation after it starts"
                );
            } else {
                tracing::warn!(
                    "the last run did not stop cleanly (sync.reconcile_after_unclean_stop is off: no reconciliation at start)"
                );
            }
        }
        let stored = crate::connect::record_operator_connections(&store).await?;
        for spec in &stored {
            state.services.announce(spec).await;
        }
        Ok(Self {
            listener,
            metrics_listener,
            limits: http::server::Limits::from_config(&config.server),
            state,
            local_addr,
            stored,
            leasing,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the private metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The shared state (tests read the board through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The supervisor.
    pub fn supervisor(&self) -> ActorRef<SupervisorMsg> {
        self.state.supervisor.clone()
    }

    /// Serves until `shutdown` completes, then stops the actors and flushes storage.
    /// The tenants found in storage are started in the background while it serves, so
    /// `/healthz`, the admin API and the webhook front door answer from the start.
    /// Requests still running at shutdown get `server.shutdown_grace_secs` to finish
    /// (see [`http::server`]).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = http::router(self.state.clone());
        let directory_tasks = match &self.state.directory {
            directory::Directory::Local => Vec::new(),
            directory::Directory::Postgres(directory) => {
                directory.spawn(self.state.clone(), self.state.store.listen_inbox())
            }
        };
        // On PostgreSQL the lease manager starts the tenants this node takes.
        let (stored, lease_manager) = match self.leasing {
            None => (self.stored, None),
            Some(leasing) => {
                let host = Arc::new(crate::cluster::host::ServeHost::new(self.state.clone()));
                let spawned = crate::cluster::manager::LeaseManager::spawn(
                    leasing.table,
                    host,
                    leasing.config,
                    leasing.wake,
                )
                .await;
                let manager = match spawned {
                    Ok(manager) => Some((manager, leasing.shutdown_budget)),
                    Err(error) => {
                        tracing::error!(error = %error, "this node could not register: it runs no tenant");
                        None
                    }
                };
                (Vec::new(), manager)
            }
        };
        let starter = {
            let state = self.state.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let count = stored.len();
                for spec in stored {
                    let id = spec.id.clone();
                    if let Err(error) = http::admin::start_tenant(&state, spec).await {
                        tracing::error!(tenant_id = %id, error = %error, "stored tenant could not start");
                    }
                }
                tracing::info!(
                    tenants = count,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "stored tenants started"
                );
            })
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.map(|listener| {
            let router = http::metrics_router(self.state.clone());
            let limits = self.limits.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                http::server::serve(listener, router, limits, stop).await
            })
        });
        let result = http::server::serve(self.listener, router, self.limits, async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        starter.abort();
        if let Some((manager, budget)) = lease_manager {
            // Tenants stopped and flushed, leases released for the other nodes.
            manager.shutdown_within(budget).await;
        }
        for task in directory_tasks {
            task.abort();
        }
        self.state.supervisor.stop(Some("shutdown".into()));
        match self.state.store.flush().await {
            // Only a run whose writes are all durable counts as a clean stop.
            Ok(()) => {
                if let Err(error) = self.state.store.end_run().await {
                    tracing::error!(error = %error, "clean stop not recorded");
                }
            }
            Err(error) => tracing::error!(error = %error, "final flush failed"),
        }
        result
    }
}

/// The "Sign in with Personio" relying party of `[personio_oidc]`, if an issuer is
/// configured; its client secret from `options` or the variable the config names.
fn relying_party(
    config: &Config,
    options: &Options,
    http: &reqwest::Client,
) -> Result<Option<Arc<crate::personio::oidc::RelyingParty>>, StartError> {
    let section = &config.personio_oidc;
    if !section.enabled() {
        return Ok(None);
    }
    let secret = match &options.oidc_client_secret {
        Some(secret) => secret.clone(),
        None => config
            .oidc_client_secret(|name| std::env::var(name).ok())?
            .unwrap_or_default(),
    };
    let settings = crate::personio::oidc::OidcSettings {
        issuer: section.issuer.trim().to_string(),
        client_id: section.client_id.trim().to_string(),
        client_secret: secret,
    };
    crate::personio::oidc::RelyingParty::new(settings, http.clone())
        .map(|rp| Some(Arc::new(rp)))
        .map_err(|error| StartError::Config(crate::config::ConfigError::Invalid(error.to_string())))
}

/// Binds `addr`; the listener and its bound address.
async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let failed = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local_addr = listener.local_addr().map_err(failed)?;
    Ok((listener, local_addr))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tokens_shorter_than_32_characters_are_refused() {
        let error = check_admin_token(&Secret::new("x".repeat(31))).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("31 characters"), "{message}");
        assert!(message.contains("at least 32"), "{message}");
        assert!(!message.contains(&"x".repeat(31)), "the token is not shown");
        check_admin_token(&Secret::new("x".repeat(32))).unwrap();
    }
}
