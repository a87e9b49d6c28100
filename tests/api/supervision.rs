//! Issue 5: a crashing tenant is restarted with backoff, fails after its budget, comes
//! back on an operator restart, and never disturbs the others; Learn Amp outages show
//! as `degraded` and heal by themselves without losing events.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::webhooks::{live_tenant, wait_learnamp};
use personio_sync::actors::tenant::{START_GATE, TenantMsg};
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// Injects a panic into the tenant's running actor and waits until the supervisor has
/// dealt with it (respawned, or marked it failed).
async fn crash(app: &TestApp, id: &str) -> String {
    let actor = app.state.router.actor(id).expect("tenant running");
    let old = actor.get_id();
    actor.cast(TenantMsg::Crash("drill".into())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = app.view(id).await;
        let respawned = app
            .state
            .router
            .actor(id)
            .is_some_and(|actor| actor.get_id() != old);
        if view["state"] == "failed" {
            return "failed".into();
        }
        if respawned && view["state"] == "live" {
            return "restarted".into();
        }
        assert!(Instant::now() < deadline, "not handled: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_tenant_is_restarted_then_failed_then_revived_while_others_keep_working() {
    let app = spawn_app(40, 81).await;
    live_tenant(&app, "faulty", json!({})).await;
    // Each calm tenant has a Learn Amp of its own, so its work is observable apart.
    let mut calm_learnamps = Vec::new();
    for index in 0..3 {
        let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
            .await
            .unwrap();
        let mut spec = app.spec(&format!("calm-{index}"), json!({}));
        spec["learnamp"]["base_url"] = json!(learnamp.base_url);
        let (status, body) = app.create_tenant(&spec).await;
        assert_eq!(status, 201, "{body}");
        app.wait_for_sync(&format!("calm-{index}"), None).await;
        calm_learnamps.push(learnamp);
    }
    let mut people = app.personio.employees();
    people.sort_by_key(|p| p.employee.id.parse::<u64>().unwrap());
    let active: Vec<_> = people
        .into_iter()
        .filter(|p| p.employee.status == Some(EmployeeStatus::Active))
        .collect();

    let mut outcomes = Vec::new();
    for round in 0..20 {
        let outcome = crash(&app, "faulty").await;
        if outcome == "failed" {
            let view = app.view("faulty").await;
            assert!(
                view["last_error"].as_str().unwrap().contains("restart"),
                "{view}"
            );
            let (status, _) = app
                .admin("POST", "/admin/tenants/faulty/restart", None)
                .await;
            assert_eq!(status, 202);
            app.wait_for("faulty", Duration::from_secs(20), |view| {
                view["state"] == "live"
            })
            .await;
        }
        outcomes.push(outcome);
        // The other tenants keep applying webhooks throughout.
        let mut person = active[round % active.len()].clone();
        let title = format!("Round {round}");
        person.employee.position = Some(title.clone());
        let person_id = person.employee.id.clone();
        app.personio.upsert_employee(person);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !calm_learnamps.iter().all(|learnamp| {
            learnamp
                .user_by_external_id(&person_id)
                .and_then(|u| u.job_title)
                .as_deref()
                == Some(title.as_str())
        }) {
            assert!(
                Instant::now() < deadline,
                "calm tenants did not apply round {round}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Six failures in the window spend the budget: restarted five times, then failed.
    assert_eq!(
        &outcomes[..6],
        [
            "restarted",
            "restarted",
            "restarted",
            "restarted",
            "restarted",
            "failed"
        ],
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "failed").count(),
        3,
        "{outcomes:?}"
    );
    for index in 0..3 {
        let view = app.view(&format!("calm-{index}")).await;
        assert_eq!(view["state"], "live", "{view}");
        assert_eq!(view["restarts"], 0, "{view}");
    }
    // The revived tenant works.
    let view = app
        .wait_for("faulty", Duration::from_secs(20), |view| {
            view["state"] == "live"
        })
        .await;
    assert_eq!(view["pending_events"], 0, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learnamp_outage_shows_degraded_then_heals_without_losing_events() {
    let app = spawn_app(30, 91).await;
    live_tenant(&app, "outage", json!({})).await;
    app.learnamp.knobs.set_outage(true);
    let mut people = app.personio.employees();
    people.sort_by_key(|p| p.employee.id.parse::<u64>().unwrap());
    let mut person = people
        .into_iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    person.employee.position = Some("Written after the outage".into());
    let person_id = person.employee.id.clone();
    app.personio.upsert_employee(person);
    let view = app
        .wait_for("outage", Duration::from_secs(30), |view| {
            view["state"] == "degraded"
        })
        .await;
    assert!(
        view["last_error"].as_str().unwrap().contains("Learn Amp"),
        "{view}"
    );
    assert!(
        view["pending_events"].as_u64().unwrap() >= 1,
        "events stay stored: {view}"
    );
    app.learnamp.knobs.set_outage(false);
    wait_learnamp(&app, "change applied after the outage", |app| {
        app.learnamp
            .user_by_external_id(&person_id)
            .and_then(|u| u.job_title)
            .as_deref()
            == Some("Written after the outage")
    })
    .await;
    let view = app
        .wait_for("outage", Duration::from_secs(30), |view| {
            view["state"] == "live" && view["pending_events"] == 0
        })
        .await;
    assert_eq!(view["last_error"], serde_json::Value::Null, "{view}");
}

/// Start-up checks share a bounded number of slots; tenants whose Personio hangs hold
/// every slot, yet a healthy tenant created after them starts after a short bounded
/// wait instead of queueing behind their timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_hanging_at_start_do_not_hold_back_a_healthy_one() {
    let app = spawn_app(30, 93).await;
    let hanging = PersonioSim::start(PersonioSimConfig {
        employees: 5,
        seed: 94,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    // Longer than the whole test: every call these tenants make hangs.
    hanging.knobs.set_latency(Duration::from_secs(9));
    for index in 0..=START_GATE {
        let mut spec = app.spec(&format!("hanging-{index}"), json!({}));
        spec["personio"]["base_url"] = json!(hanging.base_url);
        let (status, body) = app.create_tenant(&spec).await;
        assert_eq!(status, 201, "{body}");
    }
    let created = Instant::now();
    let (status, body) = app.create_tenant(&app.spec("healthy", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    app.wait_for("healthy", Duration::from_secs(8), |view| {
        view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
    })
    .await;
    let took = created.elapsed();
    // The hung tenants are all still starting: they never got an answer.
    for index in 0..=START_GATE {
        let view = app.view(&format!("hanging-{index}")).await;
        assert_eq!(view["state"], "starting", "{view}");
    }
    assert!(
        took < Duration::from_secs(8),
        "healthy tenant took {took:?}"
    );
}

/// Issue 17: a node that loses or gives up a tenant's lease stops the tenant's actor but
/// keeps its webhook route, so deliveries are still stored here; the next start (on any
/// node) drains them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_stopped_here_keeps_taking_deliveries_and_drains_them_when_started_again() {
    let app = spawn_app(10, 135).await;
    live_tenant(&app, "moved", json!({})).await;
    personio_sync::actors::supervisor::stop_tenant_here(&app.state.supervisor, "moved")
        .await
        .unwrap();
    assert!(app.state.router.actor("moved").is_none());
    let before = app
        .state
        .store
        .tenant("moved")
        .await
        .unwrap()
        .pending_count()
        .await;

    let mut person = app
        .personio
        .employees()
        .into_iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    person.employee.position = Some("Runs Elsewhere".into());
    let id = person.employee.id.clone();
    app.personio.upsert_employee(person);
    let store = app.state.store.tenant("moved").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.pending_count().await <= before {
        assert!(
            Instant::now() < deadline,
            "the delivery was not stored here"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let title = |app: &TestApp| {
        app.learnamp
            .user_by_external_id(&id)
            .and_then(|u| u.job_title)
    };
    assert_ne!(
        title(&app).as_deref(),
        Some("Runs Elsewhere"),
        "nothing ran here"
    );

    let spec = app.state.store.tenant_spec("moved").await.unwrap().unwrap();
    personio_sync::actors::supervisor::start_tenant(&app.state.supervisor, spec)
        .await
        .unwrap();
    wait_learnamp(&app, "the stored delivery applied after the start", |app| {
        title(app).as_deref() == Some("Runs Elsewhere")
    })
    .await;
    app.wait_for("moved", Duration::from_secs(20), |view| {
        view["pending_events"] == 0
    })
    .await;
}
