//! The settings page (`/app/{tenant}/settings`): `Invite new joiners` first, the rest of
//! the contract's settings in an Advanced section. A posted form becomes candidate
//! [`Settings`], checked by the same validation as `PATCH /admin/tenants/{id}`; a
//! change that would deactivate or invite anyone is first shown as a preview (the
//! dry-run plan with the candidate settings, writing nothing) and applied only on
//! `Confirm`. The preview is planned by the tenant's actor on the node that runs it
//! (through the cluster directory when another node answered the page). The previewed
//! settings travel in the confirm form, signed for this tenant and session with a key
//! derived from the store's secret key (so any node of the cluster takes the `Confirm`),
//! and are validated again on `Confirm`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::{CsrfForm, Layout, Session, render, render_status};
use crate::app::directory::{Command, FailureKind};
use crate::domain::tenant::{
    AttributeRule, Deactivation, FieldError, InvitePolicy, OutOfScope, Scope, Settings, TeamsMode,
};
use crate::http::AppState;
use crate::sync::plan::Plan;

/// How long the preview may take (the tenant answers after a running sync).
pub(crate) const PREVIEW_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the attribute list for the custom-field suggestions may take.
const ATTRIBUTES_TIMEOUT: Duration = Duration::from_secs(5);
/// Empty custom-field rows offered below the configured ones.
const EMPTY_CUSTOM_ROWS: usize = 2;

/// The settings routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{tenant}/settings", get(show).post(save))
        .route("/app/{tenant}/settings/confirm", post(confirm))
}

/// One custom-field row of the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomRow {
    /// The Personio attribute key.
    pub key: String,
    /// The Learn Amp custom field name.
    pub name: String,
}

/// The form's values as text (what the admin typed is shown again when it is invalid).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormValues {
    /// `immediately`, `on_hire_date`, `days_before_hire` or `manual`.
    pub invite: String,
    /// Days before the start date.
    pub days: String,
    /// IANA time zone.
    pub timezone: String,
    /// `on_status` or `on_termination_date`.
    pub deactivation: String,
    /// `department`, `department_and_team` or `none`.
    pub teams: String,
    /// Parent units become parent teams.
    pub team_hierarchy: bool,
    /// Remove empty teams the service created.
    pub remove_empty_teams: bool,
    /// Supervisor → manager.
    pub sync_managers: bool,
    /// Custom-field pairs (configured ones, then empty rows).
    pub custom: Vec<CustomRow>,
    /// Departments in scope, comma-separated.
    pub departments: String,
    /// Offices in scope, comma-separated.
    pub offices: String,
    /// Employment types in scope, comma-separated.
    pub employment_types: String,
    /// Attribute rule key.
    pub attribute_key: String,
    /// Attribute rule value.
    pub attribute_value: String,
    /// `deactivate` or `keep`.
    pub out_of_scope: String,
    /// Mass-deactivation ratio, 0–1.
    pub ratio: String,
}

fn join(list: &Option<Vec<String>>) -> String {
    list.as_ref()
        .map(|items| items.join(", "))
        .unwrap_or_default()
}

fn split(text: &str) -> Option<Vec<String>> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect();
    (!items.is_empty()).then_some(items)
}

impl FormValues {
    /// The form showing `settings`.
    pub fn of(settings: &Settings) -> Self {
        let (invite, days) = match settings.invite_policy {
            InvitePolicy::Immediately => ("immediately", String::new()),
            InvitePolicy::OnHireDate => ("on_hire_date", String::new()),
            InvitePolicy::DaysBeforeHire { days } => ("days_before_hire", days.to_string()),
            InvitePolicy::Manual => ("manual", String::new()),
        };
        let scope = settings.scope.clone().unwrap_or_default();
        let mut custom: Vec<CustomRow> = settings
            .custom_fields
            .iter()
            .map(|(key, name)| CustomRow {
                key: key.clone(),
                name: name.clone(),
            })
            .collect();
        custom.extend(std::iter::repeat_n(CustomRow::default(), EMPTY_CUSTOM_ROWS));
        Self {
            invite: invite.into(),
            days,
            timezone: settings.timezone.clone(),
            deactivation: match settings.deactivation {
                Deactivation::OnStatus => "on_status",
                Deactivation::OnTerminationDate => "on_termination_date",
            }
            .into(),
            teams: match settings.teams {
                TeamsMode::Department => "department",
                TeamsMode::DepartmentAndTeam => "department_and_team",
                TeamsMode::None => "none",
            }
            .into(),
            team_hierarchy: settings.team_hierarchy,
            remove_empty_teams: settings.remove_empty_teams,
            sync_managers: settings.sync_managers,
            custom,
            departments: join(&scope.departments),
            offices: join(&scope.offices),
            employment_types: join(&scope.employment_types),
            attribute_key: scope
                .attribute
                .as_ref()
                .map(|rule| rule.key.clone())
                .unwrap_or_default(),
            attribute_value: scope
                .attribute
                .as_ref()
                .map(|rule| rule.equals.clone())
                .unwrap_or_default(),
            out_of_scope: match settings.out_of_scope {
                OutOfScope::Deactivate => "deactivate",
                OutOfScope::Keep => "keep",
            }
            .into(),
            ratio: settings.max_deactivation_ratio.to_string(),
        }
    }

