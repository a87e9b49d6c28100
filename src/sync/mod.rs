//! Full sync: read both sides ([`gather`]), decide every write ([`plan`], pure), and
//! carry it out ([`apply`]).

pub mod apply;
pub mod gather;
pub mod invite;
pub mod live;
pub mod plan;
pub mod progress;
pub mod subscription;
pub mod support;

use std::collections::HashMap;

use crate::domain::mapping::REQUIRED_ATTRIBUTES;
use crate::domain::report::SyncReport;
use crate::domain::tenant::Settings;
use crate::learnamp::{LearnAmpClient, LearnAmpError};
use crate::personio::{PersonioClient, PersonioError};
use crate::store::{ChangeSource, StoreError, TenantStore};

pub use apply::{Applied, ApplyContext};
pub use plan::Plan;

/// Why a sync (or one employee's part of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Personio refused or failed.
    #[error("Personio: {0}")]
    Personio(PersonioError),
    /// Learn Amp refused or failed.
    #[error("Learn Amp: {0}")]
    LearnAmp(LearnAmpError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Personio credential cannot read attributes the mapping needs.
    #[error(
        "the Personio connection cannot read the attributes {}: tick them under the API credential's readable employee attributes in Personio (for a Sign in with Personio connection, give the signing-in user's role read access to them), then restart the tenant",
        .0.join(", ")
    )]
    MissingAttributes(Vec<String>),
    /// Learn Amp answered 404 to a write carrying custom fields.
    #[error(
        "Learn Amp has no custom field named {}: create it in Learn Amp or fix settings.custom_fields, then restart the tenant",
        .0.join(", ")
    )]
    UnknownCustomField(Vec<String>),
    /// The sync would deactivate too many users.
    #[error(
        "the sync would deactivate {count} of {active} active users ({ratio:.0}% > {limit:.0}%); nothing was written: check Personio, then confirm with POST /admin/tenants/{tenant_id}/sync?confirm=true"
    )]
    TooManyDeactivations {
        /// The tenant, named in the path the operator confirms with.
        tenant_id: String,
        /// Deactivations planned.
        count: usize,
        /// Active synced users.
        active: u64,
        /// Planned share, in percent.
        ratio: f64,
        /// Allowed share, in percent.
        limit: f64,
    },
    /// A child actor did not answer (it is restarted; the work is retried).
    #[error("internal: {0}")]
    Actor(String),
    /// A Learn Amp user with this email is linked to another Personio person.
    #[error(
        "Learn Amp user {learnamp_id} is linked to Personio person {linked_to}; not adopted for person {personio_id}"
    )]
    Clash {
        /// The person who would have adopted it.
        personio_id: String,
        /// The Learn Amp user.
        learnamp_id: u64,
        /// The person it is linked to.
        linked_to: String,
    },
}

impl SyncError {
    /// Whether the whole sync must stop (only an operator can fix it).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Personio(error) => error.is_credentials(),
            Self::LearnAmp(error) => error.is_credentials(),
            Self::Store(_) | Self::MissingAttributes(_) | Self::UnknownCustomField(_) => true,
            Self::TooManyDeactivations { .. } | Self::Clash { .. } | Self::Actor(_) => false,
        }
    }

    /// Whether retrying later may succeed without an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Personio(error) => error.is_transient(),
            Self::LearnAmp(error) => error.is_transient(),
            Self::Actor(_) => true,
            _ => false,
        }
    }
}

/// Messages of the tenant's team mapper (`actors::tenant::team_mapper`), which owns
/// team writes so that concurrent syncs of one tenant never create a team twice.
pub enum TeamMapperMsg {
    /// Sent by the tenant's sync (full or live) before any user is written: carry out
    /// the team part of a plan. Replies with the number of teams that failed, or a
    /// blocking error (refused credentials, storage).
    Ensure(plan::TeamPlan, ractor::RpcReplyPort<Result<u64, SyncError>>),
}

