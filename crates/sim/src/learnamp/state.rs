//! The Learn Amp simulator's whole mutable state: users, teams, memberships, tokens and
//! invitations, changed only through methods that keep the indexes consistent.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::indexes::{
    Indexes, TeamKeys, UserKeys, email_key, ids_under, next_id, pairs_of, status_slot,
};
use super::model::{
    InvitationRecord, Membership, SimUser, SimUserStatus, TeamRec, TokenRec, UserRec,
};

/// The whole mutable state.
///
/// Users, teams and memberships are private so that every change goes through a method
/// that keeps the secondary indexes consistent: [`Inner::insert_user`],
/// [`Inner::update_user`], [`Inner::insert_team`], [`Inner::update_team`], the membership
/// methods and the deletions.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    users: BTreeMap<u64, UserRec>,
    teams: BTreeMap<u64, TeamRec>,
    /// Keyed by (team id, user id).
    memberships: BTreeMap<(u64, u64), Membership>,
    pub tokens: HashMap<String, TokenRec>,
    pub invitations: Vec<InvitationRecord>,
    next_user_id: u64,
    next_team_id: u64,
    next_membership_id: u64,
    index: Indexes,
}

impl Inner {
    /// The next user id (1, 2, …).
    pub(super) fn take_user_id(&mut self) -> u64 {
        next_id(&mut self.next_user_id)
    }

    /// The next team id (1, 2, …).
    pub(super) fn take_team_id(&mut self) -> u64 {
        next_id(&mut self.next_team_id)
    }

    /// Every user, by id.
    pub(super) fn users(&self) -> &BTreeMap<u64, UserRec> {
        &self.users
    }

    /// One user.
    pub(super) fn user(&self, id: u64) -> Option<&UserRec> {
        self.users.get(&id)
    }

    /// Whether user `id` exists.
    pub(super) fn contains_user(&self, id: u64) -> bool {
        self.users.contains_key(&id)
    }

    /// Stores a user (replacing one with the same id) and indexes it.
    pub(super) fn insert_user(&mut self, user: UserRec) {
        let id = user.id;
        if let Some(old) = self.users.insert(id, user) {
            self.index.remove_user(&old);
        }
        self.index.add_user(&self.users[&id]);
    }

