//! JSON renderings of users and teams (camelCase), per reference §4.1 and §6.2.

use serde_json::{Value, json};

use super::model::{Inner, TeamRec, UserRec};

/// Renders users and teams against one state snapshot.
pub(super) struct View<'a> {
    /// The state.
    pub inner: &'a Inner,
    /// The simulator's base URL (profile and avatar URLs point here).
    pub base: &'a str,
}

impl View<'_> {
    /// `{status, time}`.
    fn status(&self, user: &UserRec) -> Value {
        json!({
            "status": user.status.label(),
            "time": user.status.time_label(user.status_at),
        })
    }

    /// The basic form of `GET /v1/users`.
    pub(super) fn user_basic(&self, user: &UserRec) -> Value {
        json!({
            "id": user.id,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "jobTitle": user.job_title,
            "email": user.email,
            "timeZone": user.time_zone,
            "language": user.language,
            "role": user.role,
            "integrationExternalId": user.integration_external_id,
            "hireDate": user.hire_date,
            "profileUrl": format!("{}/en/users/{}", self.base, user.id),
            "status": self.status(user),
        })
    }

    /// The user summary used for managers and team members (basic form without hireDate).
    pub(super) fn user_summary(&self, user: &UserRec) -> Value {
        let mut value = self.user_basic(user);
        if let Value::Object(map) = &mut value {
            map.remove("hireDate");
        }
        value
    }

    /// A manager summary by id, or `null`.
    fn manager(&self, id: Option<u64>) -> Value {
        id.and_then(|id| self.inner.user(id))
            .map_or(Value::Null, |u| self.user_summary(u))
    }

    /// The full form (show, create, update, expanded list).
    pub(super) fn user_full(&self, user: &UserRec) -> Value {
        let mut value = self.user_basic(user);
        let primary = self
            .inner
            .primary_team_of(user.id)
            .and_then(|t| self.inner.team(t))
            .map_or(Value::Null, |t| self.team_simple(t));
        let secondary: Vec<Value> = self
            .inner
            .secondary_teams_of(user.id)
            .iter()
            .filter_map(|t| self.inner.team(*t))
            .map(|t| self.team_simple(t))
            .collect();
        let custom: Vec<Value> = user
            .custom_fields
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let avatar = user.avatar_sha256.as_ref().map(|sha| {
            format!(
                "{}/avatars/{}/{}.img",
                self.base,
                user.id,
                &sha[..sha.len().min(16)]
            )
        });
        if let Value::Object(map) = &mut value {
            map.insert("occupationRole".into(), json!(user.occupation_role));
            map.insert("avatar".into(), json!(avatar));
            map.insert("manager".into(), self.manager(user.manager_id));
            map.insert("location".into(), json!(user.location));
            map.insert("department".into(), json!(user.department));
            map.insert("primaryTeam".into(), primary);
            map.insert("secondaryTeams".into(), Value::Array(secondary));
            map.insert("customFields".into(), Value::Array(custom));
            map.insert("leaveDate".into(), json!(user.leave_date));
        }
        value
    }

    /// The list/simple team form (§6.2).
    pub(super) fn team_simple(&self, team: &TeamRec) -> Value {
        let secondary: Vec<Value> = team
            .secondary_manager_ids
            .iter()
            .filter_map(|id| self.inner.user(*id))
            .map(|u| self.user_summary(u))
            .collect();
        json!({
            "id": team.id,
            "name": team.name,
            "integrationExternalId": team.integration_external_id,
            "teamUsersCount": self.inner.team_user_count(team.id),
            "apiTeamPath": format!("/v1/teams/{}.json", team.id),
            "apiTeamUsersPath": format!("/v1/teams/{}/users.json", team.id),
            "parentTeamId": team.parent_team_id,
            "manager": self.manager(team.manager_id),
            "secondaryManagers": secondary,
        })
    }

    /// The full team form: adds `users[]`, `subTeams[]`, `parentTeam`, `tags[]`.
    pub(super) fn team_full(&self, team: &TeamRec) -> Value {
        let users: Vec<Value> = self
            .inner
            .team_user_ids(team.id)
            .iter()
            .filter_map(|id| self.inner.user(*id))
            .map(|u| {
                let mut v = self.user_summary(u);
                if let Value::Object(map) = &mut v {
                    map.insert(
                        "removeFromTeamUrl".into(),
                        json!(format!("/v1/teams/{}/users/{}.json", team.id, u.id)),
                    );
                }
                v
            })
            .collect();
        self.team_with_users(team, users)
    }

    /// The full team form with the given `users` array.
    pub(super) fn team_with_users(&self, team: &TeamRec, users: Vec<Value>) -> Value {
        let mut value = self.team_simple(team);
        let sub_teams: Vec<Value> = self
            .inner
            .sub_team_ids(team.id)
            .filter_map(|id| self.inner.team(id))
            .map(|t| self.team_simple(t))
            .collect();
        let parent = team
            .parent_team_id
            .and_then(|p| self.inner.team(p))
            .map_or(Value::Null, |p| self.team_simple(p));
        if let Value::Object(map) = &mut value {
            map.insert("users".into(), Value::Array(users));
            map.insert("subTeams".into(), Value::Array(sub_teams));
            map.insert("parentTeam".into(), parent);
            map.insert("tags".into(), json!(team.tags));
        }
        value
    }
}
