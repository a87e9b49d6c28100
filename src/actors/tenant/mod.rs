//! The tenant actor: owns one tenant's Personio and Learn Amp clients and its sled
//! tree, runs its full syncs and live updates and publishes its state in its view.

pub mod messages;
pub mod scheduler;
pub mod team_mapper;
mod view;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{Instrument, error, info, info_span, warn};

use crate::actors::status::TenantState;
use crate::app::services::Services;
use crate::domain::tenant::TenantSpec;
use crate::learnamp::LearnAmpClient;
use crate::personio::PersonioClient;
use crate::retry::RetryPolicy;
use crate::store::{ChangeSource, StoreError, TenantStore};
use crate::sync::live::drain::{LiveContext, LiveState, Round, backoff};
use crate::sync::progress::SyncProgress;
use crate::sync::{self, SyncContext, SyncError};

pub use messages::{InviteError, InviteOutcome, TenantMsg};
use scheduler::SchedulerMsg;
use team_mapper::TeamMapperMsg;
use view::OwnView;

/// Tenants running their start-up checks (authentication, attribute check) at once.
/// When thousands of stored tenants start together, an unbounded burst would open one
/// connection per tenant and meet Personio's per-IP limits; a few dozen at a time keep
/// connections reused and finish sooner.
pub const START_GATE: usize = 32;

/// A tenant waits at most this long for a start-up slot, then checks anyway: a slot held
/// by a tenant whose API hangs must not delay the others by more than this.
const START_GATE_WAIT: Duration = Duration::from_secs(2);

/// The actor (stateless; everything lives in [`TenantActorState`]).
pub struct TenantActor;

/// A tenant's state inside its actor.
pub struct TenantActorState {
    spec: TenantSpec,
    services: Services,
    store: TenantStore,
    personio: PersonioClient,
    learnamp: LearnAmpClient,
    consecutive_failures: u32,
    reconcile_timer: Option<tokio::task::JoinHandle<()>>,
    /// What the live path keeps between drains (known employees, parked people).
    live: LiveState,
    /// When the next scheduled retry of the inbox drain is due, if one is.
    drain_retry_at: Option<std::time::Instant>,
    /// The tenant's own view.
    view: OwnView,
    /// Clients that try once: parked people are retried with them, so a person who
    /// keeps failing costs one call per retry, not a whole retry cycle.
    retry_once: (PersonioClient, LearnAmpClient),
    /// The invitation scheduler child.
    scheduler: Option<ActorRef<SchedulerMsg>>,
    /// The team mapper child.
    team_mapper: Option<ActorRef<TeamMapperMsg>>,
    /// Transient subscription failures in a row (spaces the retries).
    subscription_failures: u32,
    /// The running full sync's progress, shown in the view.
    progress: std::sync::Arc<SyncProgress>,
}

impl TenantActorState {
    /// See [`OwnView::scrub`].
    fn scrub(&self, text: &str) -> String {
        self.view.scrub(text)
    }

    /// Reloads counts into the view and the known-employee cache from the store.
    async fn publish_counts(&mut self) -> Result<(), StoreError> {
        let pending = self.store.pending_count().await as u64;
        self.live.known = self.view.publish_counts(&self.store, pending)?;
        Ok(())
    }

    /// See [`OwnView::publish_unsupported`].
    fn publish_unsupported(&self) -> Result<(), StoreError> {
        self.view.publish_unsupported(&self.store)
    }

    /// The live path's context: the sync context, and the same with clients that try
    /// once (for parked people).
    fn live_context(&self, source: ChangeSource) -> LiveContext<'_> {
        LiveContext {
            sync: SyncContext {
                source,
                ..self.context()
            },
            once: SyncContext {
                personio: &self.retry_once.0,
                learnamp: &self.retry_once.1,
                source,
                ..self.context()
            },
            clock: self.services.clock.clone(),
        }
    }

    fn context(&self) -> SyncContext<'_> {
        SyncContext {
            tenant_id: &self.spec.id,
            personio: &self.personio,
            learnamp: &self.learnamp,
            store: &self.store,
            settings: &self.spec.settings,
            concurrency: self.services.concurrency,
            now: self.services.clock.now(),
            team_mapper: self.team_mapper.as_ref(),
            source: ChangeSource::FullSync,
            progress: Some(&self.progress),
        }
    }
}

