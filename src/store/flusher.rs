//! Group commit: concurrent callers that need their writes durable share one flush,
//! so a burst of webhooks costs a few fsyncs, not one each. Webhook events are handed
//! over rather than written by each caller: the flush leader stores all events of one
//! tenant that arrived together as one value (`inbox.rs`), then flushes, so a burst
//! costs a few sled inserts too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, watch};

use super::StoreError;
use super::inbox::InboxEvent;

/// Outcome of the flushes so far: every write made before ticket `done` was requested
/// is durable, unless `failed`.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    done: u64,
    failed: bool,
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
    db: sled::Db,
    queue: std::sync::Mutex<Queue>,
    progress: watch::Sender<Progress>,
    leader: Mutex<()>,
    /// Flushes done (diagnostics and tests).
    flushes: AtomicU64,
}

impl GroupFlusher {
    pub(super) fn new(db: sled::Db) -> Self {
        Self {
            db,
            queue: std::sync::Mutex::new(Queue::default()),
            progress: watch::Sender::new(Progress::default()),
            leader: Mutex::new(()),
            flushes: AtomicU64::new(0),
        }
    }

    fn ticket(&self, event: Option<(Arc<str>, InboxEvent)>) -> u64 {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        queue.last_ticket += 1;
        queue.events.extend(event);
        queue.last_ticket
    }

    /// Returns once a flush that started after this call has completed.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.ticket(None);
        self.wait(ticket).await
    }

    /// Stores `event` in the inbox of `tenant_id` and returns once it is durable.
    pub(super) async fn append_event(
        &self,
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

    async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut progress = self.progress.subscribe();
        loop {
            let current = *progress.borrow_and_update();
            if current.done >= ticket {
                return if current.failed {
                    Err(StoreError::FlushFailed)
                } else {
                    Ok(())
                };
            }
            // Whoever holds the leader lock writes and flushes for everyone who asked
            // before it began; the others wait for its result or take over afterwards.
            if let Ok(leader) = self.leader.try_lock() {
                let (covered, events) = {
                    let mut queue = self
                        .queue
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner());
                    (queue.last_ticket, std::mem::take(&mut queue.events))
                };
                // sled 0.34's `flush_async` can lose its wake-up under concurrency
                // (spacejam/sled#1241, #1308; seen here as a hung benchmark); the
                // blocking flush on the blocking pool does not.
                let db = self.db.clone();
                let result =
                    match tokio::task::spawn_blocking(move || write_and_flush(&db, events)).await {
                        Ok(result) => result,
                        Err(join_error) => Err(StoreError::Sled(sled::Error::ReportableBug(
                            join_error.to_string(),
                        ))),
                    };
                self.flushes.fetch_add(1, Ordering::Relaxed);
                let failed = result.is_err();
                if let Err(error) = result {
                    tracing::error!(error = %error, "storage write or flush failed");
                }
                // Release leadership before announcing: a caller woken by the
                // announcement whose write this flush did not cover must be able to
                // lead the next flush at once, or it would wait for one that never comes.
                drop(leader);
                self.progress.send_modify(|state| {
                    if covered > state.done {
                        *state = Progress {
                            done: covered,
                            failed,
                        };
                    }
                });
                continue;
            }
            if progress.changed().await.is_err() {
                return Err(StoreError::FlushFailed);
            }
        }
    }
}

/// Stores the events of each tenant, in arrival order, then flushes the database.
fn write_and_flush(db: &sled::Db, events: Vec<(Arc<str>, InboxEvent)>) -> Result<(), StoreError> {
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
    for (tenant_id, events) in by_tenant {
        super::TenantStore::open(db, &tenant_id)?.append_events(&events)?;
    }
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_all_complete() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let flusher = std::sync::Arc::new(GroupFlusher::new(db.clone()));
        let mut tasks = Vec::new();
        for index in 0..50u32 {
            let flusher = flusher.clone();
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.insert(index.to_be_bytes(), b"x".as_slice()).unwrap();
                flusher.flush().await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(db.len(), 50);
    }
}
