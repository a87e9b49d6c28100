//! What a tenant shows in its view: its state (a subscription problem overrides
//! `live`; errors are scrubbed of the tenant's secrets), its counts, and its parked
//! people.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::actors::status::{TenantState, TenantView, TenantViews};
use crate::domain::tenant::TenantSpec;
use crate::domain::{Employee, Secret};
use crate::store::{StoreError, TenantStore};
use crate::sync::live::drain::ParkedSummary;

/// A tenant's handle on its own view.
pub struct OwnView {
    id: String,
    views: Arc<TenantViews>,
    /// The tenant's secrets, kept out of everything the view shows.
    secrets: Vec<Secret>,
    /// Why the webhook subscription could not be ensured: while set, the tenant shows
    /// `degraded` with this message instead of `live`.
    pub subscription_problem: Option<String>,
    /// The view shows parked people.
    showing_parked: bool,
}

impl OwnView {
    /// The view of the tenant `spec` in `views`.
    pub fn new(spec: &TenantSpec, views: Arc<TenantViews>) -> Self {
        let secrets = spec.secrets();
        Self {
            id: spec.id.clone(),
            views,
            secrets,
            subscription_problem: None,
            showing_parked: false,
        }
    }

    /// Shows `state` with `last_error`; while the webhook subscription has a problem,
    /// `live` shows as `degraded` with that problem.
    pub fn set_state(&self, state: TenantState, last_error: Option<String>) {
        let (state, last_error) = match (&self.subscription_problem, state) {
            (Some(problem), TenantState::Live) => (TenantState::Degraded, Some(problem.clone())),
            _ => (state, last_error),
        };
        let last_error = last_error.map(|text| self.scrub(&text));
        self.update(|view| {
            view.state = state;
            view.last_error = last_error;
        });
    }

    /// `text` without the tenant's own secrets or anything that looks like one: what
    /// the view and the admin API's answers may show of an upstream error.
    pub fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        crate::domain::redact::scrub(text, &secrets)
    }

    /// Changes the view in place.
    pub fn update(&self, change: impl FnOnce(&mut TenantView)) {
        self.views.update(&self.id, change);
    }

    /// The view as it is now.
    pub fn current(&self) -> Option<TenantView> {
        self.views.view(&self.id)
    }

    /// Reloads the counts from the store into the view, with `pending` the events in
    /// the inbox (read by the caller); answers the active synced employees by Personio
    /// id (the live path's known employees).
    pub fn publish_counts(
        &self,
        store: &TenantStore,
        pending: u64,
    ) -> Result<HashMap<String, Employee>, StoreError> {
        let records = store.employees()?;
        let known = records
            .iter()
            .filter(|(_, record)| !record.deactivated)
            .filter_map(|(id, record)| {
                record
                    .employee
                    .clone()
                    .map(|employee| (id.clone(), employee))
            })
            .collect();
        // People waiting for their invitation day have a record but no user yet.
        let employees = records
            .iter()
            .filter(|(_, record)| record.is_linked())
            .count() as u64;
        let last_sync = store.last_sync()?;
        let unsupported = store.learnamp_unsupported()?;
        self.update(|view| {
            view.employees = employees;
            view.last_sync = last_sync;
            view.pending_events = pending;
            view.learnamp_unsupported = unsupported;
        });
        Ok(known)
    }

    /// Shows the assumed Learn Amp contracts found missing (after live updates and due
    /// work, without the full scan of [`Self::publish_counts`]).
    pub fn publish_unsupported(&self, store: &TenantStore) -> Result<(), StoreError> {
        let unsupported = store.learnamp_unsupported()?;
        self.update(|view| {
            view.learnamp_unsupported = unsupported;
        });
        Ok(())
    }

    /// Shows the parked people (`degraded` while there are any, `live` again once the
    /// last leaves); answers when the first of them is retried.
    pub fn show_parked(&mut self, parked: Option<ParkedSummary>) -> Option<Instant> {
        match parked {
            Some(ParkedSummary {
                count,
                example,
                retry_at,
            }) => {
                self.showing_parked = true;
                self.set_state(
                    TenantState::Degraded,
                    Some(format!(
                        "the updates of {count} people keep failing ({example}); their webhook events stay stored and are retried automatically while the others are applied"
                    )),
                );
                Some(retry_at)
            }
            None if self.showing_parked => {
                self.showing_parked = false;
                self.set_state(TenantState::Live, None);
                None
            }
            None => None,
        }
    }
}