    /// The values of a posted form (field names as in `templates/app/settings.html`).
    pub fn posted(form: &HashMap<String, String>) -> Self {
        let text = |name: &str| {
            form.get(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let checked = |name: &str| form.contains_key(name);
        let mut custom = Vec::new();
        for index in 0.. {
            let (Some(key), Some(name)) = (
                form.get(&format!("custom_key_{index}")),
                form.get(&format!("custom_name_{index}")),
            ) else {
                break;
            };
            custom.push(CustomRow {
                key: key.trim().into(),
                name: name.trim().into(),
            });
        }
        Self {
            invite: text("invite"),
            days: text("days"),
            timezone: text("timezone"),
            deactivation: text("deactivation"),
            teams: text("teams"),
            team_hierarchy: checked("team_hierarchy"),
            remove_empty_teams: checked("remove_empty_teams"),
            sync_managers: checked("sync_managers"),
            custom,
            departments: text("departments"),
            offices: text("offices"),
            employment_types: text("employment_types"),
            attribute_key: text("attribute_key"),
            attribute_value: text("attribute_value"),
            out_of_scope: text("out_of_scope"),
            ratio: text("ratio"),
        }
    }

    /// The settings these values describe, checked by [`Settings::validate`]; an error
    /// names the form field (its element id) and what is wrong.
    pub fn settings(&self) -> Result<Settings, (String, String)> {
        let invite_policy = match self.invite.as_str() {
            "immediately" => InvitePolicy::Immediately,
            "on_hire_date" => InvitePolicy::OnHireDate,
            "days_before_hire" => {
                let days = self
                    .days
                    .parse::<u16>()
                    .ok()
                    .filter(|days| *days <= 365)
                    .ok_or_else(|| {
                        field_error("days", "Enter a whole number of days from 0 to 365.")
                    })?;
                InvitePolicy::DaysBeforeHire { days }
            }
            "manual" => InvitePolicy::Manual,
            _ => {
                return Err(field_error(
                    "invite",
                    "Choose when new joiners are invited.",
                ));
            }
        };
        let deactivation = match self.deactivation.as_str() {
            "on_status" => Deactivation::OnStatus,
            "on_termination_date" => Deactivation::OnTerminationDate,
            _ => {
                return Err(field_error(
                    "deactivation",
                    "Choose when leavers are deactivated.",
                ));
            }
        };
        let teams = match self.teams.as_str() {
            "department" => TeamsMode::Department,
            "department_and_team" => TeamsMode::DepartmentAndTeam,
            "none" => TeamsMode::None,
            _ => return Err(field_error("teams", "Choose which teams are created.")),
        };
        let out_of_scope = match self.out_of_scope.as_str() {
            "deactivate" => OutOfScope::Deactivate,
            "keep" => OutOfScope::Keep,
            _ => {
                return Err(field_error(
                    "out-of-scope",
                    "Choose what happens to people who leave the scope.",
                ));
            }
        };
        let ratio = self
            .ratio
            .parse::<f64>()
            .ok()
            .filter(|ratio| ratio.is_finite())
            .ok_or_else(|| field_error("ratio", "Enter a number from 0 to 1, such as 0.2."))?;
        let mut custom_fields = BTreeMap::new();
        for (index, row) in self.custom.iter().enumerate() {
            match (row.key.is_empty(), row.name.is_empty()) {
                (true, true) => {}
                (false, false) => {
                    if custom_fields
                        .insert(row.key.clone(), row.name.clone())
                        .is_some()
                    {
                        return Err(field_error(
                            &format!("custom-key-{index}"),
                            "This Personio attribute is mapped twice; keep one row.",
                        ));
                    }
                }
                (true, false) => {
                    return Err(field_error(
                        &format!("custom-key-{index}"),
                        "Enter the Personio attribute for this field, or clear the row.",
                    ));
                }
                (false, true) => {
                    return Err(field_error(
                        &format!("custom-name-{index}"),
                        "Enter the Learn Amp custom field name, or clear the row.",
                    ));
                }
            }
        }
        if self.attribute_key.is_empty() && !self.attribute_value.is_empty() {
            return Err(field_error(
                "attribute-key",
                "Enter the Personio attribute the value belongs to, or clear the value.",
            ));
        }
        let scope = Scope {
            departments: split(&self.departments),
            offices: split(&self.offices),
            employment_types: split(&self.employment_types),
            attribute: (!self.attribute_key.is_empty()).then(|| AttributeRule {
                key: self.attribute_key.clone(),
                equals: self.attribute_value.clone(),
            }),
        };
        let settings = Settings {
            invite_policy,
            timezone: self.timezone.clone(),
            deactivation,
            teams,
            team_hierarchy: self.team_hierarchy,
            remove_empty_teams: self.remove_empty_teams,
            sync_managers: self.sync_managers,
            custom_fields,
            scope: (scope != Scope::default()).then_some(scope),
            out_of_scope,
            max_deactivation_ratio: ratio,
        };
        settings.validate().map_err(form_field)?;
        Ok(settings)
    }
}

fn field_error(id: &str, message: &str) -> (String, String) {
    (id.to_string(), message.to_string())
}

/// The form field (element id) of a validation error, with its message as a sentence.
fn form_field(error: FieldError) -> (String, String) {
    let id = match error.field.as_str() {
        "settings.invite_policy.days" => "days",
        "settings.timezone" => "timezone",
        "settings.max_deactivation_ratio" => "ratio",
        "settings.custom_fields" => "custom-key-0",
        "settings.scope.attribute.key" => "attribute-key",
        _ => "invite",
    };
    let mut message = error.message;
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    (id.to_string(), message)
}

/// A suggestion of the attribute list.
#[derive(Debug, Clone)]
pub struct AttributeOption {
    /// The key.
    pub key: String,
    /// Personio's label.
    pub label: String,
}

/// `templates/app/settings.html`.
#[derive(askama::Template)]
#[template(path = "app/settings.html")]
pub struct SettingsPage {
    /// The layout.
    pub layout: Layout,
    /// The form's action and the CSRF token.
    pub action: String,
    /// The CSRF token.
    pub csrf: String,
    /// The values shown.
    pub values: FormValues,
    /// The invalid field's id and its message.
    pub error: Option<(String, String)>,
    /// A problem that is not one field's (the preview failed).
    pub problem: Option<String>,
    /// IANA time zone names (the searchable list).
    pub timezones: Vec<&'static str>,
    /// Personio's readable attributes (suggestions for custom fields and scope).
    pub attributes: Vec<AttributeOption>,
}

impl SettingsPage {
    /// The message of field `id`, if it is the invalid one.
    pub fn error_of(&self, id: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(field, _)| field == id)
            .map(|(_, message)| message.as_str())
    }

    /// ` aria-invalid="true" aria-describedby="{id}-error"` on the invalid field (ids
    /// are fixed names of the template, never input).
    pub fn invalid(&self, id: &str) -> String {
        if self.error_of(id).is_some() {
            format!(r#" aria-invalid="true" aria-describedby="{id}-error""#)
        } else {
            String::new()
        }
    }

    /// [`Self::invalid`] of row `index` of a repeated field (`custom-key`).
    pub fn invalid_row(&self, prefix: &str, index: &usize) -> String {
        self.invalid(&format!("{prefix}-{index}"))
    }

    /// [`Self::error_of`] of row `index` of a repeated field.
    pub fn row_error(&self, prefix: &str, index: &usize) -> Option<&str> {
        self.error_of(&format!("{prefix}-{index}"))
    }

    /// Whether the Advanced section starts open (its field is the invalid one).
    pub fn advanced_open(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|(field, _)| !matches!(field.as_str(), "invite" | "days"))
    }
}

/// One row of a preview table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreviewRow {
    /// Name (or the Personio id when unknown).
    pub name: String,
    /// Email.
    pub email: String,
    /// The row's detail: before → after, a reason or a date.
    pub detail: Vec<String>,
}

