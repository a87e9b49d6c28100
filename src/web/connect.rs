//! The connect pages (contract §7): an invitation link starts a session for its tenant
//! and shows the ways to connect; "Sign in with Personio" runs the OpenID Connect flow
//! (`/connect/oidc` → the provider → `/connect/callback`), "Use API credentials" posts a
//! client id and secret. Either way the service checks the connection before it stores
//! anything, and a problem is shown on the page in the customer's words.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::session::with_cookie;
use super::{CsrfForm, Layout, Session, render_status};
use crate::http::AppState;

/// The connect page of the session's tenant.
pub const CONNECT_PATH: &str = "/connect";

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/connect/callback";

/// The connect routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(CONNECT_PATH, get(connect_page))
        .route(
            "/connect/credentials",
            get(credentials_page).post(connect_with_credentials),
        )
        .route("/connect/oidc", axum::routing::post(start_sign_in))
        .route(CALLBACK_PATH, get(callback))
        .route("/connect/{token}", get(open_invitation))
}

/// A sign-in in progress, kept in the session until the provider sends the browser back.
#[derive(Debug)]
pub struct PendingLogin;

/// What went wrong, as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// A short heading.
    pub title: String,
    /// What happened and what to do.
    pub paragraphs: Vec<String>,
    /// Personio attributes the connection cannot read (by their Personio names).
    pub missing: Vec<String>,
    /// Whether the problem came from signing in (changes the advice on attributes).
    pub oidc: bool,
}

