//! The dry-run answer (contract §3 "Dry-run plan"), derived from a plan's steps: what
//! an operator reads before a sync writes anything.

use std::collections::BTreeMap;

use serde::Serialize;

use super::teams::TeamPlan;
use super::{Action, Clash, Plan};
use crate::domain::fields::UserFields;

/// One field's change, for the dry-run answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// Value before (`null` when unknown).
    pub from: Option<String>,
    /// Value after (`""` clears).
    pub to: String,
}

/// A Learn Amp user to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreateEntry {
    /// Personio id.
    pub personio_id: String,
    /// Fields sent.
    pub fields: UserFields,
}

/// A Learn Amp user to update (adoptions included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UpdateEntry {
    /// Personio id.
    pub personio_id: String,
    /// Learn Amp id.
    pub learnamp_id: u64,
    /// Field → before/after.
    pub changes: BTreeMap<String, Change>,
}

/// A deactivation or reactivation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatusEntry {
    /// Personio id.
    pub personio_id: String,
    /// Learn Amp id (`None`: the user is created in the same sync).
    pub learnamp_id: Option<u64>,
    /// Why.
    pub reason: String,
}

/// An invitation to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvitationEntry {
    /// Personio id.
    pub personio_id: String,
    /// Learn Amp id (`None`: the user is created in the same sync).
    pub learnamp_id: Option<u64>,
}

/// Something planned for later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduledEntry {
    /// Personio id.
    pub personio_id: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The dry-run answer. Field names and order are contract.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlanView<'a> {
    /// Users to create.
    pub creates: Vec<CreateEntry>,
    /// Users to update, with field-level before/after.
    pub updates: Vec<UpdateEntry>,
    /// Users to deactivate.
    pub deactivations: Vec<StatusEntry>,
    /// Users to reactivate.
    pub reactivations: Vec<StatusEntry>,
    /// Invitations to send.
    pub invitations: Vec<InvitationEntry>,
    /// Team changes.
    #[schema(value_type = TeamPlan)]
    pub teams: &'a TeamPlan,
    /// Invitations planned for a later day (new or moved).
    pub scheduled_invitations: Vec<ScheduledEntry>,
    /// People not created yet: their user is created on their invitation day, with the
    /// documented invite, because the account lacks the invitation route (new or moved;
    /// each is in `scheduled_invitations` too).
    pub scheduled_creations: Vec<ScheduledEntry>,
    /// Deactivations planned for a termination date (new or moved).
    pub scheduled_deactivations: Vec<ScheduledEntry>,
    /// Users not adopted because they are linked to someone else.
    #[schema(value_type = Vec<Clash>)]
    pub clashes: &'a [Clash],
    /// Supervisors who are not synced users (their reports get no manager).
    #[schema(value_type = Vec<String>)]
    pub unsynced_supervisors: &'a [String],
    /// Employees that need nothing.
    pub unchanged: u64,
    /// Active linked users before this sync (the guard's denominator).
    pub active_synced: u64,
}

/// The reason shown for a reactivation.
const REACTIVATION_REASON: &str = "active in Personio again";

impl<'a> PlanView<'a> {
    /// Lists every action of `plan`'s steps, in planning order.
    pub fn of(plan: &'a Plan) -> Self {
        let mut view = PlanView {
            creates: Vec::new(),
            updates: Vec::new(),
            deactivations: Vec::new(),
            reactivations: Vec::new(),
            invitations: Vec::new(),
            teams: &plan.teams,
            scheduled_invitations: Vec::new(),
            scheduled_creations: Vec::new(),
            scheduled_deactivations: Vec::new(),
            clashes: &plan.clashes,
            unsynced_supervisors: &plan.unsynced_supervisors,
            unchanged: plan.unchanged,
            active_synced: plan.active_synced,
        };
        for step in &plan.steps {
            let personio_id = || step.personio_id.clone();
            let scheduled = |at: chrono::DateTime<chrono::Utc>| ScheduledEntry {
                personio_id: personio_id(),
                at: at.to_rfc3339(),
            };
            for action in &step.actions {
                match action {
                    Action::Create { fields } => view.creates.push(CreateEntry {
                        personio_id: personio_id(),
                        fields: fields.clone(),
                    }),
                    Action::Update { changes } => view.updates.push(UpdateEntry {
                        personio_id: personio_id(),
                        learnamp_id: step.learnamp_id.unwrap_or_default(),
                        changes: changes.clone(),
                    }),
                    Action::Reactivate => view.reactivations.push(StatusEntry {
                        personio_id: personio_id(),
                        learnamp_id: step.learnamp_id,
                        reason: REACTIVATION_REASON.into(),
                    }),
                    Action::Deactivate { reason } => view.deactivations.push(StatusEntry {
                        personio_id: personio_id(),
                        learnamp_id: step.learnamp_id,
                        reason: reason.clone(),
                    }),
                    Action::Invite => view.invitations.push(InvitationEntry {
                        personio_id: personio_id(),
                        learnamp_id: step.learnamp_id,
                    }),
                    Action::Schedule(schedule) => {
                        if let Some(at) = schedule.invite {
                            view.scheduled_invitations.push(scheduled(at));
                            if schedule.create_on_invitation {
                                view.scheduled_creations.push(scheduled(at));
                            }
                        }
                        if let Some(at) = schedule.deactivate {
                            view.scheduled_deactivations.push(scheduled(at));
                        }
                    }
                    Action::Avatar | Action::RecordInvitation => {}
                }
            }
        }
        view
    }
}
