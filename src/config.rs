//! The service configuration (`config.toml`): defaults for every key, environment
//! overrides `PERSONIO_SYNC_<SECTION>_<KEY>`, and unknown keys rejected by name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// An environment override could not be parsed.
    #[error("invalid value in environment variable {var}: {reason}")]
    Env {
        /// The variable name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Front door and admin API address.
    pub listen: String,
    /// Base of the webhook URLs registered in Personio.
    pub public_url: String,
    /// Address of the private metrics listener (`/metrics` with per-tenant series);
    /// empty = none. Port 0 = any free port.
    pub metrics_listen: String,
    /// Seconds a new connection has to send its first request head (and a kept-alive
    /// one to finish a head once its first byte arrived).
    pub header_read_timeout_secs: u64,
    /// Seconds from the end of a request's head to the end of its body (408 after);
    /// also the most an answer may take to be written.
    pub request_timeout_secs: u64,
    /// Seconds an answered (keep-alive) connection may wait for its next request.
    pub idle_timeout_secs: u64,
    /// Connections open at once (beyond it, new ones wait to be accepted).
    pub max_connections: usize,
    /// Requests handled at once (beyond it, 503 with `Retry-After`).
    pub max_requests_in_flight: usize,
    /// Seconds requests running at shutdown may take to finish (at most 8, so the
    /// process exits within 10 s of SIGTERM).
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            metrics_listen: "127.0.0.1:9464".into(),
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 1024,
            max_requests_in_flight: 512,
            shutdown_grace_secs: 5,
        }
    }
}

/// Longest `server.shutdown_grace_secs`: SIGTERM must end the process within 10 s.
pub const MAX_SHUTDOWN_GRACE_SECS: u64 = 8;

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the sled database lives.
    pub data_dir: PathBuf,
    /// sled page cache, in MiB (sled's own default of 1 GiB is too much for a side service).
    pub cache_mb: u64,
    /// File holding the secret key (64 hex digits) that encrypts tenant secrets at rest;
    /// empty = none (`PERSONIO_SYNC_SECRET_KEY`, else `<data_dir>/secret.key`).
    pub key_file: PathBuf,
    /// Webhook events a tenant's inbox may hold; beyond it deliveries are answered 503
    /// with `Retry-After` (Personio sends them again later).
    pub inbox_cap: u64,
    /// Where the data lives: sled under `data_dir`, or PostgreSQL at `postgres_url`.
    pub backend: StorageBackend,
    /// `postgres://user@host:port/database` (with `backend = "postgres"`); the password
    /// belongs in the variable `postgres_password_env` names, not here.
    pub postgres_url: String,
    /// Name of the environment variable holding the PostgreSQL password.
    pub postgres_password_env: String,
    /// Connections to PostgreSQL.
    pub postgres_pool: u32,
}

/// `storage.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// sled under `storage.data_dir`.
    #[default]
    Sled,
    /// PostgreSQL at `storage.postgres_url`.
    Postgres,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            cache_mb: 128,
            key_file: PathBuf::new(),
            inbox_cap: 1_000_000,
            backend: StorageBackend::Sled,
            postgres_url: String::new(),
            postgres_password_env: "PERSONIO_SYNC_PG_PASSWORD".into(),
            postgres_pool: 16,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Name of the environment variable holding the admin API bearer token.
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token_env: "PERSONIO_SYNC_ADMIN_TOKEN".into(),
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Full reconciliation per tenant, as a safety net for missed webhooks.
    pub reconcile_interval_secs: u64,
    /// Learn Amp writes in flight at once per tenant during a full sync.
    pub concurrency: usize,
    /// After an unclean stop (kill, crash), every tenant whose initial sync is done runs
    /// one full reconciliation when it starts: sled may have lost its last writes.
    pub reconcile_after_unclean_stop: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            reconcile_interval_secs: 86_400,
            concurrency: 8,
            reconcile_after_unclean_stop: true,
        }
    }
}

