//! A tenant's rows held in memory by the node that owns the tenant: the sled-like
//! synchronous API the tenant store is written against, over a `BTreeMap`, plus the
//! changes not yet committed to PostgreSQL.
//!
//! Writes land in the map and in the dirty set at once; [`CachedTree::take_dirty`]
//! hands the dirty set to a commit and starts a new one, so writes made while that
//! commit is in flight are kept for the next one. A failed commit gives its changes
//! back with [`CachedTree::restore_dirty`], where a newer write of the same key wins.
//! Commits of one tree are serialised by [`CachedTree::commit_guard`]: an older value
//! of a key can never be committed after a newer one.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Changes of one commit: key to new value, `None` = removed.
pub(crate) type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A key and its value.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// Entries one lock of the map hands to an iterator.
const CHUNK: usize = 128;

/// The rows of one tenant with the changes not yet committed.
#[derive(Default)]
pub(crate) struct CachedTree {
    state: Mutex<State>,
    commit: tokio::sync::Mutex<()>,
    /// Set once the tree is no longer the tenant's (purged, or its lease lost): its
    /// changes are never committed.
    retired: AtomicBool,
}

#[derive(Default)]
struct State {
    rows: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Keys changed since the last [`CachedTree::take_dirty`]: the new value, `None`
    /// for a removal.
    dirty: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl State {
    fn set(&mut self, key: &[u8], value: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let old = match &value {
            Some(value) => {
                if self.rows.get(key) == Some(value) {
                    return Some(value.clone());
                }
                self.rows.insert(key.to_vec(), value.clone())
            }
            None => self.rows.remove(key),
        };
        if old.is_some() || value.is_some() {
            self.dirty.insert(key.to_vec(), value);
        }
        old
    }
}

impl CachedTree {
    /// A tree holding `rows`, all of them committed.
    pub(crate) fn new(rows: BTreeMap<Vec<u8>, Vec<u8>>) -> Self {
        Self {
            state: Mutex::new(State {
                rows,
                dirty: BTreeMap::new(),
            }),
            commit: tokio::sync::Mutex::new(()),
            retired: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.state().rows.get(key.as_ref()).cloned()
    }

    /// Whether `key` holds a value.
    pub(crate) fn contains_key(&self, key: impl AsRef<[u8]>) -> bool {
        self.state().rows.contains_key(key.as_ref())
    }

    /// Stores `value` under `key`; returns the previous value.
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        self.state().set(key.as_ref(), Some(value.into()))
    }

    /// Removes `key`; returns the previous value.
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.state().set(key.as_ref(), None)
    }

    /// Applies every change at once: no reader and no commit sees part of them.
    pub(crate) fn apply_batch(&self, changes: Changes) {
        let mut state = self.state();
        for (key, value) in changes {
            state.set(&key, value);
        }
    }

    /// Replaces the value under `key` by what `change` makes of it (`None` removes it)
    /// atomically, and returns the new value.
    pub(crate) fn update_and_fetch(
        &self,
        key: impl AsRef<[u8]>,
        mut change: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let key = key.as_ref();
        let mut state = self.state();
        let new = change(state.rows.get(key).map(Vec::as_slice));
        state.set(key, new.clone());
        new
    }

    /// Sets `key` to `new` (`None` removes it) only if it holds `old` now (`None`:
    /// absent); whether it did.
    pub(crate) fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> bool {
        let key = key.as_ref();
        let mut state = self.state();
        if state.rows.get(key).map(Vec::as_slice) != old {
            return false;
        }
        state.set(key, new);
        true
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(self: &Arc<Self>, prefix: impl AsRef<[u8]>) -> Entries {
        let prefix = prefix.as_ref().to_vec();
        Entries {
            tree: self.clone(),
            next: Bound::Included(prefix.clone()),
            prefix,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// Entries from `from` to the end, in key order.
    pub(crate) fn range(self: &Arc<Self>, from: Bound<Vec<u8>>) -> Entries {
        Entries {
            tree: self.clone(),
            next: from,
            prefix: Vec::new(),
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// Every entry, in key order.
    pub(crate) fn iter(self: &Arc<Self>) -> Entries {
        self.range(Bound::Unbounded)
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state().rows.len()
    }

    /// Whether the tree holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.state().rows.is_empty()
    }

    /// Whether changes wait for a commit.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.state().dirty.is_empty()
    }

    /// Marks the tree as no longer the tenant's and drops its uncommitted changes;
    /// writes through handles still held stay in memory only. Call it holding
    /// [`Self::commit_guard`], so no commit is in flight.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.state().dirty.clear();
    }

    /// Whether [`Self::retire`] was called.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Held by a commit from [`Self::take_dirty`] until its outcome is known.
    pub(crate) async fn commit_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.commit.lock().await
    }

    /// The changes since the last call, in key order; later writes start a new set.
    pub(crate) fn take_dirty(&self) -> Changes {
        std::mem::take(&mut self.state().dirty)
            .into_iter()
            .collect()
    }

    /// Gives back the changes of a commit that failed: they wait for the next one,
    /// except keys written again since (the newer value is the one to commit).
    pub(crate) fn restore_dirty(&self, changes: Changes) {
        let mut state = self.state();
        for (key, value) in changes {
            state.dirty.entry(key).or_insert(value);
        }
    }
}

/// A lazy iterator over a [`CachedTree`], reading [`CHUNK`] entries per lock: it sees
/// writes made while it runs past its position, as sled's iterators do.
pub(crate) struct Entries {
    tree: Arc<CachedTree>,
    next: Bound<Vec<u8>>,
    /// Only keys starting with it (empty: all).
    prefix: Vec<u8>,
    buffer: VecDeque<Entry>,
    done: bool,
}

impl Entries {
    /// The keys only.
    #[cfg(test)]
    pub(crate) fn keys(self) -> impl Iterator<Item = Vec<u8>> {
        self.map(|(key, _)| key)
    }

