//! The tenant actor: owns one tenant's Personio and Learn Amp clients and its sled
//! tree, runs its full syncs and publishes its state on the status board.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{Instrument, error, info, info_span, warn};

use std::collections::HashMap;

use crate::clock::SharedClock;
use crate::domain::Employee;
use crate::domain::tenant::TenantSpec;
use crate::learnamp::{LearnAmpClient, LearnAmpConfig};
use crate::personio::{PersonioClient, PersonioConfig};
use crate::retry::RetryPolicy;
use crate::store::{Store, StoreError, TenantStore};
use crate::sync::{self, SyncContext, SyncError};

use super::scheduler::{InviteScheduler, SchedulerArgs, SchedulerMsg};
use super::status::{StatusBoard, TenantState};
use super::team_mapper::{TeamMapper, TeamMapperMsg, TeamMapperState};

/// `X-Personio-App-ID` sent on every Personio call.
pub const PERSONIO_APP_ID: &str = "PERSONIO_SYNC";

/// What every tenant actor shares with the process.
#[derive(Clone)]
pub struct TenantDeps {
    /// The store.
    pub store: Store,
    /// The status board.
    pub board: Arc<StatusBoard>,
    /// The HTTP client pool.
    pub http: reqwest::Client,
    /// Retry policy of both API clients.
    pub retry: RetryPolicy,
    /// Learn Amp writes in flight during a full sync.
    pub concurrency: usize,
    /// Time between reconciliations.
    pub reconcile_interval: Duration,
    /// Base of webhook URLs.
    pub public_url: String,
    /// Where "now" comes from.
    pub clock: SharedClock,
    /// First restart delay of a crashed tenant (doubles per failure).
    pub restart_base: Duration,
    /// Bounds how many tenants run their start-up checks at once (see [`START_GATE`]).
    pub start_gate: Arc<tokio::sync::Semaphore>,
    /// Paces the Personio v1 calls of every tenant together: Personio limits v1 by
    /// source IP, which all tenants share.
    pub personio_v1_pacer: Arc<crate::pacer::Pacer>,
}

/// Tenants running their start-up checks (authentication, attribute check) at once.
/// When thousands of stored tenants start together, an unbounded burst would open one
/// connection per tenant and meet Personio's per-IP limits; a few dozen at a time keep
/// connections reused and finish sooner.
pub const START_GATE: usize = 32;

/// A tenant waits at most this long for a start-up slot, then checks anyway: a slot held
/// by a tenant whose API hangs must not delay the others by more than this.
const START_GATE_WAIT: Duration = Duration::from_secs(2);

impl TenantDeps {
    /// The webhook URL of a tenant with webhook key `key`.
    pub fn webhook_url(&self, key: &str) -> String {
        format!(
            "{}/webhooks/personio/{key}",
            self.public_url.trim_end_matches('/')
        )
    }

    /// Makes a tenant known before its actor runs: routes its webhook URL to it and
    /// shows a `starting` view if it has none yet. Called by the supervisor before a
    /// spawn and by the application for every stored tenant before it serves.
    pub fn announce(&self, spec: &TenantSpec) {
        if let Some(secrets) = &spec.webhook {
            self.board.register_webhook(
                &spec.id,
                &secrets.key,
                &secrets.token,
                spec.personio.webhook_signing_secret.as_ref(),
            );
        }
        if self.board.view(&spec.id).is_none() {
            let webhook_url = spec
                .webhook
                .as_ref()
                .map(|secrets| self.webhook_url(secrets.key.expose()))
                .unwrap_or_default();
            let mut view = super::status::TenantView::starting(&spec.id, webhook_url);
            // What is stored shows at once: the last sync and the events waiting in
            // the inbox (the actor refreshes both once it runs).
            match self.store.tenant(&spec.id) {
                Ok(store) => {
                    view.pending_events = store.pending_count() as u64;
                    view.last_sync = store.last_sync().ok().flatten();
                    view.learnamp_unsupported = store.learnamp_unsupported().unwrap_or_default();
                }
                Err(error) => {
                    tracing::warn!(tenant_id = %spec.id, error = %error, "stored state unreadable");
                }
            }
            self.board.insert(view);
        }
    }
}

