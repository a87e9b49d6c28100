//! The people of a tenant, for operators and the integration pages: a searchable,
//! paged list (`GET /admin/tenants/{id}/employees`) and one person with their history
//! (`GET /admin/tenants/{id}/employees/{personio_id}`), read from the stored records.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::store::{EmployeeRecord, PersonChange, StoreError, TenantStore};

use super::AppState;
use super::error::{ApiError, ErrorBody};

/// People per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The most people one page may hold.
pub const MAX_LIMIT: usize = 500;

/// `?query=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Case-insensitive part of the name or email, or an exact Personio id; empty or
    /// absent: everyone.
    #[serde(default)]
    pub query: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// People per page, 1–500 (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The Learn Amp user's status as the service last wrote or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LearnAmpStatus {
    /// Active, no invitation sent.
    NotInvited,
    /// Active and invited (pending or confirmed).
    Invited,
    /// Deactivated.
    Deactivated,
}

/// Where a person's invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    /// No invitation planned (e.g. `manual` policy, or a leaver).
    None,
    /// Planned for `invitation_at` (the scheduler sends it then).
    Scheduled,
    /// A call was started and its outcome is not recorded yet (Learn Amp's status
    /// decides on the next apply; never sent twice).
    Started,
    /// Sent (or found sent); `invitation_at` is when, if the history still holds it.
    Sent,
}

/// One person of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PersonSummary {
    /// Personio employee id.
    pub personio_id: String,
    /// First and last name.
    pub name: Option<String>,
    /// Work email.
    pub email: Option<String>,
    /// Personio's status (`onboarding`, `active`, `leave`, `inactive`).
    pub personio_status: Option<String>,
    /// The linked Learn Amp user; `null` until created.
    pub learnamp_id: Option<u64>,
    /// The Learn Amp user's status; `null` until created.
    pub learnamp_status: Option<LearnAmpStatus>,
    /// Where the invitation stands.
    pub invitation: InvitationState,
    /// When the invitation is scheduled or was sent (RFC 3339).
    pub invitation_at: Option<String>,
    /// When the deactivation is scheduled (RFC 3339; termination-date rule).
    pub deactivation_at: Option<String>,
    /// The time of the last write to Learn Amp for this person (RFC 3339).
    pub last_change_at: Option<String>,
}

/// A page of people, ordered by Personio id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeoplePage {
    /// The people of this page.
    pub people: Vec<PersonSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One person with their history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PersonDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub person: PersonSummary,
    /// Every write to Learn Amp for this person, newest first (the last 100).
    pub history: Vec<PersonChange>,
}

/// Whether the person matches `query` (already lowercased): part of the name or
/// email, or the exact Personio id.
fn matches(personio_id: &str, summary: &Identity, query: &str) -> bool {
    query.is_empty()
        || personio_id == query
        || summary
            .name
            .as_deref()
            .is_some_and(|name| name.to_lowercase().contains(query))
        || summary
            .email
            .as_deref()
            .is_some_and(|email| email.to_lowercase().contains(query))
}

/// Who a record is about: the Personio snapshot, else the fields last written.
struct Identity {
    name: Option<String>,
    email: Option<String>,
    status: Option<String>,
}

fn identity(record: &EmployeeRecord) -> Identity {
    use crate::domain::fields::{EMAIL, FIRST_NAME, LAST_NAME};
    let snapshot = record.employee.as_ref();
    let first = snapshot
        .and_then(|employee| employee.first_name.clone())
        .or_else(|| record.applied.get(FIRST_NAME).cloned());
    let last = snapshot
        .and_then(|employee| employee.last_name.clone())
        .or_else(|| record.applied.get(LAST_NAME).cloned());
    let name = match (first, last) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (first, last) => first.or(last),
    };
    Identity {
        name,
        email: snapshot
            .and_then(|employee| employee.email.clone())
            .or_else(|| record.applied.get(EMAIL).cloned()),
        status: snapshot
            .and_then(|employee| employee.status.as_ref())
            .map(|status| status.as_str().to_string()),
    }
}

