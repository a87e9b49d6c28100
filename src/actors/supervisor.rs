//! The supervisor: spawns one tenant actor per tenant, restarts a failed tenant with
//! exponential backoff (1 s doubling to 5 min, with jitter), gives up after more than
//! 5 failures in 10 minutes (`failed`, waiting for an operator), and carries out
//! operator restarts and stops. It never awaits tenant work: stopping means killing,
//! and respawns happen when the supervision event arrives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tracing::{error, info, warn};

use crate::domain::tenant::TenantSpec;

use super::status::TenantState;
use super::tenant::TenantActor;
use crate::app::services::Services;

/// Failures allowed within [`FAILURE_WINDOW`] before a tenant is `failed`.
pub const MAX_FAILURES: usize = 5;
/// The window in which failures count.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);

/// How long a caller waits for the supervisor to answer a start or restart.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the supervisor to spawn `spec`'s tenant ([`SupervisorMsg::StartTenant`]);
/// `Err` says why not, or that the supervisor did not answer in time.
pub async fn start_tenant(
    supervisor: &ActorRef<SupervisorMsg>,
    spec: TenantSpec,
) -> Result<(), String> {
    answer_of(
        supervisor
            .call(
                |reply| SupervisorMsg::StartTenant(spec, reply),
                Some(ANSWER_TIMEOUT),
            )
            .await,
    )
}

/// Asks the supervisor to restart tenant `id`, with `spec` replacing the one it holds
/// when given ([`SupervisorMsg::RestartTenant`]); `Err` as for [`start_tenant`].
pub async fn restart_tenant(
    supervisor: &ActorRef<SupervisorMsg>,
    id: &str,
    spec: Option<TenantSpec>,
) -> Result<(), String> {
    answer_of(
        supervisor
            .call(
                |reply| SupervisorMsg::RestartTenant(id.to_string(), spec, reply),
                Some(ANSWER_TIMEOUT),
            )
            .await,
    )
}

/// Asks the supervisor to stop tenant `id` on this node only
/// ([`SupervisorMsg::StopTenantHere`]): its actor ends, its webhook route stays. Returns
/// once the actor has terminated; `Err` if the supervisor did not answer in time.
pub async fn stop_tenant_here(
    supervisor: &ActorRef<SupervisorMsg>,
    id: &str,
) -> Result<(), String> {
    match supervisor
        .call(
            |reply| SupervisorMsg::StopTenantHere(id.to_string(), reply),
            Some(ANSWER_TIMEOUT),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(())) => Ok(()),
        _ => Err("the supervisor did not answer".into()),
    }
}

fn answer_of(
    answer: Result<
        ractor::rpc::CallResult<Result<(), String>>,
        ractor::MessagingErr<SupervisorMsg>,
    >,
) -> Result<(), String> {
    match answer {
        Ok(ractor::rpc::CallResult::Success(result)) => result,
        _ => Err("the supervisor did not answer".into()),
    }
}

/// Messages of the supervisor.
pub enum SupervisorMsg {
    /// Sent by the admin API (create) and at start-up (every stored tenant): spawn the
    /// tenant's actor. Replies once it is spawned (its `pre_start` is local and quick).
    StartTenant(TenantSpec, RpcReplyPort<Result<(), String>>),
    /// Sent by the admin API (restart, and after a PATCH with the new spec): resets the
    /// failure budget, kills the running actor if any and spawns a fresh one. Replies
    /// at once.
    RestartTenant(String, Option<TenantSpec>, RpcReplyPort<Result<(), String>>),
    /// Sent by the admin API (delete): kills the tenant's actor and forgets it; its
    /// view shows `stopped`. Replies once the actor has terminated (at once if none
    /// runs); does nothing if the caller has already given up waiting.
    StopTenant(String, RpcReplyPort<()>),
    /// Sent by the lease manager when this node loses or gives up the tenant's lease:
    /// kills the tenant's actor and forgets it here, but keeps its webhook route (any
    /// node stores deliveries for the node that runs the tenant) and its view. Replies
    /// once the actor has terminated (at once if none runs).
    StopTenantHere(String, RpcReplyPort<()>),
    /// Sent by the supervisor to itself after a backoff: respawn a failed tenant. No reply.
    Respawn(String),
    /// Sent by fault drills and tests: the supervisor sleeps this long before its next
    /// message, as one stuck in a slow spawn would. No reply.
    Stall(Duration),
}

