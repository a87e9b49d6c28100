//! The normalised Personio employee: what the sync reads from Personio, independent of
//! the wire format (v1 attribute envelopes) that the Personio client parses.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A Personio organisational object referenced by an employee (department, office, team).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    /// The Personio id as a decimal string (v1 sends integers).
    pub id: String,
    /// The display name as Personio writes it.
    pub name: String,
}

/// Employment status as Personio v1 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmployeeStatus {
    /// Hired, not yet started.
    Onboarding,
    /// Working.
    Active,
    /// On leave (still employed).
    Leave,
    /// No longer employed.
    Inactive,
    /// A value Personio may add later; treated as not inactive.
    Other(String),
}

impl EmployeeStatus {
    /// Parses Personio's lowercase status value; unknown values are kept, not rejected.
    pub fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "onboarding" => Self::Onboarding,
            "active" => Self::Active,
            "leave" => Self::Leave,
            "inactive" => Self::Inactive,
            _ => Self::Other(value.to_string()),
        }
    }

    /// The lowercase wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Active => "active",
            Self::Leave => "leave",
            Self::Inactive => "inactive",
            Self::Other(other) => other,
        }
    }

    /// Whether Personio considers the person gone (only `inactive`).
    pub fn is_inactive(&self) -> bool {
        matches!(self, Self::Inactive)
    }
}

/// One Personio employee, normalised from the v1 attribute envelope.
///
/// Every field but `id` is optional: an attribute the credential cannot read is simply
/// absent, and an absent field means "unknown", never "empty".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employee {
    /// The v1 employee id as a decimal string, e.g. `"4711"`.
    pub id: String,
    /// `first_name` (never `preferred_name`).
    pub first_name: Option<String>,
    /// `last_name`.
    pub last_name: Option<String>,
    /// `email`, as given.
    pub email: Option<String>,
    /// `status`.
    pub status: Option<EmployeeStatus>,
    /// `position`.
    pub position: Option<String>,
    /// `department` (nested `{id, name}`).
    pub department: Option<OrgRef>,
    /// `office` (nested `{id, name}`).
    pub office: Option<OrgRef>,
    /// `team` (nested `{id, name}`).
    pub team: Option<OrgRef>,
    /// `supervisor.attributes.id.value`, as a decimal string.
    pub supervisor_id: Option<String>,
    /// Date part of `hire_date`, as Personio writes it (never converted to UTC).
    pub hire_date: Option<NaiveDate>,
    /// Date part of `termination_date`.
    pub termination_date: Option<NaiveDate>,
    /// Date part of `last_working_day`.
    pub last_working_day: Option<NaiveDate>,
    /// `employment_type` (`internal`, `external`).
    pub employment_type: Option<String>,
    /// Whether the `profile_picture` attribute carries a URL.
    pub has_profile_picture: bool,
    /// Every other attribute the credential returned (`dynamic_…` custom attributes and
    /// standard keys not modelled above), by key, with the envelope's `value` as JSON.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Employee {
    /// An employee with only an id; every attribute unknown.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            first_name: None,
            last_name: None,
            email: None,
            status: None,
            position: None,
            department: None,
            office: None,
            team: None,
            supervisor_id: None,
            hire_date: None,
            termination_date: None,
            last_working_day: None,
            employment_type: None,
            has_profile_picture: false,
            extra: BTreeMap::new(),
        }
    }

    /// Whether the employee is inactive in Personio.
    pub fn is_inactive(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(EmployeeStatus::is_inactive)
    }
}

/// Takes the calendar date of a Personio date or date-time exactly as written:
/// `2021-04-01T00:00:00+02:00` → `2021-04-01`, `2021-04-01` → `2021-04-01`.
/// The offset is ignored on purpose: converting to UTC would move the day.
pub fn parse_personio_date(value: &str) -> Option<NaiveDate> {
    let date_part = value.get(..10)?;
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_part_is_taken_without_utc_conversion() {
        let date = parse_personio_date("2021-04-01T00:00:00+02:00").unwrap();
        assert_eq!(date.to_string(), "2021-04-01");
        assert_eq!(
            parse_personio_date("2021-04-01").unwrap().to_string(),
            "2021-04-01"
        );
        assert!(parse_personio_date("2021-4-1").is_none());
        assert!(parse_personio_date("").is_none());
    }

    #[test]
    fn status_parse_keeps_unknown_values() {
        assert_eq!(EmployeeStatus::parse("Inactive"), EmployeeStatus::Inactive);
        assert_eq!(
            EmployeeStatus::parse("retired"),
            EmployeeStatus::Other("retired".into())
        );
        assert!(!EmployeeStatus::parse("leave").is_inactive());
    }
}
