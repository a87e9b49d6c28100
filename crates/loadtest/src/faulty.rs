//! Scenario: one faulty tenant among calm ones (issue 5). A panic is injected into the
//! faulty tenant's actor `crashes` times while `calm_tenants` other tenants apply
//! webhooks throughout; their end-to-end latency is compared with runs without the
//! faulty tenant (target: p99 within 1.2×).
//!
//! Every calm tenant has a Personio and a Learn Amp simulator of its own, as tenants
//! are different companies in production (sharing one Personio company would make the
//! tenants share its rate limit of 2000 v1 calls a minute, and that limit, not the
//! service, would set the latency). The Personio simulators are generated from one seed,
//! so they hold the same employees. Per event, the same employee's position changes in
//! every calm company at once (each simulator delivers the webhook to its tenant), and
//! per calm tenant the clock runs until its Learn Amp shows the new job title (every
//! Learn Amp polled in memory every millisecond), so one event gives one sample per
//! calm tenant.
//!
//! The faulty tenant has a Personio and a Learn Amp simulator of its own (another
//! company), and one of its employees changes alongside every calm event. Phases, to
//! control for drift: a baseline without the faulty tenant; the faulty phase, in which
//! a concurrent task crashes it, waits until the supervisor respawned it (or marked it
//! `failed`, then revives it with `POST /admin/tenants/faulty/restart`) and crashes it
//! again, until `crashes` are done; then a second baseline after deleting it. The
//! supervisor's real backoff applies (1 s doubling: about 96 s of backoff for 20
//! crashes), and each crash is taken only after the actor has drained the webhooks
//! stored while it was down, so the faulty phase lasts about three minutes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;
use serde_json::json;

use super::harness::{Harness, HarnessConfig, synced_active_people};
use super::stats::{LatencySummary, ratio, summarise};
use personio_sync::actors::status::TenantState;
use personio_sync::actors::tenant::TenantMsg;
use personio_sync::retry::RetryPolicy;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// How to run the faulty-tenant scenario.
#[derive(Debug, Clone, Copy)]
pub struct FaultyConfig {
    /// Tenants that apply webhooks throughout and are measured.
    pub calm_tenants: usize,
    /// Panics injected into the faulty tenant's actor.
    pub crashes: usize,
    /// Events of each baseline phase; the faulty phase has at least as many.
    pub events: usize,
    /// Simulated latency of every API call during the measured phases.
    pub latency: Duration,
}

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    /// Position changes, one after another.
    pub events: usize,
    /// How long the phase took.
    pub seconds: f64,
    /// Change → visible in a calm tenant's Learn Amp (one sample per event and tenant).
    pub latency: LatencySummary,
    /// (event, calm tenant) pairs whose change did not show within 10 s.
    pub timeouts: usize,
    /// Calls the calm tenants' Personio simulators answered with 429 (should be 0).
    pub personio_429: usize,
}

/// What the faulty-tenant scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct FaultyFigures {
    /// Simulated latency of every API call, in milliseconds.
    pub latency_ms: u64,
    /// Calm tenants measured.
    pub calm_tenants: usize,
    /// Panics injected into the faulty tenant.
    pub crashes: usize,
    /// Crashes after which the supervisor respawned the tenant by itself.
    pub restarts: usize,
    /// Crashes after which the tenant was `failed` and revived by an operator restart.
    pub failed_revived: usize,
    /// Every crash, in order.
    pub crash_timeline: Vec<CrashRecord>,
    /// Baseline before the faulty tenant existed.
    pub baseline_before: PhaseFigures,
    /// While the faulty tenant crashed.
    pub faulty: PhaseFigures,
    /// Baseline after the faulty tenant was deleted.
    pub baseline_after: PhaseFigures,
    /// Both baselines pooled.
    pub baseline: LatencySummary,
    /// p99 of the faulty phase / p99 of the pooled baseline (target ≤ 1.2).
    pub ratio: f64,
    /// Timeouts of all phases.
    pub timeouts: usize,
    /// Whether every calm tenant was `live` with 0 restarts at the end.
    pub calm_all_live: bool,
    /// Restarts of the calm tenants, summed (should be 0).
    pub calm_restarts: u32,
    /// Whether the faulty tenant's Learn Amp showed its last change of every employee
    /// within 30 s after the faulty phase.
    pub faulty_caught_up: bool,
}

