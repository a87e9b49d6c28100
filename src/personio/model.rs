//! Personio wire formats and their lenient parsing into the crate's types.
//!
//! Everything here is pure: JSON in, typed values out. The v1 employee list wraps every
//! attribute in an envelope `{label, value, type, universal_id}`; ids arrive as integers
//! or strings; unset organisational references may be `null`, missing, an empty object
//! or (PHP-style) an empty array. Every parser accepts all of these and ignores unknown
//! fields (reference §4.2, §13.10).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::employee::parse_personio_date;
use crate::domain::{Employee, EmployeeStatus, OrgRef, Secret};

/// One attribute the credential may read, from `GET /v1/company/employees/attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeInfo {
    /// The attribute key (`first_name`, `dynamic_24407`, …): the key used in employee data.
    pub key: String,
    /// The localised display label (never key on it).
    pub label: String,
    /// The attribute type as Personio writes it (JSON `type`: `standard`, `date`, `list`, …).
    pub kind: String,
}

/// A department or team from `GET /v2/org-units/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUnit {
    /// The unit id as a decimal string.
    pub id: String,
    /// The unit name (empty when Personio sends none).
    pub name: String,
    /// The parent unit id, when the unit has one.
    pub parent_id: Option<String>,
}

/// What to register (or update) as a Personio webhook subscription (`POST /v2/webhooks`).
///
/// Deliberately not `Serialize`: the body is built by the client, the one place allowed to
/// send the token. `Debug` shows the token as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// The HTTPS delivery URL.
    pub url: String,
    /// Free-text description (required by Personio).
    pub description: String,
    /// `ENABLED` or `DISABLED` (Personio defaults to `DISABLED`, so always send it).
    pub status: String,
    /// `TOKEN`, `NONE` or `CUSTOM`.
    pub auth_type: String,
    /// Sent verbatim by Personio in the `Authorization` header of every delivery.
    pub token: Secret,
    /// Event names such as `person.updated`.
    pub enabled_events: Vec<String>,
}

/// A webhook subscription as Personio reports it. The token Personio echoes back is
/// never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The webhook id (a UUID).
    pub id: String,
    /// The delivery URL.
    pub url: String,
    /// The description, if sent.
    pub description: Option<String>,
    /// `ENABLED` / `DISABLED`, if sent.
    pub status: Option<String>,
    /// `TOKEN` / `NONE` / `CUSTOM`, if sent.
    pub auth_type: Option<String>,
    /// The subscribed event names (empty if not sent).
    pub enabled_events: Vec<String>,
}

/// One page of `GET /v1/company/employees`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmployeePage {
    /// The employees of the page, in order.
    pub employees: Vec<Employee>,
    /// `metadata.total_elements`, when present and numeric.
    pub total_elements: Option<u64>,
}

/// A successful token answer of `POST /v2/auth/token`.
#[derive(Clone)]
pub(crate) struct TokenAnswer {
    /// The bearer token.
    pub access_token: Secret,
    /// Lifetime in seconds, when given.
    pub expires_in: Option<u64>,
    /// The granted scopes (space-separated), when given.
    pub scope: Option<String>,
}

/// One page of a v2 list (`_data` + `_meta.links.next.href`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebhookPage {
    /// The webhooks of the page.
    pub webhooks: Vec<Webhook>,
    /// The `next` link, when another page exists.
    pub next_href: Option<String>,
}

/// Attribute keys that [`parse_employee`] maps onto named [`Employee`] fields; every other
/// key goes to `extra`.
const MODELLED_KEYS: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "email",
    "status",
    "position",
    "department",
    "office",
    "team",
    "supervisor",
    "hire_date",
    "termination_date",
    "last_working_day",
    "last_working_date",
    "employment_type",
    "profile_picture",
];

/// Parses a JSON document, naming what was expected on failure.
pub(crate) fn parse_json(body: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|err| format!("{what} is not valid JSON: {err}"))
}

