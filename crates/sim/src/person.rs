//! The simulated Personio person: the fields the Personio simulator renders into v1
//! attribute envelopes. The simulator's own model, independent of the service's
//! `domain::Employee`, so the two sides of the wire are written separately.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// A Personio organisational object referenced by a person (department, office, team).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef {
    /// The Personio id as a decimal string (v1 sends integers).
    pub id: String,
    /// The display name as Personio writes it.
    pub name: String,
}

/// Employment status as Personio v1 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmployeeStatus {
    /// Hired, not yet started.
    Onboarding,
    /// Working.
    Active,
    /// On leave (still employed).
    Leave,
    /// No longer employed.
    Inactive,
    /// Any other value, sent as written.
    Other(String),
}

impl EmployeeStatus {
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
}

/// One simulated Personio person, as the v1 attributes describe it. Every field but `id`
/// is optional: an absent field is rendered as an absent or null attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// The v1 employee id as a decimal string, e.g. `"4711"`.
    pub id: String,
    /// `first_name`.
    pub first_name: Option<String>,
    /// `last_name`.
    pub last_name: Option<String>,
    /// `email`.
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
    /// The supervisor's employee id, as a decimal string.
    pub supervisor_id: Option<String>,
    /// `hire_date`.
    pub hire_date: Option<NaiveDate>,
    /// `termination_date`.
    pub termination_date: Option<NaiveDate>,
    /// `last_working_day`.
    pub last_working_day: Option<NaiveDate>,
    /// `employment_type` (`internal`, `external`).
    pub employment_type: Option<String>,
    /// Whether the `profile_picture` attribute carries a URL (kept in step with the
    /// picture by the simulator).
    pub has_profile_picture: bool,
    /// Every other attribute (`dynamic_…` custom attributes), by key, with the
    /// envelope's `value` as JSON.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Employee {
    /// A person with only an id; every attribute unknown.
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

    /// Whether the person is inactive in Personio.
    pub fn is_inactive(&self) -> bool {
        matches!(self.status, Some(EmployeeStatus::Inactive))
    }
}
