//! One tenant's key-value tree, whatever the backend: sled-like synchronous methods
//! over owned bytes. Writes are not durable until the backend's flush (as sled's).

use std::ops::Bound;
use std::sync::Arc;

use super::StoreError;
use super::backend::postgres::CachedTree;

/// A key and its value.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// Entries in key order, read lazily where the backend can; reversible.
pub(crate) type Entries = Box<dyn DoubleEndedIterator<Item = Result<Entry, StoreError>> + Send>;

/// Writes applied together by [`Tree::apply_batch`]: all or none.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Each key with its new value (`None`: removed), in order.
    pub(crate) writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        self.writes
            .push((key.as_ref().to_vec(), Some(value.into())));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.writes.push((key.as_ref().to_vec(), None));
    }
}

/// One tenant's tree.
#[derive(Clone)]
pub(crate) enum Tree {
    /// A sled tree.
    Sled(sled::Tree),
    /// PostgreSQL rows cached in memory, committed by the backend.
    Cached(Arc<CachedTree>),
}

impl Tree {
    /// The value under `key`.
    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.get(key)?.map(|value| value.to_vec())),
            Self::Cached(tree) => Ok(tree.get(key)),
        }
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sled(tree) => {
                tree.insert(key, value.into())?;
                Ok(())
            }
            Self::Cached(tree) => {
                tree.insert(key, value);
                Ok(())
            }
        }
    }

    /// Removes `key` (nothing if absent).
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        match self {
            Self::Sled(tree) => {
                tree.remove(key)?;
                Ok(())
            }
            Self::Cached(tree) => {
                tree.remove(key);
                Ok(())
            }
        }
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.contains_key(key)?),
            Self::Cached(tree) => Ok(tree.contains_key(key)),
        }
    }

    /// Entries whose key starts with `prefix`.
    pub(crate) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Entries {
        match self {
            Self::Sled(tree) => sled_entries(tree.scan_prefix(prefix)),
            Self::Cached(tree) => cached_entries(tree.scan_prefix(prefix)),
        }
    }

    /// Entries from `from` to the end of the tree.
    pub(crate) fn range(&self, from: Bound<Vec<u8>>) -> Entries {
        match self {
            Self::Sled(tree) => sled_entries(tree.range::<Vec<u8>, _>((from, Bound::Unbounded))),
            Self::Cached(tree) => cached_entries(tree.range(from)),
        }
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> Entries {
        match self {
            Self::Sled(tree) => sled_entries(tree.iter()),
            Self::Cached(tree) => cached_entries(tree.iter()),
        }
    }

    /// Replaces the value under `key` by what `change` makes of it (`None`: removed),
    /// atomically (`change` may run more than once); returns the new value.
    pub(crate) fn update_and_fetch(
        &self,
        key: impl AsRef<[u8]>,
        change: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree
                .update_and_fetch(key, change)?
                .map(|value| value.to_vec())),
            Self::Cached(tree) => Ok(tree.update_and_fetch(key, change)),
        }
    }

    /// Sets `key` to `new` only if its value is `old` (`None`: absent); whether it did.
    pub(crate) fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sled(tree) => Ok(tree.compare_and_swap(key, old, new)?.is_ok()),
            Self::Cached(tree) => Ok(tree.compare_and_swap(key, old, new)),
        }
    }

    /// Applies every write of `batch` atomically.
    pub(crate) fn apply_batch(&self, batch: Batch) -> Result<(), StoreError> {
        match self {
            Self::Sled(tree) => {
                let mut sled_batch = sled::Batch::default();
                for (key, value) in batch.writes {
                    match value {
                        Some(value) => sled_batch.insert(key, value),
                        None => sled_batch.remove(key),
                    }
                }
                tree.apply_batch(sled_batch)?;
                Ok(())
            }
            Self::Cached(tree) => {
                tree.apply_batch(batch.writes);
                Ok(())
            }
        }
    }
}

fn cached_entries(entries: super::backend::postgres::cached_tree::Entries) -> Entries {
    Box::new(entries.map(Ok))
}

fn sled_entries(iter: sled::Iter) -> Entries {
    Box::new(iter.map(|entry| {
        let (key, value) = entry?;
        Ok((key.to_vec(), value.to_vec()))
    }))
}