/// Personio's documented limit on all v1 calls from one source IP, per minute
/// (reference §9); every tenant shares the service's IP.
pub const PERSONIO_V1_PER_IP_LIMIT: u32 = 2000;

/// `[personio]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonioSection {
    /// v1 requests per minute for the whole process, all tenants together (Personio
    /// limits v1 by source IP). Default: 90% of the documented 2,000/min.
    pub v1_requests_per_minute: u32,
    /// The Personio API of tenants connected from the connect page.
    pub base_url: String,
}

impl Default for PersonioSection {
    fn default() -> Self {
        Self {
            v1_requests_per_minute: PERSONIO_V1_PER_IP_LIMIT / 10 * 9,
            base_url: "https://api.personio.de".into(),
        }
    }
}

/// `[personio_oidc]`: "Sign in with Personio" (OpenID Connect) on the connect page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonioOidcSection {
    /// The issuer URL (discovery at `{issuer}/.well-known/openid-configuration`);
    /// empty = "Sign in with Personio" is unavailable and only API credentials work.
    pub issuer: String,
    /// The service's client id at the issuer.
    pub client_id: String,
    /// Name of the environment variable holding the client secret.
    pub client_secret_env: String,
}

impl Default for PersonioOidcSection {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret_env: "PERSONIO_SYNC_OIDC_CLIENT_SECRET".into(),
        }
    }
}

impl PersonioOidcSection {
    /// Whether "Sign in with Personio" is configured (an issuer is set).
    pub fn enabled(&self) -> bool {
        !self.issuer.trim().is_empty()
    }
}

impl PersonioSection {
    /// The pace of the process-wide v1 pacer: the configured rate, with a burst of one
    /// second's worth.
    pub fn v1_rate(&self) -> crate::pacer::Rate {
        let per_second = f64::from(self.v1_requests_per_minute) / 60.0;
        crate::pacer::Rate {
            per_second,
            burst: (per_second.floor() as u32).max(1),
        }
    }
}

/// `[cluster]`: several nodes on one PostgreSQL database, each running the tenants it
/// holds leases for (only meaningful with the PostgreSQL storage backend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// This node's id in the lease and node tables; empty = `<hostname>-<pid>`.
    pub node_id: String,
    /// Seconds a lease lasts past each renew (by the database's clock); a node that
    /// stops renewing loses its tenants to the others this long after its last renew.
    pub lease_seconds: u64,
    /// Seconds between renews (at most a third of `lease_seconds`).
    pub renew_seconds: u64,
    /// Tenants a node may hold beyond the even split: fair share = ceil(T/N) + slack.
    pub share_slack: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            lease_seconds: 15,
            renew_seconds: 5,
            share_slack: 2,
        }
    }
}

/// Longest `cluster.node_id`.
pub const MAX_NODE_ID_LEN: usize = 128;

