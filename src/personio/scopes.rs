//! The Personio API scopes the service needs, in one place: asked for on "Sign in with
//! Personio" and checked against the `scope` of a token answer when connecting.
//!
//! The v1 employee endpoints name no scope; the v2 webhook and org-unit endpoints do
//! (reference §2.4, §7.1). Spellings are not settled in Personio's own examples, so a
//! token answer without `scope` is taken as "not said" and never refused for it.

/// Scopes every connection must grant.
pub const REQUIRED: &[&str] = &[
    "personio:webhooks:read",
    "personio:webhooks:write",
    "personio:org-units:read",
];

/// Of [`REQUIRED`], those `granted` lacks (`None` = the answer named no scopes: nothing
/// is missing as far as we can tell).
pub fn missing(granted: Option<&[String]>) -> Vec<String> {
    let Some(granted) = granted else {
        return Vec::new();
    };
    REQUIRED
        .iter()
        .filter(|scope| !granted.iter().any(|have| have == *scope))
        .map(|scope| scope.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scopes_are_named_and_an_unsaid_scope_is_no_refusal() {
        assert!(missing(None).is_empty());
        let all: Vec<String> = REQUIRED.iter().map(|s| s.to_string()).collect();
        assert!(missing(Some(&all)).is_empty());
        let some = vec!["personio:webhooks:read".to_string()];
        assert_eq!(
            missing(Some(&some)),
            vec!["personio:webhooks:write", "personio:org-units:read"]
        );
    }
}
