//! Team changes: the Learn Amp teams the synced employees' departments (and teams, and
//! with `team_hierarchy` their ancestors) need, compared with the teams that exist.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{LaTeam, PlanInput};
use crate::domain::Employee;
use crate::domain::tenant::TeamsMode;
use crate::store::TeamRecord;

/// A team to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamCreate {
    /// Personio unit id (the team's `integrationExternalId`).
    pub external_id: String,
    /// Name.
    pub name: String,
    /// The parent unit's id, with `team_hierarchy` (created first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_external_id: Option<String>,
}

/// A managed team to delete because its unit has no synced member any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamRemove {
    /// Learn Amp id.
    pub learnamp_id: u64,
    /// Personio unit id.
    pub external_id: String,
    /// Name.
    pub name: String,
}

/// A team to move under another parent (`team_hierarchy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamMove {
    /// Learn Amp id.
    pub learnamp_id: u64,
    /// Personio unit id.
    pub external_id: String,
    /// The new parent unit's id.
    pub parent_external_id: String,
}

/// A team to rename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamRename {
    /// Learn Amp id.
    pub learnamp_id: u64,
    /// Personio unit id.
    pub external_id: String,
    /// Old name.
    pub from: String,
    /// New name.
    pub to: String,
}

/// Team changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TeamPlan {
    /// Teams to create.
    pub creates: Vec<TeamCreate>,
    /// Teams to rename.
    pub renames: Vec<TeamRename>,
    /// Teams to move under their department's parent.
    pub moves: Vec<TeamMove>,
    /// Teams the service created that no longer have members (`remove_empty_teams`).
    pub removes: Vec<TeamRemove>,
    /// Existing Learn Amp teams to take over (found by external id), not shown in the
    /// dry run because they change nothing in Learn Amp.
    #[serde(skip)]
    #[schema(ignore)]
    pub adopt: Vec<(String, TeamRecord)>,
}

impl TeamPlan {
    /// Whether the plan changes no team (adoptions are store-only but still count).
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.renames.is_empty()
            && self.moves.is_empty()
            && self.removes.is_empty()
            && self.adopt.is_empty()
    }
}

pub(super) fn plan_teams(synced: &[&Employee], input: &PlanInput<'_>) -> TeamPlan {
    let mut team_plan = TeamPlan::default();
    let settings = input.settings;
    if settings.teams == TeamsMode::None {
        return team_plan;
    }
    let hierarchy = settings.team_hierarchy;
    // unit id → (name, parent unit id, depth)
    let mut units: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for employee in synced.iter().filter(|employee| !employee.is_inactive()) {
        if let Some(department) = &employee.department {
            units.insert(department.id.clone(), (department.name.clone(), None));
        }
        if settings.teams == TeamsMode::DepartmentAndTeam
            && let Some(team) = &employee.team
        {
            units.insert(team.id.clone(), (team.name.clone(), None));
        }
    }
    if hierarchy {
        let departments: Vec<String> = units.keys().cloned().collect();
        for department in departments {
            let mut current = department;
            let mut seen = HashSet::new();
            while let Some(unit) = input.org_units.get(&current) {
                if !seen.insert(current.clone()) {
                    break;
                }
                let entry = units
                    .entry(current.clone())
                    .or_insert_with(|| (unit.name.clone(), None));
                entry.1 = unit.parent_id.clone();
                match &unit.parent_id {
                    Some(parent) => current = parent.clone(),
                    None => break,
                }
            }
        }
    }
    let depth = |unit_id: &str| -> usize {
        let mut depth = 0;
        let mut current = unit_id.to_string();
        while let Some((_, Some(parent))) = units.get(&current) {
            depth += 1;
            if depth > units.len() {
                break;
            }
            current = parent.clone();
        }
        depth
    };
    let by_id: HashMap<u64, &LaTeam> = input.teams.iter().map(|team| (team.id, team)).collect();
    let by_external: HashMap<&str, &LaTeam> = input
        .teams
        .iter()
        .filter_map(|team| team.external_id.as_deref().map(|ext| (ext, team)))
        .collect();
    let existing_team = |unit_id: &str| {
        input
            .team_records
            .get(unit_id)
            .and_then(|record| by_id.get(&record.learnamp_id).copied())
            .or_else(|| by_external.get(unit_id).copied())
    };
    let mut ordered: Vec<(&String, &(String, Option<String>))> = units.iter().collect();
    ordered.sort_by_key(|(unit_id, _)| (depth(unit_id), unit_id.len(), (*unit_id).clone()));
    for (unit_id, (name, parent)) in ordered {
        match existing_team(unit_id) {
            None => team_plan.creates.push(TeamCreate {
                external_id: unit_id.clone(),
                name: name.clone(),
                parent_external_id: parent.clone().filter(|_| hierarchy),
            }),
            Some(team) => {
                if &team.name != name {
                    team_plan.renames.push(TeamRename {
                        learnamp_id: team.id,
                        external_id: unit_id.clone(),
                        from: team.name.clone(),
                        to: name.clone(),
                    });
                }
                if hierarchy && let Some(parent) = parent {
                    let parent_now = existing_team(parent).map(|parent_team| parent_team.id);
                    if parent_now.is_none() || parent_now != team.parent_id {
                        team_plan.moves.push(TeamMove {
                            learnamp_id: team.id,
                            external_id: unit_id.clone(),
                            parent_external_id: parent.clone(),
                        });
                    }
                }
                let record = TeamRecord {
                    learnamp_id: team.id,
                    name: name.clone(),
                };
                if input.team_records.get(unit_id) != Some(&record) {
                    team_plan.adopt.push((unit_id.clone(), record));
                }
            }
        }
    }
    if settings.remove_empty_teams && input.complete {
        for (unit_id, record) in input.team_records {
            if !units.contains_key(unit_id) && by_id.contains_key(&record.learnamp_id) {
                team_plan.removes.push(TeamRemove {
                    learnamp_id: record.learnamp_id,
                    external_id: unit_id.clone(),
                    name: record.name.clone(),
                });
            }
        }
        team_plan
            .removes
            .sort_by(|a, b| a.external_id.cmp(&b.external_id));
    }
    team_plan
}
