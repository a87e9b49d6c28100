//! Scenario d: idle tenants. N tenant specs are written to a fresh store with their
//! initial sync marked done, then the real binary (`personio-sync serve`) is started as a
//! child process against both simulators (in this process). Measured: time until
//! `/healthz` answers, time until every tenant is `live` (from `/metrics`), and the
//! child's resident memory, against the same start with no tenant at all.
//!
//! On PostgreSQL (`--backend postgres`) the specs go to a fresh database per start
//! and `--nodes N` processes start on it together (each with the `--node-config`
//! fragment, e.g. `[cluster]`): the clock stops at the last change of the nodes'
//! `live` counts once they add up to the tenants and stay unchanged for 2 s, and memory
//! is read per node. With leases every tenant runs on exactly one node, so the sum is
//! the number of tenants live somewhere; without them every node runs every tenant,
//! and the clock runs until the slowest node has all of them live.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::stats::ratio;
use personio_sync::config::Config;
use personio_sync::domain::tenant::{parse_spec, random_hex};
use personio_sync::store::crypto::{KeySource, SecretKey};
use personio_sync::store::{PgOptions, Store};
use personio_sync_testkit::cluster::merge_toml;

use crate::Backend;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// What one start measured.
#[derive(Debug, Clone, Serialize)]
pub struct StartFigures {
    /// Stored tenants.
    pub tenants: usize,
    /// Seconds from spawning the processes until every one answered `/healthz`.
    pub healthz_seconds: f64,
    /// Seconds from spawning the processes until the nodes' `live` counts reached their
    /// final values (adding up to at least the stored tenants; the last change before
    /// 2 s without one).
    pub all_live_seconds: f64,
    /// Resident memory once every tenant is live (and 1 s later), KiB: the largest node.
    pub rss_kib: u64,
    /// Peak resident memory, KiB: the largest node.
    pub peak_rss_kib: u64,
    /// Per node: `live` tenants, `VmRSS` and `VmHWM` (KiB), 1 s after all were live.
    pub nodes: Vec<NodeFigures>,
}

