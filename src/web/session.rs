//! Sessions of the customer pages: an opaque random id in a cookie, a server-side record
//! keyed by the id's SHA-256 (the id itself is never kept), the CSRF token every form
//! carries, and the extractors handlers take ([`Session`], [`CsrfForm`]).
//!
//! Records live in the store's `meta` (see `store::sessions`), so every node of a
//! cluster serves a signed-in browser and a session survives a restart; the sign-in in
//! progress (PKCE verifier, nonce) and the invitation token are sealed under the
//! store's key. A session lasts at most 12 hours.

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::Secret;
use crate::domain::tenant::random_hex;
use crate::http::AppState;
use crate::store::{SessionRecord, Store};

/// Name of the session cookie.
pub const COOKIE: &str = "psync_session";

/// How long a session lasts from its start (also the cookie's `Max-Age`).
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Most live sessions one tenant keeps: opening a valid invitation link over and over
/// must not grow storage without end; the oldest session gives way.
pub const MAX_SESSIONS_PER_TENANT: usize = 32;

/// Name of the hidden CSRF field of every form.
pub const CSRF_FIELD: &str = "csrf";

/// The sign-in started by this session and not yet finished (what the relying party
/// needs back on the callback).
pub type PendingLogin = crate::personio::oidc::PendingLogin;

/// What a session keeps secret (sealed at rest by the store).
#[derive(Default, Serialize, Deserialize)]
struct Secrets {
    /// The sign-in in progress.
    #[serde(default)]
    pending: Option<PendingLogin>,
    /// The invitation token that started the session (marked used on connecting).
    #[serde(default)]
    invitation: Option<String>,
}

impl Secrets {
    fn of(record: &SessionRecord) -> Self {
        record
            .secret
            .as_deref()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default()
    }

    /// Stores `self` into `record` (nothing when there is nothing secret).
    fn into_record(self, record: &mut SessionRecord) {
        record.secret = (self.pending.is_some() || self.invitation.is_some())
            .then(|| serde_json::to_vec(&self).expect("session secrets serialise to JSON"));
    }
}

/// Every live session, in the store.
pub struct Sessions {
    store: Store,
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

/// Now, in nanoseconds since the Unix epoch (orders sessions started in one second).
fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Whether a session started at `created` (nanoseconds) has ended by `now`.
fn expired(created: i64, now: i64) -> bool {
    now.saturating_sub(created) >= LIFETIME.as_nanos() as i64
}

impl Sessions {
    /// Sessions kept in `store`; cookies get `Secure` when `secure_cookie` (the public
    /// URL is https).
    pub fn new(store: Store, secure_cookie: bool) -> Self {
        Self {
            store,
            secure_cookie,
        }
    }

    /// Starts a session for `tenant_id`: the session and the `Set-Cookie` value that
    /// hands its id to the browser. Drops expired sessions on the way.
    pub async fn start(&self, tenant_id: &str) -> (Session, HeaderValue) {
        self.start_invited(tenant_id, None).await
    }

    /// Like [`Self::start`], for a session opened with invitation `token` (kept sealed,
    /// so connecting can mark the invitation used).
    pub async fn start_invited(
        &self,
        tenant_id: &str,
        invitation: Option<Secret>,
    ) -> (Session, HeaderValue) {
        let id = random_hex(32);
        let key = hash(&id);
        let csrf = random_hex(32);
        let now = now_nanos();
        let mut of_tenant: Vec<([u8; 32], i64)> = Vec::new();
        for (hash, record) in self.stored().await {
            if expired(record.created_unix_nanos, now) {
                self.remove(&hash).await;
            } else if record.tenant_id == tenant_id {
                of_tenant.push((hash, record.created_unix_nanos));
            }
        }
        if of_tenant.len() >= MAX_SESSIONS_PER_TENANT {
            of_tenant.sort_by_key(|(_, created)| *created);
            for (hash, _) in &of_tenant[..=of_tenant.len() - MAX_SESSIONS_PER_TENANT] {
                self.remove(hash).await;
            }
        }
        let mut record = SessionRecord {
            tenant_id: tenant_id.to_string(),
            csrf: csrf.clone(),
            created_unix_nanos: now,
            secret: None,
        };
        Secrets {
            pending: None,
            invitation: invitation.map(|token| token.expose().to_string()),
        }
        .into_record(&mut record);
        if let Err(error) = self.store.put_session(&key, &record).await {
            tracing::error!(tenant_id = %tenant_id, error = %error, "session not stored");
        }
        let session = Session {
            key,
            tenant_id: tenant_id.to_string(),
            csrf,
        };
        (session, self.cookie(&id, LIFETIME.as_secs()))
    }

