//! The provider over HTTP: discovery, the code flow driven like a browser without
//! cookies or JavaScript, PKCE, code replay, refresh rotation, API rights, test knobs.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::super::{PersonioSim, PersonioSimConfig, SimCredential};
use super::keys::verify;
use super::{Consent, IdTokenFault, SignInError};

const CLIENT: &str = "sim-client";
const SECRET: &str = "sim-secret";
const REDIRECT: &str = "http://127.0.0.1:4711/connect/callback";

async fn sim() -> PersonioSim {
    PersonioSim::start(PersonioSimConfig {
        employees: 5,
        rate_limits: false,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One authorization request's secrets.
struct Request {
    verifier: String,
    state: String,
    nonce: String,
}

impl Request {
    fn new() -> Self {
        let random = || {
            let bytes: [u8; 32] = rand::rng().random();
            URL_SAFE_NO_PAD.encode(bytes)
        };
        Self {
            verifier: format!("{}~.", random()),
            state: random(),
            nonce: random(),
        }
    }

    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The authorization URL, with `overrides` replacing (or, with `None`, removing)
    /// parameters.
    fn url(&self, sim: &PersonioSim, overrides: &[(&str, Option<&str>)]) -> String {
        let challenge = self.challenge();
        let mut params: Vec<(&str, Option<&str>)> = vec![
            ("response_type", Some("code")),
            ("client_id", Some(CLIENT)),
            ("redirect_uri", Some(REDIRECT)),
            ("scope", Some("openid email")),
            ("state", Some(&self.state)),
            ("nonce", Some(&self.nonce)),
            ("code_challenge", Some(&challenge)),
            ("code_challenge_method", Some("S256")),
        ];
        for (key, value) in overrides {
            match params.iter_mut().find(|(name, _)| name == key) {
                Some(param) => param.1 = *value,
                None => params.push((key, *value)),
            }
        }
        let present: Vec<(&str, &str)> = params
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", sim.base_url)).unwrap();
        url.query_pairs_mut().extend_pairs(present);
        url.to_string()
    }
}

/// The query parameters of a redirect target.
fn query(location: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

/// Signs in as `user` and allows: the request and its code.
async fn code_for(sim: &PersonioSim, user: (String, String)) -> (Request, String) {
    let request = Request::new();
    let back = sim
        .oidc_sign_in(&request.url(sim, &[]), &user.0, &user.1, Consent::Allow)
        .await
        .unwrap();
    assert!(back.starts_with(REDIRECT), "{back}");
    let pairs = query(&back);
    assert_eq!(param(&pairs, "state"), Some(request.state.as_str()));
    let code = param(&pairs, "code").unwrap().to_string();
    (request, code)
}

async fn token_call(sim: &PersonioSim, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{}/oauth/token", sim.base_url))
        .basic_auth(CLIENT, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        response.headers().get(CACHE_CONTROL).unwrap(),
        "no-store",
        "every token answer is no-store"
    );
    (status, response.json().await.unwrap())
}

async fn exchange(sim: &PersonioSim, request: &Request, code: &str) -> (StatusCode, Value) {
    token_call(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &request.verifier),
        ],
    )
    .await
}

async fn refresh(sim: &PersonioSim, refresh_token: &str) -> (StatusCode, Value) {
    token_call(
        sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Tokens for `user` through the whole flow.
async fn tokens_for(sim: &PersonioSim, user: (String, String)) -> (Request, Value) {
    let (request, code) = code_for(sim, user).await;
    let (status, body) = exchange(sim, &request, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (request, body)
}

async fn api(sim: &PersonioSim, token: &str, path: &str) -> (StatusCode, Value) {
    let response = http()
        .get(format!("{}{path}", sim.base_url))
        .bearer_auth(token)
        .header("x-personio-app-id", "PERSONIO_SYNC_TESTS")
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn jwks(sim: &PersonioSim) -> Value {
    http()
        .get(format!("{}/oauth/jwks", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn claims_unverified(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn discovery_names_the_base_url_as_issuer_and_the_endpoints_under_it() {
    let sim = sim().await;
    let response = http()
        .get(format!("{}/.well-known/openid-configuration", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    let base = sim.base_url.as_str();
    assert!(!base.ends_with('/'));
    assert_eq!(doc["issuer"], base);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(doc["jwks_uri"], format!("{base}/oauth/jwks"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&Value::from("openid")));
    assert!(scopes.contains(&Value::from("email")));
    let keys = jwks(&sim).await;
    assert_eq!(keys["keys"][0]["kty"], "EC");
    assert_eq!(keys["keys"][0]["crv"], "P-256");
    assert_eq!(keys["keys"][0]["alg"], "ES256");
}

#[tokio::test]
async fn the_pages_have_the_contract_names_and_carry_only_an_opaque_request_id() {
    let sim = sim().await;
    let request = Request::new();
    let response = http().get(request.url(&sim, &[])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<title>Sign in"));
    assert!(html.contains("<label for=\"email\">Email</label>"));
    assert!(html.contains("<input id=\"email\" name=\"email\""));
    assert!(html.contains("<label for=\"password\">Password</label>"));
    assert!(html.contains("<input id=\"password\" name=\"password\" type=\"password\""));
    assert!(html.contains("<button type=\"submit\">Sign in</button>"));
    assert!(!html.contains("<script"));
    // Nothing of the request travels in the form but its id.
    for secret in [&request.state, &request.nonce, &request.challenge()] {
        assert!(!html.contains(secret.as_str()));
    }
    assert!(!html.contains(REDIRECT));
    let id = html
        .split_once("name=\"request\" value=\"")
        .unwrap()
        .1
        .split_once('"')
        .unwrap()
        .0
        .to_string();
    let (email, password) = sim.oidc_admin();
    let consent = http()
        .post(format!("{}/oauth/authorize/login", sim.base_url))
        .form(&[
            ("request", id.as_str()),
            ("email", &email),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    let html = consent.text().await.unwrap();
    assert!(html.contains(">Allow</button>"));
    assert!(html.contains(">Deny</button>"));
    assert!(html.contains("<html lang=\"en\">"));
    // A forged request id is refused with a page, not a redirect.
    let forged = http()
        .post(format!("{}/oauth/authorize/consent", sim.base_url))
        .form(&[("request", "req-forged"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_with_an_error() {
    let sim = sim().await;
    let (email, _) = sim.oidc_admin();
    let request = Request::new();
    let error = sim
        .oidc_sign_in(&request.url(&sim, &[]), &email, "wrong", Consent::Allow)
        .await
        .unwrap_err();
    let SignInError::Page { status, text } = error else {
        panic!("{error}");
    };
    assert_eq!(status, 200);
    assert!(text.contains("Wrong email or password"), "{text}");
    assert!(text.contains("Sign in"), "{text}");
}

#[tokio::test]
async fn the_full_code_flow_issues_tokens_with_a_verifiable_id_token() {
    let sim = sim().await;
    let started = now();
    let (request, body) = tokens_for(&sim, sim.oidc_admin()).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() > 40);
    assert!(body["refresh_token"].as_str().unwrap().len() > 40);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.starts_with("openid email"), "{scope}");
    assert!(scope.contains("personio:persons:read"), "{scope}");
    let id_token = body["id_token"].as_str().unwrap();
    let claims = verify(id_token, &jwks(&sim).await).expect("signature verifies against the JWKS");
    assert_eq!(claims["iss"], sim.base_url.as_str());
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert_eq!(claims["email"], sim.oidc_admin().0.as_str());
    let iat = claims["iat"].as_i64().unwrap();
    assert!((started..=now()).contains(&iat));
    assert!(claims["exp"].as_i64().unwrap() > now());
    assert!((started..=now()).contains(&claims["auth_time"].as_i64().unwrap()));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], jwks(&sim).await["keys"][0]["kid"]);
    // `sub` is stable per user, and differs between users.
    let (_, again) = tokens_for(&sim, sim.oidc_admin()).await;
    let (_, member) = tokens_for(&sim, sim.oidc_non_admin()).await;
    let sub = |body: &Value| claims_unverified(body["id_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(sub(&body), sub(&again));
    assert_ne!(sub(&body), sub(&member));
    assert_eq!(member["scope"], "openid email");
}

#[tokio::test]
async fn client_authentication_by_form_fields_works_and_a_wrong_secret_is_invalid_client() {
    let sim = sim().await;
    let (request, code) = code_for(&sim, sim.oidc_admin()).await;
    let form = |secret: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.to_string()),
            ("code_verifier", request.verifier.clone()),
            ("client_id", CLIENT.to_string()),
            ("client_secret", secret.to_string()),
        ]
    };
    let url = format!("{}/oauth/token", sim.base_url);
    let wrong = http().post(&url).form(&form("nope")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let wrong_basic = http()
        .post(&url)
        .basic_auth(CLIENT, Some("nope"))
        .form(&form("nope")[..4])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_basic.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong_basic.headers().contains_key("www-authenticate"));
    let good = http().post(&url).form(&form(SECRET)).send().await.unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    assert!(good.json::<Value>().await.unwrap()["id_token"].is_string());
}

#[tokio::test]
async fn pkce_is_required_with_s256_and_checked() {
    let sim = sim().await;
    let (email, password) = sim.oidc_admin();
    // Plain or missing method: an error redirect with the state, before any login.
    for method in [Some("plain"), None] {
        let request = Request::new();
        let url = request.url(&sim, &[("code_challenge_method", method)]);
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers().get(LOCATION).unwrap().to_str().unwrap();
        assert!(location.starts_with(REDIRECT));
        let pairs = query(location);
        assert_eq!(param(&pairs, "error"), Some("invalid_request"));
        assert_eq!(param(&pairs, "state"), Some(request.state.as_str()));
        assert_eq!(param(&pairs, "code"), None);
        let refused = sim
            .oidc_sign_in(
                &request.url(&sim, &[("code_challenge_method", method)]),
                &email,
                &password,
                Consent::Allow,
            )
            .await;
        assert!(matches!(
            refused,
            Err(SignInError::Page { status: 303, .. })
        ));
    }
    let missing_challenge = Request::new();
    let response = http()
        .get(missing_challenge.url(&sim, &[("code_challenge", None)]))
        .send()
        .await
        .unwrap();
    let location = response.headers().get(LOCATION).unwrap().to_str().unwrap();
    assert_eq!(param(&query(location), "error"), Some("invalid_request"));

    let (request, code) = code_for(&sim, sim.oidc_admin()).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body) = token_call(&sim, &base).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let other = Request::new();
    let mut wrong = base.to_vec();
    wrong.push(("code_verifier", &other.verifier));
    let (status, body) = token_call(&sim, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let mut short = base.to_vec();
    short.push(("code_verifier", "too-short"));
    let (status, body) = token_call(&sim, &short).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // A refused verifier does not spend the code: the right one still redeems it.
    let (status, body) = exchange(&sim, &request, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let sim = sim().await;
    let (request, code) = code_for(&sim, sim.oidc_admin()).await;
    let (status, body) = token_call(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:4712/connect/callback"),
            ("code_verifier", &request.verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_the_tokens_of_its_first_use() {
    let sim = sim().await;
    let (request, code) = code_for(&sim, sim.oidc_admin()).await;
    let (status, first) = exchange(&sim, &request, &code).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        api(&sim, access, "/v1/company/employees").await.0,
        StatusCode::OK
    );
    let (status, body) = exchange(&sim, &request, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body["error_description"].is_string());
    assert_eq!(
        api(&sim, access, "/v1/company/employees").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = refresh(&sim, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    let sim = sim().await;
    let (request, first) = tokens_for(&sim, sim.oidc_admin()).await;
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&sim, old).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_ne!(second["access_token"], first["access_token"]);
    let claims = verify(second["id_token"].as_str().unwrap(), &jwks(&sim).await).unwrap();
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert_eq!(
        claims["sub"],
        claims_unverified(first["id_token"].as_str().unwrap())["sub"]
    );
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(api(&sim, access, "/v2/webhooks").await.0, StatusCode::OK);
    // Reusing the spent one: refused, and the whole grant goes.
    let (status, body) = refresh(&sim, old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = refresh(&sim, new).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        api(&sim, access, "/v2/webhooks").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn revoking_every_grant_stops_refresh_and_access_tokens() {
    let sim = sim().await;
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        api(&sim, access, "/v1/company/employees").await.0,
        StatusCode::OK
    );
    sim.revoke_oidc_grants();
    let (status, answer) = api(&sim, access, "/v1/company/employees").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["success"], false);
    assert_eq!(
        api(&sim, access, "/v2/webhooks").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, answer) = refresh(&sim, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // A new sign-in works again.
    let (_, fresh) = tokens_for(&sim, sim.oidc_admin()).await;
    let access = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        api(&sim, access, "/v1/company/employees").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn short_lived_access_tokens_expire_and_refresh_brings_a_new_one() {
    let sim = sim().await;
    sim.set_oidc_access_token_ttl(Duration::from_millis(300));
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    assert_eq!(body["expires_in"], 1);
    let access = body["access_token"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = api(&sim, access, "/v1/company/employees").await.0;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.set_oidc_access_token_ttl(Duration::from_secs(3600));
    let (status, renewed) = refresh(&sim, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renewed["expires_in"], 3600);
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(
        api(&sim, access, "/v1/company/employees").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_redirect_uri_or_client_shows_an_error_page_and_never_redirects() {
    let sim = sim().await;
    let request = Request::new();
    for overrides in [
        vec![("redirect_uri", Some("https://evil.example/cb"))],
        vec![("redirect_uri", Some("http://127.0.0.1.evil.example/cb"))],
        vec![("redirect_uri", None)],
        vec![("client_id", Some("someone-else"))],
        vec![("client_id", None)],
        // Even with another error in the request, the bad URI wins: no redirect.
        vec![
            ("redirect_uri", Some("https://evil.example/cb")),
            ("code_challenge_method", Some("plain")),
        ],
    ] {
        let response = http()
            .get(request.url(&sim, &overrides))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{overrides:?}");
        assert!(response.headers().get(LOCATION).is_none(), "{overrides:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("role=\"alert\""), "{overrides:?}");
        assert!(!html.contains("evil.example"), "{overrides:?}");
    }
}

#[tokio::test]
async fn deny_redirects_access_denied_with_the_state() {
    let sim = sim().await;
    let (email, password) = sim.oidc_admin();
    let request = Request::new();
    let back = sim
        .oidc_sign_in(&request.url(&sim, &[]), &email, &password, Consent::Deny)
        .await
        .unwrap();
    let pairs = query(&back);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some(request.state.as_str()));
    assert_eq!(param(&pairs, "code"), None);
}

#[tokio::test]
async fn the_scope_must_hold_openid_and_state_and_nonce_are_required() {
    let sim = sim().await;
    let request = Request::new();
    for (overrides, error) in [
        (vec![("scope", Some("email"))], "invalid_scope"),
        (
            vec![("scope", Some("openid personio:salaries:read"))],
            "invalid_scope",
        ),
        (vec![("nonce", None)], "invalid_request"),
        (vec![("state", None)], "invalid_request"),
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
    ] {
        let response = http()
            .get(request.url(&sim, &overrides))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{overrides:?}");
        let location = response.headers().get(LOCATION).unwrap().to_str().unwrap();
        assert_eq!(
            param(&query(location), "error"),
            Some(error),
            "{overrides:?}"
        );
    }
}

#[tokio::test]
async fn the_administrator_reads_everything_and_the_other_user_gets_403() {
    let sim = sim().await;
    let (_, admin) = tokens_for(&sim, sim.oidc_admin()).await;
    let admin = admin["access_token"].as_str().unwrap();
    let (status, list) = api(&sim, admin, "/v1/company/employees?limit=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 5);
    assert!(list["data"][0]["attributes"]["status"].is_object());
    assert!(list["data"][0]["attributes"]["termination_date"].is_object());
    let (status, _) = api(&sim, admin, "/v1/company/employees/attributes").await;
    assert_eq!(status, StatusCode::OK);
    let (_, member) = tokens_for(&sim, sim.oidc_non_admin()).await;
    let member = member["access_token"].as_str().unwrap();
    let (status, body) = api(&sim, member, "/v1/company/employees").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], 403);
    for path in [
        "/v1/company/employees/1",
        "/v1/company/employees/attributes",
        "/v2/webhooks",
    ] {
        assert_eq!(
            api(&sim, member, path).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let (status, body) = api(&sim, member, "/v2/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["errors"][0]["title"].is_string());
}

#[tokio::test]
async fn a_restricted_extra_credential_does_not_see_status_or_termination_date() {
    let readable: Vec<String> = ["first_name", "last_name", "email", "position"]
        .into_iter()
        .map(str::to_string)
        .collect();
    let sim = PersonioSim::start(PersonioSimConfig {
        employees: 3,
        rate_limits: false,
        extra_credentials: vec![SimCredential {
            client_id: "restricted-client".to_string(),
            client_secret: "restricted-secret".to_string(),
            readable_attributes: Some(readable),
        }],
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    let token = |id: &'static str, secret: &'static str| {
        let url = format!("{}/v2/auth/token", sim.base_url);
        async move {
            let body: Value = http()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let keys = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|attribute| attribute["key"].as_str().unwrap().to_string())
            .collect()
    };
    let restricted = token("restricted-client", "restricted-secret").await;
    let main = token(CLIENT, SECRET).await;
    assert_ne!(restricted, main);
    let (status, body) = api(&sim, &restricted, "/v1/company/employees/attributes").await;
    assert_eq!(status, StatusCode::OK);
    let seen = keys(&body);
    assert!(seen.contains(&"first_name".to_string()));
    assert!(!seen.contains(&"status".to_string()));
    assert!(!seen.contains(&"termination_date".to_string()));
    let (_, list) = api(&sim, &restricted, "/v1/company/employees").await;
    let attributes = list["data"][0]["attributes"].as_object().unwrap();
    assert!(attributes.contains_key("first_name"));
    assert!(!attributes.contains_key("status"));
    assert!(!attributes.contains_key("termination_date"));
    // The main credential still sees everything, on the same simulator.
    let (_, body) = api(&sim, &main, "/v1/company/employees/attributes").await;
    let seen = keys(&body);
    assert!(seen.contains(&"status".to_string()));
    assert!(seen.contains(&"termination_date".to_string()));
    // The extra credential's secret is checked like the main one's.
    let (status, body) = {
        let response = http()
            .post(format!("{}/v2/auth/token", sim.base_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "restricted-client"),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn each_id_token_fault_produces_what_it_says() {
    let sim = sim().await;
    let keys = jwks(&sim).await;
    sim.set_id_token_fault(Some(IdTokenFault::ForeignKey));
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(verify(id_token, &keys), None, "the signature must fail");
    assert_eq!(claims_unverified(id_token)["aud"], CLIENT);

    sim.set_id_token_fault(Some(IdTokenFault::WrongAudience));
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    let claims = verify(body["id_token"].as_str().unwrap(), &keys).unwrap();
    assert_ne!(claims["aud"], CLIENT);
    assert!(claims["exp"].as_i64().unwrap() > now());

    sim.set_id_token_fault(Some(IdTokenFault::Expired));
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    let claims = verify(body["id_token"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(claims["aud"], CLIENT);
    assert!(claims["exp"].as_i64().unwrap() < now() - 60 * 30);

    sim.set_id_token_fault(None);
    let (_, body) = tokens_for(&sim, sim.oidc_admin()).await;
    let claims = verify(body["id_token"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(claims["aud"], CLIENT);
    assert!(claims["exp"].as_i64().unwrap() > now());
}

#[tokio::test]
async fn provider_calls_do_not_count_as_api_calls_without_an_app_id() {
    let sim = sim().await;
    let _ = tokens_for(&sim, sim.oidc_admin()).await;
    let _ = jwks(&sim).await;
    assert_eq!(sim.calls_without_app_id(), 0);
}
