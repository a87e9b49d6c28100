//! Avatars: `PUT` and `DELETE /v1/users/{id}/avatar` (assumed contract C), PNG or JPEG
//! up to 5 MiB, checked by magic bytes.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use super::form::{header_str, id_segment, media_type};
use super::users::change_user;

/// Largest avatar accepted (assumed contract C).
const AVATAR_LIMIT: usize = 5 * 1024 * 1024;

/// Whether `bytes` are an image of the declared media type (PNG or JPEG magic bytes).
fn valid_image(media_type: &str, bytes: &[u8]) -> bool {
    const PNG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    match media_type {
        "image/png" => bytes.starts_with(&PNG),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        _ => false,
    }
}

/// Lower-case hex of a sha256.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `PUT /v1/users/{id}/avatar` (assumed contract C): 204, 400 `Invalid image`, 413, 404.
pub(super) async fn put_avatar(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let id = id_segment(&id)?;
    if !shared.lock().contains_user(id) {
        return Err(ApiError::not_found());
    }
    let too_large = || {
        ApiError::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Image too large (5 MiB at most)",
        )
    };
    let declared_length =
        header_str(request.headers(), header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|len| len > AVATAR_LIMIT) {
        return Err(too_large());
    }
    let content_type = media_type(&request).unwrap_or_default();
    let bytes = axum::body::to_bytes(request.into_body(), AVATAR_LIMIT)
        .await
        .map_err(|_| too_large())?;
    if bytes.is_empty() || !valid_image(&content_type, &bytes) {
        return Err(ApiError::bad_request("Invalid image"));
    }
    let digest = sha256_hex(&bytes);
    change_user(&shared, id, |user| {
        user.avatar_sha256 = Some(digest);
        user.updated_at = Utc::now();
    })
}

/// `DELETE /v1/users/{id}/avatar` (assumed contract C): 204.
pub(super) async fn delete_avatar(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&shared, id_segment(&id)?, |user| {
        user.avatar_sha256 = None;
        user.updated_at = Utc::now();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_magic_bytes_are_checked() {
        assert!(valid_image("image/png", b"\x89PNG\r\n\x1a\n...."));
        assert!(valid_image("image/jpeg", b"\xFF\xD8\xFF\xE0...."));
        assert!(!valid_image("image/jpeg", b"\x89PNG\r\n\x1a\n...."));
        assert!(!valid_image("image/gif", b"GIF89a"));
    }
}
