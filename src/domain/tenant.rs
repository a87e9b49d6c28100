//! The tenant spec (what an operator posts), its settings with their defaults, and
//! validation that names the offending field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Secret;

/// Credentials and base URL of one API for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiCredentials {
    /// API base URL, e.g. `https://api.personio.de`.
    pub base_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    #[schema(value_type = String, write_only)]
    pub client_secret: Secret,
    /// Personio only, optional: the secret Personio signs webhook deliveries with
    /// (assumed contract, see [`crate::personio::assumed`]). When set, every delivery
    /// must carry a valid, fresh signature besides the token. Stored sealed, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, write_only)]
    pub webhook_signing_secret: Option<Secret>,
}

/// When new users are invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum InvitePolicy {
    /// As soon as the user is created (every user who is not inactive).
    Immediately,
    /// On the hire date, in the tenant's time zone.
    OnHireDate,
    /// `days` calendar days before the hire date.
    DaysBeforeHire {
        /// 0–365.
        days: u16,
    },
    /// Never by itself; an operator invites.
    #[default]
    Manual,
}

/// When leavers are deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deactivation {
    /// When Personio says inactive, or the person is deleted.
    #[default]
    OnStatus,
    /// At the end of the termination date in the tenant's time zone.
    OnTerminationDate,
}

/// Which Personio units become Learn Amp teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamsMode {
    /// One team per department, as the primary team.
    #[default]
    Department,
    /// Department as primary team, Personio team as a secondary team.
    DepartmentAndTeam,
    /// No teams.
    None,
}

/// What happens to a synced user who leaves the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutOfScope {
    /// Deactivate them.
    #[default]
    Deactivate,
    /// Leave them alone.
    Keep,
}

/// A custom attribute equality rule of the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// Personio attribute key, e.g. `dynamic_99`.
    pub key: String,
    /// The value it must equal (compared as text).
    pub equals: String,
}

/// Include rules: each present rule must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    /// Department ids or names.
    pub departments: Option<Vec<String>>,
    /// Office ids or names.
    pub offices: Option<Vec<String>>,
    /// Employment types (`internal`, `external`).
    pub employment_types: Option<Vec<String>>,
    /// A custom attribute value.
    pub attribute: Option<AttributeRule>,
}

/// Per-tenant settings; every one optional with the defaults of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// When new users are invited.
    pub invite_policy: InvitePolicy,
    /// IANA time zone in which calendar days are judged.
    pub timezone: String,
    /// When leavers are deactivated.
    pub deactivation: Deactivation,
    /// Which units become teams.
    pub teams: TeamsMode,
    /// Mirror parent org units as parent teams.
    pub team_hierarchy: bool,
    /// Remove teams the service created that no longer have members.
    pub remove_empty_teams: bool,
    /// Personio supervisor → Learn Amp `managerEmail`.
    pub sync_managers: bool,
    /// Personio attribute key → Learn Amp custom field name.
    pub custom_fields: BTreeMap<String, String>,
    /// `null` = everyone.
    pub scope: Option<Scope>,
    /// What happens to synced users who leave the scope.
    pub out_of_scope: OutOfScope,
    /// Share of active synced users a full sync may deactivate without confirmation.
    pub max_deactivation_ratio: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            invite_policy: InvitePolicy::Manual,
            timezone: "UTC".into(),
            deactivation: Deactivation::OnStatus,
            teams: TeamsMode::Department,
            team_hierarchy: false,
            remove_empty_teams: false,
            sync_managers: true,
            custom_fields: BTreeMap::new(),
            scope: None,
            out_of_scope: OutOfScope::Deactivate,
            max_deactivation_ratio: 0.2,
        }
    }
}

/// The secrets the service generates for a tenant's webhook front door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    /// The URL path key (≥ 128 random bits, hex).
    pub key: Secret,
    /// The token Personio sends verbatim in `Authorization`.
    pub token: Secret,
}

impl WebhookSecrets {
    /// Fresh random secrets (128 bits each, from the OS-seeded CSPRNG).
    pub fn generate() -> Self {
        Self {
            key: Secret::new(random_hex(16)),
            token: Secret::new(format!("Bearer {}", random_hex(24))),
        }
    }
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// How a tenant is connected to Personio: the `connection` of its view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMethod {
    /// "Sign in with Personio": the customer's administrator signed in (OpenID Connect).
    Oidc,
    /// API credentials (client id and secret), posted by an operator or pasted on the
    /// connect page.
    ClientCredentials,
}