impl Actor for TenantActor {
    type Msg = TenantMsg;
    type State = TenantActorState;
    type Arguments = (TenantSpec, Services);

    /// Local only (no network): opens the tenant's tree and builds the clients.
    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (spec, services): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let store = services.store.tenant(&spec.id).await?;
        let (personio, learnamp) = services.clients(&spec);
        let once = RetryPolicy {
            max_attempts: 1,
            ..services.retry
        };
        let retry_once = services.clients_with(&spec, once);
        services.router.set_actor(&spec.id, Some(myself.clone()));
        let view = OwnView::new(&spec, services.views.clone());
        let progress = std::sync::Arc::new(SyncProgress::default());
        services.views.set_progress(&spec.id, progress.clone());
        let state = TenantActorState {
            view,
            spec,
            services,
            store,
            personio,
            learnamp,
            consecutive_failures: 0,
            reconcile_timer: None,
            live: LiveState::default(),
            drain_retry_at: None,
            retry_once,
            scheduler: None,
            team_mapper: None,
            subscription_failures: 0,
            progress,
        };
        let mut state = state;
        let connection = state.spec.connection.clone();
        state.view.update(|view| view.connection = connection);
        state.view.set_state(TenantState::Starting, None);
        state.publish_counts().await?;
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
        let interval = state.services.reconcile_interval;
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
        use ractor::SupervisionEvent::{ActorFailed, ActorTerminated};
        let (cell, failure) = match event {
            ActorFailed(cell, error) => (cell, Some(error)),
            ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        let is = |child: Option<ractor::ActorCell>| {
            child.is_some_and(|child| child.get_id() == cell.get_id())
        };
        let scheduler = is(state.scheduler.as_ref().map(ActorRef::get_cell));
        let team_mapper = is(state.team_mapper.as_ref().map(ActorRef::get_cell));
        match failure {
            Some(error) if scheduler => {
                warn!(tenant_id = %state.spec.id, error = %error, "scheduler failed; restarting it");
                spawn_scheduler(&myself, state).await?;
                rearm(state);
            }
            Some(error) if team_mapper => {
                warn!(tenant_id = %state.spec.id, error = %error, "team mapper failed; restarting it");
                spawn_team_mapper(&myself, state).await?;
            }
            None if scheduler => state.scheduler = None,
            None if team_mapper => state.team_mapper = None,
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
            TenantMsg::Start => match start(&myself, state).instrument(span.clone()).await {
                Ok(Begin::FullSync) => full_sync(&myself, state, false).instrument(span).await?,
                Ok(Begin::Live) => {
                    state.view.set_state(TenantState::Live, None);
                    drain_inbox(&myself, state).instrument(span).await?;
                }
                Err(error) => handle_sync_error(&myself, state, error, false)?,
            },
            TenantMsg::FullSync { confirm } => {
                if state.view.subscription_problem.is_some() {
                    ensure_subscription(&myself, state)
                        .instrument(span.clone())
                        .await;
                }
                full_sync(&myself, state, confirm).instrument(span).await?;
            }
            TenantMsg::EnsureSubscription => {
                retry_subscription(&myself, state).instrument(span).await;
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
                state.services.router.wake_taken(&state.spec.id);
                state.drain_retry_at = None;
                if state.store.initial_sync_done()? {
                    drain_inbox(&myself, state).instrument(span).await?;
                }
            }
            TenantMsg::DryRun(reply) => {
                let _ = reply.send(dry_run(state).instrument(span).await);
            }
            TenantMsg::DryRunWith(settings, reply) => {
                let _ = reply.send(dry_run_with(state, &settings).instrument(span).await);
            }
        }
        Ok(())
    }
}