/// One table of the preview.
#[derive(Debug, Clone)]
pub struct PreviewSection {
    /// The heading.
    pub title: &'static str,
    /// The table's caption.
    pub caption: &'static str,
    /// The third column's header (`""`: no third column).
    pub detail: &'static str,
    /// The rows.
    pub rows: Vec<PreviewRow>,
}

/// `templates/app/preview.html`.
#[derive(askama::Template)]
#[template(path = "app/preview.html")]
pub struct PreviewPage {
    /// The layout.
    pub layout: Layout,
    /// The confirm action.
    pub action: String,
    /// The CSRF token.
    pub csrf: String,
    /// The candidate settings as JSON (carried to `Confirm`, validated again there).
    pub settings_json: String,
    /// [`sign_preview`] of `settings_json`.
    pub signature: String,
    /// The settings page.
    pub back: String,
    /// Invited, deactivated, created, updated.
    pub sections: Vec<PreviewSection>,
    /// What the tables hold, in one sentence.
    pub summary: String,
    /// People that need nothing.
    pub unchanged: u64,
}

/// What the preview page shows of a plan: built by the node that runs the tenant (this
/// one, or its owner, which answers it through the cluster directory as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preview {
    /// The change invites or deactivates someone: it is applied only on `Confirm`.
    pub needs_confirmation: bool,
    /// People who would be invited, and when.
    pub invited: Vec<PreviewRow>,
    /// People who would be deactivated, and when.
    pub deactivated: Vec<PreviewRow>,
    /// People who would get a Learn Amp user.
    pub created: Vec<PreviewRow>,
    /// People whose Learn Amp user would change.
    pub updated: Vec<PreviewRow>,
    /// [`preview_summary`].
    pub summary: String,
    /// People that need nothing.
    pub unchanged: u64,
}