/// Who connected a tenant to Personio, how and when (shown in the tenant view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInfo {
    /// How.
    pub method: ConnectionMethod,
    /// The email of the Personio user who connected (OpenID Connect; for API
    /// credentials the email given on the connect page, if any); `null` for an operator.
    pub by: Option<String>,
    /// When, RFC 3339.
    pub at: String,
}

/// A connection made through "Sign in with Personio" (OpenID Connect): the Personio
/// API is called with access tokens of the signing-in user's grant. The refresh token
/// is stored sealed (see `store::crypto`) and rotated by `connect::tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConnection {
    /// The Personio API base the tokens are used at (`[personio] base_url`).
    pub base_url: String,
    /// The issuer that granted the tokens.
    pub issuer: String,
    /// The user's stable identifier at the issuer (`sub`).
    pub subject: String,
    /// The user's email, for display only.
    #[serde(default)]
    pub email: Option<String>,
    /// The refresh token of the grant (the only long-lived secret; rotated on use).
    pub refresh_token: Secret,
}

/// A tenant as posted by an operator (plus, once created, its webhook secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// 1–63 of `a-z 0-9 -`.
    pub id: String,
    /// Personio API access by client credentials; absent while the tenant awaits its
    /// connection or when it is connected through OpenID Connect (`personio_oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personio: Option<ApiCredentials>,
    /// Learn Amp API access.
    pub learnamp: ApiCredentials,
    /// Settings.
    #[serde(default)]
    pub settings: Settings,
    /// Generated by the service at creation; never accepted from an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub webhook: Option<WebhookSecrets>,
    /// Set by the connect flow ("Sign in with Personio"); never accepted from an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub personio_oidc: Option<OidcConnection>,
    /// How and when the tenant was connected; set by the service, never accepted from
    /// an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionInfo>,
}

/// A spec problem, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `settings.invite_policy.days`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses a tenant spec from JSON, naming the field of any shape error.
pub fn parse_spec(value: serde_json::Value) -> Result<TenantSpec, FieldError> {
    let spec: TenantSpec = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        FieldError {
            field: if path == "." { "spec".into() } else { path },
            message: error.into_inner().to_string(),
        }
    })?;
    for (field, present) in [
        ("webhook", spec.webhook.is_some()),
        ("personio_oidc", spec.personio_oidc.is_some()),
        ("connection", spec.connection.is_some()),
    ] {
        if present {
            return Err(FieldError::new(
                field,
                "is set by the service, not accepted",
            ));
        }
    }
    spec.validate()?;
    Ok(spec)
}

/// Whether `id` is 1–63 of `a-z 0-9 -`.
pub fn is_valid_tenant_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

impl TenantSpec {
    /// Checks values that parse but are invalid.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !is_valid_tenant_id(&self.id) {
            return Err(FieldError::new(
                "id",
                "must be 1-63 characters of a-z, 0-9 and -",
            ));
        }
        if let Some(personio) = &self.personio {
            validate_credentials("personio", personio)?;
        }
        validate_credentials("learnamp", &self.learnamp)?;
        if self.learnamp.webhook_signing_secret.is_some() {
            return Err(FieldError::new(
                "learnamp.webhook_signing_secret",
                "only Personio signs webhook deliveries; set personio.webhook_signing_secret",
            ));
        }
        if let Some(secret) = self.webhook_signing_secret()
            && !(1..=1024).contains(&secret.expose().len())
        {
            return Err(FieldError::new(
                "personio.webhook_signing_secret",
                "must be 1-1024 characters (omit it when Personio does not sign deliveries)",
            ));
        }
        self.settings.validate()
    }

    /// Whether the tenant has a Personio connection (client credentials or OpenID
    /// Connect); without one it is `awaiting_connection` and runs nothing.
    pub fn is_connected(&self) -> bool {
        self.personio.is_some() || self.personio_oidc.is_some()
    }

    /// The secret Personio signs deliveries with, if the operator gave one.
    pub fn webhook_signing_secret(&self) -> Option<&Secret> {
        self.personio
            .as_ref()
            .and_then(|personio| personio.webhook_signing_secret.as_ref())
    }

    /// The Personio API base the tenant is connected to, if it is connected.
    pub fn personio_base_url(&self) -> Option<&str> {
        match (&self.personio, &self.personio_oidc) {
            (Some(credentials), _) => Some(&credentials.base_url),
            (None, Some(oidc)) => Some(&oidc.base_url),
            (None, None) => None,
        }
    }

    /// Every secret of the spec (kept out of what the tenant's view shows).
    pub fn secrets(&self) -> Vec<Secret> {
        let mut secrets = vec![self.learnamp.client_secret.clone()];
        if let Some(personio) = &self.personio {
            secrets.push(personio.client_secret.clone());
            secrets.extend(personio.webhook_signing_secret.clone());
        }
        if let Some(oidc) = &self.personio_oidc {
            secrets.push(oidc.refresh_token.clone());
        }
        if let Some(webhook) = &self.webhook {
            secrets.extend([webhook.key.clone(), webhook.token.clone()]);
        }
        secrets
    }
}

