//! The messages of the tenant actor, and what its manual invitation answers.

use ractor::RpcReplyPort;

/// Messages of the tenant actor.
pub enum TenantMsg {
    /// Sent by the tenant to itself right after start: check attributes and run the
    /// initial sync if it has not completed. No reply.
    Start,
    /// Sent by the admin API (operator sync) and the reconciliation timer: run a full
    /// sync; `confirm` lifts the mass-deactivation guard once. Updates `last_sync` and
    /// the state. No reply (the admin answers 202).
    FullSync {
        /// Apply even if the guard would stop it.
        confirm: bool,
    },
    /// Sent by the admin API: plan a full sync and answer the plan as JSON, writing
    /// nothing. Replies.
    DryRun(RpcReplyPort<Result<serde_json::Value, String>>),
    /// Sent by the settings page before it applies a change: plan a full sync as if the
    /// tenant had these settings, writing nothing (the preview). Replies with the plan,
    /// or an error sentence (e.g. an attribute the settings name is not readable).
    DryRunWith(
        Box<crate::domain::tenant::Settings>,
        RpcReplyPort<Result<crate::sync::plan::Plan, String>>,
    ),
    /// Sent by the webhook front door after it stored an event, and by the tenant to
    /// itself after a failed drain: apply every stored event, oldest first, coalesced
    /// per person; each leaves the inbox once its effect is stored. No reply.
    InboxWake,
    /// Sent by the scheduler child when invitations or deactivations are due for these
    /// people: re-plans each (which invites or deactivates them once), clears their past
    /// items and re-arms the scheduler. No reply.
    Due(Vec<String>),
    /// Sent by fault drills and tests: the tenant panics, as a bug would make it, so
    /// that supervision can be seen at work. No reply.
    Crash(String),
    /// Sent by the admin API: invite one person now, whatever the policy. Replies with
    /// the outcome, or an error sentence (unknown person, deactivated).
    InviteNow(String, RpcReplyPort<Result<InviteOutcome, InviteError>>),
    /// Sent by the tenant to itself after a transient failure to ensure its Personio
    /// webhook subscription: tries again, and on success clears the subscription problem
    /// (the view returns to `live` unless something else is wrong). No reply.
    EnsureSubscription,
}

/// What a manual invitation did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum InviteOutcome {
    /// The invitation was sent.
    Sent,
    /// The person had been invited before (or has confirmed): nothing sent.
    AlreadyInvited,
}

/// Why a manual invitation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The person has no Learn Amp user.
    #[error("Personio person {0} has no Learn Amp user")]
    UnknownPerson(String),
    /// Deactivated users are never invited.
    #[error("Personio person {0} is deactivated in Learn Amp; deactivated users are never invited")]
    Deactivated(String),
    /// The user exists and the account lacks the assumed invitation route, the only way
    /// to invite an existing user (the documented invite goes out only with a create).
    #[error(
        "Personio person {0} already has a Learn Amp user, and this Learn Amp account offers no route to invite an existing user (the assumed POST /v1/users/{{id}}/invitation is missing); send the invitation from Learn Amp itself"
    )]
    InvitationUnsupported(String),
    /// The call failed.
    #[error("{0}")]
    Failed(String),
}
