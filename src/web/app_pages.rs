//! The app pages under `/app/{tenant}/…`: the overview with its progress bar (fed by
//! `progress.json` while the page is open, or by the page's own refresh without
//! JavaScript) and `Sync now`. Settings and people have their own modules.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;

use super::{CsrfForm, Layout, Session, render};
use crate::actors::status::{TenantState, TenantView};
use crate::actors::tenant::TenantMsg;
use crate::domain::report::SyncReport;
use crate::domain::tenant::ConnectionMethod;
use crate::http::AppState;
use crate::sync::progress::{Progress, SyncPhase};

/// Seconds between reloads of the overview while the tenant starts or syncs.
pub const REFRESH_SECS: u32 = 3;

/// The app routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{tenant}", get(to_overview))
        .route("/app/{tenant}/", get(overview))
        .route("/app/{tenant}/progress.json", get(progress_json))
        .route("/app/{tenant}/sync", post(sync_now))
        .route("/app/{tenant}/{*rest}", get(unknown_page))
}

/// Any other path under `/app/{tenant}/`: refused for another tenant's session like
/// every app page, else an HTML 404.
async fn unknown_page(_session: Session) -> Response {
    super::not_found()
}

async fn to_overview(session: Session) -> Response {
    super::see_other(&super::overview_path(&session.tenant_id))
}

/// How the tenant is connected, in words.
#[derive(Debug, Clone)]
pub struct ConnectionFacts {
    /// `with "Sign in with Personio"` or `with API credentials`.
    pub method: String,
    /// Who connected it (the Personio user's email), if known.
    pub by: Option<String>,
    /// When.
    pub at: Option<String>,
}

/// `templates/app/overview.html`.
#[derive(askama::Template)]
#[template(path = "app/overview.html")]
pub struct OverviewPage {
    /// The layout.
    pub layout: Layout,
    /// The state's short label (`Live`, `Syncing`, …).
    pub state_label: &'static str,
    /// The badge style of the state: `ok`, `wait` or `bad`.
    pub state_class: &'static str,
    /// The state in a plain sentence.
    pub state_words: &'static str,
    /// Whether a sync runs (progress bar and reload).
    pub syncing: bool,
    /// The progress bar's values while a sync runs.
    pub bar: Bar,
    /// `Sync now` was just pressed.
    pub sync_requested: bool,
    /// The page follows a sync: polls `progress.json` (script), or reloads itself
    /// every [`REFRESH_SECS`] without JavaScript.
    pub watching: bool,
    /// [`REFRESH_SECS`].
    pub refresh_secs: u32,
    /// What needs attention, if anything.
    pub last_error: Option<String>,
    /// What to do about it.
    pub advice: &'static str,
    /// The tenant has failed: the connect pages are open to connect Personio again.
    pub reconnect: bool,
    /// `Sync now`'s action.
    pub sync_action: String,
    /// `progress.json` of the tenant.
    pub progress_url: String,
    /// The CSRF token of `Sync now`.
    pub csrf: String,
    /// Webhook events applied since the tenant was created.
    pub events_applied: u64,
    /// When the last event was applied.
    pub last_event_at: Option<String>,
    /// Events stored and not yet applied.
    pub pending_events: u64,
    /// How the tenant is connected.
    pub connection: Option<ConnectionFacts>,
    /// The webhook subscription's state, in words.
    pub subscription: String,
    /// The webhook URL with its secret key shortened ([`masked_webhook_url`]).
    pub webhook_url: Option<String>,
    /// Employees linked to a Learn Amp user.
    pub employees: u64,
    /// The last full sync.
    pub last_sync: Option<SyncReport>,
}

/// The progress bar: percent and the words beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// Whether a full sync runs.
    pub syncing: bool,
    /// 0–100.
    pub percent: u64,
    /// The phase and steps in words, e.g. `Copying people: 120 of 2,000`.
    pub text: String,
}

