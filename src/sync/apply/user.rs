//! The user write of a step: create (with the documented invite when due) or update,
//! adopting the user a lost create answer or an unlisted user left behind.

use tracing::info;

use crate::domain::fields::{self, CUSTOM_FIELD_PREFIX, UserFields};
use crate::learnamp::{LearnAmpClient, LearnAmpError, LeaveDateEcho, UserFilter, Written};

use super::ApplyContext;
use crate::sync::SyncError;
use crate::sync::invite;
use crate::sync::plan::Step;

/// The user write a step makes: its create or update fields, and the fields stored as
/// applied once it is done.
#[derive(Clone)]
pub(super) struct Write<'a> {
    personio_id: &'a str,
    /// `None`: create.
    learnamp_id: Option<u64>,
    /// Fields sent.
    pub(super) send: UserFields,
    /// Fields stored as applied.
    pub(super) desired: UserFields,
}

impl<'a> Write<'a> {
    pub(super) fn of(step: &'a Step) -> Self {
        Write {
            personio_id: &step.personio_id,
            learnamp_id: step.learnamp_id,
            send: step.send(),
            desired: step.desired.clone(),
        }
    }
}

/// What a create did about the invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CreateInvitation {
    /// The create carried the documented invite.
    Sent,
    /// The user was adopted (an earlier create whose answer was lost, or a user that
    /// already existed) and Learn Amp shows it invited or confirmed.
    AlreadyInvited,
    /// No invitation went out with this write.
    NotSent,
}

/// What writing the user did.
pub(super) struct UserWrite {
    /// The Learn Amp id.
    pub(super) id: u64,
    /// Whether a write was made.
    pub(super) wrote: bool,
    /// The fields now applied.
    pub(super) fields: UserFields,
    /// What the create did about the invitation.
    pub(super) invitation: CreateInvitation,
    /// What became of a `leaveDate` the write carried.
    pub(super) leave_date: LeaveDateEcho,
    /// The create found the user existing and adopted it.
    pub(super) adopted: bool,
}

/// Creates (with the documented invite when `invite`) or updates the user as the step
/// says. `leaveDate` is left out while the account lacks it (`skip_leave_date`); the
/// applied fields still count it, so it is not planned again each sync.
pub(super) async fn write_user(
    step: &Write<'_>,
    context: &ApplyContext<'_>,
    invite: bool,
    skip_leave_date: bool,
) -> Result<UserWrite, SyncError> {
    let mut send = step.send.clone();
    if skip_leave_date {
        send.remove(fields::LEAVE_DATE);
    }
    let unchanged = |id| UserWrite {
        id,
        wrote: false,
        fields: step.desired.clone(),
        invitation: CreateInvitation::NotSent,
        leave_date: LeaveDateEcho::NotSent,
        adopted: false,
    };
    match step.learnamp_id {
        None => create_or_adopt(step, &send, context, invite).await,
        Some(id) if !send.is_empty() => {
            let written = update(context.learnamp, id, step, &send).await?;
            Ok(UserWrite {
                wrote: true,
                leave_date: written.leave_date,
                ..unchanged(id)
            })
        }
        Some(id) => Ok(unchanged(id)),
    }
}

/// Learn Amp refused `managerEmail` (it must match an active user).
pub(super) fn rejects_manager(error: &SyncError) -> bool {
    match error {
        SyncError::LearnAmp(LearnAmpError::Validation {
            message,
            fields: field_errors,
            ..
        }) => {
            message.contains(fields::MANAGER_EMAIL)
                || field_errors.contains_key(fields::MANAGER_EMAIL)
        }
        _ => false,
    }
}

/// Fields every update carries: marked required in the update table (reference §5.5).
const REQUIRED_ON_UPDATE: [&str; 3] = [fields::EMAIL, fields::FIRST_NAME, fields::LAST_NAME];