/// A change not visible within this long counts as a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the supervisor to respawn (the 5th backoff is 16 s ± 25%) or for an
/// operator restart to go live.
const HANDLED_WITHIN: Duration = Duration::from_secs(60);
const FAULTY: &str = "faulty";

/// The calm tenants' world: a Personio company (all alike) and a Learn Amp each.
struct Calm<'a> {
    tenants: Vec<CalmTenant<'a>>,
    people: Vec<String>,
}

/// One calm tenant and its simulators.
struct CalmTenant<'a> {
    id: String,
    personio: &'a PersonioSim,
    learnamp: &'a LearnAmpSim,
}

/// The faulty tenant's world and the last title given to each of its employees.
struct Faulty {
    personio: PersonioSim,
    learnamp: LearnAmpSim,
    people: Vec<String>,
    last_titles: HashMap<String, String>,
}

impl Faulty {
    /// Changes one employee's position (the simulator delivers the webhook).
    fn change(&mut self, index: usize) -> anyhow::Result<()> {
        let id = &self.people[index % self.people.len()];
        let mut person = self
            .personio
            .employee(id)
            .with_context(|| format!("faulty employee {id} vanished"))?;
        let title = format!("Faulty role {index}");
        person.employee.position = Some(title.clone());
        self.personio.upsert_employee(person);
        self.last_titles.insert(id.clone(), title);
        Ok(())
    }

    /// Whether its Learn Amp shows every last change.
    fn caught_up(&self) -> bool {
        self.last_titles.iter().all(|(id, title)| {
            self.learnamp
                .user_by_external_id(id)
                .and_then(|user| user.job_title)
                .as_deref()
                == Some(title.as_str())
        })
    }

    fn set_latency(&self, latency: Duration) {
        self.personio.knobs.set_latency(latency);
        self.learnamp.knobs.set_latency(latency);
    }
}

/// Samples of one phase.
#[derive(Default)]
struct PhaseRun {
    events: usize,
    samples: Vec<Duration>,
    timeouts: usize,
    seconds: f64,
    personio_429: usize,
}

impl PhaseRun {
    fn figures(&self) -> PhaseFigures {
        PhaseFigures {
            events: self.events,
            seconds: self.seconds,
            latency: summarise(&self.samples),
            timeouts: self.timeouts,
            personio_429: self.personio_429,
        }
    }
}

/// What the crash task did.
#[derive(Default)]
struct CrashCounts {
    crashes: usize,
    restarts: usize,
    failed_revived: usize,
    timeline: Vec<CrashRecord>,
}

/// How one injected crash went.
#[derive(Debug, Clone, Serialize)]
pub struct CrashRecord {
    /// `restarted` by the supervisor, or `failed` and revived by an operator restart.
    pub outcome: &'static str,
    /// From the cast until the actor took the message and died (it handles earlier
    /// messages first).
    pub taken_s: f64,
    /// From the cast until a new actor was `live`.
    pub back_s: f64,
}