impl ClusterSection {
    /// This node's id: `node_id`, or `<hostname>-<pid>` when it is empty.
    pub fn node_id(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|host| host.trim().to_string())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let id = &self.node_id;
        if id.len() > MAX_NODE_ID_LEN || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid(format!(
                "cluster.node_id: must be at most {MAX_NODE_ID_LEN} characters without spaces or control characters (or empty for hostname-pid)"
            )));
        }
        if !(3..=3600).contains(&self.lease_seconds) {
            return Err(ConfigError::Invalid(
                "cluster.lease_seconds: must be between 3 and 3600".into(),
            ));
        }
        if self.renew_seconds == 0 || self.renew_seconds * 3 > self.lease_seconds {
            return Err(ConfigError::Invalid(format!(
                "cluster.renew_seconds: must be between 1 and a third of cluster.lease_seconds ({}), so a lease is renewed at least twice before it could be lost",
                self.lease_seconds / 3
            )));
        }
        if self.share_slack > 1_000_000 {
            return Err(ConfigError::Invalid(
                "cluster.share_slack: must be at most 1000000".into(),
            ));
        }
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `log_format = "text" | "json"`.
    pub log_format: LogFormat,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[sync]`.
    pub sync: SyncConfig,
    /// `[personio]`.
    pub personio: PersonioSection,
    /// `[personio_oidc]`.
    pub personio_oidc: PersonioOidcSection,
    /// `[cluster]`.
    pub cluster: ClusterSection,
}

/// The kind of value a key holds, to parse its environment override.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// Every overridable key: (section, key, kind). `""` is the top level.
const KEYS: &[(&str, &str, Kind)] = &[
    ("", "log_format", Kind::Str),
    ("server", "listen", Kind::Str),
    ("server", "public_url", Kind::Str),
    ("server", "metrics_listen", Kind::Str),
    ("server", "header_read_timeout_secs", Kind::Int),
    ("server", "request_timeout_secs", Kind::Int),
    ("server", "idle_timeout_secs", Kind::Int),
    ("server", "max_connections", Kind::Int),
    ("server", "max_requests_in_flight", Kind::Int),
    ("server", "shutdown_grace_secs", Kind::Int),
    ("storage", "data_dir", Kind::Str),
    ("storage", "cache_mb", Kind::Int),
    ("storage", "key_file", Kind::Str),
    ("storage", "inbox_cap", Kind::Int),
    ("storage", "backend", Kind::Str),
    ("storage", "postgres_url", Kind::Str),
    ("storage", "postgres_password_env", Kind::Str),
    ("storage", "postgres_pool", Kind::Int),
    ("admin", "token_env", Kind::Str),
    ("sync", "reconcile_interval_secs", Kind::Int),
    ("sync", "concurrency", Kind::Int),
    ("sync", "reconcile_after_unclean_stop", Kind::Bool),
    ("personio", "v1_requests_per_minute", Kind::Int),
    ("personio", "base_url", Kind::Str),
    ("personio_oidc", "issuer", Kind::Str),
    ("personio_oidc", "client_id", Kind::Str),
    ("personio_oidc", "client_secret_env", Kind::Str),
    ("cluster", "node_id", Kind::Str),
    ("cluster", "lease_seconds", Kind::Int),
    ("cluster", "renew_seconds", Kind::Int),
    ("cluster", "share_slack", Kind::Int),
];

/// Whether `text` parses as an http:// or https:// URL.
fn is_http_url(text: &str) -> bool {
    (text.starts_with("http://") || text.starts_with("https://"))
        && reqwest::Url::parse(text).is_ok()
}

/// The environment variable that overrides `section.key`.
pub fn env_var_name(section: &str, key: &str) -> String {
    if section.is_empty() {
        format!("PERSONIO_SYNC_{}", key.to_ascii_uppercase())
    } else {
        format!(
            "PERSONIO_SYNC_{}_{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    }
}

impl Config {
    /// Loads `path` (a missing file at the default path is an empty config), then applies
    /// environment overrides from the process environment.
    pub fn load(path: &Path, path_was_given: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !path_was_given => {
                String::new()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::from_toml_with_env(&text, |name| std::env::var(name).ok())
    }

    /// Parses `text` and applies overrides looked up through `env`.
    pub fn from_toml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|error| ConfigError::Invalid(error.message().into()))?;
        for (section, key, kind) in KEYS {
            let var = env_var_name(section, key);
            let Some(raw) = env(&var) else { continue };
            let value = match kind {
                Kind::Str => toml::Value::String(raw),
                Kind::Int => {
                    toml::Value::Integer(raw.trim().parse().map_err(|_| ConfigError::Env {
                        var: var.clone(),
                        reason: "expected an integer".into(),
                    })?)
                }
                Kind::Bool => {
                    toml::Value::Boolean(raw.trim().parse().map_err(|_| ConfigError::Env {
                        var: var.clone(),
                        reason: "expected true or false".into(),
                    })?)
                }
            };
            let target = if section.is_empty() {
                &mut table
            } else {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(inner) => inner,
                    _ => {
                        return Err(ConfigError::Invalid(format!("`{section}` must be a table")));
                    }
                }
            };
            target.insert(key.to_string(), value);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if path.is_empty() || path == "." {
                    ConfigError::Invalid(inner.message().to_string())
                } else {
                    ConfigError::Invalid(format!("{path}: {}", inner.message()))
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if !(self.server.public_url.starts_with("http://")
            || self.server.public_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(
                "server.public_url: must start with http:// or https://".into(),
            ));
        }
        self.metrics_addr()?;
        let server = &self.server;
        for (name, value) in [
            ("header_read_timeout_secs", server.header_read_timeout_secs),
            ("request_timeout_secs", server.request_timeout_secs),
            ("idle_timeout_secs", server.idle_timeout_secs),
            ("max_connections", server.max_connections as u64),
            (
                "max_requests_in_flight",
                server.max_requests_in_flight as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "server.{name}: must be at least 1"
                )));
            }
        }
        if server.shutdown_grace_secs > MAX_SHUTDOWN_GRACE_SECS {
            return Err(ConfigError::Invalid(format!(
                "server.shutdown_grace_secs: must be at most {MAX_SHUTDOWN_GRACE_SECS}, so SIGTERM ends the process within 10 s"
            )));
        }
        if self.storage.inbox_cap == 0 {
            return Err(ConfigError::Invalid(
                "storage.inbox_cap: must be at least 1".into(),
            ));
        }
        self.validate_storage()?;
        if self.sync.reconcile_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "sync.reconcile_interval_secs: must be at least 1".into(),
            ));
        }
        if self.sync.concurrency == 0 || self.sync.concurrency > 256 {
            return Err(ConfigError::Invalid(
                "sync.concurrency: must be between 1 and 256".into(),
            ));
        }
        if !(1..=PERSONIO_V1_PER_IP_LIMIT).contains(&self.personio.v1_requests_per_minute) {
            return Err(ConfigError::Invalid(format!(
                "personio.v1_requests_per_minute: must be between 1 and {PERSONIO_V1_PER_IP_LIMIT} (Personio's per-IP limit)"
            )));
        }
        if !is_http_url(&self.personio.base_url) {
            return Err(ConfigError::Invalid(
                "personio.base_url: must be an http:// or https:// URL".into(),
            ));
        }
        let oidc = &self.personio_oidc;
        if oidc.enabled() {
            if !is_http_url(&oidc.issuer) {
                return Err(ConfigError::Invalid(
                    "personio_oidc.issuer: must be an http:// or https:// URL (or empty for none)"
                        .into(),
                ));
            }
            if oidc.client_id.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "personio_oidc.client_id: must be set when personio_oidc.issuer is".into(),
                ));
            }
            if oidc.client_secret_env.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "personio_oidc.client_secret_env: must name an environment variable".into(),
                ));
            }
        }
        self.cluster.validate()?;
        Ok(())
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
        let storage = &self.storage;
        if storage.backend != StorageBackend::Postgres {
            return Ok(());
        }
        let url = storage.postgres_url.trim();
        if url.is_empty() {
            return Err(ConfigError::Invalid(
                "storage.postgres_url: must be set when storage.backend = \"postgres\"".into(),
            ));
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid(
                "storage.postgres_url: must start with postgres:// or postgresql://".into(),
            ));
        }
        if storage.postgres_password_env.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "storage.postgres_password_env: must name an environment variable".into(),
            ));
        }
        if !(1..=1000).contains(&storage.postgres_pool) {
            return Err(ConfigError::Invalid(
                "storage.postgres_pool: must be between 1 and 1000".into(),
            ));
        }
        Ok(())
    }

    /// The PostgreSQL password, from the variable `storage.postgres_password_env` names
    /// (`None` when it is unset or empty: the server may not need one).
    pub fn postgres_password(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.storage.postgres_password_env).filter(|value| !value.is_empty())
    }

    /// The client secret of `[personio_oidc]`, read from the variable
    /// `client_secret_env` names; `Ok(None)` when no issuer is configured. A missing or
    /// empty variable is an error naming the key and the variable (never the value).
    pub fn oidc_client_secret(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<crate::domain::Secret>, ConfigError> {
        let oidc = &self.personio_oidc;
        if !oidc.enabled() {
            return Ok(None);
        }
        match env(&oidc.client_secret_env).filter(|value| !value.is_empty()) {
            Some(value) => Ok(Some(crate::domain::Secret::new(value))),
            None => Err(ConfigError::Invalid(format!(
                "personio_oidc.client_secret_env: the variable {} is not set; set it to the client secret of personio_oidc.client_id",
                oidc.client_secret_env
            ))),
        }
    }

    /// Checks `server.listen` after a change made in code.
    pub fn validate_listen(&self) -> Result<(), ConfigError> {
        self.listen_addr().map(|_| ())
    }

    /// `server.metrics_listen` as a socket address; `None` when it is empty (no
    /// metrics listener).
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let text = self.server.metrics_listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            ConfigError::Invalid(format!(
                "server.metrics_listen: `{text}` is not an address like 127.0.0.1:9464 (or empty for none)"
            ))
        })
    }

    /// `server.listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.listen: `{}` is not an address like 127.0.0.1:8080",
                self.server.listen
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.sync.reconcile_interval_secs, 86_400);
        assert_eq!(config.admin.token_env, "PERSONIO_SYNC_ADMIN_TOKEN");
        assert_eq!(config.storage.key_file, PathBuf::new());
    }

    #[test]
    fn key_file_comes_from_the_file_or_the_environment() {
        let config =
            Config::from_toml_with_env("[storage]\nkey_file = \"/etc/ps/key\"\n", no_env).unwrap();
        assert_eq!(config.storage.key_file, PathBuf::from("/etc/ps/key"));
        let env = |name: &str| {
            (name == "PERSONIO_SYNC_STORAGE_KEY_FILE").then(|| "/run/secrets/key".to_string())
        };
        let config = Config::from_toml_with_env("", env).unwrap();
        assert_eq!(config.storage.key_file, PathBuf::from("/run/secrets/key"));
    }

    #[test]
    fn the_connect_flow_keys_have_defaults_and_name_themselves_when_wrong() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config.personio.base_url, "https://api.personio.de");
        assert!(!config.personio_oidc.enabled());
        assert_eq!(
            config.personio_oidc.client_secret_env,
            "PERSONIO_SYNC_OIDC_CLIENT_SECRET"
        );
        assert_eq!(config.oidc_client_secret(no_env).unwrap(), None);
        for (text, key) in [
            ("[personio]\nbase_url = \"ftp://x\"\n", "personio.base_url"),
            (
                "[personio_oidc]\nissuer = \"nope\"\nclient_id = \"c\"\n",
                "personio_oidc.issuer",
            ),
            (
                "[personio_oidc]\nissuer = \"https://id.example\"\n",
                "personio_oidc.client_id",
            ),
            ("[personio_oidc]\nsecret = \"x\"\n", "secret"),
        ] {
            let error = Config::from_toml_with_env(text, no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{key}: {error}");
        }
        let text = "[personio_oidc]\nissuer = \"https://id.example\"\nclient_id = \"c\"\nclient_secret_env = \"MY_OIDC\"\n";
        let config = Config::from_toml_with_env(text, no_env).unwrap();
        let error = config.oidc_client_secret(no_env).unwrap_err().to_string();
        assert!(
            error.contains("personio_oidc.client_secret_env") && error.contains("MY_OIDC"),
            "{error}"
        );
        let secret = config
            .oidc_client_secret(|name| (name == "MY_OIDC").then(|| "s3cret".to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), "s3cret");
        let config = Config::from_toml_with_env("", |name| {
            (name == "PERSONIO_SYNC_PERSONIO_OIDC_ISSUER").then(|| "https://id.example".to_string())
        });
        assert!(
            config
                .unwrap_err()
                .to_string()
                .contains("personio_oidc.client_id")
        );
    }

    #[test]
    fn the_cluster_keys_have_defaults_and_name_themselves_when_wrong() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config.cluster.lease_seconds, 15);
        assert_eq!(config.cluster.renew_seconds, 5);
        assert_eq!(config.cluster.share_slack, 2);
        let id = config.cluster.node_id();
        assert!(
            id.ends_with(&format!("-{}", std::process::id())) && id.len() > 2,
            "{id}"
        );
        let env = |name: &str| (name == "PERSONIO_SYNC_CLUSTER_NODE_ID").then(|| "n1".to_string());
        assert_eq!(
            Config::from_toml_with_env("", env)
                .unwrap()
                .cluster
                .node_id(),
            "n1"
        );
        for (text, key) in [
            ("[cluster]\nnode_id = \"a b\"\n", "cluster.node_id"),
            ("[cluster]\nlease_seconds = 2\n", "cluster.lease_seconds"),
            ("[cluster]\nrenew_seconds = 0\n", "cluster.renew_seconds"),
            ("[cluster]\nrenew_seconds = 6\n", "cluster.renew_seconds"),
            ("[cluster]\nshare_slack = -1\n", "cluster.share_slack"),
            ("[cluster]\nleases = 1\n", "leases"),
        ] {
            let error = Config::from_toml_with_env(text, no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
        let config = Config::from_toml_with_env(
            "[cluster]\nlease_seconds = 30\nrenew_seconds = 10\n",
            no_env,
        )
        .unwrap();
        assert_eq!(config.cluster.renew_seconds, 10);
    }

    #[test]
    fn the_shipped_config_file_is_valid() {
        Config::from_toml_with_env(include_str!("../config.toml"), no_env).unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::from_toml_with_env("[server]\nlisten_port = 3\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_port"), "{error}");
        let error = Config::from_toml_with_env("[serverx]\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("serverx"), "{error}");
    }

    #[test]
    fn env_overrides_file() {
        let env = |name: &str| match name {
            "PERSONIO_SYNC_SERVER_LISTEN" => Some("127.0.0.1:9999".to_string()),
            "PERSONIO_SYNC_SYNC_RECONCILE_INTERVAL_SECS" => Some("60".to_string()),
            _ => None,
        };
        let config =
            Config::from_toml_with_env("[server]\nlisten = \"127.0.0.1:1\"\n", env).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9999");
        assert_eq!(config.sync.reconcile_interval_secs, 60);
    }

    #[test]
    fn server_limits_have_defaults_and_are_checked() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config.server.header_read_timeout_secs, 10);
        assert_eq!(config.server.request_timeout_secs, 30);
        assert_eq!(config.server.idle_timeout_secs, 60);
        assert_eq!(config.server.metrics_listen, "127.0.0.1:9464");
        assert_eq!(config.storage.inbox_cap, 1_000_000);
        let none = Config::from_toml_with_env("[server]\nmetrics_listen = \"\"\n", no_env).unwrap();
        assert_eq!(none.metrics_addr().unwrap(), None);
        for (text, named) in [
            (
                "[server]\nmetrics_listen = \"x\"\n",
                "server.metrics_listen",
            ),
            (
                "[server]\nshutdown_grace_secs = 9\n",
                "server.shutdown_grace_secs",
            ),
            (
                "[server]\nheader_read_timeout_secs = 0\n",
                "server.header_read_timeout_secs",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            ("[storage]\ninbox_cap = 0\n", "storage.inbox_cap"),
        ] {
            let error = Config::from_toml_with_env(text, no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(named), "{text}: {error}");
        }
        let env = |name: &str| (name == "PERSONIO_SYNC_STORAGE_INBOX_CAP").then(|| "5".to_string());
        assert_eq!(
            Config::from_toml_with_env("", env)
                .unwrap()
                .storage
                .inbox_cap,
            5
        );
    }

    #[test]
    fn the_v1_rate_defaults_under_the_per_ip_limit_and_is_checked() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config.personio.v1_requests_per_minute, 1800);
        let rate = config.personio.v1_rate();
        assert_eq!(rate.per_second, 30.0);
        assert_eq!(rate.burst, 30);
        let env = |name: &str| {
            (name == "PERSONIO_SYNC_PERSONIO_V1_REQUESTS_PER_MINUTE").then(|| "120".to_string())
        };
        let config = Config::from_toml_with_env("", env).unwrap();
        assert_eq!(config.personio.v1_rate().burst, 2);
        for bad in ["0", "2001"] {
            let error = Config::from_toml_with_env(
                &format!("[personio]\nv1_requests_per_minute = {bad}\n"),
                no_env,
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("personio.v1_requests_per_minute"), "{error}");
        }
    }

    #[test]
    fn the_storage_backend_defaults_to_sled_and_postgres_needs_a_url() {
        let config = Config::from_toml_with_env("", no_env).unwrap();
        assert_eq!(config.storage.backend, StorageBackend::Sled);
        assert_eq!(
            config.storage.postgres_password_env,
            "PERSONIO_SYNC_PG_PASSWORD"
        );
        assert_eq!(config.storage.postgres_pool, 16);
        let text = "[storage]\nbackend = \"postgres\"\npostgres_url = \"postgres://ps@db:5432/ps\"\npostgres_pool = 4\n";
        let config = Config::from_toml_with_env(text, no_env).unwrap();
        assert_eq!(config.storage.backend, StorageBackend::Postgres);
        assert_eq!(config.storage.postgres_pool, 4);
        let env = |name: &str| (name == "PERSONIO_SYNC_PG_PASSWORD").then(|| "pw".to_string());
        assert_eq!(config.postgres_password(env).as_deref(), Some("pw"));
        assert_eq!(config.postgres_password(no_env), None);
        let env =
            |name: &str| (name == "PERSONIO_SYNC_STORAGE_BACKEND").then(|| "postgres".to_string());
        let error = Config::from_toml_with_env("", env).unwrap_err().to_string();
        assert!(error.contains("storage.postgres_url"), "{error}");
        for (text, named) in [
            ("[storage]\nbackend = \"mysql\"\n", "mysql"),
            (
                "[storage]\nbackend = \"postgres\"\n",
                "storage.postgres_url",
            ),
            (
                "[storage]\nbackend = \"postgres\"\npostgres_url = \"http://db\"\n",
                "storage.postgres_url",
            ),
            (
                "[storage]\nbackend = \"postgres\"\npostgres_url = \"postgres://db/x\"\npostgres_pool = 0\n",
                "storage.postgres_pool",
            ),
        ] {
            let error = Config::from_toml_with_env(text, no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(named), "{text}: {error}");
        }
        let error = Config::from_toml_with_env("[storage]\nbackend = \"mysql\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("storage.backend"), "{error}");
    }

    #[test]
    fn bad_values_are_named() {
        let error = Config::from_toml_with_env("[server]\nlisten = \"nope\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.listen"), "{error}");
        let error = Config::from_toml_with_env("[sync]\nreconcile_interval_secs = \"x\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sync.reconcile_interval_secs"), "{error}");
        let env =
            |name: &str| (name == "PERSONIO_SYNC_SYNC_CONCURRENCY").then(|| "many".to_string());
        let error = Config::from_toml_with_env("", env).unwrap_err().to_string();
        assert!(error.contains("PERSONIO_SYNC_SYNC_CONCURRENCY"), "{error}");
    }
}