/// The bar of a view: a sync reads, plans, then applies `done` of `total` steps (the
/// percent counts applied steps only; a sync with nothing to write shows 100).
pub fn bar(state: TenantState, progress: Option<Progress>) -> Bar {
    let syncing =
        matches!(state, TenantState::Starting | TenantState::Syncing) || progress.is_some();
    let (percent, text) = match progress {
        None if syncing => (0, "Getting ready".to_string()),
        None => (100, "Finished".to_string()),
        Some(Progress {
            phase: SyncPhase::Reading,
            ..
        }) => (0, "Reading Personio and Learn Amp".into()),
        Some(Progress {
            phase: SyncPhase::Planning,
            ..
        }) => (0, "Working out the changes".into()),
        Some(Progress {
            phase: SyncPhase::Applying,
            done,
            total,
        }) => match total {
            Some(0) => (100, "Nothing to change".into()),
            Some(total) => (
                (done.min(total) * 100) / total,
                format!("Writing to Learn Amp: {} of {}", done.min(total), total),
            ),
            None => (0, format!("Writing to Learn Amp: {done} done")),
        },
    };
    Bar {
        syncing,
        percent,
        text,
    }
}

/// What the admin can do about the view's problem, in a sentence.
pub fn advice(state: TenantState, last_error: Option<&str>) -> &'static str {
    let error = last_error.unwrap_or_default().to_lowercase();
    if error.contains("attribute") {
        "In Personio, let this connection read the attributes named above (an API credential: Settings → Integrations → API credentials, its readable employee attributes; Sign in with Personio: the signing-in user's role rights), then tell your Learn Amp contact so they restart the sync."
    } else if error.contains("reconnect") {
        "Ask your Learn Amp contact for a new invitation link and connect Personio again; the people already synced stay linked."
    } else if error.contains("credential") || error.contains("401") || error.contains("unauthori") {
        "Connect again with valid access (open your invitation link), or ask your Learn Amp contact to check the credentials."
    } else if error.contains("subscription") || error.contains("webhook") {
        "Changes reach Learn Amp with the next daily sync until this is repaired; the service tries again by itself. Use Sync now to bring everything up to date meanwhile."
    } else {
        match state {
            TenantState::Failed => {
                "The sync waits for your Learn Amp contact: tell them the message above, and they will restart it once the cause is fixed."
            }
            _ => {
                "Nothing to do yet: the service retries by itself. If this stays for more than an hour, tell your Learn Amp contact."
            }
        }
    }
}

/// The state's label, badge style and plain sentence.
pub fn describe_state(state: TenantState) -> (&'static str, &'static str, &'static str) {
    match state {
        TenantState::AwaitingConnection => (
            "Not connected",
            "wait",
            "Personio is not connected yet: open your invitation link to connect it.",
        ),
        TenantState::Starting => (
            "Starting",
            "wait",
            "The connection is being checked and the first sync is about to start.",
        ),
        TenantState::Syncing => (
            "Syncing",
            "wait",
            "Your employees are being copied to Learn Amp. This can take a few minutes.",
        ),
        TenantState::Live => (
            "Live",
            "ok",
            "Everything is up to date; changes in Personio reach Learn Amp within moments.",
        ),
        TenantState::Degraded => (
            "Delayed",
            "wait",
            "Calls to Personio or Learn Amp are failing and being retried; changes may arrive late.",
        ),
        TenantState::Failed => (
            "Stopped by an error",
            "bad",
            "The sync has stopped because of the problem below.",
        ),
        TenantState::Stopped => ("Paused", "wait", "The sync is paused by the operator."),
    }
}

/// The webhook URL as a page shows it: enough of the key to compare with the
/// subscription listed in Personio, never the whole key (it is a secret of the front
/// door, contract §4). `None` before a URL exists.
pub fn masked_webhook_url(url: &str) -> Option<String> {
    let (base, key) = url.rsplit_once('/')?;
    if key.is_empty() {
        return None;
    }
    let shown: String = key.chars().take(6).collect();
    Some(format!("{base}/{shown}…"))
}

/// The webhook subscription's state in words. The view has no field of its own for
/// it: a tenant ensures its subscription while starting, and a subscription problem
/// shows as `degraded` with `last_error`.
pub fn subscription_words(view: &TenantView) -> &'static str {
    match view.state {
        _ if view.webhook_url.is_empty() => "Not set up yet",
        TenantState::AwaitingConnection => "Set up once Personio is connected",
        TenantState::Starting => "Being set up",
        TenantState::Degraded | TenantState::Failed if view.last_error.is_some() => {
            "Not confirmed: see the problem above"
        }
        TenantState::Stopped => "Registered; changes wait until the sync resumes",
        _ => "Active: Personio sends each change to the webhook URL",
    }
}

