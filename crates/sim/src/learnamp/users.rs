//! Users routes (§5) and the assumed invitation and avatar routes (final section, A and C).
//!
//! Every write first validates the whole request against the state, then applies it, so a
//! refused request changes nothing.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, FieldErrors};
use super::form::{Absent, Form, Mode, id_segment, is_iso_date, read_form, segment};
use super::model::{SimUserStatus, UserRec, set};
use super::paging::PageRequest;
use super::state::Inner;
use super::views::{View, json_or_not_found};

/// Roles the API may set (§4.3); `hr` needs a package the simulated company lacks (422).
const SETTABLE_ROLES: [&str; 6] = [
    "viewer",
    "curator",
    "reporter",
    "learning_designer",
    "hr",
    "admin",
];

/// Roles accepted by `filters[role]`.
const FILTER_ROLES: [&str; 6] = ["viewer", "curator", "reporter", "hr", "admin", "owner"];

/// The 27 language codes (§4.3).
const LANGUAGES: [&str; 27] = [
    "en", "en-US", "de", "es", "es-CO", "fr", "fr-CA", "it", "nl", "pt-BR", "pl", "ru", "no", "sv",
    "da", "zh-CN", "zh-TW", "ja", "ar", "sk", "ca", "cy", "el", "hu", "pt-PT", "ro", "tr",
];

/// A validated set of changes to one user (`None` = leave unchanged).
#[derive(Debug, Default)]
struct UserChanges {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    job_title: Option<Option<String>>,
    location: Option<Option<String>>,
    department: Option<Option<String>>,
    hire_date: Option<Option<String>>,
    leave_date: Option<Option<String>>,
    integration_external_id: Option<Option<String>>,
    language: Option<String>,
    role: Option<String>,
    primary_team: Option<Option<u64>>,
    secondary_teams: Option<Vec<u64>>,
    manager: Option<Option<u64>>,
    custom_fields: Vec<(String, Option<String>)>,
    skip_invitation: bool,
    reactivate: bool,
}

/// The mutually exclusive parameter pairs (400 without `fullErrors`).
const EXCLUSIVE_PAIRS: [(&str, &str); 3] = [
    ("primaryTeamId", "primaryTeamIntegrationExternalId"),
    ("secondaryTeamIds", "secondaryTeamIntegrationExternalIds"),
    ("managerId", "managerEmail"),
];

/// A date field: `YYYY-MM-DD`, or empty to clear.
fn date_field(form: &Form, key: &str, errors: &mut FieldErrors) -> Option<Option<String>> {
    match form.optional(key) {
        Some(Some(value)) if !is_iso_date(&value) => {
            errors.add(key, "is invalid");
            None
        }
        other => other,
    }
}

/// Resolves the primary team parameters.
fn primary_team(inner: &Inner, form: &Form, errors: &mut FieldErrors) -> Option<Option<u64>> {
    if form.has("primaryTeamIntegrationExternalId") {
        return match form.optional("primaryTeamIntegrationExternalId") {
            Some(Some(ext)) => match inner.team_id_by_ext(&ext) {
                Some(id) => Some(Some(id)),
                None => {
                    errors.add(
                        "primaryTeamIntegrationExternalId",
                        "must match existing teams integration external IDs",
                    );
                    None
                }
            },
            _ => Some(None),
        };
    }
    form.existing_id(
        "primaryTeamId",
        |id| inner.contains_team(id),
        "must match existing teams IDs",
        errors,
    )
}

/// Resolves the secondary team parameters.
fn secondary_teams(inner: &Inner, form: &Form, errors: &mut FieldErrors) -> Option<Vec<u64>> {
    if let Some(exts) = form.list("secondaryTeamIntegrationExternalIds") {
        let ids: Option<Vec<u64>> = exts.iter().map(|e| inner.team_id_by_ext(e)).collect();
        if ids.is_none() {
            errors.add(
                "secondaryTeamIntegrationExternalIds",
                "must match existing teams integration external IDs",
            );
        }
        return ids;
    }
    form.existing_ids(
        "secondaryTeamIds",
        |id| inner.contains_team(id),
        "must match existing teams IDs",
        "is invalid",
        errors,
    )
}

/// A value restricted to a list (`does not have a valid value`).
fn enum_param(
    form: &Form,
    key: &str,
    allowed: &[&str],
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = form.get(key)?.trim();
    if allowed.contains(&value) {
        Some(value.to_string())
    } else {
        errors.add(key, "does not have a valid value");
        None
    }
}

