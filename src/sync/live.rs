//! Live updates: one person at a time, as webhooks name them. The current Personio
//! record is fetched, planned with the same planner as a full sync (so both paths agree
//! on every rule) and applied with the same apply step.

pub mod drain;

use std::collections::HashMap;

use crate::domain::Employee;
use crate::domain::fields::UserFields;
use crate::learnamp::{LearnAmpClient, UserFilter, UserStatus};

use super::apply::{self, Applied, ApplyContext};
use super::gather::la_user;
use super::plan::{self, LaStatus, LaTeam, LaUser, PlanInput};
use super::{SyncContext, SyncError};

/// Where the person's current record comes from.
pub enum Source {
    /// Fetch it from Personio (the person was named by a webhook).
    Fetch,
    /// Re-plan the stored snapshot (a report of a person who changed: their manager
    /// field may change though their own record did not).
    Snapshot(Box<Employee>),
}

/// Brings one person's Learn Amp user in line with Personio's current record.
/// `known` holds the active synced employees (possible managers).
pub async fn apply_person(
    context: &SyncContext<'_>,
    personio_id: &str,
    source: Source,
    known: &HashMap<String, Employee>,
) -> Result<Applied, SyncError> {
    let employee = match source {
        Source::Fetch => context
            .personio
            .get_employee(personio_id)
            .await
            .map_err(SyncError::Personio)?,
        Source::Snapshot(employee) => Some(*employee),
    };
    let record = context.store.employee(personio_id)?;
    let mut users: Vec<LaUser> = Vec::new();
    // A record that links no user yet (an invitation intent written before a create
    // that may or may not have happened, or a creation waiting for its invitation day)
    // is looked up in Learn Amp like a person without a record.
    match record.as_ref().filter(|record| record.is_linked()) {
        // An invitation was started but its outcome never recorded (a crash between
        // the call and the write): Learn Amp's own status decides, never a resend.
        Some(record) if record.invite_started && !record.invited && !record.deactivated => {
            let by_external = UserFilter {
                external_id: Some(personio_id.to_string()),
                ..UserFilter::default()
            };
            let mut user = lookup(context.learnamp, by_external)
                .await?
                .unwrap_or(LaUser {
                    id: record.learnamp_id,
                    email: String::new(),
                    external_id: Some(personio_id.to_string()),
                    status: LaStatus::NotInvited,
                    fields: UserFields::new(),
                });
            user.fields = record.applied.clone();
            users.push(user);
        }
        Some(record) => users.push(LaUser {
            id: record.learnamp_id,
            email: record
                .applied
                .get(crate::domain::fields::EMAIL)
                .cloned()
                .unwrap_or_default(),
            external_id: Some(personio_id.to_string()),
            status: if record.deactivated {
                LaStatus::Deactivated
            } else if record.invited {
                LaStatus::InvitePending
            } else {
                LaStatus::NotInvited
            },
            fields: record.applied.clone(),
        }),
        None => {
            let Some(employee) = &employee else {
                return Ok(Applied::default());
            };
            let by_external = UserFilter {
                external_id: Some(personio_id.to_string()),
                ..UserFilter::default()
            };
            if let Some(user) = lookup(context.learnamp, by_external).await? {
                users.push(user);
            } else if let Some(email) = employee.email.clone().filter(|email| !email.is_empty()) {
                let by_email = UserFilter {
                    email: Some(email),
                    ..UserFilter::default()
                };
                if let Some(user) = lookup(context.learnamp, by_email).await? {
                    users.push(user);
                }
            }
        }
    }
    let records: HashMap<String, _> = record
        .into_iter()
        .map(|record| (personio_id.to_string(), record))
        .collect();
    let employees: Vec<Employee> = employee.into_iter().collect();
    // Only the teams this person's plan can touch are read: their department and team,
    // and (below) the ancestors of a department new to the service.
    let mut team_records = HashMap::new();
    let own_units = employees.iter().flat_map(|employee| {
        [&employee.department, &employee.team]
            .into_iter()
            .flatten()
            .map(|unit| unit.id.clone())
    });
    read_team_records(context, own_units, &mut team_records)?;
    // With a hierarchy, a department new to the service needs its ancestors; known
    // departments keep the parents the last full sync gave them.
    let new_departments: Vec<String> = employees
        .iter()
        .filter_map(|employee| employee.department.as_ref())
        .filter(|department| !team_records.contains_key(&department.id))
        .map(|department| department.id.clone())
        .collect();
    let org_units = if context.settings.team_hierarchy && !new_departments.is_empty() {
        super::gather::department_tree(context.personio, new_departments.into_iter()).await?
    } else {
        HashMap::new()
    };
    let tree_units = org_units
        .iter()
        .flat_map(|(unit_id, unit)| std::iter::once(unit_id).chain(unit.parent_id.as_ref()))
        .cloned();
    read_team_records(context, tree_units, &mut team_records)?;
    let teams: Vec<LaTeam> = team_records
        .iter()
        .map(|(unit_id, team)| LaTeam {
            id: team.learnamp_id,
            name: team.name.clone(),
            external_id: Some(unit_id.clone()),
            parent_id: None,
        })
        .collect();
    if records
        .get(personio_id)
        .is_none_or(|record| !record.is_linked())
    {
        // A new person may be created now or on their invitation day.
        super::probe_invitation_route(context).await?;
    }
    let plan = plan::plan(&PlanInput {
        employees: &employees,
        users: &users,
        teams: &teams,
        records: &records,
        team_records: &team_records,
        settings: context.settings,
        known_employees: known,
        now: context.now,
        org_units: &org_units,
        complete: false,
        create_invites_only: super::invitation_route_skipped(context)?,
    });
    if let Some(clash) = plan.clashes.first() {
        return Err(SyncError::Clash {
            personio_id: clash.personio_id.clone(),
            learnamp_id: clash.learnamp_id,
            linked_to: clash.linked_to.clone(),
        });
    }
    let apply_context = ApplyContext {
        tenant_id: context.tenant_id,
        personio: context.personio,
        learnamp: context.learnamp,
        store: context.store,
        concurrency: 1,
        team_mapper: context.team_mapper,
        now: context.now,
        source: context.source,
        progress: None,
    };
    // Unlike a full sync, every failure is returned: the webhook event stays in the
    // inbox until its effect is stored.
    let mut teams_only = plan.clone();
    teams_only.steps.clear();
    let mut applied = apply::apply(teams_only, &apply_context).await?;
    if applied.failed > 0 {
        return Err(SyncError::Actor(format!(
            "{} team changes failed; retrying",
            applied.failed
        )));
    }
    for step in plan.steps {
        let step_applied = apply::apply_step(step, &apply_context).await?;
        applied.created += step_applied.created;
        applied.updated += step_applied.updated;
        applied.deactivated += step_applied.deactivated;
        applied.reactivated += step_applied.reactivated;
        applied.invited += step_applied.invited;
    }
    Ok(applied)
}

