//! v1 employees: the list, one employee, the readable attributes and the profile
//! picture, rendered in Personio's attribute envelopes (reference §4), plus the upsert
//! bookkeeping (changed attributes, webhook events).

use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::errors::{first, query_pairs, v1_error, v1_not_found};
use super::{Caller, Shared, SimState, employee_key};
use crate::generator::{
    COST_CODE_ATTRIBUTE, ELIGIBLE_ATTRIBUTE, SimEmployee, employment_id_for, personio_date_time,
    personio_timestamp,
};
use crate::person::{Employee, OrgRef};

/// Label, type, whether `universal_id` equals the key, and list options of an attribute.
struct AttributeMeta {
    label: &'static str,
    kind: &'static str,
    universal: bool,
    options: &'static [&'static str],
}

const fn standard(label: &'static str) -> AttributeMeta {
    AttributeMeta {
        label,
        kind: "standard",
        universal: true,
        options: &[],
    }
}

const fn date(label: &'static str) -> AttributeMeta {
    AttributeMeta {
        label,
        kind: "date",
        universal: true,
        options: &[],
    }
}

/// Known attributes, in the order they are rendered and listed.
const KNOWN: &[(&str, AttributeMeta)] = &[
    (
        "id",
        AttributeMeta {
            label: "ID",
            kind: "integer",
            universal: true,
            options: &[],
        },
    ),
    ("first_name", standard("First name")),
    ("last_name", standard("Last name")),
    ("preferred_name", standard("Name (preferred)")),
    ("email", standard("Email")),
    ("gender", standard("Gender")),
    ("status", standard("Status")),
    ("position", standard("Position")),
    ("supervisor", standard("Supervisor")),
    ("employment_type", standard("Employment type")),
    ("weekly_working_hours", standard("Weekly hours")),
    ("hire_date", date("Hire date")),
    ("termination_date", date("Termination date")),
    ("last_working_day", date("Last day of work")),
    ("created_at", date("Created at")),
    ("last_modified_at", date("Last modified")),
    ("subcompany", standard("Subcompany")),
    ("office", standard("Office")),
    ("department", standard("Department")),
    ("team", standard("Team")),
    ("profile_picture", standard("Profile Picture")),
    (
        COST_CODE_ATTRIBUTE,
        AttributeMeta {
            label: "Cost code",
            kind: "standard",
            universal: false,
            options: &[],
        },
    ),
    (
        ELIGIBLE_ATTRIBUTE,
        AttributeMeta {
            label: "Learning eligible",
            kind: "list",
            universal: false,
            options: &["yes", "no"],
        },
    ),
];

/// Builds the `{label, value, type, universal_id}` envelope of `key`.
fn envelope(key: &str, value: Value) -> Value {
    match KNOWN.iter().find(|(known, _)| *known == key) {
        Some((_, meta)) => json!({
            "label": meta.label,
            "value": value,
            "type": meta.kind,
            "universal_id": if meta.universal { json!(key) } else { Value::Null },
        }),
        None => json!({
            "label": key,
            "value": value,
            "type": "standard",
            "universal_id": if key.starts_with("dynamic_") { Value::Null } else { json!(key) },
        }),
    }
}

/// An id as Personio v1 writes it: an integer when numeric.
fn id_value(id: &str) -> Value {
    id.parse::<u64>()
        .map_or_else(|_| json!(id), |number| json!(number))
}

fn org_value(kind: &str, org: Option<&OrgRef>) -> Value {
    org.map_or(
        Value::Null,
        |org| json!({"type": kind, "attributes": {"id": id_value(&org.id), "name": org.name}}),
    )
}

fn date_value(date: Option<NaiveDate>) -> Value {
    date.map_or(Value::Null, |date| json!(personio_date_time(date)))
}