/// The overview of a view.
pub fn overview_page(layout: Layout, view: &TenantView, csrf: &str) -> OverviewPage {
    let (state_label, state_class, state_words) = describe_state(view.state);
    let bar = bar(view.state, view.progress);
    let syncing = bar.syncing;
    let base = layout
        .nav
        .as_ref()
        .map(|nav| nav.base.clone())
        .unwrap_or_else(|| format!("/app/{}", view.id));
    OverviewPage {
        layout,
        state_label,
        state_class,
        state_words,
        syncing,
        bar,
        sync_requested: false,
        watching: syncing,
        refresh_secs: REFRESH_SECS,
        last_error: view.last_error.clone(),
        advice: advice(view.state, view.last_error.as_deref()),
        sync_action: format!("{base}/sync"),
        progress_url: format!("{base}/progress.json"),
        csrf: csrf.to_string(),
        events_applied: view.live.events_applied,
        last_event_at: view.live.last_event_at.as_deref().map(super::display_time),
        pending_events: view.pending_events,
        connection: view.connection.as_ref().map(|connection| ConnectionFacts {
            method: match connection.method {
                ConnectionMethod::Oidc => "with \"Sign in with Personio\"".into(),
                ConnectionMethod::ClientCredentials => "with API credentials".into(),
            },
            by: connection.by.clone(),
            at: Some(super::display_time(&connection.at)),
        }),
        subscription: subscription_words(view).into(),
        webhook_url: masked_webhook_url(&view.webhook_url),
        reconnect: view.state == TenantState::Failed,
        employees: view.employees,
        last_sync: view.last_sync.clone().map(|mut sync| {
            sync.finished_at = super::display_time(&sync.finished_at);
            sync
        }),
    }
}

/// `?sync=started`: the overview right after `Sync now`.
#[derive(Debug, Default, serde::Deserialize)]
struct OverviewQuery {
    #[serde(default)]
    sync: Option<String>,
}

async fn overview(
    State(state): State<AppState>,
    session: Session,
    query: Result<axum::extract::Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(view) = super::tenant_view(&state, &session.tenant_id) else {
        return super::message(
            StatusCode::NOT_FOUND,
            "This connection no longer exists",
            &[
                "Your company's connection has been removed by the operator. Ask your Learn Amp contact for a new invitation.",
            ],
            None,
        );
    };
    if !super::view_connected(&view) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let layout = Layout::app(&state, &session, "Overview", "overview");
    let mut page = overview_page(layout, &view, &session.csrf);
    if query.is_ok_and(|query| query.sync.as_deref() == Some("started")) {
        page.sync_requested = true;
        page.watching = true;
    }
    render(&page)
}

