//! Discovery, JWKS, and the browser side of the code flow: the authorization request,
//! the login page and the consent page (server-rendered HTML, no JavaScript).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::super::errors::{first, query_pairs};
use super::super::{GRANTED_SCOPES, Shared};
use super::{CODE_TTL, Code, OIDC_SCOPES, Pending, keys, opaque, unix_now};

/// `GET /.well-known/openid-configuration`.
pub(crate) async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let base = &shared.base_url;
    let scopes: Vec<&str> = OIDC_SCOPES.iter().chain(GRANTED_SCOPES).copied().collect();
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys::ALG],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified"],
    }))
    .into_response()
}

/// `GET /oauth/jwks`.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.oidc_keys.jwks()).into_response()
}

/// Whether `uri` is a registered redirect URI: any `http` loopback URI, any port, no
/// fragment, no user info (RFC 8252 §7.3).
pub(crate) fn loopback_redirect(uri: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return false;
    };
    url.scheme() == "http"
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Whether `challenge` can be an S256 code challenge: 43 characters of base64url.
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The single value of `key`: `Err` when it is repeated (RFC 6749 §3.1), `None` when
/// absent or empty.
fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, String> {
    let mut values = pairs.iter().filter(|(name, _)| name == key);
    let value = values.next().map(|(_, value)| value.as_str());
    if values.next().is_some() {
        return Err(format!("The parameter {key} is repeated"));
    }
    Ok(value.filter(|value| !value.is_empty()))
}

/// `GET /oauth/authorize`: checks the request and shows the login page.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    // Errors about the client or the redirect URI are shown, never redirected.
    let client_id = match single(&pairs, "client_id") {
        Ok(Some(client_id)) => client_id,
        Ok(None) => return error_page("The request names no client (client_id is missing)."),
        Err(problem) => return error_page(&problem),
    };
    if client_id != shared.state().client_id {
        return error_page("The request names an unknown client.");
    }
    let redirect_uri = match single(&pairs, "redirect_uri") {
        Ok(Some(uri)) if loopback_redirect(uri) => uri,
        Ok(Some(_)) => return error_page("The redirect URI is not registered for this client."),
        Ok(None) => return error_page("The request names no redirect URI."),
        Err(problem) => return error_page(&problem),
    };
    let state = single(&pairs, "state").ok().flatten();
    let refuse = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[("error", error), ("error_description", description)],
            state,
        )
    };
    let mut values = Vec::new();
    for key in [
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ] {
        match single(&pairs, key) {
            Ok(value) => values.push(value),
            Err(problem) => return refuse("invalid_request", &problem),
        }
    }
    let [response_type, scope, state_value, nonce, challenge, method] = values[..] else {
        return refuse("invalid_request", "The request could not be read");
    };
    if response_type != Some("code") {
        return refuse(
            "unsupported_response_type",
            "Only response_type=code is supported",
        );
    }
    let scope = scope.unwrap_or_default();
    if !scope.split_whitespace().any(|scope| scope == "openid") {
        return refuse("invalid_scope", "The scope must contain openid");
    }
    if let Some(unknown) = scope
        .split_whitespace()
        .find(|scope| !OIDC_SCOPES.contains(scope) && !GRANTED_SCOPES.contains(scope))
    {
        return refuse("invalid_scope", &format!("Unknown scope {unknown}"));
    }
    let (Some(state_value), Some(nonce)) = (state_value, nonce) else {
        return refuse("invalid_request", "state and nonce are required");
    };
    if method != Some("S256") {
        return refuse(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256",
        );
    }
    let Some(challenge) = challenge.filter(|challenge| valid_challenge(challenge)) else {
        return refuse(
            "invalid_request",
            "code_challenge must be a BASE64URL(SHA256(code_verifier)) value",
        );
    };
    let id = opaque("req");
    let pending = Pending {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        state: state_value.to_string(),
        nonce: nonce.to_string(),
        code_challenge: challenge.to_string(),
        created: Instant::now(),
        signed_in: None,
    };
    {
        let mut sim = shared.state();
        sim.oidc.purge();
        sim.oidc.pending.insert(id.clone(), pending);
    }
    login_page(&id, client_id, "", None)
}

/// `POST /oauth/authorize/login` (form `request`, `email`, `password`): the consent page,
/// or the login page again with an error.
pub(crate) async fn login(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let pairs = form(&body);
    let request = first(&pairs, "request").unwrap_or_default();
    let email = first(&pairs, "email").unwrap_or_default().trim();
    let password = first(&pairs, "password").unwrap_or_default();
    let mut sim = shared.state();
    sim.oidc.purge();
    let users = &sim.oidc.users;
    let found = users.iter().position(|user| {
        let password_ok: bool = password
            .as_bytes()
            .ct_eq(user.password.expose().as_bytes())
            .into();
        user.email.eq_ignore_ascii_case(email) && password_ok
    });
    let user_email = found.map(|index| users[index].email.clone());
    let Some(pending) = sim.oidc.pending.get_mut(request) else {
        return expired_page();
    };
    let client_id = pending.client_id.clone();
    match (found, user_email) {
        (Some(index), Some(user_email)) => {
            pending.signed_in = Some((index, unix_now()));
            tracing::info!(client_id = %client_id, "personio sim oidc: user signed in");
            consent_page(request, &client_id, &user_email, &pending.scope)
        }
        _ => {
            tracing::info!(client_id = %client_id, "personio sim oidc: sign-in refused");
            login_page(
                request,
                &client_id,
                email,
                Some("Wrong email or password. Try again."),
            )
        }
    }
}

