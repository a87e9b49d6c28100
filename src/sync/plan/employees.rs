//! One person's step: which Learn Amp user is theirs (linked, adopted or none), and the
//! actions that bring it in line with Personio.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::view::Change;
use super::{Action, Clash, LaStatus, LaUser, Schedule, Step};
use crate::domain::Employee;
use crate::domain::fields::{self, UserFields, changed_fields};
use crate::domain::schedule::{InviteTiming, deactivation_due, invite_due};
use crate::domain::tenant::Settings;
use crate::store::EmployeeRecord;

/// The clock and rules a plan is judged by.
pub(super) struct Timing {
    pub(super) now: DateTime<Utc>,
    pub(super) tz: chrono_tz::Tz,
    /// See [`super::PlanInput::create_invites_only`].
    pub(super) create_invites_only: bool,
}

/// The Learn Amp users by each key a person is matched on, built once per plan so
/// that matching a person is a lookup, never a scan.
pub(super) struct UserIndex<'a> {
    by_id: HashMap<u64, &'a LaUser>,
    by_external: HashMap<&'a str, &'a LaUser>,
    by_email: HashMap<String, &'a LaUser>,
    /// Learn Amp id → the Personio person the store links it to.
    linked_ids: HashMap<u64, &'a str>,
}

impl<'a> UserIndex<'a> {
    pub(super) fn new(users: &'a [LaUser], records: &'a HashMap<String, EmployeeRecord>) -> Self {
        UserIndex {
            by_id: users.iter().map(|user| (user.id, user)).collect(),
            by_external: users
                .iter()
                .filter_map(|user| user.external_id.as_deref().map(|ext| (ext, user)))
                .collect(),
            by_email: users
                .iter()
                .map(|user| (user.email.to_lowercase(), user))
                .collect(),
            linked_ids: records
                .iter()
                .filter(|(_, record)| record.is_linked())
                .map(|(personio_id, record)| (record.learnamp_id, personio_id.as_str()))
                .collect(),
        }
    }

    /// The user with Learn Amp id `id`.
    pub(super) fn by_id(&self, id: u64) -> Option<&'a LaUser> {
        self.by_id.get(&id).copied()
    }

    /// The Learn Amp user linked to `employee`: through the stored mapping, else by
    /// external id.
    pub(super) fn linked(
        &self,
        employee: &Employee,
        record: Option<&EmployeeRecord>,
    ) -> Option<&'a LaUser> {
        record
            .filter(|record| record.is_linked())
            .and_then(|record| self.by_id(record.learnamp_id))
            .or_else(|| self.by_external.get(employee.id.as_str()).copied())
    }

    /// A user with the same email (case-insensitive) that may be adopted; a clash when
    /// that user belongs to another Personio person.
    pub(super) fn adoption_candidate(
        &self,
        employee: &Employee,
    ) -> Result<Option<&'a LaUser>, Clash> {
        let Some(email) = employee.email.as_ref().filter(|email| !email.is_empty()) else {
            return Ok(None);
        };
        let Some(user) = self.by_email.get(&email.to_lowercase()).copied() else {
            return Ok(None);
        };
        let other_link = user
            .external_id
            .as_deref()
            .filter(|ext| !ext.is_empty() && *ext != employee.id)
            .or_else(|| {
                self.linked_ids
                    .get(&user.id)
                    .copied()
                    .filter(|linked| *linked != employee.id)
            });
        match other_link {
            Some(linked_to) => Err(Clash {
                personio_id: employee.id.clone(),
                learnamp_id: user.id,
                linked_to: linked_to.to_string(),
            }),
            None => Ok(Some(user)),
        }
    }
}

/// Whether `employee`, who has no user, is created only on their invitation day: the
/// invitation route is missing and their invitation falls due later.
pub(super) fn waits_for_invitation_day(
    employee: &Employee,
    settings: &Settings,
    timing: &Timing,
) -> bool {
    timing.create_invites_only
        && !employee.is_inactive()
        && matches!(
            invite_due(settings.invite_policy, employee, timing.tz),
            InviteTiming::At(at) if at > timing.now
        )
}

