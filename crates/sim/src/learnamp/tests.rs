//! End-to-end tests of the Learn Amp simulator over HTTP (reqwest against a started sim).

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::{LearnAmpSim, LearnAmpSimConfig, SimUserStatus};

/// The scopes [`fetch_token`] asks for in the scoped tests.
const SCOPED: &str = "users:read users:create";

/// A started simulator, a client and a valid token.
struct Fixture {
    sim: LearnAmpSim,
    http: Client,
    token: String,
}

impl Fixture {
    async fn new() -> Self {
        let sim = LearnAmpSim::start(LearnAmpSimConfig::default())
            .await
            .expect("sim starts");
        let http = Client::new();
        let token = fetch_token(&http, &sim.base_url, "sim-secret", None)
            .await
            .1["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        Self { sim, http, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url, path)
    }

    /// A request to `path` with the fixture's token.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// Sends an authorized request without a body.
    async fn call(&self, method: Method, path: &str) -> Response {
        send(self.request(method, path)).await
    }

    async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path).await
    }

    /// The JSON body of `GET path`.
    async fn get_json(&self, path: &str) -> Value {
        json_of(self.get(path).await).await
    }

    /// Sends a form; the answer must have `expected` status; returns its JSON body (`null`
    /// when it has none).
    async fn send_form(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        expected: StatusCode,
    ) -> Value {
        let response = send(self.request(method.clone(), path).form(form)).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, expected, "{method} {path}: {body}");
        body
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], expected: StatusCode) -> Value {
        self.send_form(Method::POST, path, form, expected).await
    }

    async fn put(&self, path: &str, form: &[(&str, &str)], expected: StatusCode) -> Value {
        self.send_form(Method::PUT, path, form, expected).await
    }

    async fn create_user(&self, email: &str, ext: &str) -> u64 {
        let body = self
            .post(
                "/v1/users",
                &[
                    ("email", email),
                    ("firstName", "Ada"),
                    ("lastName", "Lovelace"),
                    ("integrationExternalId", ext),
                    ("skipInvitation", "true"),
                ],
                StatusCode::CREATED,
            )
            .await;
        body["id"].as_u64().expect("id")
    }

    async fn empty_put(&self, path: &str) -> StatusCode {
        self.call(Method::PUT, path).await.status()
    }
}

/// Sends a request (panics when it cannot be sent).
async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request")
}

/// The JSON body of an answer (panics when it is not JSON).
async fn json_of(response: Response) -> Value {
    response.json().await.expect("json")
}

/// Requests a token with `scope` (none asked: `public`).
async fn fetch_token(
    http: &Client,
    base: &str,
    secret: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("client_id", "sim-client"),
        ("client_secret", secret),
        ("grant_type", "client_credentials"),
    ];
    form.extend(scope.map(|scope| ("scope", scope)));
    let response = send(http.post(format!("{base}/oauth/token")).form(&form)).await;
    (response.status(), json_of(response).await)
}