/// Values of the modelled attributes (`None` entries render as `null`).
fn modelled_values(sim: &SimEmployee, base_url: &str) -> Vec<(&'static str, Value)> {
    let employee = &sim.employee;
    let text = |value: &Option<String>| value.as_ref().map_or(Value::Null, |v| json!(v));
    let supervisor = employee.supervisor_id.as_ref().map_or(
        Value::Null,
        |id| json!({"type": "Employee", "attributes": {"id": envelope("id", id_value(id))}}),
    );
    let picture = if sim.picture.is_some() {
        json!(format!(
            "{base_url}/v1/company/employees/{}/profile-picture",
            employee.id
        ))
    } else {
        Value::Null
    };
    vec![
        ("id", id_value(&employee.id)),
        ("first_name", text(&employee.first_name)),
        ("last_name", text(&employee.last_name)),
        ("email", text(&employee.email)),
        (
            "status",
            employee
                .status
                .as_ref()
                .map_or(Value::Null, |status| json!(status.as_str())),
        ),
        ("position", text(&employee.position)),
        ("supervisor", supervisor),
        ("employment_type", text(&employee.employment_type)),
        ("hire_date", date_value(employee.hire_date)),
        ("termination_date", date_value(employee.termination_date)),
        ("last_working_day", date_value(employee.last_working_day)),
        ("created_at", json!(sim.created_at)),
        ("last_modified_at", json!(sim.last_modified_at)),
        ("office", org_value("Office", employee.office.as_ref())),
        (
            "department",
            org_value("Department", employee.department.as_ref()),
        ),
        ("team", org_value("Team", employee.team.as_ref())),
        ("profile_picture", picture),
    ]
}

/// Renders one employee; `visible` decides which keys appear (`id` always does).
fn render(sim: &SimEmployee, base_url: &str, visible: &dyn Fn(&str) -> bool) -> Value {
    let mut attributes = Map::new();
    for (key, value) in modelled_values(sim, base_url) {
        if key == "id" || visible(key) {
            attributes.insert(key.to_string(), envelope(key, value));
        }
    }
    for (key, value) in &sim.employee.extra {
        if !attributes.contains_key(key) && visible(key) {
            attributes.insert(key.clone(), envelope(key, value.clone()));
        }
    }
    json!({"type": "Employee", "attributes": attributes})
}

/// Which attributes a request may see: readable, and in `attributes[]` when given.
fn visibility<'a>(caller: &'a Caller, projection: &'a [String]) -> impl Fn(&str) -> bool + 'a {
    move |key: &str| {
        caller.readable(key) && (projection.is_empty() || projection.iter().any(|p| p == key))
    }
}

fn projection(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(key, _)| key == "attributes[]" || key == "attributes")
        .flat_map(|(_, value)| value.split(',').map(str::to_string))
        .collect()
}

/// Parses `updated_since` (`YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD`, taken as UTC).
fn parse_since(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(moment) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S") {
        return Some(moment.and_utc());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|moment| moment.and_utc())
}

fn last_change(state: &SimState, sim: &SimEmployee, key: Option<&str>) -> Option<DateTime<Utc>> {
    let recorded = state.changed_at.get(&sim.employee.id);
    let specific = key.and_then(|key| recorded.and_then(|changes| changes.get(key)).copied());
    specific.or_else(|| {
        DateTime::parse_from_rfc3339(&sim.last_modified_at)
            .ok()
            .map(|moment| moment.with_timezone(&Utc))
    })
}

/// Employees changed after `since`; with a projection, only those whose projected
/// attributes changed (reference §4.1).
fn changed_since<'a>(
    state: &'a SimState,
    since: DateTime<Utc>,
    projection: &[String],
) -> Vec<&'a SimEmployee> {
    state
        .employees
        .values()
        .filter(|sim| {
            if projection.is_empty() {
                last_change(state, sim, None).is_some_and(|at| at > since)
            } else {
                projection
                    .iter()
                    .any(|key| last_change(state, sim, Some(key)).is_some_and(|at| at > since))
            }
        })
        .collect()
}