    /// Every stored session (none when storage fails, logged).
    async fn stored(&self) -> Vec<([u8; 32], SessionRecord)> {
        self.store.sessions().await.unwrap_or_else(|error| {
            tracing::error!(error = %error, "sessions unreadable");
            Vec::new()
        })
    }

    async fn remove(&self, key: &[u8; 32]) {
        if let Err(error) = self.store.remove_session(key).await {
            tracing::error!(error = %error, "session not removed");
        }
    }

    /// Ends every session of `tenant_id` (its invitations were revoked, or the tenant
    /// was deleted: a session must not outlive the access it was opened with); how
    /// many ended.
    pub async fn end_tenant(&self, tenant_id: &str) -> usize {
        let mut ended = 0;
        for (hash, record) in self.stored().await {
            if record.tenant_id == tenant_id {
                self.remove(&hash).await;
                ended += 1;
            }
        }
        ended
    }

    /// The live session of a request carrying `headers`, if any.
    pub async fn of_request(&self, headers: &HeaderMap) -> Option<Session> {
        self.find(session_id(headers)?).await
    }

    /// The live session whose id is `id`, if any.
    pub async fn find(&self, id: &str) -> Option<Session> {
        let key = hash(id);
        let record = match self.store.session(&key).await {
            Ok(record) => record?,
            Err(error) => {
                tracing::error!(error = %error, "session unreadable");
                return None;
            }
        };
        if expired(record.created_unix_nanos, now_nanos()) {
            self.remove(&key).await;
            return None;
        }
        Some(Session {
            key,
            tenant_id: record.tenant_id,
            csrf: record.csrf,
        })
    }

    /// Changes the secrets of `session` (nothing when it has ended); what `change`
    /// answered.
    async fn change_secrets<T: Default>(
        &self,
        session: &Session,
        mut change: impl FnMut(&mut Secrets) -> T,
    ) -> T {
        let answer = self
            .store
            .update_session(&session.key, |record| {
                let mut secrets = Secrets::of(record);
                let answer = change(&mut secrets);
                secrets.into_record(record);
                answer
            })
            .await;
        match answer {
            Ok(answer) => answer.unwrap_or_default(),
            Err(error) => {
                tracing::error!(error = %error, "session not updated");
                T::default()
            }
        }
    }

    /// Keeps `pending` as the session's sign-in in progress (replacing an earlier one).
    pub async fn set_pending(&self, session: &Session, pending: PendingLogin) {
        self.change_secrets(session, |secrets| {
            secrets.pending = Some(pending.clone());
        })
        .await;
    }

    /// Takes the session's sign-in in progress: each can be finished at most once.
    pub async fn take_pending(&self, session: &Session) -> Option<PendingLogin> {
        self.change_secrets(session, |secrets| secrets.pending.take())
            .await
    }

    /// The invitation token the session was opened with, if any.
    pub async fn invitation(&self, session: &Session) -> Option<Secret> {
        match self.store.session(&session.key).await {
            Ok(Some(record)) => Secrets::of(&record).invitation.map(Secret::new),
            Ok(None) => None,
            Err(error) => {
                tracing::error!(error = %error, "session unreadable");
                None
            }
        }
    }

    /// Ends a session.
    pub async fn end(&self, session: &Session) {
        self.remove(&session.key).await;
    }

    /// Live sessions (tests).
    pub async fn len(&self) -> usize {
        let now = now_nanos();
        self.stored()
            .await
            .iter()
            .filter(|(_, record)| !expired(record.created_unix_nanos, now))
            .count()
    }

    /// Whether no session is live.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
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
            .map(str::to_string)
            .ok_or_else(no_session)?;
        let session = state.sessions.find(&session).await.ok_or_else(no_session)?;
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

    async fn sessions(secure_cookie: bool) -> Sessions {
        Sessions::new(Store::temporary().await.unwrap(), secure_cookie)
    }

