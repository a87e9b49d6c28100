//! Invitations: the one path that sends Learn Amp's invitation to an existing user (a
//! sync's planned invitation and an operator's manual one alike), its write-ahead, and
//! the crash-recovery check that asks Learn Amp whether an invitation went out.
//!
//! The rule: the intent (`invite_started`) is flushed to disk before any call that may
//! send an invitation; a retry that finds the intent without the outcome asks Learn Amp
//! ([`shown_invited`]) instead of sending again. So a crash never sends a second one.
//! And the invitation route is called only for a user Learn Amp shows not invited: the
//! record can be older than Learn Amp (a lost write), and a deactivated user's status
//! hides an earlier invitation from the plan until the user is reactivated.

use crate::learnamp::{
    Assumed, InvitationOutcome, LearnAmpClient, LearnAmpError, UserFilter, UserStatus,
};
use crate::store::schedule::DueKind;
use crate::store::{ChangeSource, EmployeeRecord, PersonChange, StoreError, TenantStore};

use super::SyncError;
use super::support::Support;

/// Why an invitation could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum InviteFailure {
    /// Learn Amp refused or failed.
    #[error(transparent)]
    LearnAmp(#[from] LearnAmpError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InviteFailure> for SyncError {
    fn from(failure: InviteFailure) -> Self {
        match failure {
            InviteFailure::LearnAmp(error) => SyncError::LearnAmp(error),
            InviteFailure::Store(error) => SyncError::Store(error),
        }
    }
}

/// The write-ahead: records the intent to invite `personio_id` and flushes it, so that
/// it survives a crash before the call that may send the invitation (sled keeps recent
/// writes in memory; without the flush a restart could trust an older record and
/// invite again).
pub async fn write_intent(
    store: &TenantStore,
    personio_id: &str,
    record: &mut EmployeeRecord,
) -> Result<(), StoreError> {
    record.invite_started = true;
    store.put_employee(personio_id, record)?;
    store.flush().await
}

/// The crash-recovery check: whether Learn Amp shows the user of `personio_id` (by
/// external id) invited or confirmed, from its status filters.
pub async fn shown_invited(
    learnamp: &LearnAmpClient,
    personio_id: &str,
) -> Result<bool, LearnAmpError> {
    let filter = UserFilter {
        external_id: Some(personio_id.to_string()),
        statuses: vec![UserStatus::InvitePending, UserStatus::Confirmed],
        ..UserFilter::default()
    };
    Ok(!learnamp.list_users(&filter).await?.is_empty())
}

/// What sending an invitation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The invitation went out.
    Sent,
    /// The user had confirmed already: nothing went out, the record says invited.
    AlreadyConfirmed,
    /// Learn Amp showed the user invited or confirmed before the call (an invitation
    /// whose record a crash lost, or one a deactivation hid): nothing went out, the
    /// record says invited.
    ShownInvited,
    /// The user is deactivated: nothing went out.
    Deactivated,
    /// The account lacks the assumed invitation route: nothing went out, and the
    /// route is recorded missing.
    Unsupported,
}

/// Sends the invitation to the user `record` links, unless Learn Amp shows that user
/// invited already (then only the record is updated), intent first; stores the outcome
/// in `record` and whether the assumed route works in `support`.
pub async fn send(
    store: &TenantStore,
    learnamp: &LearnAmpClient,
    support: &Support<'_>,
    personio_id: &str,
    record: &mut EmployeeRecord,
) -> Result<Sent, InviteFailure> {
    if shown_invited(learnamp, personio_id).await? {
        tracing::info!(
            personio_id,
            learnamp_id = record.learnamp_id,
            "invitation not sent: Learn Amp shows the user invited already"
        );
        record.invited = true;
        store.put_employee(personio_id, record)?;
        return Ok(Sent::ShownInvited);
    }
    write_intent(store, personio_id, record).await?;
    let sent = match learnamp.send_invitation(record.learnamp_id).await {
        Ok(InvitationOutcome::Sent) => {
            record.invited = true;
            support.works(Assumed::Invitation)?;
            Sent::Sent
        }
        Ok(InvitationOutcome::AlreadyConfirmed) => {
            record.invited = true;
            support.works(Assumed::Invitation)?;
            Sent::AlreadyConfirmed
        }
        Ok(InvitationOutcome::Deactivated) => {
            support.works(Assumed::Invitation)?;
            Sent::Deactivated
        }
        Err(LearnAmpError::Unsupported(assumed)) => {
            // Nothing went out; an existing user cannot be invited without the route.
            record.invite_started = false;
            support.missing(assumed)?;
            Sent::Unsupported
        }
        Err(error) => return Err(error.into()),
    };
    store.put_employee(personio_id, record)?;
    Ok(sent)
}

/// What an operator's invitation did (the admin route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    /// The invitation was sent.
    Sent,
    /// The person had been invited before (or has confirmed): nothing sent.
    AlreadyInvited,
    /// The person has no Learn Amp user.
    UnknownPerson,
    /// The user is deactivated: never invited.
    Deactivated,
    /// The account lacks the invitation route (recorded missing).
    Unsupported,
}

/// Invites one person at once, never twice, never a deactivated user. An operator
/// asking is worth a try even while the route is recorded missing.
pub async fn invite_now(
    store: &TenantStore,
    learnamp: &LearnAmpClient,
    support: &Support<'_>,
    personio_id: &str,
) -> Result<Manual, InviteFailure> {
    let Some(mut record) = store
        .employee(personio_id)?
        .filter(|record| record.is_linked())
    else {
        return Ok(Manual::UnknownPerson);
    };
    if record.deactivated {
        return Ok(Manual::Deactivated);
    }
    if record.invited {
        return Ok(Manual::AlreadyInvited);
    }
    let outcome = match send(store, learnamp, support, personio_id, &mut record).await? {
        Sent::Sent => {
            store.append_person_change(
                personio_id,
                &PersonChange {
                    at: chrono::Utc::now().to_rfc3339(),
                    source: ChangeSource::Administrator,
                    actions: vec!["invite".into()],
                    fields: Default::default(),
                },
            )?;
            Manual::Sent
        }
        Sent::AlreadyConfirmed | Sent::ShownInvited => Manual::AlreadyInvited,
        Sent::Deactivated => return Ok(Manual::Deactivated),
        Sent::Unsupported => return Ok(Manual::Unsupported),
    };
    // Invited now: no invitation day left to wait for.
    record.invite_due = None;
    store.put_employee(personio_id, &record)?;
    store.set_due(DueKind::Invite, personio_id, None)?;
    Ok(outcome)
}
