//! User writes: the documented create and update (reference §5.3, §5.4) with the form
//! encoding of user fields (§3), and the public methods behind Learn Amp's assumed
//! contracts. This module sits above both `client.rs` (transport, documented reads) and
//! `assumed.rs` (the contracts), so neither depends on the other's caller.

use reqwest::Method;
use tracing::debug;

use crate::api_client::{ApiRequest, FormPairs, RequestBody};
use crate::domain::fields::{CUSTOM_FIELD_PREFIX, LEAVE_DATE, SECONDARY_TEAMS, UserFields};

use super::assumed::{self, LeaveDateEcho};
use super::client::LearnAmpClient;
use super::error::LearnAmpError;
use super::model::{InvitationOutcome, User};

/// A user as a create or update left it, and whether the assumed `leaveDate` was echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The user as Learn Amp answered (or as read back).
    pub user: User,
    /// What became of a `leaveDate` the write carried.
    pub leave_date: LeaveDateEcho,
}

impl LearnAmpClient {
    /// Creates a user. With `invite` the documented create sends the invitation email
    /// (no `skipInvitation`, reference §5.4); without, `skipInvitation=true` and a later
    /// invitation goes through [`send_invitation`](Self::send_invitation).
    pub async fn create_user(
        &self,
        fields: &UserFields,
        invite: bool,
    ) -> Result<Written, LearnAmpError> {
        let request = ApiRequest::new(Method::POST, "/v1/users")
            .body(RequestBody::Form(create_user_form(fields, invite)));
        let user: User = self.send_json(&request).await?;
        debug!(user_id = user.id, invite, "created Learn Amp user");
        let (user, leave_date) = assumed::confirm_leave_date(self, fields, user).await;
        Ok(Written { user, leave_date })
    }

    /// Updates a user with the given fields (absent keys are left alone, `""` clears).
    pub async fn update_user(
        &self,
        id: u64,
        fields: &UserFields,
    ) -> Result<Written, LearnAmpError> {
        let request = ApiRequest::new(Method::PUT, format!("/v1/users/{id}"))
            .body(RequestBody::Form(user_form(fields)));
        let user: User = self.send_json(&request).await?;
        let (user, leave_date) = assumed::confirm_leave_date(self, fields, user).await;
        Ok(Written { user, leave_date })
    }

    /// Sends (or re-sends) the invitation email. Assumed contract, see `assumed.rs`.
    pub async fn send_invitation(&self, id: u64) -> Result<InvitationOutcome, LearnAmpError> {
        assumed::send_invitation(self, id).await
    }

    /// Whether the assumed invitation route exists, found out without sending any email
    /// (see `assumed.rs`); `None` when the account has no user to ask about.
    pub async fn probe_invitation_route(&self) -> Result<Option<bool>, LearnAmpError> {
        assumed::probe_invitation(self).await
    }

    /// Uploads (PNG or JPEG) or, with `None`, removes a user's avatar. Assumed contract,
    /// see `assumed.rs`.
    pub async fn set_avatar(&self, id: u64, image: Option<&[u8]>) -> Result<(), LearnAmpError> {
        assumed::set_avatar(self, id, image).await
    }
}

/// Encodes user fields as a form (reference §3): plain keys as they are,
/// `secondaryTeamIntegrationExternalIds` "a,b" as repeated `[]` keys, `customField:<name>`
/// as Rails `customFields[][name]`/`customFields[][value]` pairs, and `leaveDate` through
/// the assumed leave-date contract. `""` is sent as an empty value (clear).
pub(crate) fn user_form(fields: &UserFields) -> FormPairs {
    let mut pairs = FormPairs::new();
    for (key, value) in fields {
        if let Some(name) = key.strip_prefix(CUSTOM_FIELD_PREFIX) {
            pairs.push(("customFields[][name]".to_string(), name.to_string()));
            pairs.push(("customFields[][value]".to_string(), value.clone()));
        } else if key == SECONDARY_TEAMS {
            push_list(&mut pairs, &format!("{SECONDARY_TEAMS}[]"), value);
        } else if key == LEAVE_DATE {
            pairs.push(assumed::leave_date_form_field(value));
        } else {
            pairs.push((key.clone(), value.clone()));
        }
    }
    pairs
}

/// The create form: [`user_form`] plus `skipInvitation=true` unless `invite` (then the
/// documented create sends the invitation email itself, reference §5.4). A caller-given
/// `skipInvitation` is ignored.
pub(crate) fn create_user_form(fields: &UserFields, invite: bool) -> FormPairs {
    let mut pairs: FormPairs = user_form(fields)
        .into_iter()
        .filter(|(key, _)| key != "skipInvitation")
        .collect();
    if !invite {
        pairs.push(("skipInvitation".to_string(), "true".to_string()));
    }
    pairs
}

/// Pushes a comma-separated list as repeated `key` entries; an empty list is sent as
/// one empty entry, which clears the list.
fn push_list(pairs: &mut FormPairs, key: &str, joined: &str) {
    let items: Vec<&str> = joined
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        pairs.push((key.to_string(), String::new()));
    }
    for item in items {
        pairs.push((key.to_string(), item.to_string()));
    }
}

#[cfg(test)]
mod tests;