/// What a tenant does once its start-up checks pass.
enum Begin {
    /// Run a full sync: the initial one has not completed, the settings changed, or the
    /// last run did not stop cleanly.
    FullSync,
    /// Go live and drain the inbox.
    Live,
}

/// The start-up checks, a few tenants at a time (the start gate): Personio attributes,
/// Learn Amp credentials, then the webhook subscription.
async fn start(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<Begin, SyncError> {
    let gate = state.services.start_gate.clone();
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
    .await;
    if result.is_ok() {
        ensure_subscription(myself, state).await;
    }
    drop(slot);
    let initial_done = result?;
    let settings_now = serde_json::to_value(&state.spec.settings).unwrap_or_default();
    let settings_changed = state
        .store
        .settings_applied()?
        .is_some_and(|applied| applied != settings_now);
    if initial_done && settings_changed {
        info!("settings changed: running a full reconciliation");
        Ok(Begin::FullSync)
    } else if initial_done && state.store.reconcile_due()? {
        info!("the last run did not stop cleanly: running a full reconciliation");
        Ok(Begin::FullSync)
    } else if initial_done {
        Ok(Begin::Live)
    } else {
        Ok(Begin::FullSync)
    }
}

/// Plans a full sync and answers the plan as JSON, writing nothing.
async fn dry_run(state: &TenantActorState) -> Result<serde_json::Value, String> {
    sync::plan_full_sync(&state.context())
        .await
        .map_err(|error| state.scrub(&error.to_string()))
        .and_then(|plan| serde_json::to_value(&plan).map_err(|error| error.to_string()))
}

/// Plans a full sync with candidate `settings` instead of the tenant's, writing nothing.
async fn dry_run_with(
    state: &TenantActorState,
    settings: &crate::domain::tenant::Settings,
) -> Result<sync::plan::Plan, String> {
    let context = SyncContext {
        settings,
        progress: None,
        ..state.context()
    };
    sync::plan_full_sync(&context)
        .await
        .map_err(|error| state.scrub(&error.to_string()))
}

async fn full_sync(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
    confirm: bool,
) -> Result<(), ActorProcessingErr> {
    state.view.set_state(TenantState::Syncing, None);
    let started = std::time::Instant::now();
    let result = sync::run_full_sync(&state.context(), confirm).await;
    crate::metrics::sync_finished(&state.spec.id, started.elapsed().as_secs_f64());
    state.publish_counts().await?;
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
                state.view.set_state(
                    TenantState::Degraded,
                    Some(format!(
                        "{} employees could not be synced (see the tenant history); the next sync retries them",
                        report.failed
                    )),
                );
            } else {
                state.view.set_state(TenantState::Live, None);
            }
            rearm(state);
            drain_inbox(myself, state).await
        }
        Err(error) => handle_sync_error(myself, state, error, true),
    }
}