/// Runs the scenario.
pub async fn run(config: FaultyConfig) -> anyhow::Result<FaultyFigures> {
    ensure!(
        config.calm_tenants > 0,
        "at least one calm tenant is needed"
    );
    let _quiet = QuietInjectedPanics::install();
    let harness = Harness::start(HarnessConfig {
        personio: calm_company(),
        learnamp: LearnAmpSimConfig::default(),
        concurrency: 8,
        retry: RetryPolicy::default(),
        backend: crate::Backend::Sled,
    })
    .await?;
    // The harness's simulators are the first calm tenant's; the others get their own.
    let mut extra = Vec::new();
    for _ in 1..config.calm_tenants {
        extra.push((
            PersonioSim::start(calm_company()).await?,
            LearnAmpSim::start(LearnAmpSimConfig::default()).await?,
        ));
    }
    let tenants: Vec<CalmTenant<'_>> = std::iter::once((&harness.personio, &harness.learnamp))
        .chain(
            extra
                .iter()
                .map(|(personio, learnamp)| (personio, learnamp)),
        )
        .enumerate()
        .map(|(index, (personio, learnamp))| CalmTenant {
            id: format!("calm-{index}"),
            personio,
            learnamp,
        })
        .collect();
    for tenant in &tenants {
        harness
            .create_tenant_on(
                &tenant.id,
                &tenant.personio.base_url,
                &tenant.learnamp.base_url,
                json!({}),
            )
            .await?;
    }
    for tenant in &tenants {
        harness
            .wait_live_after_sync(&tenant.id, Duration::from_secs(120))
            .await?;
    }
    let people = synced_active_people(&harness.personio, |id| {
        tenants.iter().all(|tenant| {
            tenant.personio.employee(id).is_some()
                && tenant.learnamp.user_by_external_id(id).is_some()
        })
    });
    ensure!(
        !people.is_empty(),
        "no employee synced to every calm tenant"
    );
    let calm = Calm { tenants, people };
    let mut next_index = 0;

    eprintln!(
        "bench: faulty tenant: baseline before ({} events)…",
        config.events
    );
    calm.set_latency(config.latency);
    let before = baseline_phase(&calm, &mut next_index, config.events).await?;
    calm.set_latency(Duration::ZERO);

    let mut faulty = start_faulty(&harness).await?;
    eprintln!(
        "bench: faulty tenant: faulty phase ({} crashes)…",
        config.crashes
    );
    calm.set_latency(config.latency);
    faulty.set_latency(config.latency);
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (mut during, counts) = tokio::try_join!(
        faulty_events(&calm, &mut faulty, &mut next_index, config.events, &done),
        crash_all(&harness, config.crashes, &done),
    )?;
    during.seconds = started.elapsed().as_secs_f64();
    calm.set_latency(Duration::ZERO);
    faulty.set_latency(Duration::ZERO);
    let caught_up_by = Instant::now() + Duration::from_secs(30);
    while !faulty.caught_up() && Instant::now() < caught_up_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let faulty_caught_up = faulty.caught_up();
    harness.delete_tenant(FAULTY, true).await?;
    drop(faulty);

    eprintln!(
        "bench: faulty tenant: baseline after ({} events)…",
        config.events
    );
    calm.set_latency(config.latency);
    let after = baseline_phase(&calm, &mut next_index, config.events).await?;
    calm.set_latency(Duration::ZERO);

    let mut calm_all_live = true;
    let mut calm_restarts = 0;
    for tenant in &calm.tenants {
        let id = &tenant.id;
        let view = harness
            .state
            .views
            .view(id)
            .with_context(|| format!("calm tenant {id} has no view"))?;
        calm_all_live &= view.state == TenantState::Live && view.restarts == 0;
        calm_restarts += view.restarts;
    }
    let pooled: Vec<Duration> = before
        .samples
        .iter()
        .chain(&after.samples)
        .copied()
        .collect();
    let baseline = summarise(&pooled);
    let faulty_figures = during.figures();
    Ok(FaultyFigures {
        latency_ms: u64::try_from(config.latency.as_millis()).unwrap_or(u64::MAX),
        calm_tenants: config.calm_tenants,
        crashes: counts.crashes,
        restarts: counts.restarts,
        failed_revived: counts.failed_revived,
        crash_timeline: counts.timeline,
        ratio: ratio(faulty_figures.latency.p99_ms, baseline.p99_ms),
        timeouts: before.timeouts + during.timeouts + after.timeouts,
        baseline_before: before.figures(),
        faulty: faulty_figures,
        baseline_after: after.figures(),
        baseline,
        calm_all_live,
        calm_restarts,
        faulty_caught_up,
    })
}

