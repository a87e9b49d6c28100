//! Issue 16's API: people and their history, the tenant view's `progress`, the OpenAPI
//! document's coverage of the admin router, and `tenants … ` of the real CLI binary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TOKEN, TestApp, spawn_app};
use crate::webhooks::{live_tenant, wait_learnamp};
use personio_sync_sim::learnamp::SimUserStatus;
use personio_sync_sim::person::EmployeeStatus;

/// Polls `GET path` until `done` holds for its answer, failing after 20 s.
async fn wait_answer(app: &TestApp, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.admin("GET", path, None).await;
        if done(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_found_by_email_shows_a_webhook_change_before_and_after() {
    let app = spawn_app(30, 161).await;
    live_tenant(
        &app,
        "people",
        json!({"invite_policy": {"mode": "immediately"}}),
    )
    .await;
    let mut person = app
        .personio
        .employees()
        .into_iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    let id = person.employee.id.clone();
    let email = person.employee.email.clone().unwrap();
    let before = person.employee.position.clone();
    assert_ne!(before.as_deref(), Some("Head of Webhooks"));

    // Found by (part of) the email in any case; nobody else matches it.
    let query = email.split('@').next().unwrap().to_uppercase();
    let page = wait_answer(
        &app,
        &format!("/admin/tenants/people/employees?query={query}"),
        |s, _| s == 200,
    )
    .await;
    let people = page["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{page}");
    let row = &people[0];
    assert_eq!(row["personio_id"], id);
    assert_eq!(row["email"], email);
    assert_eq!(row["personio_status"], "active");
    assert_eq!(row["learnamp_status"], "invited");
    assert_eq!(row["invitation"], "sent");
    assert!(row["learnamp_id"].as_u64().unwrap() > 0, "{row}");
    assert!(row["last_change_at"].is_string(), "{row}");
    assert!(page["next_cursor"].is_null(), "{page}");

    // A promotion arrives by webhook.
    person.employee.position = Some("Head of Webhooks".into());
    app.personio.upsert_employee(person);
    wait_learnamp(&app, "job title updated", |app| {
        app.learnamp
            .user_by_external_id(&id)
            .and_then(|u| u.job_title)
            .as_deref()
            == Some("Head of Webhooks")
    })
    .await;
    let path = format!("/admin/tenants/people/employees/{id}");
    let detail = wait_answer(&app, &path, |status, body| {
        status == 200 && body["history"][0]["source"] == "webhook"
    })
    .await;
    let newest = &detail["history"][0];
    assert_eq!(newest["actions"], json!(["update"]), "{detail}");
    assert_eq!(
        newest["fields"]["jobTitle"],
        json!({"before": before, "after": "Head of Webhooks"}),
        "{detail}"
    );
    let oldest = detail["history"].as_array().unwrap().last().unwrap();
    assert_eq!(oldest["source"], "full_sync", "{detail}");
    // Created with the documented invite (and the picture, when Personio has one).
    assert_eq!(oldest["actions"][0], "create", "{detail}");
    assert_eq!(oldest["actions"][1], "invite", "{detail}");
    assert_eq!(
        oldest["fields"]["email"],
        json!({"before": null, "after": email})
    );
    assert_eq!(detail["personio_id"], id);
    assert_eq!(detail["last_change_at"], newest["at"]);

    // Paging walks everyone once, in a stable order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .admin(
                "GET",
                &format!("/admin/tenants/people/employees?limit=7&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for person in page["people"].as_array().unwrap() {
            seen.push(person["personio_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ordered, each once");
    assert_eq!(
        seen.len(),
        app.state
            .store
            .tenant("people")
            .await
            .unwrap()
            .employees()
            .unwrap()
            .len()
    );

    // The errors name what is wrong.
    let (status, body) = app
        .admin("GET", "/admin/tenants/nobody/employees", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = app
        .admin(
            "GET",
            "/admin/tenants/people/employees/no-such-person",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("no-such-person"),
        "{body}"
    );
    let (status, body) = app
        .admin("GET", "/admin/tenants/people/employees?limit=0", None)
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("limit")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_during_a_full_sync_and_ends_null_with_its_report() {
    let app = spawn_app(1500, 162).await;
    let first = live_tenant(&app, "big", json!({})).await;
    assert!(first["progress"].is_null(), "{first}");
    let previous = first["last_sync"]["finished_at"]
        .as_str()
        .unwrap()
        .to_string();
    // 400 users deactivated behind the service's back: the next sync reactivates them,
    // one step each, slowly enough (20 ms a call) to be watched.
    let users: Vec<u64> = app
        .learnamp
        .users()
        .iter()
        .take(400)
        .map(|u| u.id)
        .collect();
    for id in &users {
        app.learnamp.set_status(*id, SimUserStatus::Deactivated);
    }
    app.learnamp.knobs.set_latency(Duration::from_millis(20));
    let (status, body) = app.admin("POST", "/admin/tenants/big/sync", None).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut phases = Vec::new();
    let mut partway = None;
    let last = loop {
        let view = app.view("big").await;
        let progress = &view["progress"];
        if let Some(phase) = progress["phase"].as_str()
            && phases.last().map(String::as_str) != Some(phase)
        {
            phases.push(phase.to_string());
        }
        if let (Some(done), Some(total)) = (progress["done"].as_u64(), progress["total"].as_u64())
            && progress["phase"] == "applying"
            && done < total
        {
            partway.get_or_insert((done, total));
        }
        if view["last_sync"]["finished_at"].as_str() != Some(previous.as_str())
            && view["state"] != "syncing"
        {
            break view;
        }
        assert!(Instant::now() < deadline, "sync not done: {view}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(last["progress"].is_null(), "{last}");
    assert_eq!(last["last_sync"]["reactivated"], 400, "{last}");
    assert_eq!(
        phases.last().map(String::as_str),
        Some("applying"),
        "{phases:?}"
    );
    let (done, total) = partway.expect("seen applying part-way");
    assert_eq!(total, 400, "{phases:?}");
    assert!(done < total);
}

/// Every operation of `/admin/openapi.json` is routed (and behind the token), and on a
/// documented path the methods it does not list are not routed either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_exactly_the_routes_the_admin_router_serves() {
    let app = spawn_app(3, 163).await;
    let unauthenticated = app
        .http
        .get(format!("{}/admin/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let (status, doc) = app.admin("GET", "/admin/openapi.json", None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{doc}");
    let methods = ["get", "post", "patch", "delete", "put"];
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "no-such-tenant")
            .replace("{personio_id}", "1");
        let url = format!("{}{concrete}", app.base);
        for method in methods {
            let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = app.http.request(verb.clone(), &url).send().await.unwrap();
            let documented = item.get(method).is_some();
            let status = answer.status().as_u16();
            if documented {
                assert_eq!(status, 401, "{method} {path} is routed behind the token");
                let (status, body) = app.admin(verb.as_str(), &concrete, None).await;
                assert_ne!(status, 405, "{method} {path}: {body}");
                assert_ne!(body["message"], "no such route", "{method} {path}");
                let operation = &item[method];
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
            } else {
                let (status, body) = app.admin(verb.as_str(), &concrete, None).await;
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed but not documented: {body}"
                );
            }
        }
    }
    // The routes of issue 16 are there.
    assert!(paths.contains_key("/admin/tenants/{id}/employees"));
    assert!(paths.contains_key("/admin/tenants/{id}/employees/{personio_id}"));
}

/// Runs the real binary's `tenants …` against `app`; answers its stdout.
async fn cli(app: &TestApp, args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_personio-sync"))
        .arg("tenants")
        .args(args)
        .args(["--url", &app.base])
        .env("PERSONIO_SYNC_ADMIN_TOKEN", TOKEN)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the CLI ends")
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_sync_wait_ends_with_the_counts_of_the_view() {
    let app = spawn_app(40, 164).await;
    live_tenant(&app, "cli", json!({})).await;
    for user in app.learnamp.users().iter().take(3) {
        app.learnamp.set_status(user.id, SimUserStatus::Deactivated);
    }
    let out = cli(&app, &["sync", "cli", "--wait"]).await;
    let view = app.view("cli").await;
    assert!(view["progress"].is_null(), "{view}");
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[lines.len() - 2].split_whitespace().collect();
    let values: Vec<&str> = lines[lines.len() - 1].split_whitespace().collect();
    assert_eq!(header.len(), 7, "{out}");
    for (name, value) in header.iter().zip(&values) {
        assert_eq!(
            view["last_sync"][name].to_string(),
            *value,
            "{name} in {out}"
        );
    }
    assert_eq!(view["last_sync"]["reactivated"], 3, "{view}");
    assert!(
        out.contains(view["last_sync"]["finished_at"].as_str().unwrap()),
        "{out}"
    );
    assert!(
        !out.contains('\r') && !out.contains('\u{1b}'),
        "no bar off a terminal: {out:?}"
    );

    // The tables.
    let list = cli(&app, &["list"]).await;
    assert!(list.starts_with("ID "), "{list}");
    assert!(list.lines().nth(1).unwrap().starts_with("cli  "), "{list}");
    let person = app
        .personio
        .employees()
        .into_iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
        .unwrap();
    let email = person.employee.email.unwrap();
    let people = cli(&app, &["people", "cli", &email]).await;
    assert_eq!(people.lines().count(), 2, "{people}");
    assert!(people.lines().nth(1).unwrap().contains(&email), "{people}");
    let history = cli(&app, &["history", "cli", &person.employee.id]).await;
    assert!(history.contains("full_sync"), "{history}");
    assert!(
        history.contains(&format!("email: - → {email}")),
        "{history}"
    );
    let raw: Value =
        serde_json::from_str(&cli(&app, &["history", "cli", &person.employee.id, "--json"]).await)
            .unwrap();
    assert_eq!(raw["personio_id"], person.employee.id.as_str());
}
