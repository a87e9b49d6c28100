//! Group commit: concurrent callers that need their writes durable share one
//! `flush_async`, so a burst of webhooks costs a few fsyncs, not one each.

use tokio::sync::{Mutex, watch};

use super::StoreError;

/// Outcome of the flushes so far: every write made before ticket `done` was requested
/// is durable, unless `failed`.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    done: u64,
    failed: bool,
}

/// Coalesces flush requests.
pub(super) struct GroupFlusher {
    db: sled::Db,
    tickets: std::sync::atomic::AtomicU64,
    progress: watch::Sender<Progress>,
    leader: Mutex<()>,
}

impl GroupFlusher {
    pub(super) fn new(db: sled::Db) -> Self {
        Self {
            db,
            tickets: std::sync::atomic::AtomicU64::new(0),
            progress: watch::Sender::new(Progress::default()),
            leader: Mutex::new(()),
        }
    }

    /// Returns once a flush that started after this call has completed.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
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
            // Whoever holds the leader lock flushes for everyone who asked before it
            // began; the others wait for its result or take over afterwards.
            if let Ok(leader) = self.leader.try_lock() {
                let covered = self.tickets.load(Ordering::SeqCst);
                // sled 0.34's `flush_async` can lose its wake-up under concurrency
                // (spacejam/sled#1241, #1308; seen here as a hung benchmark); the
                // blocking flush on the blocking pool does not.
                let db = self.db.clone();
                let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(result) => result.map(|_| ()),
                    Err(join_error) => Err(sled::Error::ReportableBug(join_error.to_string())),
                };
                let failed = result.is_err();
                if let Err(error) = result {
                    tracing::error!(error = %error, "storage flush failed");
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
