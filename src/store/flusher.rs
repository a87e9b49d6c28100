//! Group commit: concurrent callers that need their writes durable share one flush,
//! so a burst of webhooks costs a few fsyncs, not one each. Webhook events are handed
//! over rather than written by each caller: the flush leader stores all events of one
//! tenant that arrived together as one value (`inbox.rs`), then flushes, so a burst
//! costs a few inserts too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Mutex, watch};

use super::StoreError;
use super::backend::Backend;
use super::inbox::InboxEvent;
use crate::locks::lock;

/// Outcome of the flushes so far: every ticket up to `done` has been through a flush;
/// it is durable unless it falls in one of the `failures`.
#[derive(Clone, Debug, Default)]
struct Progress {
    done: u64,
    /// The ticket ranges `(after, through]` of the most recent failed flushes, oldest
    /// first (at most [`KEPT_FAILURES`]). A flush that failed must fail every caller it
    /// covered, even one that looks only after a later flush has succeeded.
    failures: std::collections::VecDeque<(u64, u64)>,
    /// Tickets up to this one may have been in a failed flush no longer kept: they
    /// are answered as failed (the sender retries; processing is idempotent).
    forgotten_through: u64,
}

/// At most this many yields while a leader gathers its batch.
const GATHER_ROUNDS: usize = 4;

/// How many failed flushes [`Progress`] remembers.
const KEPT_FAILURES: usize = 64;

impl Progress {
    /// Records a flush that covered the tickets `(self.done, covered]`.
    fn record(&mut self, covered: u64, failed: bool) {
        if covered <= self.done {
            return;
        }
        if failed {
            self.failures.push_back((self.done, covered));
            if self.failures.len() > KEPT_FAILURES
                && let Some((_, through)) = self.failures.pop_front()
            {
                self.forgotten_through = through;
            }
        }
        self.done = covered;
    }

    /// `None` while `ticket` has not been through a flush, else whether it is durable.
    fn outcome(&self, ticket: u64) -> Option<bool> {
        if ticket > self.done {
            return None;
        }
        let failed = ticket <= self.forgotten_through
            || self
                .failures
                .iter()
                .any(|&(after, through)| after < ticket && ticket <= through);
        Some(!failed)
    }
}

/// Tickets handed out and the events waiting for the next flush; one lock, so the
/// leader that takes the events knows exactly which tickets they cover.
#[derive(Default)]
struct Queue {
    last_ticket: u64,
    events: Vec<(Arc<str>, InboxEvent)>,
}

/// Coalesces flush requests and webhook event writes.
pub(super) struct GroupFlusher {
    backend: Arc<Backend>,
    queue: std::sync::Mutex<Queue>,
    progress: watch::Sender<Progress>,
    leader: Arc<Mutex<()>>,
    /// Flushes done (diagnostics and tests).
    flushes: AtomicU64,
    /// Tenants deleted while the process runs: their events are dropped, never stored,
    /// so a delivery that passed the route check just before the delete cannot
    /// recreate the tenant's tree.
    /// Held across each commit, so a removal never runs while events are written.
    deleted: Mutex<std::collections::HashSet<String>>,
    /// Whether the last write-and-flush failed (`/healthz` answers 503 meanwhile).
    failing: AtomicBool,
    /// Tests: the next commits fail (as a full disk would) while this is set.
    #[cfg(test)]
    inject_failure: AtomicBool,
}

impl GroupFlusher {
    pub(super) fn new(backend: Arc<Backend>) -> Self {
        Self {
            backend,
            queue: std::sync::Mutex::new(Queue::default()),
            progress: watch::Sender::new(Progress::default()),
            leader: Arc::new(Mutex::new(())),
            flushes: AtomicU64::new(0),
            deleted: Mutex::default(),
            failing: AtomicBool::new(false),
            #[cfg(test)]
            inject_failure: AtomicBool::new(false),
        }
    }