struct Entry {
    spec: TenantSpec,
    actor: Option<ActorCell>,
    failures: Vec<Instant>,
    restarts: u32,
    respawn_when_stopped: bool,
    stopping: bool,
    /// Whether the webhook route stays once the stopping actor has terminated (the
    /// tenant runs on another node).
    keep_route: bool,
    /// Callers of [`SupervisorMsg::StopTenant`] waiting for the actor to terminate.
    stop_waiters: Vec<RpcReplyPort<()>>,
}

/// The supervisor actor.
pub struct Supervisor;

/// The supervisor's table.
pub struct SupervisorState {
    services: Services,
    tenants: HashMap<String, Entry>,
    by_actor: HashMap<ActorId, String>,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        services: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            services,
            tenants: HashMap::new(),
            by_actor: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::StartTenant(spec, reply) => {
                let id = spec.id.clone();
                if state
                    .tenants
                    .get(&id)
                    .is_some_and(|entry| entry.actor.is_some())
                {
                    let _ = reply.send(Err(format!("tenant {id} is already running")));
                    return Ok(());
                }
                state.tenants.insert(
                    id.clone(),
                    Entry {
                        spec,
                        actor: None,
                        failures: Vec::new(),
                        restarts: 0,
                        respawn_when_stopped: false,
                        stopping: false,
                        keep_route: false,
                        stop_waiters: Vec::new(),
                    },
                );
                let result = spawn_tenant(&myself, state, &id).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::RestartTenant(id, new_spec, reply) => {
                let Some(entry) = state.tenants.get_mut(&id) else {
                    let _ = reply.send(Err(format!("tenant {id} is not known")));
                    return Ok(());
                };
                if let Some(spec) = new_spec {
                    entry.spec = spec;
                }
                entry.failures.clear();
                entry.restarts = 0;
                entry.stopping = false;
                state.services.views.update(&id, |view| view.restarts = 0);
                match &entry.actor {
                    Some(actor) => {
                        entry.respawn_when_stopped = true;
                        actor.kill();
                        let _ = reply.send(Ok(()));
                    }
                    None => {
                        let result = spawn_tenant(&myself, state, &id).await;
                        let _ = reply.send(result);
                    }
                }
            }
            SupervisorMsg::StopTenant(id, reply) => {
                if reply.is_closed() {
                    // The admin API gave up waiting and answered 503: the tenant stays.
                    warn!(tenant_id = %id, "stop request came too late; tenant left running");
                    return Ok(());
                }
                let mut reply = Some(reply);
                let running = state.tenants.get_mut(&id).and_then(|entry| {
                    entry.stopping = true;
                    entry.keep_route = false;
                    entry.respawn_when_stopped = false;
                    let actor = entry.actor.clone();
                    if actor.is_some() {
                        entry.stop_waiters.extend(reply.take());
                    }
                    actor
                });
                match running {
                    Some(actor) => actor.kill(),
                    None => {
                        state.tenants.remove(&id);
                    }
                }
                state.services.router.unregister_webhook(&id);
                state.services.router.set_actor(&id, None);
                state
                    .services
                    .views
                    .update(&id, |view| view.state = TenantState::Stopped);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            SupervisorMsg::StopTenantHere(id, reply) => {
                let mut reply = Some(reply);
                let running = state.tenants.get_mut(&id).and_then(|entry| {
                    entry.stopping = true;
                    entry.keep_route = true;
                    entry.respawn_when_stopped = false;
                    let actor = entry.actor.clone();
                    if actor.is_some() {
                        entry.stop_waiters.extend(reply.take());
                    }
                    actor
                });
                match running {
                    Some(actor) => actor.kill(),
                    None => {
                        state.tenants.remove(&id);
                    }
                }
                state.services.router.set_actor(&id, None);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            SupervisorMsg::Stall(duration) => {
                warn!(?duration, "supervisor stalled by a fault drill");
                tokio::time::sleep(duration).await;
            }
            SupervisorMsg::Respawn(id) => {
                let waiting = state
                    .tenants
                    .get(&id)
                    .is_some_and(|entry| entry.actor.is_none() && !entry.stopping);
                if waiting && let Err(error) = spawn_tenant(&myself, state, &id).await {
                    error!(tenant_id = %id, error = %error, "respawn failed");
                    record_failure(&myself, state, &id, error);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure, reason) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, Some(error.to_string()), None),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, None, reason),
            _ => return Ok(()),
        };
        let Some(id) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        let Some(entry) = state.tenants.get_mut(&id) else {
            return Ok(());
        };
        entry.actor = None;
        state.services.router.set_actor(&id, None);
        if entry.stopping {
            let keep_route = entry.keep_route;
            if let Some(entry) = state.tenants.remove(&id) {
                for waiter in entry.stop_waiters {
                    let _ = waiter.send(());
                }
            }
            if !keep_route {
                state.services.router.unregister_webhook(&id);
            }
            return Ok(());
        }
        if entry.respawn_when_stopped {
            entry.respawn_when_stopped = false;
            if let Err(error) = spawn_tenant(&myself, state, &id).await {
                record_failure(&myself, state, &id, error);
            }
            return Ok(());
        }
        match failure {
            Some(error) => {
                error!(tenant_id = %id, error = %error, "tenant actor failed");
                record_failure(&myself, state, &id, error);
            }
            None => info!(tenant_id = %id, reason = ?reason, "tenant actor stopped"),
        }
        Ok(())
    }
}

