//! The people pages: `/app/{tenant}/people` (searchable with `Search people`, paged)
//! and `/app/{tenant}/people/{personio_id}` (one person's history), both read through
//! the employees API's functions ([`crate::http::people`]).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{Layout, Session, render};
use crate::http::AppState;
use crate::http::people::{
    self as api, InvitationState, LearnAmpStatus, PersonDetail, PersonSummary,
};
use crate::store::ChangeSource;

/// People per page.
pub const PAGE_SIZE: usize = 50;

/// The people routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{tenant}/people", get(list))
        .route("/app/{tenant}/people/{personio_id}", get(person))
}

/// One row of the people table, in words.
#[derive(Debug, Clone)]
pub struct PersonRow {
    /// The history page.
    pub href: String,
    /// Name (or `Personio person {id}`).
    pub name: String,
    /// Email.
    pub email: String,
    /// Personio's status.
    pub personio_status: String,
    /// Learn Amp's status.
    pub learnamp_status: &'static str,
    /// The invitation in words, with its date.
    pub invitation: String,
    /// The last write.
    pub last_change: String,
}

/// `templates/app/people.html`.
#[derive(askama::Template)]
#[template(path = "app/people.html")]
pub struct PeoplePage {
    /// The layout.
    pub layout: Layout,
    /// The search form's action.
    pub action: String,
    /// The search text.
    pub query: String,
    /// The rows.
    pub rows: Vec<PersonRow>,
    /// The next page's link.
    pub next: Option<String>,
    /// The first page's link, when this is a later one.
    pub first: Option<String>,
}

/// One history entry, in words.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// When.
    pub at: String,
    /// Full sync, webhook, scheduler or administrator.
    pub source: &'static str,
    /// What was done.
    pub actions: String,
    /// `field: before → after`.
    pub fields: Vec<String>,
}

/// `templates/app/person.html`.
#[derive(askama::Template)]
#[template(path = "app/person.html")]
pub struct PersonPage {
    /// The layout.
    pub layout: Layout,
    /// The person as the list shows them.
    pub person: PersonRow,
    /// The People page.
    pub back: String,
    /// Every write, newest first.
    pub history: Vec<HistoryRow>,
}

fn learnamp_status(status: Option<LearnAmpStatus>) -> &'static str {
    match status {
        None => "Not created yet",
        Some(LearnAmpStatus::NotInvited) => "Active, not invited",
        Some(LearnAmpStatus::Invited) => "Active, invited",
        Some(LearnAmpStatus::Deactivated) => "Deactivated",
    }
}

/// A date in the tenant's time zone, e.g. `14 Dec 2026`.
fn local_day(rfc3339: &str, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| at.with_timezone(&tz).format("%-d %b %Y").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A summary's row; dates of invitations are shown as days in `tz`.
pub fn person_row(base: &str, person: &PersonSummary, tz: chrono_tz::Tz) -> PersonRow {
    let day = |at: &Option<String>| at.as_deref().map(|at| local_day(at, tz));
    let invitation = match (person.invitation, day(&person.invitation_at)) {
        (InvitationState::None, _) => "Not planned".to_string(),
        (InvitationState::Scheduled, Some(day)) => format!("Scheduled for {day}"),
        (InvitationState::Scheduled, None) => "Scheduled".into(),
        (InvitationState::Started, _) => "Being sent".into(),
        (InvitationState::Sent, Some(day)) => format!("Sent on {day}"),
        (InvitationState::Sent, None) => "Sent".into(),
    };
    PersonRow {
        href: format!("{base}/people/{}", person.personio_id),
        name: person
            .name
            .clone()
            .unwrap_or_else(|| format!("Personio person {}", person.personio_id)),
        email: person.email.clone().unwrap_or_default(),
        personio_status: person
            .personio_status
            .as_deref()
            .map(|status| {
                let mut words = status.replace('_', " ");
                if let Some(first) = words.get(..1) {
                    words = first.to_uppercase() + &words[1..];
                }
                words
            })
            .unwrap_or_else(|| "Unknown".into()),
        learnamp_status: learnamp_status(person.learnamp_status),
        invitation,
        last_change: person
            .last_change_at
            .as_deref()
            .map(super::display_time)
            .unwrap_or_else(|| "None".into()),
    }
}

fn source(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::FullSync => "Full sync",
        ChangeSource::Webhook => "Webhook",
        ChangeSource::Scheduler => "Scheduler",
        ChangeSource::Administrator => "Administrator",
    }
}

/// The history rows of a person.
pub fn history_rows(detail: &PersonDetail) -> Vec<HistoryRow> {
    detail
        .history
        .iter()
        .map(|change| HistoryRow {
            at: super::display_time(&change.at),
            source: source(change.source),
            actions: change.actions.join(", "),
            fields: change
                .fields
                .iter()
                .map(|(field, values)| {
                    let shown = |value: &Option<String>| match value.as_deref() {
                        None => "(unknown)".to_string(),
                        Some("") => "(empty)".to_string(),
                        Some(value) => value.to_string(),
                    };
                    if values.before.is_none() {
                        // A new or adopted user: nothing known before.
                        format!("{field}: {}", shown(&values.after))
                    } else {
                        format!(
                            "{field}: {} → {}",
                            shown(&values.before),
                            shown(&values.after)
                        )
                    }
                })
                .collect(),
        })
        .collect()
}

