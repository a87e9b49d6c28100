//! What `personio-sync tenants …` prints for a person to read at a glance: aligned
//! columns, `-` for nothing, times shortened to the minute.

use crate::actors::status::TenantView;
use crate::domain::report::SyncReport;
use crate::http::people::{InvitationState, LearnAmpStatus, PeoplePage, PersonDetail};
use crate::store::PersonChange;

/// Renders `rows` under `header`, each column as wide as its widest cell, two spaces
/// apart, without trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|cell| width(cell)).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (column, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if column + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[column] - width(cell) + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// `2026-12-07T04:05:06.123+00:00` → `2026-12-07 04:05`; `-` for none.
fn short_time(at: Option<&str>) -> String {
    match at {
        Some(at) if at.len() >= 16 => format!("{} {}", &at[..10], &at[11..16]),
        Some(at) => at.to_string(),
        None => "-".into(),
    }
}

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

/// A serde enum's wire name (`not_invited`).
fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `tenants list`.
pub fn tenants(views: &[TenantView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|view| {
            let sync = view.last_sync.as_ref();
            let progress = view.progress.map(|progress| match progress.total {
                Some(total) => format!("{} {}/{}", wire(&progress.phase), progress.done, total),
                None => wire(&progress.phase),
            });
            vec![
                view.id.clone(),
                wire(&view.state),
                view.employees.to_string(),
                view.pending_events.to_string(),
                short_time(sync.map(|sync| sync.finished_at.as_str())),
                or_dash(sync.map(|sync| sync.failed)),
                or_dash(progress),
                or_dash(view.last_error.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATE",
            "USERS",
            "PENDING",
            "LAST SYNC",
            "FAILED",
            "PROGRESS",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// The counts of a full sync, as `last_sync` has them.
pub fn sync_counts(report: &SyncReport) -> String {
    let counts = [
        report.created,
        report.updated,
        report.deactivated,
        report.reactivated,
        report.invited,
        report.unchanged,
        report.failed,
    ];
    table(
        &[
            "created",
            "updated",
            "deactivated",
            "reactivated",
            "invited",
            "unchanged",
            "failed",
        ],
        &[counts.iter().map(u64::to_string).collect()],
    )
}

/// `tenants people`.
pub fn people(page: &PeoplePage) -> String {
    let rows: Vec<Vec<String>> = page
        .people
        .iter()
        .map(|person| {
            let invitation = match person.invitation {
                InvitationState::None => "-".to_string(),
                state => match &person.invitation_at {
                    Some(at) => format!("{} {}", wire(&state), short_time(Some(at))),
                    None => wire(&state),
                },
            };
            vec![
                person.personio_id.clone(),
                or_dash(person.name.as_deref()),
                or_dash(person.email.as_deref()),
                or_dash(person.personio_status.as_deref()),
                or_dash(person.learnamp_id),
                or_dash(
                    person
                        .learnamp_status
                        .map(|status: LearnAmpStatus| wire(&status)),
                ),
                invitation,
                short_time(person.last_change_at.as_deref()),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "PERSONIO ID",
            "NAME",
            "EMAIL",
            "PERSONIO",
            "LEARN AMP ID",
            "LEARN AMP",
            "INVITATION",
            "LAST CHANGE",
        ],
        &rows,
    );
    if page.people.is_empty() {
        out.push_str("(nobody matches)\n");
    }
    if let Some(cursor) = &page.next_cursor {
        out.push_str(&format!("more: add --cursor {cursor}\n"));
    }
    out
}

/// The lines of one history entry's fields: `jobTitle: Tester → Lead`.
fn changes(change: &PersonChange) -> Vec<String> {
    change
        .fields
        .iter()
        .map(|(field, values)| {
            let shown = |value: Option<&str>| match value {
                None => "-".to_string(),
                Some("") => "\"\"".to_string(),
                Some(value) => value.to_string(),
            };
            let (before, after) = (
                shown(values.before.as_deref()),
                shown(values.after.as_deref()),
            );
            format!("{field}: {before} → {after}")
        })
        .collect()
}

/// `tenants history`: the person, then their writes newest first, one field per line.
pub fn history(person: &PersonDetail) -> String {
    let summary = &person.person;
    let mut out = format!(
        "{} ({}), Personio {} {}; Learn Amp {} {}; invitation {}{}\n\n",
        or_dash(summary.name.as_deref()),
        or_dash(summary.email.as_deref()),
        summary.personio_id,
        or_dash(summary.personio_status.as_deref()),
        or_dash(summary.learnamp_id),
        or_dash(summary.learnamp_status.map(|status| wire(&status))),
        wire(&summary.invitation),
        summary
            .invitation_at
            .as_deref()
            .map(|at| format!(" {}", short_time(Some(at))))
            .unwrap_or_default(),
    );
    let mut rows = Vec::new();
    for change in &person.history {
        let lines = changes(change);
        let first = lines.first().cloned().unwrap_or_else(|| "-".into());
        rows.push(vec![
            short_time(Some(&change.at)),
            wire(&change.source),
            change.actions.join(", "),
            first,
        ]);
        for line in lines.into_iter().skip(1) {
            rows.push(vec![String::new(), String::new(), String::new(), line]);
        }
    }
    out.push_str(&table(&["TIME", "SOURCE", "ACTIONS", "FIELDS"], &rows));
    if person.history.is_empty() {
        out.push_str("(no write recorded)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChangeSource, FieldChange};

    #[test]
    fn columns_align_whatever_the_cell_widths() {
        let out = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "Björn Öst".into()],
                vec!["1234".into(), "-".into()],
            ],
        );
        assert_eq!(out, "ID    NAME\n1     Björn Öst\n1234  -\n");
    }

    #[test]
    fn counts_read_as_the_report_has_them() {
        let report = SyncReport {
            created: 12,
            invited: 3,
            failed: 1,
            ..SyncReport::default()
        };
        let out = sync_counts(&report);
        let lines: Vec<&str> = out.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        let values: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(header[0], "created");
        assert_eq!(values, ["12", "0", "0", "0", "3", "0", "1"]);
    }

    #[test]
    fn a_history_shows_each_field_before_and_after() {
        let change = PersonChange {
            at: "2026-12-07T04:05:06.789+00:00".into(),
            source: ChangeSource::Webhook,
            actions: vec!["update".into()],
            fields: [
                (
                    "jobTitle".to_string(),
                    FieldChange {
                        before: Some("Tester".into()),
                        after: Some("Lead".into()),
                    },
                ),
                (
                    "location".to_string(),
                    FieldChange {
                        before: None,
                        after: Some("Berlin".into()),
                    },
                ),
                (
                    "leaveDate".to_string(),
                    FieldChange {
                        before: Some("2027-01-31".into()),
                        after: Some(String::new()),
                    },
                ),
            ]
            .into(),
        };
        let detail = PersonDetail {
            person: crate::http::people::PersonSummary {
                personio_id: "7".into(),
                name: Some("Ann Doe".into()),
                email: Some("ann@ex.com".into()),
                personio_status: Some("active".into()),
                learnamp_id: Some(70),
                learnamp_status: Some(LearnAmpStatus::Invited),
                invitation: InvitationState::Sent,
                invitation_at: None,
                deactivation_at: None,
                last_change_at: Some(change.at.clone()),
            },
            history: vec![change],
        };
        let out = history(&detail);
        assert!(
            out.starts_with(
                "Ann Doe (ann@ex.com), Personio 7 active; Learn Amp 70 invited; invitation sent\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("2026-12-07 04:05  webhook  update   jobTitle: Tester → Lead\n"),
            "{out}"
        );
        assert!(out.contains("location: - → Berlin"), "{out}");
        assert!(out.contains("leaveDate: 2027-01-31 → \"\""), "{out}");
    }
}
