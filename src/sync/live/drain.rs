//! The inbox drain: applies a tenant's stored webhook events, oldest first, coalesced
//! per person, one round of at most [`DRAIN_BATCH`] events at a time.
//!
//! Durability: an event leaves the inbox only after its effect is stored. A person
//! whose update fails with a transient error is parked: their events stay stored and
//! are held back (so their order is kept) and they are retried with [`backoff`], while
//! everybody else's events are applied. A failed reconciliation (an event naming no
//! person) keeps its events and asks for a retry.
//!
//! The tenant actor runs the rounds and turns each [`Round`] into a state.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::clock::SharedClock;
use crate::domain::Employee;
use crate::store::StoreError;

use super::{Source, apply_person};
use crate::sync::{Applied, SyncContext, SyncError, run_full_sync};

/// Events drained per round.
pub const DRAIN_BATCH: usize = 256;

/// 1 s doubling to 5 min, ±25% jitter (many tenants or people failing together must
/// not retry in lockstep). Spaces the retries of parked people and of the tenant.
pub fn backoff(failures: u32) -> Duration {
    crate::retry::jittered_backoff(Duration::from_secs(1), failures, Duration::from_secs(300))
}

/// What the live path of one tenant keeps between drains.
#[derive(Default)]
pub struct LiveState {
    /// Active synced employees by Personio id (possible managers for live updates).
    pub known: HashMap<String, Employee>,
    /// People whose update keeps failing, by Personio id.
    parked: HashMap<String, Parked>,
}

/// A person whose update keeps failing with a transient error: their events stay in
/// the inbox, held back until `retry_at`, while the rest of the inbox flows.
struct Parked {
    /// Failed attempts in a row.
    failures: u32,
    /// When the person is tried again.
    retry_at: Instant,
    /// The last error, for the view.
    error: String,
}

/// The parked people, as the tenant shows them.
pub struct ParkedSummary {
    /// How many people are parked.
    pub count: usize,
    /// The first of them by id, with their last error.
    pub example: String,
    /// When the first of them is tried again.
    pub retry_at: Instant,
}

/// What the drain works with.
pub struct LiveContext<'a> {
    /// The tenant's sync context.
    pub sync: SyncContext<'a>,
    /// The same with clients that try once: parked people are retried with them, so a
    /// person who keeps failing costs one call per retry, not a whole retry cycle.
    pub once: SyncContext<'a>,
    /// When events count as applied (the webhook → Learn Amp latency metric).
    pub clock: SharedClock,
}

/// What one round of the drain did.
pub enum Round {
    /// Nothing is left to apply now; `parked` says who is held back, if anyone.
    Drained(Option<ParkedSummary>),
    /// A batch was handled; its applied events left the inbox.
    Applied(RoundReport),
    /// An error only an operator can fix stopped the drain; the batch stays stored.
    Stopped(SyncError),
}

/// The counts of a handled batch.
pub struct RoundReport {
    /// Users created.
    pub created: u64,
    /// Events that left the inbox.
    pub removed: u64,
    /// A reconciliation ran (an event named no person).
    pub reconciled: bool,
    /// The reconciliation failed transiently: its events stay stored; retry later.
    pub retry: Option<SyncError>,
}

impl LiveState {
    /// The parked people, if any.
    pub fn parked(&self) -> Option<ParkedSummary> {
        let retry_at = self.parked.values().map(|parked| parked.retry_at).min()?;
        let example = self
            .parked
            .iter()
            .min_by_key(|(person, _)| person.as_str())
            .map(|(person, parked)| format!("person {person}: {}", parked.error))
            .unwrap_or_default();
        Some(ParkedSummary {
            count: self.parked.len(),
            example,
            retry_at,
        })
    }