impl Preview {
    /// The preview of `plan`, its dates shown in `timezone` (the candidate settings').
    pub fn of(plan: &Plan, timezone: chrono_tz::Tz) -> Self {
        let (created, updated, deactivated, invited) = preview_tables(plan, timezone);
        Self {
            needs_confirmation: needs_confirmation(plan),
            invited,
            deactivated,
            created,
            updated,
            summary: preview_summary(plan),
            unchanged: plan.unchanged,
        }
    }
}

/// `n people` / `1 person` / `nobody`.
fn people(count: usize) -> String {
    match count {
        0 => "nobody".into(),
        1 => "1 person".into(),
        n => format!("{n} people"),
    }
}

/// The preview's sentence: who would be invited (how many later), deactivated,
/// created, updated.
pub fn preview_summary(plan: &Plan) -> String {
    let view = plan.view();
    let later = view.scheduled_invitations.len();
    let invited = view.invitations.len() + later;
    let mut invite = format!("invite {}", people(invited));
    if later > 0 && later < invited {
        invite.push_str(&format!(" ({later} on a later day)"));
    } else if later > 0 {
        invite.push_str(" on a later day");
    }
    format!(
        "With the new settings the sync would {invite}, deactivate {}, create {} and update {}.",
        people(view.deactivations.len() + view.scheduled_deactivations.len()),
        people(view.creates.len()),
        people(view.updates.len()),
    )
}

/// The purpose of the key previews are signed with ([`crate::store::Store::derive_key`]:
/// every node of one database has the same, so a preview shown by one node is
/// confirmed through any other).
pub const PREVIEW_KEY_PURPOSE: &str = "settings-preview";

fn preview_mac(
    key: &[u8],
    tenant_id: &str,
    csrf: &str,
    settings_json: &str,
) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC accepts keys of any length");
    for part in [tenant_id, csrf, settings_json] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac
}