/// The calm company: every calm tenant's Personio simulator holds these employees.
fn calm_company() -> PersonioSimConfig {
    PersonioSimConfig {
        employees: 60,
        seed: 5,
        ..PersonioSimConfig::default()
    }
}

impl Calm<'_> {
    fn set_latency(&self, latency: Duration) {
        for tenant in &self.tenants {
            tenant.personio.knobs.set_latency(latency);
            tenant.learnamp.knobs.set_latency(latency);
        }
    }

    /// Forgets the calls the calm Personio simulators answered so far.
    fn clear_personio_logs(&self) {
        for tenant in &self.tenants {
            tenant.personio.log.clear();
        }
    }

    /// Calls the calm Personio simulators answered with 429 since the last clear.
    fn personio_429(&self) -> usize {
        self.tenants
            .iter()
            .map(|tenant| {
                tenant
                    .personio
                    .log
                    .all()
                    .iter()
                    .filter(|call| call.status == 429)
                    .count()
            })
            .sum()
    }

    /// Changes one employee's position in every calm company at once and samples, per
    /// calm tenant, until its Learn Amp shows it.
    async fn event(&self, index: usize, run: &mut PhaseRun) -> anyhow::Result<()> {
        let id = &self.people[index % self.people.len()];
        let title = format!("Bench role {index}");
        let mut changed = Vec::with_capacity(self.tenants.len());
        for tenant in &self.tenants {
            let mut person = tenant
                .personio
                .employee(id)
                .with_context(|| format!("employee {id} vanished from {}", tenant.id))?;
            person.employee.position = Some(title.clone());
            changed.push(person);
        }
        let started = Instant::now();
        for (tenant, person) in self.tenants.iter().zip(changed) {
            tenant.personio.upsert_employee(person);
        }
        let mut waiting: Vec<&LearnAmpSim> =
            self.tenants.iter().map(|tenant| tenant.learnamp).collect();
        loop {
            waiting.retain(|learnamp| {
                let shown = learnamp
                    .user_by_external_id(id)
                    .and_then(|user| user.job_title)
                    .is_some_and(|job_title| job_title == title);
                if shown {
                    run.samples.push(started.elapsed());
                }
                !shown
            });
            if waiting.is_empty() {
                break;
            }
            if started.elapsed() > TIMEOUT {
                run.timeouts += waiting.len();
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        run.events += 1;
        Ok(())
    }
}

/// `events` calm events without the faulty tenant.
async fn baseline_phase(
    calm: &Calm<'_>,
    next_index: &mut usize,
    events: usize,
) -> anyhow::Result<PhaseRun> {
    calm.clear_personio_logs();
    let started = Instant::now();
    let mut run = PhaseRun::default();
    for _ in 0..events {
        calm.event(*next_index, &mut run).await?;
        *next_index += 1;
    }
    run.seconds = started.elapsed().as_secs_f64();
    run.personio_429 = calm.personio_429();
    Ok(run)
}

/// Starts the faulty tenant's simulators, creates it and waits for its first sync.
async fn start_faulty(harness: &Harness) -> anyhow::Result<Faulty> {
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 60,
        seed: 6,
        ..PersonioSimConfig::default()
    })
    .await?;
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default()).await?;
    harness
        .create_tenant_on(FAULTY, &personio.base_url, &learnamp.base_url, json!({}))
        .await?;
    harness
        .wait_live_after_sync(FAULTY, Duration::from_secs(120))
        .await?;
    let people = synced_active_people(&personio, |id| learnamp.user_by_external_id(id).is_some());
    ensure!(
        !people.is_empty(),
        "no employee synced to the faulty tenant"
    );
    Ok(Faulty {
        personio,
        learnamp,
        people,
        last_titles: HashMap::new(),
    })
}