/// What a full sync needs.
pub struct SyncContext<'a> {
    /// The tenant id.
    pub tenant_id: &'a str,
    /// Personio client.
    pub personio: &'a PersonioClient,
    /// Learn Amp client.
    pub learnamp: &'a LearnAmpClient,
    /// The tenant's store.
    pub store: &'a TenantStore,
    /// The tenant's settings.
    pub settings: &'a Settings,
    /// Employees applied at once.
    pub concurrency: usize,
    /// The time the sync is judged at (invitation days, termination dates).
    pub now: chrono::DateTime<chrono::Utc>,
    /// The tenant's team mapper child.
    pub team_mapper: Option<&'a ractor::ActorRef<TeamMapperMsg>>,
    /// What caused the writes made with this context (each person's history); a full
    /// sync records [`ChangeSource::FullSync`] whatever this says.
    pub source: ChangeSource,
    /// Where a full sync reports its progress (the tenant view's `progress`).
    pub progress: Option<&'a progress::SyncProgress>,
}

/// The Personio attributes this tenant needs: the contract's list plus the custom
/// fields and scope attribute its settings name.
pub fn needed_attributes(settings: &Settings) -> Vec<String> {
    let mut needed: Vec<String> = REQUIRED_ATTRIBUTES
        .iter()
        .map(|key| key.to_string())
        .collect();
    needed.extend(settings.custom_fields.keys().cloned());
    if let Some(rule) = settings
        .scope
        .as_ref()
        .and_then(|scope| scope.attribute.as_ref())
    {
        needed.push(rule.key.clone());
    }
    if settings.sync_managers {
        needed.push("supervisor".into());
    }
    needed.sort();
    needed.dedup();
    needed
}

/// Checks that the Personio credential can read every attribute the tenant needs.
pub async fn check_attributes(
    personio: &PersonioClient,
    settings: &Settings,
) -> Result<(), SyncError> {
    let readable: std::collections::HashSet<String> = personio
        .readable_attributes()
        .await
        .map_err(SyncError::Personio)?
        .into_iter()
        .map(|attribute| attribute.key)
        .collect();
    let missing: Vec<String> = needed_attributes(settings)
        .into_iter()
        .filter(|key| !readable.contains(key))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SyncError::MissingAttributes(missing))
    }
}

/// Reads both sides and plans, writing nothing.
pub async fn plan_full_sync(context: &SyncContext<'_>) -> Result<Plan, SyncError> {
    plan_reporting(context, None).await
}

/// [`plan_full_sync`], showing its phases in `progress`.
async fn plan_reporting(
    context: &SyncContext<'_>,
    progress: Option<&progress::SyncProgress>,
) -> Result<Plan, SyncError> {
    if let Some(progress) = progress {
        progress.enter(progress::SyncPhase::Reading);
    }
    check_attributes(context.personio, context.settings).await?;
    let snapshot = gather::gather(
        context.personio,
        context.learnamp,
        context.settings.team_hierarchy,
    )
    .await?;
    let records: HashMap<_, _> = context.store.employees()?.into_iter().collect();
    let team_records: HashMap<_, _> = context.store.teams()?.into_iter().collect();
    if let Some(progress) = progress {
        progress.enter(progress::SyncPhase::Planning);
    }
    Ok(plan::plan(&plan::PlanInput {
        employees: &snapshot.employees,
        users: &snapshot.users,
        teams: &snapshot.teams,
        records: &records,
        team_records: &team_records,
        settings: context.settings,
        known_employees: &HashMap::new(),
        now: context.now,
        org_units: &snapshot.org_units,
        complete: true,
        create_invites_only: invitation_route_skipped(context)?,
    }))
}

/// Whether the assumed invitation route was found missing less than a day ago, so that
/// invitations go out only with the documented create (see [`support`]). Reads the
/// store only (a dry run asks Learn Amp nothing).
pub fn invitation_route_skipped(context: &SyncContext<'_>) -> Result<bool, SyncError> {
    Ok(
        support::Support::new(context.store, context.now, context.tenant_id)
            .skipped(crate::learnamp::Assumed::Invitation)?,
    )
}