/// The signature of a previewed change under `key`, bound to the tenant and the session
/// (its CSRF token): `Confirm` applies only what this page previewed, in this session.
pub fn sign_preview(key: &[u8], tenant_id: &str, csrf: &str, settings_json: &str) -> String {
    use hmac::Mac;
    preview_mac(key, tenant_id, csrf, settings_json)
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `signature` is [`sign_preview`]'s for these values (constant time).
pub fn preview_signed(
    key: &[u8],
    tenant_id: &str,
    csrf: &str,
    settings_json: &str,
    signature: &str,
) -> bool {
    use hmac::Mac;
    let Some(bytes) = (0..signature.len())
        .step_by(2)
        .map(|at| {
            signature
                .get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    preview_mac(key, tenant_id, csrf, settings_json)
        .verify_slice(&bytes)
        .is_ok()
}

/// Whether a plan deactivates or invites anyone (now or later): the change needs a
/// confirmation.
pub fn needs_confirmation(plan: &Plan) -> bool {
    let view = plan.view();
    !(view.deactivations.is_empty()
        && view.invitations.is_empty()
        && view.scheduled_invitations.is_empty()
        && view.scheduled_deactivations.is_empty())
}

/// The preview's tables of a plan.
pub fn preview_tables(
    plan: &Plan,
    timezone: chrono_tz::Tz,
) -> (
    Vec<PreviewRow>,
    Vec<PreviewRow>,
    Vec<PreviewRow>,
    Vec<PreviewRow>,
) {
    let people: HashMap<&str, (String, String)> = plan
        .steps
        .iter()
        .map(|step| {
            let employee = step.employee.as_ref().or(step.record.employee.as_ref());
            let name = employee
                .map(|e| {
                    [e.first_name.as_deref(), e.last_name.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("Personio person {}", step.personio_id));
            let email = employee.and_then(|e| e.email.clone()).unwrap_or_default();
            (step.personio_id.as_str(), (name, email))
        })
        .collect();
    let row = |personio_id: &str, detail: Vec<String>| {
        let (name, email) = people
            .get(personio_id)
            .cloned()
            .unwrap_or_else(|| (format!("Personio person {personio_id}"), String::new()));
        PreviewRow {
            name,
            email,
            detail,
        }
    };
    let day = |at: &str| {
        chrono::DateTime::parse_from_rfc3339(at)
            .map(|at| {
                at.with_timezone(&timezone)
                    .format("%-d %b %Y, %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| at.to_string())
    };
    let view = plan.view();
    let created = view
        .creates
        .iter()
        .map(|entry| row(&entry.personio_id, Vec::new()))
        .collect();
    let updated = view
        .updates
        .iter()
        .map(|entry| {
            let changes = entry
                .changes
                .iter()
                .map(|(field, change)| {
                    format!(
                        "{field}: {} → {}",
                        change.from.as_deref().unwrap_or("(unknown)"),
                        if change.to.is_empty() {
                            "(empty)"
                        } else {
                            &change.to
                        }
                    )
                })
                .collect();
            row(&entry.personio_id, changes)
        })
        .collect();
    let mut deactivated: Vec<PreviewRow> = view
        .deactivations
        .iter()
        .map(|entry| row(&entry.personio_id, vec![format!("Now: {}", entry.reason)]))
        .collect();
    deactivated.extend(
        view.scheduled_deactivations
            .iter()
            .map(|entry| row(&entry.personio_id, vec![format!("On {}", day(&entry.at))])),
    );
    let mut invited: Vec<PreviewRow> = view
        .invitations
        .iter()
        .map(|entry| row(&entry.personio_id, vec!["Now".into()]))
        .collect();
    invited.extend(
        view.scheduled_invitations
            .iter()
            .map(|entry| row(&entry.personio_id, vec![format!("On {}", day(&entry.at))])),
    );
    (created, updated, deactivated, invited)
}

/// The first attribute the form names that Personio does not let this connection read
/// (its field and a message); `None` when all are readable or the list is unknown.
pub fn unreadable_attribute(
    values: &FormValues,
    readable: &[AttributeOption],
) -> Option<(String, String)> {
    if readable.is_empty() {
        return None;
    }
    let unreadable =
        |key: &str| !key.is_empty() && !readable.iter().any(|attribute| attribute.key == key);
    let message = |key: &str| {
        format!(
            "Personio does not let this connection read “{key}”: tick it among the API credential's readable employee attributes in Personio, or choose another."
        )
    };
    if let Some((index, row)) = values
        .custom
        .iter()
        .enumerate()
        .find(|(_, row)| unreadable(&row.key))
    {
        return Some((format!("custom-key-{index}"), message(&row.key)));
    }
    unreadable(&values.attribute_key)
        .then(|| ("attribute-key".to_string(), message(&values.attribute_key)))
}

fn timezones() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect()
}

/// The tenant's stored settings, or the page that says why there are none.
async fn stored_spec(
    state: &AppState,
    session: &Session,
) -> Result<crate::domain::tenant::TenantSpec, Box<Response>> {
    match state.store.tenant_spec(&session.tenant_id).await {
        Ok(Some(spec)) => Ok(spec),
        Ok(None) => Err(Box::new(super::message(
            StatusCode::NOT_FOUND,
            "This connection no longer exists",
            &[
                "Your company's connection has been removed by the operator. Ask your Learn Amp contact for a new invitation.",
            ],
            None,
        ))),
        Err(error) => {
            tracing::error!(tenant_id = %session.tenant_id, error = %error, "settings not readable");
            Err(Box::new(unavailable()))
        }
    }
}

fn unavailable() -> Response {
    super::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "The settings cannot be shown right now",
        &["The service could not read its storage. Please try again in a minute."],
        None,
    )
}

/// Personio's readable attributes for the suggestions (none when Personio does not
/// answer quickly: the fields stay free text).
async fn attributes(
    state: &AppState,
    spec: &crate::domain::tenant::TenantSpec,
) -> Vec<AttributeOption> {
    let (personio, _) = state.services.clients(spec);
    match tokio::time::timeout(ATTRIBUTES_TIMEOUT, personio.readable_attributes()).await {
        Ok(Ok(list)) => list
            .into_iter()
            .map(|attribute| AttributeOption {
                key: attribute.key,
                label: attribute.label,
            })
            .collect(),
        _ => Vec::new(),
    }
}

async fn form_page(
    state: &AppState,
    session: &Session,
    spec: &crate::domain::tenant::TenantSpec,
    values: FormValues,
    error: Option<(String, String)>,
    problem: Option<String>,
) -> Response {
    let status = if error.is_some() || problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = SettingsPage {
        layout: Layout::app(state, session, "Settings", "settings"),
        action: format!("/app/{}/settings", session.tenant_id),
        csrf: session.csrf.clone(),
        values,
        error,
        problem,
        timezones: timezones(),
        attributes: attributes(state, spec).await,
    };
    render_status(status, &page)
}

async fn show(State(state): State<AppState>, session: Session) -> Response {
    if !super::connected(&state, &session.tenant_id) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let spec = match stored_spec(&state, &session).await {
        Ok(spec) => spec,
        Err(page) => return *page,
    };
    let values = FormValues::of(&spec.settings);
    form_page(&state, &session, &spec, values, None, None).await
}

/// The preview of a full sync with `settings`, planned by the tenant's actor where it
/// runs (here, or on its owner through the cluster directory); the error is the
/// sentence the page shows.
async fn preview(state: &AppState, tenant_id: &str, settings: Settings) -> Result<Preview, String> {
    let command = Command::Preview {
        settings: Box::new(settings),
    };
    let answer = state
        .directory
        .run(state.as_ref(), tenant_id, command, PREVIEW_TIMEOUT)
        .await;
    let late = || "The change could not be previewed in time. Try again in a minute.".to_string();
    match answer {
        Ok(value) => serde_json::from_value(value).map_err(|error| {
            tracing::warn!(tenant_id = %tenant_id, error = %error, "the preview's answer could not be read");
            late()
        }),
        Err(failure) => Err(match failure.kind {
            FailureKind::NotFound | FailureKind::WrongState => {
                "The sync is not running right now, so the change cannot be previewed. Try again in a minute.".to_string()
            }
            FailureKind::Upstream => {
                format!("The change could not be previewed: {}", failure.message)
            }
            FailureKind::Unavailable => late(),
        }),
    }
}

async fn save(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<HashMap<String, String>>,
) -> Response {
    if !super::connected(&state, &session.tenant_id) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let spec = match stored_spec(&state, &session).await {
        Ok(spec) => spec,
        Err(page) => return *page,
    };
    let values = FormValues::posted(&form);
    let settings = match values.settings() {
        Ok(settings) => settings,
        Err(error) => return form_page(&state, &session, &spec, values, Some(error), None).await,
    };
    if settings == spec.settings {
        return super::see_other(&super::overview_path(&session.tenant_id));
    }
    if let Some(error) = unreadable_attribute(&values, &attributes(&state, &spec).await) {
        return form_page(&state, &session, &spec, values, Some(error), None).await;
    }
    let preview = match preview(&state, &session.tenant_id, settings.clone()).await {
        Ok(preview) => preview,
        Err(problem) => {
            return form_page(&state, &session, &spec, values, None, Some(problem)).await;
        }
    };
    if !preview.needs_confirmation {
        return apply(&state, &session, spec, settings).await;
    }
    let settings_json = serde_json::to_string(&settings).unwrap_or_default();
    let page = PreviewPage {
        layout: Layout::app(&state, &session, "Preview of your change", "settings"),
        action: format!("/app/{}/settings/confirm", session.tenant_id),
        csrf: session.csrf.clone(),
        signature: sign_preview(
            &state.store.derive_key(PREVIEW_KEY_PURPOSE),
            &session.tenant_id,
            &session.csrf,
            &settings_json,
        ),
        settings_json,
        back: format!("/app/{}/settings", session.tenant_id),
        sections: vec![
            PreviewSection {
                title: "Invited",
                caption: "People who would be invited, and when",
                detail: "When",
                rows: preview.invited,
            },
            PreviewSection {
                title: "Deactivated",
                caption: "People who would be deactivated, and when",
                detail: "When and why",
                rows: preview.deactivated,
            },
            PreviewSection {
                title: "Created",
                caption: "People who would get a Learn Amp user",
                detail: "",
                rows: preview.created,
            },
            PreviewSection {
                title: "Updated",
                caption: "People whose Learn Amp user would change",
                detail: "Before → after",
                rows: preview.updated,
            },
        ],
        summary: preview.summary,
        unchanged: preview.unchanged,
    };
    render(&page)
}

/// `Confirm`'s form: the previewed settings and their signature.
#[derive(serde::Deserialize)]
struct ConfirmForm {
    settings: String,
    #[serde(default)]
    signature: String,
}

async fn confirm(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<ConfirmForm>,
) -> Response {
    if !super::connected(&state, &session.tenant_id) {
        return super::see_other(super::connect::CONNECT_PATH);
    }
    let spec = match stored_spec(&state, &session).await {
        Ok(spec) => spec,
        Err(page) => return *page,
    };
    if !preview_signed(
        &state.store.derive_key(PREVIEW_KEY_PURPOSE),
        &session.tenant_id,
        &session.csrf,
        &form.settings,
        &form.signature,
    ) {
        let values = FormValues::of(&spec.settings);
        return form_page(
            &state,
            &session,
            &spec,
            values,
            None,
            Some("This preview is no longer valid (the page was changed, or the service's secret key). Choose your settings and save again.".into()),
        )
        .await;
    }
    // Signed, and still validated again like any input: the rules may have changed
    // since the preview.
    let settings = match serde_json::from_str::<Settings>(&form.settings)
        .map_err(|error| FieldError {
            field: "settings".into(),
            message: error.to_string(),
        })
        .and_then(|settings| settings.validate().map(|()| settings))
    {
        Ok(settings) => settings,
        Err(error) => {
            let values = FormValues::of(&spec.settings);
            return form_page(
                &state,
                &session,
                &spec,
                values,
                Some(form_field(error)),
                None,
            )
            .await;
        }
    };
    apply(&state, &session, spec, settings).await
}

/// Stores `settings` (PATCH semantics: only the settings change, the tenant restarts
/// and reconciles) and goes to the overview.
async fn apply(
    state: &AppState,
    session: &Session,
    spec: crate::domain::tenant::TenantSpec,
    settings: Settings,
) -> Response {
    if let Err(error) = settings.validate() {
        let values = FormValues::of(&settings);
        return form_page(state, session, &spec, values, Some(form_field(error)), None).await;
    }
    match crate::http::admin::store_settings(state, &session.tenant_id, settings.clone()).await {
        Ok(_) => super::see_other(&super::overview_path(&session.tenant_id)),
        Err(error) => {
            tracing::warn!(tenant_id = %session.tenant_id, error = %error, "settings not stored");
            let values = FormValues::of(&settings);
            form_page(
                state,
                session,
                &spec,
                values,
                None,
                Some(
                    "The settings could not be saved right now. Please try again in a minute."
                        .into(),
                ),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("invite", "days_before_hire"),
            ("days", "7"),
            ("timezone", "Europe/Berlin"),
            ("deactivation", "on_status"),
            ("teams", "department"),
            ("sync_managers", "on"),
            ("custom_key_0", "dynamic_1"),
            ("custom_name_0", "Cost centre"),
            ("custom_key_1", ""),
            ("custom_name_1", ""),
            ("departments", "Sales, Engineering"),
            ("attribute_key", ""),
            ("attribute_value", ""),
            ("out_of_scope", "keep"),
            ("ratio", "0.3"),
        ]
    }

    #[test]
    fn a_posted_form_becomes_settings_and_shows_them_again() {
        let settings = FormValues::posted(&posted(&base())).settings().unwrap();
        assert_eq!(
            settings.invite_policy,
            InvitePolicy::DaysBeforeHire { days: 7 }
        );
        assert_eq!(settings.timezone, "Europe/Berlin");
        assert!(settings.sync_managers && !settings.team_hierarchy);
        assert_eq!(
            settings.custom_fields.get("dynamic_1").unwrap(),
            "Cost centre"
        );
        let scope = settings.scope.clone().unwrap();
        assert_eq!(
            scope.departments,
            Some(vec!["Sales".to_string(), "Engineering".to_string()])
        );
        assert_eq!(scope.offices, None);
        assert_eq!(settings.out_of_scope, OutOfScope::Keep);
        assert_eq!(FormValues::of(&settings).settings().unwrap(), settings);
        assert_eq!(
            FormValues::of(&Settings::default()).settings().unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn invalid_input_names_its_field() {
        for (field, value, id) in [
            ("days", "400", "days"),
            ("days", "soon", "days"),
            ("timezone", "Mars/Olympus", "timezone"),
            ("ratio", "2", "ratio"),
            ("ratio", "lots", "ratio"),
            ("custom_name_0", "", "custom-name-0"),
            ("attribute_value", "x", "attribute-key"),
            ("invite", "sometimes", "invite"),
        ] {
            let mut pairs = base();
            pairs.retain(|(name, _)| *name != field);
            pairs.push((field, value));
            let (got, message) = FormValues::posted(&posted(&pairs)).settings().unwrap_err();
            assert_eq!(got, id, "{field}={value}: {message}");
            assert!(message.ends_with('.'), "{message}");
        }
    }

    fn step(id: &str, actions: Vec<crate::sync::plan::Action>) -> crate::sync::plan::Step {
        let mut employee = crate::domain::Employee::with_id(id);
        employee.first_name = Some("Ann".into());
        employee.last_name = Some(format!("No{id}"));
        employee.email = Some(format!("ann{id}@example.com"));
        crate::sync::plan::Step {
            personio_id: id.into(),
            employee: Some(employee),
            learnamp_id: Some(id.parse().unwrap()),
            desired: Default::default(),
            level: 0,
            record: Default::default(),
            actions,
        }
    }

    #[test]
    fn a_plan_that_invites_or_deactivates_needs_confirmation_and_is_tabled() {
        use crate::sync::plan::{Action, Schedule};
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-13T23:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let quiet = Plan {
            steps: vec![step("1", vec![])],
            ..Plan::default()
        };
        assert!(!needs_confirmation(&quiet));
        let plan = Plan {
            steps: vec![
                step("1", vec![Action::Invite]),
                step(
                    "2",
                    vec![Action::Schedule(Schedule {
                        invite: Some(at),
                        ..Schedule::default()
                    })],
                ),
            ],
            ..Plan::default()
        };
        assert!(needs_confirmation(&plan));
        let leaver = Plan {
            steps: vec![step(
                "3",
                vec![Action::Deactivate {
                    reason: "inactive in Personio".into(),
                }],
            )],
            ..Plan::default()
        };
        assert!(needs_confirmation(&leaver));
        assert_eq!(
            preview_summary(&plan),
            "With the new settings the sync would invite 2 people (1 on a later day), deactivate nobody, create nobody and update nobody."
        );
        let (_, _, _, invited) = preview_tables(&plan, chrono_tz::Europe::Berlin);
        assert_eq!(invited.len(), 2);
        assert_eq!(invited[0].name, "Ann No1");
        assert_eq!(invited[0].detail, vec!["Now"]);
        assert_eq!(invited[1].email, "ann2@example.com");
        assert_eq!(invited[1].detail, vec!["On 14 Dec 2026, 00:00 CET"]);
    }

    #[test]
    fn an_attribute_personio_does_not_let_us_read_is_marked_on_its_row() {
        let readable = vec![AttributeOption {
            key: "dynamic_1".into(),
            label: "Cost centre".into(),
        }];
        let mut values = FormValues::posted(&posted(&base()));
        assert_eq!(unreadable_attribute(&values, &readable), None);
        assert_eq!(
            unreadable_attribute(&values, &[]),
            None,
            "unknown list: no judgement"
        );
        values.custom[1] = CustomRow {
            key: "dynamic_2".into(),
            name: "Badge".into(),
        };
        let (field, message) = unreadable_attribute(&values, &readable).unwrap();
        assert_eq!(field, "custom-key-1");
        assert!(message.contains("dynamic_2"), "{message}");
        values.custom[1] = CustomRow::default();
        values.attribute_key = "dynamic_9".into();
        assert_eq!(
            unreadable_attribute(&values, &readable).unwrap().0,
            "attribute-key"
        );
    }

    #[test]
    fn a_preview_signature_binds_the_settings_tenant_session_and_key() {
        let key = [7u8; 32];
        let signature = sign_preview(&key, "acme", "csrf-1", r#"{"timezone":"UTC"}"#);
        assert!(preview_signed(
            &key,
            "acme",
            "csrf-1",
            r#"{"timezone":"UTC"}"#,
            &signature
        ));
        for (key, tenant, csrf, settings, signature) in [
            (
                key,
                "acme",
                "csrf-1",
                r#"{"timezone":"GMT"}"#,
                signature.as_str(),
            ),
            (key, "other", "csrf-1", r#"{"timezone":"UTC"}"#, &signature),
            (key, "acme", "csrf-2", r#"{"timezone":"UTC"}"#, &signature),
            (
                [8u8; 32],
                "acme",
                "csrf-1",
                r#"{"timezone":"UTC"}"#,
                &signature,
            ),
            (key, "acme", "csrf-1", r#"{"timezone":"UTC"}"#, ""),
            (key, "acme", "csrf-1", r#"{"timezone":"UTC"}"#, "zz"),
        ] {
            assert!(
                !preview_signed(&key, tenant, csrf, settings, signature),
                "{tenant} {csrf} {settings} {signature:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_store_with_the_same_secret_key_signs_previews_alike() {
        use crate::store::Store;
        use crate::store::crypto::SecretKey;
        let key = SecretKey::generate();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let a = Store::open_with_key(dirs[0].path(), 8, key.clone())
            .await
            .unwrap();
        let b = Store::open_with_key(dirs[1].path(), 8, key).await.unwrap();
        let other = Store::temporary().await.unwrap();
        let signature = sign_preview(&a.derive_key(PREVIEW_KEY_PURPOSE), "acme", "csrf", "{}");
        assert!(preview_signed(
            &b.derive_key(PREVIEW_KEY_PURPOSE),
            "acme",
            "csrf",
            "{}",
            &signature
        ));
        assert!(!preview_signed(
            &other.derive_key(PREVIEW_KEY_PURPOSE),
            "acme",
            "csrf",
            "{}",
            &signature
        ));
    }

    #[test]
    fn the_invalid_field_is_marked_on_the_page() {
        use askama::Template;
        let mut pairs = base();
        pairs.retain(|(name, _)| *name != "days");
        pairs.push(("days", "400"));
        let values = FormValues::posted(&posted(&pairs));
        let error = values.settings().unwrap_err();
        let page = SettingsPage {
            layout: Layout::plain("Settings"),
            action: "/app/acme/settings".into(),
            csrf: "token".into(),
            values,
            error: Some(error),
            problem: None,
            timezones: timezones(),
            attributes: Vec::new(),
        };
        let html = page.render().unwrap();
        assert!(html.contains(r#"aria-invalid="true""#));
        assert!(html.contains(r#"aria-describedby="days-error""#));
        assert!(html.contains(r#"id="days-error""#));
        assert!(
            html.contains(r#"value="400""#),
            "the typed value is shown again"
        );
        assert!(html.contains("<datalist id=\"timezones\">"));
        assert!(html.contains("Europe/Berlin"));
        assert_eq!(html.matches("aria-invalid").count(), 1);
    }
}