/// Validates a create or update request into changes (nothing is written).
/// With `documented_only`, `leaveDate` is an unknown attribute: ignored, like any other.
fn parse_changes(
    inner: &Inner,
    custom_field_names: &[String],
    documented_only: bool,
    form: &Form,
    mode: Mode,
) -> Result<UserChanges, ApiError> {
    form.check_exclusive(&EXCLUSIVE_PAIRS)?;
    let mut errors = FieldErrors::default();
    let mut changes = UserChanges {
        email: form.text("email", mode.absent(Absent::MissingAndEmpty), &mut errors),
        first_name: form.text("firstName", mode.absent(Absent::Missing), &mut errors),
        last_name: form.text("lastName", mode.absent(Absent::Missing), &mut errors),
        job_title: form.optional("jobTitle"),
        location: form.optional("location"),
        department: form.optional("department"),
        integration_external_id: form.optional("integrationExternalId"),
        hire_date: date_field(form, "hireDate", &mut errors),
        leave_date: if documented_only {
            None
        } else {
            date_field(form, "leaveDate", &mut errors)
        },
        language: enum_param(form, "language", &LANGUAGES, &mut errors),
        role: enum_param(form, "role", &SETTABLE_ROLES, &mut errors),
        primary_team: primary_team(inner, form, &mut errors),
        secondary_teams: secondary_teams(inner, form, &mut errors),
        manager: form.existing_id(
            "managerId",
            |id| inner.contains_user(id),
            "must match an existing user ID within your company",
            &mut errors,
        ),
        ..UserChanges::default()
    };
    match mode {
        Mode::Create => changes.skip_invitation = form.flag("skipInvitation", &mut errors),
        Mode::Update(_) => changes.reactivate = form.flag("reactivate", &mut errors),
    }
    let custom = form.custom_fields();
    if custom
        .iter()
        .any(|c| c.name.as_deref().is_none_or(str::is_empty))
    {
        errors.add("customFields[name]", "is missing");
    }
    errors.into_result()?;
    if changes.role.as_deref() == Some("hr") {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The hr role requires the HR role package, which is not enabled for your company",
        ));
    }
    if let (Mode::Update(_), Some(Some(_))) = (mode, form.optional("occupationRole")) {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "occupationRole does not match an existing role in your company",
        ));
    }
    if let Some(email) = form.optional("managerEmail") {
        changes.manager = match email {
            None => Some(None),
            Some(email) => match inner.user_id_by_email(&email, true) {
                Some(id) => Some(Some(id)),
                None => {
                    return Err(ApiError::bad_request(
                        "managerEmail must match an existing user email within your company",
                    ));
                }
            },
        };
    }
    for entry in custom {
        let name = entry.name.unwrap_or_default();
        if !custom_field_names.contains(&name) {
            return Err(ApiError::not_found());
        }
        let value = entry.value.filter(|v| !v.trim().is_empty());
        changes.custom_fields.push((name, value));
    }
    check_unique(inner, &changes, mode)?;
    Ok(changes)
}

/// Model validations: email format and uniqueness, external id uniqueness.
fn check_unique(inner: &Inner, changes: &UserChanges, mode: Mode) -> Result<(), ApiError> {
    let own_id = mode.own_id();
    let mut errors = FieldErrors::default();
    let mut messages = Vec::new();
    if let Some(email) = &changes.email {
        if !valid_email(email) {
            errors.add("email", "is invalid");
            messages.push("Email is invalid");
        } else if inner.user_ids_by_email(email).any(|id| Some(id) != own_id) {
            errors.add("email", "has already been taken");
            messages.push("Email has already been taken");
        }
    }
    if let Some(Some(ext)) = &changes.integration_external_id
        && inner.user_ids_by_ext(ext).any(|id| Some(id) != own_id)
    {
        errors.add("integrationExternalId", "has already been taken");
        messages.push("Integration external id has already been taken");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(
            format!("Validation failed: {}", messages.join(", ")),
            errors,
        ))
    }
}

/// A loose email check (something@something).
fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Writes validated changes to user `id`.
fn apply_changes(inner: &mut Inner, id: u64, mut changes: UserChanges, now: DateTime<Utc>) {
    if let Some(team) = changes.primary_team {
        inner.set_primary_team(id, team);
    }
    if let Some(mut teams) = changes.secondary_teams.take() {
        let primary = inner.primary_team_of(id);
        teams.retain(|t| Some(*t) != primary);
        teams.sort_unstable();
        teams.dedup();
        inner.set_secondary_teams(id, &teams);
    }
    inner.update_user(id, |user| write_fields(user, changes, now));
}

