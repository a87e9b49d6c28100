//! Learn Amp wire model: the user and team objects as read (lenient camelCase JSON,
//! reference §4 and §6.2), list filters, and the form encoding of team writes (reference
//! §3; user writes are encoded in `users.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub(crate) use crate::api_client::FormPairs;

/// Machine values of a user's status, as used by `filters[status][]` (reference §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserStatus {
    /// `not_invited`.
    NotInvited,
    /// `invite_scheduled`.
    InviteScheduled,
    /// `invite_pending`.
    InvitePending,
    /// `confirmed`.
    Confirmed,
    /// `deactivated`.
    Deactivated,
}

impl UserStatus {
    /// The machine value sent in `filters[status][]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInvited => "not_invited",
            Self::InviteScheduled => "invite_scheduled",
            Self::InvitePending => "invite_pending",
            Self::Confirmed => "confirmed",
            Self::Deactivated => "deactivated",
        }
    }
}

/// Filters of `GET /v1/users`. The default filters nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// `filters[status][]`, any of these (empty = no status filter).
    pub statuses: Vec<UserStatus>,
    /// `filters[integration_external_id]`, exact match.
    pub external_id: Option<String>,
    /// `filters[email]`.
    pub email: Option<String>,
}

impl UserFilter {
    /// The filter as query pairs (without paging).
    pub(crate) fn query_pairs(&self) -> FormPairs {
        let mut pairs: FormPairs = self
            .statuses
            .iter()
            .map(|status| ("filters[status][]".to_string(), status.as_str().to_string()))
            .collect();
        if let Some(external_id) = &self.external_id {
            pairs.push((
                "filters[integration_external_id]".to_string(),
                external_id.clone(),
            ));
        }
        if let Some(email) = &self.email {
            pairs.push(("filters[email]".to_string(), email.clone()));
        }
        pairs
    }
}

/// A team as summarised inside a user (`primaryTeam`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSummary {
    /// Learn Amp team id.
    pub id: u64,
    /// Team name.
    pub name: String,
}

/// A Learn Amp user (full form where the server sends it; missing parts are `None`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawUser")]
pub struct User {
    /// Learn Amp user id.
    pub id: u64,
    /// Login email.
    pub email: String,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `jobTitle`.
    pub job_title: Option<String>,
    /// `integrationExternalId` (the Personio id once adopted).
    pub integration_external_id: Option<String>,
    /// `hireDate` (`YYYY-MM-DD`).
    pub hire_date: Option<String>,
    /// `leaveDate`, an assumed field (see the reference's final section).
    pub leave_date: Option<String>,
    /// `location` (free text).
    pub location: Option<String>,
    /// `primaryTeam`.
    pub primary_team: Option<TeamSummary>,
    /// `manager.email` (the override manager, when set).
    pub manager_email: Option<String>,
    /// `customFields` by name; non-string values are stringified, `null` becomes `""`.
    pub custom_fields: BTreeMap<String, String>,
    /// The display label `status.status` (e.g. "Confirmed"); never parse it for logic.
    pub status_label: Option<String>,
}

/// The user as it arrives; converted leniently into [`User`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUser {
    id: u64,
    #[serde(deserialize_with = "lenient_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    job_title: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    integration_external_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    hire_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    leave_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    location: Option<String>,
    #[serde(default)]
    primary_team: Option<Value>,
    #[serde(default)]
    manager: Option<Value>,
    #[serde(default)]
    custom_fields: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
}

impl From<RawUser> for User {
    fn from(raw: RawUser) -> Self {
        Self {
            id: raw.id,
            email: raw.email.unwrap_or_default(),
            first_name: raw.first_name,
            last_name: raw.last_name,
            job_title: raw.job_title,
            integration_external_id: raw.integration_external_id,
            hire_date: raw.hire_date,
            leave_date: raw.leave_date,
            location: raw.location,
            primary_team: raw.primary_team.as_ref().and_then(team_summary),
            manager_email: raw
                .manager
                .as_ref()
                .and_then(|manager| manager.get("email"))
                .and_then(scalar_text),
            custom_fields: raw.custom_fields.map(custom_fields).unwrap_or_default(),
            status_label: raw.status.as_ref().and_then(status_label),
        }
    }
}

/// A Learn Amp team.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawTeam")]
pub struct Team {
    /// Learn Amp team id.
    pub id: u64,
    /// Team name.
    pub name: String,
    /// `integrationExternalId` (the Personio department id).
    pub integration_external_id: Option<String>,
    /// `parentTeamId` (or `parentTeam.id` in the full form).
    pub parent_team_id: Option<u64>,
}

/// The team as it arrives; converted leniently into [`Team`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTeam {
    id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    integration_external_id: Option<String>,
    #[serde(default)]
    parent_team_id: Option<Value>,
    #[serde(default)]
    parent_team: Option<Value>,
}