/// Updates user `id` with `send`, plus the required fields from the desired ones.
async fn update(
    learnamp: &LearnAmpClient,
    id: u64,
    step: &Write<'_>,
    send: &UserFields,
) -> Result<Written, SyncError> {
    let mut form = send.clone();
    for key in REQUIRED_ON_UPDATE {
        if let Some(value) = step.desired.get(key)
            && !form.contains_key(key)
        {
            form.insert(key.to_string(), value.clone());
        }
    }
    learnamp
        .update_user(id, &form)
        .await
        .map_err(|error| classify_write_error(error, step))
}

/// Creates the user (with the documented invite when `invite`); if Learn Amp says the
/// external id or email is taken (an earlier attempt whose answer was lost, or a user
/// the listing did not show), adopts that user, and then Learn Amp's status says
/// whether it was invited.
async fn create_or_adopt(
    step: &Write<'_>,
    send: &UserFields,
    context: &ApplyContext<'_>,
    invite: bool,
) -> Result<UserWrite, SyncError> {
    let learnamp = context.learnamp;
    let error = match learnamp.create_user(send, invite).await {
        Ok(written) => {
            return Ok(UserWrite {
                id: written.user.id,
                wrote: true,
                fields: step.desired.clone(),
                invitation: if invite {
                    CreateInvitation::Sent
                } else {
                    CreateInvitation::NotSent
                },
                leave_date: written.leave_date,
                adopted: false,
            });
        }
        Err(error) => error,
    };
    let existing = if error.is_taken(fields::EXTERNAL_ID) {
        learnamp
            .find_by_external_id(step.personio_id)
            .await
            .map_err(SyncError::LearnAmp)?
    } else if error.is_taken(fields::EMAIL) {
        let email = send.get(fields::EMAIL).cloned().unwrap_or_default();
        let filter = UserFilter {
            email: Some(email),
            statuses: all_statuses(),
            ..UserFilter::default()
        };
        let candidates = learnamp
            .list_users(&filter)
            .await
            .map_err(SyncError::LearnAmp)?;
        let candidate = candidates.into_iter().next();
        if let Some(user) = &candidate
            && let Some(linked) = user
                .integration_external_id
                .as_deref()
                .filter(|linked| !linked.is_empty() && *linked != step.personio_id)
        {
            return Err(SyncError::Clash {
                personio_id: step.personio_id.to_string(),
                learnamp_id: user.id,
                linked_to: linked.to_string(),
            });
        }
        candidate
    } else {
        None
    };
    let Some(user) = existing else {
        return Err(classify_write_error(error, step));
    };
    info!(tenant_id = context.tenant_id, personio_id = %step.personio_id, learnamp_id = user.id, "adopting existing user after create conflict");
    let written = update(learnamp, user.id, step, send).await?;
    // The create whose answer was lost may have carried the invite: Learn Amp's
    // status says whether it went out.
    let invitation = if invite
        && invite::shown_invited(learnamp, step.personio_id)
            .await
            .map_err(SyncError::LearnAmp)?
    {
        CreateInvitation::AlreadyInvited
    } else {
        CreateInvitation::NotSent
    };
    Ok(UserWrite {
        id: user.id,
        wrote: true,
        fields: step.desired.clone(),
        invitation,
        leave_date: written.leave_date,
        adopted: true,
    })
}

fn all_statuses() -> Vec<crate::learnamp::UserStatus> {
    use crate::learnamp::UserStatus;
    vec![
        UserStatus::NotInvited,
        UserStatus::InviteScheduled,
        UserStatus::InvitePending,
        UserStatus::Confirmed,
        UserStatus::Deactivated,
    ]
}

/// A bare 404 on a write that carries custom fields means a configured custom field
/// does not exist in Learn Amp (it cannot list them): an operator problem.
pub(super) fn classify_write_error(error: LearnAmpError, step: &Write<'_>) -> SyncError {
    let custom: Vec<String> = step
        .send
        .keys()
        .filter_map(|key| key.strip_prefix(CUSTOM_FIELD_PREFIX).map(str::to_string))
        .collect();
    if matches!(error, LearnAmpError::NotFound) && !custom.is_empty() {
        return SyncError::UnknownCustomField(custom);
    }
    SyncError::LearnAmp(error)
}