/// `progress.json`: the bar's values and the state, for the overview's script.
async fn progress_json(State(state): State<AppState>, session: Session) -> Response {
    use axum::response::IntoResponse;
    let Some(view) = super::tenant_view(&state, &session.tenant_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = axum::Json(serde_json::json!({
        "state": view.state,
        "bar": bar(view.state, view.progress),
    }))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `Sync now`'s form (the CSRF token only).
#[derive(serde::Deserialize)]
struct SyncForm {}

/// `Sync now`: starts a full reconciliation (the mass-deactivation guard applies) and
/// goes back to the overview, which shows its progress.
async fn sync_now(
    State(state): State<AppState>,
    CsrfForm { session, .. }: CsrfForm<SyncForm>,
) -> Response {
    let started = state
        .router
        .actor(&session.tenant_id)
        .is_some_and(|actor| actor.cast(TenantMsg::FullSync { confirm: false }).is_ok());
    if !started {
        return super::message(
            StatusCode::CONFLICT,
            "The sync cannot start right now",
            &[
                "The sync of your company is not running (it is stopping, restarting or paused by the operator). Try again in a minute; if it stays like this, tell your Learn Amp contact.",
            ],
            Some(super::Link {
                href: super::overview_path(&session.tenant_id),
                text: "Back to the overview".into(),
            }),
        );
    }
    tracing::info!(tenant_id = %session.tenant_id, "full sync requested on the overview");
    super::see_other(&format!(
        "{}?sync=started",
        super::overview_path(&session.tenant_id)
    ))
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::*;
    use crate::web::Nav;

    fn layout() -> Layout {
        Layout {
            title: "Overview".into(),
            tenant: Some("acme".into()),
            connected: true,
            nav: Some(Nav {
                base: "/app/acme".into(),
                current: "overview",
            }),
            refresh_secs: None,
        }
    }

    #[test]
    fn the_overview_has_the_layout_names_and_the_view() {
        let mut view = TenantView::starting(
            "acme",
            "https://sync.example/webhooks/personio/0123456789abcdef".into(),
        );
        view.state = TenantState::Live;
        view.employees = 500;
        let html = overview_page(layout(), &view, "token").render().unwrap();
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("<main"));
        assert!(html.contains(">Connected<"));
        for link in [">Overview<", ">Settings<", ">People<"] {
            assert!(html.contains(link), "{link}");
        }
        assert!(html.contains(r#"href="/app/acme/" aria-current="page""#));
        assert!(
            html.contains("https://sync.example/webhooks/personio/012345…"),
            "the webhook URL is shown, its key shortened"
        );
        assert!(
            !html.contains("0123456789abcdef"),
            "the webhook URL's whole key is a secret: never on a page"
        );
        assert!(html.contains("Active: Personio sends each change to the webhook URL"));
        assert!(
            !html.contains("http-equiv=\"refresh\""),
            "a live tenant is not reloaded"
        );
        assert!(!html.contains("<progress"));
        assert!(html.contains(r#"action="/app/acme/sync""#));
        assert!(html.contains(">Sync now<"));
    }

    #[test]
    fn a_syncing_overview_reloads_itself_and_shows_progress() {
        let mut view = TenantView::starting("acme", String::new());
        view.state = TenantState::Syncing;
        let html = overview_page(layout(), &view, "token").render().unwrap();
        assert!(html.contains(r#"<noscript><meta http-equiv="refresh" content="3"></noscript>"#));
        assert!(html.contains(r#"<script src="/assets/app.js""#));
        assert!(html.contains(r#"<progress id="sync-progress" max="100" value="0""#));
        assert!(html.contains(r#"aria-valuenow="0""#));
        assert!(html.contains("Not set up yet"));
    }

    #[test]
    fn the_bar_counts_applied_steps_and_ends_full() {
        let applying = |done, total| {
            Some(Progress {
                phase: SyncPhase::Applying,
                done,
                total,
            })
        };
        let reading = Some(Progress {
            phase: SyncPhase::Reading,
            done: 0,
            total: None,
        });
        assert_eq!(bar(TenantState::Syncing, reading).percent, 0);
        let half = bar(TenantState::Syncing, applying(1000, Some(2000)));
        assert_eq!(half.percent, 50);
        assert!(half.syncing);
        assert_eq!(half.text, "Writing to Learn Amp: 1000 of 2000");
        assert_eq!(bar(TenantState::Syncing, applying(7, Some(0))).percent, 100);
        assert_eq!(bar(TenantState::Syncing, applying(9, Some(4))).percent, 100);
        let done = bar(TenantState::Live, None);
        assert!(!done.syncing);
        assert_eq!(done.percent, 100);
        assert!(bar(TenantState::Starting, None).syncing);
    }

    #[test]
    fn a_problem_comes_with_what_to_do() {
        assert!(
            advice(
                TenantState::Failed,
                Some("the Personio credential cannot read the attributes dynamic_1")
            )
            .contains("API credentials")
        );
        assert!(advice(TenantState::Failed, Some("boom")).contains("restart"));
        assert!(advice(TenantState::Degraded, Some("timeout")).contains("retries by itself"));
        let mut view = TenantView::starting("acme", "https://sync.example/w/k".into());
        view.state = TenantState::Degraded;
        view.last_error = Some("webhook subscription not ensured: 503".into());
        assert_eq!(
            subscription_words(&view),
            "Not confirmed: see the problem above"
        );
        view.state = TenantState::Live;
        view.last_error = None;
        assert!(subscription_words(&view).starts_with("Active"));
    }

    #[test]
    fn page_text_is_escaped() {
        let mut view = TenantView::starting("acme", String::new());
        view.last_error = Some("<script>alert(1)</script>".into());
        let html = overview_page(layout(), &view, "token").render().unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    }
}
