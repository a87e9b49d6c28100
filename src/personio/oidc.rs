//! "Sign in with Personio": the OpenID Connect relying party of the connect flow
//! (`/work/shared/reference/oidc-connect.md`), built on the `openidconnect` crate with
//! the service's own reqwest client (no redirects followed, rustls).
//!
//! - [`RelyingParty::begin`]: discovery (cached; the document's `issuer` must equal the
//!   configured one), then the authorization URL with `state`, `nonce` and PKCE (S256),
//!   asking for `openid email offline_access` plus [`super::scopes::REQUIRED`].
//! - [`RelyingParty::finish`]: `state` checked (constant time), the code exchanged with
//!   the PKCE verifier, the ID token validated: signature against the JWKS (fetched again
//!   once when its `kid` is unknown), an advertised non-HMAC `alg`, `iss`, `aud` (and
//!   `azp` with several audiences), `exp`, `iat` at most 60 s ahead, `nonce`.
//! - [`RelyingParty::refresh`]: the `refresh_token` grant; `invalid_grant` is
//!   [`OidcError::GrantRevoked`] (the connection is gone: a new invitation is needed),
//!   while `temporarily_unavailable` and `server_error` are [`OidcError::Unreachable`].
//!
//! A provider answer with status 5xx or 429 is never an OAuth answer: it is
//! [`OidcError::Unreachable`], like a transport failure, whatever its body.
//! [`OidcError::is_transient`] says which failures may pass by themselves.
//!
//! Personio publishes no OpenID provider (reference §2); the simulator plays one. Nothing
//! here depends on the simulator: any conforming provider works.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::Secret;

/// Allowed clock skew for the ID token's `iat`.
const IAT_SKEW: chrono::Duration = chrono::Duration::seconds(60);
/// Largest answer read from the provider.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Lifetime assumed for an access token whose answer gives no `expires_in`.
const DEFAULT_ACCESS_LIFETIME: Duration = Duration::from_secs(3600);
/// Scopes asked for besides `openid` (which the crate adds) and the Personio API's.
const IDENTITY_SCOPES: &[&str] = &["email", "offline_access"];

/// `[personio_oidc]`, the secret read from its variable.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer URL, exactly as the provider names itself.
    pub issuer: String,
    /// The service's client id at the issuer.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What the browser session keeps between [`RelyingParty::begin`] and
/// [`RelyingParty::finish`]. Serialisable so the web layer can keep it in its session
/// store; `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent (CSRF defence), compared in constant time on return.
    pub state: String,
    /// The `nonce` sent, which the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: String,
    /// The redirect URI sent (the token request repeats it).
    pub redirect_uri: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLogin(***)")
    }
}

/// A completed sign-in: who signed in, and the tokens of their grant.
#[derive(Clone, Debug)]
pub struct OidcGrant {
    /// The issuer (as configured and discovered).
    pub issuer: String,
    /// The user's stable id at the issuer (`sub`).
    pub subject: String,
    /// The user's email, for display.
    pub email: Option<String>,
    /// The access token for the Personio API.
    pub access_token: Secret,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// The refresh token (stored sealed once the connection is verified).
    pub refresh_token: Secret,
    /// The scopes the provider says it granted (`None` when its answer names none).
    pub scopes: Option<Vec<String>>,
}

/// The answer to a refresh: a new access token and, with rotation, a new refresh token.
#[derive(Clone, Debug)]
pub struct Refreshed {
    /// The new access token.
    pub access_token: Secret,
    /// Its lifetime.
    pub expires_in: Duration,
    /// The new refresh token, when the provider rotates them (the old one is then dead).
    pub refresh_token: Option<Secret>,
}

/// Why a sign-in or a refresh failed. No variant carries a token, code or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached (or answered 5xx).
    #[error("the OpenID provider could not be reached: {0}")]
    Unreachable(String),
    /// Discovery failed or the document is unusable (the issuer differs, no JWKS, …).
    #[error("the OpenID provider's discovery document is unusable: {0}")]
    Discovery(String),
    /// The `state` returned does not match the one sent (a forged or stale redirect).
    #[error("the sign-in answer does not belong to this session (state mismatch)")]
    StateMismatch,
    /// The provider refused the code or the client (`invalid_grant`, `invalid_client`, …).
    #[error("the OpenID provider refused the request: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The OAuth error code.
        error: String,
        /// The provider's explanation.
        description: Option<String>,
    },
    /// A refresh was answered `invalid_grant`: the grant is gone.
    #[error("the OpenID provider refused the refresh token (invalid_grant)")]
    GrantRevoked,
    /// The ID token failed validation.
    #[error("the ID token is not valid: {0}")]
    InvalidIdToken(String),
    /// The token answer lacks something the connection needs.
    #[error("the OpenID provider's token answer is unusable: {0}")]
    BadAnswer(String),
    /// A URL of the configuration or the request is not a URL.
    #[error("invalid URL: {0}")]
    Config(String),
}

