//! Secondary indexes over the simulator's state, so that each request costs O(log n)
//! rather than a scan.

use std::collections::{BTreeSet, HashMap};

use super::model::{SimUserStatus, TeamRec, UserRec};

/// Index slot of a status (the order of [`SimUserStatus::ALL`]).
pub(super) fn status_slot(status: SimUserStatus) -> usize {
    match status {
        SimUserStatus::NotInvited => 0,
        SimUserStatus::InviteScheduled => 1,
        SimUserStatus::InvitePending => 2,
        SimUserStatus::Confirmed => 3,
        SimUserStatus::Deactivated => 4,
    }
}

/// The key of the email index: ASCII case folded, as `eq_ignore_ascii_case` compares.
pub(super) fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// Adds `id` under `key` in a multimap.
pub(super) fn link<K: std::hash::Hash + Eq>(map: &mut HashMap<K, BTreeSet<u64>>, key: K, id: u64) {
    map.entry(key).or_default().insert(id);
}

/// Removes `id` from under `key` in a multimap, dropping the key when it empties.
pub(super) fn unlink<K, Q>(map: &mut HashMap<K, BTreeSet<u64>>, key: &Q, id: u64)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(ids) = map.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

/// Moves `id` from under `old` to under `new` in a multimap, when they differ (either
/// may be `None`: not indexed).
pub(super) fn relink<K: Clone + std::hash::Hash + Eq>(
    map: &mut HashMap<K, BTreeSet<u64>>,
    old: Option<&K>,
    new: Option<&K>,
    id: u64,
) {
    if old == new {
        return;
    }
    if let Some(old) = old {
        unlink(map, old, id);
    }
    if let Some(new) = new {
        link(map, new.clone(), id);
    }
}

/// Every key `(id, _)` of a map or set keyed by id pairs.
pub(super) fn pairs_of(id: u64) -> std::ops::RangeInclusive<(u64, u64)> {
    (id, 0)..=(id, u64::MAX)
}

/// Adds one to an id counter and returns the new id (1, 2, …).
pub(super) fn next_id(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter
}

/// The ids under `key` in a multimap, ascending.
pub(super) fn ids_under<'a, K, Q>(
    map: &'a HashMap<K, BTreeSet<u64>>,
    key: &Q,
) -> impl Iterator<Item = u64> + use<'a, K, Q>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    map.get(key).into_iter().flatten().copied()
}

/// The indexed fields of a user, captured before a mutation.
pub(super) struct UserKeys {
    pub(super) email: String,
    pub(super) external_id: Option<String>,
    pub(super) status: SimUserStatus,
}

impl UserKeys {
    pub(super) fn of(user: &UserRec) -> Self {
        Self {
            email: user.email.clone(),
            external_id: user.integration_external_id.clone(),
            status: user.status,
        }
    }
}

/// The indexed fields of a team, captured before a mutation.
pub(super) struct TeamKeys {
    pub(super) name: String,
    pub(super) external_id: Option<String>,
    pub(super) parent: Option<u64>,
}

impl TeamKeys {
    pub(super) fn of(team: &TeamRec) -> Self {
        Self {
            name: team.name.clone(),
            external_id: team.integration_external_id.clone(),
            parent: team.parent_team_id,
        }
    }
}

/// Secondary indexes over [`Inner`], so that each request costs O(log n) rather than a
/// scan. Every set is ascending by id, so "the first match by id" is the set's first
/// element, as the scans it replaces found it. Empty sets and zero counts are never kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Indexes {
    /// ASCII-lower-cased email → user ids (duplicates only arise from test inserts).
    pub(super) user_email: HashMap<String, BTreeSet<u64>>,
    /// Exact external id → user ids.
    pub(super) user_ext: HashMap<String, BTreeSet<u64>>,
    /// User ids by status slot.
    pub(super) user_status: [BTreeSet<u64>; 5],
    /// Exact external id → team ids.
    pub(super) team_ext: HashMap<String, BTreeSet<u64>>,
    /// Exact name → team ids.
    pub(super) team_name: HashMap<String, BTreeSet<u64>>,
    /// Parent team id → child team ids.
    pub(super) team_children: HashMap<u64, BTreeSet<u64>>,
    /// Every membership as (user id, team id).
    pub(super) user_teams: BTreeSet<(u64, u64)>,
    /// Member count by team id.
    pub(super) team_members: HashMap<u64, usize>,
}

impl Indexes {
    pub(super) fn add_user(&mut self, user: &UserRec) {
        link(&mut self.user_email, email_key(&user.email), user.id);
        if let Some(ext) = &user.integration_external_id {
            link(&mut self.user_ext, ext.clone(), user.id);
        }
        self.user_status[status_slot(user.status)].insert(user.id);
    }

    pub(super) fn remove_user(&mut self, user: &UserRec) {
        unlink(
            &mut self.user_email,
            email_key(&user.email).as_str(),
            user.id,
        );
        if let Some(ext) = &user.integration_external_id {
            unlink(&mut self.user_ext, ext.as_str(), user.id);
        }
        self.user_status[status_slot(user.status)].remove(&user.id);
    }

    /// Moves user `id` from its old keys to the current ones of `user`.
    pub(super) fn reindex_user(&mut self, before: &UserKeys, user: &UserRec) {
        let id = user.id;
        if before.email != user.email {
            let (old, new) = (email_key(&before.email), email_key(&user.email));
            relink(&mut self.user_email, Some(&old), Some(&new), id);
        }
        relink(
            &mut self.user_ext,
            before.external_id.as_ref(),
            user.integration_external_id.as_ref(),
            id,
        );
        if before.status != user.status {
            self.user_status[status_slot(before.status)].remove(&id);
            self.user_status[status_slot(user.status)].insert(id);
        }
    }

    pub(super) fn add_team(&mut self, team: &TeamRec) {
        link(&mut self.team_name, team.name.clone(), team.id);
        if let Some(ext) = &team.integration_external_id {
            link(&mut self.team_ext, ext.clone(), team.id);
        }
        if let Some(parent) = team.parent_team_id {
            link(&mut self.team_children, parent, team.id);
        }
    }

    pub(super) fn remove_team(&mut self, team: &TeamRec) {
        unlink(&mut self.team_name, team.name.as_str(), team.id);
        if let Some(ext) = &team.integration_external_id {
            unlink(&mut self.team_ext, ext.as_str(), team.id);
        }
        if let Some(parent) = team.parent_team_id {
            unlink(&mut self.team_children, &parent, team.id);
        }
    }

    /// Moves team `team.id` from its old keys to its current ones.
    pub(super) fn reindex_team(&mut self, before: &TeamKeys, team: &TeamRec) {
        let id = team.id;
        relink(
            &mut self.team_name,
            Some(&before.name),
            Some(&team.name),
            id,
        );
        relink(
            &mut self.team_ext,
            before.external_id.as_ref(),
            team.integration_external_id.as_ref(),
            id,
        );
        relink(
            &mut self.team_children,
            before.parent.as_ref(),
            team.parent_team_id.as_ref(),
            id,
        );
    }

    pub(super) fn add_membership(&mut self, team_id: u64, user_id: u64) {
        self.user_teams.insert((user_id, team_id));
        *self.team_members.entry(team_id).or_default() += 1;
    }

    pub(super) fn remove_membership(&mut self, team_id: u64, user_id: u64) {
        self.user_teams.remove(&(user_id, team_id));
        if let Some(count) = self.team_members.get_mut(&team_id) {
            *count -= 1;
            if *count == 0 {
                self.team_members.remove(&team_id);
            }
        }
    }
}
