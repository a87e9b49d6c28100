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
        .route(
            "/connect/{token}",
            get(open_invitation).post(switch_to_invitation),
        )
}

/// What went wrong, as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// A short heading.
    pub title: String,
    /// What happened and what to do.
    pub paragraphs: Vec<String>,
    /// Personio attributes the connection cannot read (by their Personio names).
    pub missing: Vec<String>,
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

/// `templates/connect/switch.html`: a link of another tenant opened in a browser
/// signed in for one tenant.
#[derive(askama::Template)]
#[template(path = "connect/switch.html")]
pub struct SwitchPage {
    /// The layout (of the current session).
    pub layout: Layout,
    /// The tenant the browser is signed in for.
    pub current: String,
    /// The tenant of the link.
    pub invited: String,
    /// Where the form posts (the link itself).
    pub action: String,
    /// The current session's CSRF token.
    pub csrf: String,
    /// The current tenant's overview.
    pub stay: String,
}

/// `GET /connect/{token}`: opens an invitation. A valid one starts a session and moves
/// the token out of the address bar (303 to `/connect`, or to the overview when the
/// tenant is already connected); any other shows what to do, without a session. A
/// browser signed in for another tenant is asked first: a link opened from another site
/// must not swap its session silently.
async fn open_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    match core::open_invitation(&state, &token).await {
        Opened::Tenant(tenant_id) => match state.sessions.of_request(&headers).await {
            Some(current) if current.tenant_id != tenant_id => render_status(
                StatusCode::OK,
                &SwitchPage {
                    layout: Layout::connect(&state, &current, "Switch to another company?"),
                    current: current.tenant_id.clone(),
                    invited: tenant_id,
                    action: format!("/connect/{token}"),
                    csrf: current.csrf.clone(),
                    stay: super::overview_path(&current.tenant_id),
                },
            ),
            _ => start_from_invitation(&state, tenant_id, token).await,
        },
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
        Opened::Unavailable(message) => super::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "The invitation could not be checked",
            &[&message],
            None,
        ),
    }
}

/// `POST /connect/{token}`: the confirmed switch of [`open_invitation`] (the form
/// carries the current session's CSRF token, so another site cannot post it).
async fn switch_to_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    CsrfForm { session, .. }: CsrfForm<EmptyForm>,
) -> Response {
    match core::open_invitation(&state, &token).await {
        Opened::Tenant(tenant_id) => {
            state.sessions.end(&session).await;
            start_from_invitation(&state, tenant_id, token).await
        }
        // The link stopped holding meanwhile: show why, as a GET would.
        _ => super::see_other(&format!("/connect/{token}")),
    }
}