/// Messages of the tenant actor.
pub enum TenantMsg {
    /// Sent by the tenant to itself right after start: check attributes and run the
    /// initial sync if it has not completed. No reply.
    Start,
    /// Sent by the admin API (operator sync) and the reconciliation timer: run a full
    /// sync; `confirm` lifts the mass-deactivation guard once. Updates `last_sync` and
    /// the state. No reply (the admin answers 202).
    FullSync {
        /// Apply even if the guard would stop it.
        confirm: bool,
    },
    /// Sent by the admin API: plan a full sync and answer the plan as JSON, writing
    /// nothing. Replies.
    DryRun(RpcReplyPort<Result<serde_json::Value, String>>),
    /// Sent by the webhook front door after it stored an event, and by the tenant to
    /// itself after a failed drain: apply every stored event, oldest first, coalesced
    /// per person; each leaves the inbox once its effect is stored. No reply.
    InboxWake,
    /// Sent by the scheduler child when invitations or deactivations are due for these
    /// people: re-plans each (which invites or deactivates them once), clears their past
    /// items and re-arms the scheduler. No reply.
    Due(Vec<String>),
    /// Sent by fault drills and tests: the tenant panics, as a bug would make it, so
    /// that supervision can be seen at work. No reply.
    Crash(String),
    /// Sent by the admin API: invite one person now, whatever the policy. Replies with
    /// the outcome, or an error sentence (unknown person, deactivated).
    InviteNow(String, RpcReplyPort<Result<InviteOutcome, InviteError>>),
    /// Sent by the tenant to itself after a transient failure to ensure its Personio
    /// webhook subscription: tries again, and on success clears the subscription problem
    /// (the view returns to `live` unless something else is wrong). No reply.
    EnsureSubscription,
}

/// What a manual invitation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteOutcome {
    /// The invitation was sent.
    Sent,
    /// The person had been invited before (or has confirmed): nothing sent.
    AlreadyInvited,
}

/// Why a manual invitation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The person has no Learn Amp user.
    #[error("Personio person {0} has no Learn Amp user")]
    UnknownPerson(String),
    /// Deactivated users are never invited.
    #[error("Personio person {0} is deactivated in Learn Amp; deactivated users are never invited")]
    Deactivated(String),
    /// The user exists and the account lacks the assumed invitation route, the only way
    /// to invite an existing user (the documented invite goes out only with a create).
    #[error(
        "Personio person {0} already has a Learn Amp user, and this Learn Amp account offers no route to invite an existing user (the assumed POST /v1/users/{{id}}/invitation is missing); send the invitation from Learn Amp itself"
    )]
    InvitationUnsupported(String),
    /// The call failed.
    #[error("{0}")]
    Failed(String),
}

/// The actor (stateless; everything lives in [`TenantActorState`]).
pub struct TenantActor;

/// A tenant's state inside its actor.
pub struct TenantActorState {
    spec: TenantSpec,
    deps: TenantDeps,
    store: TenantStore,
    personio: PersonioClient,
    learnamp: LearnAmpClient,
    consecutive_failures: u32,
    reconcile_timer: Option<tokio::task::JoinHandle<()>>,
    /// Active synced employees by Personio id (possible managers for live updates).
    known: HashMap<String, Employee>,
    /// When the next scheduled retry of the inbox drain is due, if one is.
    drain_retry_at: Option<std::time::Instant>,
    /// People whose update keeps failing, by Personio id (see [`drain_inbox`]).
    parked: HashMap<String, Parked>,
    /// The view shows parked people.
    showing_parked: bool,
    /// Clients that try once: parked people are retried with them, so a person who
    /// keeps failing costs one call per retry, not a whole retry cycle.
    retry_once: (PersonioClient, LearnAmpClient),
    /// The invitation scheduler child.
    scheduler: Option<ActorRef<SchedulerMsg>>,
    /// The team mapper child.
    team_mapper: Option<ActorRef<TeamMapperMsg>>,
    /// Why the webhook subscription could not be ensured: while set, the tenant shows
    /// `degraded` with this message instead of `live`.
    subscription_problem: Option<String>,
    /// Transient subscription failures in a row (spaces the retries).
    subscription_failures: u32,
}

impl TenantActorState {
    fn set_state(&self, state: TenantState, last_error: Option<String>) {
        let (state, last_error) = match (&self.subscription_problem, state) {
            (Some(problem), TenantState::Live) => (TenantState::Degraded, Some(problem.clone())),
            _ => (state, last_error),
        };
        let last_error = last_error.map(|text| self.scrub(&text));
        self.deps.board.update(&self.spec.id, |view| {
            view.state = state;
            view.last_error = last_error;
        });
    }

    /// `text` without the tenant's own secrets or anything that looks like one: what
    /// the view and the admin API's answers may show of an upstream error.
    fn scrub(&self, text: &str) -> String {
        let mut secrets = vec![
            self.spec.personio.client_secret.expose(),
            self.spec.learnamp.client_secret.expose(),
        ];
        if let Some(webhook) = &self.spec.webhook {
            secrets.extend([webhook.key.expose(), webhook.token.expose()]);
        }
        crate::domain::redact::scrub(text, &secrets)
    }

