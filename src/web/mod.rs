//! The customer's pages (contract §7): the connect flow under `/connect/…` and the app
//! under `/app/{tenant}/…`, rendered from askama templates (`templates/`) compiled into
//! the binary, with one stylesheet at `/assets/app.css` and one small script at
//! `/assets/app.js` that no page needs (it moves the overview's progress bar without
//! reloads and shows `Days before` only when it applies).
//!
//! Adding a page: a template under `templates/app/` that `{% extends "base.html" %}`
//! and a struct deriving [`askama::Template`] with a `layout: Layout` field (built by
//! [`Layout::app`]); a handler taking [`Session`] (GET) or [`CsrfForm`] (POST) that
//! returns [`render`]`(&page)`; a route in [`routes`].

pub mod app_pages;
pub mod connect;
pub mod people;
pub mod session;
pub mod settings;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::actors::status::TenantView;
use crate::http::AppState;
pub use session::{CsrfForm, Session, Sessions};

/// The stylesheet, compiled in.
const STYLESHEET: &str = include_str!("app.css");
/// The pages' one script (progress bar, settings form), compiled in; no page needs it.
const SCRIPT: &str = include_str!("app.js");

/// The customer pages' routes (merged into the front door's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .merge(connect::routes())
        .merge(app_pages::routes())
        .merge(settings::routes())
        .merge(people::routes())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// What the base layout (`templates/base.html`) shows around every page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page's title (also `<title>`).
    pub title: String,
    /// The tenant shown in the header, if the page belongs to one.
    pub tenant: Option<String>,
    /// Whether the tenant is connected (the header then says `Connected`).
    pub connected: bool,
    /// The app's navigation (`Overview`, `Settings`, `People`), on app pages.
    pub nav: Option<Nav>,
    /// Reload the page after this many seconds (`<meta http-equiv="refresh">`).
    pub refresh_secs: Option<u32>,
}

/// The app's navigation links.
#[derive(Debug, Clone)]
pub struct Nav {
    /// `/app/{tenant}` (links append `/`, `/settings`, `/people`).
    pub base: String,
    /// Which link is the current page: `overview`, `settings` or `people`.
    pub current: &'static str,
}

impl Layout {
    /// A page outside any tenant (errors before a session exists).
    pub fn plain(title: &str) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// An app page of the session's tenant; `current` names the nav link to mark
    /// (`overview`, `settings`, `people`).
    pub fn app(state: &AppState, session: &Session, title: &str, current: &'static str) -> Self {
        Self {
            title: title.into(),
            tenant: Some(session.tenant_id.clone()),
            connected: connected(state, &session.tenant_id),
            nav: Some(Nav {
                base: format!("/app/{}", session.tenant_id),
                current,
            }),
            refresh_secs: None,
        }
    }

    /// A connect page of the session's tenant (no app navigation).
    pub fn connect(state: &AppState, session: &Session, title: &str) -> Self {
        Self {
            title: title.into(),
            tenant: Some(session.tenant_id.clone()),
            connected: connected(state, &session.tenant_id),
            nav: None,
            refresh_secs: None,
        }
    }
}

/// The tenant's view, if it exists.
pub fn tenant_view(state: &AppState, tenant_id: &str) -> Option<TenantView> {
    state.views.view(tenant_id)
}

/// Whether the tenant has a Personio connection (the one place pages decide it).
pub fn connected(state: &AppState, tenant_id: &str) -> bool {
    tenant_view(state, tenant_id).is_some_and(|view| view_connected(&view))
}

/// Whether a view shows a connected tenant.
pub fn view_connected(view: &TenantView) -> bool {
    view.state != crate::actors::status::TenantState::AwaitingConnection
}

/// Whether the connect pages are open to the tenant: it awaits its first connection,
/// or it has `failed` (a revoked sign-in or refused credentials need a new connection;
/// any other cause is left as it was by the check before saving).
pub fn can_connect(state: &AppState, tenant_id: &str) -> bool {
    tenant_view(state, tenant_id).is_some_and(|view| view_can_connect(&view))
}

/// [`can_connect`] of a view.
pub fn view_can_connect(view: &TenantView) -> bool {
    matches!(
        view.state,
        crate::actors::status::TenantState::AwaitingConnection
            | crate::actors::status::TenantState::Failed
    )
}

/// The path of a tenant's overview.
pub fn overview_path(tenant_id: &str) -> String {
    format!("/app/{tenant_id}/")
}

/// Headers every page carries: never cached (pages show live state and CSRF tokens),
/// never framed, no referrer (a connect URL holds an invitation token), and a policy
/// that allows only this origin's stylesheet and forms.
fn page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// Renders a page with status 200.
pub fn render<T: askama::Template>(page: &T) -> Response {
    render_status(StatusCode::OK, page)
}

/// Renders a page with `status`; a template that fails to render becomes a 500 page
/// (logged without the page's data).
pub fn render_status<T: askama::Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            page_headers(&mut response);
            response
        }
        Err(error) => {
            tracing::error!(error = %error, "a page failed to render");
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown. Please try again.",
            )
                .into_response();
            page_headers(&mut response);
            response
        }
    }
}

/// A link shown under a message.
#[derive(Debug, Clone)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// What it says.
    pub text: String,
}

/// `templates/message.html`: a title, paragraphs and an optional link.
#[derive(askama::Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// The layout.
    pub layout: Layout,
    /// Whether the message reports a failure (styled as an error).
    pub is_error: bool,
    /// The paragraphs.
    pub paragraphs: Vec<String>,
    /// A link to go on with.
    pub link: Option<Link>,
}

/// A page that says what happened and what to do: an error page when `status` is 4xx
/// or 5xx, a notice otherwise.
pub fn message(
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    link: Option<Link>,
) -> Response {
    render_status(
        status,
        &MessagePage {
            layout: Layout::plain(title),
            is_error: status.is_client_error() || status.is_server_error(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            link,
        },
    )
}

/// A 303 to `path` (after a POST, or to move a token out of the address bar).
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The page for an unknown path under `/app/` or `/connect/`.
pub fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Page not found",
        &["There is no page at this address."],
        None,
    )
}

/// An RFC 3339 time as pages show it: `7 Dec 2026, 04:26 UTC` (unparsable text as is).
pub fn display_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|time| {
            time.with_timezone(&chrono::Utc)
                .format("%-d %b %Y, %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_words_and_utc() {
        assert_eq!(
            display_time("2026-12-07T04:26:26.236+01:00"),
            "7 Dec 2026, 03:26 UTC"
        );
        assert_eq!(display_time("soon"), "soon");
    }
}
