//! Scenario d: idle tenants. N tenant specs are written to a fresh store with their
//! initial sync marked done, then the real binary (`personio-sync serve`) is started as a
//! child process against both simulators (in this process). Measured: time until
//! `/healthz` answers, time until every tenant is `live` (from `/metrics`), and the
//! child's resident memory, against the same start with no tenant at all.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::stats::ratio;
use personio_sync::domain::tenant::{parse_spec, random_hex};
use personio_sync::store::Store;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// What one start measured.
#[derive(Debug, Clone, Serialize)]
pub struct StartFigures {
    /// Stored tenants.
    pub tenants: usize,
    /// Seconds from spawning the process to the first `/healthz` answer.
    pub healthz_seconds: f64,
    /// Seconds from spawning the process until every tenant is `live`.
    pub all_live_seconds: f64,
    /// Resident memory once every tenant is live (and 1 s later), KiB.
    pub rss_kib: u64,
    /// Peak resident memory, KiB.
    pub peak_rss_kib: u64,
}

/// Idle tenants against the empty baseline.
#[derive(Debug, Clone, Serialize)]
pub struct TenantsFigures {
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
    /// `(rss − baseline rss) ÷ tenants`, KiB (target ≤ 100).
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

/// Runs the scenario for every count in `counts`.
pub async fn run(counts: &[usize]) -> anyhow::Result<TenantsFigures> {
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 1,
        rate_limits: false,
        ..PersonioSimConfig::default()
    })
    .await?;
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default()).await?;
    let binary = service_binary()?;
    let urls = (personio.base_url.clone(), learnamp.base_url.clone());
    let baseline = one_start(&binary, 0, &urls).await?;
    let mut runs = Vec::new();
    for &count in counts {
        let start = one_start(&binary, count, &urls).await?;
        let extra = start.rss_kib.saturating_sub(baseline.rss_kib) as f64;
        runs.push(TenantRun {
            kib_per_tenant: ratio(extra, count as f64),
            start_ratio: ratio(start.all_live_seconds, baseline.all_live_seconds),
            start,
        });
    }
    drop((personio, learnamp));
    Ok(TenantsFigures { baseline, runs })
}

/// Writes `count` idle tenants into a store under `dir`.
async fn seed_store(dir: &Path, count: usize, urls: &(String, String)) -> anyhow::Result<()> {
    let store = Store::open(dir, 16).await?;
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

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn write_config(dir: &Path, data_dir: &Path, port: u16) -> anyhow::Result<PathBuf> {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nmetrics_listen = \"\"\n\n[storage]\ndata_dir = {data:?}\n",
        data = data_dir.display().to_string()
    );
    std::fs::write(&path, text)?;
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

async fn one_start(
    binary: &Path,
    count: usize,
    urls: &(String, String),
) -> anyhow::Result<StartFigures> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    seed_store(&data_dir, count, urls).await?;
    let port = free_port()?;
    let config = write_config(dir.path(), &data_dir, port)?;
    let log = std::fs::File::create(dir.path().join("service.log"))?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
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
    let pid = child.id().context("the service exited at once")?;
    let result = measure(pid, port, count, started).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    if result.is_err() {
        let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        tracing::error!(log_tail = ?tail, "idle-tenant start failed");
    }
    result
}

async fn measure(
    pid: u32,
    port: u16,
    count: usize,
    started: Instant,
) -> anyhow::Result<StartFigures> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = started + Duration::from_secs(600);
    let healthz = loop {
        let answered = http.get(format!("{base}/healthz")).send().await;
        if answered.is_ok_and(|response| response.status().is_success()) {
            break started.elapsed();
        }
        if Instant::now() >= deadline {
            bail!("the service did not answer /healthz");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let all_live = loop {
        let metrics = match http.get(format!("{base}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if live_count(&metrics) >= count as u64 {
            break started.elapsed();
        }
        if Instant::now() >= deadline {
            bail!(
                "only {} of {count} tenants live after 600 s",
                live_count(&metrics)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_kib, peak_rss_kib) = memory_of(pid)?;
    Ok(StartFigures {
        tenants: count,
        healthz_seconds: healthz.as_secs_f64(),
        all_live_seconds: all_live.as_secs_f64(),
        rss_kib,
        peak_rss_kib,
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
