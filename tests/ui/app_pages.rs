//! The app pages of issue 16 in a browser: settings with the preview, the progress bar
//! of a long sync, people and a person's history, and axe-core on every page.

use std::time::Duration;

use chrono::{Days, Utc};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::PersonioSimConfig;
use personio_sync_testkit::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::harness::{ready, run_script};

/// A session for `tenant` as the connect flow would start it; answers the cookie's id.
async fn session_id(app: &TestApp, tenant: &str) -> String {
    let (_, cookie) = app.state.sessions.start(tenant).await;
    cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, id)| id.to_string())
        .unwrap()
}

async fn live_tenant(app: &TestApp, tenant: &str) {
    let (status, body) = app.create_tenant(&app.spec(tenant, json!({}))).await;
    assert_eq!(status, 201, "{body}");
    app.wait_for_sync(tenant, None).await;
}

/// (a) `Invite new joiners` → `Days before their start date` with 7 → `Save` shows the
/// invitations it would schedule → `Confirm` → People shows each future joiner's day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_before_start_is_previewed_confirmed_and_shown_on_people() {
    if !ready("days_before_start_is_previewed_confirmed_and_shown_on_people") {
        return;
    }
    let app = spawn_app(40, 7).await;
    live_tenant(&app, "acme").await;
    let today = Utc::now().date_naive();
    // Every future joiner: scheduled 7 days before the start, or invited now when that
    // day has come.
    let joiners: Vec<Value> = app
        .personio
        .employees()
        .into_iter()
        .filter(|sim| sim.employee.status != Some(EmployeeStatus::Inactive))
        .filter_map(|sim| {
            let hire = sim.employee.hire_date.filter(|hire| *hire > today)?;
            let due = hire.checked_sub_days(Days::new(7)).unwrap();
            let expected = if due > today {
                format!("Scheduled for {}", due.format("%-d %b %Y"))
            } else {
                format!("Sent on {}", today.format("%-d %b %Y"))
            };
            Some(json!({
                "email": sim.employee.email.clone().unwrap(),
                "name": format!("{} {}", sim.employee.first_name.clone().unwrap(), sim.employee.last_name.clone().unwrap()),
                "scheduled": due > today,
                "invitation": expected,
            }))
        })
        .collect();
    assert!(
        joiners
            .iter()
            .any(|joiner| joiner["scheduled"] == json!(true)),
        "seed 7 has a future joiner more than a week away: {joiners:?}"
    );
    let outcome = run_script(
        "app_settings",
        "settings",
        &[
            ("APP_URL", format!("{}/app/acme/", app.base)),
            ("SESSION_ID", session_id(&app, "acme").await),
            ("JOINERS", Value::Array(joiners.clone()).to_string()),
        ],
    )
    .await;
    assert_eq!(outcome.result["checked"], json!(joiners.len()));
    let (status, spec_view) = app.admin("GET", "/admin/tenants/acme", None).await;
    assert_eq!(status, 200, "{spec_view}");
    let stored = app.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(stored.settings.invite_policy).unwrap(),
        json!({"mode": "days_before_hire", "days": 7}),
        "Confirm stored the setting"
    );
    for joiner in joiners
        .iter()
        .filter(|joiner| joiner["scheduled"] == json!(true))
    {
        let email = joiner["email"].as_str().unwrap();
        let (status, page) = app
            .admin(
                "GET",
                &format!("/admin/tenants/acme/employees?query={email}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["people"][0]["invitation"], "scheduled", "{page}");
    }
}

/// (b) A 2,000-employee initial sync at 2 ms API latency: the overview's bar moves from
/// below 50% to 100% while the page stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_moves_during_a_long_sync() {
    if !ready("the_progress_bar_moves_during_a_long_sync") {
        return;
    }
    let app = spawn_app_with(PersonioSimConfig {
        employees: 2_000,
        seed: 3,
        ..PersonioSimConfig::default()
    })
    .await;
    app.personio.knobs.set_latency(Duration::from_millis(2));
    app.learnamp.knobs.set_latency(Duration::from_millis(2));
    let session = session_id(&app, "big").await;
    let (status, body) = app.create_tenant(&app.spec("big", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let outcome = run_script(
        "app_progress",
        "progress",
        &[
            ("APP_URL", format!("{}/app/big/", app.base)),
            ("SESSION_ID", session),
        ],
    )
    .await;
    let samples: Vec<u64> = outcome.result["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|value| value.as_u64().unwrap())
        .collect();
    let first_low = samples
        .iter()
        .position(|percent| *percent < 50)
        .expect("a sample below 50%");
    let full = samples
        .iter()
        .rposition(|percent| *percent == 100)
        .expect("a sample at 100%");
    assert!(first_low < full, "below 50% before 100%: {samples:?}");
    let between = samples[first_low..full]
        .iter()
        .filter(|percent| (1..100).contains(*percent))
        .count();
    assert!(
        between > 0,
        "the bar moved through values between: {samples:?}"
    );
    let view = app.view("big").await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(
        view["last_sync"]["created"],
        json!(app.learnamp.users().len())
    );
}

/// (c) `Search people` finds a person by email; their history shows the change a
/// webhook made during the test, before → after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_person_whose_history_shows_a_webhook_change() {
    if !ready("search_finds_a_person_whose_history_shows_a_webhook_change") {
        return;
    }
    let app = spawn_app(40, 11).await;
    live_tenant(&app, "acme").await;
    let mut person = app
        .personio
        .employees()
        .into_iter()
        .find(|sim| sim.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    let id = person.employee.id.clone();
    let before = app
        .learnamp
        .user_by_external_id(&id)
        .and_then(|user| user.job_title)
        .unwrap_or_default();
    person.employee.position = Some("Head of Browser Tests".into());
    app.personio.upsert_employee(person.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app
        .learnamp
        .user_by_external_id(&id)
        .and_then(|user| user.job_title)
        .as_deref()
        != Some("Head of Browser Tests")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook reached Learn Amp"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcome = run_script(
        "app_people",
        "people",
        &[
            ("APP_URL", format!("{}/app/acme/", app.base)),
            ("SESSION_ID", session_id(&app, "acme").await),
            ("EMAIL", person.employee.email.clone().unwrap()),
            (
                "CHANGE",
                format!("jobTitle: {before} → Head of Browser Tests"),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.result["rows"],
        json!(1),
        "one person matches the email"
    );
    let (status, detail) = app
        .admin("GET", &format!("/admin/tenants/acme/employees/{id}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["history"][0]["source"], "webhook", "{detail}");
}

/// (d) Every page, error pages included, at desktop and 360 px: axe-core finds no
/// serious or critical violation, nothing scrolls sideways, and invalid settings are
/// marked on their field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_at_both_widths() {
    if !ready("every_page_passes_axe_at_both_widths") {
        return;
    }
    let app = spawn_app(40, 7).await;
    live_tenant(&app, "acme").await;
    let person = app
        .personio
        .employees()
        .into_iter()
        .find(|sim| sim.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    let mut other = app.spec("other", json!({}));
    other.as_object_mut().unwrap().remove("personio");
    let (status, body) = app.create_tenant(&other).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .admin("POST", "/admin/tenants/other/invitations", Some(&json!({})))
        .await;
    assert_eq!(status, 201, "{body}");
    let other_link = body["url"].as_str().unwrap().to_string();
    let outcome = run_script(
        "app_access",
        "access",
        &[
            ("OTHER_LINK", other_link),
            ("BASE_URL", app.base.clone()),
            ("APP_URL", format!("{}/app/acme/", app.base)),
            ("SESSION_ID", session_id(&app, "acme").await),
            ("PERSON_ID", person.employee.id.clone()),
        ],
    )
    .await;
    let pages = outcome.result["pages"].as_array().expect("pages").len();
    assert!(pages >= 12, "every page was checked: {}", outcome.result);
    let stored = app.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(stored.settings.invite_policy).unwrap(),
        json!({"mode": "manual"}),
        "invalid input, an unconfirmed preview and a forged one changed no invitation"
    );
    assert_eq!(
        stored.settings.timezone, "Europe/Berlin",
        "a change inviting nobody is saved without a preview"
    );
}

/// The app pages of a tenant that awaits its Personio connection lead to the connect
/// page (no browser needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_a_tenant_awaiting_its_connection_lead_to_connect() {
    let app = spawn_app(5, 1).await;
    let mut spec = app.spec("waiting", json!({}));
    spec.as_object_mut().unwrap().remove("personio");
    let (status, body) = app.create_tenant(&spec).await;
    assert_eq!(status, 201, "{body}");
    let id = session_id(&app, "waiting").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["", "settings", "people", "people/1001"] {
        let answer = client
            .get(format!("{}/app/waiting/{path}", app.base))
            .header("cookie", format!("psync_session={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303, "/app/waiting/{path}");
        assert_eq!(answer.headers()["location"], "/connect", "{path}");
    }
}
