//! Scenario b: end to end. Per event, the Personio simulator changes one employee's
//! position (and delivers the webhook itself, as Personio would); the clock runs until
//! the Learn Amp simulator shows the new job title, polled in memory every millisecond.
//! Both simulators answer every API call after the configured latency. The service
//! stores on sled or on a fresh PostgreSQL database (`--backend`).

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::harness::{
    Harness, HarnessConfig, set_latency, synced_active_people, time_position_change,
};
use super::stats::{LatencySummary, summarise};
use crate::Backend;
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::learnamp::LearnAmpSimConfig;
use personio_sync_sim::personio::PersonioSimConfig;

/// How to run the end-to-end scenario.
#[derive(Debug, Clone, Copy)]
pub struct E2eConfig {
    /// Events, one after another.
    pub events: usize,
    /// Simulated API latency.
    pub latency: Duration,
    /// Where the service stores its data.
    pub backend: Backend,
}

/// What the end-to-end scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct E2eFigures {
    /// The storage backend measured.
    pub backend: Backend,
    /// Simulated latency of every API call, in milliseconds.
    pub latency_ms: u64,
    /// Webhook → visible in Learn Amp.
    pub latency: LatencySummary,
    /// Events whose change did not show within 10 s.
    pub timeouts: usize,
    /// The simulated latency floor of one event: a Personio read and a Learn Amp write.
    pub floor_ms: f64,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub async fn run(config: E2eConfig) -> anyhow::Result<E2eFigures> {
    let harness = Harness::start(HarnessConfig {
        personio: PersonioSimConfig {
            employees: 60,
            seed: 5,
            ..PersonioSimConfig::default()
        },
        learnamp: LearnAmpSimConfig::default(),
        concurrency: 8,
        retry: RetryPolicy::default(),
        backend: config.backend,
    })
    .await?;
    harness.create_tenant("e2e", json!({})).await?;
    harness
        .wait_live_after_sync("e2e", Duration::from_secs(120))
        .await?;
    let people = synced_active_people(&harness.personio, |id| {
        harness.learnamp.user_by_external_id(id).is_some()
    });
    anyhow::ensure!(!people.is_empty(), "no synced employee to change");
    set_latency(&harness, config.latency);
    let mut samples = Vec::new();
    let mut timeouts = 0;
    for index in 0..config.events {
        let id = &people[index % people.len()];
        match time_position_change(
            &harness,
            id,
            format!("Bench role {index}"),
            TIMEOUT,
            Duration::from_millis(1),
        )
        .await?
        {
            Some(latency) => samples.push(latency),
            None => timeouts += 1,
        }
    }
    set_latency(&harness, Duration::ZERO);
    Ok(E2eFigures {
        backend: config.backend,
        latency_ms: u64::try_from(config.latency.as_millis()).unwrap_or(u64::MAX),
        latency: summarise(&samples),
        timeouts,
        floor_ms: 2.0 * config.latency.as_secs_f64() * 1000.0,
    })
}