/// Writes the plain fields of validated changes to a user (teams are written apart).
fn write_fields(user: &mut UserRec, changes: UserChanges, now: DateTime<Utc>) {
    set(&mut user.email, changes.email);
    set(&mut user.first_name, changes.first_name);
    set(&mut user.last_name, changes.last_name);
    set(&mut user.job_title, changes.job_title);
    set(&mut user.location, changes.location);
    set(&mut user.department, changes.department);
    set(&mut user.hire_date, changes.hire_date);
    set(&mut user.leave_date, changes.leave_date);
    set(
        &mut user.integration_external_id,
        changes.integration_external_id,
    );
    set(&mut user.language, changes.language);
    set(&mut user.role, changes.role);
    set(&mut user.manager_id, changes.manager);
    for (name, value) in changes.custom_fields {
        match value {
            Some(value) => user.custom_fields.insert(name, value),
            None => user.custom_fields.remove(&name),
        };
    }
    user.updated_at = now;
    if changes.reactivate && user.status == SimUserStatus::Deactivated {
        reactivate_user(user, now);
    }
}

/// Restores the status a user had before deactivation.
fn reactivate_user(user: &mut UserRec, now: DateTime<Utc>) {
    let previous = user.status_before_deactivation;
    user.set_status(previous, now);
    user.deactivated_at = None;
}

/// `status` with the full user, or 404.
fn full_user(shared: &AppState, inner: &Inner, id: u64, status: StatusCode) -> Response {
    let view = View::new(shared, inner);
    json_or_not_found(status, inner.user(id).map(|user| view.user_full(user)))
}

/// `GET /v1/users`.
pub(super) async fn list(
    State(shared): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Form::from_query(query.as_deref())?;
    let page = PageRequest::from_query(&query, shared.config.max_per_page)?;
    let expanded = query
        .boolean("expanded")
        .unwrap_or(Some(false))
        .unwrap_or(false);
    let inner = shared.lock();
    let ids = filter_users(&inner, &query)?;
    let (ids, headers) = page.apply(&ids);
    let users = View::new(&shared, &inner).users(ids, |view, u| {
        if expanded {
            view.user_full(u)
        } else {
            view.user_basic(u)
        }
    });
    Ok((headers, axum::Json(json!({ "users": users }))).into_response())
}

/// A date-range bound: `YYYY-MM-DD` (start or end of day) or RFC 3339.
fn bound(query: &Form, key: &str, end: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = query.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let invalid = || ApiError::param(key, "is invalid");
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| invalid())?;
    let time = if end {
        date.and_hms_opt(23, 59, 59)
    } else {
        date.and_hms_opt(0, 0, 0)
    };
    time.map(|t| Some(t.and_utc())).ok_or_else(invalid)
}

/// A `filters[x][from]`/`[to]` range; `None` when neither bound was sent.
#[derive(Debug, Clone, Copy)]
struct Range {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Range {
    /// Reads `filters[name][from]` and `filters[name][to]`.
    fn parse(query: &Form, name: &str) -> Result<Option<Self>, ApiError> {
        let from = bound(query, &format!("filters[{name}][from]"), false)?;
        let to = bound(query, &format!("filters[{name}][to]"), true)?;
        Ok((from.is_some() || to.is_some()).then_some(Self { from, to }))
    }

    /// Whether `at` lies in the range; an unset timestamp never does.
    fn contains(&self, at: Option<DateTime<Utc>>) -> bool {
        at.is_some_and(|at| self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at <= t))
    }
}

/// Whether `at` passes an optional range.
fn passes(range: Option<Range>, at: Option<DateTime<Utc>>) -> bool {
    range.is_none_or(|r| r.contains(at))
}