    fn context(&self) -> SyncContext<'_> {
        SyncContext {
            tenant_id: &self.spec.id,
            personio: &self.personio,
            learnamp: &self.learnamp,
            store: &self.store,
            settings: &self.spec.settings,
            concurrency: self.deps.concurrency,
            now: self.deps.clock.now(),
            team_mapper: self.team_mapper.as_ref(),
        }
    }

    /// Reloads the known-employee cache for a few people (after live updates), without
    /// the full scan of [`Self::publish_counts`].
    fn refresh_known(&mut self, people: &[String]) -> Result<(), StoreError> {
        for person in people {
            match self.store.employee(person)? {
                Some(record) if !record.deactivated && record.employee.is_some() => {
                    if let Some(employee) = record.employee {
                        self.known.insert(person.clone(), employee);
                    }
                }
                _ => {
                    self.known.remove(person);
                }
            }
        }
        Ok(())
    }

    /// Reloads counts and the known-employee cache from the store into the view.
    fn publish_counts(&mut self) -> Result<(), StoreError> {
        let records = self.store.employees()?;
        self.known = records
            .iter()
            .filter(|(_, record)| !record.deactivated)
            .filter_map(|(id, record)| {
                record
                    .employee
                    .clone()
                    .map(|employee| (id.clone(), employee))
            })
            .collect();
        // People waiting for their invitation day have a record but no user yet.
        let employees = records
            .iter()
            .filter(|(_, record)| record.is_linked())
            .count() as u64;
        let last_sync = self.store.last_sync()?;
        let pending = self.store.pending_count() as u64;
        let unsupported = self.store.learnamp_unsupported()?;
        self.deps.board.update(&self.spec.id, |view| {
            view.employees = employees;
            view.last_sync = last_sync;
            view.pending_events = pending;
            view.learnamp_unsupported = unsupported;
        });
        Ok(())
    }

    /// Shows the assumed Learn Amp contracts found missing (after live updates and due
    /// work, without the full scan of [`Self::publish_counts`]).
    fn publish_unsupported(&self) -> Result<(), StoreError> {
        let unsupported = self.store.learnamp_unsupported()?;
        self.deps.board.update(&self.spec.id, |view| {
            view.learnamp_unsupported = unsupported;
        });
        Ok(())
    }
}

/// Builds the two API clients of a tenant.
pub fn clients(spec: &TenantSpec, deps: &TenantDeps) -> (PersonioClient, LearnAmpClient) {
    let personio = PersonioClient::new(
        PersonioConfig {
            base_url: spec.personio.base_url.trim_end_matches('/').to_string(),
            client_id: spec.personio.client_id.clone(),
            client_secret: spec.personio.client_secret.clone(),
            app_id: PERSONIO_APP_ID.into(),
        },
        deps.http.clone(),
        deps.retry,
    )
    .with_v1_pacer(deps.personio_v1_pacer.clone());
    let learnamp = LearnAmpClient::new(
        LearnAmpConfig {
            base_url: spec.learnamp.base_url.trim_end_matches('/').to_string(),
            client_id: spec.learnamp.client_id.clone(),
            client_secret: spec.learnamp.client_secret.clone(),
            scopes: crate::learnamp::scopes::requested(spec.settings.remove_empty_teams),
        },
        deps.http.clone(),
        deps.retry,
    );
    (personio, learnamp)
}

impl Actor for TenantActor {
    type Msg = TenantMsg;
    type State = TenantActorState;
    type Arguments = (TenantSpec, TenantDeps);