    #[tokio::test]
    async fn the_cookie_is_http_only_lax_rooted_and_secure_only_for_https() {
        let (_, cookie) = sessions(false).await.start("acme").await;
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
        let (_, cookie) = sessions(true).await.start("acme").await;
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

    #[tokio::test]
    async fn a_tenant_keeps_at_most_its_cap_of_sessions_and_the_oldest_gives_way() {
        let sessions = sessions(false).await;
        let (_, first) = sessions.start("acme").await;
        let (_, other_tenant) = sessions.start("globex").await;
        let mut last = first.clone();
        for _ in 0..MAX_SESSIONS_PER_TENANT {
            last = sessions.start("acme").await.1;
        }
        assert!(
            sessions.find(&id_of(&first)).await.is_none(),
            "the oldest gave way"
        );
        assert!(sessions.find(&id_of(&last)).await.is_some());
        assert!(
            sessions.find(&id_of(&other_tenant)).await.is_some(),
            "another tenant's session stays"
        );
        let acme = sessions
            .store
            .sessions()
            .await
            .unwrap()
            .iter()
            .filter(|(_, record)| record.tenant_id == "acme")
            .count();
        assert_eq!(acme, MAX_SESSIONS_PER_TENANT);
    }

    #[tokio::test]
    async fn ending_a_tenants_sessions_leaves_the_others() {
        let sessions = sessions(false).await;
        let (_, acme) = sessions.start("acme").await;
        let (_, acme_again) = sessions.start("acme").await;
        let (_, globex) = sessions.start("globex").await;
        assert_eq!(sessions.end_tenant("acme").await, 2);
        assert!(sessions.find(&id_of(&acme)).await.is_none());
        assert!(sessions.find(&id_of(&acme_again)).await.is_none());
        assert!(sessions.find(&id_of(&globex)).await.is_some());
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_id_only_and_keeps_no_id() {
        let sessions = sessions(false).await;
        let (session, cookie) = sessions.start("acme").await;
        let cookie = cookie.to_str().unwrap();
        let id = cookie["psync_session=".len()..].split(';').next().unwrap();
        assert_eq!(id.len(), 64);
        let found = sessions.find(id).await.expect("found by its id");
        assert_eq!(found.tenant_id, "acme");
        assert_eq!(found.csrf, session.csrf);
        assert!(sessions.find(&id[..63]).await.is_none());
        assert!(sessions.find(&session.csrf).await.is_none());
        assert!(!format!("{found:?}").contains(id));
        // Nothing stored holds the id: the record is keyed by its hash.
        for (hash, record) in sessions.store.sessions().await.unwrap() {
            assert_ne!(crate::store::crypto::encode_hex(&hash), id);
            assert!(!format!("{record:?}").contains(id));
        }
        sessions.end(&found).await;
        assert!(sessions.find(id).await.is_none());
    }

    #[tokio::test]
    async fn a_session_survives_a_restart_of_the_store_with_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::store::crypto::SecretKey::generate();
        let id;
        {
            let store = Store::open_with_key(dir.path(), 16, key.clone())
                .await
                .unwrap();
            let sessions = Sessions::new(store.clone(), false);
            let (session, cookie) = sessions
                .start_invited("acme", Some(Secret::new("invitation-token")))
                .await;
            id = id_of(&cookie);
            sessions
                .set_pending(
                    &session,
                    PendingLogin {
                        state: "s".into(),
                        nonce: "n".into(),
                        pkce_verifier: "v".into(),
                        redirect_uri: "https://x/cb".into(),
                    },
                )
                .await;
            store.flush().await.unwrap();
        }
        let store = Store::open_with_key(dir.path(), 16, key).await.unwrap();
        let sessions = Sessions::new(store, false);
        let session = sessions.find(&id).await.expect("the session survived");
        assert_eq!(session.tenant_id, "acme");
        assert_eq!(
            sessions
                .invitation(&session)
                .await
                .map(|token| token.expose().to_string()),
            Some("invitation-token".to_string())
        );
        assert_eq!(
            sessions
                .take_pending(&session)
                .await
                .map(|p| p.pkce_verifier),
            Some("v".to_string())
        );
        assert!(
            sessions.take_pending(&session).await.is_none(),
            "taken once"
        );
        // The invitation is kept when the sign-in is taken.
        assert!(sessions.invitation(&session).await.is_some());
    }

    #[test]
    fn a_session_ends_twelve_hours_after_its_start() {
        let start = 1_700_000_000_000_000_000;
        let lifetime = LIFETIME.as_nanos() as i64;
        assert!(!expired(start, start));
        assert!(!expired(start, start + lifetime - 1));
        assert!(expired(start, start + lifetime));
    }

    #[tokio::test]
    async fn the_csrf_token_must_match_exactly() {
        let (session, _) = sessions(false).await.start("acme").await;
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
