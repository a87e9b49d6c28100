//! The browser's part of the code flow, done over HTTP for tests of a relying party:
//! open the authorization URL, post the login form, allow on the consent page.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

/// Why a scripted sign-in did not end in a redirect back to the client.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// A page came where a redirect or a form was expected (an error page, the login
    /// page again after a wrong password, …): its status and visible text.
    #[error("the provider answered {status} with a page instead: {text}")]
    Page {
        /// The page's status.
        status: u16,
        /// The page's text without markup.
        text: String,
    },
    /// The HTTP exchange failed.
    #[error("the provider could not be reached: {0}")]
    Http(#[from] reqwest::Error),
}

/// Whether the consent step allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Press `Allow`.
    Allow,
    /// Press `Deny`.
    Deny,
}

/// Opens `authorize_url`, signs in with `email` and `password` and answers the consent
/// page; the `Location` the provider redirects to (`redirect_uri?code=…&state=…`, or
/// `?error=…&state=…`).
pub(crate) async fn sign_in(
    authorize_url: &str,
    email: &str,
    password: &str,
    consent: Consent,
) -> Result<String, SignInError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = authorize_url
        .split_once("/oauth/authorize")
        .map_or(authorize_url, |(base, _)| base);
    let login_page = http.get(authorize_url).send().await?;
    let request = form_request(login_page).await?;
    let consent_page = http
        .post(format!("{base}/oauth/authorize/login"))
        .form(&[
            ("request", request.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await?;
    let request = form_request(consent_page).await?;
    let decision = match consent {
        Consent::Allow => "allow",
        Consent::Deny => "deny",
    };
    let back = http
        .post(format!("{base}/oauth/authorize/consent"))
        .form(&[("request", request.as_str()), ("decision", decision)])
        .send()
        .await?;
    location(back).await
}

/// The `request` hidden field of the login or consent page. Anything else (an error page,
/// the login page again with an error, an error redirect) is reported as `Page`.
async fn form_request(response: reqwest::Response) -> Result<String, SignInError> {
    let status = response.status();
    if status.is_redirection() {
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        return Err(SignInError::Page {
            status: status.as_u16(),
            text: format!("redirected to {target}"),
        });
    }
    let html = response.text().await?;
    let marker = "name=\"request\" value=\"";
    let found = html
        .find(marker)
        .map(|at| &html[at + marker.len()..])
        .and_then(|rest| rest.split_once('"'))
        .map(|(value, _)| value.to_string());
    // The login page again (wrong password) carries a request too: tell it by its alert.
    match found {
        Some(request) if status == StatusCode::OK && !html.contains("role=\"alert\"") => {
            Ok(request)
        }
        _ => Err(SignInError::Page {
            status: status.as_u16(),
            text: visible_text(&html),
        }),
    }
}

async fn location(response: reqwest::Response) -> Result<String, SignInError> {
    let status = response.status();
    match response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(target) if status.is_redirection() => Ok(target.to_string()),
        _ => {
            let html = response.text().await?;
            Err(SignInError::Page {
                status: status.as_u16(),
                text: visible_text(&html),
            })
        }
    }
}

/// The text of the page's `main`, markup removed, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let main = html
        .split_once("<main>")
        .and_then(|(_, rest)| rest.split_once("</main>"))
        .map_or(html, |(main, _)| main);
    let mut text = String::new();
    let mut in_tag = false;
    for ch in main.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
