//! The planner: from what Personio says, what Learn Amp holds and what the store
//! remembers, decide every write a full sync must make. Pure: no I/O. A plan is data:
//! one [`Step`] per person, each a list of [`Action`]s that `sync::apply` carries out;
//! the dry-run answer ([`view::PlanView`]) is derived from the same steps, so a dry run
//! shows exactly what the real sync would do.
//!
//! - `employees`: one person's step (link, adopt, create; fields, invitation, leaving).
//! - `teams`: the teams the synced departments need.
//! - `view`: the dry-run answer.

mod employees;
mod teams;
pub mod view;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Employee;
use crate::domain::fields::UserFields;
use crate::domain::mapping::{MappingContext, desired_fields, in_scope};
use crate::domain::tenant::{OutOfScope, Settings};
use crate::personio::OrgUnit;
use crate::store::{EmployeeRecord, TeamRecord};

use employees::{Timing, UserIndex, plan_employee, plan_removal, supervisor_levels};
pub use teams::{TeamCreate, TeamMove, TeamPlan, TeamRemove, TeamRename};
pub use view::{
    Change, CreateEntry, InvitationEntry, PlanView, ScheduledEntry, StatusEntry, UpdateEntry,
};

/// A Learn Amp user's machine status (from the status filters, never display labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LaStatus {
    /// Created without an invitation.
    NotInvited,
    /// Scheduled by Learn Amp itself.
    InviteScheduled,
    /// Invitation sent, not accepted yet.
    InvitePending,
    /// Accepted.
    Confirmed,
    /// Cannot log in.
    Deactivated,
}

/// A Learn Amp user as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaUser {
    /// Learn Amp id.
    pub id: u64,
    /// Email as stored in Learn Amp.
    pub email: String,
    /// `integrationExternalId`, if set.
    pub external_id: Option<String>,
    /// Machine status.
    pub status: LaStatus,
    /// Current values of the fields the sync writes, as far as Learn Amp shows them.
    pub fields: UserFields,
}

/// A Learn Amp team as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaTeam {
    /// Learn Amp id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `integrationExternalId`, if set.
    pub external_id: Option<String>,
    /// Parent team id, if any.
    pub parent_id: Option<u64>,
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    /// Every Personio employee, as just read.
    pub employees: &'a [Employee],
    /// Every Learn Amp user, deactivated included.
    pub users: &'a [LaUser],
    /// Every Learn Amp team.
    pub teams: &'a [LaTeam],
    /// What the store remembers, by Personio id.
    pub records: &'a HashMap<String, EmployeeRecord>,
    /// Teams the store manages, by Personio unit id.
    pub team_records: &'a HashMap<String, TeamRecord>,
    /// The tenant's settings.
    pub settings: &'a Settings,
    /// Active synced employees known from earlier syncs, by Personio id: possible
    /// managers when only some employees are planned (live updates).
    pub known_employees: &'a HashMap<String, Employee>,
    /// The time the plan is judged at.
    pub now: DateTime<Utc>,
    /// Departments and their ancestors (only read with `team_hierarchy`).
    pub org_units: &'a HashMap<String, OrgUnit>,
    /// `employees` is every Personio employee (a full sync), so a unit missing from
    /// it really has no member; live updates plan one person and never remove teams.
    pub complete: bool,
    /// The assumed invitation route is missing (see `sync::support`): an invitation can
    /// only go out with the documented create, so a person whose invitation is due
    /// later is created on that day, and an existing user due for one is not invited.
    pub create_invites_only: bool,
}

/// One thing to do for a person. [`Step::actions`] lists them in the order apply
/// carries them out: reactivate, create or update, avatar, record an invitation,
/// invite, deactivate, schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reactivate the deactivated user first (the person is active again).
    Reactivate,
    /// Create the user with these fields (all desired ones); with [`Action::Invite`]
    /// in the same step, the create carries the documented invite.
    Create {
        /// Fields sent.
        fields: UserFields,
    },
    /// Update the linked (or adopted) user.
    Update {
        /// Field → before/after; the `to` values are sent.
        changes: BTreeMap<String, Change>,
    },
    /// Compare the Personio picture with the last uploaded one and upload on change.
    Avatar,
    /// Learn Amp shows an invitation the record lacks (one sent before a crash):
    /// record it, send nothing.
    RecordInvitation,
    /// Send the invitation.
    Invite,
    /// Deactivate the user last.
    Deactivate {
        /// Why (shown in the dry run).
        reason: String,
    },
    /// Store changed invitation and deactivation days (the scheduler acts on them).
    Schedule(Schedule),
}

