//! Scenario a: webhook ingest. Many keep-alive connections post valid deliveries to one
//! tenant's webhook URL (each answered 200 only once stored durably), alternating in
//! rounds with a bare axum route in the same process that answers 200 without storing:
//! the ceiling of this machine. Reports both, and their ratio per round.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde::Serialize;
use serde_json::json;

use super::harness::{Harness, HarnessConfig};
use super::rawhttp::{LoadResult, drive, post_request};
use super::stats::{median, ratio};
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::learnamp::LearnAmpSimConfig;
use personio_sync_sim::personio::PersonioSimConfig;

/// How to run the ingest scenario.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Concurrent connections.
    pub connections: usize,
    /// Measured seconds per round and target.
    pub duration: Duration,
    /// Rounds (bare, then service, each round).
    pub rounds: usize,
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
    /// included (flushes of the tenant's own writes count too).
    pub group_commits: u64,
    /// Events stored per group commit, estimated: service events/s over commits/s.
    pub events_per_commit: f64,
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

/// Runs the scenario.
pub async fn run(config: IngestConfig) -> anyhow::Result<IngestFigures> {
    let harness = Harness::start(HarnessConfig {
        personio: PersonioSimConfig {
            employees: 20,
            seed: 3,
            ..PersonioSimConfig::default()
        },
        learnamp: LearnAmpSimConfig::default(),
        concurrency: 8,
        retry: RetryPolicy::default(),
    })
    .await?;
    harness.create_tenant("ingest", json!({})).await?;
    harness
        .wait_live_after_sync("ingest", Duration::from_secs(120))
        .await?;
    let target = harness.webhook_target("ingest").await?;
    // One person for every event: the tenant coalesces a batch into one fetch, so its
    // own processing stays small beside the front door being measured.
    let person = harness
        .personio
        .employees()
        .first()
        .map(|person| person.employee.id.clone())
        .unwrap_or_else(|| "1001".into());
    let body = delivery(&person);
    let authorization = target.authorization.expose().to_string();
    let service_request = post_request(&target.path, Some(&authorization), &body);
    let bare_addr = start_bare().await?;
    let bare_request = post_request("/bare/0123456789abcdef", Some(&authorization), &body);
    let warmup = Duration::from_millis(500);
    let mut rounds = Vec::new();
    let mut events_stored = 0;
    let mut group_commits = 0;
    for _ in 0..config.rounds.max(1) {
        let bare = drive(
            bare_addr,
            &bare_request,
            config.connections,
            warmup,
            config.duration,
        )
        .await?;
        let commits_before = harness.state.store.group_flushes();
        let service = drive(
            target.addr,
            &service_request,
            config.connections,
            warmup,
            config.duration,
        )
        .await?;
        events_stored += service.ok;
        group_commits += harness.state.store.group_flushes() - commits_before;
        let round_ratio = ratio(service.per_second, bare.per_second);
        rounds.push(IngestRound {
            bare,
            service,
            ratio: round_ratio,
        });
    }
    let (drain_seconds, left_pending) = wait_drained(&harness).await?;
    let ratios: Vec<f64> = rounds.iter().map(|round| round.ratio).collect();
    let loaded_seconds = (warmup + config.duration).as_secs_f64() * rounds.len() as f64;
    let events_per_second = rounds
        .iter()
        .map(|round| round.service.per_second)
        .sum::<f64>()
        / rounds.len() as f64;
    let events_per_commit = if group_commits == 0 {
        0.0
    } else {
        events_per_second / (group_commits as f64 / loaded_seconds)
    };
    Ok(IngestFigures {
        connections: config.connections,
        ratio: median(&ratios),
        rounds,
        events_stored,
        drain_seconds,
        left_pending,
        group_commits,
        events_per_commit,
    })
}

/// How long the tenant may take to apply what the rounds stored. It applies at
/// Personio's pace: one employee read per drained batch of up to 256 events (all for
/// the one person), reads paced at 30/s, so about 7,700 events/s: a million events
/// need a little over two minutes.
const DRAIN_WAIT: Duration = Duration::from_secs(240);

async fn wait_drained(harness: &Harness) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let deadline = started + DRAIN_WAIT;
    loop {
        let pending = harness
            .state
            .store
            .tenant("ingest")
            .await?
            .pending_count()
            .await as u64;
        if pending == 0 || Instant::now() >= deadline {
            return Ok((started.elapsed().as_secs_f64(), pending));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
