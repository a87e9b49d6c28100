//! Scenario c: the initial full sync of a company of N employees against simulators
//! that enforce Personio's documented rate limits, answer after a simulated latency, and
//! optionally rate-limit Learn Amp. Beside the measured time, the lower bound those
//! limits imply for the calls the sync needed, and the ratio.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::harness::{Harness, HarnessConfig, set_latency};
use super::stats::{CallCounts, LowerBound, SyncLimits, lower_bound, ratio};
use personio_sync::actors::status::TenantState;
use personio_sync::personio::client::{EMPLOYEE_LIST_RATE, V1_RATE};
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::common::{CallRecord, RateLimit};
use personio_sync_sim::learnamp::LearnAmpSimConfig;
use personio_sync_sim::personio::PersonioSimConfig;

/// How to run one full sync.
#[derive(Debug, Clone, Copy)]
pub struct FullSyncConfig {
    /// Employees in the simulated company.
    pub employees: usize,
    /// Simulated latency of every API call.
    pub latency: Duration,
    /// Learn Amp writes in flight (`sync.concurrency`).
    pub concurrency: usize,
    /// Learn Amp requests per second (None = unlimited).
    pub learnamp_rate: Option<f64>,
}

/// What one full sync measured.
#[derive(Debug, Clone, Serialize)]
pub struct FullSyncFigures {
    /// Employees in the simulated company.
    pub employees: usize,
    /// The limits in force.
    pub limits: SyncLimits,
    /// Calls made (successful).
    pub calls: CallCounts,
    /// Personio answers 429 (the client's pacing should keep this at 0).
    pub personio_429: u64,
    /// Learn Amp answers 429.
    pub learnamp_429: u64,
    /// Seconds from the tenant's creation to the end of its initial sync.
    pub seconds: f64,
    /// The lower bound.
    pub bound: LowerBound,
    /// `seconds ÷ bound.bound_s` (target ≤ 1.25).
    pub ratio: f64,
    /// `seconds ÷ bound.phased_s`.
    pub phased_ratio: f64,
    /// Learn Amp users created.
    pub created: u64,
    /// Employees that failed.
    pub failed: u64,
}

fn ok(call: &CallRecord) -> bool {
    call.status < 400 && !call.injected
}

fn count_calls(harness: &Harness) -> (CallCounts, u64, u64) {
    let personio = harness.personio.log.all();
    let learnamp = harness.learnamp.log.all();
    let v1: Vec<&CallRecord> = personio
        .iter()
        .filter(|call| ok(call) && call.path.starts_with("/v1/"))
        .collect();
    let counts = CallCounts {
        list_pages: v1
            .iter()
            .filter(|call| call.path == "/v1/company/employees")
            .count() as u64,
        pictures: v1
            .iter()
            .filter(|call| call.path.contains("/profile-picture"))
            .count() as u64,
        personio_v1: v1.len() as u64,
        learnamp_writes: learnamp
            .iter()
            .filter(|call| ok(call) && call.is_write() && call.path != "/oauth/token")
            .count() as u64,
        learnamp_calls: learnamp.iter().filter(|call| ok(call)).count() as u64,
    };
    let personio_429 = personio.iter().filter(|call| call.status == 429).count() as u64;
    let learnamp_429 = learnamp.iter().filter(|call| call.status == 429).count() as u64;
    (counts, personio_429, learnamp_429)
}

/// A generous time limit: ten times a rough estimate of the bound, plus two minutes.
fn time_limit(config: &FullSyncConfig) -> Duration {
    let employees = config.employees as f64;
    let list = employees / 100.0 / EMPLOYEE_LIST_RATE.per_second;
    let pictures = employees * 0.3 / V1_RATE.per_second;
    let writes = employees * 1.3 * config.latency.as_secs_f64() / config.concurrency.max(1) as f64;
    let limited = config
        .learnamp_rate
        .map_or(0.0, |rate| employees * 1.5 / rate.max(0.01));
    Duration::from_secs_f64(120.0 + 10.0 * (list + pictures).max(writes).max(limited))
}

/// Runs one full sync.
pub async fn run(config: FullSyncConfig) -> anyhow::Result<FullSyncFigures> {
    let harness = Harness::start(HarnessConfig {
        personio: PersonioSimConfig {
            employees: config.employees,
            seed: 11,
            rate_limits: true,
            ..PersonioSimConfig::default()
        },
        learnamp: LearnAmpSimConfig {
            rate_limit: config.learnamp_rate.map(|rate| RateLimit {
                per_minute: rate * 60.0,
                burst: rate,
            }),
            ..LearnAmpSimConfig::default()
        },
        concurrency: config.concurrency,
        backend: crate::Backend::Sled,
        retry: RetryPolicy::default(),
    })
    .await?;
    set_latency(&harness, config.latency);
    let created_at = chrono::Utc::now();
    harness.create_tenant("bulk", json!({})).await?;
    let view = harness
        .wait_for(
            "bulk",
            time_limit(&config),
            Duration::from_millis(250),
            |view| view.last_sync.is_some() && view.state != TenantState::Syncing,
        )
        .await?;
    let report = view.last_sync.clone().unwrap_or_default();
    let finished_at = chrono::DateTime::parse_from_rfc3339(&report.finished_at)
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|_| anyhow::anyhow!("no finished_at in {view:?}"))?;
    let seconds = (finished_at - created_at).num_milliseconds() as f64 / 1000.0;
    set_latency(&harness, Duration::ZERO);
    let (calls, personio_429, learnamp_429) = count_calls(&harness);
    let limits = SyncLimits {
        list_rate: EMPLOYEE_LIST_RATE.into(),
        v1_rate: V1_RATE.into(),
        latency_ms: config.latency.as_secs_f64() * 1000.0,
        concurrency: config.concurrency,
        learnamp_rate: config.learnamp_rate,
    };
    let bound = lower_bound(&limits, &calls);
    Ok(FullSyncFigures {
        employees: config.employees,
        limits,
        calls,
        personio_429,
        learnamp_429,
        seconds,
        ratio: ratio(seconds, bound.bound_s),
        phased_ratio: ratio(seconds, bound.phased_s),
        bound,
        created: report.created,
        failed: report.failed,
    })
}