    /// The values only.
    #[cfg(test)]
    pub(crate) fn values(self) -> impl Iterator<Item = Vec<u8>> {
        self.map(|(_, value)| value)
    }

    fn refill(&mut self) {
        let state = self.tree.state();
        let start = std::mem::replace(&mut self.next, Bound::Unbounded);
        for (key, value) in state.rows.range((start, Bound::Unbounded)) {
            if !key.starts_with(&self.prefix) {
                self.done = true;
                break;
            }
            self.buffer.push_back((key.clone(), value.clone()));
            if self.buffer.len() == CHUNK {
                break;
            }
        }
        match self.buffer.back() {
            Some((last, _)) if self.buffer.len() == CHUNK => {
                self.next = Bound::Excluded(last.clone());
            }
            _ => self.done = true,
        }
    }
}

impl DoubleEndedIterator for Entries {
    /// Reads everything left at once (going backwards is rare: the newest entries).
    fn next_back(&mut self) -> Option<Entry> {
        while !self.done {
            self.refill();
        }
        self.buffer.pop_back()
    }
}

impl Iterator for Entries {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.buffer.is_empty() && !self.done {
            self.refill();
        }
        self.buffer.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, &str)]) -> Arc<CachedTree> {
        Arc::new(CachedTree::new(
            entries
                .iter()
                .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
                .collect(),
        ))
    }

    fn changes(list: &[(&str, Option<&str>)]) -> Changes {
        list.iter()
            .map(|(key, value)| {
                (
                    key.as_bytes().to_vec(),
                    value.map(|value| value.as_bytes().to_vec()),
                )
            })
            .collect()
    }

    fn keys(entries: Entries) -> Vec<String> {
        entries
            .keys()
            .map(|key| String::from_utf8(key).unwrap())
            .collect()
    }

    #[test]
    fn loaded_rows_are_clean_and_writes_are_dirty_in_key_order() {
        let tree = tree(&[("a", "1"), ("b", "2")]);
        assert!(!tree.is_dirty());
        assert_eq!(tree.get("a").as_deref(), Some(b"1".as_slice()));
        assert_eq!(tree.insert("c", b"3".to_vec()), None);
        assert_eq!(
            tree.insert("a", b"9".to_vec()).as_deref(),
            Some(b"1".as_slice())
        );
        assert_eq!(tree.remove("b").as_deref(), Some(b"2".as_slice()));
        assert_eq!(
            tree.remove("never"),
            None,
            "removing nothing changes nothing"
        );
        assert!(!tree.contains_key("b"));
        assert_eq!(
            tree.take_dirty(),
            changes(&[("a", Some("9")), ("b", None), ("c", Some("3"))])
        );
        assert!(!tree.is_dirty());
        assert_eq!(tree.take_dirty(), Vec::new());
    }

    #[test]
    fn writing_the_same_value_again_is_not_a_change() {
        let tree = tree(&[("a", "1")]);
        tree.insert("a", b"1".to_vec());
        assert!(!tree.is_dirty());
    }

    #[test]
    fn a_write_during_a_commit_is_kept_for_the_next_one() {
        let tree = tree(&[]);
        tree.insert("k", b"1".to_vec());
        let in_flight = tree.take_dirty();
        tree.insert("k", b"2".to_vec());
        tree.insert("other", b"x".to_vec());
        // The commit of "k" = 1 succeeded: the newer write still waits.
        drop(in_flight);
        assert_eq!(
            tree.take_dirty(),
            changes(&[("k", Some("2")), ("other", Some("x"))])
        );
    }

    #[test]
    fn a_failed_commit_gives_back_its_changes_but_newer_writes_win() {
        let tree = tree(&[("gone", "old")]);
        tree.insert("k", b"1".to_vec());
        tree.remove("gone");
        tree.insert("kept", b"a".to_vec());
        let failed = tree.take_dirty();
        tree.insert("k", b"2".to_vec());
        tree.restore_dirty(failed);
        assert_eq!(
            tree.take_dirty(),
            changes(&[("gone", None), ("k", Some("2")), ("kept", Some("a"))])
        );
        assert_eq!(tree.get("k").as_deref(), Some(b"2".as_slice()));
    }

    #[test]
    fn update_and_fetch_changes_atomically_and_can_remove() {
        let tree = tree(&[("n", "1")]);
        let new = tree.update_and_fetch("n", |old| {
            assert_eq!(old, Some(b"1".as_slice()));
            Some(b"2".to_vec())
        });
        assert_eq!(new.as_deref(), Some(b"2".as_slice()));
        assert_eq!(tree.update_and_fetch("n", |_| None), None);
        assert!(!tree.contains_key("n"));
        assert_eq!(
            tree.update_and_fetch("fresh", |old| old.map(<[u8]>::to_vec)),
            None
        );
        assert_eq!(tree.take_dirty(), changes(&[("n", None)]));
    }

    #[test]
    fn compare_and_swap_changes_only_the_expected_value() {
        let tree = tree(&[("k", "1")]);
        assert!(!tree.compare_and_swap("k", None, Some(b"2".to_vec())));
        assert!(!tree.compare_and_swap("k", Some(b"0"), None));
        assert!(!tree.is_dirty());
        assert!(tree.compare_and_swap("k", Some(b"1"), Some(b"2".to_vec())));
        assert!(tree.compare_and_swap("new", None, Some(b"n".to_vec())));
        assert!(tree.compare_and_swap("k", Some(b"2"), None));
        assert_eq!(
            tree.take_dirty(),
            changes(&[("k", None), ("new", Some("n"))])
        );
    }

    #[test]
    fn iterators_run_backwards_and_from_both_ends() {
        let tree = tree(&[]);
        for n in 0..(CHUNK + 10) {
            tree.insert(format!("k{n:05}"), vec![1]);
        }
        tree.insert("z", vec![1]);
        let newest: Vec<Vec<u8>> = tree
            .scan_prefix("k")
            .rev()
            .take(2)
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            newest,
            [
                format!("k{:05}", CHUNK + 9).into_bytes(),
                format!("k{:05}", CHUNK + 8).into_bytes()
            ]
        );
        let mut both = tree.scan_prefix("k");
        assert_eq!(both.next().unwrap().0, b"k00000");
        assert_eq!(
            both.next_back().unwrap().0,
            format!("k{:05}", CHUNK + 9).into_bytes()
        );
        assert_eq!(both.count(), CHUNK + 8);
    }

    #[test]
    fn a_batch_is_applied_whole() {
        let tree = tree(&[("a", "1")]);
        tree.apply_batch(changes(&[("a", None), ("b", Some("2"))]));
        assert_eq!(keys(tree.iter()), ["b"]);
        assert_eq!(tree.take_dirty(), changes(&[("a", None), ("b", Some("2"))]));
    }

    #[test]
    fn scans_stop_at_the_prefix_and_ranges_start_at_their_bound() {
        let tree = tree(&[
            ("emp\0a", "1"),
            ("emp\0b", "2"),
            ("emq", "x"),
            ("em", "y"),
            ("team\0z", "3"),
        ]);
        assert_eq!(keys(tree.scan_prefix("emp\0")), ["emp\0a", "emp\0b"]);
        assert_eq!(keys(tree.scan_prefix("zzz")), Vec::<String>::new());
        assert_eq!(
            keys(tree.range(Bound::Excluded(b"emp\0a".to_vec()))),
            ["emp\0b", "emq", "team\0z"]
        );
        assert_eq!(
            keys(tree.range(Bound::Included(b"emq".to_vec()))),
            ["emq", "team\0z"]
        );
        assert_eq!(tree.iter().count(), 5);
        assert_eq!(
            tree.scan_prefix("emp").values().collect::<Vec<_>>(),
            [b"1".to_vec(), b"2".to_vec()]
        );
    }

    #[test]
    fn iterators_cross_chunks_and_see_writes_ahead_of_them() {
        let tree = tree(&[]);
        for n in 0..(CHUNK * 2 + 5) {
            tree.insert(format!("k{n:05}"), vec![1]);
        }
        tree.insert("z", vec![1]);
        let mut entries = tree.scan_prefix("k");
        let first = entries.next().unwrap();
        assert_eq!(first.0, b"k00000");
        tree.insert(format!("k{:05}", CHUNK * 3), vec![2]);
        tree.remove(format!("k{:05}", CHUNK * 2));
        let rest: Vec<Entry> = entries.collect();
        assert_eq!(rest.len(), CHUNK * 2 + 5 - 1 - 1 + 1);
        assert!(rest.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(rest.last().unwrap().1, vec![2]);
        assert_eq!(tree.len(), CHUNK * 2 + 5 + 1);
        assert!(!tree.is_empty());
    }
}