impl OidcError {
    /// Whether trying again later may succeed without anyone acting: the provider could
    /// not be reached or answered 5xx, `temporarily_unavailable` or `server_error`, its
    /// discovery failed, or its answer could not be understood. A refusal
    /// ([`Self::Refused`], [`Self::GrantRevoked`]) and a rejected ID token are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Discovery(_) | Self::BadAnswer(_)
        )
    }
}

/// An HTTP failure of the adapter between `openidconnect` and reqwest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

/// The relying party: one per process, shared by every connect page and every
/// OpenID-connected tenant's token refresher.
pub struct RelyingParty {
    settings: OidcSettings,
    http: reqwest::Client,
    /// The discovered provider (JWKS included), fetched on first use.
    provider: tokio::sync::Mutex<Option<Arc<CoreProviderMetadata>>>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// A relying party for `settings`, calling the provider through `http` (which must
    /// not follow redirects). Nothing is fetched until first use.
    pub fn new(settings: OidcSettings, http: reqwest::Client) -> Result<Self, OidcError> {
        IssuerUrl::new(settings.issuer.clone())
            .map_err(|error| OidcError::Config(format!("personio_oidc.issuer: {error}")))?;
        Ok(Self {
            settings,
            http,
            provider: tokio::sync::Mutex::new(None),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Starts a sign-in: the URL to send the browser to, and what the session keeps.
    pub async fn begin(&self, redirect_uri: &str) -> Result<(String, PendingLogin), OidcError> {
        let metadata = self.provider(false).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|error| OidcError::Config(format!("redirect URI: {error}")))?;
        let client = self.client(&metadata).set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in IDENTITY_SCOPES.iter().chain(super::scopes::REQUIRED) {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url.to_string(),
            PendingLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                redirect_uri: redirect_uri.to_string(),
            },
        ))
    }