/// Parses the body of one page of `GET /v1/company/employees`.
pub(crate) fn parse_employee_page(body: &[u8]) -> Result<EmployeePage, String> {
    let doc = parse_json(body, "employee list")?;
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "employee list has no `data` array".to_string())?;
    let employees = data
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_employee(item).map_err(|err| format!("employee #{index} of the page: {err}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total_elements = doc
        .get("metadata")
        .and_then(|meta| meta.get("total_elements"))
        .and_then(as_u64_lenient);
    Ok(EmployeePage {
        employees,
        total_elements,
    })
}

/// Parses the body of `GET /v1/company/employees/{id}` (`{"success": true, "data": {…}}`).
pub(crate) fn parse_single_employee(body: &[u8]) -> Result<Employee, String> {
    let doc = parse_json(body, "employee")?;
    let data = doc
        .get("data")
        .ok_or_else(|| "employee answer has no `data`".to_string())?;
    parse_employee(data)
}

/// Parses one v1 employee item `{"type": "Employee", "attributes": {…}}` (a bare attribute
/// map is accepted too). Fails only when no usable `id` is present.
pub fn parse_employee(item: &Value) -> Result<Employee, String> {
    let attributes = item
        .get("attributes")
        .and_then(Value::as_object)
        .or_else(|| item.as_object().filter(|map| map.contains_key("id")))
        .ok_or_else(|| "employee has no `attributes` object".to_string())?;
    let id = attributes
        .get("id")
        .map(envelope_value)
        .and_then(id_string)
        .ok_or_else(|| "employee has no usable `id`".to_string())?;
    let mut employee = Employee::with_id(id);
    apply_modelled_attributes(&mut employee, attributes);
    employee.extra = extra_attributes(attributes);
    Ok(employee)
}

/// Fills the named fields of `employee` from the attribute map.
fn apply_modelled_attributes(employee: &mut Employee, attributes: &Map<String, Value>) {
    let value_of = |key: &str| attributes.get(key).map(envelope_value);
    employee.first_name = value_of("first_name").and_then(text);
    employee.last_name = value_of("last_name").and_then(text);
    employee.email = value_of("email").and_then(text);
    employee.status = value_of("status")
        .and_then(text)
        .filter(|status| !status.trim().is_empty())
        .map(|status| EmployeeStatus::parse(status.trim()));
    employee.position = value_of("position").and_then(text);
    employee.department = value_of("department").and_then(org_ref);
    employee.office = value_of("office").and_then(org_ref);
    employee.team = value_of("team").and_then(org_ref);
    employee.supervisor_id = value_of("supervisor").and_then(supervisor_id);
    employee.hire_date = value_of("hire_date").and_then(date);
    employee.termination_date = value_of("termination_date").and_then(date);
    employee.last_working_day = value_of("last_working_day")
        .and_then(date)
        .or_else(|| value_of("last_working_date").and_then(date));
    employee.employment_type = value_of("employment_type").and_then(text);
    employee.has_profile_picture = value_of("profile_picture")
        .and_then(Value::as_str)
        .is_some_and(|url| !url.trim().is_empty());
}

/// Every attribute not modelled by a named field, key → envelope `value`.
fn extra_attributes(attributes: &Map<String, Value>) -> BTreeMap<String, Value> {
    attributes
        .iter()
        .filter(|(key, _)| !MODELLED_KEYS.contains(&key.as_str()))
        .map(|(key, envelope)| (key.clone(), envelope_value(envelope).clone()))
        .collect()
}

/// The `value` of an attribute envelope; a value that is not an envelope is taken as is,
/// and an envelope without `value` counts as `null`.
fn envelope_value(envelope: &Value) -> &Value {
    match envelope.as_object() {
        Some(map) if map.contains_key("value") => map.get("value").unwrap_or(&Value::Null),
        Some(map) if map.contains_key("label") || map.contains_key("universal_id") => &Value::Null,
        _ => envelope,
    }
}

/// A scalar as text: strings as given, numbers and booleans in their JSON spelling.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// An id as a decimal string: integers, integral floats and non-empty strings.
pub(crate) fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                Some(int.to_string())
            } else if let Some(int) = number.as_u64() {
                Some(int.to_string())
            } else {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0 && float.is_finite())
                    .map(|float| format!("{float:.0}"))
            }
        }
        Value::String(text) => {
            let trimmed = text.trim();
            (!trimmed.is_empty()).then(|| trimmed.to_string())
        }
        _ => None,
    }
}

