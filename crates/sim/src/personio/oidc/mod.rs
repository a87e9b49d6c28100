//! An OpenID Connect provider at the simulator's base URL. **ASSUMED**: Personio documents
//! no OpenID Connect provider; this one follows OpenID Connect Core 1.0 and Discovery 1.0,
//! RFC 6749 (OAuth 2.0), RFC 7636 (PKCE) and RFC 9700 (security BCP), as
//! `reference/oidc-connect.md` fixes them for both sides.
//!
//! - `GET /.well-known/openid-configuration`: discovery; `issuer` is the base URL exactly.
//! - `GET /oauth/authorize`: the authorization request (code flow, PKCE S256, `state` and
//!   `nonce` required). The client is the simulator's API client; any loopback redirect
//!   URI (`http://127.0.0.1:*`, `http://localhost:*`, `http://[::1]:*`) is registered. An
//!   unknown client or redirect URI shows an error page and never redirects.
//!   A login page (`Email`, `Password`, `Sign in`) then a consent page (`Allow`, `Deny`)
//!   follow, posting to `/oauth/authorize/login` and `/oauth/authorize/consent`; the
//!   pending request stays on the server, the forms carry only its opaque id.
//! - `POST /oauth/token`: `authorization_code` (single use, 10 minutes, bound to client,
//!   redirect URI and code challenge; a replay revokes what the first use issued) and
//!   `refresh_token` with rotation (reuse of a spent refresh token revokes the grant).
//!   Client authentication by HTTP Basic or form fields.
//! - `GET /oauth/jwks`: the ES256 (P-256) key made at start.
//!
//! Access tokens are opaque and work as Bearer tokens on the v1 and v2 API with the
//! signed-in user's rights: the administrator's as the API credential's; the
//! non-administrator's are refused (403) on every API route. An expired or revoked
//! provider token answers 401 in both API families.

mod authorize;
mod keys;
mod sign_in;
mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

pub(crate) use authorize::{authorize, consent, discovery, jwks, login};
pub(crate) use keys::Keys;
pub(crate) use sign_in::sign_in;
pub use sign_in::{Consent, SignInError};
pub(crate) use token::token;

use crate::secret::Secret;

/// What the ID tokens issued while it is set get wrong (a test knob for relying parties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenFault {
    /// Signed with a key that is not in the JWKS (same `kid`): the signature fails.
    ForeignKey,
    /// `aud` names another client.
    WrongAudience,
    /// `exp` (and `iat`) lie an hour in the past.
    Expired,
}

/// The `aud` of ID tokens under [`IdTokenFault::WrongAudience`].
pub(crate) const FOREIGN_AUDIENCE: &str = "another-client";

/// How long an authorization code, and a pending authorization request, live.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(600);

/// How long an ID token is valid.
pub(crate) const ID_TOKEN_TTL_SECS: i64 = 600;

/// Default access token lifetime.
pub(crate) const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(3600);

/// Scopes the provider knows besides the Personio API scopes.
pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "email", "profile", "offline_access"];

/// The test administrator's login.
pub(crate) const ADMIN_EMAIL: &str = "hr.admin@acme.example";
pub(crate) const ADMIN_PASSWORD: &str = "sim-admin-password";
/// The test non-administrator's login.
pub(crate) const MEMBER_EMAIL: &str = "team.member@acme.example";
pub(crate) const MEMBER_PASSWORD: &str = "sim-member-password";

/// A Personio user who can sign in.
pub(crate) struct User {
    /// Stable subject identifier.
    pub(crate) sub: String,
    pub(crate) email: String,
    pub(crate) password: Secret,
    /// Whether the user administers the Personio account (reads the API).
    pub(crate) admin: bool,
}

/// An authorization request between the authorize page and the redirect back.
pub(crate) struct Pending {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) code_challenge: String,
    pub(crate) created: Instant,
    /// Index into `users` and the time of sign-in (Unix seconds), once signed in.
    pub(crate) signed_in: Option<(usize, i64)>,
}

/// An issued authorization code.
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) user: usize,
    pub(crate) nonce: String,
    pub(crate) scope: String,
    pub(crate) auth_time: i64,
    pub(crate) issued: Instant,
    /// The grant its first use created (a second use revokes it).
    pub(crate) redeemed: Option<u64>,
}

/// What one redeemed code gave: the tokens issued from it share its fate.
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) user: usize,
    pub(crate) scope: String,
    pub(crate) nonce: String,
    pub(crate) auth_time: i64,
    pub(crate) revoked: bool,
}

struct AccessToken {
    grant: u64,
    expires: Instant,
}

struct RefreshToken {
    grant: u64,
    used: bool,
}

