//! A running full sync's progress, as the tenant view shows it (`progress`): its phase
//! and, once the plan exists, the steps applied of the steps planned. Written with
//! atomics by the sync (one relaxed add per applied step, no lock, no store write) and
//! read by the admin API whenever it shows the view.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What a full sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Reading Personio's employees and Learn Amp's users and teams.
    Reading,
    /// Deciding every write.
    Planning,
    /// Carrying out the plan: `done` of `total` steps.
    Applying,
}

/// The view's `progress` during a full sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// What the sync is doing.
    pub phase: SyncPhase,
    /// Steps (people with something to write) applied so far.
    pub done: u64,
    /// Steps planned; `null` until the plan exists.
    pub total: Option<u64>,
}

/// No phase: no full sync is running.
const IDLE: u8 = 0;
/// `total` before the plan exists.
const UNKNOWN: u64 = u64::MAX;

/// A tenant's progress cell, shared by its sync (writer) and the views (reader).
#[derive(Debug)]
pub struct SyncProgress {
    phase: AtomicU8,
    done: AtomicU64,
    total: AtomicU64,
}

impl Default for SyncProgress {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(IDLE),
            done: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
        }
    }
}

impl SyncProgress {
    /// Enters `phase` (a new sync starts at [`SyncPhase::Reading`] with nothing done).
    pub fn enter(&self, phase: SyncPhase) {
        if phase == SyncPhase::Reading {
            self.done.store(0, Ordering::Relaxed);
            self.total.store(UNKNOWN, Ordering::Relaxed);
        }
        let code = match phase {
            SyncPhase::Reading => 1,
            SyncPhase::Planning => 2,
            SyncPhase::Applying => 3,
        };
        self.phase.store(code, Ordering::Release);
    }

    /// Enters [`SyncPhase::Applying`] with `total` steps planned.
    pub fn applying(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.enter(SyncPhase::Applying);
    }

    /// One more step applied (whatever its outcome).
    pub fn step_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The sync ended (or failed): the view shows `null` again.
    pub fn finish(&self) {
        self.phase.store(IDLE, Ordering::Release);
    }

    /// What the view shows: `None` outside a full sync.
    pub fn snapshot(&self) -> Option<Progress> {
        let phase = match self.phase.load(Ordering::Acquire) {
            1 => SyncPhase::Reading,
            2 => SyncPhase::Planning,
            3 => SyncPhase::Applying,
            _ => return None,
        };
        let total = Some(self.total.load(Ordering::Relaxed)).filter(|total| *total != UNKNOWN);
        let done = self.done.load(Ordering::Relaxed);
        Some(Progress {
            phase,
            done: total.map_or(done, |total| done.min(total)),
            total,
        })
    }
}

/// Ends the progress when dropped: a sync that returns early (an error, a guard) shows
/// `null` again all the same.
pub struct FinishOnDrop<'a>(pub Option<&'a SyncProgress>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(progress) = self.0 {
            progress.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_through_the_phases_and_ends_null() {
        let progress = SyncProgress::default();
        assert_eq!(progress.snapshot(), None);
        {
            let _guard = FinishOnDrop(Some(&progress));
            progress.enter(SyncPhase::Reading);
            assert_eq!(
                progress.snapshot(),
                Some(Progress {
                    phase: SyncPhase::Reading,
                    done: 0,
                    total: None
                })
            );
            progress.enter(SyncPhase::Planning);
            progress.applying(3);
            progress.step_done();
            assert_eq!(
                progress.snapshot(),
                Some(Progress {
                    phase: SyncPhase::Applying,
                    done: 1,
                    total: Some(3)
                })
            );
            progress.step_done();
            progress.step_done();
            progress.step_done();
            assert_eq!(progress.snapshot().unwrap().done, 3, "never past total");
        }
        assert_eq!(progress.snapshot(), None);
        // A new sync starts from nothing.
        progress.enter(SyncPhase::Reading);
        assert_eq!(progress.snapshot().unwrap().total, None);
        assert_eq!(progress.snapshot().unwrap().done, 0);
    }

    #[test]
    fn serialises_as_the_view_shows_it() {
        let progress = Progress {
            phase: SyncPhase::Applying,
            done: 2,
            total: Some(5),
        };
        assert_eq!(
            serde_json::to_value(progress).unwrap(),
            serde_json::json!({"phase": "applying", "done": 2, "total": 5})
        );
    }
}
