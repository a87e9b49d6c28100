//! The simulator's records (users, teams, memberships, tokens) and the public snapshot
//! types tests read. The state that holds them is in `state`, its indexes in `indexes`.

use std::collections::BTreeMap;
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

impl TeamRec {
    /// A new team with only an id and a name.
    pub(super) fn new(id: u64, name: &str) -> Self {
        Self {
            id,
            name: name.to_string(),
            integration_external_id: None,
            parent_team_id: None,
            manager_id: None,
            secondary_manager_ids: Vec::new(),
            tags: Vec::new(),
        }
    }
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

/// Replaces `slot` when a change carries a new value (`None` leaves it unchanged).
pub(super) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}