fn validate_credentials(name: &str, credentials: &ApiCredentials) -> Result<(), FieldError> {
    let base = &credentials.base_url;
    let parsed = reqwest::Url::parse(base);
    if !(base.starts_with("http://") || base.starts_with("https://")) || parsed.is_err() {
        return Err(FieldError::new(
            &format!("{name}.base_url"),
            "must be an http:// or https:// URL",
        ));
    }
    if credentials.client_id.trim().is_empty() {
        return Err(FieldError::new(
            &format!("{name}.client_id"),
            "must not be empty",
        ));
    }
    if credentials.client_secret.expose().is_empty() {
        return Err(FieldError::new(
            &format!("{name}.client_secret"),
            "must not be empty",
        ));
    }
    Ok(())
}

impl Settings {
    /// Checks values that parse but are invalid.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let InvitePolicy::DaysBeforeHire { days } = self.invite_policy
            && days > 365
        {
            return Err(FieldError::new(
                "settings.invite_policy.days",
                "must be 0-365",
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(FieldError::new(
                "settings.timezone",
                format!("`{}` is not an IANA time zone name", self.timezone),
            ));
        }
        if !(0.0..=1.0).contains(&self.max_deactivation_ratio) {
            return Err(FieldError::new(
                "settings.max_deactivation_ratio",
                "must be between 0 and 1",
            ));
        }
        for (key, name) in &self.custom_fields {
            if key.trim().is_empty() || name.trim().is_empty() {
                return Err(FieldError::new(
                    "settings.custom_fields",
                    "keys and field names must not be empty",
                ));
            }
        }
        if let Some(rule) = self
            .scope
            .as_ref()
            .and_then(|scope| scope.attribute.as_ref())
            && rule.key.trim().is_empty()
        {
            return Err(FieldError::new(
                "settings.scope.attribute.key",
                "must not be empty",
            ));
        }
        Ok(())
    }

    /// The tenant's time zone (validated at creation; UTC if it somehow is not).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Applies an RFC 7396 JSON merge patch to `target`.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(patch_fields) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(target_fields) = target {
                for (key, value) in patch_fields {
                    if value.is_null() {
                        target_fields.remove(key);
                    } else {
                        merge_patch(
                            target_fields
                                .entry(key.clone())
                                .or_insert(serde_json::Value::Null),
                            value,
                        );
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_json() -> serde_json::Value {
        json!({
            "id": "acme",
            "personio": {"base_url": "https://api.personio.de", "client_id": "a", "client_secret": "b"},
            "learnamp": {"base_url": "https://api.learnamp.com", "client_id": "c", "client_secret": "d"},
            "settings": {"invite_policy": {"mode": "immediately"}}
        })
    }

    #[test]
    fn defaults_match_the_contract() {
        let spec = parse_spec(spec_json()).unwrap();
        assert_eq!(spec.settings.invite_policy, InvitePolicy::Immediately);
        let defaults = Settings::default();
        assert_eq!(defaults.invite_policy, InvitePolicy::Manual);
        assert_eq!(defaults.timezone, "UTC");
        assert!(defaults.sync_managers);
        assert_eq!(defaults.max_deactivation_ratio, 0.2);
    }

    #[test]
    fn errors_name_the_field() {
        let mut bad = spec_json();
        bad["settings"]["invite_policy"] = json!({"mode": "days_before_hire", "days": 400});
        assert_eq!(
            parse_spec(bad).unwrap_err().field,
            "settings.invite_policy.days"
        );
        let mut bad = spec_json();
        bad["settings"]["timezone"] = json!("Mars/Olympus");
        assert_eq!(parse_spec(bad).unwrap_err().field, "settings.timezone");
        let mut bad = spec_json();
        bad["settings"]["max_deactivation_ratio"] = json!("lots");
        assert_eq!(
            parse_spec(bad).unwrap_err().field,
            "settings.max_deactivation_ratio"
        );
        let mut bad = spec_json();
        bad["id"] = json!("Not_OK");
        assert_eq!(parse_spec(bad).unwrap_err().field, "id");
        let mut bad = spec_json();
        bad["settings"]["colour"] = json!("blue");
        let error = parse_spec(bad).unwrap_err();
        assert!(error.message.contains("colour"), "{error}");
        let mut bad = spec_json();
        bad["personio"]["base_url"] = json!("ftp://x");
        assert_eq!(parse_spec(bad).unwrap_err().field, "personio.base_url");
    }

    #[test]
    fn a_signing_secret_is_optional_personio_only_and_hidden() {
        let mut with = spec_json();
        with["personio"]["webhook_signing_secret"] = serde_json::json!("whsec-1");
        let spec = parse_spec(with.clone()).unwrap();
        assert_eq!(
            spec.webhook_signing_secret().map(Secret::expose),
            Some("whsec-1")
        );
        assert!(!format!("{spec:?}").contains("whsec-1"));
        assert_eq!(
            parse_spec(spec_json()).unwrap().webhook_signing_secret(),
            None
        );
        let serialised = serde_json::to_value(parse_spec(spec_json()).unwrap()).unwrap();
        assert!(
            serialised["personio"]
                .get("webhook_signing_secret")
                .is_none()
        );
        with["personio"]["webhook_signing_secret"] = serde_json::json!("");
        assert_eq!(
            parse_spec(with.clone()).unwrap_err().field,
            "personio.webhook_signing_secret"
        );
        let mut learnamp = spec_json();
        learnamp["learnamp"]["webhook_signing_secret"] = serde_json::json!("x");
        assert_eq!(
            parse_spec(learnamp).unwrap_err().field,
            "learnamp.webhook_signing_secret"
        );
    }

    #[test]
    fn a_spec_without_personio_awaits_its_connection() {
        let mut json = spec_json();
        json.as_object_mut().unwrap().remove("personio");
        let spec = parse_spec(json.clone()).unwrap();
        assert!(!spec.is_connected());
        assert_eq!(spec.personio_base_url(), None);
        assert!(parse_spec(spec_json()).unwrap().is_connected());
        for field in ["personio_oidc", "connection"] {
            let mut with = json.clone();
            with[field] = json!({});
            assert_eq!(parse_spec(with).unwrap_err().field, field);
        }
        let mut connected = spec.clone();
        connected.personio_oidc = Some(OidcConnection {
            base_url: "https://api.personio.de".into(),
            issuer: "https://id.example".into(),
            subject: "u1".into(),
            email: None,
            refresh_token: "rt-secret".into(),
        });
        assert!(connected.is_connected());
        assert_eq!(
            connected.personio_base_url(),
            Some("https://api.personio.de")
        );
        assert!(
            connected
                .secrets()
                .iter()
                .any(|secret| secret.expose() == "rt-secret")
        );
        assert!(!format!("{connected:?}").contains("rt-secret"));
        let info = ConnectionInfo {
            method: ConnectionMethod::ClientCredentials,
            by: None,
            at: "2026-01-01T00:00:00+00:00".into(),
        };
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            json!({"method": "client_credentials", "by": null, "at": "2026-01-01T00:00:00+00:00"})
        );
    }

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut target, &json!({"b": {"c": null, "e": 4}, "f": [1]}));
        assert_eq!(target, json!({"a": 1, "b": {"d": 3, "e": 4}, "f": [1]}));
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let first = WebhookSecrets::generate();
        let second = WebhookSecrets::generate();
        assert_eq!(first.key.expose().len(), 32);
        assert_ne!(first.key, second.key);
        assert!(first.token.expose().starts_with("Bearer "));
    }
}