/// The ids of the users matching the documented filters, ascending.
fn filter_users(inner: &Inner, query: &Form) -> Result<Vec<u64>, ApiError> {
    // An empty `filters[status]` is no filter; an empty `filters[team_ids]` matches nobody.
    let statuses = query
        .parsed_list(
            "filters[status]",
            SimUserStatus::from_machine,
            "does not have a valid value",
        )?
        .filter(|v| !v.is_empty());
    let teams = query.parsed_list("filters[team_ids]", |v| v.parse::<u64>().ok(), "is invalid")?;
    let mut errors = FieldErrors::default();
    let role = enum_param(query, "filters[role]", &FILTER_ROLES, &mut errors);
    let no_team = query.flag("filters[no_team]", &mut errors);
    errors.into_result()?;
    let created = Range::parse(query, "created_at")?;
    let updated = Range::parse(query, "updated_at")?;
    let deactivated = Range::parse(query, "deactivated_at")?;
    let email = query.get("filters[email]").map(str::trim);
    let ext = query.get("filters[integration_external_id]");
    let first = query.get("filters[first_name]").map(str::to_lowercase);
    let last = query.get("filters[last_name]").map(str::to_lowercase);
    let keep = |user: &UserRec| {
        let status_ok = match &statuses {
            Some(list) => list.contains(&user.status),
            None => deactivated.is_some() || user.status != SimUserStatus::Deactivated,
        };
        status_ok
            && email.is_none_or(|e| user.email.eq_ignore_ascii_case(e))
            && ext.is_none_or(|e| user.integration_external_id.as_deref() == Some(e))
            && first
                .as_ref()
                .is_none_or(|f| user.first_name.to_lowercase().contains(f))
            && last
                .as_ref()
                .is_none_or(|l| user.last_name.to_lowercase().contains(l))
            && role.as_ref().is_none_or(|r| user.role == *r)
            && (!no_team || !inner.has_team(user.id))
            && teams
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| inner.is_member(*t, user.id)))
            && passes(created, Some(user.created_at))
            && passes(updated, Some(user.updated_at))
            && passes(deactivated, user.deactivated_at)
    };
    let check = |ids: &mut dyn Iterator<Item = u64>| -> Vec<u64> {
        ids.filter(|id| inner.user(*id).is_some_and(keep)).collect()
    };
    // Candidates come from an index when one covers a filter; `keep` still decides, so
    // the answer is the scan's, in the same ascending id order.
    if let Some(email) = email {
        return Ok(check(&mut inner.user_ids_by_email(email)));
    }
    if let Some(ext) = ext {
        return Ok(check(&mut inner.user_ids_by_ext(ext)));
    }
    let by_status = match (&statuses, deactivated) {
        (Some(list), _) => Some(list.clone()),
        (None, None) => Some(
            SimUserStatus::ALL
                .into_iter()
                .filter(|s| *s != SimUserStatus::Deactivated)
                .collect(),
        ),
        (None, Some(_)) => None,
    };
    let Some(by_status) = by_status else {
        return Ok(check(&mut inner.users().keys().copied()));
    };
    let ids = inner.user_ids_with_statuses(&by_status);
    let status_only = first.is_none()
        && last.is_none()
        && role.is_none()
        && !no_team
        && teams.is_none()
        && created.is_none()
        && updated.is_none()
        && deactivated.is_none();
    if status_only {
        Ok(ids)
    } else {
        Ok(check(&mut ids.into_iter()))
    }
}

/// `GET /v1/users/{id}`.
pub(super) async fn show(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id_segment(&id)?;
    let inner = shared.lock();
    Ok(full_user(&shared, &inner, id, StatusCode::OK))
}

/// The user id for an external-id path segment (URL-decoded by axum), or 404.
fn ext_user(inner: &Inner, raw: &str) -> Result<u64, ApiError> {
    let ext = segment(raw)?;
    inner.user_id_by_ext(ext).ok_or_else(ApiError::not_found)
}

/// `GET /v1/users/by_integration_external_id/{extId}` (deactivated users are found too).
pub(super) async fn show_by_ext(
    State(shared): State<AppState>,
    Path(ext): Path<String>,
) -> Result<Response, ApiError> {
    let inner = shared.lock();
    let id = ext_user(&inner, &ext)?;
    Ok(full_user(&shared, &inner, id, StatusCode::OK))
}

/// `POST /v1/users`.
pub(super) async fn create(
    State(shared): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let changes = parse_changes(
        &inner,
        &shared.config.custom_fields,
        shared.config.documented_only,
        &form,
        Mode::Create,
    )?;
    let now = Utc::now();
    let id = inner.take_user_id();
    let skip = changes.skip_invitation;
    inner.insert_user(UserRec::new(id, "", "", "", now));
    apply_changes(&mut inner, id, changes, now);
    if !skip {
        inner.invite(id, now);
    }
    tracing::debug!(user_id = id, invited = !skip, "learnamp sim: user created");
    Ok(full_user(&shared, &inner, id, StatusCode::CREATED))
}

/// Shared body of both update routes.
fn update_user(
    shared: &AppState,
    inner: &mut Inner,
    id: u64,
    form: &Form,
) -> Result<Response, ApiError> {
    if !inner.contains_user(id) {
        return Err(ApiError::not_found());
    }
    let changes = parse_changes(
        inner,
        &shared.config.custom_fields,
        shared.config.documented_only,
        form,
        Mode::Update(id),
    )?;
    apply_changes(inner, id, changes, Utc::now());
    Ok(full_user(shared, inner, id, StatusCode::OK))
}

/// `PUT /v1/users/{id}`.
pub(super) async fn update(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let id = id_segment(&id)?;
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    update_user(&shared, &mut inner, id, &form)
}

