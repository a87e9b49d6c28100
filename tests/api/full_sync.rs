//! Issue 2 acceptance: the initial full sync and its reconciliation.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    LaMode, assert_learnamp_matches_personio, spawn_app, spawn_app_in, spawn_app_with,
};
use crate::in_both_modes;
use personio_sync_sim::learnamp::SimUserStatus;
use personio_sync_sim::personio::PersonioSimConfig;

/// The assumed contracts the tenant view lists as missing after a sync in `mode` that
/// wrote avatars and leave dates: none against the default simulator, both against a
/// documented-only one.
pub fn expected_unsupported(mode: LaMode) -> Vec<&'static str> {
    match mode {
        LaMode::Default => Vec::new(),
        LaMode::Strict => vec!["avatar", "leave_date"],
    }
}

/// The names in the view's `learnamp_unsupported`, sorted.
pub fn unsupported_in(view: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = view["learnamp_unsupported"]
        .as_object()
        .unwrap_or_else(|| panic!("learnamp_unsupported is an object: {view}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

in_both_modes! {
async fn initial_sync_of_2000_employees_maps_every_field_and_a_second_sync_writes_nothing(mode: LaMode) {
    let app = spawn_app_in(mode, 2000, 7).await;
    let (status, body) = app.create_tenant(&app.spec("acme", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "acme");
    let view = app.wait_for_sync("acme", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_learnamp_matches_personio(&app);
    let active = app
        .personio
        .employees()
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .count();
    assert_eq!(
        app.learnamp.users().len(),
        active,
        "exactly one user per active employee"
    );
    assert_eq!(view["last_sync"]["created"], active as u64);
    assert!(
        app.learnamp.invitations().is_empty(),
        "manual policy invites nobody"
    );

    app.personio.log.clear();
    app.learnamp.log.clear();
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (status, _) = app.admin("POST", "/admin/tenants/acme/sync", None).await;
    assert_eq!(status, 202);
    let view = app.wait_for_sync("acme", previous.as_deref()).await;
    assert_eq!(view["state"], "live", "{view}");
    let writes = app.learnamp.log.writes();
    assert!(
        writes.is_empty(),
        "second sync wrote to Learn Amp: {writes:?}"
    );
    let personio_calls = app.personio.log.len();
    let budget = 2000usize.div_ceil(100) + 3;
    assert!(
        personio_calls <= budget,
        "{personio_calls} Personio calls > {budget}"
    );
    assert_eq!(
        view["last_sync"]["unchanged"], 2000,
        "every employee, inactive ones included, needed no write: {view}"
    );
    assert_eq!(unsupported_in(&view), expected_unsupported(mode), "{view}");
}
}

in_both_modes! {
async fn existing_users_are_adopted_not_duplicated(mode: LaMode) {
    let app = spawn_app_in(mode, 150, 11).await;
    let people = app.personio.employees();
    let active: Vec<_> = people
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .collect();
    let inactive: Vec<_> = people.iter().filter(|p| p.employee.is_inactive()).collect();
    assert!(active.len() > 10 && !inactive.is_empty());
    let mut adopted = Vec::new();
    for person in active.iter().take(10) {
        let email = person.employee.email.clone().unwrap().to_uppercase();
        adopted.push(app.learnamp.insert_user(&email, "Old", "Name", None));
    }
    let leaver_email = inactive[0].employee.email.clone().unwrap();
    let leaver_id = app
        .learnamp
        .insert_user(&leaver_email, "Gone", "Soon", None);

    let (status, body) = app.create_tenant(&app.spec("adopt", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("adopt", None).await;
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    for (person, id) in active.iter().take(10).zip(&adopted) {
        let user = app.learnamp.user(*id).expect("adopted user still there");
        assert_eq!(
            user.integration_external_id.as_deref(),
            Some(person.employee.id.as_str())
        );
        assert_eq!(
            Some(user.first_name.as_str()),
            person.employee.first_name.as_deref()
        );
    }
    let leaver = app.learnamp.user(leaver_id).unwrap();
    assert_eq!(
        leaver.status,
        SimUserStatus::Deactivated,
        "a matching user of an inactive person is deactivated"
    );
    assert_eq!(app.learnamp.users().len(), active.len() + 1);
    // The email check in the helper is case-insensitive; the adopted users kept their
    // upper-case email until the update wrote Personio's.
    assert_learnamp_matches_personio(&app);
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_failing_calls_end_in_the_same_state() {
    let app = spawn_app(300, 5).await;
    app.personio.knobs.set_error_rate(0.1);
    app.learnamp.knobs.set_error_rate(0.1);
    let (status, body) = app
        .create_tenant(&app.spec("flaky", json!({"invite_policy": {"mode": "immediately"}})))
        .await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("flaky", None).await;
    let injected = app
        .learnamp
        .log
        .all()
        .iter()
        .filter(|call| call.injected)
        .count();
    assert!(injected > 10, "the knob injected only {injected} failures");
    if view["last_sync"]["failed"] != 0 {
        // Anything the bounded retries could not carry is retried by the next sync.
        let previous = view["last_sync"]["finished_at"]
            .as_str()
            .map(str::to_string);
        app.admin("POST", "/admin/tenants/flaky/sync", None).await;
        app.wait_for_sync("flaky", previous.as_deref()).await;
    }
    assert_learnamp_matches_personio(&app);
    let invitations = app.learnamp.invitations();
    let mut invited: Vec<u64> = invitations.iter().map(|record| record.user_id).collect();
    invited.sort_unstable();
    let before = invited.len();
    invited.dedup();
    assert_eq!(before, invited.len(), "someone was invited twice");
    assert_eq!(
        invited.len(),
        app.learnamp.users().len(),
        "every user invited once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_cannot_read_status_fails_the_tenant_and_writes_nothing() {
    let readable: Vec<String> = [
        "first_name",
        "last_name",
        "email",
        "position",
        "department",
        "office",
        "team",
        "hire_date",
        "termination_date",
        "supervisor",
        "profile_picture",
    ]
    .iter()
    .map(|key| key.to_string())
    .collect();
    let app = spawn_app_with(PersonioSimConfig {
        employees: 30,
        seed: 3,
        readable_attributes: Some(readable),
        ..PersonioSimConfig::default()
    })
    .await;
    let (status, body) = app.create_tenant(&app.spec("blind", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app
        .wait_for("blind", Duration::from_secs(30), |view| {
            view["state"] == "failed"
        })
        .await;
    let error = view["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("status"), "{error}");
    assert!(error.contains("Personio"), "{error}");
    assert!(
        app.learnamp.log.writes().is_empty(),
        "nothing may be written"
    );
    assert!(app.learnamp.users().is_empty());
}

in_both_modes! {
async fn immediately_invites_each_user_once_even_across_syncs(mode: LaMode) {
    let app = spawn_app_in(mode, 80, 9).await;
    let (status, _) = app
        .create_tenant(&app.spec("inv", json!({"invite_policy": {"mode": "immediately"}})))
        .await;
    assert_eq!(status, 201);
    let view = app.wait_for_sync("inv", None).await;
    let users = app.learnamp.users().len();
    assert_eq!(app.learnamp.invitations().len(), users);
    assert_eq!(view["last_sync"]["invited"], users as u64);
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    app.admin("POST", "/admin/tenants/inv/sync", None).await;
    let view = app.wait_for_sync("inv", previous.as_deref()).await;
    assert_eq!(view["last_sync"]["invited"], 0);
    assert_eq!(
        app.learnamp.invitations().len(),
        users,
        "no second invitation"
    );
    let (tokens, unscoped) = app.learnamp.token_requests();
    assert!(tokens > 0);
    assert_eq!(unscoped, 0, "a token request went out without scope");
}
}

in_both_modes! {
async fn under_immediately_every_active_person_is_invited_once_and_live_hires_and_leavers_follow(mode: LaMode) {
    let app = spawn_app_in(mode, 2000, 23).await;
    let people = app.personio.employees();
    let active: Vec<_> = people.iter().filter(|p| !p.employee.is_inactive()).collect();
    let inactive: Vec<_> = people.iter().filter(|p| p.employee.is_inactive()).collect();
    assert!(inactive.len() >= 5, "the generator makes leavers");
    // Leavers who already have a (confirmed) Learn Amp user: adopted, then deactivated.
    let adopted_leavers: Vec<u64> = inactive
        .iter()
        .take(5)
        .map(|person| {
            let email = person.employee.email.clone().expect("email");
            app.learnamp.insert_user(&email, "Gone", "Soon", None)
        })
        .collect();
    let (status, body) = app
        .create_tenant(&app.spec("strict", json!({"invite_policy": {"mode": "immediately"}})))
        .await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("strict", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_eq!(view["last_sync"]["created"], active.len() as u64, "{view}");
    assert_eq!(view["last_sync"]["invited"], active.len() as u64, "{view}");
    assert_eq!(view["last_sync"]["deactivated"], 5, "{view}");
    assert_learnamp_matches_personio(&app);
    let users = app.learnamp.users();
    assert_eq!(users.len(), active.len() + 5, "no inactive person created");
    for id in &adopted_leavers {
        assert_eq!(app.learnamp.user(*id).expect("kept").status, SimUserStatus::Deactivated);
    }
    let mut invited: Vec<u64> = app.learnamp.invitations().iter().map(|i| i.user_id).collect();
    invited.sort_unstable();
    let sent = invited.len();
    invited.dedup();
    assert_eq!(sent, invited.len(), "someone was invited twice");
    assert_eq!(sent, active.len(), "every active person invited once");
    assert_eq!(unsupported_in(&view), expected_unsupported(mode), "{view}");

    // A hire and a leaver with a picture, by webhook.
    let mut hire = (*active[0]).clone();
    hire.employee.id = "990001".into();
    hire.employee.email = Some("strict.hire@example.test".into());
    app.personio.upsert_employee(hire);
    let leaver = active
        .iter()
        .find(|p| p.picture.is_some())
        .expect("someone has a picture");
    let leaver_id = leaver.employee.id.clone();
    let mut gone = (*leaver).clone();
    gone.employee.status = Some(personio_sync_sim::person::EmployeeStatus::Inactive);
    gone.picture = Some(b"\x89PNG\r\n\x1a\nnew picture".to_vec());
    app.personio.upsert_employee(gone);
    crate::webhooks::wait_learnamp(&app, "hire created and leaver deactivated", |app| {
        app.learnamp
            .user_by_external_id("990001")
            .is_some_and(|u| u.status == SimUserStatus::InvitePending)
            && app
                .learnamp
                .user_by_external_id(&leaver_id)
                .is_some_and(|u| u.status == SimUserStatus::Deactivated)
    })
    .await;
    assert_eq!(app.learnamp.invitations().len(), active.len() + 1);
    let view = app
        .wait_for("strict", Duration::from_secs(20), |view| view["pending_events"] == 0)
        .await;
    assert_eq!(view["state"], "live", "{view}");
    assert_learnamp_matches_personio(&app);
    let (_, unscoped) = app.learnamp.token_requests();
    assert_eq!(unscoped, 0, "a token request went out without scope");
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_missing_from_the_credentials_fails_the_tenant_naming_it() {
    let app = spawn_app_in(LaMode::Strict, 30, 13).await;
    let people = app.personio.employees();
    let leaver = people
        .iter()
        .find(|p| p.employee.is_inactive())
        .expect("a leaver");
    let email = leaver.employee.email.clone().expect("email");
    app.learnamp.insert_user(&email, "Gone", "Soon", None);
    // The owner narrowed the credentials: deactivating needs a scope they lack now.
    app.learnamp.revoke_scope("users:deactivate");
    let (status, body) = app.create_tenant(&app.spec("narrow", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app
        .wait_for("narrow", Duration::from_secs(60), |view| {
            view["state"] == "failed"
        })
        .await;
    let error = view["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("users:deactivate"), "{error}");
    assert!(error.contains("Learn Amp"), "{error}");
    let (_, unscoped) = app.learnamp.token_requests();
    assert_eq!(unscoped, 0);
}

in_both_modes! {
async fn an_adopted_leaver_whose_fields_are_refused_is_still_deactivated(mode: LaMode) {
    // Seed 13: the first leaver's department has no active member, so it has no team
    // and Learn Amp refuses that primary team on the adoption's update.
    let app = spawn_app_in(mode, 30, 13).await;
    let people = app.personio.employees();
    let leaver = people
        .iter()
        .find(|p| p.employee.is_inactive())
        .expect("a leaver");
    let department = leaver.employee.department.clone().expect("department").id;
    assert!(
        !people.iter().any(|p| !p.employee.is_inactive()
            && p.employee.department.as_ref().is_some_and(|d| d.id == department)),
        "test setup: the leaver's department has active members"
    );
    let email = leaver.employee.email.clone().expect("email");
    let id = app.learnamp.insert_user(&email, "Gone", "Soon", None);
    let (status, body) = app.create_tenant(&app.spec("refused", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("refused", None).await;
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_eq!(view["last_sync"]["deactivated"], 1, "{view}");
    assert_eq!(app.learnamp.user(id).expect("kept").status, SimUserStatus::Deactivated);
}
}

/// Learn Amp lost a report's manager while the stored record still claims it, the state
/// a SIGKILL between the Learn Amp write and the record write leaves behind (crash storm
/// seed 1795593225848232899: the manager was cleared when the boss left, the record of
/// that write was lost, the boss came back). The reconciliation writes it again, and
/// only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_restores_a_manager_learn_amp_lacks_though_the_record_claims_it() {
    let app = spawn_app(60, 21).await;
    let (status, body) = app.create_tenant(&app.spec("drift", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("drift", None).await;
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_learnamp_matches_personio(&app);
    let report = app
        .learnamp
        .users()
        .into_iter()
        .find(|user| user.manager_id.is_some())
        .expect("a synced user with a manager");

    // Cleared through Learn Amp's API, behind the service's back.
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth/token", app.learnamp.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
            ("scope", "users:update"),
        ])
        .send()
        .await
        .expect("token call")
        .json()
        .await
        .expect("token body");
    let cleared = http
        .put(format!("{}/v1/users/{}", app.learnamp.base_url, report.id))
        .bearer_auth(token["access_token"].as_str().expect("access_token"))
        .form(&[("managerEmail", "")])
        .send()
        .await
        .expect("update call");
    assert_eq!(cleared.status().as_u16(), 200);
    assert_eq!(app.learnamp.user(report.id).unwrap().manager_id, None);

    app.learnamp.log.clear();
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (status, _) = app.admin("POST", "/admin/tenants/drift/sync", None).await;
    assert_eq!(status, 202);
    let view = app.wait_for_sync("drift", previous.as_deref()).await;
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_learnamp_matches_personio(&app);
    let writes: Vec<String> = app
        .learnamp
        .log
        .writes()
        .iter()
        .map(|call| format!("{} {}", call.method, call.path))
        .collect();
    assert_eq!(writes, [format!("PUT /v1/users/{}", report.id)]);
}