/// Drains the inbox round by round (see [`sync::live::drain`]) and shows each round's
/// outcome: progress in the view, `degraded` with a scheduled retry while a
/// reconciliation fails or people are parked, `live` once it recovers.
async fn drain_inbox(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<(), ActorProcessingErr> {
    loop {
        let mut live = std::mem::take(&mut state.live);
        let round = live
            .drain_round(&state.live_context(ChangeSource::Webhook))
            .await;
        state.live = live;
        let report = match round? {
            Round::Drained(parked) => {
                // The count is the store's again: a delivery's `+1` lands after its
                // commit, so a drain that applied it first would leave the count one
                // high (that late `+1` wakes the tenant, and this resets it).
                let pending = state.store.pending_count().await as u64;
                state.view.update(|view| view.pending_events = pending);
                if let Some(retry_at) = state.view.show_parked(parked) {
                    let delay = retry_at.saturating_duration_since(std::time::Instant::now());
                    schedule_drain(myself, state, delay);
                }
                return Ok(());
            }
            Round::Stopped(error) => {
                state.publish_counts().await?;
                return handle_sync_error(myself, state, error, false);
            }
            Round::Applied(report) => report,
        };
        let now = state.services.clock.now().to_rfc3339();
        state.view.update(|view| {
            view.employees += report.created;
            view.live.events_applied += report.removed;
            view.live.last_event_at = Some(now);
            view.pending_events = view.pending_events.saturating_sub(report.removed);
        });
        if report.reconciled {
            state.publish_counts().await?;
        }
        rearm(state);
        if let Some(error) = report.retry {
            warn!(error = %error, "inbox drain failed; events stay stored");
            state.consecutive_failures += 1;
            let message = format!("{error}; stored webhook events are retried automatically");
            state.view.set_state(TenantState::Degraded, Some(message));
            schedule_drain(myself, state, backoff(state.consecutive_failures));
            return Ok(());
        }
        if state.consecutive_failures > 0 {
            state.consecutive_failures = 0;
            state.view.set_state(TenantState::Live, None);
        }
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
    let clock = state.services.clock.clone();
    state.scheduler = Some(scheduler::spawn(myself, state.store.clone(), clock).await?);
    Ok(())
}

/// Spawns (or respawns) the team mapper child, linked to the tenant.
async fn spawn_team_mapper(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
) -> Result<(), ActorProcessingErr> {
    let learnamp = state.learnamp.clone();
    let mapper = team_mapper::spawn(myself, &state.spec.id, learnamp, state.store.clone());
    state.team_mapper = Some(mapper.await?);
    Ok(())
}

/// Re-plans people whose scheduled work is due; then clears their past items (the
/// re-plan wrote any new future ones) and re-arms the scheduler.
async fn handle_due(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantActorState,
    people: Vec<String>,
) -> Result<(), ActorProcessingErr> {
    let now = state.services.clock.now();
    let result = state
        .live
        .apply_people(&state.live_context(ChangeSource::Scheduler), &people)
        .await;
    // An assumed Learn Amp contract found missing shows in the view at once.
    state.publish_unsupported()?;
    match result {
        Ok(_) => {
            for item in state.store.due_until(now)? {
                if people.contains(&item.personio_id) {
                    state.store.set_due(item.kind, &item.personio_id, None)?;
                }
            }
            state.publish_counts().await?;
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
    use sync::invite::Manual;
    let support =
        sync::support::Support::new(&state.store, state.services.clock.now(), &state.spec.id);
    let failed = |error: &dyn std::fmt::Display| InviteError::Failed(error.to_string());
    let outcome = sync::invite::invite_now(&state.store, &state.learnamp, &support, personio_id)
        .await
        .map_err(|e| failed(&e))?;
    state.publish_unsupported().map_err(|e| failed(&e))?;
    let person = || personio_id.to_string();
    match outcome {
        Manual::Sent | Manual::AlreadyInvited => {
            rearm(state);
            Ok(if outcome == Manual::Sent {
                InviteOutcome::Sent
            } else {
                InviteOutcome::AlreadyInvited
            })
        }
        Manual::UnknownPerson => Err(InviteError::UnknownPerson(person())),
        Manual::Deactivated => Err(InviteError::Deactivated(person())),
        Manual::Unsupported => Err(InviteError::InvitationUnsupported(person())),
    }
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
    let url = state.services.webhook_url(secrets.key.expose());
    let result =
        sync::subscription::ensure(&state.personio, &state.spec.id, &url, &secrets.token).await;
    match result {
        Ok(_) => {
            state.view.subscription_problem = None;
            state.subscription_failures = 0;
        }
        Err(error) => {
            warn!(error = %error, "webhook subscription not ensured; live updates rely on reconciliation until it is");
            let message = error.to_string();
            let _ = state.store.append_history(&message);
            state.view.subscription_problem = Some(message);
            // A transient failure is retried on its own, sooner than the next sync;
            // a refusal (409 twice, https) waits for an operator or the next sync.
            if error.is_transient() {
                state.subscription_failures += 1;
                let delay = state
                    .services
                    .restart_base
                    .saturating_mul(1 << state.subscription_failures.min(12))
                    .min(Duration::from_secs(300));
                myself.send_after(delay, || TenantMsg::EnsureSubscription);
            }
        }
    }
}

/// Tries the subscription again after a transient failure; on success the view
/// returns to `live` if the subscription problem is what it was showing.
async fn retry_subscription(myself: &ActorRef<TenantMsg>, state: &mut TenantActorState) {
    let before = state.view.subscription_problem.clone();
    ensure_subscription(myself, state).await;
    let view = state.view.current();
    let showing_it =
        view.is_some_and(|view| view.state == TenantState::Degraded && view.last_error == before);
    if before.is_some() && state.view.subscription_problem.is_none() && showing_it {
        state.view.set_state(TenantState::Live, None);
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
        state.view.set_state(
            TenantState::Failed,
            Some(operator_message(&error, &state.spec)),
        );
        let _ = state.store.append_history(&message);
        myself.stop(Some("failed".into()));
        return Ok(());
    }
    if matches!(error, SyncError::TooManyDeactivations { .. }) {
        warn!(tenant_id = %state.spec.id, error = %message, "mass deactivation guard");
        state
            .view
            .set_state(TenantState::Degraded, Some(message.clone()));
        let _ = state.store.append_history(&message);
        return Ok(());
    }
    state.consecutive_failures += 1;
    let delay = backoff(state.consecutive_failures);
    warn!(tenant_id = %state.spec.id, error = %message, retry_in_ms = delay.as_millis() as u64, "sync failed; retrying");
    state.view.set_state(
        TenantState::Degraded,
        Some(format!("{message}; retrying automatically")),
    );
    myself.send_after(delay, || TenantMsg::FullSync { confirm: false });
    Ok(())
}

/// The `last_error` of a tenant stopped by `error`: what to do, with the tenant's own
/// admin path (a tenant connected through "Sign in with Personio" is reconnected
/// through a new invitation).
fn operator_message(error: &SyncError, spec: &TenantSpec) -> String {
    let id = &spec.id;
    match error {
        SyncError::Personio(crate::personio::PersonioError::ConnectionRevoked) => format!(
            "Personio refused the connection's refresh token, so the connection is gone; reconnect Personio through a new invitation (personio-sync tenants invite {id})"
        ),
        SyncError::Personio(inner @ crate::personio::PersonioError::OidcClientRefused { .. }) => {
            format!(
                "{inner}: fix client_id, or the secret in the variable named by client_secret_env, under [personio_oidc] in the service's config, restart the service, then restart the tenant (a new invitation would not help)"
            )
        }
        SyncError::Personio(inner) if inner.is_credentials() && spec.personio_oidc.is_some() => {
            format!(
                "Personio refused the connection made by signing in ({inner}); reconnect Personio through a new invitation (personio-sync tenants invite {id})"
            )
        }
        SyncError::Personio(inner) if inner.is_credentials() => format!(
            "Personio refused the tenant's credentials ({inner}): fix them with PATCH /admin/tenants/{id}, then restart the tenant"
        ),
        SyncError::LearnAmp(inner) if inner.is_credentials() => format!(
            "Learn Amp refused the tenant's credentials ({inner}): fix them with PATCH /admin/tenants/{id}, then restart the tenant"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personio::PersonioError;

    fn spec() -> TenantSpec {
        crate::domain::tenant::parse_spec(serde_json::json!({
            "id": "acme",
            "learnamp": {"base_url": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s"}
        }))
        .unwrap()
    }

    #[test]
    fn a_revoked_connection_asks_for_a_new_invitation_and_a_refused_client_for_the_config() {
        let revoked = operator_message(
            &SyncError::Personio(PersonioError::ConnectionRevoked),
            &spec(),
        );
        assert!(
            revoked.contains("personio-sync tenants invite acme"),
            "{revoked}"
        );
        let client = operator_message(
            &SyncError::Personio(PersonioError::OidcClientRefused {
                message: "invalid_client".into(),
            }),
            &spec(),
        );
        assert!(client.contains("[personio_oidc]"), "{client}");
        assert!(!client.contains("tenants invite"), "{client}");
    }
}
