//! Sessions of the customer pages: an opaque random id in a cookie, a server-side record
//! keyed by the id's SHA-256 (the id itself is never kept), the CSRF token every form
//! carries, and the extractors handlers take ([`Session`], [`CsrfForm`]).
//!
//! Records live in memory: a session lasts at most 12 hours, holds a pending sign-in
//! (PKCE verifier, nonce) that is better never written to disk, and a restart only means
//! the admin opens their invitation link again (it stays valid until it expires).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::Secret;
use crate::domain::tenant::random_hex;
use crate::http::AppState;
use crate::locks::lock;

/// Name of the session cookie.
pub const COOKIE: &str = "psync_session";

/// How long a session lasts from its start (also the cookie's `Max-Age`).
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Most live sessions one tenant keeps: opening a valid invitation link over and over
/// must not grow memory without end; the oldest session gives way.
pub const MAX_SESSIONS_PER_TENANT: usize = 32;

/// Name of the hidden CSRF field of every form.
pub const CSRF_FIELD: &str = "csrf";

/// The sign-in started by this session and not yet finished (what the relying party
/// needs back on the callback).
pub type PendingLogin = crate::personio::oidc::PendingLogin;

/// One session's server-side record.
struct Record {
    tenant_id: String,
    csrf: String,
    created: Instant,
    pending: Option<PendingLogin>,
    /// The invitation token that started the session (marked used on connecting).
    invitation: Option<Secret>,
}

/// Every live session, by the SHA-256 of its id.
pub struct Sessions {
    records: Mutex<HashMap<[u8; 32], Record>>,
    secure_cookie: bool,
}

/// The session of a request, as handlers see it: which tenant it may act for and the
/// CSRF token its forms carry. Never holds the session id.
#[derive(Clone)]
pub struct Session {
    key: [u8; 32],
    /// The one tenant this session may see and act for.
    pub tenant_id: String,
    /// The token to put in every form's hidden `csrf` field.
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// An empty set; cookies get `Secure` when `secure_cookie` (the public URL is https).
    pub fn new(secure_cookie: bool) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            secure_cookie,
        }
    }

    /// Starts a session for `tenant_id`: the session and the `Set-Cookie` value that
    /// hands its id to the browser. Drops expired sessions on the way.
    pub fn start(&self, tenant_id: &str) -> (Session, HeaderValue) {
        self.start_invited(tenant_id, None)
    }

    /// Like [`Self::start`], for a session opened with invitation `token` (kept, in
    /// memory only, so connecting can mark the invitation used).
    pub fn start_invited(
        &self,
        tenant_id: &str,
        invitation: Option<Secret>,
    ) -> (Session, HeaderValue) {
        let id = random_hex(32);
        let key = hash(&id);
        let csrf = random_hex(32);
        let mut records = lock(&self.records);
        records.retain(|_, record| record.created.elapsed() < LIFETIME);
        let mut of_tenant: Vec<([u8; 32], Instant)> = records
            .iter()
            .filter(|(_, record)| record.tenant_id == tenant_id)
            .map(|(key, record)| (*key, record.created))
            .collect();
        if of_tenant.len() >= MAX_SESSIONS_PER_TENANT {
            of_tenant.sort_by_key(|(_, created)| *created);
            for (key, _) in &of_tenant[..=of_tenant.len() - MAX_SESSIONS_PER_TENANT] {
                records.remove(key);
            }
        }
        records.insert(
            key,
            Record {
                tenant_id: tenant_id.to_string(),
                csrf: csrf.clone(),
                created: Instant::now(),
                pending: None,
                invitation,
            },
        );
        let session = Session {
            key,
            tenant_id: tenant_id.to_string(),
            csrf,
        };
        (session, self.cookie(&id, LIFETIME.as_secs()))
    }

    /// Ends every session of `tenant_id` (its invitations were revoked, or the tenant
    /// was deleted: a session must not outlive the access it was opened with); how
    /// many ended.
    pub fn end_tenant(&self, tenant_id: &str) -> usize {
        let mut records = lock(&self.records);
        let before = records.len();
        records.retain(|_, record| record.tenant_id != tenant_id);
        before - records.len()
    }

    /// The live session of a request carrying `headers`, if any.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<Session> {
        session_id(headers).and_then(|id| self.find(id))
    }

    /// The live session whose id is `id`, if any.
    pub fn find(&self, id: &str) -> Option<Session> {
        let key = hash(id);
        let mut records = lock(&self.records);
        let record = records.get(&key)?;
        if record.created.elapsed() >= LIFETIME {
            records.remove(&key);
            return None;
        }
        Some(Session {
            key,
            tenant_id: record.tenant_id.clone(),
            csrf: record.csrf.clone(),
        })
    }

    /// Keeps `pending` as the session's sign-in in progress (replacing an earlier one).
    pub fn set_pending(&self, session: &Session, pending: PendingLogin) {
        if let Some(record) = lock(&self.records).get_mut(&session.key) {
            record.pending = Some(pending);
        }
    }

    /// Takes the session's sign-in in progress: each can be finished at most once.
    pub fn take_pending(&self, session: &Session) -> Option<PendingLogin> {
        lock(&self.records)
            .get_mut(&session.key)
            .and_then(|record| record.pending.take())
    }

    /// The invitation token the session was opened with, if any.
    pub fn invitation(&self, session: &Session) -> Option<Secret> {
        lock(&self.records)
            .get(&session.key)
            .and_then(|record| record.invitation.clone())
    }

    /// Ends a session.
    pub fn end(&self, session: &Session) {
        lock(&self.records).remove(&session.key);
    }

    /// Live sessions (tests).
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `Set-Cookie` value for session id `id`.
    fn cookie(&self, id: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .expect("hex id and fixed attributes form a valid header value")
    }
}