/// Adds the stored team records of `unit_ids` (those not read yet) to `into`.
fn read_team_records(
    context: &SyncContext<'_>,
    unit_ids: impl Iterator<Item = String>,
    into: &mut HashMap<String, crate::store::TeamRecord>,
) -> Result<(), SyncError> {
    for unit_id in unit_ids {
        if !into.contains_key(&unit_id)
            && let Some(record) = context.store.team(&unit_id)?
        {
            into.insert(unit_id, record);
        }
    }
    Ok(())
}

/// Finds one user by `filter` and learns its machine status (deactivated, invited or
/// not) through the status filters, never through display labels.
async fn lookup(
    learnamp: &LearnAmpClient,
    filter: UserFilter,
) -> Result<Option<LaUser>, SyncError> {
    let groups: [(&[UserStatus], LaStatus); 3] = [
        (&[UserStatus::Deactivated], LaStatus::Deactivated),
        (
            &[UserStatus::InvitePending, UserStatus::Confirmed],
            LaStatus::InvitePending,
        ),
        (
            &[UserStatus::NotInvited, UserStatus::InviteScheduled],
            LaStatus::NotInvited,
        ),
    ];
    for (statuses, status) in groups {
        let query = UserFilter {
            statuses: statuses.to_vec(),
            ..filter.clone()
        };
        let found = learnamp
            .list_users(&query)
            .await
            .map_err(SyncError::LearnAmp)?;
        if let Some(user) = found.first() {
            return Ok(Some(la_user(user, status, &HashMap::new())));
        }
    }
    Ok(None)
}
