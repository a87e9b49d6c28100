//! Teams (§6) and team membership (§7) routes.
//!
//! Team bodies are forms; membership bodies are JSON. Every write validates first, then
//! applies, so a refused request changes nothing.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{ApiError, FieldErrors};
use super::form::{Absent, Form, Mode, id_segment, read_form, read_json, segment};
use super::model::{TeamRec, set};
use super::paging::PageRequest;
use super::state::Inner;
use super::views::{View, json_or_not_found};

/// Validated changes to one team (`None` = unchanged).
#[derive(Debug, Default)]
struct TeamChanges {
    name: Option<String>,
    integration_external_id: Option<Option<String>>,
    manager: Option<Option<u64>>,
    secondary_managers: Option<Vec<u64>>,
    parent: Option<Option<u64>>,
    sub_teams: Option<Vec<u64>>,
    tags: Option<Vec<String>>,
    extended: bool,
}

/// The mutually exclusive pairs on create.
const EXCLUSIVE_PAIRS: [(&str, &str); 3] = [
    ("managerId", "managerEmail"),
    ("parentTeamId", "parentTeamName"),
    ("subTeamIds", "subTeamNames"),
];

/// `must match existing teams IDs`.
const UNKNOWN_TEAM: &str = "must match existing teams IDs";

/// `must match existing users IDs`.
const UNKNOWN_USER: &str = "must match existing users IDs";

/// `must match existing teams names`.
const UNKNOWN_TEAM_NAME: &str = "must match existing teams names";

/// The create-only parameters: names, manager email, secondary managers, sub-teams.
/// A non-numeric member of an id list reads as unknown on teams (no `is invalid`).
fn create_only(inner: &Inner, form: &Form, changes: &mut TeamChanges, errors: &mut FieldErrors) {
    if let Some(Some(name)) = form.optional("parentTeamName") {
        match inner.team_id_by_name(&name) {
            Some(id) => changes.parent = Some(Some(id)),
            None => errors.add("parentTeamName", UNKNOWN_TEAM_NAME),
        }
    }
    changes.secondary_managers = form.existing_ids(
        "secondaryManagerIds",
        |id| inner.contains_user(id),
        UNKNOWN_USER,
        UNKNOWN_USER,
        errors,
    );
    changes.sub_teams = match form.list("subTeamNames") {
        Some(names) => {
            let ids: Option<Vec<u64>> = names.iter().map(|n| inner.team_id_by_name(n)).collect();
            if ids.is_none() {
                errors.add("subTeamNames", UNKNOWN_TEAM_NAME);
            }
            ids
        }
        None => form.existing_ids(
            "subTeamIds",
            |id| inner.contains_team(id),
            UNKNOWN_TEAM,
            UNKNOWN_TEAM,
            errors,
        ),
    };
}

/// Validates a create or update request (nothing is written).
fn parse_changes(inner: &Inner, form: &Form, mode: Mode) -> Result<TeamChanges, ApiError> {
    if mode == Mode::Create {
        form.check_exclusive(&EXCLUSIVE_PAIRS)?;
    }
    let mut errors = FieldErrors::default();
    let mut changes = TeamChanges {
        name: form.text("name", mode.absent(Absent::MissingAndEmpty), &mut errors),
        integration_external_id: form.optional("integrationExternalId"),
        ..TeamChanges::default()
    };
    changes.manager = form.existing_id(
        "managerId",
        |id| inner.contains_user(id),
        UNKNOWN_USER,
        &mut errors,
    );
    changes.parent = form.existing_id(
        "parentTeamId",
        |id| inner.contains_team(id),
        UNKNOWN_TEAM,
        &mut errors,
    );
    if let (Mode::Update(id), Some(Some(parent))) = (mode, changes.parent)
        && inner.would_cycle(id, parent)
    {
        errors.add(
            "parentTeamId",
            "must not be the team itself or one of its sub-teams",
        );
    }
    if mode == Mode::Create {
        create_only(inner, form, &mut changes, &mut errors);
    }
    changes.tags = form.get("tags").map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    });
    match form.get("response") {
        None | Some("") | Some("Simple") => {}
        Some("Extended") => changes.extended = true,
        Some(_) => errors.add("response", "does not have a valid value"),
    }
    errors.into_result()?;
    if mode == Mode::Create
        && let Some(email) = form.optional("managerEmail").flatten()
    {
        match inner.user_id_by_email(&email, true) {
            Some(id) => changes.manager = Some(Some(id)),
            None => {
                return Err(ApiError::bad_request(
                    "managerEmail must match an existing user email within your company",
                ));
            }
        }
    }
    check_unique(inner, &changes, mode)?;
    Ok(changes)
}

/// `integrationExternalId` is unique per company (no "Validation failed: " prefix on teams).
fn check_unique(inner: &Inner, changes: &TeamChanges, mode: Mode) -> Result<(), ApiError> {
    if let Some(Some(ext)) = &changes.integration_external_id
        && inner
            .team_ids_by_ext(ext)
            .any(|id| Some(id) != mode.own_id())
    {
        return Err(ApiError::validation(
            "Integration external id has already been taken",
            FieldErrors::one("integrationExternalId", "has already been taken"),
        ));
    }
    Ok(())
}

