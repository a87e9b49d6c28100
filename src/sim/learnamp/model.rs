//! The simulator's state: users, teams, memberships, tokens and invitations, and the public
//! snapshot types tests read.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, Utc};

/// A user's status, as the machine values of `filters[status][]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimUserStatus {
    /// `not_invited`: created with `skipInvitation=true`.
    NotInvited,
    /// `invite_scheduled`.
    InviteScheduled,
    /// `invite_pending`: an invitation was sent.
    InvitePending,
    /// `confirmed`: the user set a password.
    Confirmed,
    /// `deactivated`.
    Deactivated,
}

impl SimUserStatus {
    /// Every status.
    pub const ALL: [SimUserStatus; 5] = [
        Self::NotInvited,
        Self::InviteScheduled,
        Self::InvitePending,
        Self::Confirmed,
        Self::Deactivated,
    ];

    /// The filter value (`not_invited`, …).
    pub fn machine(self) -> &'static str {
        match self {
            Self::NotInvited => "not_invited",
            Self::InviteScheduled => "invite_scheduled",
            Self::InvitePending => "invite_pending",
            Self::Confirmed => "confirmed",
            Self::Deactivated => "deactivated",
        }
    }

    /// Parses a filter value.
    pub fn from_machine(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.machine() == value)
    }

    /// The display label (`"Invite pending"`, …).
    pub fn label(self) -> &'static str {
        match self {
            Self::NotInvited => "Not invited",
            Self::InviteScheduled => "Invite scheduled",
            Self::InvitePending => "Invite pending",
            Self::Confirmed => "Confirmed",
            Self::Deactivated => "Deactivated",
        }
    }

    /// The display time (`"On 29 Nov 16"`, `"Sent 25 Sep 19"`), `None` for not invited.
    pub(super) fn time_label(self, at: DateTime<Utc>) -> Option<String> {
        let date = at.format("%d %b %y");
        match self {
            Self::NotInvited => None,
            Self::InviteScheduled => Some(format!("Scheduled {date}")),
            Self::InvitePending => Some(format!("Sent {date}")),
            Self::Confirmed | Self::Deactivated => Some(format!("On {date}")),
        }
    }
}

/// A snapshot of one user, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// Learn Amp id.
    pub id: u64,
    /// Login email, as stored.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Job title.
    pub job_title: Option<String>,
    /// Free-text location.
    pub location: Option<String>,
    /// Free-text department.
    pub department: Option<String>,
    /// `YYYY-MM-DD`.
    pub hire_date: Option<String>,
    /// `YYYY-MM-DD` (assumed contract B).
    pub leave_date: Option<String>,
    /// The external id.
    pub integration_external_id: Option<String>,
    /// Primary team id.
    pub primary_team_id: Option<u64>,
    /// Secondary team ids, ascending.
    pub secondary_team_ids: Vec<u64>,
    /// Override manager id.
    pub manager_id: Option<u64>,
    /// Status.
    pub status: SimUserStatus,
    /// sha256 hex of the uploaded avatar (assumed contract C).
    pub avatar_sha256: Option<String>,
    /// Custom field values by name.
    pub custom_fields: BTreeMap<String, String>,
    /// Role (`viewer`, …).
    pub role: String,
    /// Language code.
    pub language: String,
}

/// A snapshot of one team, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTeam {
    /// Learn Amp id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// The external id.
    pub integration_external_id: Option<String>,
    /// Parent team id.
    pub parent_team_id: Option<u64>,
    /// Manager user id.
    pub manager_id: Option<u64>,
}

/// One invitation sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    /// The invited user.
    pub user_id: u64,
    /// When.
    pub at: SystemTime,
}