/// The summary of one record; reads the person's newest history entries.
fn summary(
    store: &TenantStore,
    personio_id: &str,
    record: &EmployeeRecord,
    identity: Identity,
) -> Result<PersonSummary, StoreError> {
    let last_change = store.last_person_change(personio_id)?;
    let (invitation, invitation_at) = if record.invited {
        let sent_at = if last_change
            .as_ref()
            .is_some_and(|change| change.actions.iter().any(|action| action == "invite"))
        {
            last_change.as_ref().map(|change| change.at.clone())
        } else {
            store
                .person_history(personio_id)?
                .into_iter()
                .find(|change| change.actions.iter().any(|action| action == "invite"))
                .map(|change| change.at)
        };
        (InvitationState::Sent, sent_at)
    } else if record.invite_started {
        (InvitationState::Started, None)
    } else if let Some(due) = record.invite_due {
        (InvitationState::Scheduled, Some(due.to_rfc3339()))
    } else {
        (InvitationState::None, None)
    };
    let learnamp_status = record.is_linked().then_some(if record.deactivated {
        LearnAmpStatus::Deactivated
    } else if record.invited {
        LearnAmpStatus::Invited
    } else {
        LearnAmpStatus::NotInvited
    });
    Ok(PersonSummary {
        personio_id: personio_id.to_string(),
        name: identity.name,
        email: identity.email,
        personio_status: identity.status,
        learnamp_id: record.is_linked().then_some(record.learnamp_id),
        learnamp_status,
        invitation,
        invitation_at,
        deactivation_at: record.deactivate_due.map(|due| due.to_rfc3339()),
        last_change_at: last_change.map(|change| change.at),
    })
}

/// One page of the people matching `query`, after `cursor`, at most `limit`.
pub fn page(
    store: &TenantStore,
    query: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<PeoplePage, StoreError> {
    let query = query.trim().to_lowercase();
    let mut people = Vec::new();
    let mut more = false;
    for entry in store.employees_after(cursor) {
        let (personio_id, record) = entry?;
        let identity = identity(&record);
        if !matches(&personio_id, &identity, &query) {
            continue;
        }
        if people.len() == limit {
            more = true;
            break;
        }
        people.push(summary(store, &personio_id, &record, identity)?);
    }
    let next_cursor = more
        .then(|| people.last().map(|person| person.personio_id.clone()))
        .flatten();
    Ok(PeoplePage {
        people,
        next_cursor,
    })
}

async fn tenant_store(state: &AppState, id: &str) -> Result<TenantStore, ApiError> {
    if state.views.view(id).is_none() {
        return Err(ApiError::TenantNotFound(id.to_string()));
    }
    Ok(state.store.tenant(id).await?)
}

/// The tenant's people, searched and paged.
#[utoipa::path(
    get,
    path = "/admin/tenants/{id}/employees",
    tag = "people",
    params(("id" = String, Path, description = "Tenant id"), PeopleQuery),
    responses(
        (status = 200, description = "A page of people, ordered by Personio id", body = PeoplePage),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "A query parameter is invalid (named)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn list_people(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PeopleQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PeoplePage>, ApiError> {
    let Query(query) = query.map_err(|error| ApiError::Invalid {
        field: "query".into(),
        message: error.body_text(),
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: format!("must be between 1 and {MAX_LIMIT}"),
        });
    }
    let store = tenant_store(&state, &id).await?;
    let search = query.query.unwrap_or_default();
    let cursor = query.cursor.filter(|cursor| !cursor.is_empty());
    // A search may read every record of a large tenant: off the async workers.
    let answer =
        tokio::task::spawn_blocking(move || page(&store, &search, cursor.as_deref(), limit))
            .await
            .map_err(|error| {
                ApiError::Unavailable(format!("the people search did not finish: {error}"))
            })??;
    Ok(Json(answer))
}