/// `?query=&cursor=`.
#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    cursor: Option<String>,
}

async fn tenant_tz(state: &AppState, tenant_id: &str) -> chrono_tz::Tz {
    state
        .store
        .tenant_spec(tenant_id)
        .await
        .ok()
        .flatten()
        .map_or(chrono_tz::UTC, |spec| spec.settings.tz())
}

fn unavailable() -> Response {
    super::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "The people cannot be shown right now",
        &["The service could not read its storage. Please try again in a minute."],
        None,
    )
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !super::connected(&state, &session.tenant_id) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let Query(query) = query.unwrap_or_default();
    let base = format!("/app/{}", session.tenant_id);
    let page = state
        .store
        .tenant(&session.tenant_id)
        .await
        .and_then(|store| api::page(&store, &query.query, query.cursor.as_deref(), PAGE_SIZE));
    let page = match page {
        Ok(page) => page,
        Err(error) => {
            tracing::error!(tenant_id = %session.tenant_id, error = %error, "people not readable");
            return unavailable();
        }
    };
    let tz = tenant_tz(&state, &session.tenant_id).await;
    let link = |cursor: Option<&str>| {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if !query.query.is_empty() {
            pairs.push(("query", &query.query));
        }
        if let Some(cursor) = cursor {
            pairs.push(("cursor", cursor));
        }
        let pairs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if pairs.is_empty() {
            format!("{base}/people")
        } else {
            format!("{base}/people?{pairs}")
        }
    };
    let page = PeoplePage {
        layout: Layout::app(&state, &session, "People", "people"),
        action: format!("{base}/people"),
        rows: page
            .people
            .iter()
            .map(|person| person_row(&base, person, tz))
            .collect(),
        next: page.next_cursor.as_deref().map(|cursor| link(Some(cursor))),
        first: query.cursor.is_some().then(|| link(None)),
        query: query.query.clone(),
    };
    render(&page)
}

async fn person(
    State(state): State<AppState>,
    session: Session,
    Path((_, personio_id)): Path<(String, String)>,
) -> Response {
    if !super::connected(&state, &session.tenant_id) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let base = format!("/app/{}", session.tenant_id);
    // The session's tenant, never the path's (the extractor checked they agree).
    let detail = api::show_person(
        State(state.clone()),
        Path((session.tenant_id.clone(), personio_id)),
    )
    .await;
    let detail = match detail {
        Ok(axum::Json(detail)) => detail,
        Err(crate::http::error::ApiError::NotFound(_)) => {
            return super::message(
                StatusCode::NOT_FOUND,
                "Person not found",
                &[
                    "The sync has no record of this person. They may be outside the people it syncs.",
                ],
                Some(super::Link {
                    href: format!("{base}/people"),
                    text: "Back to People".into(),
                }),
            );
        }
        Err(error) => {
            tracing::warn!(tenant_id = %session.tenant_id, error = %error, "person not readable");
            return unavailable();
        }
    };
    let tz = tenant_tz(&state, &session.tenant_id).await;
    let row = person_row(&base, &detail.person, tz);
    let page = PersonPage {
        layout: Layout::app(&state, &session, &row.name, "people"),
        history: history_rows(&detail),
        person: row,
        back: format!("{base}/people"),
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::{FieldChange, PersonChange};

    fn summary() -> PersonSummary {
        PersonSummary {
            personio_id: "42".into(),
            name: Some("Ann Doe".into()),
            email: Some("ann@example.com".into()),
            personio_status: Some("onboarding".into()),
            learnamp_id: Some(7),
            learnamp_status: Some(LearnAmpStatus::NotInvited),
            invitation: InvitationState::Scheduled,
            invitation_at: Some("2026-12-13T23:00:00+00:00".into()),
            deactivation_at: None,
            last_change_at: Some("2026-12-07T04:26:26+00:00".into()),
        }
    }

    #[test]
    fn a_row_says_the_invitation_day_in_the_tenants_zone() {
        let row = person_row("/app/acme", &summary(), chrono_tz::Europe::Berlin);
        assert_eq!(row.invitation, "Scheduled for 14 Dec 2026");
        assert_eq!(row.href, "/app/acme/people/42");
        assert_eq!(row.personio_status, "Onboarding");
        let row = person_row("/app/acme", &summary(), chrono_tz::UTC);
        assert_eq!(row.invitation, "Scheduled for 13 Dec 2026");
    }

    #[test]
    fn history_shows_source_and_before_after() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "jobTitle".to_string(),
            FieldChange {
                before: Some("Engineer".into()),
                after: Some("Lead".into()),
            },
        );
        let detail = PersonDetail {
            person: summary(),
            history: vec![PersonChange {
                at: "2026-12-07T04:26:26+00:00".into(),
                source: ChangeSource::Webhook,
                actions: vec!["update".into()],
                fields,
            }],
        };
        let rows = history_rows(&detail);
        assert_eq!(rows[0].source, "Webhook");
        assert_eq!(rows[0].fields, vec!["jobTitle: Engineer → Lead"]);
        let mut created = detail.history[0].clone();
        created.fields.get_mut("jobTitle").unwrap().before = None;
        let detail = PersonDetail {
            history: vec![created],
            ..detail
        };
        assert_eq!(history_rows(&detail)[0].fields, vec!["jobTitle: Lead"]);
    }
}