impl From<RawTeam> for Team {
    fn from(raw: RawTeam) -> Self {
        let parent_team_id = raw.parent_team_id.as_ref().and_then(value_id).or_else(|| {
            raw.parent_team
                .as_ref()
                .and_then(|p| p.get("id"))
                .and_then(value_id)
        });
        Self {
            id: raw.id,
            name: raw.name.unwrap_or_default(),
            integration_external_id: raw.integration_external_id,
            parent_team_id,
        }
    }
}

/// Team fields to write. `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamFields {
    /// `name`.
    pub name: Option<String>,
    /// `integrationExternalId`; `Some("")` clears it.
    pub integration_external_id: Option<String>,
    /// `parentTeamId`; `Some(None)` clears the parent.
    pub parent_team_id: Option<Option<u64>>,
}

/// What `send_invitation` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationOutcome {
    /// The invitation email was sent (or re-sent).
    Sent,
    /// The user has already confirmed; nothing was sent.
    AlreadyConfirmed,
    /// The user is deactivated; reactivate first.
    Deactivated,
}

/// Encodes team fields as a form (reference §6.3, §6.4).
pub(crate) fn team_form(team: &TeamFields) -> FormPairs {
    let mut pairs = FormPairs::new();
    if let Some(name) = &team.name {
        pairs.push(("name".to_string(), name.clone()));
    }
    if let Some(external_id) = &team.integration_external_id {
        pairs.push(("integrationExternalId".to_string(), external_id.clone()));
    }
    if let Some(parent) = team.parent_team_id {
        let value = parent.map(|id| id.to_string()).unwrap_or_default();
        pairs.push(("parentTeamId".to_string(), value));
    }
    pairs
}

/// Accepts a string, a number or a boolean (stringified), or `null`.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(scalar_text))
}

/// The text of a scalar JSON value; `None` for null, objects and arrays.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// An id given as a number or a numeric string.
fn value_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A `primaryTeam` summary, when it has at least an id.
fn team_summary(value: &Value) -> Option<TeamSummary> {
    let id = value.get("id").and_then(value_id)?;
    let name = value.get("name").and_then(scalar_text).unwrap_or_default();
    Some(TeamSummary { id, name })
}

/// The display label of `status` (an object `{status, time}`, or a plain string).
fn status_label(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.get("status").and_then(scalar_text),
        other => scalar_text(other),
    }
}

/// `customFields` as name → text. Accepts `[{name, value}]` (the write shape) and a
/// plain `{name: value}` object, since the read shape is unconfirmed.
fn custom_fields(value: Value) -> BTreeMap<String, String> {
    match value {
        Value::Array(entries) => entries
            .iter()
            .filter_map(|entry| {
                let name = entry.get("name").and_then(scalar_text)?;
                Some((name, field_text(entry.get("value"))))
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| (name.clone(), field_text(Some(value))))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A custom field value as text: `null`/absent → `""`, scalars as text, others as JSON.
fn field_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(value) => scalar_text(value).unwrap_or_else(|| value.to_string()),
    }
}

/// One assumed contract, as recorded when an account lacks it (the contracts themselves
/// are used only in `assumed.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Assumed {
    /// A. `POST /v1/users/{id}/invitation`.
    Invitation,
    /// B. the `leaveDate` user field.
    LeaveDate,
    /// C. `PUT`/`DELETE /v1/users/{id}/avatar`.
    Avatar,
}

impl Assumed {
    /// Every assumed contract.
    pub const ALL: [Assumed; 3] = [Self::Invitation, Self::LeaveDate, Self::Avatar];