#[tokio::test]
async fn token_flow_urlencoded_multipart_wrong_secret_and_expiry() {
    let f = Fixture::new().await;
    let (status, body) = fetch_token(&f.http, &f.sim.base_url, "sim-secret", Some(SCOPED)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], SCOPED);
    assert!(body["created_at"].as_u64().expect("created_at") > 1_600_000_000);

    let (status, body) = fetch_token(&f.http, &f.sim.base_url, "wrong", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(!body.to_string().contains("wrong"));

    let boundary = "XyZ";
    let multipart = ["client_id", "client_secret", "grant_type"]
        .iter()
        .zip(["sim-client", "sim-secret", "client_credentials"])
        .map(|(k, v)| {
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
        })
        .collect::<String>()
        + &format!("--{boundary}--\r\n");
    let response = send(
        f.http
            .post(f.url("/oauth/token"))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["scope"], "public");

    let (status, body) = fetch_token(
        &f.http,
        &f.sim.base_url,
        "sim-secret",
        Some("users:everything"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");

    assert_eq!(f.get("/v1/users").await.status(), StatusCode::OK);
    let no_token = send(f.http.get(f.url("/v1/users"))).await;
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert!(json_of(no_token).await["error"].is_string());

    f.sim.set_token_ttl(Duration::ZERO);
    let expired = f.get("/v1/users").await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(expired).await["error"], "The access token expired");
}

#[tokio::test]
async fn scopes_restrict_routes() {
    let f = Fixture::new().await;
    let (_, body) = fetch_token(&f.http, &f.sim.base_url, "sim-secret", Some(SCOPED)).await;
    let limited = body["access_token"].as_str().expect("token");
    let response = send(f.http.get(f.url("/v1/teams")).bearer_auth(limited)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn create_with_and_without_skip_invitation() {
    let f = Fixture::new().await;
    let id = f.create_user("skip@example.com", "1").await;
    assert_eq!(id, 1);
    assert!(f.sim.invitations().is_empty());
    assert_eq!(
        f.sim.user(id).expect("user").status,
        SimUserStatus::NotInvited
    );

    let body = f
        .post(
            "/v1/users",
            &[
                ("email", "invite@example.com"),
                ("firstName", "Grace"),
                ("lastName", "Hopper"),
            ],
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(body["status"]["status"], "Invite pending");
    assert!(
        body["status"]["time"]
            .as_str()
            .expect("time")
            .starts_with("Sent ")
    );
    assert_eq!(body["primaryTeam"], Value::Null);
    assert_eq!(body["leaveDate"], Value::Null);
    let invitations = f.sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].user_id, 2);
    assert_eq!(
        f.sim.user(2).expect("user").status,
        SimUserStatus::InvitePending
    );

    let body = f
        .post("/v1/users", &[("firstName", "X")], StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(
        body["error"],
        "email is missing, email is empty, lastName is missing"
    );
    assert_eq!(body["fullErrors"]["lastName"], json!(["is missing"]));
}

#[tokio::test]
async fn duplicate_email_and_external_id_are_400() {
    let f = Fixture::new().await;
    f.create_user("ada@example.com", "4711").await;
    let body = f
        .post(
            "/v1/users",
            &[
                ("email", "ADA@example.com"),
                ("firstName", "A"),
                ("lastName", "B"),
                ("skipInvitation", "true"),
            ],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "Validation failed: Email has already been taken",
               "fullErrors": {"email": ["has already been taken"]}})
    );
    let body = f
        .post(
            "/v1/users",
            &[
                ("email", "other@example.com"),
                ("firstName", "A"),
                ("lastName", "B"),
                ("integrationExternalId", "4711"),
            ],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "Validation failed: Integration external id has already been taken",
               "fullErrors": {"integrationExternalId": ["has already been taken"]}})
    );
    assert_eq!(f.sim.users().len(), 1, "refused creates change nothing");
    assert!(f.sim.invitations().is_empty());
}

#[tokio::test]
async fn manager_email_must_be_an_active_user() {
    let f = Fixture::new().await;
    let boss = f.sim.insert_user("Boss@Example.com", "Big", "Boss", None);
    let worker = f.create_user("worker@example.com", "2").await;
    let path = format!("/v1/users/{worker}");
    let by_email = [("managerEmail", "boss@example.com")];
    let body = f.put(&path, &by_email, StatusCode::OK).await;
    assert_eq!(body["manager"]["id"], boss);
    assert_eq!(
        f.empty_put(&format!("/v1/users/{boss}/deactivate")).await,
        StatusCode::NO_CONTENT
    );
    let body = f.put(&path, &by_email, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        body,
        json!({"error": "managerEmail must match an existing user email within your company"})
    );
    let body = f
        .put(
            &path,
            &[("managerEmail", "x@y.z"), ("managerId", "1")],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "managerId, managerEmail are mutually exclusive"})
    );
}