/// Writes validated changes to team `id`.
fn apply_changes(inner: &mut Inner, id: u64, changes: TeamChanges) {
    if let Some(subs) = &changes.sub_teams {
        for sub in subs {
            if *sub != id && !inner.would_cycle(*sub, id) {
                inner.update_team(*sub, |team| team.parent_team_id = Some(id));
            }
        }
    }
    inner.update_team(id, |team| write_fields(team, changes));
}

/// Writes the plain fields of validated changes to a team (sub-teams are written apart).
fn write_fields(team: &mut TeamRec, changes: TeamChanges) {
    set(&mut team.name, changes.name);
    set(
        &mut team.integration_external_id,
        changes.integration_external_id,
    );
    set(&mut team.manager_id, changes.manager);
    set(&mut team.secondary_manager_ids, changes.secondary_managers);
    set(&mut team.parent_team_id, changes.parent);
    set(&mut team.tags, changes.tags);
}

/// A team rendered in simple or full form.
fn render(shared: &AppState, inner: &Inner, id: u64, full: bool, status: StatusCode) -> Response {
    let view = View::new(shared, inner);
    let team = inner.team(id).map(|team| {
        if full {
            view.team_full(team)
        } else {
            view.team_simple(team)
        }
    });
    json_or_not_found(status, team)
}

/// How a team route's path segment names the team: [`ById`] (`/v1/teams/{id}`) or
/// [`ByExt`] (`/v1/teams/by_external_id/{extId}`). Each route has one generic handler that
/// serves both forms; the segment is resolved under the lock, after any body was read.
pub(super) trait TeamKey {
    /// The team id the segment names, or 404 (406 for a non-JSON format suffix).
    fn resolve(inner: &Inner, raw: &str) -> Result<u64, ApiError>;
}

/// The segment is the numeric team id.
pub(super) struct ById;

/// The segment is the team's `integrationExternalId` (URL-decoded by axum).
pub(super) struct ByExt;

impl TeamKey for ById {
    fn resolve(inner: &Inner, raw: &str) -> Result<u64, ApiError> {
        let id = id_segment(raw)?;
        inner
            .contains_team(id)
            .then_some(id)
            .ok_or_else(ApiError::not_found)
    }
}

impl TeamKey for ByExt {
    fn resolve(inner: &Inner, raw: &str) -> Result<u64, ApiError> {
        inner
            .team_id_by_ext(segment(raw)?)
            .ok_or_else(ApiError::not_found)
    }
}

/// Whether a team matches `filters[name]` (case-insensitive substring) and `filters[tags]`.
fn team_matches(team: &TeamRec, name: Option<&str>, tags: Option<&[String]>) -> bool {
    name.is_none_or(|n| team.name.to_lowercase().contains(&n.to_lowercase()))
        && tags.is_none_or(|ts| ts.is_empty() || ts.iter().any(|t| team.tags.contains(t)))
}

/// `GET /v1/teams`.
pub(super) async fn list(
    State(shared): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Form::from_query(query.as_deref())?;
    let page = PageRequest::from_query(&query, shared.config.max_per_page)?;
    let name = query.get("filters[name]");
    let tags = query.list("filters[tags]");
    let inner = shared.lock();
    let ids: Vec<u64> = inner
        .teams()
        .values()
        .filter(|t| team_matches(t, name, tags.as_deref()))
        .map(|t| t.id)
        .collect();
    let (ids, headers) = page.apply(&ids);
    let teams = View::new(&shared, &inner).teams(ids, View::team_simple);
    Ok((headers, axum::Json(json!({ "teams": teams }))).into_response())
}

/// `GET /v1/teams/{id}` and `GET /v1/teams/by_external_id/{extId}`: full form.
pub(super) async fn show<K: TeamKey>(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let inner = shared.lock();
    let id = K::resolve(&inner, &raw)?;
    Ok(render(&shared, &inner, id, true, StatusCode::OK))
}

/// `POST /v1/teams`: 201, full form.
pub(super) async fn create(
    State(shared): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let changes = parse_changes(&inner, &form, Mode::Create)?;
    let id = inner.take_team_id();
    inner.insert_team(TeamRec::new(id, ""));
    apply_changes(&mut inner, id, changes);
    tracing::debug!(team_id = id, "learnamp sim: team created");
    Ok(render(&shared, &inner, id, true, StatusCode::CREATED))
}

/// `PUT /v1/teams/{id}` and `PUT /v1/teams/by_external_id/{extId}`: simple form, full
/// with `response=Extended`.
pub(super) async fn update<K: TeamKey>(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let id = K::resolve(&inner, &raw)?;
    let changes = parse_changes(&inner, &form, Mode::Update(id))?;
    let extended = changes.extended;
    apply_changes(&mut inner, id, changes);
    Ok(render(&shared, &inner, id, extended, StatusCode::OK))
}