/// Validated paging of the list.
struct Paging {
    limit: usize,
    offset: usize,
}

fn paging(pairs: &[(String, String)]) -> Result<Paging, Box<Response>> {
    let limit = match first(pairs, "limit") {
        None => 50,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(limit) if (1..=100).contains(&limit) => limit,
            _ => {
                return Err(Box::new(v1_error(
                    StatusCode::BAD_REQUEST,
                    400,
                    "The limit must be between 1 and 100",
                )));
            }
        },
    };
    let offset = match first(pairs, "offset") {
        None => 0,
        Some(raw) => raw.trim().parse::<usize>().map_err(|_| {
            Box::new(v1_error(
                StatusCode::BAD_REQUEST,
                400,
                "The offset must be a non-negative integer",
            ))
        })?,
    };
    Ok(Paging { limit, offset })
}

/// `GET /v1/company/employees`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let projection = projection(&pairs);
    let state = shared.state();
    let visible = visibility(&caller, &projection);
    if let Some(raw) = first(&pairs, "updated_since") {
        // `email`, `limit` and `offset` are ignored with `updated_since` (reference §4.1).
        let Some(since) = parse_since(raw) else {
            return v1_error(StatusCode::BAD_REQUEST, 400, "Invalid updated_since");
        };
        let matching = changed_since(&state, since, &projection);
        let data: Vec<Value> = matching
            .iter()
            .map(|sim| render(sim, &shared.base_url, &visible))
            .collect();
        let total = data.len();
        return list_body(data, total, 0, total.max(1));
    }
    let paging = match paging(&pairs) {
        Ok(paging) => paging,
        Err(response) => return *response,
    };
    let email = first(&pairs, "email");
    let matching: Vec<&SimEmployee> = state
        .employees
        .values()
        .filter(|sim| {
            email.is_none_or(|wanted| {
                sim.employee
                    .email
                    .as_deref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(wanted))
            })
        })
        .collect();
    // Personio may serve fewer rows than `limit` (the page cap simulates that).
    let served = state
        .page_cap
        .map_or(paging.limit, |cap| paging.limit.min(cap.max(1)));
    let data: Vec<Value> = matching
        .iter()
        .skip(paging.offset)
        .take(served)
        .map(|sim| render(sim, &shared.base_url, &visible))
        .collect();
    list_body(data, matching.len(), paging.offset, paging.limit)
}

fn list_body(data: Vec<Value>, total: usize, offset: usize, limit: usize) -> Response {
    axum::Json(json!({
        "success": true,
        "metadata": {
            "total_elements": total,
            "current_page": offset / limit,
            "total_pages": total.div_ceil(limit),
        },
        "offset": offset,
        "limit": limit,
        "data": data,
    }))
    .into_response()
}

/// `GET /v1/company/employees/{id}`.
pub(crate) async fn one(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let projection = projection(&pairs);
    let state = shared.state();
    if id.parse::<u64>().is_err() {
        return v1_not_found();
    }
    let Some(sim) = state.employees.get(&employee_key(&id)) else {
        return v1_not_found();
    };
    let visible = visibility(&caller, &projection);
    axum::Json(json!({"success": true, "data": render(sim, &shared.base_url, &visible)}))
        .into_response()
}

