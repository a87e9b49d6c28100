//! The relying party (`personio::oidc`) against the Personio simulator's OpenID
//! provider: a sign-in succeeds, and every way an answer can be wrong is refused.

use personio_sync::domain::Secret;
use personio_sync::personio::oidc::{OidcError, OidcSettings, PendingLogin, RelyingParty};
use personio_sync_sim::personio::{
    Consent, IdTokenFault, PersonioSim, PersonioSimConfig, ScriptedAnswer,
};

use crate::helpers::{SIM_CLIENT_ID, SIM_CLIENT_SECRET};

/// Where the provider sends the browser back (any loopback URI is registered).
const REDIRECT: &str = "http://127.0.0.1:9/connect/callback";

async fn sim() -> PersonioSim {
    PersonioSim::start(PersonioSimConfig {
        employees: 3,
        ..PersonioSimConfig::default()
    })
    .await
    .expect("personio sim")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn relying_party(sim: &PersonioSim) -> RelyingParty {
    relying_party_for(&sim.base_url, SIM_CLIENT_SECRET)
}

fn relying_party_for(issuer: &str, secret: &str) -> RelyingParty {
    RelyingParty::new(
        OidcSettings {
            issuer: issuer.to_string(),
            client_id: SIM_CLIENT_ID.into(),
            client_secret: Secret::new(secret),
        },
        http(),
    )
    .expect("relying party")
}

/// Begins a sign-in, signs in as `user` and allows: the pending login, the code and
/// the state the provider returned.
async fn signed_in(
    sim: &PersonioSim,
    rp: &RelyingParty,
    user: (String, String),
) -> (PendingLogin, String, String) {
    let (url, pending) = rp.begin(REDIRECT).await.expect("begin");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("offline_access"), "{url}");
    let back = sim
        .oidc_sign_in(&url, &user.0, &user.1, Consent::Allow)
        .await
        .expect("signed in");
    let back = reqwest::Url::parse(&back).expect("redirect URL");
    let param = |key: &str| {
        back.query_pairs()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_else(|| panic!("no {key} in {back}"))
    };
    (pending, param("code"), param("state"))
}

#[tokio::test]
async fn a_sign_in_yields_a_grant_whose_refresh_token_rotates() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    assert!(!format!("{pending:?}").contains(&pending.state));
    let grant = rp.finish(&pending, &code, &state).await.expect("grant");
    assert_eq!(grant.issuer, sim.base_url);
    assert!(!grant.subject.is_empty());
    assert_eq!(grant.email.as_deref(), Some(sim.oidc_admin().0.as_str()));
    assert!(grant.expires_at > chrono::Utc::now());
    let scopes = grant.scopes.clone().expect("scopes named");
    for scope in personio_sync::personio::scopes::REQUIRED {
        assert!(
            scopes.iter().any(|have| have == scope),
            "{scope} in {scopes:?}"
        );
    }
    let debug = format!("{grant:?}");
    assert!(
        !debug.contains(grant.refresh_token.expose())
            && !debug.contains(grant.access_token.expose())
    );
    // Rotation: the new refresh token works, the used one is dead (and, reused, ends
    // the grant).
    let refreshed = rp.refresh(&grant.refresh_token).await.expect("refresh");
    let rotated = refreshed.refresh_token.expect("rotated");
    assert_ne!(rotated, grant.refresh_token);
    assert_eq!(
        rp.refresh(&grant.refresh_token).await.unwrap_err(),
        OidcError::GrantRevoked
    );
    assert_eq!(
        rp.refresh(&rotated).await.unwrap_err(),
        OidcError::GrantRevoked
    );
}

#[tokio::test]
async fn a_state_that_is_not_the_sessions_is_refused() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    let (pending, code, _state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    assert_eq!(
        rp.finish(&pending, &code, "forged-state")
            .await
            .unwrap_err(),
        OidcError::StateMismatch
    );
    // Another session's login does not fit this answer either.
    let (other, _, _) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let (_, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    assert_eq!(
        rp.finish(&other, &code, &state).await.unwrap_err(),
        OidcError::StateMismatch
    );
}

#[tokio::test]
async fn id_tokens_with_a_bad_signature_a_wrong_audience_or_expired_are_refused() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    for (fault, expect) in [
        (IdTokenFault::ForeignKey, "signature"),
        (IdTokenFault::WrongAudience, "audience"),
        (IdTokenFault::Expired, "expired"),
    ] {
        sim.set_id_token_fault(Some(fault));
        let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
        let error = rp.finish(&pending, &code, &state).await.unwrap_err();
        let OidcError::InvalidIdToken(reason) = &error else {
            panic!("{fault:?}: an invalid ID token expected, got {error:?}");
        };
        assert!(
            reason.to_lowercase().contains(expect),
            "{fault:?}: {reason}"
        );
    }
    sim.set_id_token_fault(None);
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    rp.finish(&pending, &code, &state)
        .await
        .expect("a good token passes");
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let grant = rp.finish(&pending, &code, &state).await.expect("first use");
    let error = rp.finish(&pending, &code, &state).await.unwrap_err();
    assert!(
        matches!(&error, OidcError::Refused { error, .. } if error == "invalid_grant"),
        "{error:?}"
    );
    // The replay revoked what the first use issued.
    assert_eq!(
        rp.refresh(&grant.refresh_token).await.unwrap_err(),
        OidcError::GrantRevoked
    );
}

