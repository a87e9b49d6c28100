//! The OAuth scopes this service uses (reference §2.3), in one place: the list every
//! token request sends, and the scope a route needs (named when Learn Amp answers 403).
//!
//! Credentials provisioned for specific scopes must name them in the token request (a
//! request without `scope` falls back to `public` and fails with `invalid_scope`), so
//! the client never asks for a token without this list.

use reqwest::Method;

/// Scopes of the user routes the service calls (read, create, update — the assumed
/// invitation and avatar routes included —, deactivate, reactivate; never delete).
const USER_SCOPES: [&str; 5] = [
    "users:read",
    "users:create",
    "users:update",
    "users:deactivate",
    "users:reactivate",
];

/// Scopes of the team routes the service calls without `remove_empty_teams`.
const TEAM_SCOPES: [&str; 3] = ["teams:read", "teams:create", "teams:update"];

/// Needed only by tenants that remove empty teams (`DELETE /v1/teams/{id}`).
const TEAM_DELETE_SCOPE: &str = "teams:delete";

/// The scopes a tenant requests: the user and team scopes, plus `teams:delete` when it
/// removes empty teams. Team membership routes are not used (the primary team is set
/// on the user), so no `team_users:*` scope is asked for.
pub fn requested(remove_teams: bool) -> Vec<String> {
    let mut scopes: Vec<String> = USER_SCOPES
        .iter()
        .chain(TEAM_SCOPES.iter())
        .map(|scope| scope.to_string())
        .collect();
    if remove_teams {
        scopes.push(TEAM_DELETE_SCOPE.to_string());
    }
    scopes
}

/// The scope the reference lists for `method` on `path` (a concrete path such as
/// `/v1/users/17/deactivate`; the assumed invitation and avatar routes need
/// `users:update`).
pub fn scope_for(method: &Method, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    let path = path.strip_suffix(".json").unwrap_or(path);
    if path.starts_with("/v1/teams") {
        let membership = path.split('/').any(|segment| segment == "users");
        return match (membership, method.as_str()) {
            (true, "GET") => "team_users:read",
            (true, "DELETE") => "team_users:delete",
            (true, _) => "team_users:create",
            (false, "GET") => "teams:read",
            (false, "POST") => "teams:create",
            (false, "DELETE") => "teams:delete",
            (false, _) => "teams:update",
        };
    }
    if path.ends_with("/deactivate") {
        return "users:deactivate";
    }
    if path.ends_with("/reactivate") {
        return "users:reactivate";
    }
    if path.ends_with("/invitation") || path.ends_with("/avatar") {
        return "users:update";
    }
    match method.as_str() {
        "GET" => "users:read",
        "POST" => "users:create",
        "DELETE" => "users:delete",
        _ => "users:update",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_the_client_calls_needs_a_requested_scope() {
        let all = requested(true);
        let calls = [
            (Method::GET, "/v1/users"),
            (Method::GET, "/v1/users/by_integration_external_id/HR%2F1"),
            (Method::GET, "/v1/users/7"),
            (Method::POST, "/v1/users"),
            (Method::PUT, "/v1/users/7"),
            (Method::PUT, "/v1/users/7/deactivate"),
            (Method::PUT, "/v1/users/7/reactivate"),
            (Method::POST, "/v1/users/7/invitation"),
            (Method::PUT, "/v1/users/7/avatar"),
            (Method::DELETE, "/v1/users/7/avatar"),
            (Method::GET, "/v1/teams"),
            (Method::GET, "/v1/teams/by_external_id/12"),
            (Method::POST, "/v1/teams"),
            (Method::PUT, "/v1/teams/3"),
            (Method::DELETE, "/v1/teams/3"),
        ];
        for (method, path) in calls {
            let scope = scope_for(&method, path);
            assert!(
                all.iter().any(|s| s == scope),
                "{method} {path} needs {scope}"
            );
        }
        assert!(!requested(false).iter().any(|s| s == "teams:delete"));
        assert!(!all.iter().any(|s| s == "users:delete" || s == "public"));
        assert_eq!(
            scope_for(&Method::GET, "/v1/teams/3/users"),
            "team_users:read"
        );
    }
}