/// `GET /v1/company/employees/attributes` (and `/custom-attributes`).
pub(crate) async fn attributes(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let state = shared.state();
    let mut keys: Vec<String> = KNOWN.iter().map(|(key, _)| (*key).to_string()).collect();
    for sim in state.employees.values() {
        for key in sim.employee.extra.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    let data: Vec<Value> = keys
        .iter()
        .filter(|key| caller.readable(key))
        .map(|key| {
            let meta = KNOWN.iter().find(|(known, _)| known == key).map(|(_, m)| m);
            let envelope = envelope(key, Value::Null);
            json!({
                "key": key,
                "label": envelope["label"],
                "type": envelope["type"],
                "universal_id": envelope["universal_id"],
                "options": meta.map_or(&[][..], |meta| meta.options),
            })
        })
        .collect();
    axum::Json(json!({"success": true, "data": data})).into_response()
}

fn picture_response(shared: &Shared, caller: &Caller, id: &str) -> Response {
    let state = shared.state();
    if !caller.readable("profile_picture") {
        return picture_not_found();
    }
    let picture = state
        .employees
        .get(&employee_key(id))
        .and_then(|sim| sim.picture.clone());
    match picture {
        Some(bytes) => {
            let mut response = bytes.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            response
        }
        None => picture_not_found(),
    }
}

fn picture_not_found() -> Response {
    v1_error(StatusCode::NOT_FOUND, 404, "Etwas ist schiefgelaufen ...")
}

/// `GET /v1/company/employees/{id}/profile-picture/{width}`: the original bytes whatever
/// the width (the simulator does not resize).
pub(crate) async fn picture(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((id, width)): Path<(String, String)>,
) -> Response {
    if width.parse::<u32>().is_err() {
        return picture_not_found();
    }
    picture_response(&shared, &caller, &id)
}

/// `GET /v1/company/employees/{id}/profile-picture` (the attribute's URL, no width).
pub(crate) async fn picture_original(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    picture_response(&shared, &caller, &id)
}

/// Attribute keys whose change fires `person.updated`.
fn is_person_attribute(key: &str) -> bool {
    matches!(
        key,
        "first_name" | "last_name" | "email" | "preferred_name" | "gender"
    ) || key.starts_with("dynamic_")
}

/// Attribute keys that differ between two versions of an employee.
fn changed_attributes(before: &SimEmployee, after: &SimEmployee) -> Vec<String> {
    let (old, new) = (&before.employee, &after.employee);
    let mut changed: Vec<String> = Vec::new();
    let mut check = |key: &str, differs: bool| {
        if differs {
            changed.push(key.to_string());
        }
    };
    check("first_name", old.first_name != new.first_name);
    check("last_name", old.last_name != new.last_name);
    check("email", old.email != new.email);
    check("status", old.status != new.status);
    check("position", old.position != new.position);
    check("department", old.department != new.department);
    check("office", old.office != new.office);
    check("team", old.team != new.team);
    check("supervisor", old.supervisor_id != new.supervisor_id);
    check("hire_date", old.hire_date != new.hire_date);
    check(
        "termination_date",
        old.termination_date != new.termination_date,
    );
    check(
        "last_working_day",
        old.last_working_day != new.last_working_day,
    );
    check(
        "employment_type",
        old.employment_type != new.employment_type,
    );
    check("profile_picture", before.picture != after.picture);
    let extra_keys: std::collections::BTreeSet<&String> =
        old.extra.keys().chain(new.extra.keys()).collect();
    for key in extra_keys {
        check(key, old.extra.get(key) != new.extra.get(key));
    }
    changed
}

fn every_attribute(employee: &Employee) -> Vec<String> {
    let mut keys: Vec<String> = KNOWN
        .iter()
        .map(|(key, _)| (*key).to_string())
        .filter(|key| key != "id")
        .collect();
    keys.extend(employee.extra.keys().cloned());
    keys
}

/// Stores `sim` (create or replace) and returns the webhook events to emit.
pub(crate) fn upsert(shared: &Shared, mut sim: SimEmployee) -> Vec<(String, Value)> {
    let now = Utc::now();
    sim.employee.has_profile_picture = sim.picture.is_some();
    sim.last_modified_at = personio_timestamp(now);
    let id = sim.employee.id.clone();
    let mut state = shared.state();
    let previous = state.employees.get(&employee_key(&id)).cloned();
    let changed = match &previous {
        Some(before) => changed_attributes(before, &sim),
        None => every_attribute(&sim.employee),
    };
    if sim.created_at.is_empty() {
        sim.created_at = previous.as_ref().map_or_else(
            || personio_timestamp(now),
            |before| before.created_at.clone(),
        );
    }
    let changes = state.changed_at.entry(id.clone()).or_default();
    for key in &changed {
        changes.insert(key.clone(), now);
    }
    state.employees.insert(employee_key(&id), sim);
    drop(state);
    events_for(&id, previous.is_none(), &changed)
}

fn events_for(id: &str, created: bool, changed: &[String]) -> Vec<(String, Value)> {
    let person = json!({"id": id});
    let employment = json!({"id": employment_id_for(id), "person_id": id});
    if created {
        return vec![
            ("person.created".to_string(), person),
            ("employment.created".to_string(), employment),
        ];
    }
    let mut events = Vec::new();
    if changed.iter().any(|key| is_person_attribute(key)) {
        events.push(("person.updated".to_string(), person));
    }
    let employment_change = changed
        .iter()
        .any(|key| !is_person_attribute(key) && key != "profile_picture");
    if employment_change {
        events.push(("employment.updated".to_string(), employment));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::generate_at;

    fn sample() -> SimEmployee {
        let today = NaiveDate::from_ymd_opt(2025, 3, 15).unwrap();
        generate_at(3, 5, today).employees[1].clone()
    }

    #[test]
    fn render_uses_envelopes_and_offset_dates() {
        let mut sim = sample();
        sim.picture = Some(vec![1, 2, 3]);
        let value = render(&sim, "http://sim", &|_| true);
        let attributes = &value["attributes"];
        assert_eq!(value["type"], "Employee");
        assert_eq!(attributes["id"]["value"], 1002);
        assert_eq!(attributes["id"]["type"], "integer");
        assert_eq!(
            attributes["supervisor"]["value"]["attributes"]["id"]["value"],
            1001
        );
        assert_eq!(attributes["department"]["value"]["type"], "Department");
        assert!(attributes["department"]["value"]["attributes"]["id"].is_u64());
        let hire = attributes["hire_date"]["value"].as_str().unwrap();
        assert!(
            hire.ends_with(":00+01:00") || hire.ends_with(":00+02:00"),
            "{hire}"
        );
        assert_eq!(attributes["hire_date"]["type"], "date");
        assert!(attributes["weekly_working_hours"]["value"].is_string());
        assert_eq!(attributes[COST_CODE_ATTRIBUTE]["universal_id"], Value::Null);
        assert_eq!(
            attributes["profile_picture"]["value"],
            "http://sim/v1/company/employees/1002/profile-picture"
        );
    }

    #[test]
    fn render_omits_invisible_attributes_but_keeps_id() {
        let value = render(&sample(), "http://sim", &|key| key == "email");
        let attributes = value["attributes"].as_object().unwrap();
        let keys: Vec<&String> = attributes.keys().collect();
        assert_eq!(keys, ["email", "id"]);
    }

    #[test]
    fn changes_map_to_the_right_events() {
        let before = sample();
        let mut after = before.clone();
        after.employee.first_name = Some("Changed".into());
        let changed = changed_attributes(&before, &after);
        let names: Vec<String> = events_for("1002", false, &changed)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["person.updated"]);
        after.employee.position = Some("Boss".into());
        let changed = changed_attributes(&before, &after);
        assert_eq!(events_for("1002", false, &changed).len(), 2);
        let mut picture_only = before.clone();
        picture_only.picture = Some(vec![9]);
        assert!(events_for("1002", false, &changed_attributes(&before, &picture_only)).is_empty());
        assert_eq!(events_for("1", true, &[]).len(), 2);
    }

    #[test]
    fn since_accepts_both_forms() {
        assert!(parse_since("2022-12-24T08:15:30").is_some());
        assert!(parse_since("2022-12-24").is_some());
        assert!(parse_since("yesterday").is_none());
    }
}