impl Action {
    /// Position in the order apply follows.
    fn rank(&self) -> u8 {
        match self {
            Action::Reactivate => 0,
            Action::Create { .. } | Action::Update { .. } => 1,
            Action::Avatar => 2,
            Action::RecordInvitation => 3,
            Action::Invite => 4,
            Action::Deactivate { .. } => 5,
            Action::Schedule(_) => 6,
        }
    }
}

/// A person's days for later work, as planned now (`None`: nothing due later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// When the invitation is due, if later than now.
    pub invite: Option<DateTime<Utc>>,
    /// When the termination date deactivates the person, if later than now.
    pub deactivate: Option<DateTime<Utc>>,
    /// The person has no user and is created on the day of their invitation (at
    /// `invite`), with the documented invite: the invitation route is missing.
    pub create_on_invitation: bool,
}

/// What to do for one person: a Learn Amp user (or none yet) and the actions on it;
/// apply stores the record after each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Personio id.
    pub personio_id: String,
    /// The Personio record (`None`: the person is gone from Personio).
    pub employee: Option<Employee>,
    /// The linked Learn Amp user; `None` until [`Action::Create`] makes it (or, with
    /// no create, until the invitation day).
    pub learnamp_id: Option<u64>,
    /// The full desired fields, stored as applied once written.
    pub desired: UserFields,
    /// Depth in the supervisor tree: managers are written before their reports.
    pub level: u32,
    /// The record as it stands (default for a new person).
    pub record: EmployeeRecord,
    /// What to do, in apply's order.
    pub actions: Vec<Action>,
}

impl Step {
    /// Adds the schedule when it differs from the stored one and puts the actions in
    /// apply's order.
    fn finish(mut self, schedule: Schedule) -> Self {
        if self.record.invite_due != schedule.invite
            || self.record.deactivate_due != schedule.deactivate
        {
            self.actions.push(Action::Schedule(schedule));
        }
        self.actions.sort_by_key(Action::rank);
        self
    }

    /// Whether the step has an action of the same kind as `action` (its fields aside).
    pub fn has(&self, action: &Action) -> bool {
        self.actions
            .iter()
            .any(|planned| std::mem::discriminant(planned) == std::mem::discriminant(action))
    }

    /// The fields the create or update sends (empty when neither).
    pub fn send(&self) -> UserFields {
        self.actions
            .iter()
            .find_map(|action| match action {
                Action::Create { fields } => Some(fields.clone()),
                Action::Update { changes } => Some(
                    changes
                        .iter()
                        .map(|(key, change)| (key.clone(), change.to.clone()))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The changed schedule, if any.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.actions.iter().find_map(|action| match action {
            Action::Schedule(schedule) => Some(schedule),
            _ => None,
        })
    }

    /// The person has no user and none is created now: they wait for their
    /// invitation day.
    pub fn waits_for_creation(&self) -> bool {
        self.learnamp_id.is_none()
            && !self
                .actions
                .iter()
                .any(|action| matches!(action, Action::Create { .. }))
    }

    /// Whether the step deactivates the user.
    pub fn deactivates(&self) -> bool {
        self.actions
            .iter()
            .any(|action| matches!(action, Action::Deactivate { .. }))
    }

    /// Whether this step calls Learn Amp (or Personio, for the avatar) at all.
    pub fn writes(&self) -> bool {
        self.actions
            .iter()
            .any(|action| !matches!(action, Action::RecordInvitation | Action::Schedule(_)))
    }
}

/// A user already linked to another Personio person, found by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Clash {
    /// The Personio person who would have adopted the user.
    pub personio_id: String,
    /// The Learn Amp user.
    pub learnamp_id: u64,
    /// The person the user is linked to.
    pub linked_to: String,
}

/// The whole plan: the steps apply executes and what the dry run shows beside them.
/// Serialises to the dry-run answer of the contract ([`PlanView`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// One step per person with something to do or record, in planning order
    /// (Personio's order, then people no longer synced).
    pub steps: Vec<Step>,
    /// Team changes.
    pub teams: TeamPlan,
    /// Users not adopted because they are linked to someone else.
    pub clashes: Vec<Clash>,
    /// Supervisors who are not synced users (their reports get no manager).
    pub unsynced_supervisors: Vec<String>,
    /// Employees that need nothing.
    pub unchanged: u64,
    /// Active linked users before this sync (the guard's denominator).
    pub active_synced: u64,
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(serializer)
    }
}