/// `PUT /v1/users/by_integration_external_id/{extId}`.
pub(super) async fn update_by_ext(
    State(shared): State<AppState>,
    Path(ext): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = read_form(request).await?;
    let mut inner = shared.lock();
    let id = ext_user(&inner, &ext)?;
    update_user(&shared, &mut inner, id, &form)
}

/// Changes user `id` through `change`: 204, or 404 when there is no such user.
pub(super) fn change_user(
    shared: &AppState,
    id: u64,
    change: impl FnOnce(&mut UserRec),
) -> Result<StatusCode, ApiError> {
    shared
        .lock()
        .update_user(id, change)
        .ok_or_else(ApiError::not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/users/{id}/deactivate`: 204; an already deactivated user stays so (204).
pub(super) async fn deactivate(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&shared, id_segment(&id)?, |user| {
        if user.status != SimUserStatus::Deactivated {
            let now = Utc::now();
            user.status_before_deactivation = user.status;
            user.set_status(SimUserStatus::Deactivated, now);
            user.deactivated_at = Some(now);
        }
    })
}

/// `PUT /v1/users/{id}/reactivate`: 204.
pub(super) async fn reactivate(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&shared, id_segment(&id)?, |user| {
        if user.status == SimUserStatus::Deactivated {
            reactivate_user(user, Utc::now());
        }
    })
}

/// `DELETE /v1/users/{id}`: 204, data removed.
pub(super) async fn delete(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id_segment(&id)?;
    if shared.lock().delete_user(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// `POST /v1/users/{id}/invitation` (assumed contract A).
pub(super) async fn invite(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id_segment(&id)?;
    let mut inner = shared.lock();
    let status = inner.user(id).ok_or_else(ApiError::not_found)?.status;
    match status {
        SimUserStatus::Deactivated => Err(ApiError::message(
            StatusCode::CONFLICT,
            "User is deactivated",
        )),
        SimUserStatus::Confirmed => Err(ApiError::message(
            StatusCode::CONFLICT,
            "User has already confirmed",
        )),
        _ => {
            inner.invite(id, Utc::now());
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    use crate::learnamp::form::test_form as form;

    /// `parse_changes` of a URL-encoded body, in a company with the custom field
    /// `Cost code`.
    fn parse(inner: &Inner, body: &str, mode: Mode) -> Result<UserChanges, ApiError> {
        parse_changes(inner, &["Cost code".to_string()], false, &form(body), mode)
    }

    /// The status and body of a request `parse_changes` refuses.
    fn refused(inner: &Inner, body: &str, mode: Mode) -> (StatusCode, Value) {
        let error = parse(inner, body, mode).expect_err("must fail");
        (error.status(), error.body())
    }

    #[test]
    fn create_requires_the_documented_fields() {
        let inner = Inner::default();
        let (status, body) = refused(&inner, "", Mode::Create);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["error"],
            "email is missing, email is empty, firstName is missing, lastName is missing"
        );
    }

    #[test]
    fn update_accepts_partial_bodies() {
        let mut inner = Inner::default();
        let id = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let changes =
            parse(&inner, "jobTitle=Boss", Mode::Update(id)).expect("partial update is valid");
        assert!(changes.email.is_none());
        assert_eq!(changes.job_title, Some(Some("Boss".to_string())));
    }

    #[test]
    fn mutual_exclusion_has_no_full_errors() {
        let inner = Inner::default();
        let (status, body) = refused(&inner, "managerId=1&managerEmail=a@x.io", Mode::Update(1));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": "managerId, managerEmail are mutually exclusive"})
        );
    }

    #[test]
    fn hr_role_is_422_and_owner_is_400() {
        let inner = Inner::default();
        let (status, _) = refused(&inner, "role=hr", Mode::Update(1));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = refused(&inner, "role=owner", Mode::Update(1));
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn unknown_custom_field_is_404() {
        let inner = Inner::default();
        let (status, body) = refused(
            &inner,
            "customFields[][name]=Nope&customFields[][value]=1",
            Mode::Update(1),
        );
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": "Not found"}));
    }

    #[test]
    fn email_is_unique_case_insensitively() {
        let mut inner = Inner::default();
        inner.insert_confirmed_user("Ada@X.io", "A", "B", None);
        let (_, body) = refused(
            &inner,
            "email=ada@x.io&firstName=A&lastName=B",
            Mode::Create,
        );
        assert_eq!(
            body,
            json!({"error": "Validation failed: Email has already been taken",
                   "fullErrors": {"email": ["has already been taken"]}})
        );
    }
}
