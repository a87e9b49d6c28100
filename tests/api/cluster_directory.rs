//! Issue 17, item 3: two services on one PostgreSQL database, the tenant run by the
//! first (node A), every request sent to the second (node B): B serves A's view, B's
//! sync command runs on A, B accepts a session A started, and a delivery B stores wakes
//! A, which applies it; a settings preview asked of B is planned by A, and either node
//! takes its `Confirm`.

use std::path::Path;
use std::time::{Duration, Instant};

use personio_sync::app::{Application, Options};
use personio_sync::config::Config;
use personio_sync::domain::Secret;
use personio_sync::http::AppState;
use personio_sync::retry::RetryPolicy;
use personio_sync::store::crypto::{KeySource, SecretKey};
use personio_sync::store::{PgOptions, Store};
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};
use serde_json::{Value, json};

use crate::helpers::{
    TOKEN, admin_request, postgres, set_subscriptions_status, tenant_spec, webhook_body,
    webhook_payload,
};

/// One service on the shared database.
struct Node {
    base: String,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Node {
    async fn start(url: &str, key: &SecretKey, personio: &PersonioSim) -> Node {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".into();
        config.server.metrics_listen = String::new();
        config.personio.base_url = personio.base_url.clone();
        let options = PgOptions {
            url: url.to_string(),
            password: None,
            pool: 8,
        };
        let store = Store::open_postgres(&options, Path::new(""), KeySource::Given(key.clone()))
            .await
            .expect("store on PostgreSQL");
        let options = Options {
            retry: RetryPolicy::fast(),
            request_timeout: Duration::from_secs(10),
            restart_base: Duration::from_millis(50),
            oidc_client_secret: None,
        };
        let app = Application::build(&config, store, Secret::new(TOKEN), options)
            .await
            .expect("service builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Node {
            base,
            state,
            shutdown: Some(shutdown),
        }
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        admin_request(&self.base, method, path, body).await
    }

    /// Polls this node's view of `id` until `done` holds (at most `timeout`).
    async fn wait_for(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, view) = self
                .admin(reqwest::Method::GET, &format!("/admin/tenants/{id}"), None)
                .await;
            if status == 200 && done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "condition not met on {} within {timeout:?}: {status} {view}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Both simulators, and a fresh database (migrated by the first store opened on it).
async fn cluster(test: &str) -> Option<(postgres::TestDatabase, PersonioSim, LearnAmpSim)> {
    let database = postgres::fresh_database(test).await?;
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 12,
        seed: 17,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .unwrap();
    Some((database, personio, learnamp))
}

/// Two nodes on one fresh database, tenant `acme` created through A (which runs it)
/// and live with its first sync; `None` without a test server.
struct Cluster {
    a: Node,
    b: Node,
    personio: PersonioSim,
    learnamp: LearnAmpSim,
    /// A's view once live.
    live: Value,
    _database: postgres::TestDatabase,
}

async fn live_cluster(test: &str) -> Option<Cluster> {
    if std::env::var_os("TEST_LOG").is_some() {
        personio_sync::telemetry::init(personio_sync::config::LogFormat::Text);
    }
    let (database, personio, learnamp) = cluster(test).await?;
    let key = SecretKey::generate();
    let a = Node::start(database.url(), &key, &personio).await;
    let b = Node::start(database.url(), &key, &personio).await;
    // Created through A, which runs it; B learns of it from `NOTIFY specs`.
    let spec = tenant_spec("acme", &personio, &learnamp, json!({}));
    let (status, body) = a
        .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(a.state.router.actor("acme").is_some(), "A runs the tenant");
    let live = a
        .wait_for("acme", Duration::from_secs(60), |view| {
            view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
        })
        .await;
    Some(Cluster {
        a,
        b,
        personio,
        learnamp,
        live,
        _database: database,
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_view_published_by_the_owner_is_served_by_the_other_node() {
    let Some(cluster) =
        live_cluster("pg_a_view_published_by_the_owner_is_served_by_the_other_node").await
    else {
        return;
    };
    let Cluster { b, live, .. } = &cluster;
    let on_b = b
        .wait_for("acme", Duration::from_secs(10), |view| {
            view["state"] == "live" && view["last_sync"] == live["last_sync"]
        })
        .await;
    assert_eq!(on_b["employees"], live["employees"]);
    assert!(on_b["employees"].as_u64().unwrap() > 0, "{on_b}");
    assert_eq!(on_b["webhook_url"], live["webhook_url"]);
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");
    let (status, list) = b.admin(reqwest::Method::GET, "/admin/tenants", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], "acme");
    assert_eq!(list[0]["state"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_sync_command_posted_on_the_non_owner_runs_on_the_owner() {
    let Some(cluster) =
        live_cluster("pg_a_sync_command_posted_on_the_non_owner_runs_on_the_owner").await
    else {
        return;
    };
    let Cluster { a, b, live, .. } = &cluster;
    let (status, body) = b
        .admin(reqwest::Method::POST, "/admin/tenants/acme/sync", None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let previous = live["last_sync"]["finished_at"]
        .as_str()
        .unwrap()
        .to_string();
    let synced = |view: &Value| {
        view["last_sync"]["finished_at"]
            .as_str()
            .is_some_and(|finished| finished != previous)
            && view["state"] == "live"
    };
    a.wait_for("acme", Duration::from_secs(60), synced).await;
    b.wait_for("acme", Duration::from_secs(10), synced).await;
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");
    // A dry run through B answers A's plan (200), as A itself does.
    let (status, plan) = b
        .admin(
            reqwest::Method::POST,
            "/admin/tenants/acme/sync?dry_run=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let (_, plan_on_a) = a
        .admin(
            reqwest::Method::POST,
            "/admin/tenants/acme/sync?dry_run=true",
            None,
        )
        .await;
    assert_eq!(plan, plan_on_a);
    // A restart through B restarts the tenant on A (202), which is live again.
    let (status, body) = b
        .admin(reqwest::Method::POST, "/admin/tenants/acme/restart", None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "restarting");
    a.wait_for("acme", Duration::from_secs(60), |view| {
        view["state"] == "live"
    })
    .await;
    assert!(a.state.router.actor("acme").is_some());
    assert!(b.state.router.actor("acme").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_session_created_on_one_node_is_accepted_by_the_other() {
    let Some(cluster) =
        live_cluster("pg_a_session_created_on_one_node_is_accepted_by_the_other").await
    else {
        return;
    };
    let Cluster { a, b, .. } = &cluster;
    let (_, cookie) = a.state.sessions.start("acme").await;
    let cookie = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let http = client();
    let page = |base: String, cookie: String| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/app/acme/"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        page(b.base.clone(), cookie.clone()).await,
        200,
        "B serves A's session"
    );
    assert_eq!(page(a.base.clone(), cookie.clone()).await, 200);
    assert_eq!(
        page(b.base.clone(), "psync_session=00ff".into()).await,
        401,
        "an unknown session stays refused"
    );
    // Ended on B (the tenant's sessions end), refused on A too.
    assert_eq!(b.state.sessions.end_tenant("acme").await, 1);
    assert_eq!(page(a.base.clone(), cookie).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_delivery_stored_through_the_non_owner_wakes_the_owner() {
    let Some(cluster) =
        live_cluster("pg_a_delivery_stored_through_the_non_owner_wakes_the_owner").await
    else {
        return;
    };
    let Cluster {
        a,
        b,
        personio,
        learnamp,
        live,
        ..
    } = &cluster;
    // Personio's own deliveries (to A's URL) are off, so only B's can carry the change.
    set_subscriptions_status(personio, "DISABLED").await;
    let token = personio.webhooks()[0].token.clone().unwrap();
    let url = live["webhook_url"].as_str().unwrap();
    let path = &url[url.find("/webhooks/").unwrap()..];
    let mut person = personio
        .employees()
        .into_iter()
        .find(|person| learnamp.user_by_external_id(&person.employee.id).is_some())
        .expect("a synced person");
    person.employee.position = Some("Directory Officer".into());
    let person_id = person.employee.id.clone();
    personio.upsert_employee(person);
    let delivery = webhook_body(
        "1",
        "employment.updated",
        webhook_payload("employment.updated", &person_id),
    );
    let response = client()
        .post(format!("{}{path}", b.base))
        .header("authorization", token.expose())
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "stored by B");
    let deadline = Instant::now() + Duration::from_secs(15);
    while learnamp
        .user_by_external_id(&person_id)
        .and_then(|user| user.job_title)
        .as_deref()
        != Some("Directory Officer")
    {
        assert!(
            Instant::now() < deadline,
            "A did not apply B's delivery in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.wait_for("acme", Duration::from_secs(10), |view| {
        view["live"]["events_applied"].as_u64() >= Some(1) && view["pending_events"] == 0
    })
    .await;
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_patch_and_a_delete_through_the_non_owner_reach_the_owner() {
    let Some(cluster) =
        live_cluster("pg_a_patch_and_a_delete_through_the_non_owner_reach_the_owner").await
    else {
        return;
    };
    let Cluster { a, b, personio, .. } = &cluster;
    let before = a.state.router.actor("acme").unwrap().get_id();

    // A settings patch through B: stored, and the tenant restarts on A with it.
    let patch = json!({"settings": {"timezone": "Europe/Berlin"}});
    let (status, body) = b
        .admin(reqwest::Method::PATCH, "/admin/tenants/acme", Some(&patch))
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let restarted = a
            .state
            .router
            .actor("acme")
            .is_some_and(|actor| actor.get_id() != before);
        if restarted {
            break;
        }
        assert!(Instant::now() < deadline, "A did not restart the tenant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spec = a.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert_eq!(spec.settings.timezone, "Europe/Berlin");
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");
    a.wait_for("acme", Duration::from_secs(60), |view| {
        view["state"] == "live"
    })
    .await;

    // A delete through B: A stops the tenant, then it is gone on both nodes.
    let (status, body) = b
        .admin(reqwest::Method::DELETE, "/admin/tenants/acme", None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(a.state.router.actor("acme").is_none(), "stopped on A");
    assert!(personio.webhooks().is_empty(), "subscription removed");
    for node in [a, b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _) = node
                .admin(reqwest::Method::GET, "/admin/tenants/acme", None)
                .await;
            if status == 404 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still shows the tenant",
                node.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(a.state.store.tenant_spec("acme").await.unwrap().is_none());
}

/// The form of the settings page with the default settings, except `invite`.
pub(crate) fn settings_form(csrf: &str, invite: &str) -> Vec<(&'static str, String)> {
    [
        ("invite", invite),
        ("days", ""),
        ("timezone", "UTC"),
        ("deactivation", "on_status"),
        ("teams", "department"),
        ("sync_managers", "on"),
        ("custom_key_0", ""),
        ("custom_name_0", ""),
        ("departments", ""),
        ("offices", ""),
        ("employment_types", ""),
        ("attribute_key", ""),
        ("attribute_value", ""),
        ("out_of_scope", "deactivate"),
        ("ratio", "0.2"),
        ("csrf", csrf),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_string()))
    .collect()
}

/// The value of the form field `name` of `page`, its HTML escapes undone.
pub(crate) fn field_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {page}"))
        + marker.len();
    let escaped = &page[start..start + page[start..].find('"').unwrap()];
    escaped
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_settings_preview_is_served_by_any_node_and_confirmed_through_another() {
    let Some(cluster) =
        live_cluster("pg_a_settings_preview_is_served_by_any_node_and_confirmed_through_another")
            .await
    else {
        return;
    };
    let Cluster { a, b, live, .. } = &cluster;
    b.wait_for("acme", Duration::from_secs(10), |view| {
        view["state"] == "live" && view["last_sync"] == live["last_sync"]
    })
    .await;
    // Signed in through B, which does not run the tenant.
    let (_, cookie) = b.state.sessions.start("acme").await;
    let cookie = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let http = client();
    let page = http
        .get(format!("{}/app/acme/settings", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csrf = field_value(&page.text().await.unwrap(), "csrf");
    let preview = |node: &Node, invite: &'static str| {
        let request = http
            .post(format!("{}/app/acme/settings", node.base))
            .header("cookie", &cookie)
            .form(&settings_form(&csrf, invite));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let page = response.text().await.unwrap();
            assert_eq!(status, 200, "{page}");
            assert!(page.contains("Preview of your change"), "{page}");
            page
        }
    };
    let confirm = |node: &Node, preview: &str| {
        let request = http
            .post(format!("{}/app/acme/settings/confirm", node.base))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.clone()),
                ("settings", field_value(preview, "settings")),
                ("signature", field_value(preview, "signature")),
            ]);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_string());
            let page = response.text().await.unwrap();
            assert_eq!(status, 303, "{page}");
            assert_eq!(location.as_deref(), Some("/app/acme/"));
        }
    };
    let invited_rows = |page: &str| {
        let table = page
            .split("<caption>People who would be invited, and when</caption>")
            .nth(1)
            .expect("an invitation table")
            .split("</table>")
            .next()
            .unwrap()
            .to_string();
        table.matches("<tr><td").count()
    };
    // Previewed by the owner A, confirmed through B (the signing key is the cluster's).
    let on_a = preview(a, "on_hire_date").await;
    assert!(invited_rows(&on_a) > 0, "{on_a}");
    // Previewed through B (planned on A through the directory), confirmed through A.
    let on_b = preview(b, "immediately").await;
    assert!(invited_rows(&on_b) > 0, "{on_b}");
    assert!(
        on_b.contains("With the new settings the sync would invite"),
        "{on_b}"
    );
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");

    confirm(b, &on_a).await;
    let spec = a.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert_eq!(
        spec.settings.invite_policy,
        personio_sync::domain::tenant::InvitePolicy::OnHireDate
    );
    confirm(a, &on_b).await;
    let spec = a.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert_eq!(
        spec.settings.invite_policy,
        personio_sync::domain::tenant::InvitePolicy::Immediately
    );
}

/// Connecting Personio again through a node that does not run the tenant marks it for a
/// full reconciliation on its owner (the non-owner's own write would land in a read-only
/// snapshot and be lost): the owner runs a full sync after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_reconnection_through_the_non_owner_reconciles_on_the_owner() {
    let Some(cluster) =
        live_cluster("pg_a_reconnection_through_the_non_owner_reconciles_on_the_owner").await
    else {
        return;
    };
    let Cluster { a, b, live, .. } = &cluster;
    let before = live["last_sync"]["finished_at"].clone();
    let answer = b
        .state
        .directory
        .run(
            b.state.as_ref(),
            "acme",
            personio_sync::app::directory::Command::Reconnected,
            Duration::from_secs(10),
        )
        .await;
    assert!(answer.is_ok(), "the owner restarted the tenant");
    let after = a
        .wait_for("acme", Duration::from_secs(30), |view| {
            view["state"] == "live" && view["last_sync"]["finished_at"] != before
        })
        .await;
    assert!(after["last_sync"]["finished_at"].is_string(), "{after}");
    assert!(b.state.router.actor("acme").is_none(), "B never ran it");
}