    /// Finishes a sign-in: checks `returned_state`, exchanges `code` and validates the
    /// ID token. Each pending login is meant to be finished once.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        returned_state: &str,
    ) -> Result<OidcGrant, OidcError> {
        let same_state: bool = pending
            .state
            .as_bytes()
            .ct_eq(returned_state.as_bytes())
            .into();
        if !same_state || pending.state.is_empty() {
            return Err(OidcError::StateMismatch);
        }
        let metadata = self.provider(false).await?;
        let redirect = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|error| OidcError::Config(format!("redirect URI: {error}")))?;
        let client = self.client(&metadata).set_redirect_uri(redirect);
        let http = self.http_client();
        let answer: CoreTokenResponse = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|error| OidcError::Discovery(error.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(token_error)?;
        let subject_email = self.validate_id_token(&answer, &pending.nonce).await?;
        let refresh_token = answer
            .refresh_token()
            .map(|token| Secret::new(token.secret().clone()))
            .ok_or_else(|| {
                OidcError::BadAnswer(
                    "no refresh token was granted (the client needs offline_access)".into(),
                )
            })?;
        let lifetime = answer.expires_in().unwrap_or(DEFAULT_ACCESS_LIFETIME);
        Ok(OidcGrant {
            issuer: self.settings.issuer.clone(),
            subject: subject_email.0,
            email: subject_email.1,
            access_token: Secret::new(answer.access_token().secret().clone()),
            expires_at: Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default(),
            refresh_token,
            scopes: answer
                .scopes()
                .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect()),
        })
    }

    /// Exchanges `refresh_token` for a new access token (and, with rotation, a new
    /// refresh token).
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<Refreshed, OidcError> {
        let metadata = self.provider(false).await?;
        let client = self.client(&metadata);
        let http = self.http_client();
        let token = RefreshToken::new(refresh_token.expose().to_string());
        let answer: CoreTokenResponse = client
            .exchange_refresh_token(&token)
            .map_err(|error| OidcError::Discovery(error.to_string()))?
            .request_async(&http)
            .await
            .map_err(|error| match token_error(error) {
                OidcError::Refused { error, .. } if error == "invalid_grant" => {
                    OidcError::GrantRevoked
                }
                OidcError::Refused { error, description }
                    if error == "temporarily_unavailable" || error == "server_error" =>
                {
                    OidcError::Unreachable(match description {
                        Some(description) => format!("it answered {error} ({description})"),
                        None => format!("it answered {error}"),
                    })
                }
                other => other,
            })?;
        Ok(Refreshed {
            access_token: Secret::new(answer.access_token().secret().clone()),
            expires_in: answer.expires_in().unwrap_or(DEFAULT_ACCESS_LIFETIME),
            refresh_token: answer
                .refresh_token()
                .map(|token| Secret::new(token.secret().clone())),
        })
    }

    /// Validates the ID token of `answer` against `nonce`; `(sub, email)`. An unknown
    /// `kid` fetches the JWKS again, once.
    async fn validate_id_token(
        &self,
        answer: &CoreTokenResponse,
        nonce: &str,
    ) -> Result<(String, Option<String>), OidcError> {
        let id_token = answer
            .id_token()
            .ok_or_else(|| OidcError::BadAnswer("no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_string());
        let mut metadata = self.provider(false).await?;
        let mut refetched = false;
        loop {
            let client = self.client(&metadata);
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(signing_algs(&metadata))
                .set_issue_time_verifier_fn(|iat| {
                    if iat > Utc::now() + IAT_SKEW {
                        Err(format!("issued in the future ({iat})"))
                    } else {
                        Ok(())
                    }
                });
            match id_token.claims(&verifier, &nonce) {
                Ok(claims) => {
                    let audiences = claims.audiences();
                    let azp = claims.authorized_party().map(|party| party.as_str());
                    let client_id = self.settings.client_id.as_str();
                    if azp.is_some_and(|azp| azp != client_id)
                        || (audiences.len() > 1 && azp != Some(client_id))
                    {
                        return Err(OidcError::InvalidIdToken(
                            "the authorized party (azp) is not this client".into(),
                        ));
                    }
                    return Ok((
                        claims.subject().to_string(),
                        claims.email().map(|email| email.to_string()),
                    ));
                }
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) if !refetched => {
                    refetched = true;
                    metadata = self.provider(true).await?;
                }
                Err(error) => return Err(OidcError::InvalidIdToken(error.to_string())),
            }
        }
    }

    /// The discovered provider; discovered now on first use, and its JWKS fetched
    /// again when `refresh_keys`.
    async fn provider(&self, refresh_keys: bool) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        let mut cached = self.provider.lock().await;
        if let Some(metadata) = cached.as_ref()
            && !refresh_keys
        {
            return Ok(metadata.clone());
        }
        let http = self.http_client();
        let metadata = match cached.as_ref() {
            Some(metadata) => {
                let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &http)
                    .await
                    .map_err(|error| OidcError::Unreachable(error.to_string()))?;
                metadata.as_ref().clone().set_jwks(jwks)
            }
            None => self.discover(&http).await?,
        };
        let metadata = Arc::new(metadata);
        *cached = Some(metadata.clone());
        Ok(metadata)
    }

    /// Discovery, with the issuer check of the reference.
    async fn discover(
        &self,
        http: &impl for<'c> openidconnect::AsyncHttpClient<'c>,
    ) -> Result<CoreProviderMetadata, OidcError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|error| OidcError::Config(error.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|error| match &error {
                openidconnect::DiscoveryError::Request(_) => {
                    OidcError::Unreachable(describe(&error))
                }
                _ => OidcError::Discovery(describe(&error)),
            })?;
        if metadata.issuer().as_str() != self.settings.issuer {
            return Err(OidcError::Discovery(format!(
                "the document names issuer {} instead of {}",
                metadata.issuer().as_str(),
                self.settings.issuer
            )));
        }
        let _: &JsonWebKeySetUrl = metadata.jwks_uri();
        tracing::info!(issuer = %self.settings.issuer, "OpenID provider discovered");
        Ok(metadata)
    }

    /// The `openidconnect` client for `metadata`.
    fn client(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_string(),
            )),
        )
    }

    /// The adapter from `openidconnect`'s requests to the service's reqwest client.
    fn http_client(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> futures::future::BoxFuture<'static, Result<HttpResponse, HttpFailure>>
    + Send
    + Sync
    + use<> {
        let http = self.http.clone();
        move |request: HttpRequest| {
            let http = http.clone();
            Box::pin(async move { send(&http, request).await })
        }
    }
}

/// Sends one provider request through reqwest, reading at most [`MAX_ANSWER_BYTES`].
/// An answer with status 5xx or 429 is a failure (the provider is down or overloaded),
/// so it reaches the caller as [`OidcError::Unreachable`] whatever its body says.
async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
    let request = reqwest::Request::try_from(request)
        .map_err(|error| HttpFailure(format!("bad request: {error}")))?;
    let mut response = http
        .execute(request)
        .await
        .map_err(|error| HttpFailure(format!("unreachable: {}", describe(&error))))?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(HttpFailure(format!("the provider answered HTTP {status}")));
    }
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| HttpFailure(format!("unreachable: {}", describe(&error))))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(HttpFailure("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    builder
        .body(body)
        .map_err(|error| HttpFailure(error.to_string()))
}

/// The signing algorithms the provider advertises, without HMAC and `none`.
fn signing_algs(metadata: &CoreProviderMetadata) -> Vec<CoreJwsSigningAlgorithm> {
    metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| {
            !matches!(
                alg,
                CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
                    | CoreJwsSigningAlgorithm::None
            )
        })
        .cloned()
        .collect()
}

/// A token request's failure as an [`OidcError`].
fn token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> OidcError {
    match error {
        RequestTokenError::ServerResponse(answer) => OidcError::Refused {
            error: answer.error().as_ref().to_string(),
            description: answer.error_description().cloned(),
        },
        RequestTokenError::Request(error) => OidcError::Unreachable(describe(&error)),
        RequestTokenError::Parse(error, _) => OidcError::BadAnswer(error.to_string()),
        RequestTokenError::Other(text) => OidcError::BadAnswer(text),
    }
}

/// An error with its causes.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
