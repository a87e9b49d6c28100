//! The field map: a Personio employee → the Learn Amp fields it should produce, and the
//! scope rules that decide who is synced at all.

use std::collections::HashMap;

use super::fields::{self, UserFields};
use super::tenant::{Scope, Settings, TeamsMode};
use super::{Employee, OrgRef};

/// Attributes the credential must be able to read (contract §5).
pub const REQUIRED_ATTRIBUTES: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "status",
    "position",
    "department",
    "office",
    "hire_date",
    "termination_date",
];

/// What the mapping of one employee needs to know about the others.
pub struct MappingContext<'a> {
    /// Synced, active employees by Personio id: a supervisor must be one of them to
    /// become a manager (Learn Amp wants an active existing user).
    pub manager_candidates: &'a HashMap<String, &'a Employee>,
}

/// The Learn Amp fields `employee` should have (avatar aside), per `settings`.
pub fn desired_fields(
    employee: &Employee,
    settings: &Settings,
    context: &MappingContext<'_>,
) -> UserFields {
    let mut desired = UserFields::new();
    let mut put = |key: &str, value: String| {
        desired.insert(key.to_string(), value);
    };
    put(fields::EXTERNAL_ID, employee.id.clone());
    put(fields::FIRST_NAME, text(&employee.first_name));
    put(fields::LAST_NAME, text(&employee.last_name));
    put(fields::EMAIL, text(&employee.email));
    put(fields::JOB_TITLE, text(&employee.position));
    put(fields::LOCATION, org_name(&employee.office));
    put(
        fields::HIRE_DATE,
        employee
            .hire_date
            .map(|date| date.to_string())
            .unwrap_or_default(),
    );
    put(
        fields::LEAVE_DATE,
        employee
            .termination_date
            .map(|date| date.to_string())
            .unwrap_or_default(),
    );
    if settings.teams != TeamsMode::None {
        put(fields::PRIMARY_TEAM, org_id(&employee.department));
    }
    if settings.teams == TeamsMode::DepartmentAndTeam {
        put(fields::SECONDARY_TEAMS, org_id(&employee.team));
    }
    if settings.sync_managers {
        // No synced, active supervisor: clear any manager set earlier.
        put(
            fields::MANAGER_EMAIL,
            manager_email(employee, context).unwrap_or_default(),
        );
    }
    for (attribute, field_name) in &settings.custom_fields {
        put(
            &fields::custom_field_key(field_name),
            attribute_text(employee, attribute),
        );
    }
    desired
}

/// The supervisor's email when the supervisor is a synced, active user.
pub fn manager_email(employee: &Employee, context: &MappingContext<'_>) -> Option<String> {
    let supervisor_id = employee.supervisor_id.as_ref()?;
    if supervisor_id == &employee.id {
        return None;
    }
    let supervisor = context.manager_candidates.get(supervisor_id)?;
    supervisor.email.clone().filter(|email| !email.is_empty())
}

/// Whether `employee` is inside the tenant's scope (`None` = everyone).
pub fn in_scope(employee: &Employee, scope: Option<&Scope>) -> bool {
    let Some(scope) = scope else { return true };
    let org_matches = |rule: &Option<Vec<String>>, org: &Option<OrgRef>| match rule {
        None => true,
        Some(allowed) => org.as_ref().is_some_and(|org| {
            allowed
                .iter()
                .any(|item| item == &org.id || item == &org.name)
        }),
    };
    let type_matches = match &scope.employment_types {
        None => true,
        Some(allowed) => employee
            .employment_type
            .as_ref()
            .is_some_and(|kind| allowed.iter().any(|item| item.eq_ignore_ascii_case(kind))),
    };
    let attribute_matches = match &scope.attribute {
        None => true,
        Some(rule) => attribute_text(employee, &rule.key) == rule.equals,
    };
    org_matches(&scope.departments, &employee.department)
        && org_matches(&scope.offices, &employee.office)
        && type_matches
        && attribute_matches
}

/// The value of any Personio attribute key as text ("" when absent or null): the
/// modelled standard keys and the raw `extra` ones.
pub fn attribute_text(employee: &Employee, key: &str) -> String {
    match key {
        "first_name" => text(&employee.first_name),
        "last_name" => text(&employee.last_name),
        "email" => text(&employee.email),
        "position" => text(&employee.position),
        "status" => employee
            .status
            .as_ref()
            .map(|status| status.as_str().to_string())
            .unwrap_or_default(),
        "department" => org_name(&employee.department),
        "office" => org_name(&employee.office),
        "team" => org_name(&employee.team),
        "employment_type" => text(&employee.employment_type),
        "hire_date" => employee
            .hire_date
            .map(|d| d.to_string())
            .unwrap_or_default(),
        "termination_date" => employee
            .termination_date
            .map(|d| d.to_string())
            .unwrap_or_default(),
        "last_working_day" => employee
            .last_working_day
            .map(|d| d.to_string())
            .unwrap_or_default(),
        other => employee.extra.get(other).map(json_text).unwrap_or_default(),
    }
}

fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) => {
            items.iter().map(json_text).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn org_name(org: &Option<OrgRef>) -> String {
    org.as_ref().map(|org| org.name.clone()).unwrap_or_default()
}

fn org_id(org: &Option<OrgRef>) -> String {
    org.as_ref().map(|org| org.id.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmployeeStatus;
    use crate::domain::employee::parse_personio_date;
    use crate::domain::tenant::AttributeRule;

    fn ada() -> Employee {
        let mut employee = Employee::with_id("4711");
        employee.first_name = Some("Ada".into());
        employee.last_name = Some("Lovelace".into());
        employee.email = Some("ada@example.com".into());
        employee.status = Some(EmployeeStatus::Active);
        employee.position = Some("Engineer".into());
        employee.department = Some(OrgRef {
            id: "281521".into(),
            name: "Support".into(),
        });
        employee.office = Some(OrgRef {
            id: "131014".into(),
            name: "Munich".into(),
        });
        employee.hire_date = parse_personio_date("2021-04-01T00:00:00+02:00");
        employee.supervisor_id = Some("42".into());
        employee
            .extra
            .insert("dynamic_99".into(), serde_json::json!("yes"));
        employee
    }

    #[test]
    fn maps_every_field_of_the_contract() {
        let mut boss = Employee::with_id("42");
        boss.email = Some("boss@example.com".into());
        let candidates: HashMap<String, &Employee> = [("42".to_string(), &boss)].into();
        let context = MappingContext {
            manager_candidates: &candidates,
        };
        let mut settings = Settings::default();
        settings
            .custom_fields
            .insert("dynamic_99".into(), "Remote".into());
        let desired = desired_fields(&ada(), &settings, &context);
        assert_eq!(desired[fields::EXTERNAL_ID], "4711");
        assert_eq!(desired[fields::FIRST_NAME], "Ada");
        assert_eq!(desired[fields::LAST_NAME], "Lovelace");
        assert_eq!(desired[fields::EMAIL], "ada@example.com");
        assert_eq!(desired[fields::JOB_TITLE], "Engineer");
        assert_eq!(desired[fields::LOCATION], "Munich");
        assert_eq!(desired[fields::HIRE_DATE], "2021-04-01");
        assert_eq!(desired[fields::LEAVE_DATE], "");
        assert_eq!(desired[fields::PRIMARY_TEAM], "281521");
        assert_eq!(desired[fields::MANAGER_EMAIL], "boss@example.com");
        assert_eq!(desired["customField:Remote"], "yes");
        assert!(!desired.contains_key(fields::SECONDARY_TEAMS));
    }

    #[test]
    fn manager_is_cleared_when_the_supervisor_is_not_synced() {
        let candidates = HashMap::new();
        let context = MappingContext {
            manager_candidates: &candidates,
        };
        let desired = desired_fields(&ada(), &Settings::default(), &context);
        assert_eq!(desired[fields::MANAGER_EMAIL], "");
        let settings = Settings {
            sync_managers: false,
            ..Settings::default()
        };
        assert!(!desired_fields(&ada(), &settings, &context).contains_key(fields::MANAGER_EMAIL));
        let settings = Settings {
            teams: TeamsMode::None,
            ..Settings::default()
        };
        assert!(!desired_fields(&ada(), &settings, &context).contains_key(fields::PRIMARY_TEAM));
    }

    #[test]
    fn scope_rules_all_must_hold() {
        let employee = ada();
        assert!(in_scope(&employee, None));
        let scope = Scope {
            departments: Some(vec!["Support".into()]),
            offices: Some(vec!["131014".into()]),
            employment_types: None,
            attribute: Some(AttributeRule {
                key: "dynamic_99".into(),
                equals: "yes".into(),
            }),
        };
        assert!(in_scope(&employee, Some(&scope)));
        let scope = Scope {
            departments: Some(vec!["Sales".into()]),
            ..scope
        };
        assert!(!in_scope(&employee, Some(&scope)));
        let scope = Scope {
            employment_types: Some(vec!["internal".into()]),
            ..Scope::default()
        };
        assert!(
            !in_scope(&employee, Some(&scope)),
            "unknown type is not internal"
        );
    }
}
