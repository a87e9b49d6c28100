//! Issue 4: dry run, mass-deactivation guard, manual and timed invitations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{LaMode, TestApp, personio_v2_token, spawn_app, spawn_app_in};
use crate::in_both_modes;
use crate::webhooks::live_tenant;
use personio_sync_sim::learnamp::SimUserStatus;
use personio_sync_sim::person::EmployeeStatus;

/// Deletes every webhook subscription in the Personio simulator (so Personio changes
/// reach the service only through a full sync).
async fn unsubscribe(app: &TestApp) {
    let token = personio_v2_token(&app.http, &app.personio).await;
    for hook in app.personio.webhooks() {
        let status = app
            .http
            .delete(format!("{}/v2/webhooks/{}", app.personio.base_url, hook.id))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }
    assert!(app.personio.webhooks().is_empty());
}

in_both_modes! {
async fn a_dry_run_writes_nothing_and_the_real_sync_writes_exactly_the_plan(mode: LaMode) {
    let app = spawn_app_in(mode, 200, 31).await;
    live_tenant(
        &app,
        "plan",
        json!({"invite_policy": {"mode": "immediately"}}),
    )
    .await;
    unsubscribe(&app).await;
    let mut people = app.personio.employees();
    people.sort_by_key(|p| p.employee.id.parse::<u64>().unwrap());
    let active: Vec<_> = people
        .iter()
        .filter(|p| p.employee.status == Some(EmployeeStatus::Active))
        .cloned()
        .collect();
    for person in active.iter().take(5) {
        let mut changed = person.clone();
        changed.employee.position = Some(format!(
            "{} II",
            changed.employee.position.clone().unwrap_or_default()
        ));
        app.personio.upsert_employee(changed);
    }
    for index in 0..3 {
        let mut hire = active[10 + index].clone();
        hire.employee.id = format!("{}", 90000 + index);
        hire.employee.email = Some(format!("dry.run.{index}@example.test"));
        app.personio.upsert_employee(hire);
    }
    for person in active.iter().skip(20).take(2) {
        let mut leaver = person.clone();
        leaver.employee.status = Some(EmployeeStatus::Inactive);
        app.personio.upsert_employee(leaver);
    }
    assert!(app.personio.delete_employee(&active[30].employee.id));

    app.learnamp.log.clear();
    let invitations_before = app.learnamp.invitations().len();
    let before_users = app.learnamp.users();
    let (status, plan) = app
        .admin("POST", "/admin/tenants/plan/sync?dry_run=true", None)
        .await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        app.learnamp.log.writes().is_empty(),
        "a dry run wrote: {:?}",
        app.learnamp.log.writes()
    );
    assert_eq!(app.learnamp.users(), before_users);
    assert_eq!(plan["creates"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["deactivations"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["invitations"].as_array().unwrap().len(), 3, "{plan}");
    let first_update = &plan["updates"][0];
    assert!(
        first_update["changes"]
            .as_object()
            .is_some_and(|c| !c.is_empty()),
        "{plan}"
    );

    let previous = app.view("plan").await["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    app.admin("POST", "/admin/tenants/plan/sync", None).await;
    app.wait_for_sync("plan", previous.as_deref()).await;

    let writes = app.learnamp.log.writes();
    let mut counted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut creates = 0;
    for call in &writes {
        let parts: Vec<&str> = call.path.trim_start_matches("/v1/").split('/').collect();
        match (call.method.as_str(), parts.as_slice()) {
            ("POST", ["users"]) => creates += 1,
            ("PUT", ["users", id]) => {
                counted.entry("updates").or_default().insert(id.to_string());
            }
            ("PUT", ["users", id, "deactivate"]) => {
                counted
                    .entry("deactivations")
                    .or_default()
                    .insert(id.to_string());
            }
            // Invitations are counted below, whether the create carried them (the
            // documented invite) or the invitation route sent them.
            ("POST", ["users", _, "invitation"]) => {}
            ("PUT" | "DELETE", ["users", _, "avatar"]) => {}
            other => panic!("unexpected write {other:?}"),
        }
    }
    let plan_ids = |key: &str| -> BTreeSet<String> {
        plan[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|entry| entry["learnamp_id"].as_u64())
            .map(|id| id.to_string())
            .collect()
    };
    assert_eq!(creates, plan["creates"].as_array().unwrap().len());
    assert_eq!(
        app.learnamp.invitations().len() - invitations_before,
        plan["invitations"].as_array().unwrap().len()
    );
    assert_eq!(
        counted.remove("updates").unwrap_or_default(),
        plan_ids("updates")
    );
    assert_eq!(
        counted.remove("deactivations").unwrap_or_default(),
        plan_ids("deactivations")
    );
    crate::helpers::assert_learnamp_matches_personio(&app);
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_change_that_would_deactivate_30_percent_trips_the_guard_until_confirmed() {
    let app = spawn_app(200, 41).await;
    live_tenant(&app, "guard", json!({})).await;
    let people = app.personio.employees();
    let active: Vec<_> = people
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .collect();
    let mut by_department: HashMap<String, usize> = HashMap::new();
    for person in &active {
        *by_department
            .entry(person.employee.department.clone().unwrap().id)
            .or_default() += 1;
    }
    let mut departments: Vec<(String, usize)> = by_department.into_iter().collect();
    departments.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // Keep the largest departments until about 70% of the active people are in scope.
    let mut kept = Vec::new();
    let mut covered = 0;
    for (department, count) in &departments {
        if (covered as f64) >= active.len() as f64 * 0.70 {
            break;
        }
        kept.push(department.clone());
        covered += count;
    }
    let out_of_scope = active.len() - covered;
    let ratio = out_of_scope as f64 / active.len() as f64;
    assert!(ratio > 0.2 && ratio < 0.4, "test setup: {ratio}");

    let (status, body) = app
        .admin(
            "PATCH",
            "/admin/tenants/guard",
            Some(&json!({"settings": {"scope": {"departments": kept}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let view = app
        .wait_for("guard", Duration::from_secs(60), |view| {
            view["state"] == "degraded"
                && view["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("confirm"))
        })
        .await;
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains(&out_of_scope.to_string()),
        "{view}"
    );
    let deactivated = |app: &TestApp| {
        app.learnamp
            .users()
            .iter()
            .filter(|u| u.status == SimUserStatus::Deactivated)
            .count()
    };
    assert_eq!(deactivated(&app), 0, "the guard wrote nothing");

    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (status, _) = app
        .admin("POST", "/admin/tenants/guard/sync?confirm=true", None)
        .await;
    assert_eq!(status, 202);
    let view = app.wait_for_sync("guard", previous.as_deref()).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(
        view["last_sync"]["deactivated"], out_of_scope as u64,
        "{view}"
    );
    assert_eq!(deactivated(&app), out_of_scope);
}

in_both_modes! {
async fn manual_invitations_go_out_once_and_never_to_deactivated_users(mode: LaMode) {
    let app = spawn_app_in(mode, 40, 51).await;
    live_tenant(&app, "manual", json!({})).await;
    assert!(app.learnamp.invitations().is_empty());
    let people = app.personio.employees();
    let person = people
        .iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    let path = format!(
        "/admin/tenants/manual/employees/{}/invite",
        person.employee.id
    );
    if mode == LaMode::Strict {
        // A user that exists can be invited only through the assumed route, which a
        // documented-only account lacks: 409 saying so, nothing sent, and the view
        // lists the route.
        let (status, body) = app.admin("POST", &path, None).await;
        assert_eq!(status, 409, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("already has a Learn Amp user"), "{body}");
        assert!(message.contains("invitation"), "{body}");
        assert!(app.learnamp.invitations().is_empty());
        let view = app.view("manual").await;
        assert!(view["learnamp_unsupported"]["invitation"].is_string(), "{view}");
        return;
    }
    let (status, body) = app.admin("POST", &path, None).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("sent")),
        "{body}"
    );
    let (status, body) = app.admin("POST", &path, None).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("already_invited")),
        "{body}"
    );
    assert_eq!(app.learnamp.invitations().len(), 1);
    let (status, body) = app
        .admin(
            "POST",
            "/admin/tenants/manual/employees/424242/invite",
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let mut leaver = people
        .iter()
        .filter(|p| p.employee.status == Some(EmployeeStatus::Active))
        .nth(1)
        .unwrap()
        .clone();
    leaver.employee.status = Some(EmployeeStatus::Inactive);
    let leaver_id = leaver.employee.id.clone();
    app.personio.upsert_employee(leaver);
    crate::webhooks::wait_learnamp(&app, "leaver deactivated", |app| {
        app.learnamp
            .user_by_external_id(&leaver_id)
            .is_some_and(|u| u.status == SimUserStatus::Deactivated)
    })
    .await;
    let (status, body) = app
        .admin(
            "POST",
            &format!("/admin/tenants/manual/employees/{leaver_id}/invite"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(app.learnamp.invitations().len(), 1);
}
}

in_both_modes! {
async fn on_hire_date_invites_people_already_hired_and_schedules_future_hires(mode: LaMode) {
    let app = spawn_app_in(mode, 150, 61).await;
    // The account's owner: a confirmed user, whom the service may ask the invitation
    // route about without sending an email (a real account always has one).
    app.learnamp
        .insert_user("owner@example.test", "Account", "Owner", None);
    let view = live_tenant(
        &app,
        "hire",
        json!({"invite_policy": {"mode": "on_hire_date"}, "timezone": "Europe/Berlin"}),
    )
    .await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let people = app.personio.employees();
    let expected_now = people
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .filter(|p| p.employee.hire_date.is_none_or(|hire| hire <= today))
        .count();
    let future = people
        .iter()
        .filter(|p| !p.employee.is_inactive() && p.employee.hire_date.is_some_and(|h| h > today))
        .count();
    assert!(future > 0, "the generator makes future hires");
    assert_eq!(app.learnamp.invitations().len(), expected_now);
    assert_eq!(view["last_sync"]["invited"], expected_now as u64);
    // A second sync neither invites again nor early.
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    app.admin("POST", "/admin/tenants/hire/sync", None).await;
    let view = app.wait_for_sync("hire", previous.as_deref()).await;
    assert_eq!(view["last_sync"]["invited"], 0);
    assert_eq!(app.learnamp.invitations().len(), expected_now);
    let (_, plan) = app
        .admin("POST", "/admin/tenants/hire/sync?dry_run=true", None)
        .await;
    assert!(
        plan["scheduled_invitations"].as_array().unwrap().is_empty(),
        "already scheduled: {plan}"
    );
    assert!(
        plan["scheduled_creations"].as_array().unwrap().is_empty(),
        "already scheduled: {plan}"
    );
    // Every active person has a user, except, on an account without the invitation
    // route, future hires: they are created with the documented invite on their day.
    let active = people.iter().filter(|p| !p.employee.is_inactive()).count();
    let expected_users = match mode {
        LaMode::Default => active,
        LaMode::Strict => active - future,
    };
    assert_eq!(app.learnamp.users().len(), expected_users + 1, "plus the owner");
    assert_eq!(view["employees"], expected_users as u64, "{view}");
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_are_written_and_an_unknown_one_fails_the_tenant_naming_it() {
    let app = spawn_app(30, 101).await;
    live_tenant(
        &app,
        "custom",
        json!({"custom_fields": {"dynamic_305": "Cost code"}}),
    )
    .await;
    for person in app
        .personio
        .employees()
        .iter()
        .filter(|p| !p.employee.is_inactive())
    {
        let user = app
            .learnamp
            .user_by_external_id(&person.employee.id)
            .unwrap();
        let expected = person
            .employee
            .extra
            .get("dynamic_305")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        assert_eq!(
            user.custom_fields
                .get("Cost code")
                .map(String::as_str)
                .unwrap_or_default(),
            expected
        );
    }

    let other = spawn_app(10, 102).await;
    let (status, body) = other
        .create_tenant(&other.spec(
            "unknown",
            json!({"custom_fields": {"dynamic_305": "No Such Field"}}),
        ))
        .await;
    assert_eq!(status, 201, "{body}");
    let view = other
        .wait_for("unknown", Duration::from_secs(30), |view| {
            view["state"] == "failed"
        })
        .await;
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains("No Such Field"),
        "{view}"
    );
    assert!(other.learnamp.users().is_empty(), "no user written");
}
