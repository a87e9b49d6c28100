use super::*;
use crate::domain::fields::{EXTERNAL_ID, FIRST_NAME, LOCATION, custom_field_key};

fn fields(entries: &[(&str, &str)]) -> UserFields {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn encoded(pairs: &FormPairs) -> String {
    serde_urlencoded::to_string(pairs).expect("encodable")
}

#[test]
fn plain_fields_and_empty_values() {
    let pairs = user_form(&fields(&[
        (FIRST_NAME, "Ada"),
        (LOCATION, ""),
        (EXTERNAL_ID, "HR/1"),
    ]));
    assert_eq!(
        encoded(&pairs),
        "firstName=Ada&integrationExternalId=HR%2F1&location="
    );
}

#[test]
fn custom_fields_use_rails_pairs() {
    let pairs = user_form(&fields(&[
        (&custom_field_key("Employee ID"), "123456"),
        (&custom_field_key("Shoe"), ""),
    ]));
    assert_eq!(
        pairs,
        vec![
            ("customFields[][name]".into(), "Employee ID".into()),
            ("customFields[][value]".into(), "123456".into()),
            ("customFields[][name]".into(), "Shoe".into()),
            ("customFields[][value]".into(), "".into()),
        ]
    );
    assert_eq!(
        encoded(&pairs[..2].to_vec()),
        "customFields%5B%5D%5Bname%5D=Employee+ID&customFields%5B%5D%5Bvalue%5D=123456"
    );
}

#[test]
fn secondary_teams_repeat_the_key() {
    let pairs = user_form(&fields(&[(SECONDARY_TEAMS, "a, b")]));
    assert_eq!(
        pairs,
        vec![
            ("secondaryTeamIntegrationExternalIds[]".into(), "a".into()),
            ("secondaryTeamIntegrationExternalIds[]".into(), "b".into()),
        ]
    );
    let cleared = user_form(&fields(&[(SECONDARY_TEAMS, "")]));
    assert_eq!(
        cleared,
        vec![("secondaryTeamIntegrationExternalIds[]".into(), "".into())]
    );
}

#[test]
fn leave_date_and_skip_invitation() {
    let given = fields(&[(LEAVE_DATE, "2025-06-30"), ("skipInvitation", "false")]);
    assert_eq!(
        create_user_form(&given, false),
        vec![
            ("leaveDate".into(), "2025-06-30".into()),
            ("skipInvitation".into(), "true".into()),
        ]
    );
    assert_eq!(
        create_user_form(&given, true),
        vec![("leaveDate".into(), "2025-06-30".into())]
    );
    let cleared = user_form(&fields(&[(LEAVE_DATE, "")]));
    assert_eq!(encoded(&cleared), "leaveDate=");
    assert!(
        !user_form(&fields(&[(FIRST_NAME, "A")]))
            .iter()
            .any(|(k, _)| k == "skipInvitation")
    );
}
