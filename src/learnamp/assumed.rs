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

use reqwest::Method;
use tracing::{info, warn};

use crate::domain::fields::{LEAVE_DATE, UserFields};

use super::client::{ApiRequest, LearnAmpClient, RequestBody};
use super::error::LearnAmpError;
use super::model::{InvitationOutcome, User};

/// Largest avatar accepted by the assumed endpoint (5 MiB).
const MAX_AVATAR_BYTES: usize = 5 * 1024 * 1024;

/// A. Sends (or re-sends) the invitation email of user `id`:
/// `POST /v1/users/{id}/invitation`, no body. 204 → [`InvitationOutcome::Sent`];
/// 409 "…confirmed" → `AlreadyConfirmed`; 409 "…deactivated" → `Deactivated`;
/// 404 → [`LearnAmpError::NotFound`]; any other 409 stays a `Conflict` error.
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
/// field is still missing, logs that `leaveDate` looks unsupported and carries on (the
/// service deactivates on its own schedule anyway). Never fails the write.
pub(crate) async fn confirm_leave_date(
    client: &LearnAmpClient,
    sent: &UserFields,
    written: User,
) -> User {
    let Some(expected) = sent.get(LEAVE_DATE) else {
        return written;
    };
    if leave_date_matches(expected, &written) {
        return written;
    }
    match client.get_user(written.id).await {
        Ok(Some(fresh)) if leave_date_matches(expected, &fresh) => fresh,
        Ok(Some(fresh)) => {
            warn!(
                user_id = written.id,
                "Learn Amp did not echo leaveDate; treating the assumed field as unsupported"
            );
            fresh
        }
        Ok(None) => written,
        Err(error) => {
            warn!(user_id = written.id, error = %error, "could not read back leaveDate");
            written
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
/// 5 MiB is refused without a call). `None`: `DELETE /v1/users/{id}/avatar`, where a 404
/// (no avatar) counts as done.
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
            other => other,
        };
    };
    let content_type = avatar_content_type(bytes)?;
    let request = ApiRequest::new(Method::PUT, path).body(RequestBody::Bytes {
        data: bytes.to_vec(),
        content_type,
    });
    client.send_no_content(&request).await
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