#[tokio::test]
async fn a_code_without_its_pkce_verifier_is_refused() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    // The token endpoint called without `code_verifier`.
    let (pending, code, _) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let answer = http()
        .post(format!("{}/oauth/token", sim.base_url))
        .basic_auth(SIM_CLIENT_ID, Some(SIM_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", pending.redirect_uri.as_str()),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert!(
        ["invalid_request", "invalid_grant"].contains(&body["error"].as_str().unwrap_or("")),
        "{body}"
    );
    // Through the relying party with another login's verifier.
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let (other, _, _) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let wrong = PendingLogin {
        pkce_verifier: other.pkce_verifier,
        ..pending
    };
    let error = rp.finish(&wrong, &code, &state).await.unwrap_err();
    assert!(
        matches!(&error, OidcError::Refused { error, .. } if error == "invalid_grant"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_issuer_that_names_itself_otherwise_or_a_wrong_client_secret_is_refused() {
    let sim = sim().await;
    let rp = relying_party_for(&format!("{}/", sim.base_url), SIM_CLIENT_SECRET);
    let error = rp.begin(REDIRECT).await.unwrap_err();
    assert!(matches!(error, OidcError::Discovery(_)), "{error:?}");
    let rp = relying_party_for(&sim.base_url, "not-the-secret");
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let error = rp.finish(&pending, &code, &state).await.unwrap_err();
    assert!(
        matches!(&error, OidcError::Refused { error, .. } if error == "invalid_client"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn an_unknown_signing_key_fetches_the_jwks_again_once() {
    // A provider that restarts with a new key at the same issuer: the relying party's
    // cached JWKS lacks the new `kid`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = || PersonioSimConfig {
        employees: 3,
        ..PersonioSimConfig::default()
    };
    let first = PersonioSim::start_on(listener, config()).await.unwrap();
    let rp = relying_party(&first);
    rp.begin(REDIRECT)
        .await
        .expect("discovered with the first key");
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "port not free: {error}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let second = PersonioSim::start_on(listener, config()).await.unwrap();
    assert_eq!(second.base_url, rp.issuer());
    let (pending, code, state) = signed_in(&second, &rp, second.oidc_admin()).await;
    rp.finish(&pending, &code, &state)
        .await
        .expect("the new key is fetched and the token passes");
}

#[tokio::test]
async fn a_refresh_the_provider_cannot_answer_now_is_transient_and_spends_nothing() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let grant = rp.finish(&pending, &code, &state).await.expect("grant");
    let token = grant.refresh_token;
    // Answers that are no OAuth answer or say "later" (RFC 6749 §5.2 and §4.1.2.1).
    for (status, content_type, body) in [
        (
            503,
            "text/html",
            "<html><body>Down for maintenance</body></html>",
        ),
        (502, "application/json", r#"{"error":"server_error"}"#),
        (
            500,
            "application/problem+json",
            r#"{"title":"Internal Server Error"}"#,
        ),
        (500, "text/plain", ""),
        (429, "application/json", "{}"),
        (
            400,
            "application/json",
            r#"{"error":"temporarily_unavailable","error_description":"maintenance"}"#,
        ),
        (400, "application/json", r#"{"error":"server_error"}"#),
        (200, "text/html", "<html><body>A proxy's page</body></html>"),
    ] {
        sim.script(
            ScriptedAnswer::new(
                reqwest::Method::POST,
                "/oauth/token",
                status,
                content_type,
                body,
            )
            .times(1),
        );
        let error = rp.refresh(&token).await.unwrap_err();
        assert!(error.is_transient(), "{status} {body}: {error:?}");
        assert!(!error.to_string().contains(token.expose()));
    }
    sim.knobs.set_outage(true);
    let error = rp.refresh(&token).await.unwrap_err();
    assert!(matches!(error, OidcError::Unreachable(_)), "{error:?}");
    sim.knobs.set_outage(false);

    // A refusal of the client is no outage.
    sim.script(
        ScriptedAnswer::new(
            reqwest::Method::POST,
            "/oauth/token",
            401,
            "application/json",
            r#"{"error":"invalid_client"}"#,
        )
        .times(1),
    );
    let error = rp.refresh(&token).await.unwrap_err();
    assert!(
        matches!(&error, OidcError::Refused { error, .. } if error == "invalid_client")
            && !error.is_transient(),
        "{error:?}"
    );

    // None of these spent the refresh token; a revoked grant is final.
    let refreshed = rp.refresh(&token).await.expect("the grant is intact");
    sim.revoke_oidc_grants();
    let error = rp
        .refresh(&refreshed.refresh_token.expect("rotated"))
        .await
        .unwrap_err();
    assert_eq!(error, OidcError::GrantRevoked);
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_discovery_outage_after_a_restart_is_transient() {
    let sim = sim().await;
    let rp = relying_party(&sim);
    let (pending, code, state) = signed_in(&sim, &rp, sim.oidc_admin()).await;
    let token = rp
        .finish(&pending, &code, &state)
        .await
        .expect("grant")
        .refresh_token;
    // A new relying party (the service restarted) has not discovered the provider yet.
    let restarted = relying_party(&sim);
    sim.knobs
        .set_path_failing("/.well-known/openid-configuration", true);
    let error = restarted.refresh(&token).await.unwrap_err();
    assert!(matches!(error, OidcError::Unreachable(_)), "{error:?}");
    sim.knobs
        .set_path_failing("/.well-known/openid-configuration", false);
    restarted
        .refresh(&token)
        .await
        .expect("discovered once the provider answers");
}
