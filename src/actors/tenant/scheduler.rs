//! The invitation scheduler, a child of each tenant actor: keeps one timer armed for
//! the earliest item of the tenant's persisted due-queue (invitations, termination-date
//! deactivations) and tells its tenant when items are due. It does no API call itself:
//! the tenant re-plans the people named, which invites or deactivates them exactly once.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::store::TenantStore;

use super::messages::TenantMsg;

/// Spawns the scheduler of `tenant`, linked to it.
pub async fn spawn(
    tenant: &ActorRef<TenantMsg>,
    store: TenantStore,
    clock: SharedClock,
) -> Result<ActorRef<SchedulerMsg>, ractor::SpawnErr> {
    let args = SchedulerArgs {
        store,
        tenant: tenant.clone(),
        clock,
    };
    let (scheduler, _) =
        Actor::spawn_linked(None, InviteScheduler, args, tenant.get_cell()).await?;
    Ok(scheduler)
}

/// The longest single timer: a longer wait is cut into pieces so a changed wall clock
/// is noticed.
pub const MAX_TIMER: Duration = Duration::from_secs(3600);

/// Messages of the scheduler.
pub enum SchedulerMsg {
    /// Sent by the tenant after any change of the due-queue (and by the scheduler to
    /// itself when a long wait was cut): re-arm the timer for the earliest item. No reply.
    Rearm,
    /// Sent by the scheduler's own timer: casts `TenantMsg::Due` with the people whose
    /// items are due. The tenant answers with `Rearm` once it has handled them. No reply.
    Fire,
}

/// The scheduler actor.
pub struct InviteScheduler;

/// Its state.
pub struct SchedulerState {
    store: TenantStore,
    tenant: ActorRef<TenantMsg>,
    clock: SharedClock,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SchedulerMsg>>>>,
}

/// What the tenant hands its scheduler.
pub struct SchedulerArgs {
    /// The tenant's store (due-queue).
    pub store: TenantStore,
    /// The tenant to notify.
    pub tenant: ActorRef<TenantMsg>,
    /// Where "now" comes from.
    pub clock: SharedClock,
}