    /// Reloads the known-employee cache for a few people (after live updates), without
    /// a full scan of the store.
    pub fn refresh_known(
        &mut self,
        context: &SyncContext<'_>,
        people: &[String],
    ) -> Result<(), StoreError> {
        for person in people {
            match context.store.employee(person)? {
                Some(record) if !record.deactivated && record.employee.is_some() => {
                    if let Some(employee) = record.employee {
                        self.known.insert(person.clone(), employee);
                    }
                }
                _ => {
                    self.known.remove(person);
                }
            }
        }
        Ok(())
    }

    /// Applies the current Personio record of each person, a few at a time. The first
    /// transient or fatal error is returned; other per-person errors are logged.
    pub async fn apply_people(
        &self,
        context: &LiveContext<'_>,
        people: &[String],
    ) -> Result<u64, SyncError> {
        let results = self.apply_each(context, people, false).await;
        let mut first_blocking: Option<SyncError> = None;
        let mut created = 0;
        for (person, result) in results {
            if let Ok(applied) = &result {
                created += applied.created;
            }
            if let Err(error) = result {
                if error.is_transient() || error.is_fatal() {
                    first_blocking.get_or_insert(error);
                } else {
                    warn!(personio_id = %person, error = %error, "person not applied");
                    let _ = context
                        .sync
                        .store
                        .append_history(&format!("person {person} not applied: {error}"));
                }
            }
        }
        match first_blocking {
            Some(error) => Err(error),
            None => Ok(created),
        }
    }

    /// Applies the current Personio record (or, `from_snapshot`, the stored one) of
    /// each person, a few at a time, and gives each person's outcome. Parked people
    /// are tried once, without the clients' own retries.
    async fn apply_each(
        &self,
        context: &LiveContext<'_>,
        people: &[String],
        from_snapshot: bool,
    ) -> Vec<(String, Result<Applied, SyncError>)> {
        use futures::StreamExt;
        let known = &self.known;
        let parked = &self.parked;
        futures::stream::iter(people.iter().cloned())
            .map(|person| async move {
                let source = match known.get(&person) {
                    Some(employee) if from_snapshot => Source::Snapshot(Box::new(employee.clone())),
                    _ => Source::Fetch,
                };
                let context = if parked.contains_key(&person) {
                    &context.once
                } else {
                    &context.sync
                };
                let result = apply_person(context, &person, source, known).await;
                (person, result)
            })
            .buffer_unordered(context.sync.concurrency.max(1))
            .collect()
            .await
    }