/// `POST /oauth/authorize/consent` (form `request`, `decision` = `allow` | `deny`): the
/// redirect back to the client, with a code or `access_denied`.
pub(crate) async fn consent(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let pairs = form(&body);
    let request = first(&pairs, "request").unwrap_or_default();
    let decision = first(&pairs, "decision").unwrap_or_default();
    let mut sim = shared.state();
    sim.oidc.purge();
    let signed_in = sim
        .oidc
        .pending
        .get(request)
        .and_then(|pending| pending.signed_in);
    let Some((user, auth_time)) = signed_in else {
        return expired_page();
    };
    if decision != "allow" && decision != "deny" {
        return error_page("The consent answer was neither allow nor deny.");
    }
    let Some(pending) = sim.oidc.pending.remove(request) else {
        return expired_page();
    };
    if decision == "deny" {
        return redirect_with(
            &pending.redirect_uri,
            &[("error", "access_denied")],
            Some(&pending.state),
        );
    }
    let admin = sim.oidc.users.get(user).is_some_and(|user| user.admin);
    let code = opaque("pocd");
    sim.oidc.codes.insert(
        code.clone(),
        Code {
            client_id: pending.client_id,
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge,
            user,
            nonce: pending.nonce,
            scope: granted_scope(&pending.scope, admin),
            auth_time,
            issued: Instant::now(),
            redeemed: None,
        },
    );
    redirect_with(
        &pending.redirect_uri,
        &[("code", code.as_str())],
        Some(&pending.state),
    )
}

/// The requested scopes (deduplicated), plus the Personio API scopes for an
/// administrator (RFC 6749 §3.3: the server may grant more than requested).
fn granted_scope(requested: &str, admin: bool) -> String {
    let mut scopes: Vec<&str> = Vec::new();
    let extra: &[&str] = if admin { GRANTED_SCOPES } else { &[] };
    for scope in requested.split_whitespace().chain(extra.iter().copied()) {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.join(" ")
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// 303 to `uri` with `params` (and `state` when given) added to its query.
fn redirect_with(uri: &str, params: &[(&str, &str)], state: Option<&str>) -> Response {
    let Ok(mut url) = reqwest::Url::parse(uri) else {
        return error_page("The redirect URI is not registered for this client.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            query.append_pair(key, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}\
label{display:block;font-weight:600;margin-top:1rem}\
input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:1.25rem;padding:.5rem 1.25rem;font-size:1rem}\
.error{color:#a00000;font-weight:600}";

/// A complete page: `lang`, `title`, one `main`.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} – Personio (simulated)</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn login_page(request: &str, client_id: &str, email: &str, error: Option<&str>) -> Response {
    let (alert, invalid) = match error {
        Some(message) => (
            format!(
                "<p id=\"login-error\" class=\"error\" role=\"alert\">{}</p>\n",
                escape(message)
            ),
            " aria-invalid=\"true\" aria-describedby=\"login-error\"",
        ),
        None => (String::new(), ""),
    };
    let body = format!(
        "<h1>Sign in to Personio</h1>\n\
         <p>The application <strong>{client}</strong> asks you to sign in.</p>\n\
         {alert}\
         <form method=\"post\" action=\"/oauth/authorize/login\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
         <label for=\"email\">Email</label>\n\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\"{invalid}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{invalid}>\n\
         <button type=\"submit\">Sign in</button>\n\
         </form>",
        client = escape(client_id),
        request = escape(request),
        email = escape(email),
    );
    page(StatusCode::OK, "Sign in", &body)
}

fn consent_page(request: &str, client_id: &str, email: &str, scope: &str) -> Response {
    let scopes: String = scope
        .split_whitespace()
        .map(|scope| format!("<li>{}</li>", escape(scope)))
        .collect();
    let body = format!(
        "<h1>Allow access?</h1>\n\
         <p>Signed in as <strong>{email}</strong>.</p>\n\
         <p>The application <strong>{client}</strong> asks for:</p>\n<ul>{scopes}</ul>\n\
         <form method=\"post\" action=\"/oauth/authorize/consent\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n\
         </form>",
        email = escape(email),
        client = escape(client_id),
        request = escape(request),
    );
    page(StatusCode::OK, "Allow access", &body)
}

/// An error shown instead of redirecting (400).
fn error_page(message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in error</h1>\n<p class=\"error\" role=\"alert\">{}</p>\n\
         <p>Go back to the application and start again.</p>",
        escape(message)
    );
    page(StatusCode::BAD_REQUEST, "Sign-in error", &body)
}

fn expired_page() -> Response {
    error_page(&format!(
        "This sign-in request is unknown, already finished, or older than {} minutes.",
        CODE_TTL.as_secs() / 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects_are_registered() {
        for good in [
            "http://127.0.0.1:8080/connect/callback",
            "http://localhost:1/cb?x=1",
            "http://[::1]:9000/cb",
            "http://127.0.0.1/cb",
        ] {
            assert!(loopback_redirect(good), "{good}");
        }
        for bad in [
            "https://127.0.0.1:8080/cb",
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "http://localhost.example.com/cb",
            "http://user@127.0.0.1/cb",
            "http://127.0.0.1/cb#frag",
            "not a url",
            "",
        ] {
            assert!(!loopback_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn administrators_are_granted_the_api_scopes() {
        assert_eq!(granted_scope("openid email openid", false), "openid email");
        let admin = granted_scope("openid personio:persons:read", true);
        assert!(admin.starts_with("openid personio:persons:read "));
        for scope in GRANTED_SCOPES {
            assert_eq!(admin.matches(scope).count(), 1, "{scope}");
        }
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