impl Actor for InviteScheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = SchedulerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SchedulerState {
            store: args.store,
            tenant: args.tenant,
            clock: args.clock,
            timer: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Items missed while the service was down fire at once.
        myself.cast(SchedulerMsg::Rearm)?;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SchedulerMsg::Rearm => {
                if let Some(timer) = state.timer.take() {
                    timer.abort();
                }
                let Some(next) = state.store.next_due()? else {
                    return Ok(());
                };
                let wait = (next - state.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                state.timer = Some(if wait > MAX_TIMER {
                    myself.send_after(MAX_TIMER, || SchedulerMsg::Rearm)
                } else {
                    myself.send_after(wait, || SchedulerMsg::Fire)
                });
            }
            SchedulerMsg::Fire => {
                state.timer = None;
                let due = state.store.due_until(state.clock.now())?;
                let mut people: Vec<String> =
                    due.into_iter().map(|item| item.personio_id).collect();
                people.dedup();
                if people.is_empty() {
                    myself.cast(SchedulerMsg::Rearm)?;
                } else {
                    tracing::info!(due = people.len(), "scheduled work is due");
                    state.tenant.cast(TenantMsg::Due(people))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::{DateTime, NaiveDate, Utc};
    use chrono_tz::Tz;
    use ractor::{Actor, ActorProcessingErr, ActorRef};

    use super::*;
    use crate::clock::{Clock, TokioClock};
    use crate::domain::Employee;
    use crate::domain::schedule::{InviteTiming, invite_due};
    use crate::domain::tenant::InvitePolicy;
    use crate::store::Store;
    use crate::store::schedule::DueKind;

    type Fired = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;
    type SchedulerSlot = Arc<Mutex<Option<ActorRef<SchedulerMsg>>>>;

    /// Stands in for the tenant: records who was due when, clears their items and
    /// re-arms the scheduler, as the tenant does after re-planning.
    struct FakeTenant;

    struct FakeState {
        store: TenantStore,
        clock: Arc<TokioClock>,
        fired: Fired,
        scheduler: SchedulerSlot,
    }

    impl Actor for FakeTenant {
        type Msg = TenantMsg;
        type State = FakeState;
        type Arguments = FakeState;

        async fn pre_start(
            &self,
            _myself: ActorRef<Self::Msg>,
            state: FakeState,
        ) -> Result<FakeState, ActorProcessingErr> {
            Ok(state)
        }

        async fn handle(
            &self,
            _myself: ActorRef<Self::Msg>,
            message: TenantMsg,
            state: &mut FakeState,
        ) -> Result<(), ActorProcessingErr> {
            if let TenantMsg::Due(_) = message {
                let now = state.clock.now();
                for item in state.store.due_until(now)? {
                    state
                        .fired
                        .lock()
                        .unwrap()
                        .push((item.personio_id.clone(), now));
                    state.store.set_due(item.kind, &item.personio_id, None)?;
                }
                if let Some(scheduler) = state.scheduler.lock().unwrap().as_ref() {
                    scheduler.cast(SchedulerMsg::Rearm)?;
                }
            }
            Ok(())
        }
    }

    fn hired(id: &str, date: (i32, u32, u32)) -> Employee {
        let mut employee = Employee::with_id(id);
        employee.hire_date = NaiveDate::from_ymd_opt(date.0, date.1, date.2);
        employee
    }

    async fn pass_hours(hours: u32) {
        for _ in 0..hours {
            tokio::time::advance(std::time::Duration::from_secs(3600)).await;
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn invitations_fire_once_on_the_right_local_day_across_a_restart() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let new_york: Tz = "America/New_York".parse().unwrap();
        // Berlin moves to summer time on 2026-03-29, New York on 2026-03-08.
        let start: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let clock = Arc::new(TokioClock::starting_at(start));
        let store = Store::temporary().await.unwrap();
        let tenant_store = store.tenant("sched").await.unwrap();
        let cases = [
            (
                "1",
                InvitePolicy::OnHireDate,
                berlin,
                (2026, 3, 30),
                "2026-03-30",
            ),
            (
                "2",
                InvitePolicy::DaysBeforeHire { days: 2 },
                berlin,
                (2026, 3, 31),
                "2026-03-29",
            ),
            (
                "3",
                InvitePolicy::OnHireDate,
                new_york,
                (2026, 3, 9),
                "2026-03-09",
            ),
            (
                "4",
                InvitePolicy::DaysBeforeHire { days: 7 },
                new_york,
                (2026, 3, 14),
                "2026-03-07",
            ),
        ];
        for (id, policy, tz, hire, _) in &cases {
            let InviteTiming::At(at) = invite_due(*policy, &hired(id, *hire), *tz) else {
                panic!("timed policy");
            };
            tenant_store.set_due(DueKind::Invite, id, Some(at)).unwrap();
        }
        let fired: Fired = Arc::default();
        let slot: SchedulerSlot = Arc::default();
        let fake_state = FakeState {
            store: tenant_store.clone(),
            clock: clock.clone(),
            fired: fired.clone(),
            scheduler: slot.clone(),
        };
        let (fake, _) = Actor::spawn(None, FakeTenant, fake_state).await.unwrap();
        let spawn_scheduler = || async {
            let args = SchedulerArgs {
                store: tenant_store.clone(),
                tenant: fake.clone(),
                clock: clock.clone(),
            };
            let scheduler = Actor::spawn(None, InviteScheduler, args).await.unwrap().0;
            *slot.lock().unwrap() = Some(scheduler.clone());
            scheduler
        };
        let scheduler = spawn_scheduler().await;

        // Ten days pass; then the scheduler stops (as when its tenant restarts) while
        // items are still pending, and a new one takes over the persisted queue.
        pass_hours(10 * 24).await;
        scheduler.stop(None);
        let fired_before_restart = fired.lock().unwrap().len();
        assert!(
            (1..cases.len()).contains(&fired_before_restart),
            "{fired_before_restart} fired before the restart"
        );
        let _scheduler = spawn_scheduler().await;
        pass_hours(30 * 24).await;

        let fired = fired.lock().unwrap().clone();
        for (id, _, tz, _, local_day) in &cases {
            let times: Vec<_> = fired.iter().filter(|(person, _)| person == id).collect();
            assert_eq!(times.len(), 1, "person {id} invited {} times", times.len());
            let local = times[0].1.with_timezone(tz).date_naive().to_string();
            assert_eq!(&local, local_day, "person {id} fired at {}", times[0].1);
        }
        assert!(tenant_store.all_due().unwrap().is_empty());
    }
}
