//! JSON renderings of users and teams (camelCase), per reference §4.1 and §6.2.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::error::ApiError;
use super::model::{TeamRec, UserRec};
use super::state::Inner;

/// `status` with the JSON `value`, or 404 `{"error": "Not found"}` when there is none.
pub(super) fn json_or_not_found(status: StatusCode, value: Option<Value>) -> Response {
    match value {
        Some(value) => (status, axum::Json(value)).into_response(),
        None => ApiError::not_found().into_response(),
    }
}

/// `value` (an object) with `fields` inserted in order.
fn with_fields<const N: usize>(mut value: Value, fields: [(&str, Value); N]) -> Value {
    if let Value::Object(map) = &mut value {
        for (key, field) in fields {
            map.insert(key.into(), field);
        }
    }
    value
}

/// Renders users and teams against one state snapshot.
pub(super) struct View<'a> {
    /// The state.
    pub inner: &'a Inner,
    /// The simulator's base URL (profile and avatar URLs point here).
    pub base: &'a str,
    /// No assumed contract: `leaveDate` is not shown.
    pub documented_only: bool,
}

impl<'a> View<'a> {
    /// A view of `inner` with the simulator's base URL.
    pub(super) fn new(shared: &'a Shared, inner: &'a Inner) -> Self {
        Self {
            inner,
            base: &shared.base_url,
            documented_only: shared.config.documented_only,
        }
    }

    /// The records `find` finds for `ids`, in that order (unknown ids skipped), each
    /// rendered by `render`.
    fn each<R: 'a>(
        &self,
        ids: impl IntoIterator<Item = u64>,
        find: impl Fn(&'a Inner, u64) -> Option<&'a R>,
        render: impl Fn(&Self, &R) -> Value,
    ) -> Vec<Value> {
        ids.into_iter()
            .filter_map(|id| find(self.inner, id))
            .map(|record| render(self, record))
            .collect()
    }

    /// The users among `ids`, in that order (unknown ids skipped), each rendered by `render`.
    pub(super) fn users(
        &self,
        ids: impl IntoIterator<Item = u64>,
        render: impl Fn(&Self, &UserRec) -> Value,
    ) -> Vec<Value> {
        self.each(ids, Inner::user, render)
    }

    /// The teams among `ids`, in that order (unknown ids skipped), each rendered by `render`.
    pub(super) fn teams(
        &self,
        ids: impl IntoIterator<Item = u64>,
        render: impl Fn(&Self, &TeamRec) -> Value,
    ) -> Vec<Value> {
        self.each(ids, Inner::team, render)
    }

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
        let primary = self
            .inner
            .primary_team_of(user.id)
            .and_then(|t| self.inner.team(t))
            .map_or(Value::Null, |t| self.team_simple(t));
        let secondary = self.teams(self.inner.secondary_teams_of(user.id), Self::team_simple);
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
        let full = with_fields(
            self.user_basic(user),
            [
                ("occupationRole", json!(user.occupation_role)),
                ("avatar", json!(avatar)),
                ("manager", self.manager(user.manager_id)),
                ("location", json!(user.location)),
                ("department", json!(user.department)),
                ("primaryTeam", primary),
                ("secondaryTeams", Value::Array(secondary)),
                ("customFields", Value::Array(custom)),
            ],
        );
        if self.documented_only {
            return full;
        }
        with_fields(full, [("leaveDate", json!(user.leave_date))])
    }

    /// The list/simple team form (§6.2).
    pub(super) fn team_simple(&self, team: &TeamRec) -> Value {
        let secondary = self.users(
            team.secondary_manager_ids.iter().copied(),
            Self::user_summary,
        );
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
        let users = self.users(self.inner.team_user_ids(team.id), |view, u| {
            with_fields(
                view.user_summary(u),
                [(
                    "removeFromTeamUrl",
                    json!(format!("/v1/teams/{}/users/{}.json", team.id, u.id)),
                )],
            )
        });
        self.team_with_users(team, users)
    }

    /// The full team form with the given `users` array.
    pub(super) fn team_with_users(&self, team: &TeamRec, users: Vec<Value>) -> Value {
        let sub_teams = self.teams(self.inner.sub_team_ids(team.id), Self::team_simple);
        let parent = team
            .parent_team_id
            .and_then(|p| self.inner.team(p))
            .map_or(Value::Null, |p| self.team_simple(p));
        with_fields(
            self.team_simple(team),
            [
                ("users", Value::Array(users)),
                ("subTeams", Value::Array(sub_teams)),
                ("parentTeam", parent),
                ("tags", json!(team.tags)),
            ],
        )
    }
}