/// Plans one synced person (`None`: a leaver who never had a user needs nothing).
pub(super) fn plan_employee(
    employee: &Employee,
    record: Option<&EmployeeRecord>,
    linked: Option<&LaUser>,
    desired: UserFields,
    level: u32,
    settings: &Settings,
    timing: &Timing,
) -> Option<Step> {
    let leave_due = deactivation_due(settings.deactivation, employee, timing.tz);
    let leaving = employee.is_inactive() || leave_due.is_some_and(|due| due <= timing.now);
    let mut step = Step {
        personio_id: employee.id.clone(),
        employee: Some(employee.clone()),
        learnamp_id: linked.map(|user| user.id),
        desired: desired.clone(),
        level,
        record: record.cloned().unwrap_or_default(),
        actions: Vec::new(),
    };
    let mut schedule = Schedule {
        invite: None,
        deactivate: leave_due.filter(|due| *due > timing.now),
        create_on_invitation: false,
    };
    let Some(user) = linked else {
        // A person who has left and never had a Learn Amp user is not created.
        if leaving {
            return None;
        }
        if waits_for_invitation_day(employee, settings, timing) {
            // Created with the documented invite on that day; only the day is stored.
            schedule.create_on_invitation = true;
        } else {
            step.actions.push(Action::Create { fields: desired });
            if employee.has_profile_picture {
                step.actions.push(Action::Avatar);
            }
        }
        plan_invitation(&mut step, &mut schedule, None, settings, timing);
        return Some(step.finish(schedule));
    };
    let same_user = record.is_some_and(|record| record.learnamp_id == user.id);
    let baseline = match record {
        Some(record) if same_user && !record.applied.is_empty() => &record.applied,
        _ => &user.fields,
    };
    let mut changes: std::collections::BTreeMap<String, Change> =
        changed_fields(&desired, baseline)
            .into_iter()
            .map(|(key, to)| {
                let from = baseline.get(&key).cloned();
                (key, Change { from, to })
            })
            .collect();
    // The record may be older than Learn Amp (a SIGKILL between a write and the store
    // write, or before sled flushed it): a field Learn Amp shows that differs from
    // Personio is written even when the record claims it is already applied.
    for (key, value) in drifted_fields(&desired, &user.fields) {
        changes.entry(key).or_insert_with_key(|key| Change {
            from: user.fields.get(key).cloned(),
            to: value,
        });
    }
    let check_avatar = if same_user {
        let snapshot_changed = step.record.employee.as_ref() != Some(employee);
        let had_avatar = step
            .record
            .avatar_sha256
            .as_deref()
            .is_some_and(|hash| !hash.is_empty());
        // A picture never uploaded (an upload cut short) is checked until it is.
        let never_uploaded = employee.has_profile_picture && step.record.avatar_sha256.is_none();
        (snapshot_changed && (employee.has_profile_picture || had_avatar)) || never_uploaded
    } else {
        // Adoption: write the link even if every other field already matches.
        changes.insert(
            fields::EXTERNAL_ID.into(),
            Change {
                from: baseline.get(fields::EXTERNAL_ID).cloned(),
                to: employee.id.clone(),
            },
        );
        // An unlinked record (an invitation intent written before a create) is about
        // this person, whichever user they turn out to have: its invitation flags stay.
        let unlinked = !step.record.is_linked();
        step.record = EmployeeRecord {
            learnamp_id: user.id,
            invited: unlinked && step.record.invited,
            invite_started: unlinked && step.record.invite_started,
            ..EmployeeRecord::default()
        };
        employee.has_profile_picture
    };
    if !changes.is_empty() {
        step.actions.push(Action::Update { changes });
    }
    if check_avatar {
        step.actions.push(Action::Avatar);
    }
    let la_deactivated = user.status == LaStatus::Deactivated;
    step.record.deactivated = la_deactivated;
    if leaving {
        schedule.deactivate = None;
        if !la_deactivated {
            let reason = if employee.is_inactive() {
                "inactive in Personio"
            } else {
                "termination date reached"
            };
            step.actions.push(Action::Deactivate {
                reason: reason.into(),
            });
        }
        return Some(step.finish(schedule));
    }
    if la_deactivated {
        step.actions.push(Action::Reactivate);
    }
    plan_invitation(&mut step, &mut schedule, Some(user), settings, timing);
    Some(step.finish(schedule))
}