    /// Runs one round: applies the oldest stored events (but those of people held
    /// back), re-plans the reports of the people applied, parks the people who failed
    /// and removes the events whose effect is stored.
    pub async fn drain_round(&mut self, context: &LiveContext<'_>) -> Result<Round, StoreError> {
        let store = context.sync.store;
        let now = Instant::now();
        let held: HashSet<String> = self
            .parked
            .iter()
            .filter(|(_, parked)| parked.retry_at > now)
            .map(|(person, _)| person.clone())
            .collect();
        let batch = store
            .pending_events_except(DRAIN_BATCH, |event| {
                event
                    .person_id
                    .as_ref()
                    .is_some_and(|person| held.contains(person))
            })
            .await?;
        if batch.is_empty() {
            self.parked.retain(|_, parked| parked.retry_at > now);
            return Ok(Round::Drained(self.parked()));
        }
        let mut people: Vec<String> = Vec::new();
        let mut needs_full_sync = false;
        for (_, event) in &batch {
            match &event.person_id {
                Some(person) if !people.contains(person) => people.push(person.clone()),
                Some(_) => {}
                None => needs_full_sync = true,
            }
        }
        let results = self.apply_each(context, &people, false).await;
        let mut applied: Vec<String> = Vec::new();
        let mut failed: Vec<(String, SyncError)> = Vec::new();
        let mut created = 0;
        for (person, result) in results {
            match result {
                Ok(done) => {
                    created += done.created;
                    applied.push(person);
                }
                Err(error) if error.is_fatal() => return Ok(Round::Stopped(error)),
                Err(error) if error.is_transient() => failed.push((person, error)),
                Err(error) => {
                    warn!(personio_id = %person, error = %error, "person not applied; the next reconciliation retries them");
                    let _ = store.append_history(&format!("person {person} not applied: {error}"));
                    applied.push(person);
                }
            }
        }
        // Reports of the people who changed may need a new manager field.
        self.refresh_known(&context.sync, &applied)?;
        // Re-plan from the stored snapshot the people just applied and their reports:
        // a manager written concurrently in this batch, or a changed manager, reaches
        // them now (no Personio call; nothing is written when nothing differs). A
        // report that fails keeps the events of the people that caused its re-plan.
        let reports: Vec<String> = self
            .known
            .values()
            .filter(|employee| {
                applied.contains(&employee.id)
                    || employee
                        .supervisor_id
                        .as_ref()
                        .is_some_and(|supervisor| applied.contains(supervisor))
            })
            .map(|employee| employee.id.clone())
            .collect();
        if !reports.is_empty() {
            for (report, result) in self.apply_each(context, &reports, true).await {
                let Err(error) = result else { continue };
                if error.is_fatal() {
                    return Ok(Round::Stopped(error));
                }
                if !error.is_transient() {
                    warn!(personio_id = %report, error = %error, "report not re-planned");
                    continue;
                }
                let supervisor = self
                    .known
                    .get(&report)
                    .and_then(|employee| employee.supervisor_id.clone());
                let causes: Vec<String> = applied
                    .iter()
                    .filter(|person| **person == report || Some(*person) == supervisor.as_ref())
                    .cloned()
                    .collect();
                applied.retain(|person| !causes.contains(person));
                failed.extend(
                    causes
                        .into_iter()
                        .map(|person| (person, SyncError::Actor(error.to_string()))),
                );
            }
        }
        for person in &applied {
            self.parked.remove(person);
        }
        for (person, error) in failed {
            let parked = self.parked.entry(person.clone()).or_insert(Parked {
                failures: 0,
                retry_at: now,
                error: String::new(),
            });
            parked.failures += 1;
            parked.retry_at = Instant::now() + backoff(parked.failures);
            parked.error = error.to_string();
            warn!(personio_id = %person, failures = parked.failures, error = %error, "person's update failed; their events stay stored and are retried");
        }
        let mut full_sync_failed = None;
        if needs_full_sync {
            info!("an event named no person: running a full reconciliation");
            match run_full_sync(&context.sync, false).await {
                Ok(_) => {}
                Err(error) if error.is_fatal() => return Ok(Round::Stopped(error)),
                Err(error) if error.is_transient() => full_sync_failed = Some(error),
                Err(error) => {
                    warn!(error = %error, "events not applied; the next reconciliation retries them")
                }
            }
        }
        let sequences: Vec<u64> = batch
            .iter()
            .filter(|(_, event)| match &event.person_id {
                Some(person) => applied.contains(person),
                None => full_sync_failed.is_none(),
            })
            .map(|(sequence, _)| *sequence)
            .collect();
        store.remove_events(&sequences).await?;
        crate::metrics::events_applied(context.sync.tenant_id, sequences.len() as u64);
        crate::metrics::webhooks_applied(
            batch
                .iter()
                .filter(|(sequence, _)| sequences.binary_search(sequence).is_ok())
                .map(|(_, event)| event.received_at.as_str()),
            context.clock.now(),
        );
        Ok(Round::Applied(RoundReport {
            created,
            removed: sequences.len() as u64,
            reconciled: needs_full_sync,
            retry: full_sync_failed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_retries_are_spread_not_in_lockstep() {
        for failures in [1u32, 4, 20] {
            let delays: std::collections::HashSet<Duration> =
                (0..50).map(|_| backoff(failures)).collect();
            assert!(delays.len() > 10, "{failures}: {delays:?}");
            assert!(
                delays
                    .iter()
                    .all(|delay| *delay <= Duration::from_secs(375))
            );
        }
    }
}
