//! Scenario b: end to end. Per event, the Personio simulator changes one employee's
//! position (and delivers the webhook itself, as Personio would); the clock runs until
//! the Learn Amp simulator shows the new job title, polled in memory every millisecond.
//! Both simulators answer every API call after the configured latency.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::harness::{Harness, HarnessConfig, set_latency};
use super::stats::{LatencySummary, summarise};
use crate::retry::RetryPolicy;
use crate::sim::learnamp::LearnAmpSimConfig;
use crate::sim::personio::PersonioSimConfig;

/// How to run the end-to-end scenario.
#[derive(Debug, Clone, Copy)]
pub struct E2eConfig {
    /// Events, one after another.
    pub events: usize,
    /// Simulated API latency.
    pub latency: Duration,
}

/// What the end-to-end scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct E2eFigures {
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
    })
    .await?;
    harness.create_tenant("e2e", json!({})).await?;
    harness
        .wait_live_after_sync("e2e", Duration::from_secs(120))
        .await?;
    let people: Vec<String> = harness
        .personio
        .employees()
        .into_iter()
        .filter(|person| !person.employee.is_inactive())
        .map(|person| person.employee.id)
        .filter(|id| harness.learnamp.user_by_external_id(id).is_some())
        .collect();
    anyhow::ensure!(!people.is_empty(), "no synced employee to change");
    set_latency(&harness, config.latency);
    let mut samples = Vec::new();
    let mut timeouts = 0;
    for index in 0..config.events {
        let id = &people[index % people.len()];
        match one_event(&harness, id, index).await? {
            Some(latency) => samples.push(latency),
            None => timeouts += 1,
        }
    }
    set_latency(&harness, Duration::ZERO);
    Ok(E2eFigures {
        latency_ms: u64::try_from(config.latency.as_millis()).unwrap_or(u64::MAX),
        latency: summarise(&samples),
        timeouts,
        floor_ms: 2.0 * config.latency.as_secs_f64() * 1000.0,
    })
}

/// Changes one position and times until Learn Amp shows it; `None` on timeout.
async fn one_event(harness: &Harness, id: &str, index: usize) -> anyhow::Result<Option<Duration>> {
    let mut person = harness
        .personio
        .employee(id)
        .ok_or_else(|| anyhow::anyhow!("employee {id} vanished"))?;
    let title = format!("Bench role {index}");
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
        if started.elapsed() > TIMEOUT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
