//! The app pages under `/app/{tenant}/…`: the overview (issue 16 adds settings and
//! people beside it).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{Layout, Session, render};
use crate::actors::status::{TenantState, TenantView};
use crate::domain::report::SyncReport;
use crate::domain::tenant::ConnectionMethod;
use crate::http::AppState;

/// Seconds between reloads of the overview while the tenant starts or syncs.
pub const REFRESH_SECS: u32 = 3;

/// The app routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{tenant}", get(to_overview))
        .route("/app/{tenant}/", get(overview))
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
    /// What needs attention, if anything.
    pub last_error: Option<String>,
    /// How the tenant is connected.
    pub connection: Option<ConnectionFacts>,
    /// The webhook URL registered in Personio.
    pub webhook_url: String,
    /// The webhook subscription's state, in words.
    pub subscription: String,
    /// Employees linked to a Learn Amp user.
    pub employees: u64,
    /// The last full sync.
    pub last_sync: Option<SyncReport>,
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
pub fn overview_page(layout: Layout, view: &TenantView) -> OverviewPage {
    let (state_label, state_class, state_words) = describe_state(view.state);
    let syncing = matches!(view.state, TenantState::Starting | TenantState::Syncing);
    let mut layout = layout;
    if syncing {
        layout.refresh_secs = Some(REFRESH_SECS);
    }
    OverviewPage {
        layout,
        state_label,
        state_class,
        state_words,
        syncing,
        last_error: view.last_error.clone(),
        connection: view.connection.as_ref().map(|connection| ConnectionFacts {
            method: match connection.method {
                ConnectionMethod::Oidc => "with \"Sign in with Personio\"".into(),
                ConnectionMethod::ClientCredentials => "with API credentials".into(),
            },
            by: connection.by.clone(),
            at: Some(super::display_time(&connection.at)),
        }),
        subscription: subscription_words(view).into(),
        webhook_url: view.webhook_url.clone(),
        employees: view.employees,
        last_sync: view.last_sync.clone().map(|mut sync| {
            sync.finished_at = super::display_time(&sync.finished_at);
            sync
        }),
    }
}

async fn overview(State(state): State<AppState>, session: Session) -> Response {
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
    render(&overview_page(layout, &view))
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
        let mut view =
            TenantView::starting("acme", "https://sync.example/webhooks/personio/k".into());
        view.state = TenantState::Live;
        view.employees = 500;
        let html = overview_page(layout(), &view).render().unwrap();
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("<main"));
        assert!(html.contains(">Connected<"));
        for link in [">Overview<", ">Settings<", ">People<"] {
            assert!(html.contains(link), "{link}");
        }
        assert!(html.contains(r#"href="/app/acme/" aria-current="page""#));
        assert!(html.contains("https://sync.example/webhooks/personio/k"));
        assert!(
            !html.contains("http-equiv=\"refresh\""),
            "a live tenant is not reloaded"
        );
        assert!(!html.contains("<progress"));
    }

    #[test]
    fn a_syncing_overview_reloads_itself_and_shows_progress() {
        let mut view = TenantView::starting("acme", String::new());
        view.state = TenantState::Syncing;
        let html = overview_page(layout(), &view).render().unwrap();
        assert!(html.contains(r#"<meta http-equiv="refresh" content="3">"#));
        assert!(html.contains("<progress"));
        assert!(html.contains("Not registered yet"));
    }

    #[test]
    fn page_text_is_escaped() {
        let mut view = TenantView::starting("acme", String::new());
        view.last_error = Some("<script>alert(1)</script>".into());
        let html = overview_page(layout(), &view).render().unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    }
}
