//! Contracts that Learn Amp has NOT published and that this service assumes (reference,
//! final section "Capabilities this service needs that the public API does not document").
//!
//! Each contract lives behind exactly one function here, so that a different real
//! mechanism can be adopted by changing one place:
//!
//! | Contract | Function |
//! |---|---|
//! | A. `POST /v1/users/{id}/invitation` | [`send_invitation`] |
//! | B. the `leaveDate` user field | [`leave_date_form_field`] (the only encoder) and [`confirm_leave_date`] (the read-back check) |
//! | C. `PUT`/`DELETE /v1/users/{id}/avatar` | [`set_avatar`] |
//!
//! D (structured location) assumes nothing: the documented free-text `location` field is
//! written like any other user field.
//!
//! ## Surviving an account without them
//!
//! Every contract may be missing. The functions report that as
//! [`LearnAmpError::Unsupported`] (routes) or [`LeaveDateEcho::NotEchoed`] (the field),
//! and the sync records it per tenant, carries on without it and tries again a day later.
//! The rule that tells "route missing" from "user missing":
//!
//! - **405** or **501** on an assumed route: the route is missing.
//! - **404** on an assumed route is ambiguous: the documented `{"error": "Not found"}`
//!   is both what a missing route and an unknown user answer. The user is then read
//!   through the documented `GET /v1/users/{id}`: if it exists, the route is missing
//!   ([`LearnAmpError::Unsupported`]); if it does not, the answer is
//!   [`LearnAmpError::NotFound`] (an unknown user), as before. The probe costs one GET
//!   per 404, and 404s are rare (once per tenant and day while a route is missing).
//! - `DELETE …/avatar` keeps its rule that a 404 means "no avatar": nothing to remove is
//!   the same outcome whatever the reason.
//! - `leaveDate` is missing when a write that carried it does not echo it, neither in the
//!   write's answer nor on a read-back.

use reqwest::Method;
use tracing::{info, warn};

use crate::domain::fields::{LEAVE_DATE, UserFields};

use crate::api_client::{ApiRequest, RequestBody};

use super::client::LearnAmpClient;
use super::error::LearnAmpError;
pub use super::model::Assumed;
use super::model::{InvitationOutcome, User, UserFilter, UserStatus};

/// Whether a write that carried `leaveDate` saw it echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveDateEcho {
    /// The write carried no `leaveDate`.
    NotSent,
    /// Learn Amp shows the value sent.
    Echoed,
    /// Learn Amp does not show it, even on a read-back: the field looks unsupported.
    NotEchoed,
}

/// Maps the failure of an assumed route for user `id`: 405 and 501 mean the route is
/// missing; a 404 means so too when the user exists (read through the documented
/// show route), and an unknown user otherwise.
async fn route_failure(
    client: &LearnAmpClient,
    id: u64,
    assumed: Assumed,
    error: LearnAmpError,
) -> LearnAmpError {
    match error {
        LearnAmpError::Validation { status: 405, .. } | LearnAmpError::Server { status: 501 } => {
            LearnAmpError::Unsupported(assumed)
        }
        LearnAmpError::NotFound => match client.get_user(id).await {
            Ok(Some(_)) => LearnAmpError::Unsupported(assumed),
            Ok(None) => LearnAmpError::NotFound,
            Err(probe) => probe,
        },
        other => other,
    }
}

/// Largest avatar accepted by the assumed endpoint (5 MiB).
const MAX_AVATAR_BYTES: usize = 5 * 1024 * 1024;