/// One node of a start.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFigures {
    /// Tenants `live` on this node.
    pub live: u64,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM`, KiB.
    pub peak_rss_kib: u64,
}

/// How to run the idle-tenant scenario.
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    /// Tenant counts, one start each (after the empty baseline).
    pub counts: Vec<usize>,
    /// Where the specs are stored.
    pub backend: Backend,
    /// Processes started on the one PostgreSQL database (sled: always 1).
    pub nodes: usize,
    /// TOML merged into every node's config (PostgreSQL only).
    pub node_config: Option<String>,
}

/// Idle tenants against the empty baseline.
#[derive(Debug, Clone, Serialize)]
pub struct TenantsFigures {
    /// The storage backend.
    pub backend: Backend,
    /// Processes per start.
    pub nodes: usize,
    /// The same start without any tenant.
    pub baseline: StartFigures,
    /// One entry per tenant count.
    pub runs: Vec<TenantRun>,
}

/// One tenant count.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRun {
    /// The start.
    pub start: StartFigures,
    /// `(rss − baseline rss) ÷ tenants`, KiB (target ≤ 100), of the largest node; with
    /// several nodes divided by that node's `live` tenants.
    pub kib_per_tenant: f64,
    /// `all_live_seconds ÷ baseline all_live_seconds`.
    pub start_ratio: f64,
}

/// The `personio-sync` binary built beside this one (`cargo build --release --workspace`
/// builds both).
fn service_binary() -> anyhow::Result<std::path::PathBuf> {
    let bench = std::env::current_exe().context("cannot find the load tool's own path")?;
    let binary = bench.with_file_name(format!("personio-sync{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: build it beside the load tool (cargo build --release --workspace)",
        binary.display()
    );
    Ok(binary)
}

/// Runs the scenario for every count in `config.counts`.
pub async fn run(config: &TenantsConfig) -> anyhow::Result<TenantsFigures> {
    let nodes = match config.backend {
        Backend::Sled => 1,
        Backend::Postgres => config.nodes.max(1),
    };
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 1,
        rate_limits: false,
        ..PersonioSimConfig::default()
    })
    .await?;
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default()).await?;
    let binary = service_binary()?;
    let urls = (personio.base_url.clone(), learnamp.base_url.clone());
    let start = Start {
        binary: &binary,
        urls: &urls,
        backend: config.backend,
        nodes,
        node_config: config.node_config.as_deref(),
    };
    let baseline = start.once(0).await?;
    let mut runs = Vec::new();
    for &count in &config.counts {
        let start = start.once(count).await?;
        let extra = start.rss_kib.saturating_sub(baseline.rss_kib) as f64;
        let on_largest = start
            .nodes
            .iter()
            .max_by_key(|node| node.rss_kib)
            .map_or(count as f64, |node| node.live as f64);
        runs.push(TenantRun {
            kib_per_tenant: ratio(extra, on_largest),
            start_ratio: ratio(start.all_live_seconds, baseline.all_live_seconds),
            start,
        });
    }
    drop((personio, learnamp));
    Ok(TenantsFigures {
        backend: config.backend,
        nodes,
        baseline,
        runs,
    })
}

/// Writes `count` idle tenants into `store`.
async fn seed_store(store: &Store, count: usize, urls: &(String, String)) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|index| {
            let store = store.clone();
            async move {
                let id = format!("idle-{index:06}");
                let spec = parse_spec(json!({
                    "id": id,
                    "personio": {"base_url": urls.0, "client_id": "sim-client", "client_secret": "sim-secret"},
                    "learnamp": {"base_url": urls.1, "client_id": "sim-client", "client_secret": "sim-secret"},
                }))?;
                store.insert_new_tenant_spec(&spec).await?;
                store.tenant(&id).await?.mark_initial_sync_done()?;
                Ok(())
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    store.flush().await?;
    Ok(())
}

/// What every start of one run shares.
struct Start<'a> {
    binary: &'a Path,
    urls: &'a (String, String),
    backend: Backend,
    nodes: usize,
    node_config: Option<&'a str>,
}

impl Start<'_> {
    /// Seeds `count` tenants into a fresh store, starts the nodes on it and measures.
    async fn once(&self, count: usize) -> anyhow::Result<StartFigures> {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let shared = match self.backend {
            Backend::Sled => {
                let store = Store::open(&data_dir, 16).await?;
                seed_store(&store, count, self.urls).await?;
                None
            }
            Backend::Postgres => {
                let shared = crate::SharedPostgres::create("bench_tenants").await?;
                let options = PgOptions {
                    url: shared.database.url().to_string(),
                    password: None,
                    pool: 16,
                };
                let key = KeySource::Given(SecretKey::read_file(&shared.key_file)?);
                let store = Store::open_postgres(&options, Path::new(""), key).await?;
                seed_store(&store, count, self.urls).await?;
                Some(shared)
            }
        };
        let mut children = Vec::new();
        let mut ports = Vec::new();
        let started = Instant::now();
        for index in 0..self.nodes {
            let node_dir = dir.path().join(format!("node{index}"));
            std::fs::create_dir_all(&node_dir)?;
            let port = free_port()?;
            let node_data = if shared.is_some() {
                node_dir.join("data")
            } else {
                data_dir.clone()
            };
            let config = write_config(
                &node_dir,
                &node_data,
                port,
                shared.as_ref(),
                self.node_config,
            )?;
            let log = std::fs::File::create(node_dir.join("service.log"))?;
            let child = tokio::process::Command::new(self.binary)
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .env("PERSONIO_SYNC_ADMIN_TOKEN", random_hex(24))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .context("cannot start personio-sync serve")?;
            children.push(child);
            ports.push(port);
        }
        let pids = children
            .iter()
            .map(|child| child.id().context("the service exited at once"))
            .collect::<anyhow::Result<Vec<u32>>>()?;
        let result = measure(&pids, &ports, count, started).await;
        for child in &mut children {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if result.is_err() {
            for index in 0..self.nodes {
                let log =
                    std::fs::read_to_string(dir.path().join(format!("node{index}/service.log")))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                tracing::error!(node = index, log_tail = ?tail, "idle-tenant start failed");
            }
        }
        drop(shared);
        result
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn write_config(
    dir: &Path,
    data_dir: &Path,
    port: u16,
    postgres: Option<&crate::SharedPostgres>,
    node_config: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("config.toml");
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}");
    config.server.public_url = format!("http://127.0.0.1:{port}");
    config.server.metrics_listen = String::new();
    config.storage.data_dir = data_dir.to_path_buf();
    if let Some(postgres) = postgres {
        merge_toml(&mut config, &postgres.node_toml()).map_err(anyhow::Error::msg)?;
        if let Some(fragment) = node_config {
            merge_toml(&mut config, fragment)
                .map_err(|error| anyhow::anyhow!("--node-config: {error}"))?;
        }
    }
    std::fs::write(&path, toml::to_string(&config)?)?;
    Ok(path)
}

/// `VmRSS` and `VmHWM` of process `pid`, KiB.
pub fn memory_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(parse_status(&status))
}

/// `VmRSS` and `VmHWM` from the text of `/proc/PID/status`, KiB (0 when absent).
pub fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The number of `live` tenants in a `/metrics` text.
pub fn live_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("personio_sync_tenants{state=\"live\"} "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// How long the nodes' live counts must stay unchanged to count as final.
const SETTLED: Duration = Duration::from_secs(2);

async fn measure(
    pids: &[u32],
    ports: &[u16],
    count: usize,
    started: Instant,
) -> anyhow::Result<StartFigures> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let bases: Vec<String> = ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let deadline = started + Duration::from_secs(900);
    for base in &bases {
        loop {
            let answered = http.get(format!("{base}/healthz")).send().await;
            if answered.is_ok_and(|response| response.status().is_success()) {
                break;
            }
            if Instant::now() >= deadline {
                bail!("the service at {base} did not answer /healthz");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let healthz = started.elapsed();
    let live_counts = || async {
        let mut counts = Vec::new();
        for base in &bases {
            let metrics = match http.get(format!("{base}/metrics")).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            counts.push(live_count(&metrics));
        }
        counts
    };
    // Done when the counts add up to the tenants and stopped changing: with leases the
    // sum is reached once; without, every node goes on until it runs every tenant.
    let mut last = (Vec::new(), started.elapsed());
    let all_live = loop {
        let counts = live_counts().await;
        if counts != last.0 {
            last = (counts.clone(), started.elapsed());
        }
        let settled = started.elapsed() >= last.1 + SETTLED;
        if counts.iter().sum::<u64>() >= count as u64 && settled {
            break last.1;
        }
        if Instant::now() >= deadline {
            bail!("only {counts:?} of {count} tenants live after 900 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = live_counts().await;
    let mut nodes = Vec::new();
    for (pid, live) in pids.iter().zip(counts) {
        let (rss_kib, peak_rss_kib) = memory_of(*pid)?;
        nodes.push(NodeFigures {
            live,
            rss_kib,
            peak_rss_kib,
        });
    }
    Ok(StartFigures {
        tenants: count,
        healthz_seconds: healthz.as_secs_f64(),
        all_live_seconds: all_live.as_secs_f64(),
        rss_kib: nodes.iter().map(|node| node.rss_kib).max().unwrap_or(0),
        peak_rss_kib: nodes
            .iter()
            .map(|node| node.peak_rss_kib)
            .max()
            .unwrap_or(0),
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_and_live_counts() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status(status), (1024, 2048));
        assert_eq!(parse_status(""), (0, 0));
        let metrics = "# TYPE personio_sync_tenants gauge\npersonio_sync_tenants{state=\"degraded\"} 2\npersonio_sync_tenants{state=\"live\"} 998\n";
        assert_eq!(live_count(metrics), 998);
        assert_eq!(live_count("nothing"), 0);
    }
}