/// A non-negative integer given as a number or a numeric string.
fn as_u64_lenient(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A date or date-time string, date part as written.
fn date(value: &Value) -> Option<chrono::NaiveDate> {
    value
        .as_str()
        .and_then(|text| parse_personio_date(text.trim()))
}

/// The `attributes` of a nested `{type, attributes: {…}}` object, or the object itself
/// when it is flat. Empty objects and arrays mean "none".
fn nested_attributes(value: &Value) -> Option<&Map<String, Value>> {
    let map = value.as_object()?;
    match map.get("attributes") {
        Some(Value::Object(inner)) => Some(inner),
        Some(_) => None,
        None => Some(map),
    }
}

/// A department / office / team reference; `None` unless an id is present.
fn org_ref(value: &Value) -> Option<OrgRef> {
    let attributes = nested_attributes(value)?;
    let id = attributes
        .get("id")
        .map(envelope_value)
        .and_then(id_string)?;
    let name = attributes
        .get("name")
        .map(envelope_value)
        .and_then(text)
        .unwrap_or_default();
    Some(OrgRef { id, name })
}

/// The supervisor id from `{type: "Employee", attributes: {id: <envelope or id>}}` or a
/// plain id.
fn supervisor_id(value: &Value) -> Option<String> {
    if let Some(id) = id_string(value) {
        return Some(id);
    }
    let attributes = nested_attributes(value)?;
    attributes.get("id").map(envelope_value).and_then(id_string)
}

/// Parses `GET /v1/company/employees/attributes`; entries without a key are skipped.
pub(crate) fn parse_attributes(body: &[u8]) -> Result<Vec<AttributeInfo>, String> {
    let doc = parse_json(body, "attribute list")?;
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "attribute list has no `data` array".to_string())?;
    Ok(data.iter().filter_map(attribute_info).collect())
}

/// One attribute description.
fn attribute_info(item: &Value) -> Option<AttributeInfo> {
    let key = item
        .get("key")
        .and_then(Value::as_str)
        .or_else(|| item.get("universal_id").and_then(Value::as_str))
        .filter(|key| !key.is_empty())?;
    let label = item.get("label").and_then(text).unwrap_or_default();
    let kind = item.get("type").and_then(text).unwrap_or_default();
    Some(AttributeInfo {
        key: key.to_string(),
        label,
        kind,
    })
}

/// Unwraps a v2 single-resource body: `{"_data": {…}}`, `{"data": {…}}` or the object
/// itself.
fn unwrap_resource(doc: &Value) -> &Value {
    ["_data", "data"]
        .iter()
        .find_map(|key| doc.get(*key).filter(|inner| inner.is_object()))
        .unwrap_or(doc)
}

/// Parses `GET /v2/org-units/{id}`. `parent_id` may be a number, a string, `null`,
/// absent, or given as `parent: {id}`.
pub(crate) fn parse_org_unit(body: &[u8]) -> Result<OrgUnit, String> {
    let doc = parse_json(body, "org unit")?;
    let unit = unwrap_resource(&doc);
    let id = unit
        .get("id")
        .and_then(id_string)
        .ok_or_else(|| "org unit has no usable `id`".to_string())?;
    let name = unit.get("name").and_then(text).unwrap_or_default();
    let parent_id = unit.get("parent_id").and_then(id_string).or_else(|| {
        unit.get("parent")
            .and_then(|p| p.get("id"))
            .and_then(id_string)
    });
    Ok(OrgUnit {
        id,
        name,
        parent_id,
    })
}

/// Parses one webhook object (the echoed token is dropped).
pub(crate) fn parse_webhook(value: &Value) -> Result<Webhook, String> {
    let id = value
        .get("id")
        .and_then(id_string)
        .ok_or_else(|| "webhook has no usable `id`".to_string())?;
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("webhook {id} has no `url`"))?
        .to_string();
    let optional = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let enabled_events = value
        .get("enabled_events")
        .and_then(Value::as_array)
        .map(|events| events.iter().filter_map(text).collect())
        .unwrap_or_default();
    Ok(Webhook {
        id,
        url,
        description: optional("description"),
        status: optional("status"),
        auth_type: optional("auth_type"),
        enabled_events,
    })
}

/// Parses the body of a create / update / get webhook answer.
pub(crate) fn parse_webhook_body(body: &[u8]) -> Result<Webhook, String> {
    let doc = parse_json(body, "webhook")?;
    parse_webhook(unwrap_resource(&doc))
}

/// Parses one page of `GET /v2/webhooks` (`_data` array, `data` array or a bare array).
pub(crate) fn parse_webhook_page(body: &[u8]) -> Result<WebhookPage, String> {
    let doc = parse_json(body, "webhook list")?;
    let items = doc
        .as_array()
        .or_else(|| doc.get("_data").and_then(Value::as_array))
        .or_else(|| doc.get("data").and_then(Value::as_array))
        .ok_or_else(|| "webhook list has no `_data` array".to_string())?;
    let webhooks = items
        .iter()
        .map(parse_webhook)
        .collect::<Result<Vec<_>, _>>()?;
    let next_href = doc
        .pointer("/_meta/links/next/href")
        .and_then(Value::as_str)
        .filter(|href| !href.trim().is_empty())
        .map(str::to_string);
    Ok(WebhookPage {
        webhooks,
        next_href,
    })
}