async fn spawn_tenant(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    id: &str,
) -> Result<(), String> {
    let Some(entry) = state.tenants.get(id) else {
        return Err(format!("tenant {id} is not known"));
    };
    let spec = entry.spec.clone();
    state.services.announce(&spec).await;
    if !spec.is_connected() {
        // Nothing runs until the customer connects Personio (`connect::connect_tenant`
        // restarts the tenant with its connection).
        state.services.views.update(id, |view| {
            view.state = TenantState::AwaitingConnection;
            view.last_error = None;
        });
        return Ok(());
    }
    let spawned = Actor::spawn_linked(
        None,
        TenantActor,
        (spec, state.services.clone()),
        myself.get_cell(),
    )
    .await;
    match spawned {
        Ok((actor, _join)) => {
            state.by_actor.insert(actor.get_id(), id.to_string());
            if let Some(entry) = state.tenants.get_mut(id) {
                entry.actor = Some(actor.get_cell());
            }
            Ok(())
        }
        Err(error) => Err(format!("tenant {id} could not start: {error}")),
    }
}

/// Counts a failure; schedules a respawn with backoff, or marks the tenant `failed`
/// when the budget is spent.
fn record_failure(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    id: &str,
    error: String,
) {
    let Some(entry) = state.tenants.get_mut(id) else {
        return;
    };
    let now = Instant::now();
    entry
        .failures
        .retain(|at| now.duration_since(*at) < FAILURE_WINDOW);
    entry.failures.push(now);
    if entry.failures.len() > MAX_FAILURES {
        warn!(tenant_id = %id, failures = entry.failures.len(), "restart budget spent; tenant failed");
        state.services.views.update(id, |view| {
            view.state = TenantState::Failed;
            view.last_error = Some(format!(
                "the tenant failed {} times within 10 minutes (last: {error}); fix the cause, then POST /admin/tenants/{id}/restart",
                MAX_FAILURES + 1
            ));
        });
        return;
    }
    entry.restarts += 1;
    let restarts = entry.restarts;
    let delay = restart_delay(state.services.restart_base, entry.failures.len() as u32);
    state.services.views.update(id, |view| {
        view.restarts = restarts;
        view.state = TenantState::Degraded;
        view.last_error = Some(format!(
            "the tenant crashed ({error}); restarting automatically"
        ));
    });
    let id = id.to_string();
    myself.send_after(delay, move || SupervisorMsg::Respawn(id));
}

/// `base` (1 s in production) doubling with each failure, at most 5 min, ±25% jitter.
pub fn restart_delay(base: Duration, failures: u32) -> Duration {
    crate::retry::jittered_backoff(base, failures, Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_with_jitter_and_stop_at_five_minutes() {
        let base = Duration::from_secs(1);
        for (failures, nominal) in [(1u32, 1u64), (2, 2), (3, 4), (6, 32), (12, 300), (40, 300)] {
            let delay = restart_delay(base, failures);
            let nominal = Duration::from_secs(nominal);
            assert!(
                delay >= nominal.mul_f64(0.75) && delay <= nominal.mul_f64(1.25),
                "{failures}: {delay:?}"
            );
        }
    }
}