    /// Local only (no network): opens the tenant's tree and builds the clients.
    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (spec, deps): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let store = deps.store.tenant(&spec.id)?;
        let (personio, learnamp) = clients(&spec, &deps);
        let once = TenantDeps {
            retry: RetryPolicy {
                max_attempts: 1,
                ..deps.retry
            },
            ..deps.clone()
        };
        let retry_once = clients(&spec, &once);
        deps.board.set_actor(&spec.id, Some(myself.clone()));
        let state = TenantActorState {
            spec,
            deps,
            store,
            personio,
            learnamp,
            consecutive_failures: 0,
            reconcile_timer: None,
            known: HashMap::new(),
            drain_retry_at: None,
            parked: HashMap::new(),
            showing_parked: false,
            retry_once,
            scheduler: None,
            team_mapper: None,
            subscription_problem: None,
            subscription_failures: 0,
        };
        let mut state = state;
        state.set_state(TenantState::Starting, None);
        state.publish_counts()?;
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        spawn_scheduler(&myself, state).await?;
        spawn_team_mapper(&myself, state).await?;
        myself.cast(TenantMsg::Start)?;
        let interval = state.deps.reconcile_interval;
        state.reconcile_timer =
            Some(myself.send_interval(interval, || TenantMsg::FullSync { confirm: false }));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.reconcile_timer.take() {
            timer.abort();
        }
        Ok(())
    }

    /// A failed child is restarted by the tenant itself; its state lives in sled, so
    /// nothing is lost.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: ractor::SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            ractor::SupervisionEvent::ActorFailed(cell, error) => {
                let id = cell.get_id();
                if state
                    .scheduler
                    .as_ref()
                    .is_some_and(|child| child.get_id() == id)
                {
                    warn!(tenant_id = %state.spec.id, error = %error, "scheduler failed; restarting it");
                    spawn_scheduler(&myself, state).await?;
                    rearm(state);
                } else if state
                    .team_mapper
                    .as_ref()
                    .is_some_and(|child| child.get_id() == id)
                {
                    warn!(tenant_id = %state.spec.id, error = %error, "team mapper failed; restarting it");
                    spawn_team_mapper(&myself, state).await?;
                }
            }
            ractor::SupervisionEvent::ActorTerminated(cell, _, _) => {
                let id = cell.get_id();
                if state
                    .scheduler
                    .as_ref()
                    .is_some_and(|child| child.get_id() == id)
                {
                    state.scheduler = None;
                } else if state
                    .team_mapper
                    .as_ref()
                    .is_some_and(|child| child.get_id() == id)
                {
                    state.team_mapper = None;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = info_span!("tenant", tenant_id = %state.spec.id);
        match message {
            TenantMsg::Start => {
                let gate = state.deps.start_gate.clone();
                let slot = tokio::time::timeout(START_GATE_WAIT, gate.acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok);
                let result = async {
                    sync::check_attributes(&state.personio, &state.spec.settings).await?;
                    // Proves the Learn Amp credentials (a 404 for user 0 is the answer).
                    state
                        .learnamp
                        .get_user(0)
                        .await
                        .map_err(SyncError::LearnAmp)?;
                    Ok::<bool, SyncError>(state.store.initial_sync_done()?)
                }
                .instrument(span.clone())
                .await;
                if result.is_ok() {
                    ensure_subscription(&myself, state)
                        .instrument(span.clone())
                        .await;
                }
                drop(slot);
                match result {
                    Ok(initial_done) => {
                        let settings_now =
                            serde_json::to_value(&state.spec.settings).unwrap_or_default();
                        let settings_changed = state
                            .store
                            .settings_applied()?
                            .is_some_and(|applied| applied != settings_now);
                        if initial_done && settings_changed {
                            info!("settings changed: running a full reconciliation");
                            full_sync(&myself, state, false).instrument(span).await?;
                        } else if initial_done {
                            state.set_state(TenantState::Live, None);
                            drain_inbox(&myself, state).instrument(span).await?;
                        } else {
                            full_sync(&myself, state, false).instrument(span).await?;
                        }
                    }
                    Err(error) => handle_sync_error(&myself, state, error, false)?,
                }
            }
            TenantMsg::FullSync { confirm } => {
                if state.subscription_problem.is_some() {
                    ensure_subscription(&myself, state)
                        .instrument(span.clone())
                        .await;
                }
                full_sync(&myself, state, confirm).instrument(span).await?;
            }
            TenantMsg::EnsureSubscription => {
                let before = state.subscription_problem.clone();
                ensure_subscription(&myself, state).instrument(span).await;
                let view = state.deps.board.view(&state.spec.id);
                let showing_it = view.is_some_and(|view| {
                    view.state == TenantState::Degraded && view.last_error == before
                });
                if before.is_some() && state.subscription_problem.is_none() && showing_it {
                    state.set_state(TenantState::Live, None);
                }
            }
            TenantMsg::Crash(reason) => {
                panic!("injected fault: {reason}");
            }
            TenantMsg::Due(people) => {
                if state.store.initial_sync_done()? {
                    handle_due(&myself, state, people).instrument(span).await?;
                }
            }
            TenantMsg::InviteNow(personio_id, reply) => {
                let outcome = invite_now(state, &personio_id)
                    .instrument(span)
                    .await
                    .map_err(|error| match error {
                        InviteError::Failed(message) => InviteError::Failed(state.scrub(&message)),
                        other => other,
                    });
                let _ = reply.send(outcome);
            }
            TenantMsg::InboxWake => {
                state.deps.board.wake_taken(&state.spec.id);
                state.drain_retry_at = None;
                if state.store.initial_sync_done()? {
                    drain_inbox(&myself, state).instrument(span).await?;
                }
            }
            TenantMsg::DryRun(reply) => {
                let plan = sync::plan_full_sync(&state.context())
                    .instrument(span)
                    .await
                    .map_err(|error| state.scrub(&error.to_string()))
                    .and_then(|plan| {
                        serde_json::to_value(&plan).map_err(|error| error.to_string())
                    });
                let _ = reply.send(plan);
            }
        }
        Ok(())
    }
}

async fn full_sync(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
    confirm: bool,
) -> Result<(), ActorProcessingErr> {
    state.set_state(TenantState::Syncing, None);
    let started = std::time::Instant::now();
    let result = sync::run_full_sync(&state.context(), confirm).await;
    crate::metrics::sync_finished(&state.spec.id, started.elapsed().as_secs_f64());
    state.publish_counts()?;
    match result {
        Ok(report) => {
            info!(
                created = report.created,
                updated = report.updated,
                deactivated = report.deactivated,
                reactivated = report.reactivated,
                invited = report.invited,
                unchanged = report.unchanged,
                failed = report.failed,
                "full sync finished"
            );
            state.consecutive_failures = 0;
            if report.failed > 0 {
                state.set_state(
                    TenantState::Degraded,
                    Some(format!(
                        "{} employees could not be synced (see the tenant history); the next sync retries them",
                        report.failed
                    )),
                );
            } else {
                state.set_state(TenantState::Live, None);
            }
            rearm(state);
            drain_inbox(myself, state).await
        }
        Err(error) => handle_sync_error(myself, state, error, true),
    }
}