/// Parses a `POST /v2/auth/token` success body.
pub(crate) fn parse_token(body: &[u8]) -> Result<TokenAnswer, String> {
    let doc = parse_json(body, "token answer")?;
    let access_token = doc
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| "token answer has no `access_token`".to_string())?;
    let expires_in = doc.get("expires_in").and_then(as_u64_lenient);
    let scope = doc.get("scope").and_then(Value::as_str).map(str::to_string);
    Ok(TokenAnswer {
        access_token: Secret::new(access_token),
        expires_in,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The list example of the reference, §4.1.
    const REFERENCE_PAGE: &str = r#"{
  "success": true,
  "metadata": {"total_elements": 230, "current_page": 0, "total_pages": 3},
  "offset": 0,
  "limit": 100,
  "data": [
    {"type": "Employee",
     "attributes": {
       "id":          {"label": "ID", "value": 4711, "type": "integer", "universal_id": "id"},
       "first_name":  {"label": "First name", "value": "Ada", "type": "standard", "universal_id": "first_name"},
       "last_name":   {"label": "Last name", "value": "Lovelace", "type": "standard", "universal_id": "last_name"},
       "preferred_name": {"label": "Name (preferred)", "value": "Ada L.", "type": "standard", "universal_id": "preferred_name"},
       "email":       {"label": "Email", "value": "ada@example.com", "type": "standard", "universal_id": "email"},
       "status":      {"label": "Status", "value": "active", "type": "standard", "universal_id": "status"},
       "position":    {"label": "Position", "value": "Engineer", "type": "standard", "universal_id": "position"},
       "hire_date":   {"label": "Hire date", "value": "2021-04-01T00:00:00+02:00", "type": "date", "universal_id": "hire_date"},
       "termination_date": {"label": "Termination date", "value": null, "type": "date", "universal_id": "termination_date"},
       "last_working_day": {"label": "Last day of work", "value": null, "type": "date", "universal_id": "last_working_day"},
       "department":  {"label": "Department", "value": {"type": "Department", "attributes": {"id": 281521, "name": "Support"}}, "type": "standard", "universal_id": "department"},
       "office":      {"label": "Office", "value": {"type": "Office", "attributes": {"id": 131014, "name": "Munich"}}, "type": "standard", "universal_id": "office"},
       "team":        {"label": "Team", "value": {"type": "Team", "attributes": {"id": 59026, "name": "Platform"}}, "type": "standard", "universal_id": "team"},
       "subcompany":  {"label": "Subcompany", "value": {"type": "Subcompany", "attributes": {"id": 7033, "name": "ACME GmbH"}}, "type": "standard", "universal_id": "subcompany"},
       "supervisor":  {"label": "Supervisor", "value": {"type": "Employee", "attributes": {"id": {"label": "ID", "value": 42, "type": "integer", "universal_id": "id"}}}, "type": "standard", "universal_id": "supervisor"},
       "profile_picture": {"label": "Profile Picture", "value": "https://api.personio.de/v1/company/employees/4711/profile-picture", "type": "standard", "universal_id": "profile_picture"},
       "last_modified_at": {"label": "Last modified", "value": "2025-02-01T09:00:00+01:00", "type": "date", "universal_id": "last_modified_at"},
       "dynamic_24407": {"label": "Title", "value": "Dr", "type": "standard", "universal_id": null}
     }}
  ]
}"#;

    fn envelope(value: Value) -> Value {
        json!({"label": "L", "value": value, "type": "standard", "universal_id": null})
    }

    fn employee_with(attributes: Value) -> Employee {
        parse_employee(&json!({"type": "Employee", "attributes": attributes})).unwrap()
    }

    #[test]
    fn reference_example_parses_completely() {
        let page = parse_employee_page(REFERENCE_PAGE.as_bytes()).unwrap();
        assert_eq!(page.total_elements, Some(230));
        assert_eq!(page.employees.len(), 1);
        let ada = &page.employees[0];
        assert_eq!(ada.id, "4711");
        assert_eq!(ada.first_name.as_deref(), Some("Ada"));
        assert_eq!(ada.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
        assert_eq!(ada.status, Some(EmployeeStatus::Active));
        assert_eq!(ada.position.as_deref(), Some("Engineer"));
        assert_eq!(
            ada.department,
            Some(OrgRef {
                id: "281521".into(),
                name: "Support".into()
            })
        );
        assert_eq!(ada.office.as_ref().unwrap().name, "Munich");
        assert_eq!(ada.team.as_ref().unwrap().id, "59026");
        assert_eq!(ada.supervisor_id.as_deref(), Some("42"));
        assert_eq!(ada.hire_date.unwrap().to_string(), "2021-04-01");
        assert_eq!(ada.termination_date, None);
        assert_eq!(ada.last_working_day, None);
        assert!(ada.has_profile_picture);
        let extra_keys: Vec<&str> = ada.extra.keys().map(String::as_str).collect();
        assert_eq!(
            extra_keys,
            [
                "dynamic_24407",
                "last_modified_at",
                "preferred_name",
                "subcompany"
            ]
        );
        assert_eq!(ada.extra["dynamic_24407"], json!("Dr"));
        assert_eq!(
            ada.extra["subcompany"]["attributes"]["name"],
            json!("ACME GmbH")
        );
    }

    #[test]
    fn nulls_and_missing_attributes_are_unknown() {
        let employee = employee_with(json!({
            "id": envelope(json!(7)),
            "first_name": envelope(Value::Null),
            "status": envelope(Value::Null),
            "department": envelope(Value::Null),
            "office": envelope(json!({})),
            "team": envelope(json!({"type": "Team", "attributes": []})),
            "supervisor": envelope(json!({"type": "Employee", "attributes": {}})),
            "hire_date": envelope(json!("not a date")),
            "profile_picture": envelope(Value::Null),
        }));
        assert_eq!(employee, Employee::with_id("7"));
    }

    #[test]
    fn whitelisted_away_attributes_are_simply_absent() {
        let employee = employee_with(json!({
            "id": envelope(json!(5)),
            "email": envelope(json!("x@example.com")),
        }));
        assert_eq!(employee.email.as_deref(), Some("x@example.com"));
        assert_eq!(employee.first_name, None);
        assert_eq!(employee.status, None);
        assert_eq!(employee.department, None);
        assert!(!employee.has_profile_picture);
        assert!(employee.extra.is_empty());
    }

    #[test]
    fn supervisor_shapes_are_all_accepted() {
        let shapes = [
            json!({"type": "Employee", "attributes": {"id": {"label": "ID", "value": 42, "type": "integer"}}}),
            json!({"type": "Employee", "attributes": {"id": 42}}),
            json!({"type": "Employee", "attributes": {"id": "42"}}),
            json!({"id": 42}),
            json!(42),
            json!("42"),
        ];
        for shape in shapes {
            let employee = employee_with(
                json!({"id": envelope(json!(1)), "supervisor": envelope(shape.clone())}),
            );
            assert_eq!(employee.supervisor_id.as_deref(), Some("42"), "{shape}");
        }
        let none =
            employee_with(json!({"id": envelope(json!(1)), "supervisor": envelope(json!([]))}));
        assert_eq!(none.supervisor_id, None);
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        let employee = employee_with(json!({
            "id": envelope(json!("4711")),
            "department": envelope(json!({"type": "Department", "attributes": {"id": "281521", "name": "Support"}})),
            "position": envelope(json!(12)),
            "weekly_working_hours": envelope(json!("40")),
        }));
        assert_eq!(employee.id, "4711");
        assert_eq!(employee.department.unwrap().id, "281521");
        assert_eq!(employee.position.as_deref(), Some("12"));
        assert_eq!(employee.extra["weekly_working_hours"], json!("40"));
        assert_eq!(id_string(&json!(4711.0)).as_deref(), Some("4711"));
        assert_eq!(id_string(&json!(1.5)), None);
        assert_eq!(id_string(&json!("  ")), None);
    }

    #[test]
    fn dates_statuses_and_aliases() {
        let employee = employee_with(json!({
            "id": envelope(json!(3)),
            "status": envelope(json!("Inactive")),
            "termination_date": envelope(json!("2025-03-31")),
            "last_working_date": envelope(json!("2025-03-28T00:00:00+01:00")),
            "employment_type": envelope(json!("external")),
        }));
        assert!(employee.is_inactive());
        assert_eq!(employee.termination_date.unwrap().to_string(), "2025-03-31");
        assert_eq!(employee.last_working_day.unwrap().to_string(), "2025-03-28");
        assert_eq!(employee.employment_type.as_deref(), Some("external"));
        let other =
            employee_with(json!({"id": envelope(json!(3)), "status": envelope(json!("retired"))}));
        assert_eq!(other.status, Some(EmployeeStatus::Other("retired".into())));
    }

    #[test]
    fn employee_without_id_is_rejected() {
        assert!(parse_employee(&json!({"type": "Employee", "attributes": {}})).is_err());
        assert!(parse_employee(&json!({"attributes": {"id": envelope(Value::Null)}})).is_err());
        assert!(parse_employee(&json!("nonsense")).is_err());
        assert!(parse_employee_page(br#"{"success": true}"#).is_err());
        assert!(parse_employee_page(b"<html>").is_err());
    }

    #[test]
    fn single_employee_and_string_totals() {
        let body = json!({"success": true, "data": {"type": "Employee", "attributes": {"id": envelope(json!(9))}}});
        assert_eq!(
            parse_single_employee(body.to_string().as_bytes())
                .unwrap()
                .id,
            "9"
        );
        let page = json!({"success": true, "metadata": {"total_elements": "12"}, "data": []});
        let parsed = parse_employee_page(page.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.total_elements, Some(12));
        assert!(parsed.employees.is_empty());
    }

    #[test]
    fn attribute_list_parses_and_skips_keyless_entries() {
        let body = json!({"success": true, "data": [
            {"key": "first_name", "label": "First Name", "type": "standard", "universal_id": "first_name", "options": []},
            {"key": "dynamic_2", "label": "Marital status", "type": "list", "universal_id": null, "options": ["married"]},
            {"label": "No key"}
        ]});
        let attributes = parse_attributes(body.to_string().as_bytes()).unwrap();
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[1].key, "dynamic_2");
        assert_eq!(attributes[1].kind, "list");
    }

    #[test]
    fn org_units_parse_leniently() {
        let flat = parse_org_unit(br#"{"id": 401, "name": "Support", "parent_id": 400}"#).unwrap();
        assert_eq!(flat.parent_id.as_deref(), Some("400"));
        let wrapped =
            parse_org_unit(br#"{"_data": {"id": "402", "name": "Ops", "parent_id": "400"}}"#)
                .unwrap();
        assert_eq!(wrapped.id, "402");
        assert_eq!(wrapped.parent_id.as_deref(), Some("400"));
        let root = parse_org_unit(br#"{"id": 400, "name": "All", "parent_id": null}"#).unwrap();
        assert_eq!(root.parent_id, None);
        let nested = parse_org_unit(br#"{"id": 5, "parent": {"id": 4}}"#).unwrap();
        assert_eq!(nested.parent_id.as_deref(), Some("4"));
        assert_eq!(nested.name, "");
        assert!(parse_org_unit(br#"{"name": "x"}"#).is_err());
    }

    #[test]
    fn webhooks_parse_and_drop_the_token() {
        let body = json!({"id": "9a4f", "url": "https://x/hook", "description": "LMS sync",
            "status": "ENABLED", "auth_type": "TOKEN", "token": "Bearer secret-token",
            "enabled_events": ["person.created", "person.updated"]});
        let webhook = parse_webhook_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(webhook.enabled_events.len(), 2);
        assert!(!format!("{webhook:?}").contains("secret-token"));
        let page = json!({"_data": [body], "_meta": {"links": {"next": {"href": "/v2/webhooks?cursor=c1"}}}});
        let parsed = parse_webhook_page(page.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.webhooks[0].id, "9a4f");
        assert_eq!(parsed.next_href.as_deref(), Some("/v2/webhooks?cursor=c1"));
        let last =
            parse_webhook_page(br#"{"_data": [], "_meta": {"links": {"self": {"href": "x"}}}}"#)
                .unwrap();
        assert_eq!(last.next_href, None);
        assert!(parse_webhook_body(br#"{"url": "https://x"}"#).is_err());
    }

    #[test]
    fn webhook_spec_debug_hides_the_token() {
        let spec = WebhookSpec {
            url: "https://x".into(),
            description: "d".into(),
            status: "ENABLED".into(),
            auth_type: "TOKEN".into(),
            token: Secret::new("Bearer hunter2"),
            enabled_events: vec![],
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn token_answer_parses() {
        let token = parse_token(
            br#"{"access_token": "papi-1", "token_type": "Bearer", "expires_in": "86400"}"#,
        )
        .unwrap();
        assert_eq!(token.access_token.expose(), "papi-1");
        assert_eq!(token.expires_in, Some(86400));
        assert!(parse_token(br#"{"token_type": "Bearer"}"#).is_err());
    }
}