#[tokio::test]
async fn pagination_headers_and_deactivated_users() {
    let f = Fixture::new().await;
    for i in 0..5 {
        f.sim
            .insert_user(&format!("u{i}@example.com"), "U", &format!("{i}"), None);
    }
    let response = f.get("/v1/users?page=2&perPage=2").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["Total"], "5");
    assert_eq!(response.headers()["Per-Page"], "2");
    assert_eq!(response.headers()["Total-Pages"], "3");
    let body = json_of(response).await;
    let ids: Vec<u64> = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![3, 4]);
    assert!(body["users"][0].get("primaryTeam").is_none(), "basic form");

    let capped = f.get("/v1/users?perPage=1000").await;
    assert_eq!(capped.headers()["Per-Page"], "100");

    for _ in 0..2 {
        assert_eq!(
            f.empty_put("/v1/users/2/deactivate").await,
            StatusCode::NO_CONTENT
        );
    }
    let listed = f.get("/v1/users").await;
    assert_eq!(listed.headers()["Total"], "4");
    let deactivated = f.get_json("/v1/users?filters[status][]=deactivated").await;
    assert_eq!(deactivated["users"].as_array().expect("users").len(), 1);
    assert_eq!(deactivated["users"][0]["id"], 2);
    assert_eq!(deactivated["users"][0]["status"]["status"], "Deactivated");
    let both = f
        .get("/v1/users?filters[status]=confirmed,deactivated")
        .await;
    assert_eq!(both.headers()["Total"], "5");
    let bad = f
        .get("/v1/users?filters[status][]=pending_deactivation")
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        f.empty_put("/v1/users/2/reactivate").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.sim.user(2).expect("user").status,
        SimUserStatus::Confirmed
    );
    assert_eq!(
        f.empty_put("/v1/users/99/deactivate").await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn by_integration_external_id_uses_external_ids_even_when_numeric() {
    let f = Fixture::new().await;
    f.create_user("one@example.com", "2").await;
    f.create_user("two@example.com", "HR/1001").await;
    let body = f.get_json("/v1/users/by_integration_external_id/2").await;
    assert_eq!(body["id"], 1, "external id 2 is user 1, not user 2");
    let body = f
        .get_json("/v1/users/by_integration_external_id/HR%2F1001.json")
        .await;
    assert_eq!(body["id"], 2);
    let missing = f.get("/v1/users/by_integration_external_id/1").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing).await, json!({"error": "Not found"}));

    assert_eq!(
        f.empty_put("/v1/users/1/deactivate").await,
        StatusCode::NO_CONTENT
    );
    // Deactivated users are found too.
    let body = f
        .put(
            "/v1/users/by_integration_external_id/2",
            &[("integrationExternalId", "3"), ("jobTitle", "Eng")],
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["integrationExternalId"], "3");
    assert_eq!(
        body["firstName"], "Ada",
        "partial update keeps other fields"
    );
    assert_eq!(
        f.sim
            .user_by_external_id("3")
            .expect("renamed")
            .job_title
            .as_deref(),
        Some("Eng")
    );
}

#[tokio::test]
async fn leave_date_round_trip() {
    let f = Fixture::new().await;
    let id = f.create_user("leaver@example.com", "7").await;
    let path = format!("/v1/users/{id}");
    let body = f
        .put(
            &path,
            &[("leaveDate", "2025-06-30"), ("hireDate", "2021-04-01")],
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["leaveDate"], "2025-06-30");
    let shown = f.get_json(&path).await;
    assert_eq!(shown["leaveDate"], "2025-06-30");
    assert_eq!(shown["hireDate"], "2021-04-01");
    let body = f
        .put(
            &path,
            &[("leaveDate", "30.06.2025")],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(body["fullErrors"]["leaveDate"], json!(["is invalid"]));
    assert_eq!(
        f.sim.user(id).expect("user").leave_date.as_deref(),
        Some("2025-06-30")
    );
    let body = f.put(&path, &[("leaveDate", "")], StatusCode::OK).await;
    assert_eq!(body["leaveDate"], Value::Null);
}

#[tokio::test]
async fn avatar_upload_accepts_png_and_rejects_garbage() {
    let f = Fixture::new().await;
    let id = f.create_user("pic@example.com", "8").await;
    let avatar = format!("/v1/users/{id}/avatar");
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    let upload = |bytes: Vec<u8>, media: &'static str| {
        send(
            f.request(Method::PUT, &avatar)
                .header("Content-Type", media)
                .body(bytes),
        )
    };
    let response = upload(png.clone(), "image/png").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let sha = f.sim.user(id).expect("user").avatar_sha256.expect("stored");
    assert_eq!(sha.len(), 64);
    let shown = f.get_json(&format!("/v1/users/{id}")).await;
    assert!(shown["avatar"].is_string());

    let response = upload(b"not an image".to_vec(), "image/png").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await, json!({"error": "Invalid image"}));
    let response = upload(Vec::new(), "image/jpeg").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let mut huge = vec![0xFF, 0xD8, 0xFF];
    huge.resize(5 * 1024 * 1024 + 1, 0);
    let response = upload(huge, "image/jpeg").await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(f.sim.user(id).expect("user").avatar_sha256, Some(sha));

    let response = f.call(Method::DELETE, &avatar).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(f.sim.user(id).expect("user").avatar_sha256, None);
}

#[tokio::test]
async fn invitation_route_follows_the_assumed_contract() {
    let f = Fixture::new().await;
    let id = f.create_user("later@example.com", "9").await;
    let invite = |id: u64| send(f.request(Method::POST, &format!("/v1/users/{id}/invitation")));
    assert_eq!(invite(id).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(invite(id).await.status(), StatusCode::NO_CONTENT, "resend");
    assert_eq!(f.sim.invitations().len(), 2);
    assert_eq!(
        f.sim.user(id).expect("user").status,
        SimUserStatus::InvitePending
    );

    assert_eq!(
        f.empty_put(&format!("/v1/users/{id}/deactivate")).await,
        StatusCode::NO_CONTENT
    );
    let response = invite(id).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        json_of(response).await,
        json!({"error": "User is deactivated"})
    );

    let confirmed = f.sim.insert_user("c@example.com", "C", "D", None);
    let response = invite(confirmed).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        json_of(response).await,
        json!({"error": "User has already confirmed"})
    );
    assert_eq!(invite(999).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(f.sim.invitations().len(), 2);
}