/// A. Sends (or re-sends) the invitation email of user `id`:
/// `POST /v1/users/{id}/invitation`, no body. 204 → [`InvitationOutcome::Sent`];
/// 409 "…confirmed" → `AlreadyConfirmed`; 409 "…deactivated" → `Deactivated`;
/// 404 → [`LearnAmpError::NotFound`] for an unknown user, [`LearnAmpError::Unsupported`]
/// when the route is missing (see the module rule); any other 409 stays a `Conflict`.
pub(crate) async fn send_invitation(
    client: &LearnAmpClient,
    id: u64,
) -> Result<InvitationOutcome, LearnAmpError> {
    let request = ApiRequest::new(Method::POST, format!("/v1/users/{id}/invitation"));
    match client.send_no_content(&request).await {
        Ok(()) => {
            info!(user_id = id, "Learn Amp invitation sent");
            Ok(InvitationOutcome::Sent)
        }
        Err(LearnAmpError::Conflict { message }) => invitation_conflict(message),
        Err(other) => Err(route_failure(client, id, Assumed::Invitation, other).await),
    }
}

/// A. Finds out whether the invitation route exists without sending anyone an email:
/// it is called for a deactivated user (Learn Amp documents that inviting one does
/// nothing, reference §11.5) or, only if the account has none, a confirmed one (a real
/// account always has its confirmed owner; only the assumed contract says it answers
/// 409). A 404 for that user, 405 or 501 mean the route is missing. `None` when the
/// account has no such user to ask about (the route is then found out on its first use).
pub(crate) async fn probe_invitation(
    client: &LearnAmpClient,
) -> Result<Option<bool>, LearnAmpError> {
    let mut asked = None;
    for status in [UserStatus::Deactivated, UserStatus::Confirmed] {
        let filter = UserFilter {
            statuses: vec![status],
            ..UserFilter::default()
        };
        asked = client.first_user(&filter).await?;
        if asked.is_some() {
            break;
        }
    }
    let Some(user) = asked else {
        return Ok(None);
    };
    match send_invitation(client, user.id).await {
        Ok(_) | Err(LearnAmpError::Conflict { .. }) => Ok(Some(true)),
        Err(LearnAmpError::Unsupported(_)) => Ok(Some(false)),
        Err(LearnAmpError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Interprets the 409 of the invitation route.
fn invitation_conflict(message: String) -> Result<InvitationOutcome, LearnAmpError> {
    let lower = message.to_lowercase();
    if lower.contains("deactivated") {
        Ok(InvitationOutcome::Deactivated)
    } else if lower.contains("confirmed") {
        Ok(InvitationOutcome::AlreadyConfirmed)
    } else {
        Err(LearnAmpError::Conflict { message })
    }
}

/// B. The form field that carries a leave date (`YYYY-MM-DD`, or `""` to clear):
/// `leaveDate=<value>`. The user form encoder calls only this for the `leaveDate` key.
pub(crate) fn leave_date_form_field(value: &str) -> (String, String) {
    ("leaveDate".to_string(), value.to_string())
}

/// B. After a write that carried `leaveDate`, checks that Learn Amp echoes it. When the
/// write answer does not, reads the user back (the contract promises it on show); if the
/// field is still missing, answers [`LeaveDateEcho::NotEchoed`] (the caller records the
/// field as unsupported and relies on its own scheduled deactivation). Never fails the
/// write: a failed read-back proves nothing and counts as echoed.
pub(crate) async fn confirm_leave_date(
    client: &LearnAmpClient,
    sent: &UserFields,
    written: User,
) -> (User, LeaveDateEcho) {
    let Some(expected) = sent.get(LEAVE_DATE) else {
        return (written, LeaveDateEcho::NotSent);
    };
    if leave_date_matches(expected, &written) {
        return (written, LeaveDateEcho::Echoed);
    }
    match client.get_user(written.id).await {
        Ok(Some(fresh)) if leave_date_matches(expected, &fresh) => (fresh, LeaveDateEcho::Echoed),
        Ok(Some(fresh)) => (fresh, LeaveDateEcho::NotEchoed),
        Ok(None) => (written, LeaveDateEcho::Echoed),
        Err(error) => {
            warn!(user_id = written.id, error = %error, "could not read back leaveDate");
            (written, LeaveDateEcho::Echoed)
        }
    }
}

/// Whether `user` shows the leave date that was sent (`""` = cleared = absent).
fn leave_date_matches(expected: &str, user: &User) -> bool {
    match user.leave_date.as_deref() {
        Some(actual) => actual == expected,
        None => expected.is_empty(),
    }
}

/// C. Writes or removes user `id`'s avatar. `Some(bytes)`:
/// `PUT /v1/users/{id}/avatar` with the bytes and `Content-Type: image/png` or
/// `image/jpeg` (sniffed from the magic bytes; anything else, an empty image or one over
/// 5 MiB is refused without a call); a missing route is [`LearnAmpError::Unsupported`]
/// (see the module rule). `None`: `DELETE /v1/users/{id}/avatar`, where a 404 (no avatar)
/// counts as done.
pub(crate) async fn set_avatar(
    client: &LearnAmpClient,
    id: u64,
    image: Option<&[u8]>,
) -> Result<(), LearnAmpError> {
    let path = format!("/v1/users/{id}/avatar");
    let Some(bytes) = image else {
        let request = ApiRequest::new(Method::DELETE, path);
        return match client.send_no_content(&request).await {
            Err(LearnAmpError::NotFound) => Ok(()),
            Err(
                LearnAmpError::Validation { status: 405, .. }
                | LearnAmpError::Server { status: 501 },
            ) => Err(LearnAmpError::Unsupported(Assumed::Avatar)),
            other => other,
        };
    };
    let content_type = avatar_content_type(bytes)?;
    let request = ApiRequest::new(Method::PUT, path).body(RequestBody::Bytes {
        data: bytes.to_vec(),
        content_type,
    });
    match client.send_no_content(&request).await {
        Ok(()) => Ok(()),
        Err(error) => Err(route_failure(client, id, Assumed::Avatar, error).await),
    }
}

/// The content type of an avatar, or the refusal to send it.
fn avatar_content_type(bytes: &[u8]) -> Result<&'static str, LearnAmpError> {
    if bytes.len() > MAX_AVATAR_BYTES {
        return Err(LearnAmpError::refused(
            413,
            "avatar over 5 MiB; not uploaded",
        ));
    }
    sniff_image(bytes).ok_or_else(|| {
        LearnAmpError::refused(400, "avatar is not a PNG or JPEG image; not uploaded")
    })
}

/// `image/png` or `image/jpeg` from the magic bytes.
fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = b"\xff\xd8\xff";
    if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(JPEG) {
        Some("image/jpeg")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_png_and_jpeg_only() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xff\xd8\xff\xe0rest"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
        assert!(avatar_content_type(b"<svg/>").is_err());
        let huge = [
            b"\x89PNG\r\n\x1a\n".as_slice(),
            &vec![0u8; MAX_AVATAR_BYTES],
        ]
        .concat();
        assert!(matches!(
            avatar_content_type(&huge),
            Err(LearnAmpError::Validation { status: 413, .. })
        ));
    }

    #[test]
    fn invitation_conflicts_map_to_outcomes() {
        assert_eq!(
            invitation_conflict("User has already confirmed".into()),
            Ok(InvitationOutcome::AlreadyConfirmed)
        );
        assert_eq!(
            invitation_conflict("User is deactivated".into()),
            Ok(InvitationOutcome::Deactivated)
        );
        assert!(invitation_conflict("something else".into()).is_err());
    }

    #[test]
    fn leave_date_field_and_echo() {
        assert_eq!(
            leave_date_form_field("2025-06-30"),
            ("leaveDate".to_string(), "2025-06-30".to_string())
        );
        assert_eq!(
            leave_date_form_field(""),
            ("leaveDate".into(), String::new())
        );
        let user: User =
            serde_json::from_str(r#"{"id": 1, "email": "a@x", "leaveDate": "2025-06-30"}"#)
                .expect("parses");
        assert!(leave_date_matches("2025-06-30", &user));
        assert!(!leave_date_matches("", &user));
        let cleared: User = serde_json::from_str(r#"{"id": 1, "email": "a@x", "leaveDate": null}"#)
            .expect("parses");
        assert!(leave_date_matches("", &cleared));
    }
}