/// What a provider access token may do on the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiAccess {
    /// Live, signed in as the administrator.
    Admin,
    /// Live, signed in as a user without administrator rights.
    NonAdmin,
    /// Issued here but expired or revoked.
    Stale,
}

/// The provider's state (inside the simulator's state, behind its mutex).
pub(crate) struct OidcState {
    pub(crate) users: Vec<User>,
    pub(crate) pending: HashMap<String, Pending>,
    pub(crate) codes: HashMap<String, Code>,
    pub(crate) grants: HashMap<u64, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    next_grant: u64,
    /// Lifetime of access tokens issued from now on.
    pub(crate) access_ttl: Duration,
    /// Fault applied to every ID token issued while set.
    pub(crate) fault: Option<IdTokenFault>,
}

impl OidcState {
    /// The two test users, no requests, no grants.
    pub(crate) fn new(company_id: &str) -> Self {
        let user = |role: &str, email: &str, password: &str, admin: bool| User {
            sub: format!("personio-{company_id}-{role}"),
            email: email.to_string(),
            password: Secret::new(password),
            admin,
        };
        Self {
            users: vec![
                user("admin", ADMIN_EMAIL, ADMIN_PASSWORD, true),
                user("member", MEMBER_EMAIL, MEMBER_PASSWORD, false),
            ],
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_grant: 1,
            access_ttl: DEFAULT_ACCESS_TTL,
            fault: None,
        }
    }

    /// Forgets pending requests and codes older than [`CODE_TTL`] (a spent code is kept
    /// while it lives, so that its replay is recognised).
    pub(crate) fn purge(&mut self) {
        self.pending
            .retain(|_, pending| pending.created.elapsed() < CODE_TTL);
        self.codes
            .retain(|_, code| code.issued.elapsed() < CODE_TTL);
    }

    /// A new grant.
    pub(crate) fn add_grant(&mut self, grant: Grant) -> u64 {
        let id = self.next_grant;
        self.next_grant += 1;
        self.grants.insert(id, grant);
        id
    }

    /// A new access token and a new refresh token for `grant`.
    pub(crate) fn issue_tokens(&mut self, grant: u64) -> (String, String) {
        let access = opaque("poat");
        let refresh = opaque("port");
        self.access.insert(
            access.clone(),
            AccessToken {
                grant,
                expires: Instant::now() + self.access_ttl,
            },
        );
        self.refresh
            .insert(refresh.clone(), RefreshToken { grant, used: false });
        (access, refresh)
    }

    /// Revokes `grant`: its access and refresh tokens stop working.
    pub(crate) fn revoke(&mut self, grant: u64) {
        if let Some(grant) = self.grants.get_mut(&grant) {
            grant.revoked = true;
        }
    }

    /// Revokes every grant.
    pub(crate) fn revoke_all(&mut self) {
        for grant in self.grants.values_mut() {
            grant.revoked = true;
        }
    }

    /// Spends refresh token `presented` of `client_id`: its grant when it was live and unused. A reused
    /// one revokes its grant (RFC 9700 §4.14); `Err` says why it was refused.
    pub(crate) fn spend_refresh(
        &mut self,
        presented: &str,
        client_id: &str,
    ) -> Result<u64, &'static str> {
        let Some(token) = self.refresh.get_mut(presented) else {
            return Err("The refresh token is unknown");
        };
        let grant = token.grant;
        if self
            .grants
            .get(&grant)
            .is_none_or(|grant| grant.client_id != client_id)
        {
            return Err("The refresh token was issued to another client");
        }
        let Some(token) = self.refresh.get_mut(presented) else {
            return Err("The refresh token is unknown");
        };
        if token.used {
            self.revoke(grant);
            return Err("The refresh token was already used; the grant is revoked");
        }
        token.used = true;
        if self.grants.get(&grant).is_none_or(|grant| grant.revoked) {
            return Err("The grant of this refresh token was revoked");
        }
        Ok(grant)
    }

    /// What access token `presented` may do on the API, if the provider issued it.
    pub(crate) fn api_access(&self, presented: &str) -> Option<ApiAccess> {
        let token = self.access.get(presented)?;
        let grant = self.grants.get(&token.grant)?;
        if grant.revoked || Instant::now() >= token.expires {
            return Some(ApiAccess::Stale);
        }
        Some(
            if self.users.get(grant.user).is_some_and(|user| user.admin) {
                ApiAccess::Admin
            } else {
                ApiAccess::NonAdmin
            },
        )
    }
}

/// A random opaque value with a readable prefix.
pub(crate) fn opaque(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Now as Unix seconds.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