/// Events drained per round.
const DRAIN_BATCH: usize = 256;

/// A person whose update keeps failing with a transient error: their events stay in
/// the inbox, held back until `retry_at`, while the rest of the inbox flows.
struct Parked {
    /// Failed attempts in a row.
    failures: u32,
    /// When the person is tried again.
    retry_at: std::time::Instant,
    /// The last error, for the view.
    error: String,
}

/// Applies every stored webhook event, oldest first, coalesced per person. Events leave
/// the inbox only after their effect is stored. A person whose update fails with a
/// transient error is parked: their events stay stored and are held back (so their
/// order is kept) and they are retried with backoff, while everybody else's events
/// are applied. A failed reconciliation (an event naming no person) stops the drain
/// and schedules another.
async fn drain_inbox(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<(), ActorProcessingErr> {
    loop {
        let now = std::time::Instant::now();
        let held: std::collections::HashSet<String> = state
            .parked
            .iter()
            .filter(|(_, parked)| parked.retry_at > now)
            .map(|(person, _)| person.clone())
            .collect();
        let batch = state.store.pending_events_except(DRAIN_BATCH, |event| {
            event
                .person_id
                .as_ref()
                .is_some_and(|person| held.contains(person))
        })?;
        if batch.is_empty() {
            state.parked.retain(|_, parked| parked.retry_at > now);
            show_parked(myself, state);
            return Ok(());
        }
        let mut people: Vec<String> = Vec::new();
        let mut needs_full_sync = false;
        for (_, event) in &batch {
            match &event.person_id {
                Some(person) if !people.contains(person) => people.push(person.clone()),
                Some(_) => {}
                None => needs_full_sync = true,
            }
        }
        let results = apply_each(state, &people, false).await;
        let mut applied: Vec<String> = Vec::new();
        let mut failed: Vec<(String, SyncError)> = Vec::new();
        let mut created = 0;
        for (person, result) in results {
            match result {
                Ok(done) => {
                    created += done.created;
                    applied.push(person);
                }
                Err(error) if error.is_fatal() => {
                    state.publish_counts()?;
                    return handle_sync_error(myself, state, error, false);
                }
                Err(error) if error.is_transient() => failed.push((person, error)),
                Err(error) => {
                    warn!(personio_id = %person, error = %error, "person not applied; the next reconciliation retries them");
                    let _ = state
                        .store
                        .append_history(&format!("person {person} not applied: {error}"));
                    applied.push(person);
                }
            }
        }
        // Reports of the people who changed may need a new manager field.
        state.refresh_known(&applied)?;
        state
            .deps
            .board
            .update(&state.spec.id, |view| view.employees += created);
        // Re-plan from the stored snapshot the people just applied and their reports:
        // a manager written concurrently in this batch, or a changed manager, reaches
        // them now (no Personio call; nothing is written when nothing differs). A
        // report that fails keeps the events of the people that caused its re-plan.
        let reports: Vec<String> = state
            .known
            .values()
            .filter(|employee| {
                applied.contains(&employee.id)
                    || employee
                        .supervisor_id
                        .as_ref()
                        .is_some_and(|supervisor| applied.contains(supervisor))
            })
            .map(|employee| employee.id.clone())
            .collect();
        if !reports.is_empty() {
            for (report, result) in apply_each(state, &reports, true).await {
                let Err(error) = result else { continue };
                if error.is_fatal() {
                    state.publish_counts()?;
                    return handle_sync_error(myself, state, error, false);
                }
                if !error.is_transient() {
                    warn!(personio_id = %report, error = %error, "report not re-planned");
                    continue;
                }
                let supervisor = state
                    .known
                    .get(&report)
                    .and_then(|employee| employee.supervisor_id.clone());
                let causes: Vec<String> = applied
                    .iter()
                    .filter(|person| **person == report || Some(*person) == supervisor.as_ref())
                    .cloned()
                    .collect();
                applied.retain(|person| !causes.contains(person));
                failed.extend(
                    causes
                        .into_iter()
                        .map(|person| (person, SyncError::Actor(error.to_string()))),
                );
            }
        }
        for person in &applied {
            state.parked.remove(person);
        }
        for (person, error) in failed {
            let parked = state.parked.entry(person.clone()).or_insert(Parked {
                failures: 0,
                retry_at: now,
                error: String::new(),
            });
            parked.failures += 1;
            parked.retry_at = std::time::Instant::now() + backoff(parked.failures);
            parked.error = error.to_string();
            warn!(personio_id = %person, failures = parked.failures, error = %error, "person's update failed; their events stay stored and are retried");
        }
        let mut full_sync_failed = None;
        if needs_full_sync {
            info!("an event named no person: running a full reconciliation");
            match sync::run_full_sync(&state.context(), false).await {
                Ok(_) => {}
                Err(error) if error.is_fatal() => {
                    state.publish_counts()?;
                    return handle_sync_error(myself, state, error, false);
                }
                Err(error) if error.is_transient() => full_sync_failed = Some(error),
                Err(error) => {
                    warn!(error = %error, "events not applied; the next reconciliation retries them")
                }
            }
        }
        let sequences: Vec<u64> = batch
            .iter()
            .filter(|(_, event)| match &event.person_id {
                Some(person) => applied.contains(person),
                None => full_sync_failed.is_none(),
            })
            .map(|(sequence, _)| *sequence)
            .collect();
        state.store.remove_events(&sequences)?;
        crate::metrics::events_applied(&state.spec.id, sequences.len() as u64);
        let now = state.deps.clock.now();
        crate::metrics::webhooks_applied(
            batch
                .iter()
                .filter(|(sequence, _)| sequences.binary_search(sequence).is_ok())
                .map(|(_, event)| event.received_at.as_str()),
            now,
        );
        let now = now.to_rfc3339();
        let done = sequences.len() as u64;
        state.deps.board.update(&state.spec.id, |view| {
            view.live.events_applied += done;
            view.live.last_event_at = Some(now);
            view.pending_events = view.pending_events.saturating_sub(done);
        });
        if needs_full_sync {
            state.publish_counts()?;
        }
        rearm(state);
        if let Some(error) = full_sync_failed {
            warn!(error = %error, "inbox drain failed; events stay stored");
            state.consecutive_failures += 1;
            state.set_state(
                TenantState::Degraded,
                Some(format!(
                    "{error}; stored webhook events are retried automatically"
                )),
            );
            schedule_drain(myself, state, backoff(state.consecutive_failures));
            return Ok(());
        }
        if state.consecutive_failures > 0 {
            state.consecutive_failures = 0;
            state.set_state(TenantState::Live, None);
        }
    }
}

/// Shows the parked people in the view (`degraded` while there are any) and schedules
/// the drain that retries the first of them.
fn show_parked(myself: &ActorRef<TenantMsg>, state: &mut TenantActorState) {
    let next = state.parked.values().map(|parked| parked.retry_at).min();
    match next {
        Some(retry_at) => {
            let count = state.parked.len();
            let example = state
                .parked
                .iter()
                .min_by_key(|(person, _)| person.as_str())
                .map(|(person, parked)| format!("person {person}: {}", parked.error))
                .unwrap_or_default();
            state.showing_parked = true;
            state.set_state(
                TenantState::Degraded,
                Some(format!(
                    "the updates of {count} people keep failing ({example}); their webhook events stay stored and are retried automatically while the others are applied"
                )),
            );
            let delay = retry_at.saturating_duration_since(std::time::Instant::now());
            schedule_drain(myself, state, delay);
        }
        None if state.showing_parked => {
            state.showing_parked = false;
            state.set_state(TenantState::Live, None);
        }
        None => {}
    }
}

/// Sends the tenant an [`TenantMsg::InboxWake`] after `delay`, unless one is already
/// due no later.
fn schedule_drain(myself: &ActorRef<TenantMsg>, state: &mut TenantActorState, delay: Duration) {
    let at = std::time::Instant::now() + delay;
    if state
        .drain_retry_at
        .is_some_and(|scheduled| scheduled <= at)
    {
        return;
    }
    state.drain_retry_at = Some(at);
    myself.send_after(delay, || TenantMsg::InboxWake);
}

/// Tells the scheduler child the due-queue may have changed.
fn rearm(state: &TenantActorState) {
    if let Some(scheduler) = &state.scheduler {
        let _ = scheduler.cast(SchedulerMsg::Rearm);
    }
}

/// Spawns (or respawns) the scheduler child, linked to the tenant.
async fn spawn_scheduler(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<(), ActorProcessingErr> {
    let args = SchedulerArgs {
        store: state.store.clone(),
        tenant: myself.clone(),
        clock: state.deps.clock.clone(),
    };
    let (scheduler, _) =
        Actor::spawn_linked(None, InviteScheduler, args, myself.get_cell()).await?;
    state.scheduler = Some(scheduler);
    Ok(())
}

/// Spawns (or respawns) the team mapper child, linked to the tenant.
async fn spawn_team_mapper(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<(), ActorProcessingErr> {
    let args = TeamMapperState {
        tenant_id: state.spec.id.clone(),
        learnamp: state.learnamp.clone(),
        store: state.store.clone(),
    };
    let (mapper, _) = Actor::spawn_linked(None, TeamMapper, args, myself.get_cell()).await?;
    state.team_mapper = Some(mapper);
    Ok(())
}

/// Re-plans people whose scheduled work is due; then clears their past items (the
/// re-plan wrote any new future ones) and re-arms the scheduler.
async fn handle_due(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
    people: Vec<String>,
) -> Result<(), ActorProcessingErr> {
    let now = state.deps.clock.now();
    match apply_people(state, &people, false).await {
        Ok(_) => {
            for item in state.store.due_until(now)? {
                if people.contains(&item.personio_id) {
                    state.store.set_due(item.kind, &item.personio_id, None)?;
                }
            }
            state.publish_counts()?;
            rearm(state);
            Ok(())
        }
        Err(error) if error.is_fatal() => handle_sync_error(myself, state, error, false),
        Err(error) => {
            warn!(error = %error, "scheduled work failed; retrying");
            state.consecutive_failures += 1;
            let delay = backoff(state.consecutive_failures);
            if let Some(scheduler) = &state.scheduler {
                scheduler.send_after(delay, || SchedulerMsg::Rearm);
            }
            Ok(())
        }
    }
}

/// Invites one person at once (the admin route), never twice, never a deactivated user.
async fn invite_now(
    state: &TenantActorState,
    personio_id: &str,
) -> Result<InviteOutcome, InviteError> {
    let failed = |error: &dyn std::fmt::Display| InviteError::Failed(error.to_string());
    let Some(mut record) = state
        .store
        .employee(personio_id)
        .map_err(|e| failed(&e))?
        .filter(|record| record.is_linked())
    else {
        return Err(InviteError::UnknownPerson(personio_id.to_string()));
    };
    if record.deactivated {
        return Err(InviteError::Deactivated(personio_id.to_string()));
    }
    if record.invited {
        return Ok(InviteOutcome::AlreadyInvited);
    }
    if record.invite_started {
        // A crash cut an earlier invitation short: ask Learn Amp before sending again.
        let filter = crate::learnamp::UserFilter {
            external_id: Some(personio_id.to_string()),
            statuses: vec![
                crate::learnamp::UserStatus::InvitePending,
                crate::learnamp::UserStatus::Confirmed,
            ],
            ..crate::learnamp::UserFilter::default()
        };
        let invited = state
            .learnamp
            .list_users(&filter)
            .await
            .map_err(|e| failed(&e))?;
        if !invited.is_empty() {
            record.invited = true;
            state
                .store
                .put_employee(personio_id, &record)
                .map_err(|e| failed(&e))?;
            return Ok(InviteOutcome::AlreadyInvited);
        }
    }
    record.invite_started = true;
    state
        .store
        .put_employee(personio_id, &record)
        .map_err(|e| failed(&e))?;
    state.store.flush().await.map_err(|e| failed(&e))?;
    let support = sync::support::Support::new(&state.store, state.deps.clock.now(), &state.spec.id);
    // An operator asking is worth a try even while the route is recorded missing.
    let outcome = match state.learnamp.send_invitation(record.learnamp_id).await {
        Err(crate::learnamp::LearnAmpError::Unsupported(assumed)) => {
            record.invite_started = false;
            state
                .store
                .put_employee(personio_id, &record)
                .map_err(|e| failed(&e))?;
            support.missing(assumed).map_err(|e| failed(&e))?;
            state.publish_unsupported().map_err(|e| failed(&e))?;
            return Err(InviteError::InvitationUnsupported(personio_id.to_string()));
        }
        other => other.map_err(|e| failed(&e))?,
    };
    support
        .works(crate::learnamp::Assumed::Invitation)
        .map_err(|e| failed(&e))?;
    state.publish_unsupported().map_err(|e| failed(&e))?;
    let result = match outcome {
        crate::learnamp::InvitationOutcome::Sent => InviteOutcome::Sent,
        crate::learnamp::InvitationOutcome::AlreadyConfirmed => InviteOutcome::AlreadyInvited,
        crate::learnamp::InvitationOutcome::Deactivated => {
            return Err(InviteError::Deactivated(personio_id.to_string()));
        }
    };
    record.invited = true;
    record.invite_due = None;
    state
        .store
        .put_employee(personio_id, &record)
        .map_err(|e| failed(&e))?;
    state
        .store
        .set_due(crate::store::schedule::DueKind::Invite, personio_id, None)
        .map_err(|e| failed(&e))?;
    rearm(state);
    Ok(result)
}

/// Applies the current Personio record of each person, a few at a time. The first
/// transient or fatal error is returned; other per-person errors are logged.
async fn apply_people(
    state: &TenantActorState,
    people: &[String],
    from_snapshot: bool,
) -> Result<u64, SyncError> {
    let results = apply_each(state, people, from_snapshot).await;
    let mut first_blocking: Option<SyncError> = None;
    let mut created = 0;
    for (person, result) in results {
        if let Ok(applied) = &result {
            created += applied.created;
        }
        if let Err(error) = result {
            if error.is_transient() || error.is_fatal() {
                first_blocking.get_or_insert(error);
            } else {
                warn!(personio_id = %person, error = %error, "person not applied");
                let _ = state
                    .store
                    .append_history(&format!("person {person} not applied: {error}"));
            }
        }
    }
    // An assumed Learn Amp contract found missing shows in the view at once.
    state.publish_unsupported()?;
    match first_blocking {
        Some(error) => Err(error),
        None => Ok(created),
    }
}

/// Applies the current Personio record (or, `from_snapshot`, the stored one) of each
/// person, a few at a time, and gives each person's outcome. Parked people are tried
/// once, without the clients' own retries.
async fn apply_each(
    state: &TenantActorState,
    people: &[String],
    from_snapshot: bool,
) -> Vec<(String, Result<sync::Applied, SyncError>)> {
    use futures::StreamExt;
    let context = state.context();
    let once = SyncContext {
        personio: &state.retry_once.0,
        learnamp: &state.retry_once.1,
        ..state.context()
    };
    let known = &state.known;
    let parked = &state.parked;
    let (context, once) = (&context, &once);
    futures::stream::iter(people.iter().cloned())
        .map(|person| async move {
            let source = match known.get(&person) {
                Some(employee) if from_snapshot => {
                    sync::live::Source::Snapshot(Box::new(employee.clone()))
                }
                _ => sync::live::Source::Fetch,
            };
            let context = if parked.contains_key(&person) {
                once
            } else {
                context
            };
            let result = sync::live::apply_person(context, &person, source, known).await;
            (person, result)
        })
        .buffer_unordered(state.deps.concurrency.max(1))
        .collect()
        .await
}

/// Makes sure exactly one enabled subscription for this tenant's URL exists in
/// Personio, with the right token and events; repairs or creates it. A failure is
/// never fatal for the sync: it is kept as the tenant's subscription problem (the view
/// shows `degraded` with it instead of `live`) and retried at the next full sync or
/// start; a transient one also by [`TenantMsg::EnsureSubscription`], sooner.
async fn ensure_subscription(myself: &ActorRef<TenantMsg>, state: &mut TenantActorState) {
    let Some(secrets) = &state.spec.webhook else {
        return;
    };
    let url = state.deps.webhook_url(secrets.key.expose());
    let result =
        sync::subscription::ensure(&state.personio, &state.spec.id, &url, &secrets.token).await;
    match result {
        Ok(_) => {
            state.subscription_problem = None;
            state.subscription_failures = 0;
        }
        Err(error) => {
            warn!(error = %error, "webhook subscription not ensured; live updates rely on reconciliation until it is");
            let message = error.to_string();
            let _ = state.store.append_history(&message);
            state.subscription_problem = Some(message);
            // A transient failure is retried on its own, sooner than the next sync;
            // a refusal (409 twice, https) waits for an operator or the next sync.
            if error.is_transient() {
                state.subscription_failures += 1;
                let delay = state
                    .deps
                    .restart_base
                    .saturating_mul(1 << state.subscription_failures.min(12))
                    .min(Duration::from_secs(300));
                myself.send_after(delay, || TenantMsg::EnsureSubscription);
            }
        }
    }
}

/// Turns a sync error into a state: transient → `degraded` and a retry later; guard →
/// `degraded` waiting for confirmation; operator problems → `failed` and stop.
fn handle_sync_error(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
    error: SyncError,
    _during_sync: bool,
) -> Result<(), ActorProcessingErr> {
    let message = error.to_string();
    if let SyncError::Store(store_error) = error {
        error!(tenant_id = %state.spec.id, error = %store_error, "storage failed");
        return Err(Box::new(store_error));
    }
    if error.is_fatal() {
        error!(tenant_id = %state.spec.id, error = %message, "tenant needs an operator");
        state.set_state(TenantState::Failed, Some(operator_message(&error)));
        let _ = state.store.append_history(&message);
        myself.stop(Some("failed".into()));
        return Ok(());
    }
    if matches!(error, SyncError::TooManyDeactivations { .. }) {
        warn!(tenant_id = %state.spec.id, error = %message, "mass deactivation guard");
        state.set_state(TenantState::Degraded, Some(message.clone()));
        let _ = state.store.append_history(&message);
        return Ok(());
    }
    state.consecutive_failures += 1;
    let delay = backoff(state.consecutive_failures);
    warn!(tenant_id = %state.spec.id, error = %message, retry_in_ms = delay.as_millis() as u64, "sync failed; retrying");
    state.set_state(
        TenantState::Degraded,
        Some(format!("{message}; retrying automatically")),
    );
    myself.send_after(delay, || TenantMsg::FullSync { confirm: false });
    Ok(())
}

fn operator_message(error: &SyncError) -> String {
    match error {
        SyncError::Personio(inner) if inner.is_credentials() => format!(
            "Personio refused the tenant's credentials ({inner}): fix them with PATCH /admin/tenants/{{id}}, then restart the tenant"
        ),
        SyncError::LearnAmp(inner) if inner.is_credentials() => format!(
            "Learn Amp refused the tenant's credentials ({inner}): fix them with PATCH /admin/tenants/{{id}}, then restart the tenant"
        ),
        other => other.to_string(),
    }
}

/// 1 s doubling to 5 min, ±25% jitter (many tenants failing together must not retry
/// in lockstep).
fn backoff(failures: u32) -> Duration {
    crate::retry::jittered_backoff(Duration::from_secs(1), failures, Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_retries_are_spread_not_in_lockstep() {
        for failures in [1u32, 4, 20] {
            let delays: std::collections::HashSet<Duration> =
                (0..50).map(|_| backoff(failures)).collect();
            assert!(delays.len() > 10, "{failures}: {delays:?}");
            assert!(
                delays
                    .iter()
                    .all(|delay| *delay <= Duration::from_secs(375))
            );
        }
    }
}