/// Before a plan that may create people whose invitation falls due later (a timed
/// invitation policy), finds out once a day whether the invitation route exists: a
/// user created now without an invitation could not be invited on the day if it does
/// not, so such people are then created on their day instead. Sends no email (see
/// `LearnAmpClient::probe_invitation_route`). A failed probe is logged and proves
/// nothing, except refused credentials.
pub async fn probe_invitation_route(context: &SyncContext<'_>) -> Result<(), SyncError> {
    use crate::domain::tenant::InvitePolicy;
    use crate::learnamp::Assumed;
    let timed = matches!(
        context.settings.invite_policy,
        InvitePolicy::OnHireDate | InvitePolicy::DaysBeforeHire { .. }
    );
    let support = support::Support::new(context.store, context.now, context.tenant_id);
    if !timed
        || support.skipped(Assumed::Invitation)?
        || support.verified_recently(Assumed::Invitation)?
    {
        return Ok(());
    }
    match context.learnamp.probe_invitation_route().await {
        Ok(Some(true)) => {
            support.works(Assumed::Invitation)?;
            support.verified(Assumed::Invitation)?;
        }
        Ok(Some(false)) => support.missing(Assumed::Invitation)?,
        Ok(None) => support.verified(Assumed::Invitation)?,
        Err(error) if error.is_credentials() => return Err(SyncError::LearnAmp(error)),
        Err(error) => {
            tracing::warn!(tenant_id = context.tenant_id, error = %error, "could not probe the invitation route; trying again at the next sync");
        }
    }
    Ok(())
}

/// Runs a full sync: plan, check the mass-deactivation guard (unless `confirmed`),
/// apply, and store the report as `last_sync`.
pub async fn run_full_sync(
    context: &SyncContext<'_>,
    confirmed: bool,
) -> Result<SyncReport, SyncError> {
    // Wall times come from the tenant's clock (read into `context.now`); the duration
    // from a monotonic instant.
    let started = std::time::Instant::now();
    let started_at = context.now.to_rfc3339();
    let _finish = progress::FinishOnDrop(context.progress);
    if let Some(progress) = context.progress {
        progress.enter(progress::SyncPhase::Reading);
    }
    probe_invitation_route(context).await?;
    let plan = plan_reporting(context, context.progress).await?;
    let ratio = plan.deactivation_ratio();
    if !confirmed && ratio > context.settings.max_deactivation_ratio {
        return Err(SyncError::TooManyDeactivations {
            tenant_id: context.tenant_id.to_string(),
            count: plan.deactivation_count(),
            active: plan.active_synced,
            ratio: ratio * 100.0,
            limit: context.settings.max_deactivation_ratio * 100.0,
        });
    }
    for clash in &plan.clashes {
        context.store.append_history(&format!(
            "Learn Amp user {} is linked to Personio person {}; not adopted for person {}",
            clash.learnamp_id, clash.linked_to, clash.personio_id
        ))?;
    }
    if !plan.unsynced_supervisors.is_empty() {
        tracing::info!(
            tenant_id = context.tenant_id,
            supervisors = ?plan.unsynced_supervisors,
            "supervisors outside the synced set: their reports get no manager"
        );
    }
    let unchanged = plan.unchanged;
    let clashes = plan.clashes.len() as u64;
    let apply_context = ApplyContext {
        tenant_id: context.tenant_id,
        personio: context.personio,
        learnamp: context.learnamp,
        store: context.store,
        concurrency: context.concurrency,
        team_mapper: context.team_mapper,
        now: context.now,
        source: ChangeSource::FullSync,
        progress: context.progress,
    };
    let applied = apply::apply(plan, &apply_context).await?;
    let report = SyncReport {
        kind: "full".into(),
        started_at,
        finished_at: (context.now
            + chrono::Duration::from_std(started.elapsed()).unwrap_or_default())
        .to_rfc3339(),
        created: applied.created,
        updated: applied.updated,
        deactivated: applied.deactivated,
        reactivated: applied.reactivated,
        invited: applied.invited,
        unchanged,
        failed: applied.failed + clashes,
    };
    context.store.put_last_sync(&report)?;
    context.store.clear_reconcile_due()?;
    if applied.failed == 0 {
        context.store.mark_initial_sync_done()?;
        let settings = serde_json::to_value(context.settings).unwrap_or_default();
        context.store.put_settings_applied(&settings)?;
    }
    // What only sled knows (links, invitations, the report) survives a crash from here.
    context.store.flush().await?;
    Ok(report)
}