/// A stored user.
#[derive(Debug, Clone)]
pub(super) struct UserRec {
    pub id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub department: Option<String>,
    pub hire_date: Option<String>,
    pub leave_date: Option<String>,
    pub integration_external_id: Option<String>,
    pub manager_id: Option<u64>,
    pub status: SimUserStatus,
    /// The status to restore on reactivation.
    pub status_before_deactivation: SimUserStatus,
    pub status_at: DateTime<Utc>,
    pub avatar_sha256: Option<String>,
    pub custom_fields: BTreeMap<String, String>,
    pub role: String,
    pub language: String,
    pub time_zone: String,
    pub occupation_role: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl UserRec {
    /// A new user with defaults (viewer, en, London).
    pub(super) fn new(id: u64, email: &str, first: &str, last: &str, now: DateTime<Utc>) -> Self {
        Self {
            id,
            email: email.to_string(),
            first_name: first.to_string(),
            last_name: last.to_string(),
            job_title: None,
            location: None,
            department: None,
            hire_date: None,
            leave_date: None,
            integration_external_id: None,
            manager_id: None,
            status: SimUserStatus::NotInvited,
            status_before_deactivation: SimUserStatus::NotInvited,
            status_at: now,
            avatar_sha256: None,
            custom_fields: BTreeMap::new(),
            role: "viewer".to_string(),
            language: "en".to_string(),
            time_zone: "London".to_string(),
            occupation_role: None,
            created_at: now,
            updated_at: now,
            deactivated_at: None,
        }
    }

    /// Sets the status and its display time.
    pub(super) fn set_status(&mut self, status: SimUserStatus, now: DateTime<Utc>) {
        self.status = status;
        self.status_at = now;
        self.updated_at = now;
    }
}

/// A stored team.
#[derive(Debug, Clone)]
pub(super) struct TeamRec {
    pub id: u64,
    pub name: String,
    pub integration_external_id: Option<String>,
    pub parent_team_id: Option<u64>,
    pub manager_id: Option<u64>,
    pub secondary_manager_ids: Vec<u64>,
    pub tags: Vec<String>,
}

impl From<&TeamRec> for SimTeam {
    fn from(team: &TeamRec) -> Self {
        SimTeam {
            id: team.id,
            name: team.name.clone(),
            integration_external_id: team.integration_external_id.clone(),
            parent_team_id: team.parent_team_id,
            manager_id: team.manager_id,
        }
    }
}

/// A team membership.
#[derive(Debug, Clone, Copy)]
pub(super) struct Membership {
    pub id: u64,
    pub primary: bool,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(super) struct TokenRec {
    pub issued: Instant,
    pub scopes: Vec<String>,
}

/// The whole mutable state.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub users: BTreeMap<u64, UserRec>,
    pub teams: BTreeMap<u64, TeamRec>,
    /// Keyed by (team id, user id).
    pub memberships: BTreeMap<(u64, u64), Membership>,
    pub tokens: HashMap<String, TokenRec>,
    pub invitations: Vec<InvitationRecord>,
    next_user_id: u64,
    next_team_id: u64,
    next_membership_id: u64,
}

impl Inner {
    /// The next user id (1, 2, …).
    pub(super) fn take_user_id(&mut self) -> u64 {
        self.next_user_id += 1;
        self.next_user_id
    }

    /// The next team id (1, 2, …).
    pub(super) fn take_team_id(&mut self) -> u64 {
        self.next_team_id += 1;
        self.next_team_id
    }

    /// A snapshot of a stored user.
    pub(super) fn sim_user(&self, user: &UserRec) -> SimUser {
        SimUser {
            id: user.id,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            job_title: user.job_title.clone(),
            location: user.location.clone(),
            department: user.department.clone(),
            hire_date: user.hire_date.clone(),
            leave_date: user.leave_date.clone(),
            integration_external_id: user.integration_external_id.clone(),
            primary_team_id: self.primary_team_of(user.id),
            secondary_team_ids: self.secondary_teams_of(user.id),
            manager_id: user.manager_id,
            status: user.status,
            avatar_sha256: user.avatar_sha256.clone(),
            custom_fields: user.custom_fields.clone(),
            role: user.role.clone(),
            language: user.language.clone(),
        }
    }

    /// Inserts a confirmed user (tests' pre-existing users).
    pub(super) fn insert_confirmed_user(
        &mut self,
        email: &str,
        first: &str,
        last: &str,
        external_id: Option<&str>,
    ) -> u64 {
        let id = self.take_user_id();
        let mut user = UserRec::new(id, email, first, last, Utc::now());
        user.status = SimUserStatus::Confirmed;
        user.integration_external_id = external_id.map(str::to_string);
        self.users.insert(id, user);
        id
    }