/// `DELETE /v1/teams/{id}` and `DELETE /v1/teams/by_external_id/{extId}`: 204; users kept.
pub(super) async fn delete<K: TeamKey>(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let id = K::resolve(&inner, &raw)?;
    inner.delete_team(id);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/teams/{team_id}/users` and `GET /v1/teams/by_external_id/{extId}/users`: the
/// team object with `users[]` in full user form, paginated over the users.
pub(super) async fn members<K: TeamKey>(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Form::from_query(query.as_deref())?;
    let inner = shared.lock();
    let id = K::resolve(&inner, &raw)?;
    let page = PageRequest::from_query(&query, shared.config.max_per_page)?;
    let (ids, headers) = page.apply(&inner.team_user_ids(id));
    let view = View::new(&shared, &inner);
    let users = view.users(ids, View::user_full);
    let team = inner.team(id).ok_or_else(ApiError::not_found)?;
    Ok((headers, axum::Json(view.team_with_users(team, users))).into_response())
}

/// A validated membership request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemberRequest {
    user_id: u64,
    primary: bool,
    extended: bool,
}

/// Validates `{userId, isPrimary, response}`.
fn parse_member(body: &Map<String, Value>) -> Result<MemberRequest, ApiError> {
    let mut errors = FieldErrors::default();
    let user_id = match body.get("userId") {
        None | Some(Value::Null) => {
            errors.add("userId", "is missing");
            errors.add("userId", "is empty");
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.add("userId", "is empty");
            None
        }
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            errors.add("userId", "is invalid");
            None
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok().or_else(|| {
            errors.add("userId", "is invalid");
            None
        }),
        Some(_) => {
            errors.add("userId", "is invalid");
            None
        }
    };
    let primary = match body.get("isPrimary") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(_) => {
            errors.add("isPrimary", "is invalid");
            false
        }
    };
    let extended = match body.get("response") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.is_empty() || s == "Teams::Simple" => false,
        Some(Value::String(s)) if s == "Teams::Extended" => true,
        Some(_) => {
            errors.add("response", "does not have a valid value");
            false
        }
    };
    match user_id {
        Some(user_id) if errors.is_empty() => Ok(MemberRequest {
            user_id,
            primary,
            extended,
        }),
        _ => Err(ApiError::params(errors)),
    }
}

/// `POST /v1/teams/{team_id}/users` and `POST /v1/teams/by_external_id/{extId}/users`
/// (JSON body): 201 with the membership, or the full team with `Teams::Extended`.
pub(super) async fn add_member<K: TeamKey>(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_json(request).await?;
    let mut inner = shared.lock();
    let team_id = K::resolve(&inner, &raw)?;
    let request = parse_member(&body)?;
    if !inner.contains_user(request.user_id) {
        return Err(ApiError::not_found());
    }
    let id = inner.add_membership(team_id, request.user_id, request.primary);
    if request.extended {
        return Ok(render(&shared, &inner, team_id, true, StatusCode::CREATED));
    }
    let body = json!({"id": id, "teamId": team_id, "userId": request.user_id});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `DELETE /v1/teams/{team_id}/users/{user_id}` and
/// `DELETE /v1/teams/by_external_id/{extId}/users/{user_id}`: 204, or 404 when there is no
/// such membership.
pub(super) async fn remove_member<K: TeamKey>(
    State(shared): State<AppState>,
    Path((team, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let team_id = K::resolve(&inner, &team)?;
    let user_id = id_segment(&user)?;
    match inner.remove_membership(team_id, user_id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::learnamp::form::test_form as form;

    #[test]
    fn create_reports_missing_name_and_unknown_parent_together() {
        let inner = Inner::default();
        let error =
            parse_changes(&inner, &form("parentTeamId=9"), Mode::Create).expect_err("invalid");
        assert_eq!(
            error.body(),
            json!({"error": "name is missing, name is empty, parentTeamId must match existing teams IDs",
                   "fullErrors": {"name": ["is missing", "is empty"], "parentTeamId": ["must match existing teams IDs"]}})
        );
    }

    #[test]
    fn parent_id_and_name_are_exclusive() {
        let inner = Inner::default();
        let error = parse_changes(
            &inner,
            &form("name=a&parentTeamId=1&parentTeamName=b"),
            Mode::Create,
        )
        .expect_err("invalid");
        assert_eq!(
            error.body(),
            json!({"error": "parentTeamId, parentTeamName are mutually exclusive"})
        );
    }

    #[test]
    fn membership_requires_user_id() {
        let error = parse_member(&Map::new()).expect_err("invalid");
        assert_eq!(
            error.body(),
            json!({"error": "userId is missing, userId is empty",
                   "fullErrors": {"userId": ["is missing", "is empty"]}})
        );
        let ok = parse_member(
            json!({"userId": 4, "isPrimary": true})
                .as_object()
                .expect("object"),
        )
        .expect("valid");
        assert_eq!(
            ok,
            MemberRequest {
                user_id: 4,
                primary: true,
                extended: false
            }
        );
    }
}
