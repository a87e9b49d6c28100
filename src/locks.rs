//! Locking a `std::sync::Mutex` whose holder may have panicked.
//!
//! A panic while a guard is held poisons the mutex; `lock().unwrap()` would then turn
//! every later caller into a panic too, so one bad request would break every request
//! after it. The data behind our mutexes stays consistent across a panic (each
//! critical section is a read or a single update), so the guard is recovered instead.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the guard if an earlier holder panicked.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_mutex_still_locks() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let holder = mutex.clone();
        let panicked = std::thread::spawn(move || {
            let mut guard = holder.lock().unwrap();
            *guard = 2;
            panic!("a holder panics");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 2);
        *lock(&mutex) = 3;
        assert_eq!(*lock(&mutex), 3);
    }

    /// A bug that panics inside a status-board update must not turn every later
    /// request that reads the board (the admin API, the webhook front door) into a
    /// panic as well.
    #[test]
    fn a_panic_inside_a_board_update_leaves_the_board_usable() {
        use crate::actors::status::{TenantView, TenantViews};
        let board = TenantViews::default();
        board.insert(TenantView::starting("t", String::new()));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            board.update("t", |_| panic!("a bug inside an update"));
        }));
        assert!(panicked.is_err());
        assert!(board.view("t").is_some());
        board.event_stored("t");
        assert_eq!(board.pending_events("t"), 1);
        assert_eq!(board.views().len(), 1);
    }
}