    /// Drops every later event of `id` until [`Self::undelete`]; while the returned
    /// guard lives no event write is in progress (the removal of `id` runs under it).
    pub(super) async fn deleting(
        &self,
        id: &str,
    ) -> tokio::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        let mut deleted = self.deleted.lock().await;
        deleted.insert(id.to_string());
        deleted
    }

    /// Stores events of `id` again (the tenant was created anew).
    pub(super) async fn undelete(&self, id: &str) {
        self.deleted.lock().await.remove(id);
    }

    fn ticket(&self, event: Option<(Arc<str>, InboxEvent)>) -> u64 {
        let mut queue = lock(&self.queue);
        queue.last_ticket += 1;
        queue.events.extend(event);
        queue.last_ticket
    }

    /// Returns once a flush that started after this call has completed.
    pub(super) async fn flush(self: &Arc<Self>) -> Result<(), StoreError> {
        let ticket = self.ticket(None);
        self.wait(ticket).await
    }

    /// Stores `event` in the inbox of `tenant_id` and returns once it is durable.
    pub(super) async fn append_event(
        self: &Arc<Self>,
        tenant_id: Arc<str>,
        event: InboxEvent,
    ) -> Result<(), StoreError> {
        let ticket = self.ticket(Some((tenant_id, event)));
        self.wait(ticket).await
    }

    /// Flushes done so far.
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Whether the most recent write-and-flush failed.
    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Lets the requests that are already being handled join the batch the new leader
    /// is about to take: yields while the queue keeps growing (a few rounds at most).
    /// Fewer, larger group commits cost less CPU per event than many small ones.
    async fn gather(&self) {
        let queued = || lock(&self.queue).last_ticket;
        let mut seen = queued();
        for _ in 0..GATHER_ROUNDS {
            tokio::task::yield_now().await;
            let now = queued();
            if now == seen {
                break;
            }
            seen = now;
        }
    }

    async fn wait(self: &Arc<Self>, ticket: u64) -> Result<(), StoreError> {
        let mut progress = self.progress.subscribe();
        loop {
            let outcome = progress.borrow_and_update().outcome(ticket);
            match outcome {
                Some(true) => return Ok(()),
                Some(false) => return Err(StoreError::FlushFailed),
                None => {}
            }
            // Whoever gets the leader lock starts a commit of everything queued; the
            // others wait for its result or take over afterwards. The commit runs in
            // its own task: a caller that goes away (its client hung up) must not take
            // the commit of everyone else's events with it.
            if let Ok(leader) = self.leader.clone().try_lock_owned() {
                let this = Arc::clone(self);
                tokio::spawn(async move { this.commit(leader).await });
            }
            if progress.changed().await.is_err() {
                return Err(StoreError::FlushFailed);
            }
        }
    }

    /// Writes and flushes everything queued, then announces which tickets it covered.
    async fn commit(&self, leader: tokio::sync::OwnedMutexGuard<()>) {
        self.gather().await;
        let (covered, events) = {
            let mut queue = lock(&self.queue);
            (queue.last_ticket, std::mem::take(&mut queue.events))
        };
        let result = {
            let deleted = self.deleted.lock().await;
            let events_by_tenant = by_tenant(events, &deleted);
            self.backend.commit_group(events_by_tenant).await
        };
        #[cfg(test)]
        let result = if self.inject_failure.load(Ordering::Relaxed) {
            Err(StoreError::FlushFailed)
        } else {
            result
        };
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let failed = result.is_err();
        self.failing.store(failed, Ordering::Relaxed);
        if let Err(error) = result {
            tracing::error!(error = %error, "storage write or flush failed");
        }
        // Release leadership before announcing: a caller woken by the announcement
        // whose write this commit did not cover must be able to lead the next one at
        // once, or it would wait for one that never comes.
        drop(leader);
        self.progress
            .send_modify(|state| state.record(covered, failed));
    }
}

/// The events of each tenant, in arrival order; events of deleted tenants are dropped.
fn by_tenant(
    events: Vec<(Arc<str>, InboxEvent)>,
    deleted: &std::collections::HashSet<String>,
) -> Vec<(Arc<str>, Vec<InboxEvent>)> {
    let mut by_tenant: Vec<(Arc<str>, Vec<InboxEvent>)> = Vec::new();
    let mut slots: std::collections::HashMap<Arc<str>, usize> = Default::default();
    for (tenant_id, event) in events {
        match slots.get(&tenant_id) {
            Some(&slot) => by_tenant[slot].1.push(event),
            None => {
                slots.insert(tenant_id.clone(), by_tenant.len());
                by_tenant.push((tenant_id, vec![event]));
            }
        }
    }
    by_tenant.retain(|(tenant_id, events)| {
        let keep = !deleted.contains(&**tenant_id);
        if !keep {
            tracing::warn!(tenant_id = %tenant_id, events = events.len(), "events of a deleted tenant dropped");
        }
        keep
    });
    by_tenant
}

