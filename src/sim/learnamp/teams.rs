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
use super::form::{Form, id_segment, read_form, read_json, segment};
use super::model::{Inner, TeamRec};
use super::paging::PageRequest;
use super::views::View;

/// Whether a request creates a team or updates team `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update(u64),
}

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

/// Whether a parameter (plain or `[]` array) was sent.
fn sent(form: &Form, key: &str) -> bool {
    form.has(key) || form.has(&format!("{key}[]"))
}

/// Parses an optional id that must exist.
fn existing_id(
    form: &Form,
    key: &str,
    exists: impl Fn(u64) -> bool,
    message: &str,
    errors: &mut FieldErrors,
) -> Option<Option<u64>> {
    match form.optional(key)? {
        None => Some(None),
        Some(raw) => match raw.parse::<u64>() {
            Ok(id) if exists(id) => Some(Some(id)),
            Ok(_) => {
                errors.add(key, message);
                None
            }
            Err(_) => {
                errors.add(key, "is invalid");
                None
            }
        },
    }
}

/// Parses an id list whose members must exist.
fn existing_ids(
    form: &Form,
    key: &str,
    exists: impl Fn(u64) -> bool,
    message: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<u64>> {
    let values = form.list(key)?;
    let ids: Option<Vec<u64>> = values
        .iter()
        .map(|v| v.parse::<u64>().ok().filter(|id| exists(*id)))
        .collect();
    if ids.is_none() {
        errors.add(key, message);
    }
    ids
}

/// A team id by exact name (the first by id).
fn team_by_name(inner: &Inner, name: &str) -> Option<u64> {
    inner.team_id_by_name(name)
}

/// The create-only parameters: names, manager email, secondary managers, sub-teams.
fn create_only(inner: &Inner, form: &Form, changes: &mut TeamChanges, errors: &mut FieldErrors) {
    if let Some(Some(name)) = form.optional("parentTeamName") {
        match team_by_name(inner, &name) {
            Some(id) => changes.parent = Some(Some(id)),
            None => errors.add("parentTeamName", "must match existing teams names"),
        }
    }
    changes.secondary_managers = existing_ids(
        form,
        "secondaryManagerIds",
        |id| inner.contains_user(id),
        "must match existing users IDs",
        errors,
    );
    changes.sub_teams = match form.list("subTeamNames") {
        Some(names) => {
            let ids: Option<Vec<u64>> = names.iter().map(|n| team_by_name(inner, n)).collect();
            if ids.is_none() {
                errors.add("subTeamNames", "must match existing teams names");
            }
            ids
        }
        None => existing_ids(
            form,
            "subTeamIds",
            |id| inner.contains_team(id),
            "must match existing teams IDs",
            errors,
        ),
    };
}

/// Validates a create or update request (nothing is written).
fn parse_changes(inner: &Inner, form: &Form, mode: Mode) -> Result<TeamChanges, ApiError> {
    if mode == Mode::Create {
        for (a, b) in EXCLUSIVE_PAIRS {
            if sent(form, a) && sent(form, b) {
                return Err(ApiError::bad_request(format!(
                    "{a}, {b} are mutually exclusive"
                )));
            }
        }
    }
    let mut errors = FieldErrors::default();
    let mut changes = TeamChanges::default();
    match form.get("name").map(str::trim) {
        None if mode == Mode::Create => {
            errors.add("name", "is missing");
            errors.add("name", "is empty");
        }
        None => {}
        Some("") => errors.add("name", "is empty"),
        Some(name) => changes.name = Some(name.to_string()),
    }
    changes.integration_external_id = form.optional("integrationExternalId");
    changes.manager = existing_id(
        form,
        "managerId",
        |id| inner.contains_user(id),
        "must match existing users IDs",
        &mut errors,
    );
    changes.parent = existing_id(
        form,
        "parentTeamId",
        |id| inner.contains_team(id),
        "must match existing teams IDs",
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
    if !errors.is_empty() {
        return Err(ApiError::params(errors));
    }
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
    let own = match mode {
        Mode::Create => None,
        Mode::Update(id) => Some(id),
    };
    if let Some(Some(ext)) = &changes.integration_external_id
        && inner.team_ids_by_ext(ext).any(|id| Some(id) != own)
    {
        let mut errors = FieldErrors::default();
        errors.add("integrationExternalId", "has already been taken");
        return Err(ApiError::validation(
            "Integration external id has already been taken",
            errors,
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
    if let Some(name) = changes.name {
        team.name = name;
    }
    if let Some(ext) = changes.integration_external_id {
        team.integration_external_id = ext;
    }
    if let Some(manager) = changes.manager {
        team.manager_id = manager;
    }
    if let Some(secondary) = changes.secondary_managers {
        team.secondary_manager_ids = secondary;
    }
    if let Some(parent) = changes.parent {
        team.parent_team_id = parent;
    }
    if let Some(tags) = changes.tags {
        team.tags = tags;
    }
}

/// A team rendered in simple or full form.
fn render(shared: &AppState, inner: &Inner, id: u64, full: bool, status: StatusCode) -> Response {
    let view = View {
        inner,
        base: &shared.base_url,
    };
    match inner.team(id) {
        Some(team) if full => (status, axum::Json(view.team_full(team))).into_response(),
        Some(team) => (status, axum::Json(view.team_simple(team))).into_response(),
        None => ApiError::not_found().into_response(),
    }
}

/// The team id for an id segment, or 404.
fn team_by_id(inner: &Inner, raw: &str) -> Result<u64, ApiError> {
    let id = id_segment(raw)?;
    inner
        .contains_team(id)
        .then_some(id)
        .ok_or_else(ApiError::not_found)
}

/// The team id for an external-id segment, or 404.
fn team_by_ext(inner: &Inner, raw: &str) -> Result<u64, ApiError> {
    inner
        .team_id_by_ext(segment(raw)?)
        .ok_or_else(ApiError::not_found)
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
    let view = View {
        inner: &inner,
        base: &shared.base_url,
    };
    let teams: Vec<Value> = ids
        .iter()
        .filter_map(|id| inner.team(*id))
        .map(|t| view.team_simple(t))
        .collect();
    Ok((headers, axum::Json(json!({ "teams": teams }))).into_response())
}

/// `GET /v1/teams/{id}`: full form.
pub(super) async fn show(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let inner = shared.lock();
    let id = team_by_id(&inner, &raw)?;
    Ok(render(&shared, &inner, id, true, StatusCode::OK))
}

/// `GET /v1/teams/by_external_id/{extId}`: full form.
pub(super) async fn show_by_ext(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let inner = shared.lock();
    let id = team_by_ext(&inner, &raw)?;
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
    inner.insert_team(TeamRec {
        id,
        name: String::new(),
        integration_external_id: None,
        parent_team_id: None,
        manager_id: None,
        secondary_manager_ids: Vec::new(),
        tags: Vec::new(),
    });
    apply_changes(&mut inner, id, changes);
    tracing::debug!(team_id = id, "learnamp sim: team created");
    Ok(render(&shared, &inner, id, true, StatusCode::CREATED))
}

/// Shared body of both update routes.
fn update_team(
    shared: &AppState,
    inner: &mut Inner,
    id: u64,
    form: &Form,
) -> Result<Response, ApiError> {
    let changes = parse_changes(inner, form, Mode::Update(id))?;
    let extended = changes.extended;
    apply_changes(inner, id, changes);
    Ok(render(shared, inner, id, extended, StatusCode::OK))
}

/// `PUT /v1/teams/{id}`.
pub(super) async fn update(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let id = team_by_id(&inner, &raw)?;
    update_team(&shared, &mut inner, id, &form)
}

/// `PUT /v1/teams/by_external_id/{extId}`.
pub(super) async fn update_by_ext(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let id = team_by_ext(&inner, &raw)?;
    update_team(&shared, &mut inner, id, &form)
}

/// `DELETE /v1/teams/{id}`: 204; users kept.
pub(super) async fn delete(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let id = team_by_id(&inner, &raw)?;
    inner.delete_team(id);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/teams/by_external_id/{extId}`: 204; users kept.
pub(super) async fn delete_by_ext(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let id = team_by_ext(&inner, &raw)?;
    inner.delete_team(id);
    Ok(StatusCode::NO_CONTENT)
}

/// The team object with `users[]` in full user form, paginated over the users.
fn members_of(
    shared: &AppState,
    inner: &Inner,
    id: u64,
    query: &Form,
) -> Result<Response, ApiError> {
    let page = PageRequest::from_query(query, shared.config.max_per_page)?;
    let (ids, headers) = page.apply(&inner.team_user_ids(id));
    let view = View {
        inner,
        base: &shared.base_url,
    };
    let users: Vec<Value> = ids
        .iter()
        .filter_map(|u| inner.user(*u))
        .map(|u| view.user_full(u))
        .collect();
    let team = inner.team(id).ok_or_else(ApiError::not_found)?;
    Ok((headers, axum::Json(view.team_with_users(team, users))).into_response())
}

/// `GET /v1/teams/{team_id}/users`.
pub(super) async fn members(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Form::from_query(query.as_deref())?;
    let inner = shared.lock();
    let id = team_by_id(&inner, &raw)?;
    members_of(&shared, &inner, id, &query)
}

/// `GET /v1/teams/by_external_id/{extId}/users`.
pub(super) async fn members_by_ext(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Form::from_query(query.as_deref())?;
    let inner = shared.lock();
    let id = team_by_ext(&inner, &raw)?;
    members_of(&shared, &inner, id, &query)
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

/// Adds a membership and answers 201.
fn add_member_to(
    shared: &AppState,
    inner: &mut Inner,
    team_id: u64,
    body: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let request = parse_member(body)?;
    if !inner.contains_user(request.user_id) {
        return Err(ApiError::not_found());
    }
    let id = inner.add_membership(team_id, request.user_id, request.primary);
    if request.extended {
        return Ok(render(shared, inner, team_id, true, StatusCode::CREATED));
    }
    let body = json!({"id": id, "teamId": team_id, "userId": request.user_id});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `POST /v1/teams/{team_id}/users` (JSON body).
pub(super) async fn add_member(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_json(request).await?;
    let mut inner = shared.lock();
    let team_id = team_by_id(&inner, &raw)?;
    add_member_to(&shared, &mut inner, team_id, &body)
}

/// `POST /v1/teams/by_external_id/{extId}/users` (JSON body).
pub(super) async fn add_member_by_ext(
    State(shared): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_json(request).await?;
    let mut inner = shared.lock();
    let team_id = team_by_ext(&inner, &raw)?;
    add_member_to(&shared, &mut inner, team_id, &body)
}

/// Removes a membership: 204, or 404 when there is none.
fn remove_member_from(
    inner: &mut Inner,
    team_id: u64,
    raw_user: &str,
) -> Result<StatusCode, ApiError> {
    let user_id = id_segment(raw_user)?;
    match inner.remove_membership(team_id, user_id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found()),
    }
}

/// `DELETE /v1/teams/{team_id}/users/{user_id}`.
pub(super) async fn remove_member(
    State(shared): State<AppState>,
    Path((team, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let team_id = team_by_id(&inner, &team)?;
    remove_member_from(&mut inner, team_id, &user)
}

/// `DELETE /v1/teams/by_external_id/{extId}/users/{user_id}`.
pub(super) async fn remove_member_by_ext(
    State(shared): State<AppState>,
    Path((team, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut inner = shared.lock();
    let team_id = team_by_ext(&inner, &team)?;
    remove_member_from(&mut inner, team_id, &user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Form {
        Form::from_urlencoded(s.as_bytes()).expect("form")
    }

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
