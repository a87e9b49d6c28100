//! Reads both sides for a full sync: every Personio employee, every Learn Amp user (by
//! machine status) and team, turned into the planner's view.

use std::collections::HashMap;

use crate::domain::Employee;
use crate::domain::fields::{self, UserFields};
use crate::learnamp::{LearnAmpClient, Team, User, UserFilter, UserStatus};
use crate::personio::{OrgUnit, PersonioClient};

use super::SyncError;
use super::plan::{LaStatus, LaTeam, LaUser};

/// Both sides, as read at the start of a full sync.
pub struct Snapshot {
    /// Every Personio employee.
    pub employees: Vec<Employee>,
    /// Every Learn Amp user, deactivated included.
    pub users: Vec<LaUser>,
    /// Every Learn Amp team.
    pub teams: Vec<LaTeam>,
    /// Personio departments and their ancestors, by id (only with `team_hierarchy`).
    pub org_units: HashMap<String, OrgUnit>,
}

/// The statuses listed one by one, so each user's machine status is known without
/// reading display labels (and whatever the default listing hides).
const STATUSES: [(UserStatus, LaStatus); 5] = [
    (UserStatus::NotInvited, LaStatus::NotInvited),
    (UserStatus::InviteScheduled, LaStatus::InviteScheduled),
    (UserStatus::InvitePending, LaStatus::InvitePending),
    (UserStatus::Confirmed, LaStatus::Confirmed),
    (UserStatus::Deactivated, LaStatus::Deactivated),
];

/// Reads both sides concurrently (and, with `hierarchy`, the department tree).
pub async fn gather(
    personio: &PersonioClient,
    learnamp: &LearnAmpClient,
    hierarchy: bool,
) -> Result<Snapshot, SyncError> {
    let employees = async { personio.list_employees().await.map_err(SyncError::Personio) };
    let teams = async { learnamp.list_teams().await.map_err(SyncError::LearnAmp) };
    let users = async {
        let listings = STATUSES.iter().map(|(filter_status, status)| async move {
            let filter = UserFilter {
                statuses: vec![*filter_status],
                ..UserFilter::default()
            };
            learnamp
                .list_users(&filter)
                .await
                .map(|users| (users, *status))
        });
        futures::future::try_join_all(listings)
            .await
            .map_err(SyncError::LearnAmp)
    };
    let (employees, teams, listings) = futures::try_join!(employees, teams, users)?;
    let team_external: HashMap<u64, String> = teams
        .iter()
        .filter_map(|team| {
            team.integration_external_id
                .clone()
                .map(|external| (team.id, external))
        })
        .collect();
    let mut users: Vec<LaUser> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (listing, status) in listings {
        for user in listing {
            if seen.insert(user.id) {
                users.push(la_user(&user, status, &team_external));
            }
        }
    }
    let org_units = if hierarchy {
        let departments = employees.iter().filter_map(|employee| {
            employee
                .department
                .as_ref()
                .map(|department| department.id.clone())
        });
        department_tree(personio, departments).await?
    } else {
        HashMap::new()
    };
    Ok(Snapshot {
        employees,
        users,
        teams: teams.iter().map(la_team).collect(),
        org_units,
    })
}

/// The given departments and all their ancestors, from Personio's v2 org units.
pub async fn department_tree(
    personio: &PersonioClient,
    departments: impl Iterator<Item = String>,
) -> Result<HashMap<String, OrgUnit>, SyncError> {
    let mut units: HashMap<String, OrgUnit> = HashMap::new();
    let mut pending: Vec<String> = departments.collect();
    pending.sort();
    pending.dedup();
    while let Some(id) = pending.pop() {
        if units.contains_key(&id) {
            continue;
        }
        let unit = personio
            .get_org_unit(&id, "department")
            .await
            .map_err(SyncError::Personio)?;
        let Some(unit) = unit else { continue };
        if let Some(parent) = &unit.parent_id
            && !units.contains_key(parent)
        {
            pending.push(parent.clone());
        }
        units.insert(id, unit);
    }
    Ok(units)
}

/// The planner's view of a Learn Amp user.
pub fn la_user(user: &User, status: LaStatus, team_external: &HashMap<u64, String>) -> LaUser {
    let mut current = UserFields::new();
    let mut put = |key: &str, value: Option<&String>| {
        current.insert(key.to_string(), value.cloned().unwrap_or_default());
    };
    put(fields::FIRST_NAME, user.first_name.as_ref());
    put(fields::LAST_NAME, user.last_name.as_ref());
    put(fields::EMAIL, Some(&user.email));
    put(fields::JOB_TITLE, user.job_title.as_ref());
    put(fields::LOCATION, user.location.as_ref());
    put(fields::HIRE_DATE, user.hire_date.as_ref());
    put(fields::LEAVE_DATE, user.leave_date.as_ref());
    put(fields::EXTERNAL_ID, user.integration_external_id.as_ref());
    put(fields::MANAGER_EMAIL, user.manager_email.as_ref());
    let primary_team = user
        .primary_team
        .as_ref()
        .and_then(|team| team_external.get(&team.id));
    put(fields::PRIMARY_TEAM, primary_team);
    for (name, value) in &user.custom_fields {
        current.insert(fields::custom_field_key(name), value.clone());
    }
    LaUser {
        id: user.id,
        email: user.email.clone(),
        external_id: user
            .integration_external_id
            .clone()
            .filter(|external| !external.is_empty()),
        status,
        fields: current,
    }
}

fn la_team(team: &Team) -> LaTeam {
    LaTeam {
        id: team.id,
        name: team.name.clone(),
        external_id: team.integration_external_id.clone(),
        parent_id: team.parent_team_id,
    }
}