#[cfg(test)]
mod tests {
    use super::super::conformance::on_every_raw_backend;
    use super::super::inbox::test_event as event;
    use super::*;

    #[test]
    fn a_failed_flush_fails_its_callers_even_after_a_later_one_succeeds() {
        let mut progress = Progress::default();
        assert_eq!(progress.outcome(1), None);
        progress.record(5, true);
        progress.record(9, false);
        assert_eq!(
            progress.outcome(3),
            Some(false),
            "covered by the failed flush"
        );
        assert_eq!(progress.outcome(5), Some(false));
        assert_eq!(progress.outcome(6), Some(true));
        assert_eq!(progress.outcome(9), Some(true));
        assert_eq!(progress.outcome(10), None);
        progress.record(7, false);
        assert_eq!(progress.done, 9, "an older flush changes nothing");
    }

    #[test]
    fn failures_beyond_those_kept_are_answered_as_failed() {
        let mut progress = Progress::default();
        progress.record(2, false);
        for index in 0..=KEPT_FAILURES as u64 {
            progress.record(3 + index, true);
        }
        progress.record(1000, false);
        assert_eq!(progress.failures.len(), KEPT_FAILURES);
        assert_eq!(progress.outcome(3), Some(false), "forgotten, so failed");
        assert_eq!(
            progress.outcome(1),
            Some(false),
            "conservative below it too"
        );
        assert_eq!(progress.outcome(3 + KEPT_FAILURES as u64), Some(false));
        assert_eq!(progress.outcome(500), Some(true));
    }

    /// On one thread the order is fixed: the first caller leads, the second waits for
    /// it, and the first goes away (its client hung up) before its commit has run.
    #[tokio::test]
    async fn a_caller_that_goes_away_mid_commit_strands_nobody() {
        on_every_raw_backend(
            "a_caller_that_goes_away_mid_commit_strands_nobody",
            caller_goes_away,
        )
        .await;
    }

    async fn caller_goes_away(backend: Arc<Backend>) {
        let flusher = Arc::new(GroupFlusher::new(backend.clone()));
        let tenant: Arc<str> = Arc::from("acme");
        let mut first = Box::pin(flusher.append_event(tenant.clone(), event("1")));
        let mut second = Box::pin(flusher.append_event(tenant.clone(), event("2")));
        assert!(futures::poll!(first.as_mut()).is_pending());
        assert!(futures::poll!(second.as_mut()).is_pending());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(10), second)
            .await
            .expect("the second caller is answered")
            .expect("and its event is durable");
        let stored = backend.inbox_pending("acme", 10, &|_| false).await.unwrap();
        let people: Vec<_> = stored
            .iter()
            .filter_map(|(_, event)| event.person_id.clone())
            .collect();
        assert_eq!(people, ["1", "2"], "both events stored, in order");
    }

    #[tokio::test]
    async fn failing_flushes_show_until_one_succeeds() {
        on_every_raw_backend("failing_flushes_show_until_one_succeeds", failing_flushes).await;
    }

    async fn failing_flushes(backend: Arc<Backend>) {
        let flusher = Arc::new(GroupFlusher::new(backend));
        flusher.flush().await.unwrap();
        assert!(!flusher.failing());
        flusher.inject_failure.store(true, Ordering::Relaxed);
        assert!(flusher.flush().await.is_err());
        assert!(flusher.failing(), "shown while flushes fail");
        flusher.inject_failure.store(false, Ordering::Relaxed);
        flusher.flush().await.unwrap();
        assert!(!flusher.failing(), "cleared by a flush that succeeds");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_all_complete() {
        on_every_raw_backend("concurrent_flushes_all_complete", concurrent_flushes).await;
    }

    async fn concurrent_flushes(backend: Arc<Backend>) {
        let flusher = std::sync::Arc::new(GroupFlusher::new(backend.clone()));
        let mut tasks = Vec::new();
        for index in 0..50u32 {
            let flusher = flusher.clone();
            let backend = backend.clone();
            tasks.push(tokio::spawn(async move {
                backend
                    .meta_insert(&index.to_be_bytes(), b"x".to_vec())
                    .await
                    .unwrap();
                flusher.flush().await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(backend.meta_scan_prefix(b"").await.unwrap().len(), 50);
    }
}