    /// Marks a user confirmed; false if unknown.
    pub(super) fn confirm(&mut self, id: u64) -> bool {
        match self.users.get_mut(&id) {
            Some(user) => {
                user.set_status(SimUserStatus::Confirmed, Utc::now());
                true
            }
            None => false,
        }
    }

    /// Records an invitation and moves the user to invite pending.
    pub(super) fn invite(&mut self, id: u64, now: DateTime<Utc>) {
        if let Some(user) = self.users.get_mut(&id) {
            user.set_status(SimUserStatus::InvitePending, now);
            self.invitations.push(InvitationRecord {
                user_id: id,
                at: SystemTime::now(),
            });
            tracing::debug!(user_id = id, "learnamp sim: invitation sent");
        }
    }

    /// A user id by exact external id.
    pub(super) fn user_id_by_ext(&self, ext: &str) -> Option<u64> {
        self.users
            .values()
            .find(|u| u.integration_external_id.as_deref() == Some(ext))
            .map(|u| u.id)
    }

    /// A user id by case-insensitive email, optionally only among active users.
    pub(super) fn user_id_by_email(&self, email: &str, active_only: bool) -> Option<u64> {
        self.users
            .values()
            .find(|u| {
                u.email.eq_ignore_ascii_case(email)
                    && !(active_only && u.status == SimUserStatus::Deactivated)
            })
            .map(|u| u.id)
    }

    /// A team id by exact external id.
    pub(super) fn team_id_by_ext(&self, ext: &str) -> Option<u64> {
        self.teams
            .values()
            .find(|t| t.integration_external_id.as_deref() == Some(ext))
            .map(|t| t.id)
    }

    /// The user's primary team.
    pub(super) fn primary_team_of(&self, user_id: u64) -> Option<u64> {
        self.memberships
            .iter()
            .find(|((_, u), m)| *u == user_id && m.primary)
            .map(|((t, _), _)| *t)
    }

    /// The user's secondary teams, ascending.
    pub(super) fn secondary_teams_of(&self, user_id: u64) -> Vec<u64> {
        self.memberships
            .iter()
            .filter(|((_, u), m)| *u == user_id && !m.primary)
            .map(|((t, _), _)| *t)
            .collect()
    }

    /// Whether the user is in any team.
    pub(super) fn has_team(&self, user_id: u64) -> bool {
        self.memberships.keys().any(|(_, u)| *u == user_id)
    }

    /// Members of a team, by user id.
    pub(super) fn team_user_ids(&self, team_id: u64) -> Vec<u64> {
        self.memberships
            .range((team_id, 0)..=(team_id, u64::MAX))
            .map(|((_, u), _)| *u)
            .collect()
    }

    /// Adds or updates a membership; returns its id. A new primary replaces the old one.
    pub(super) fn add_membership(&mut self, team_id: u64, user_id: u64, primary: bool) -> u64 {
        if primary {
            self.set_primary_team(user_id, Some(team_id));
        }
        if let Some(existing) = self.memberships.get(&(team_id, user_id)) {
            return existing.id;
        }
        self.next_membership_id += 1;
        let id = self.next_membership_id;
        self.memberships
            .insert((team_id, user_id), Membership { id, primary });
        id
    }

    /// Sets (or clears) the primary team; the old primary membership is removed.
    pub(super) fn set_primary_team(&mut self, user_id: u64, team_id: Option<u64>) {
        if self.primary_team_of(user_id) == team_id {
            return;
        }
        self.memberships
            .retain(|(_, u), m| !(*u == user_id && m.primary));
        if let Some(team_id) = team_id {
            match self.memberships.get_mut(&(team_id, user_id)) {
                Some(m) => m.primary = true,
                None => {
                    self.next_membership_id += 1;
                    let id = self.next_membership_id;
                    self.memberships
                        .insert((team_id, user_id), Membership { id, primary: true });
                }
            }
        }
    }