impl Plan {
    /// The dry-run answer.
    pub fn view(&self) -> PlanView<'_> {
        PlanView::of(self)
    }

    /// Whether applying the plan would write anything to Learn Amp.
    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(|step| !step.writes())
            && self.teams.creates.is_empty()
            && self.teams.renames.is_empty()
            && self.teams.moves.is_empty()
            && self.teams.removes.is_empty()
    }

    /// Users this plan deactivates.
    pub fn deactivation_count(&self) -> usize {
        self.steps.iter().filter(|step| step.deactivates()).count()
    }

    /// Share of active synced users this plan deactivates.
    pub fn deactivation_ratio(&self) -> f64 {
        if self.active_synced == 0 {
            return 0.0;
        }
        self.deactivation_count() as f64 / self.active_synced as f64
    }
}

/// Plans a full sync.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let settings = input.settings;
    let scope = settings.scope.as_ref();
    let users = UserIndex::new(input.users, input.records);
    let synced: Vec<&Employee> = input
        .employees
        .iter()
        .filter(|employee| in_scope(employee, scope))
        .collect();
    let mut manager_candidates: HashMap<String, &Employee> = input
        .known_employees
        .iter()
        .filter(|(_, employee)| !employee.is_inactive() && in_scope(employee, scope))
        .map(|(id, employee)| (id.clone(), employee))
        .collect();
    let timing = Timing {
        now: input.now,
        tz: settings.tz(),
        create_invites_only: input.create_invites_only,
    };
    for employee in synced.iter().filter(|employee| !employee.is_inactive()) {
        // People created only on their invitation day are nobody's manager before then.
        if timing.create_invites_only
            && employees::waits_for_invitation_day(employee, settings, &timing)
            && users
                .linked(employee, input.records.get(&employee.id))
                .is_none()
            && matches!(users.adoption_candidate(employee), Ok(None))
        {
            continue;
        }
        manager_candidates.insert(employee.id.clone(), employee);
    }
    let context = MappingContext {
        manager_candidates: &manager_candidates,
    };
    let levels = supervisor_levels(&manager_candidates);

    let mut plan = Plan {
        active_synced: input
            .records
            .values()
            .filter(|record| record.is_linked() && !record.deactivated)
            .count() as u64,
        ..Plan::default()
    };
    plan.teams = teams::plan_teams(&synced, input);

    let mut seen: HashSet<&str> = HashSet::new();
    for employee in &synced {
        seen.insert(employee.id.as_str());
        let record = input.records.get(&employee.id);
        let linked = match users.linked(employee, record) {
            Some(user) => Some(user),
            None => match users.adoption_candidate(employee) {
                Ok(candidate) => candidate,
                Err(clash) => {
                    plan.clashes.push(clash);
                    continue;
                }
            },
        };
        if settings.sync_managers
            && let Some(supervisor) = &employee.supervisor_id
            && !employee.is_inactive()
            && !manager_candidates.contains_key(supervisor)
        {
            plan.unsynced_supervisors.push(supervisor.clone());
        }
        let desired = desired_fields(employee, settings, &context);
        let level = levels.get(employee.id.as_str()).copied().unwrap_or(0);
        match plan_employee(employee, record, linked, desired, level, settings, &timing) {
            Some(step) => push_step(&mut plan, step),
            None => plan.unchanged += 1,
        }
    }

    // Everyone Personio lists, in scope or not, by id: whether a person who is no
    // longer synced left Personio or only the scope is one lookup.
    let in_personio: HashSet<&str> = input
        .employees
        .iter()
        .map(|employee| employee.id.as_str())
        .collect();
    for (personio_id, record) in input.records {
        if seen.contains(personio_id.as_str()) || record.deactivated || !record.is_linked() {
            continue;
        }
        let reason = if in_personio.contains(personio_id.as_str()) {
            if settings.out_of_scope == OutOfScope::Keep {
                continue;
            }
            "out of scope"
        } else {
            "deleted in Personio"
        };
        let user = users.by_id(record.learnamp_id);
        push_step(&mut plan, plan_removal(personio_id, record, user, reason));
    }
    plan.unsynced_supervisors.sort();
    plan.unsynced_supervisors.dedup();
    plan
}

/// Adds `step` to the plan, or counts the person unchanged when it writes nothing (and
/// drops it when it has nothing to store either).
fn push_step(plan: &mut Plan, step: Step) {
    let snapshot_changed =
        step.employee.is_some() && step.record.employee.as_ref() != step.employee.as_ref();
    if !step.writes() {
        plan.unchanged += 1;
        if !snapshot_changed && !step.has(&Action::RecordInvitation) && step.schedule().is_none() {
            return;
        }
    }
    plan.steps.push(step);
}

/// Apply's order: managers before their reports, then by Personio id (numerically).
pub fn apply_order(step: &Step) -> (u32, usize, &str) {
    (
        step.level,
        step.personio_id.len(),
        step.personio_id.as_str(),
    )
}

#[cfg(test)]
mod tests;