/// One person: mapping, Learn Amp status, invitation and history.
#[utoipa::path(
    get,
    path = "/admin/tenants/{id}/employees/{personio_id}",
    tag = "people",
    params(
        ("id" = String, Path, description = "Tenant id"),
        ("personio_id" = String, Path, description = "Personio employee id"),
    ),
    responses(
        (status = 200, description = "The person and their history, newest first", body = PersonDetail),
        (status = 404, description = "No such tenant, or no record of this person", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn show_person(
    State(state): State<AppState>,
    Path((id, personio_id)): Path<(String, String)>,
) -> Result<Json<PersonDetail>, ApiError> {
    let store = tenant_store(&state, &id).await?;
    let record = store.employee(&personio_id)?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "tenant `{id}` has no record of Personio person {personio_id}"
        ))
    })?;
    let person = summary(&store, &personio_id, &record, identity(&record))?;
    let history = store.person_history(&personio_id)?;
    Ok(Json(PersonDetail { person, history }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Employee;
    use crate::domain::employee::EmployeeStatus;
    use crate::store::{ChangeSource, Store};

    fn person(id: &str, first: &str, email: &str) -> EmployeeRecord {
        let mut employee = Employee::with_id(id);
        employee.first_name = Some(first.into());
        employee.last_name = Some("Doe".into());
        employee.email = Some(email.into());
        employee.status = Some(EmployeeStatus::Active);
        EmployeeRecord {
            learnamp_id: id.parse().unwrap(),
            employee: Some(employee),
            ..EmployeeRecord::default()
        }
    }

    async fn store() -> TenantStore {
        let store = Store::temporary().await.unwrap().tenant("t").await.unwrap();
        for n in 1..=25u32 {
            let record = person(&n.to_string(), &format!("Ann{n}"), &format!("a{n}@ex.com"));
            store.put_employee(&n.to_string(), &record).unwrap();
        }
        store
    }

    fn ids(page: &PeoplePage) -> Vec<&str> {
        page.people.iter().map(|p| p.personio_id.as_str()).collect()
    }

    #[tokio::test]
    async fn pages_walk_every_match_once_in_a_stable_order() {
        let store = store().await;
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = page(&store, "", cursor.as_deref(), 10).unwrap();
            assert!(page.people.len() <= 10);
            seen.extend(ids(&page).into_iter().map(str::to_string));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (1..=25).map(|n| n.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected);
        // An exact fit ends without a cursor to an empty page.
        let all = page(&store, "", None, 25).unwrap();
        assert_eq!((all.people.len(), all.next_cursor), (25, None));
    }

    #[tokio::test]
    async fn searches_name_and_email_case_insensitively_and_ids_exactly() {
        let store = store().await;
        assert_eq!(ids(&page(&store, "A7@EX", None, 10).unwrap()), ["7"]);
        assert_eq!(ids(&page(&store, "ann12 doe", None, 10).unwrap()), ["12"]);
        // "2" is an exact id, and part of no name or email but those with a 2.
        let twos = page(&store, "2", None, 50).unwrap();
        assert_eq!(ids(&twos), ["12", "2", "20", "21", "22", "23", "24", "25"]);
        // Paging a search: the cursor continues after the last match.
        let first = page(&store, "ann2", None, 3).unwrap();
        assert_eq!(ids(&first), ["2", "20", "21"]);
        let next = page(&store, "ann2", first.next_cursor.as_deref(), 3).unwrap();
        assert_eq!(ids(&next), ["22", "23", "24"]);
        assert!(page(&store, "nobody", None, 10).unwrap().people.is_empty());
    }

    #[tokio::test]
    async fn a_summary_shows_statuses_invitation_and_last_change() {
        let store = store().await;
        let mut record = person("3", "Cy", "c@ex.com");
        record.invited = true;
        store.put_employee("3", &record).unwrap();
        let change = PersonChange {
            at: "2026-12-07T01:02:03+00:00".into(),
            source: ChangeSource::FullSync,
            actions: vec!["create".into(), "invite".into()],
            fields: Default::default(),
        };
        store.append_person_change("3", &change).unwrap();
        let summary = &page(&store, "c@ex.com", None, 5).unwrap().people[0];
        assert_eq!(summary.name.as_deref(), Some("Cy Doe"));
        assert_eq!(summary.personio_status.as_deref(), Some("active"));
        assert_eq!(summary.learnamp_status, Some(LearnAmpStatus::Invited));
        assert_eq!(summary.invitation, InvitationState::Sent);
        assert_eq!(summary.invitation_at.as_deref(), Some(change.at.as_str()));
        assert_eq!(summary.last_change_at.as_deref(), Some(change.at.as_str()));
        // Waiting for its invitation day, no user yet.
        let due = chrono::Utc::now() + chrono::Days::new(3);
        let waiting = EmployeeRecord {
            invite_due: Some(due),
            ..EmployeeRecord::default()
        };
        store.put_employee("99", &waiting).unwrap();
        let summary = &page(&store, "99", None, 5).unwrap().people[0];
        assert_eq!(summary.learnamp_id, None);
        assert_eq!(summary.learnamp_status, None);
        assert_eq!(summary.invitation, InvitationState::Scheduled);
        assert_eq!(summary.invitation_at, Some(due.to_rfc3339()));
    }
}