/// Starts the session of a valid invitation and sends the browser on.
async fn start_from_invitation(state: &AppState, tenant_id: String, token: String) -> Response {
    let (_, cookie) = state
        .sessions
        .start_invited(&tenant_id, Some(crate::domain::Secret::new(token)))
        .await;
    let target = if super::can_connect(state, &tenant_id) {
        CONNECT_PATH.to_string()
    } else {
        super::overview_path(&tenant_id)
    };
    tracing::info!(tenant_id = %tenant_id, "invitation opened");
    with_cookie(super::see_other(&target), cookie)
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
    if !super::can_connect(&state, &session.tenant_id) {
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
    if !super::can_connect(&state, &session.tenant_id) {
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
    if !super::can_connect(&state, &session.tenant_id) {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
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
    match core::connect_with_credentials(&state, &session, &client_id, secret).await {
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
    if !super::can_connect(&state, &session.tenant_id) {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
    match core::begin_sign_in(&state).await {
        Ok((authorize_url, pending)) => {
            state.sessions.set_pending(&session, pending).await;
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
    let pending = state.sessions.take_pending(&session).await;
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
    match core::finish_sign_in(&state, &session, pending, &code, &returned_state).await {
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
    /// It could not be checked (storage); the sentence says what to do.
    Unavailable(String),
}

/// Why a sign-in could not be finished.
pub enum Finish {
    /// The callback does not belong to the pending sign-in (forged or mismatched
    /// state, replayed): nothing is shown but a refusal.
    Refused,
    /// Signing in or checking the connection failed in a way the admin can act on.
    Problem(Problem),
}

/// The service core the pages call: invitations, the relying party, connecting.
mod core {
    use super::{Finish, Opened, Problem};
    use crate::connect::{ConnectError, Connection, InvitationError, VerifyError};
    use crate::domain::Secret;
    use crate::http::AppState;
    use crate::personio::oidc::{OidcError, PendingLogin};
    use crate::web::Session;

    pub async fn open_invitation(state: &AppState, token: &str) -> Opened {
        match state.services.invitations().open(token).await {
            Ok(open) => Opened::Tenant(open.tenant_id),
            Err(InvitationError::Expired { .. }) => Opened::Expired,
            Err(InvitationError::Revoked) => Opened::Revoked,
            Err(InvitationError::Unknown | InvitationError::UnknownTenant(_)) => Opened::Unknown,
            Err(error) => {
                tracing::error!(error = %error, "an invitation could not be checked");
                Opened::Unavailable(error.customer_message())
            }
        }
    }

    pub fn oidc_available(state: &AppState) -> bool {
        state.services.oidc.is_some()
    }

    /// Where the provider sends the browser back.
    fn redirect_uri(state: &AppState) -> String {
        format!(
            "{}{}",
            state.services.public_url.trim_end_matches('/'),
            super::CALLBACK_PATH
        )
    }

    pub async fn begin_sign_in(state: &AppState) -> Result<(String, PendingLogin), Problem> {
        let Some(relying_party) = &state.services.oidc else {
            return Err(Problem::new(
                "Sign-in with Personio is not available",
                &[
                    "This service is not set up for signing in with Personio. Use API credentials instead.",
                ],
            ));
        };
        relying_party.begin(&redirect_uri(state)).await.map_err(|error| {
            tracing::warn!(error = %error, "sign-in with Personio could not start");
            Problem::new(
                "Personio sign-in could not start",
                &["Personio could not be reached just now. Nothing was changed; try again in a few minutes, or use API credentials."],
            )
        })
    }

    pub async fn finish_sign_in(
        state: &AppState,
        session: &Session,
        pending: PendingLogin,
        code: &str,
        returned_state: &str,
    ) -> Result<(), Finish> {
        let Some(relying_party) = &state.services.oidc else {
            return Err(Finish::Refused);
        };
        let grant = match relying_party.finish(&pending, code, returned_state).await {
            Ok(grant) => grant,
            Err(OidcError::StateMismatch) => return Err(Finish::Refused),
            Err(error) => {
                tracing::warn!(tenant_id = %session.tenant_id, error = %error, "sign-in with Personio failed");
                return Err(Finish::Problem(Problem::new(
                    "Personio sign-in did not complete",
                    &[
                        "Personio did not confirm the sign-in, so nothing was connected. Start again with Sign in with Personio; if it keeps failing, use API credentials.",
                    ],
                )));
            }
        };
        connect(state, session, Connection::Oidc(grant), true)
            .await
            .map_err(Finish::Problem)
    }

    pub async fn connect_with_credentials(
        state: &AppState,
        session: &Session,
        client_id: &str,
        secret: String,
    ) -> Result<(), Problem> {
        let connection = Connection::ClientCredentials {
            client_id: client_id.to_string(),
            client_secret: Secret::new(secret),
        };
        connect(state, session, connection, false).await
    }

    async fn connect(
        state: &AppState,
        session: &Session,
        connection: Connection,
        oidc: bool,
    ) -> Result<(), Problem> {
        let invitation = state.sessions.invitation(session).await;
        let token = invitation.as_ref().map(|token| token.expose());
        // The link that opened this session must still hold: an operator who withdraws
        // an invitation (or lets it run out) also stops a connection begun with it.
        if let Some(token) = token
            && !matches!(open_invitation(state, token).await, Opened::Tenant(_))
        {
            tracing::info!(tenant_id = %session.tenant_id, "connection refused: the session's invitation no longer holds");
            return Err(Problem::new(
                "This invitation no longer holds",
                &[
                    "The invitation link that opened this page has expired or was withdrawn, so nothing was connected.",
                    "Ask your Learn Amp contact (the operator who sent the link) for a new invitation, then open the new link.",
                ],
            ));
        }
        match crate::connect::connect_tenant(state, &session.tenant_id, connection, token).await {
            Ok(_) => {
                tracing::info!(tenant_id = %session.tenant_id, oidc, "tenant connected from the connect page");
                Ok(())
            }
            // Connected; only the start is late (the supervisor retries it).
            Err(ConnectError::NotStarted(reason)) => {
                tracing::warn!(tenant_id = %session.tenant_id, reason = %reason, "connected, but the tenant did not start yet");
                Ok(())
            }
            Err(error) => {
                tracing::info!(tenant_id = %session.tenant_id, oidc, error = %error, "connection refused");
                Err(problem_of(&error, oidc))
            }
        }
    }

    /// The page's account of a refused connection.
    fn problem_of(error: &ConnectError, oidc: bool) -> Problem {
        let message = error.customer_message();
        let title = match error {
            ConnectError::Refused(VerifyError::CredentialsRefused) if oidc => {
                "Personio refused the sign-in"
            }
            ConnectError::Refused(VerifyError::CredentialsRefused) => {
                "Personio did not accept these credentials"
            }
            ConnectError::Refused(VerifyError::NotAdministrator) => {
                "This Personio user lacks administrator access"
            }
            ConnectError::Refused(VerifyError::MissingAttributes { .. }) => {
                "Personio does not share some employee attributes"
            }
            ConnectError::Refused(VerifyError::MissingScopes(_)) => {
                "The connection lacks API permissions"
            }
            _ => "Personio could not be connected",
        };
        let missing = match error {
            ConnectError::Refused(VerifyError::MissingAttributes { attributes, .. }) => {
                attributes.clone()
            }
            _ => Vec::new(),
        };
        Problem {
            title: title.into(),
            paragraphs: vec![message],
            missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::*;

    fn layout() -> Layout {
        Layout {
            title: "Connect Personio".into(),
            tenant: Some("acme".into()),
            ..Layout::default()
        }
    }

    #[test]
    fn the_connect_page_offers_both_ways_with_the_contract_names() {
        let html = ConnectPage {
            layout: layout(),
            csrf: "c5rf".into(),
            oidc_available: true,
            problem: None,
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"<button type="submit">Sign in with Personio</button>"#));
        assert!(html.contains(r#"name="csrf" value="c5rf""#));
        assert!(html.contains(">Use API credentials</a>"));
        assert!(html.contains("Not connected"));
        assert!(!html.contains(r#"role="alert""#));
        let html = ConnectPage {
            layout: layout(),
            csrf: "c5rf".into(),
            oidc_available: false,
            problem: None,
        }
        .render()
        .unwrap();
        assert!(html.contains("<button type=\"button\" disabled>Sign in with Personio</button>"));
    }

    #[test]
    fn the_credentials_form_keeps_the_client_id_never_the_secret_and_names_missing_attributes() {
        let html = CredentialsPage {
            layout: layout(),
            csrf: "c5rf".into(),
            client_id: "my-client".into(),
            problem: Some(Problem {
                title: "Personio does not share some employee attributes".into(),
                paragraphs: vec!["Tick them in Personio.".into()],
                missing: vec!["status".into(), "termination_date".into()],
            }),
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"<label for="client-id">Client ID</label>"#));
        assert!(html.contains(r#"<label for="client-secret">Client secret</label>"#));
        assert!(html.contains(r#"<button type="submit">Connect</button>"#));
        assert!(html.contains(r#"value="my-client""#));
        assert!(
            html.contains(
                r#"id="client-secret" name="client_secret" autocomplete="off" required>"#
            )
        );
        assert!(
            html.contains("<code>status</code>") && html.contains("<code>termination_date</code>")
        );
        assert!(html.contains(r#"role="alert""#));
    }
}