/// Calm events, each with a faulty change alongside, until the crashes are done and
/// at least `min_events` happened.
async fn faulty_events(
    calm: &Calm<'_>,
    faulty: &mut Faulty,
    next_index: &mut usize,
    min_events: usize,
    done: &AtomicBool,
) -> anyhow::Result<PhaseRun> {
    calm.clear_personio_logs();
    let mut run = PhaseRun::default();
    while run.events < min_events || !done.load(Ordering::Acquire) {
        faulty.change(*next_index)?;
        calm.event(*next_index, &mut run).await?;
        *next_index += 1;
    }
    run.personio_429 = calm.personio_429();
    Ok(run)
}

/// Crashes the faulty tenant `crashes` times, each time once the previous crash was
/// dealt with; flags `done` at the end, also on error.
async fn crash_all(
    harness: &Harness,
    crashes: usize,
    done: &AtomicBool,
) -> anyhow::Result<CrashCounts> {
    let result = crash_each(harness, crashes).await;
    done.store(true, Ordering::Release);
    result
}

async fn crash_each(harness: &Harness, crashes: usize) -> anyhow::Result<CrashCounts> {
    let (views, router) = (&harness.state.views, &harness.state.router);
    let mut counts = CrashCounts::default();
    for _ in 0..crashes {
        let actor = router
            .actor(FAULTY)
            .context("the faulty tenant is not running")?;
        let old = actor.get_id();
        actor
            .cast(TenantMsg::Crash("bench".into()))
            .context("the faulty tenant took no message")?;
        counts.crashes += 1;
        let cast_at = Instant::now();
        let deadline = cast_at + HANDLED_WITHIN;
        let mut taken: Option<Duration> = None;
        loop {
            let state = views.view(FAULTY).map(|view| view.state);
            let current = router.actor(FAULTY).map(|actor| actor.get_id());
            if taken.is_none() && current != Some(old) {
                taken = Some(cast_at.elapsed());
            }
            let respawned = current.is_some_and(|id| id != old);
            if state == Some(TenantState::Failed) {
                harness.restart_tenant(FAULTY).await?;
                wait_live(harness, old, Instant::now() + HANDLED_WITHIN).await?;
                counts.failed_revived += 1;
                counts.timeline.push(CrashRecord {
                    outcome: "failed",
                    taken_s: taken.unwrap_or_default().as_secs_f64(),
                    back_s: cast_at.elapsed().as_secs_f64(),
                });
                break;
            }
            if respawned && state == Some(TenantState::Live) {
                counts.restarts += 1;
                counts.timeline.push(CrashRecord {
                    outcome: "restarted",
                    taken_s: taken.unwrap_or_default().as_secs_f64(),
                    back_s: cast_at.elapsed().as_secs_f64(),
                });
                break;
            }
            if Instant::now() >= deadline {
                bail!("the faulty tenant was not respawned within {HANDLED_WITHIN:?}: {state:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(counts)
}

/// Waits until a new actor (not `old`) runs the faulty tenant and it is `live`.
async fn wait_live(
    harness: &Harness,
    old: ractor::ActorId,
    deadline: Instant,
) -> anyhow::Result<()> {
    let (views, router) = (&harness.state.views, &harness.state.router);
    loop {
        let state = views.view(FAULTY).map(|view| view.state);
        let respawned = router
            .actor(FAULTY)
            .is_some_and(|actor| actor.get_id() != old);
        if respawned && state == Some(TenantState::Live) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the faulty tenant was not live after an operator restart: {state:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// While alive, panics injected by `TenantMsg::Crash` print nothing (the supervisor
/// handles them; 20 messages would bury the bench's output); others print as before.
struct QuietInjectedPanics {
    previous: Arc<PanicHook>,
}

impl QuietInjectedPanics {
    fn install() -> Self {
        let previous: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let inner = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !message.starts_with("injected fault: ") {
                inner(info);
            }
        }));
        Self { previous }
    }
}

impl Drop for QuietInjectedPanics {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let previous = self.previous.clone();
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}