/// The step of a linked person no longer synced (gone from Personio or out of scope):
/// deactivated, unless Learn Amp shows them deactivated already.
pub(super) fn plan_removal(
    personio_id: &str,
    record: &EmployeeRecord,
    user: Option<&LaUser>,
    reason: &str,
) -> Step {
    let la_deactivated = user.is_some_and(|user| user.status == LaStatus::Deactivated);
    let mut record = record.clone();
    if la_deactivated {
        record.deactivated = true;
    }
    let mut step = Step {
        personio_id: personio_id.to_string(),
        employee: None,
        learnamp_id: Some(record.learnamp_id),
        desired: record.applied.clone(),
        level: 0,
        record,
        actions: Vec::new(),
    };
    if !la_deactivated {
        step.actions.push(Action::Deactivate {
            reason: reason.to_string(),
        });
    }
    step.finish(Schedule::default())
}

/// Fields that Learn Amp's full user form shows faithfully, so that its value there can
/// be compared with the desired one. Not custom fields (their response shape is
/// unconfirmed) nor secondary teams (not read back).
const READ_BACK_FIELDS: [&str; 9] = [
    fields::EXTERNAL_ID,
    fields::FIRST_NAME,
    fields::LAST_NAME,
    fields::EMAIL,
    fields::JOB_TITLE,
    fields::LOCATION,
    fields::HIRE_DATE,
    fields::PRIMARY_TEAM,
    fields::MANAGER_EMAIL,
];

/// The desired fields whose value differs from what Learn Amp shows (`shown`), ignoring
/// surrounding blanks (Learn Amp trims): the read-back fields (emails
/// case-insensitively, as Learn Amp matches them), and a leave date Learn Amp shows that
/// is not the desired one (an empty one proves nothing: the field is an assumed contract
/// that Learn Amp may not echo). For a live update `shown` is the stored record, so this
/// finds nothing more than the record comparison.
fn drifted_fields(desired: &UserFields, shown: &UserFields) -> Vec<(String, String)> {
    desired
        .iter()
        .filter(|(key, value)| {
            let Some(current) = shown.get(key.as_str()).map(|current| current.trim()) else {
                return false;
            };
            let value = value.trim();
            match key.as_str() {
                fields::EMAIL | fields::MANAGER_EMAIL => !current.eq_ignore_ascii_case(value),
                fields::LEAVE_DATE => !current.is_empty() && current != value,
                key => READ_BACK_FIELDS.contains(&key) && current != value,
            }
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Decides whether the person is invited now, later (scheduled) or not at all. Nobody
/// is invited twice: an invitation recorded, or visible in Learn Amp, ends it.
fn plan_invitation(
    step: &mut Step,
    schedule: &mut Schedule,
    user: Option<&LaUser>,
    settings: &Settings,
    timing: &Timing,
) {
    if step.record.invited {
        return;
    }
    let invited_in_learnamp = user
        .is_some_and(|user| matches!(user.status, LaStatus::InvitePending | LaStatus::Confirmed));
    let Some(employee) = step.employee.as_ref() else {
        return;
    };
    let due_now = match invite_due(settings.invite_policy, employee, timing.tz) {
        InviteTiming::Never => false,
        InviteTiming::Now => true,
        InviteTiming::At(at) if at <= timing.now => true,
        InviteTiming::At(at) => {
            schedule.invite = Some(at);
            false
        }
    };
    if due_now {
        if invited_in_learnamp {
            step.actions.push(Action::RecordInvitation);
        } else if user.is_none() || !timing.create_invites_only {
            // An existing user can be invited only through the assumed route.
            step.actions.push(Action::Invite);
        }
    }
}

/// Depth of each synced active employee in the supervisor tree (0 = no synced
/// supervisor); cycles are cut.
pub(super) fn supervisor_levels(candidates: &HashMap<String, &Employee>) -> HashMap<String, u32> {
    let mut levels = HashMap::new();
    for id in candidates.keys() {
        let mut depth = 0u32;
        let mut visited = HashSet::new();
        let mut current = id.as_str();
        visited.insert(current);
        while let Some(supervisor) = candidates
            .get(current)
            .and_then(|employee| employee.supervisor_id.as_deref())
            .filter(|supervisor| candidates.contains_key(*supervisor))
        {
            if !visited.insert(supervisor) {
                break;
            }
            depth += 1;
            current = supervisor;
        }
        levels.insert(id.clone(), depth);
    }
    levels
}