    /// Changes user `id` through `change` and re-indexes it; `None` when unknown.
    pub(super) fn update_user<R>(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut UserRec) -> R,
    ) -> Option<R> {
        let user = self.users.get_mut(&id)?;
        let before = UserKeys::of(user);
        let result = change(user);
        self.index.reindex_user(&before, user);
        Some(result)
    }

    /// Every team, by id.
    pub(super) fn teams(&self) -> &BTreeMap<u64, TeamRec> {
        &self.teams
    }

    /// One team.
    pub(super) fn team(&self, id: u64) -> Option<&TeamRec> {
        self.teams.get(&id)
    }

    /// Whether team `id` exists.
    pub(super) fn contains_team(&self, id: u64) -> bool {
        self.teams.contains_key(&id)
    }

    /// Stores a team (replacing one with the same id) and indexes it.
    pub(super) fn insert_team(&mut self, team: TeamRec) {
        let id = team.id;
        if let Some(old) = self.teams.insert(id, team) {
            self.index.remove_team(&old);
        }
        self.index.add_team(&self.teams[&id]);
    }

    /// Changes team `id` through `change` and re-indexes it; `None` when unknown.
    pub(super) fn update_team<R>(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut TeamRec) -> R,
    ) -> Option<R> {
        let team = self.teams.get_mut(&id)?;
        let before = TeamKeys::of(team);
        let result = change(team);
        self.index.reindex_team(&before, team);
        Some(result)
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
        self.insert_user(user);
        id
    }

    /// Marks a user confirmed; false if unknown.
    pub(super) fn confirm(&mut self, id: u64) -> bool {
        self.update_user(id, |user| {
            user.set_status(SimUserStatus::Confirmed, Utc::now());
        })
        .is_some()
    }

    /// Records an invitation and moves the user to invite pending.
    pub(super) fn invite(&mut self, id: u64, now: DateTime<Utc>) {
        let invited = self.update_user(id, |user| {
            user.set_status(SimUserStatus::InvitePending, now);
        });
        if invited.is_some() {
            self.invitations.push(InvitationRecord {
                user_id: id,
                at: SystemTime::now(),
            });
            tracing::debug!(user_id = id, "learnamp sim: invitation sent");
        }
    }

    /// The ids of the users with exactly this external id, ascending.
    pub(super) fn user_ids_by_ext<'a>(&'a self, ext: &str) -> impl Iterator<Item = u64> + use<'a> {
        ids_under(&self.index.user_ext, ext)
    }

    /// A user id by exact external id (the first by id).
    pub(super) fn user_id_by_ext(&self, ext: &str) -> Option<u64> {
        self.user_ids_by_ext(ext).next()
    }

    /// The ids of the users whose email equals `email` ignoring ASCII case, ascending.
    pub(super) fn user_ids_by_email<'a>(
        &'a self,
        email: &str,
    ) -> impl Iterator<Item = u64> + use<'a> {
        ids_under(&self.index.user_email, email_key(email).as_str())
    }

    /// A user id by case-insensitive email (the first by id), optionally only among active
    /// users.
    pub(super) fn user_id_by_email(&self, email: &str, active_only: bool) -> Option<u64> {
        self.user_ids_by_email(email).find(|id| {
            self.users
                .get(id)
                .is_some_and(|u| !(active_only && u.status == SimUserStatus::Deactivated))
        })
    }

    /// The ids of the users with one of `statuses`, ascending (a status may repeat).
    pub(super) fn user_ids_with_statuses(&self, statuses: &[SimUserStatus]) -> Vec<u64> {
        let mut slots: Vec<usize> = statuses.iter().map(|s| status_slot(*s)).collect();
        slots.sort_unstable();
        slots.dedup();
        let mut ids: Vec<u64> = slots
            .iter()
            .flat_map(|slot| self.index.user_status[*slot].iter().copied())
            .collect();
        if slots.len() > 1 {
            ids.sort_unstable();
        }
        ids
    }

    /// A team id by exact external id (the first by id).
    pub(super) fn team_id_by_ext(&self, ext: &str) -> Option<u64> {
        self.team_ids_by_ext(ext).next()
    }

    /// The ids of the teams with exactly this external id, ascending.
    pub(super) fn team_ids_by_ext<'a>(&'a self, ext: &str) -> impl Iterator<Item = u64> + use<'a> {
        ids_under(&self.index.team_ext, ext)
    }

    /// A team id by exact name (the first by id).
    pub(super) fn team_id_by_name(&self, name: &str) -> Option<u64> {
        ids_under(&self.index.team_name, name).next()
    }

    /// The teams whose parent is `team_id`, ascending.
    pub(super) fn sub_team_ids(&self, team_id: u64) -> impl Iterator<Item = u64> + '_ {
        ids_under(&self.index.team_children, &team_id)
    }

    /// The user's memberships as (team id, membership), by team id.
    fn memberships_of(&self, user_id: u64) -> impl Iterator<Item = (u64, &Membership)> + '_ {
        self.index
            .user_teams
            .range(pairs_of(user_id))
            .filter_map(move |(_, team)| {
                self.memberships.get(&(*team, user_id)).map(|m| (*team, m))
            })
    }

    /// The user's primary team.
    pub(super) fn primary_team_of(&self, user_id: u64) -> Option<u64> {
        self.memberships_of(user_id)
            .find(|(_, m)| m.primary)
            .map(|(t, _)| t)
    }

    /// The user's secondary teams, ascending.
    pub(super) fn secondary_teams_of(&self, user_id: u64) -> Vec<u64> {
        self.memberships_of(user_id)
            .filter(|(_, m)| !m.primary)
            .map(|(t, _)| t)
            .collect()
    }

    /// Whether the user is in any team.
    pub(super) fn has_team(&self, user_id: u64) -> bool {
        self.index
            .user_teams
            .range(pairs_of(user_id))
            .next()
            .is_some()
    }

    /// Whether the user is a member of the team.
    pub(super) fn is_member(&self, team_id: u64, user_id: u64) -> bool {
        self.memberships.contains_key(&(team_id, user_id))
    }

    /// Members of a team, by user id.
    pub(super) fn team_user_ids(&self, team_id: u64) -> Vec<u64> {
        self.memberships
            .range(pairs_of(team_id))
            .map(|((_, u), _)| *u)
            .collect()
    }

    /// How many members a team has.
    pub(super) fn team_user_count(&self, team_id: u64) -> usize {
        self.index.team_members.get(&team_id).copied().unwrap_or(0)
    }

    /// Stores a new membership with a fresh id; returns the id.
    fn put_membership(&mut self, team_id: u64, user_id: u64, primary: bool) -> u64 {
        let id = next_id(&mut self.next_membership_id);
        if self
            .memberships
            .insert((team_id, user_id), Membership { id, primary })
            .is_none()
        {
            self.index.add_membership(team_id, user_id);
        }
        id
    }

    /// Removes a membership; `None` when there was none.
    pub(super) fn remove_membership(&mut self, team_id: u64, user_id: u64) -> Option<Membership> {
        let removed = self.memberships.remove(&(team_id, user_id))?;
        self.index.remove_membership(team_id, user_id);
        Some(removed)
    }

    /// Removes the user's memberships that `pred` selects.
    fn remove_memberships_of(&mut self, user_id: u64, pred: impl Fn(&Membership) -> bool) {
        let teams: Vec<u64> = self
            .memberships_of(user_id)
            .filter(|(_, m)| pred(m))
            .map(|(t, _)| t)
            .collect();
        for team_id in teams {
            self.remove_membership(team_id, user_id);
        }
    }

    /// Adds or updates a membership; returns its id. A new primary replaces the old one.
    pub(super) fn add_membership(&mut self, team_id: u64, user_id: u64, primary: bool) -> u64 {
        if primary {
            self.set_primary_team(user_id, Some(team_id));
        }
        if let Some(existing) = self.memberships.get(&(team_id, user_id)) {
            return existing.id;
        }
        self.put_membership(team_id, user_id, primary)
    }

    /// Sets (or clears) the primary team; the old primary membership is removed.
    pub(super) fn set_primary_team(&mut self, user_id: u64, team_id: Option<u64>) {
        if self.primary_team_of(user_id) == team_id {
            return;
        }
        self.remove_memberships_of(user_id, |m| m.primary);
        if let Some(team_id) = team_id {
            match self.memberships.get_mut(&(team_id, user_id)) {
                Some(m) => m.primary = true,
                None => {
                    self.put_membership(team_id, user_id, true);
                }
            }
        }
    }

    /// Replaces the secondary teams (the primary team is kept).
    pub(super) fn set_secondary_teams(&mut self, user_id: u64, team_ids: &[u64]) {
        self.remove_memberships_of(user_id, |m| !m.primary);
        for &team_id in team_ids {
            if !self.memberships.contains_key(&(team_id, user_id)) {
                self.put_membership(team_id, user_id, false);
            }
        }
    }

    /// Deletes a user and every reference to it.
    pub(super) fn delete_user(&mut self, id: u64) -> bool {
        let Some(user) = self.users.remove(&id) else {
            return false;
        };
        self.index.remove_user(&user);
        self.remove_memberships_of(id, |_| true);
        // Manager references are not indexed; deletes are rare, so a sweep is fine.
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
        let Some(team) = self.teams.remove(&id) else {
            return false;
        };
        self.index.remove_team(&team);
        for user_id in self.team_user_ids(id) {
            self.remove_membership(id, user_id);
        }
        let children: Vec<u64> = self.sub_team_ids(id).collect();
        for child in children {
            self.update_team(child, |t| t.parent_team_id = None);
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

    /// The indexes rebuilt from scratch (tests compare them with the maintained ones).
    #[cfg(test)]
    fn rebuilt_index(&self) -> Indexes {
        let mut index = Indexes::default();
        for user in self.users.values() {
            index.add_user(user);
        }
        for team in self.teams.values() {
            index.add_team(team);
        }
        for (team_id, user_id) in self.memberships.keys() {
            index.add_membership(*team_id, *user_id);
        }
        index
    }

    /// Panics when a maintained index differs from one rebuilt from scratch.
    #[cfg(test)]
    pub(super) fn assert_indexes_consistent(&self) {
        assert_eq!(
            self.index,
            self.rebuilt_index(),
            "learnamp sim indexes drifted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(inner: &mut Inner, name: &str) -> u64 {
        let id = inner.take_team_id();
        inner.insert_team(TeamRec::new(id, name));
        id
    }

    fn set_parent(inner: &mut Inner, team: u64, parent: Option<u64>) {
        inner
            .update_team(team, |t| t.parent_team_id = parent)
            .expect("team");
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
        inner.assert_indexes_consistent();
    }

    #[test]
    fn deleting_a_team_keeps_its_users() {
        let mut inner = Inner::default();
        let user = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let t1 = team(&mut inner, "one");
        inner.add_membership(t1, user, true);
        assert!(inner.delete_team(t1));
        assert!(inner.contains_user(user));
        assert_eq!(inner.primary_team_of(user), None);
        inner.assert_indexes_consistent();
    }

    #[test]
    fn cycles_are_detected() {
        let mut inner = Inner::default();
        let a = team(&mut inner, "a");
        let b = team(&mut inner, "b");
        set_parent(&mut inner, b, Some(a));
        assert!(inner.would_cycle(a, b));
        assert!(inner.would_cycle(a, a));
        assert!(!inner.would_cycle(b, a));
    }

    #[test]
    fn email_lookups_follow_email_changes() {
        let mut inner = Inner::default();
        let a = inner.insert_confirmed_user("Ada@X.io", "A", "B", None);
        assert_eq!(inner.user_id_by_email("ada@x.io", true), Some(a));
        assert_eq!(inner.user_id_by_email("ADA@X.IO", false), Some(a));
        inner.update_user(a, |u| u.email = "ADA@x.io".to_string());
        assert_eq!(inner.user_id_by_email("ada@X.io", true), Some(a));
        inner.update_user(a, |u| u.email = "grace@y.io".to_string());
        assert_eq!(inner.user_id_by_email("ada@x.io", false), None);
        assert_eq!(inner.user_ids_by_email("ada@x.io").count(), 0);
        assert_eq!(inner.user_id_by_email("Grace@Y.io", true), Some(a));
        // Only ASCII letters fold, as `eq_ignore_ascii_case` compares.
        inner.update_user(a, |u| u.email = "É@y.io".to_string());
        assert_eq!(inner.user_id_by_email("é@y.io", false), None);
        assert_eq!(inner.user_id_by_email("É@Y.IO", false), Some(a));
        inner.assert_indexes_consistent();
    }

    #[test]
    fn active_only_email_lookups_skip_deactivated_users() {
        let mut inner = Inner::default();
        let old = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let new = inner.insert_confirmed_user("A@x.io", "A", "B", None);
        assert_eq!(inner.user_id_by_email("a@x.io", true), Some(old));
        inner.update_user(old, |u| {
            u.set_status(SimUserStatus::Deactivated, Utc::now())
        });
        assert_eq!(inner.user_id_by_email("a@x.io", true), Some(new));
        assert_eq!(inner.user_id_by_email("a@x.io", false), Some(old));
        assert_eq!(
            inner.user_ids_with_statuses(&[SimUserStatus::Deactivated]),
            vec![old]
        );
        assert_eq!(
            inner.user_ids_with_statuses(&[
                SimUserStatus::Confirmed,
                SimUserStatus::Deactivated,
                SimUserStatus::Confirmed
            ]),
            vec![old, new]
        );
        assert!(inner.delete_user(old));
        assert_eq!(inner.user_id_by_email("a@x.io", false), Some(new));
        inner.assert_indexes_consistent();
    }

    #[test]
    fn external_id_lookups_follow_changes_and_deletes() {
        let mut inner = Inner::default();
        let a = inner.insert_confirmed_user("a@x.io", "A", "B", Some("p1"));
        assert_eq!(inner.user_id_by_ext("p1"), Some(a));
        inner.update_user(a, |u| u.integration_external_id = Some("p2".to_string()));
        assert_eq!(inner.user_id_by_ext("p1"), None);
        assert_eq!(inner.user_id_by_ext("p2"), Some(a));
        inner.update_user(a, |u| u.integration_external_id = None);
        assert_eq!(inner.user_id_by_ext("p2"), None);
        inner.update_user(a, |u| u.integration_external_id = Some("p3".to_string()));
        assert!(inner.delete_user(a));
        assert_eq!(inner.user_id_by_ext("p3"), None);
        assert_eq!(inner.user_id_by_email("a@x.io", false), None);
        inner.assert_indexes_consistent();
    }

    #[test]
    fn membership_indexes_follow_team_changes() {
        let mut inner = Inner::default();
        let user = inner.insert_confirmed_user("a@x.io", "A", "B", None);
        let other = inner.insert_confirmed_user("b@x.io", "A", "B", None);
        let t1 = team(&mut inner, "one");
        let t2 = team(&mut inner, "two");
        let t3 = team(&mut inner, "three");
        assert!(!inner.has_team(user));
        inner.set_primary_team(user, Some(t1));
        inner.set_secondary_teams(user, &[t2, t3]);
        inner.add_membership(t1, other, false);
        assert_eq!(inner.primary_team_of(user), Some(t1));
        assert_eq!(inner.secondary_teams_of(user), vec![t2, t3]);
        assert_eq!(inner.team_user_count(t1), 2);
        inner.assert_indexes_consistent();
        // A secondary team becomes primary, keeping its membership id.
        let before = inner.add_membership(t3, user, false);
        assert_eq!(inner.add_membership(t3, user, true), before);
        assert_eq!(inner.primary_team_of(user), Some(t3));
        assert_eq!(inner.secondary_teams_of(user), vec![t2]);
        assert_eq!(inner.team_user_count(t1), 1);
        assert!(inner.is_member(t1, other));
        inner.set_primary_team(user, None);
        assert_eq!(inner.primary_team_of(user), None);
        assert!(inner.has_team(user));
        assert!(inner.remove_membership(t2, user).is_some());
        assert!(inner.remove_membership(t2, user).is_none());
        assert!(!inner.has_team(user));
        assert_eq!(inner.team_user_count(t2), 0);
        inner.assert_indexes_consistent();
        inner.set_primary_team(user, Some(t2));
        assert!(inner.delete_user(user));
        assert_eq!(inner.team_user_count(t2), 0);
        assert!(!inner.has_team(user));
        assert!(inner.delete_team(t1));
        assert!(!inner.has_team(other));
        assert_eq!(inner.team_user_count(t1), 0);
        inner.assert_indexes_consistent();
    }

    #[test]
    fn team_indexes_follow_renames_parents_and_deletes() {
        let mut inner = Inner::default();
        let a = team(&mut inner, "a");
        let b = team(&mut inner, "b");
        let c = team(&mut inner, "b");
        assert_eq!(inner.team_id_by_name("b"), Some(b));
        inner.update_team(b, |t| {
            t.name = "bee".to_string();
            t.integration_external_id = Some("dep-b".to_string());
        });
        assert_eq!(inner.team_id_by_name("b"), Some(c));
        assert_eq!(inner.team_id_by_name("bee"), Some(b));
        assert_eq!(inner.team_id_by_ext("dep-b"), Some(b));
        set_parent(&mut inner, b, Some(a));
        set_parent(&mut inner, c, Some(a));
        assert_eq!(inner.sub_team_ids(a).collect::<Vec<_>>(), vec![b, c]);
        set_parent(&mut inner, c, Some(b));
        assert_eq!(inner.sub_team_ids(a).collect::<Vec<_>>(), vec![b]);
        inner.assert_indexes_consistent();
        assert!(inner.delete_team(b));
        assert_eq!(inner.team_id_by_ext("dep-b"), None);
        assert_eq!(inner.team_id_by_name("bee"), None);
        assert_eq!(inner.team(c).and_then(|t| t.parent_team_id), None);
        assert_eq!(inner.sub_team_ids(a).count(), 0);
        inner.assert_indexes_consistent();
    }

    #[test]
    fn indexes_survive_a_long_mixed_sequence() {
        let mut inner = Inner::default();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let teams: Vec<u64> = (0..6).map(|i| team(&mut inner, &format!("t{i}"))).collect();
        for step in 0..600 {
            let user = next(40) + 1;
            let team_id = teams[next(6) as usize];
            match next(9) {
                0 => {
                    inner.insert_confirmed_user(
                        &format!("U{}@x.io", next(30)),
                        "F",
                        "L",
                        Some(&format!("p{}", next(30))),
                    );
                }
                1 => {
                    let email = format!("u{}@X.io", next(30));
                    inner.update_user(user, |u| u.email = email);
                }
                2 => {
                    let ext = (next(3) > 0).then(|| format!("p{}", next(30)));
                    inner.update_user(user, |u| u.integration_external_id = ext);
                }
                3 => inner.set_primary_team(user, (next(4) > 0).then_some(team_id)),
                4 => inner.set_secondary_teams(user, &[team_id, teams[next(6) as usize]]),
                5 => {
                    inner.add_membership(team_id, user, next(2) == 0);
                }
                6 => {
                    inner.remove_membership(team_id, user);
                }
                7 => {
                    let status = SimUserStatus::ALL[next(5) as usize];
                    inner.update_user(user, |u| u.set_status(status, Utc::now()));
                }
                _ => {
                    if step % 5 == 0 {
                        inner.delete_user(user);
                    }
                }
            }
            inner.assert_indexes_consistent();
            let probe = format!("u{}@x.io", next(30));
            let scanned = inner
                .users()
                .values()
                .find(|u| {
                    u.email.eq_ignore_ascii_case(&probe) && u.status != SimUserStatus::Deactivated
                })
                .map(|u| u.id);
            assert_eq!(inner.user_id_by_email(&probe, true), scanned);
            let primaries = inner
                .memberships
                .iter()
                .filter(|((_, u), m)| *u == user && m.primary)
                .count();
            assert!(primaries <= 1, "at most one primary team");
        }
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