impl Problem {
    fn new(title: &str, paragraphs: &[&str]) -> Self {
        Self {
            title: title.into(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            ..Self::default()
        }
    }
}

/// `templates/connect/connect.html`.
#[derive(askama::Template)]
#[template(path = "connect/connect.html")]
pub struct ConnectPage {
    /// The layout.
    pub layout: Layout,
    /// The session's CSRF token.
    pub csrf: String,
    /// Whether `[personio_oidc]` is configured.
    pub oidc_available: bool,
    /// The last attempt's problem.
    pub problem: Option<Problem>,
}

/// `templates/connect/credentials.html`.
#[derive(askama::Template)]
#[template(path = "connect/credentials.html")]
pub struct CredentialsPage {
    /// The layout.
    pub layout: Layout,
    /// The session's CSRF token.
    pub csrf: String,
    /// The client id typed last (never the secret).
    pub client_id: String,
    /// The last attempt's problem.
    pub problem: Option<Problem>,
}

/// `GET /connect/{token}`: opens an invitation. A valid one starts a session and moves
/// the token out of the address bar (303 to `/connect`, or to the overview when the
/// tenant is already connected); any other shows what to do, without a session.
async fn open_invitation(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match core::open_invitation(&state, &token) {
        Opened::Tenant(tenant_id) => {
            let (_, cookie) = state.sessions.start(&tenant_id);
            let target = if super::connected(&state, &tenant_id) {
                super::overview_path(&tenant_id)
            } else {
                CONNECT_PATH.to_string()
            };
            tracing::info!(tenant_id = %tenant_id, "invitation opened");
            with_cookie(super::see_other(&target), cookie)
        }
        Opened::Unknown => invitation_refused(
            "This invitation link is not valid",
            "The link is incomplete or was never issued. Check that you copied the whole link from the invitation.",
        ),
        Opened::Expired => invitation_refused(
            "This invitation link has expired",
            "Invitation links are valid for a limited time, and this one has run out.",
        ),
        Opened::Revoked => invitation_refused(
            "This invitation link has been withdrawn",
            "The operator withdrew this invitation, so it can no longer be used.",
        ),
    }
}

fn invitation_refused(title: &str, why: &str) -> Response {
    super::message(
        StatusCode::GONE,
        title,
        &[
            why,
            "Ask your Learn Amp contact (the operator who sent the link) for a new invitation, then open the new link.",
        ],
        None,
    )
}

/// `GET /connect`: the ways to connect.
async fn connect_page(State(state): State<AppState>, session: Session) -> Response {
    if super::connected(&state, &session.tenant_id) {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
    show_connect(&state, &session, StatusCode::OK, None)
}

fn show_connect(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    problem: Option<Problem>,
) -> Response {
    render_status(
        status,
        &ConnectPage {
            layout: Layout::connect(state, session, "Connect Personio"),
            csrf: session.csrf.clone(),
            oidc_available: core::oidc_available(state),
            problem,
        },
    )
}

/// `GET /connect/credentials`: the client id and secret form.
async fn credentials_page(State(state): State<AppState>, session: Session) -> Response {
    if super::connected(&state, &session.tenant_id) {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
    show_credentials(&state, &session, StatusCode::OK, String::new(), None)
}

fn show_credentials(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    client_id: String,
    problem: Option<Problem>,
) -> Response {
    render_status(
        status,
        &CredentialsPage {
            layout: Layout::connect(state, session, "Connect with API credentials"),
            csrf: session.csrf.clone(),
            client_id,
            problem,
        },
    )
}

/// The credentials form's fields.
#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

/// `POST /connect/credentials`: checks the credential and, if it passes, connects.
async fn connect_with_credentials(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<CredentialsForm>,
) -> Response {
    let client_id = form.client_id.trim().to_string();
    let secret = form.client_secret.trim().to_string();
    if client_id.is_empty() || secret.is_empty() {
        let problem = Problem::new(
            "Both fields are needed",
            &["Enter the credential's Client ID and Client secret as Personio shows them."],
        );
        return show_credentials(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            client_id,
            Some(problem),
        );
    }
    match core::connect_with_credentials(&state, &session.tenant_id, &client_id, secret).await {
        Ok(()) => super::see_other(&super::overview_path(&session.tenant_id)),
        Err(problem) => show_credentials(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            client_id,
            Some(problem),
        ),
    }
}

/// The sign-in form's fields (only the CSRF token).
#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /connect/oidc`: starts signing in at Personio.
async fn start_sign_in(
    State(state): State<AppState>,
    CsrfForm { session, .. }: CsrfForm<EmptyForm>,
) -> Response {
    if super::connected(&state, &session.tenant_id) {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
    match core::begin_sign_in(&state).await {
        Ok((authorize_url, pending)) => {
            state.sessions.set_pending(&session, pending);
            super::see_other(&authorize_url)
        }
        Err(problem) => show_connect(&state, &session, StatusCode::BAD_GATEWAY, Some(problem)),
    }
}

/// The provider's answer on `/connect/callback`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /connect/callback`: finishes signing in with the session's pending login, then
/// connects. A callback the session did not start (no pending login, a state that does
/// not match) is refused and stores nothing.
async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let pending = state.sessions.take_pending(&session);
    let Some(pending) = pending else {
        return refused_callback(&state, &session);
    };
    if let Some(error) = query.error {
        let problem = if error == "access_denied" {
            Problem::new(
                "Access was not allowed",
                &[
                    "You did not allow access at Personio, so nothing was connected. Sign in again and choose Allow, or use API credentials.",
                ],
            )
        } else {
            Problem::new(
                "Personio refused the sign-in",
                &[
                    "Personio did not complete the sign-in. Try again; if it keeps failing, use API credentials.",
                ],
            )
        };
        return show_connect(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(problem),
        );
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return refused_callback(&state, &session);
    };
    match core::finish_sign_in(&state, &session.tenant_id, pending, &code, &returned_state).await {
        Ok(()) => super::see_other(&super::overview_path(&session.tenant_id)),
        Err(Finish::Refused) => refused_callback(&state, &session),
        Err(Finish::Problem(problem)) => show_connect(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(problem),
        ),
    }
}

fn refused_callback(state: &AppState, session: &Session) -> Response {
    tracing::warn!(tenant_id = %session.tenant_id, "sign-in callback refused: it does not belong to a sign-in this session started");
    let problem = Problem::new(
        "This sign-in was refused",
        &[
            "The answer from Personio does not belong to a sign-in started on this page (it may be old, reused or forged), so nothing was connected.",
            "Start again with Sign in with Personio below.",
        ],
    );
    show_connect(state, session, StatusCode::BAD_REQUEST, Some(problem))
}

/// What opening an invitation token found.
pub enum Opened {
    /// A valid invitation of this tenant.
    Tenant(String),
    /// No such invitation.
    Unknown,
    /// Its time ran out.
    Expired,
    /// The operator revoked it.
    Revoked,
}

/// Why a sign-in could not be finished.
pub enum Finish {
    /// The callback does not belong to the pending sign-in (forged or mismatched
    /// state, replayed): nothing is shown but a refusal.
    Refused,
    /// Signing in or checking the connection failed in a way the admin can act on.
    Problem(Problem),
}

/// The service core the pages call (invitations, the relying party, connecting).
mod core {
    use super::{Finish, Opened, PendingLogin, Problem};
    use crate::http::AppState;

    fn unavailable() -> Problem {
        Problem::new(
            "Connecting is not available yet",
            &["This service cannot connect Personio yet. Ask your Learn Amp contact."],
        )
    }

    pub fn open_invitation(_state: &AppState, _token: &str) -> Opened {
        Opened::Unknown
    }

    pub fn oidc_available(_state: &AppState) -> bool {
        false
    }

    pub async fn begin_sign_in(_state: &AppState) -> Result<(String, PendingLogin), Problem> {
        Err(unavailable())
    }

    pub async fn finish_sign_in(
        _state: &AppState,
        _tenant_id: &str,
        _pending: PendingLogin,
        _code: &str,
        _returned_state: &str,
    ) -> Result<(), Finish> {
        Err(Finish::Problem(unavailable()))
    }

    pub async fn connect_with_credentials(
        _state: &AppState,
        _tenant_id: &str,
        _client_id: &str,
        _secret: String,
    ) -> Result<(), Problem> {
        Err(unavailable())
    }
}
