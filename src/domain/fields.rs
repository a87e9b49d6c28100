//! Learn Amp user fields as the sync writes them: wire names, and the ordered map of
//! desired values that the planner diffs and the Learn Amp client encodes.

use std::collections::BTreeMap;

/// `firstName`.
pub const FIRST_NAME: &str = "firstName";
/// `lastName`.
pub const LAST_NAME: &str = "lastName";
/// `email`.
pub const EMAIL: &str = "email";
/// `jobTitle`.
pub const JOB_TITLE: &str = "jobTitle";
/// `location` (free text: the Personio office name).
pub const LOCATION: &str = "location";
/// `hireDate` (`YYYY-MM-DD`).
pub const HIRE_DATE: &str = "hireDate";
/// `leaveDate` (`YYYY-MM-DD`), an assumed contract: encoded only by the Learn Amp client's
/// leave-date function.
pub const LEAVE_DATE: &str = "leaveDate";
/// `primaryTeamIntegrationExternalId` (the Personio department id).
pub const PRIMARY_TEAM: &str = "primaryTeamIntegrationExternalId";
/// `secondaryTeamIntegrationExternalIds[]`, joined with `,` in the map.
pub const SECONDARY_TEAMS: &str = "secondaryTeamIntegrationExternalIds";
/// `managerEmail` (the supervisor's email).
pub const MANAGER_EMAIL: &str = "managerEmail";
/// `integrationExternalId` (the Personio employee id).
pub const EXTERNAL_ID: &str = "integrationExternalId";
/// Prefix of a custom field entry: `customField:<Learn Amp field name>`.
pub const CUSTOM_FIELD_PREFIX: &str = "customField:";

/// Desired (or last applied) Learn Amp user fields, keyed by the names above.
///
/// An empty string value means "clear this field". A key that is absent means "leave
/// it alone" (the source did not provide it).
pub type UserFields = BTreeMap<String, String>;

/// The key of custom field `name` in a [`UserFields`] map.
pub fn custom_field_key(name: &str) -> String {
    format!("{CUSTOM_FIELD_PREFIX}{name}")
}

/// The fields of `desired` whose value differs from `applied` (absent in `applied`
/// counts as different).
pub fn changed_fields(desired: &UserFields, applied: &UserFields) -> UserFields {
    desired
        .iter()
        .filter(|(key, value)| applied.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_fields_are_changed() {
        let applied: UserFields = [(FIRST_NAME, "Ada"), (JOB_TITLE, "Eng")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut desired = applied.clone();
        assert!(changed_fields(&desired, &applied).is_empty());
        desired.insert(JOB_TITLE.into(), "Lead".into());
        desired.insert(LOCATION.into(), String::new());
        let changed = changed_fields(&desired, &applied);
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[JOB_TITLE], "Lead");
        assert_eq!(changed[LOCATION], "");
    }
}
