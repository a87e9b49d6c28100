//! The app layout for a connected tenant, reached with a session the test starts.

use personio_sync_testkit::spawn_app;
use serde_json::json;

use crate::harness::{ready, run_script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_of_a_connected_tenant() {
    if !ready("overview_of_a_connected_tenant") {
        return;
    }
    let app = spawn_app(40, 7).await;
    let (status, body) = app.create_tenant(&app.spec("acme", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    app.wait_for_sync("acme", None).await;
    let (session, cookie) = app.state.sessions.start("acme").await;
    let cookie = cookie.to_str().unwrap().to_string();
    let id = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, id)| id.to_string())
        .unwrap();
    let session_id = id.clone();
    let outcome = run_script(
        "layout",
        "layout",
        &[
            ("APP_URL", format!("{}/app/acme/", app.base)),
            ("OTHER_URL", format!("{}/app/other/", app.base)),
            ("SESSION_ID", id.clone()),
        ],
    )
    .await;
    assert_eq!(
        outcome.result["cookies"],
        json!(["psync_session"]),
        "one cookie, the session's"
    );
    assert_eq!(
        app.state
            .sessions
            .find(&session_id)
            .await
            .map(|s| s.tenant_id),
        Some(session.tenant_id)
    );
}