    /// Replaces the secondary teams (the primary team is kept).
    pub(super) fn set_secondary_teams(&mut self, user_id: u64, team_ids: &[u64]) {
        self.memberships
            .retain(|(_, u), m| *u != user_id || m.primary);
        for &team_id in team_ids {
            if !self.memberships.contains_key(&(team_id, user_id)) {
                self.next_membership_id += 1;
                let id = self.next_membership_id;
                self.memberships
                    .insert((team_id, user_id), Membership { id, primary: false });
            }
        }
    }

    /// Deletes a user and every reference to it.
    pub(super) fn delete_user(&mut self, id: u64) -> bool {
        if self.users.remove(&id).is_none() {
            return false;
        }
        self.memberships.retain(|(_, u), _| *u != id);
        for user in self.users.values_mut() {
            if user.manager_id == Some(id) {
                user.manager_id = None;
            }
        }
        for team in self.teams.values_mut() {
            if team.manager_id == Some(id) {
                team.manager_id = None;
            }
            team.secondary_manager_ids.retain(|m| *m != id);
        }
        true
    }

    /// Deletes a team; users are kept, memberships removed, sub-teams detached.
    pub(super) fn delete_team(&mut self, id: u64) -> bool {
        if self.teams.remove(&id).is_none() {
            return false;
        }
        self.memberships.retain(|(t, _), _| *t != id);
        for team in self.teams.values_mut() {
            if team.parent_team_id == Some(id) {
                team.parent_team_id = None;
            }
        }
        true
    }

    /// Whether making `parent` the parent of `team` would create a cycle.
    pub(super) fn would_cycle(&self, team: u64, parent: u64) -> bool {
        let mut current = Some(parent);
        let mut steps = 0;
        while let Some(id) = current {
            if id == team || steps > self.teams.len() {
                return true;
            }
            current = self.teams.get(&id).and_then(|t| t.parent_team_id);
            steps += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(inner: &mut Inner, name: &str) -> u64 {
        let id = inner.take_team_id();
        inner.teams.insert(
            id,
            TeamRec {
                id,
                name: name.to_string(),
                integration_external_id: None,
                parent_team_id: None,
                manager_id: None,
                secondary_manager_ids: vec![],
                tags: vec![],
            },
        );
        id
    }

    #[test]
    fn a_new_primary_team_replaces_the_old_one() {
        let mut inner = Inner::default();
        let user = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let t1 = team(&mut inner, "one");
        let t2 = team(&mut inner, "two");
        inner.set_primary_team(user, Some(t1));
        inner.set_secondary_teams(user, &[t2]);
        inner.add_membership(t2, user, true);
        assert_eq!(inner.primary_team_of(user), Some(t2));
        assert!(inner.secondary_teams_of(user).is_empty());
        assert_eq!(inner.team_user_ids(t1), Vec::<u64>::new());
    }

    #[test]
    fn deleting_a_team_keeps_its_users() {
        let mut inner = Inner::default();
        let user = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let t1 = team(&mut inner, "one");
        inner.add_membership(t1, user, true);
        assert!(inner.delete_team(t1));
        assert!(inner.users.contains_key(&user));
        assert_eq!(inner.primary_team_of(user), None);
    }

    #[test]
    fn cycles_are_detected() {
        let mut inner = Inner::default();
        let a = team(&mut inner, "a");
        let b = team(&mut inner, "b");
        inner.teams.get_mut(&b).expect("b").parent_team_id = Some(a);
        assert!(inner.would_cycle(a, b));
        assert!(inner.would_cycle(a, a));
        assert!(!inner.would_cycle(b, a));
    }

    #[test]
    fn status_labels_follow_the_reference() {
        let at = DateTime::parse_from_rfc3339("2016-11-29T10:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(
            SimUserStatus::Confirmed.time_label(at).as_deref(),
            Some("On 29 Nov 16")
        );
        assert_eq!(
            SimUserStatus::InvitePending.time_label(at).as_deref(),
            Some("Sent 29 Nov 16")
        );
        assert_eq!(
            SimUserStatus::from_machine("invite_pending"),
            Some(SimUserStatus::InvitePending)
        );
        assert_eq!(SimUserStatus::from_machine("pending_deactivation"), None);
    }
}