    /// The name shown in the tenant view (`learnamp_unsupported`) and stored.
    pub fn name(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::LeaveDate => "leave_date",
            Self::Avatar => "avatar",
        }
    }

    /// The route or field, for messages.
    pub fn contract(self) -> &'static str {
        match self {
            Self::Invitation => "invitation route POST /v1/users/{id}/invitation",
            Self::LeaveDate => "leaveDate user field",
            Self::Avatar => "avatar route PUT /v1/users/{id}/avatar",
        }
    }

    /// The contract named `name` (as [`Assumed::name`] gives it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|assumed| assumed.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(pairs: &FormPairs) -> String {
        serde_urlencoded::to_string(pairs).expect("encodable")
    }

    #[test]
    fn team_form_clears_parent() {
        let team = TeamFields {
            name: Some("Support".into()),
            integration_external_id: Some("281521".into()),
            parent_team_id: Some(None),
        };
        assert_eq!(
            encoded(&team_form(&team)),
            "name=Support&integrationExternalId=281521&parentTeamId="
        );
        let moved = TeamFields {
            parent_team_id: Some(Some(7)),
            ..TeamFields::default()
        };
        assert_eq!(encoded(&team_form(&moved)), "parentTeamId=7");
    }

    #[test]
    fn filter_query_pairs() {
        let filter = UserFilter {
            statuses: vec![UserStatus::Confirmed, UserStatus::Deactivated],
            external_id: Some("4711".into()),
            email: Some("a@b.c".into()),
        };
        assert_eq!(
            encoded(&filter.query_pairs()),
            "filters%5Bstatus%5D%5B%5D=confirmed&filters%5Bstatus%5D%5B%5D=deactivated\
             &filters%5Bintegration_external_id%5D=4711&filters%5Bemail%5D=a%40b.c"
        );
        assert!(UserFilter::default().query_pairs().is_empty());
    }

    #[test]
    fn parses_basic_user() {
        let json = r#"{"id": 1, "firstName": "Ada", "lastName": "Lovelace", "jobTitle": "Engineer", "email": "ada@example.com",
 "timeZone": "London", "language": "en", "role": "viewer", "integrationExternalId": "4711",
 "hireDate": "2021-04-01", "profileUrl": "https://acme.learnamp.com/en/users/1",
 "status": {"status": "Confirmed", "time": "On 29 Nov 16"}}"#;
        let user: User = serde_json::from_str(json).expect("parses");
        assert_eq!(user.id, 1);
        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.first_name.as_deref(), Some("Ada"));
        assert_eq!(user.job_title.as_deref(), Some("Engineer"));
        assert_eq!(user.integration_external_id.as_deref(), Some("4711"));
        assert_eq!(user.hire_date.as_deref(), Some("2021-04-01"));
        assert_eq!(user.status_label.as_deref(), Some("Confirmed"));
        assert_eq!(user.primary_team, None);
        assert_eq!(user.manager_email, None);
        assert!(user.custom_fields.is_empty());
    }

    #[test]
    fn parses_full_user() {
        let json = r#"{"id": 93, "firstName": "Ada", "lastName": "Lovelace", "jobTitle": null, "email": "ada@example.com",
 "integrationExternalId": 4711, "hireDate": null, "leaveDate": "2025-06-30", "location": "Berlin",
 "department": "Eng", "occupationRole": null, "avatar": "https://res.cloudinary.com/x.png",
 "manager": {"id": 17, "firstName": "Grace", "email": "grace@example.com", "status": {"status": "Confirmed", "time": "On 20 Feb 17"}},
 "primaryTeam": {"id": 15, "name": "Support", "teamUsersCount": 10, "apiTeamPath": "/v1/teams/15.json", "manager": {}},
 "secondaryTeams": [],
 "customFields": [{"name": "Employee ID", "value": 123456}, {"name": "Remote", "value": true}, {"name": "Shoe", "value": null}],
 "status": {"status": "Invite pending", "time": "Sent 25 Sep 19"}, "somethingNew": [1, 2]}"#;
        let user: User = serde_json::from_str(json).expect("parses");
        assert_eq!(user.job_title, None);
        assert_eq!(user.integration_external_id.as_deref(), Some("4711"));
        assert_eq!(user.leave_date.as_deref(), Some("2025-06-30"));
        assert_eq!(user.location.as_deref(), Some("Berlin"));
        assert_eq!(user.manager_email.as_deref(), Some("grace@example.com"));
        assert_eq!(
            user.primary_team,
            Some(TeamSummary {
                id: 15,
                name: "Support".into()
            })
        );
        assert_eq!(user.custom_fields["Employee ID"], "123456");
        assert_eq!(user.custom_fields["Remote"], "true");
        assert_eq!(user.custom_fields["Shoe"], "");
        assert_eq!(user.status_label.as_deref(), Some("Invite pending"));
    }

    #[test]
    fn nulls_and_empty_objects_are_tolerated() {
        let json = r#"{"id": 2, "email": "b@example.com", "firstName": null, "manager": {}, "primaryTeam": null,
 "customFields": null, "status": null}"#;
        let user: User = serde_json::from_str(json).expect("parses");
        assert_eq!(user.first_name, None);
        assert_eq!(user.manager_email, None);
        assert_eq!(user.primary_team, None);
        assert_eq!(user.status_label, None);
        let null_manager: User =
            serde_json::from_str(r#"{"id": 3, "email": "c@x", "manager": null}"#).expect("parses");
        assert_eq!(null_manager.manager_email, None);
        assert!(serde_json::from_str::<User>(r#"{"email": "no-id@x"}"#).is_err());
    }

    #[test]
    fn parses_teams() {
        let json = r#"{"id": 379, "name": "Support", "integrationExternalId": "personio-dept-281521", "teamUsersCount": 2,
 "apiTeamPath": "/v1/teams/379.json", "parentTeamId": 123, "manager": {}, "secondaryManagers": []}"#;
        let team: Team = serde_json::from_str(json).expect("parses");
        assert_eq!(team.parent_team_id, Some(123));
        assert_eq!(
            team.integration_external_id.as_deref(),
            Some("personio-dept-281521")
        );
        let full: Team = serde_json::from_str(
            r#"{"id": 380, "name": "Sub", "parentTeam": {"id": 379, "name": "Support"}}"#,
        )
        .expect("parses");
        assert_eq!(full.parent_team_id, Some(379));
        assert_eq!(full.integration_external_id, None);
    }
}