/// The session id in the request's cookies, if any.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The tenant named by an `/app/{tenant}/…` path.
fn app_tenant(path: &str) -> Option<&str> {
    path.strip_prefix("/app/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
}

/// Whether `given` is this session's CSRF token (constant time).
pub fn csrf_matches(session: &Session, given: &str) -> bool {
    session.csrf.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The page shown for a request without a live session.
fn no_session() -> Response {
    super::message(
        StatusCode::UNAUTHORIZED,
        "Your session has ended",
        &[
            "This page needs the session that your invitation link started, and it has ended (sessions last 12 hours) or was never started in this browser.",
            "Open your invitation link again. If it has expired, ask your Learn Amp contact for a new invitation.",
        ],
        None,
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    /// The request's live session; on `/app/{tenant}/…` also refuses (403) a session of
    /// another tenant.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = session_id(&parts.headers)
            .and_then(|id| state.sessions.find(id))
            .ok_or_else(no_session)?;
        if let Some(tenant) = app_tenant(parts.uri.path())
            && tenant != session.tenant_id
        {
            return Err(super::message(
                StatusCode::FORBIDDEN,
                "Not your company's pages",
                &[
                    "Your session is for another company's connection; it cannot open these pages.",
                    "Open your own invitation link, or go to your overview.",
                ],
                Some(super::Link {
                    href: super::overview_path(&session.tenant_id),
                    text: "Go to your overview".into(),
                }),
            ));
        }
        Ok(session)
    }
}

/// A urlencoded form of type `T` whose `csrf` field matched the request's session (in
/// constant time); anything else is refused with a page before the handler runs.
/// `T` ignores the `csrf` field (do not mark it `deny_unknown_fields`).
pub struct CsrfForm<T> {
    /// The session the form was posted in.
    pub session: Session,
    /// The form's other fields.
    pub form: T,
}

#[derive(serde::Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| bad_form("The form could not be read (too large or broken off)."))?;
        let given: CsrfOnly = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| bad_form("The form could not be read."))?;
        if !csrf_matches(&session, &given.csrf) {
            return Err(super::message(
                StatusCode::FORBIDDEN,
                "This form has expired",
                &[
                    "The form was not sent from the page this session showed (or the session has changed since), so nothing was done.",
                    "Go back, reload the page and try again.",
                ],
                None,
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|error| bad_form(&format!("The form could not be read: {error}.")))?;
        Ok(Self { session, form })
    }
}

fn bad_form(text: &str) -> Response {
    super::message(
        StatusCode::BAD_REQUEST,
        "The form could not be read",
        &[text],
        None,
    )
}

/// Adds the session cookie to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_rooted_and_secure_only_for_https() {
        let (_, cookie) = Sessions::new(false).start("acme");
        let cookie = cookie.to_str().unwrap().to_string();
        assert!(cookie.starts_with("psync_session="), "{cookie}");
        for attribute in [
            "; Path=/",
            "; HttpOnly",
            "; SameSite=Lax",
            "; Max-Age=43200",
        ] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Secure"), "{cookie}");
        let (_, cookie) = Sessions::new(true).start("acme");
        assert!(cookie.to_str().unwrap().ends_with("; Secure"));
    }

    fn id_of(cookie: &HeaderValue) -> String {
        let cookie = cookie.to_str().unwrap();
        cookie["psync_session=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_tenant_keeps_at_most_its_cap_of_sessions_and_the_oldest_gives_way() {
        let sessions = Sessions::new(false);
        let (_, first) = sessions.start("acme");
        let (_, other_tenant) = sessions.start("globex");
        let mut last = first.clone();
        for _ in 0..MAX_SESSIONS_PER_TENANT {
            last = sessions.start("acme").1;
        }
        assert!(
            sessions.find(&id_of(&first)).is_none(),
            "the oldest gave way"
        );
        assert!(sessions.find(&id_of(&last)).is_some());
        assert!(
            sessions.find(&id_of(&other_tenant)).is_some(),
            "another tenant's session stays"
        );
        let acme = lock(&sessions.records)
            .values()
            .filter(|record| record.tenant_id == "acme")
            .count();
        assert_eq!(acme, MAX_SESSIONS_PER_TENANT);
    }

    #[test]
    fn ending_a_tenants_sessions_leaves_the_others() {
        let sessions = Sessions::new(false);
        let (_, acme) = sessions.start("acme");
        let (_, acme_again) = sessions.start("acme");
        let (_, globex) = sessions.start("globex");
        assert_eq!(sessions.end_tenant("acme"), 2);
        assert!(sessions.find(&id_of(&acme)).is_none());
        assert!(sessions.find(&id_of(&acme_again)).is_none());
        assert!(sessions.find(&id_of(&globex)).is_some());
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_keeps_no_id() {
        let sessions = Sessions::new(false);
        let (session, cookie) = sessions.start("acme");
        let cookie = cookie.to_str().unwrap();
        let id = cookie["psync_session=".len()..].split(';').next().unwrap();
        assert_eq!(id.len(), 64);
        let found = sessions.find(id).expect("found by its id");
        assert_eq!(found.tenant_id, "acme");
        assert_eq!(found.csrf, session.csrf);
        assert!(sessions.find(&id[..63]).is_none());
        assert!(sessions.find(&session.csrf).is_none());
        assert!(!format!("{found:?}").contains(id));
        sessions.end(&found);
        assert!(sessions.find(id).is_none());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let (session, _) = Sessions::new(false).start("acme");
        assert!(csrf_matches(&session, &session.csrf.clone()));
        assert!(!csrf_matches(&session, ""));
        assert!(!csrf_matches(&session, &session.csrf[..63]));
        assert!(!csrf_matches(&session, &format!("{}0", session.csrf)));
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; psync_session=abc ; b=2"),
        );
        assert_eq!(session_id(&headers), Some("abc"));
        assert_eq!(session_id(&HeaderMap::new()), None);
        assert_eq!(app_tenant("/app/acme/people"), Some("acme"));
        assert_eq!(app_tenant("/app/acme"), Some("acme"));
        assert_eq!(app_tenant("/connect"), None);
    }
}