#[tokio::test]
async fn teams_create_duplicate_parent_and_membership() {
    let f = Fixture::new().await;
    let parent = f
        .post(
            "/v1/teams",
            &[("name", "Engineering"), ("integrationExternalId", "100")],
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(parent["id"], 1);
    assert_eq!(parent["apiTeamPath"], "/v1/teams/1.json");
    assert_eq!(parent["users"], json!([]));

    let body = f
        .post(
            "/v1/teams",
            &[("name", "Again"), ("integrationExternalId", "100")],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "Integration external id has already been taken",
               "fullErrors": {"integrationExternalId": ["has already been taken"]}})
    );

    let child = f
        .post(
            "/v1/teams",
            &[
                ("name", "Backend"),
                ("integrationExternalId", "101"),
                ("parentTeamId", "1"),
            ],
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(child["parentTeamId"], 1);
    assert_eq!(child["parentTeam"]["id"], 1);
    let body = f
        .post(
            "/v1/teams",
            &[("name", "Orphan"), ("parentTeamId", "77")],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body["fullErrors"]["parentTeamId"],
        json!(["must match existing teams IDs"])
    );

    let shown = f.get_json("/v1/teams/by_external_id/100").await;
    assert_eq!(shown["subTeams"][0]["id"], 2);

    let user = f.create_user("member@example.com", "55").await;
    let response = send(
        f.request(Method::POST, "/v1/teams/by_external_id/101/users")
            .json(&json!({"userId": user, "isPrimary": true})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_of(response).await;
    assert_eq!(body["teamId"], 2);
    assert_eq!(body["userId"], user);
    assert_eq!(f.sim.user(user).expect("user").primary_team_id, Some(2));

    let body = f
        .put(
            &format!("/v1/users/{user}"),
            &[("primaryTeamIntegrationExternalId", "nope")],
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        body["error"],
        "primaryTeamIntegrationExternalId must match existing teams integration external IDs"
    );

    let response = f.call(Method::DELETE, "/v1/teams/2").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let kept = f.sim.user(user).expect("user kept");
    assert_eq!(kept.primary_team_id, None);
    let teams = f.get_json("/v1/teams.json?filters[name]=engin").await;
    assert_eq!(teams["teams"].as_array().expect("teams").len(), 1);
}

#[tokio::test]
async fn formats_faults_and_unknown_routes() {
    let f = Fixture::new().await;
    let response = send(
        f.request(Method::GET, "/v1/users")
            .header("Accept", "application/xml"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        f.get("/v1/users/1.xml").await.status(),
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(f.get("/v1/nothing").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(f.get("/v1/users/abc").await.status(), StatusCode::NOT_FOUND);

    let body = f
        .post(
            "/v1/users",
            &[
                ("email", "c@example.com"),
                ("firstName", "C"),
                ("lastName", "D"),
                ("customFields[][name]", "Nope"),
                ("customFields[][value]", "1"),
            ],
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(body, json!({"error": "Not found"}));
    let body = f
        .post(
            "/v1/users",
            &[
                ("email", "c@example.com"),
                ("firstName", "C"),
                ("lastName", "D"),
                ("skipInvitation", "true"),
                ("customFields[][name]", "Cost code"),
                ("customFields[][value]", "CC-1"),
            ],
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        body["customFields"],
        json!([{"name": "Cost code", "value": "CC-1"}])
    );
    f.put(
        "/v1/users/1",
        &[("role", "hr")],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    f.sim.knobs.set_outage(true);
    let response = f.get("/v1/users").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(json_of(response).await["error"].is_string());
    f.sim.knobs.set_outage(false);
    assert!(
        f.sim
            .log
            .all()
            .iter()
            .any(|c| c.injected && c.status == 503)
    );
}

#[tokio::test]
async fn path_and_body_errors_keep_their_order() {
    let f = Fixture::new().await;
    f.create_user("order@example.com", "o-1").await;
    // A JSON body on a form route is 400; the path is checked before it only for
    // `/v1/users/{id}`.
    let put_json = |path: &'static str| {
        send(
            f.request(Method::PUT, path)
                .header("Content-Type", "application/json")
                .body("{}"),
        )
    };
    let cases = [
        ("/v1/users/abc", StatusCode::NOT_FOUND),
        ("/v1/users/99", StatusCode::BAD_REQUEST),
        ("/v1/users/1.xml", StatusCode::NOT_ACCEPTABLE),
        (
            "/v1/users/by_integration_external_id/nope.xml",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/teams/abc", StatusCode::BAD_REQUEST),
        ("/v1/teams/by_external_id/nope", StatusCode::BAD_REQUEST),
    ];
    for (path, status) in cases {
        assert_eq!(put_json(path).await.status(), status, "{path}");
    }
    let missing_team = f.put("/v1/teams/abc", &[("name", "x")], StatusCode::NOT_FOUND);
    assert_eq!(missing_team.await, json!({"error": "Not found"}));
    f.put(
        "/v1/teams/by_external_id/nope.xml",
        &[("name", "x")],
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
}

#[tokio::test]
async fn rate_limit_answers_429() {
    let config = LearnAmpSimConfig {
        rate_limit: Some(crate::common::RateLimit {
            per_minute: 1.0,
            burst: 2.0,
        }),
        ..LearnAmpSimConfig::default()
    };
    let sim = LearnAmpSim::start(config).await.expect("sim");
    let http = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(fetch_token(&http, &sim.base_url, "sim-secret", None).await);
    }
    assert_eq!(statuses[2].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses[2].1, json!({"error": "Too many requests"}));
}

#[test]
fn config_debug_hides_the_secret() {
    let printed = format!("{:?}", LearnAmpSimConfig::default());
    assert!(!printed.contains("sim-secret"));
    assert!(printed.contains("sim-client"));
}

#[tokio::test]
async fn documented_only_has_no_assumed_contract() {
    let sim = LearnAmpSim::start(LearnAmpSimConfig {
        documented_only: true,
        ..LearnAmpSimConfig::default()
    })
    .await
    .expect("sim starts");
    let http = Client::new();
    let token = fetch_token(&http, &sim.base_url, "sim-secret", None)
        .await
        .1["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let f = Fixture { sim, http, token };
    let id = f.create_user("strict@example.com", "70").await;
    let invitation = f
        .call(Method::POST, &format!("/v1/users/{id}/invitation"))
        .await;
    assert_eq!(invitation.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(invitation).await, json!({"error": "Not found"}));
    let avatar = send(
        f.request(Method::PUT, &format!("/v1/users/{id}/avatar"))
            .header("Content-Type", "image/png")
            .body(b"\x89PNG\r\n\x1a\n".to_vec()),
    )
    .await;
    assert_eq!(avatar.status(), StatusCode::NOT_FOUND);
    // leaveDate is an unknown attribute: ignored (even malformed), never shown.
    let path = format!("/v1/users/{id}");
    let body = f
        .put(
            &path,
            &[("leaveDate", "2025-06-30"), ("jobTitle", "Boss")],
            StatusCode::OK,
        )
        .await;
    assert!(body.get("leaveDate").is_none(), "{body}");
    assert_eq!(body["jobTitle"], "Boss");
    f.put(&path, &[("leaveDate", "30.06.2025")], StatusCode::OK)
        .await;
    assert!(f.get_json(&path).await.get("leaveDate").is_none());
    assert_eq!(f.sim.user(id).expect("user").leave_date, None);
    assert!(f.sim.invitations().is_empty());
}

#[tokio::test]
async fn scoped_credentials_must_name_their_scopes() {
    let sim = LearnAmpSim::start(LearnAmpSimConfig {
        scoped_credentials: true,
        ..LearnAmpSimConfig::default()
    })
    .await
    .expect("sim starts");
    let http = Client::new();
    for scope in [None, Some(""), Some("public"), Some("public users:read")] {
        let (status, body) = fetch_token(&http, &sim.base_url, "sim-secret", scope).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope:?}");
        assert_eq!(body["error"], "invalid_scope", "{scope:?}");
    }
    assert_eq!(sim.token_requests(), (4, 2));
    let (status, body) = fetch_token(&http, &sim.base_url, "sim-secret", Some(SCOPED)).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().expect("token").to_string();
    let f = Fixture { sim, http, token };
    assert_eq!(f.get("/v1/users").await.status(), StatusCode::OK);
    let response = f.get("/v1/teams").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json_of(response).await,
        json!({"error": "Insufficient scope: teams:read is required"})
    );
    // A scope withdrawn from the credentials is refused from then on.
    f.sim.revoke_scope("users:read");
    assert_eq!(f.get("/v1/users").await.status(), StatusCode::FORBIDDEN);
}
