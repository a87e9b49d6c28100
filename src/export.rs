//! `personio-sync export` and `import`: every tenant's spec (secrets only on request),
//! and every record of its tree (mappings, teams, sync state, due-queue, inbox,
//! history: whatever kinds exist, exported generically), as one JSON document; and the
//! restore of such a document into an empty data dir, byte-exact.
//!
//! ## Document
//!
//! ```json
//! {"format": "personio-sync-export", "version": 1, "exported_at": "…",
//!  "with_secrets": false, "id_generator": 42, "meta": [],
//!  "tenants": [{"id": "acme", "spec": {…, "personio": {"client_secret": null, …}},
//!               "records": [{"key": "emp/4711", "value": {"learnamp_id": 93, …}},
//!                           {"key": "hist/#000000000000002a", "key_hex": "…", "value": {…}},
//!                           {"key": "state/history_seq", "value_hex": "000000000000002a"}]}]}
//! ```
//!
//! A record's `key` shows the key with `\0` as `/`. When that is not reversible (a
//! binary tail, a `/` in the key) the part after the first `\0` is shown as `#hex` and
//! `key_hex` holds the exact bytes. A value that is JSON is embedded verbatim as
//! `value`; anything else is `value_hex`. `spec` is `null` for a tenant deleted without
//! purge (its data was kept). Without `--with-secrets` every secret is `null`.
//!
//! ## Crash safety
//!
//! An export is written to a new private file beside the target, synced, and renamed
//! over it (never written through a symlink; an existing target only with `--force`).
//! An import writes [`IMPORT_MARKER`] into the data dir before anything else and
//! removes it only once everything is durable; `serve` and `export` refuse a data dir
//! holding the marker, so an interrupted import is never served as a partial one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::domain::tenant::{TenantSpec, WebhookSecrets, is_valid_tenant_id};
use crate::store::crypto::{DATA_DIR_KEY_FILE, decode_hex, encode_hex, strip_spec_secrets};
use crate::store::{Store, StoreError};

/// The `format` of an export document.
pub const FORMAT: &str = "personio-sync-export";
/// The `version` this build writes and reads.
pub const VERSION: u32 = 1;

/// The file an import writes into the data dir first and removes once it is complete.
pub const IMPORT_MARKER: &str = "IMPORT_INCOMPLETE";

/// Highest value an import advances sled's id generator to. Advancing costs tens of
/// nanoseconds per id, so a document cannot make an import run for more than about a
/// minute; an inbox numbered higher is refused.
pub const MAX_ID_GENERATOR: u64 = 1 << 30;

/// An export or import failure.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The import target holds data.
    #[error(
        "the data dir {dir} is not empty: import restores into an empty data dir only (move the existing data away, or choose another storage.data_dir)"
    )]
    NotEmpty {
        /// The data dir.
        dir: String,
    },
    /// An import into the data dir was interrupted.
    #[error(
        "the data dir {dir} holds an unfinished import (a `personio-sync import` was interrupted; {IMPORT_MARKER} is present): empty the data dir and run the import again"
    )]
    Unfinished {
        /// The data dir.
        dir: String,
    },
    /// The export file could not be written.
    #[error("cannot write the export to {path}: {message}")]
    Output {
        /// The output path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The target database already holds tenants.
    #[error("the database already holds tenants: import restores into an empty data dir only")]
    HoldsTenants,
    /// The document is not an export of this format and version.
    #[error("not a personio-sync export document: {0}")]
    Format(String),
    /// A tenant of the document is unusable.
    #[error("tenant `{id}` in the export: {message}")]
    Tenant {
        /// The tenant id.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// A whole export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// RFC 3339.
    pub exported_at: String,
    /// Whether the specs carry their secrets.
    pub with_secrets: bool,
    /// sled's next generated id (inbox sequence numbers come from it).
    pub id_generator: u64,
    /// `meta` entries other than tenant specs.
    #[serde(default)]
    pub meta: Vec<Record>,
    /// Every tenant, by id.
    pub tenants: Vec<TenantExport>,
}

/// One tenant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantExport {
    /// The tenant id.
    pub id: String,
    /// The spec as JSON (secrets `null` unless exported with secrets); `null` for data
    /// kept after the tenant was deleted.
    pub spec: Option<Value>,
    /// Every key of the tenant's tree, in key order.
    pub records: Vec<Record>,
}

/// One stored key and value.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The key, `\0` shown as `/`.
    pub key: String,
    /// The exact key bytes, when `key` is not reversible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<String>,
    /// The value, when it is JSON (verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<RawValue>>,
    /// The value bytes, when they are not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl Record {
    /// The record of a raw key and value.
    pub fn from_raw(key: &[u8], value: &[u8]) -> Self {
        let (key, key_hex) = show_key(key);
        let raw = std::str::from_utf8(value)
            .ok()
            .filter(|text| *text != "null")
            .and_then(|text| RawValue::from_string(text.to_string()).ok())
            .filter(|raw| raw.get().as_bytes() == value);
        let value_hex = raw.is_none().then(|| encode_hex(value));
        Self {
            key,
            key_hex,
            value: raw,
            value_hex,
        }
    }

    /// The exact key and value bytes.
    pub fn to_raw(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        let key = match &self.key_hex {
            Some(hex) => {
                decode_hex(hex).ok_or_else(|| format!("key_hex of {} is not hex", self.key))?
            }
            None => self.key.replace('/', "\0").into_bytes(),
        };
        let value = match (&self.value, &self.value_hex) {
            (Some(raw), None) => raw.get().as_bytes().to_vec(),
            (None, Some(hex)) => {
                decode_hex(hex).ok_or_else(|| format!("value_hex of {} is not hex", self.key))?
            }
            _ => {
                return Err(format!(
                    "record {} needs exactly one of value and value_hex",
                    self.key
                ));
            }
        };
        Ok((key, value))
    }
}

/// `(shown, exact hex if `shown` is not reversible)`. A key is shown as is (with `\0`
/// as `/`) when it is text of non-empty `\0`-separated printable parts without `/`.
fn show_key(key: &[u8]) -> (String, Option<String>) {
    let clean = std::str::from_utf8(key).ok().filter(|text| {
        !text.contains('/')
            && !text.chars().any(|c| c.is_control() && c != '\0')
            && !text.split('\0').any(str::is_empty)
    });
    if let Some(text) = clean {
        return (text.replace('\0', "/"), None);
    }
    let split = key.iter().position(|byte| *byte == 0);
    let shown = match split {
        Some(at) => format!(
            "{}/#{}",
            String::from_utf8_lossy(&key[..at]).replace('/', "%2F"),
            encode_hex(&key[at + 1..])
        ),
        None => format!("#{}", encode_hex(key)),
    };
    (shown, Some(encode_hex(key)))
}

/// Everything in `store` as a document; secrets only `with_secrets`.
pub async fn export(store: &Store, with_secrets: bool) -> Result<ExportDocument, ExportError> {
    let specs = store.tenant_specs().await?;
    let mut ids: BTreeSet<String> = store.tenant_tree_ids().await?.into_iter().collect();
    ids.extend(specs.iter().map(|spec| spec.id.clone()));
    let mut tenants = Vec::with_capacity(ids.len());
    for id in ids {
        let spec = specs
            .iter()
            .find(|spec| spec.id == id)
            .map(|spec| spec_json(spec, with_secrets));
        let records = store
            .tenant(&id)
            .await?
            .raw_entries()
            .await?
            .iter()
            .map(|(key, value)| Record::from_raw(key, value))
            .collect();
        tenants.push(TenantExport { id, spec, records });
    }
    let meta = store
        .other_meta_entries()
        .await?
        .iter()
        .map(|(key, value)| Record::from_raw(key, value))
        .collect();
    Ok(ExportDocument {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: chrono::Utc::now().to_rfc3339(),
        with_secrets,
        id_generator: store.next_generated_id().await?,
        meta,
        tenants,
    })
}

fn spec_json(spec: &TenantSpec, with_secrets: bool) -> Value {
    let mut json = serde_json::to_value(spec).expect("tenant specs serialise to JSON");
    if !with_secrets {
        strip_spec_secrets(&mut json);
    }
    json
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Accept specs without secrets: client secrets become empty (the tenant fails
    /// until an operator PATCHes them) and fresh webhook secrets are generated.
    pub allow_missing_secrets: bool,
}

/// What an import restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Tenants whose spec was restored.
    pub tenants: usize,
    /// Records written into tenant trees.
    pub records: usize,
    /// Tenants restored without credentials (they need a PATCH of both client secrets).
    pub need_credentials: Vec<String>,
}

/// One tenant checked and decoded, ready to write.
struct Prepared {
    id: String,
    spec: Option<TenantSpec>,
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Checks the whole document and decodes it, writing nothing.
/// Also gives the id sled's generator must reach so that new inbox values sort after
/// the imported ones.
fn prepare(
    document: &ExportDocument,
    options: ImportOptions,
) -> Result<(Vec<Prepared>, Vec<String>, u64), ExportError> {
    if document.format != FORMAT || document.version != VERSION {
        return Err(ExportError::Format(format!(
            "expected format `{FORMAT}` version {VERSION}, found `{}` version {}",
            document.format, document.version
        )));
    }
    let mut seen = BTreeSet::new();
    let mut prepared = Vec::with_capacity(document.tenants.len());
    let mut next_id = document.id_generator.min(MAX_ID_GENERATOR);
    let mut need_credentials = Vec::new();
    for tenant in &document.tenants {
        let fail = |message: String| ExportError::Tenant {
            id: tenant.id.clone(),
            message,
        };
        if !is_valid_tenant_id(&tenant.id) || !seen.insert(tenant.id.clone()) {
            return Err(fail("the id is invalid or repeated".into()));
        }
        let spec = match &tenant.spec {
            None => None,
            Some(json) => {
                let (spec, missing) = decode_spec(json, &tenant.id, options).map_err(fail)?;
                if missing {
                    need_credentials.push(tenant.id.clone());
                }
                Some(spec)
            }
        };
        let records = tenant
            .records
            .iter()
            .map(Record::to_raw)
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        for (key, _) in &records {
            if let Some(id) = crate::store::inbox::stored_value_id(key) {
                if id >= MAX_ID_GENERATOR {
                    return Err(fail(format!(
                        "inbox record {} is numbered beyond {MAX_ID_GENERATOR}, more than an import can restore",
                        encode_hex(key)
                    )));
                }
                next_id = next_id.max(id + 1);
            }
        }
        prepared.push(Prepared {
            id: tenant.id.clone(),
            spec,
            records,
        });
    }
    Ok((prepared, need_credentials, next_id))
}

/// The spec of a document, and whether its secrets were missing.
fn decode_spec(
    json: &Value,
    id: &str,
    options: ImportOptions,
) -> Result<(TenantSpec, bool), String> {
    let mut json = json.clone();
    let mut missing = false;
    for api in ["personio", "learnamp"] {
        if let Some(slot) = json
            .get_mut(api)
            .and_then(|api| api.get_mut("client_secret"))
            && slot.is_null()
        {
            missing = true;
            *slot = Value::String(String::new());
        }
    }
    if let Some(slot) = json
        .get_mut("personio_oidc")
        .and_then(|oidc| oidc.get_mut("refresh_token"))
        && slot.is_null()
    {
        // A connection without its refresh token fails at its first refresh and asks
        // for a new invitation.
        missing = true;
        *slot = Value::String(String::new());
    }
    let webhook_missing = json.get("webhook").is_some_and(|webhook| {
        webhook.get("key").is_none_or(Value::is_null)
            || webhook.get("token").is_none_or(Value::is_null)
    });
    if webhook_missing {
        missing = true;
        json["webhook"] = serde_json::to_value(WebhookSecrets::generate())
            .expect("webhook secrets serialise to JSON");
    }
    if missing && !options.allow_missing_secrets {
        return Err(
            "the export holds no secrets (made without --with-secrets): export again with --with-secrets, or import with --allow-missing-secrets and PATCH the credentials afterwards".into(),
        );
    }
    let spec: TenantSpec = serde_path_to_error::deserialize(json)
        .map_err(|error| format!("spec field {}: {}", error.path(), error.inner()))?;
    if spec.id != id {
        return Err(format!("the spec's id is `{}`", spec.id));
    }
    if let Some(webhook) = &spec.webhook {
        check_webhook_secrets(webhook)?;
    }
    if !missing {
        spec.validate().map_err(|error| error.to_string())?;
    }
    Ok((spec, missing))
}

/// Shortest webhook URL key and token accepted on import (generated ones are longer).
pub const MIN_WEBHOOK_SECRET_CHARS: usize = 32;

/// Checks that an imported webhook URL key and token are long enough to resist
/// guessing; the error names which is not (never its value).
pub fn check_webhook_secrets(webhook: &WebhookSecrets) -> Result<(), String> {
    for (name, secret) in [("key", &webhook.key), ("token", &webhook.token)] {
        let length = secret.expose().chars().count();
        if length < MIN_WEBHOOK_SECRET_CHARS {
            return Err(format!(
                "webhook.{name} is {length} characters long; it must be at least {MIN_WEBHOOK_SECRET_CHARS}"
            ));
        }
    }
    Ok(())
}

/// Checks a whole document (format, ids, specs, records) without writing anything.
pub fn validate_document(
    document: &ExportDocument,
    options: ImportOptions,
) -> Result<(), ExportError> {
    prepare(document, options).map(|_| ())
}

/// Restores `document` into `store`, which must hold no tenant. The whole document is
/// checked before anything is written.
pub async fn import(
    store: &Store,
    document: &ExportDocument,
    options: ImportOptions,
) -> Result<ImportSummary, ExportError> {
    let (prepared, need_credentials, next_id) = prepare(document, options)?;
    if !store.holds_no_tenants().await? {
        return Err(ExportError::HoldsTenants);
    }
    // Inbox values are numbered by sled's generator: past every imported one first.
    store.advance_generated_ids(next_id).await?;
    let mut summary = ImportSummary {
        need_credentials,
        ..ImportSummary::default()
    };
    for record in &document.meta {
        let (key, value) = record.to_raw().map_err(ExportError::Format)?;
        store.put_other_meta(&key, &value).await?;
    }
    for tenant in prepared {
        let tree = store.tenant(&tenant.id).await?;
        for (key, value) in &tenant.records {
            tree.put_raw(key, value).await?;
        }
        summary.records += tenant.records.len();
        if let Some(spec) = &tenant.spec {
            store.put_tenant_spec(spec).await?;
            summary.tenants += 1;
        }
    }
    store.flush().await?;
    Ok(summary)
}

/// Whether `dir` may receive an import: missing, or holding nothing but a key file.
pub fn ensure_empty_data_dir(dir: &Path) -> Result<(), ExportError> {
    let not_empty = || ExportError::NotEmpty {
        dir: dir.display().to_string(),
    };
    refuse_unfinished_import(dir)?;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => return Err(not_empty()),
    };
    for entry in entries {
        let entry = entry.map_err(|_| not_empty())?;
        if entry.file_name() != DATA_DIR_KEY_FILE {
            return Err(not_empty());
        }
    }
    Ok(())
}

/// Reads a document.
pub fn read_document(reader: impl std::io::Read) -> Result<ExportDocument, ExportError> {
    serde_json::from_reader(std::io::BufReader::new(reader))
        .map_err(|error| ExportError::Format(error.to_string()))
}

/// Writes a document, pretty, with a final newline.
pub fn write_document(
    mut writer: impl std::io::Write,
    document: &ExportDocument,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut writer, document)?;
    writeln!(writer)?;
    writer.flush()
}

/// Writes `document` to `path`: into a new file readable by its owner only, beside
/// `path`, synced, then moved into place. An existing `path` (a symlink included) is
/// refused unless `force`, and then replaced, never written through.
pub fn write_output_file(
    path: &Path,
    force: bool,
    document: &ExportDocument,
) -> Result<(), ExportError> {
    let fail = |message: String| ExportError::Output {
        path: path.display().to_string(),
        message,
    };
    match std::fs::symlink_metadata(path) {
        Ok(found) if found.is_dir() => return Err(fail("it is a directory".into())),
        Ok(_) if !force => {
            return Err(fail("the file exists; pass --force to replace it".into()));
        }
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(fail(error.to_string())),
    }
    let name = path
        .file_name()
        .ok_or_else(|| fail("the path names no file".into()))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{}.{}-{:08x}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let file = create_private_file(&temp)?;
        write_document(&file, document)?;
        file.sync_all()?;
        if force {
            std::fs::rename(&temp, path)?;
        } else {
            // A link fails if `path` appeared meanwhile: nothing is ever replaced.
            std::fs::hard_link(&temp, path)?;
            std::fs::remove_file(&temp)?;
        }
        sync_dir(&dir)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(error.to_string()));
    }
    Ok(())
}

/// Creates a new file (never an existing one, never through a symlink), readable by
/// its owner only on Unix.
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes the entries of `dir` (a rename, a new or removed file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Refuses a data dir an interrupted import left behind.
pub fn refuse_unfinished_import(dir: &Path) -> Result<(), ExportError> {
    if std::fs::symlink_metadata(dir.join(IMPORT_MARKER)).is_ok() {
        return Err(ExportError::Unfinished {
            dir: dir.display().to_string(),
        });
    }
    Ok(())
}

/// Marks `dir` (which must exist) as holding an import in progress, durably, before
/// anything is written into it.
pub fn begin_import(dir: &Path) -> std::io::Result<()> {
    let marker = create_private_file(&dir.join(IMPORT_MARKER))?;
    marker.sync_all()?;
    sync_dir(dir)
}

/// Marks the import into `dir` complete (call once everything is durable and the
/// database is closed).
pub fn finish_import(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_file(dir.join(IMPORT_MARKER))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::parse_spec;
    use crate::store::EmployeeRecord;
    use crate::store::crypto::SecretKey;
    use crate::store::inbox::InboxEvent;
    use serde_json::json;

    fn spec(id: &str) -> TenantSpec {
        let mut spec = parse_spec(json!({
            "id": id,
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": "p-secret-1"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "l-secret-2"},
            "settings": {"invite_policy": {"mode": "immediately"}}
        }))
        .unwrap();
        spec.webhook = Some(WebhookSecrets::generate());
        spec
    }

    /// A store with two tenants, one deleted without purge, and every record kind.
    async fn filled(dir: &Path) -> Store {
        fill(
            Store::open_with_key(dir, 8, SecretKey::generate())
                .await
                .unwrap(),
        )
        .await
    }

    /// `store` given two tenants, one deleted without purge, and every record kind.
    async fn fill(store: Store) -> Store {
        for id in ["acme", "beta"] {
            store.put_tenant_spec(&spec(id)).await.unwrap();
            let tenant = store.tenant(id).await.unwrap();
            let record = EmployeeRecord {
                learnamp_id: 93,
                invited: true,
                ..EmployeeRecord::default()
            };
            tenant.put_employee("4711", &record).unwrap();
            tenant.mark_initial_sync_done().unwrap();
            tenant.append_history("created 4711").unwrap();
            tenant
                .push_event(&InboxEvent {
                    received_at: "now".into(),
                    event_name: "person.updated".into(),
                    occurred_at: "now".into(),
                    person_id: Some("4711".into()),
                })
                .await
                .unwrap();
            tenant
                .put_raw(b"due\0\x00\x01/x\xff", b"\x00\x01")
                .await
                .unwrap();
            tenant.put_raw(b"state\0nothing", b"null").await.unwrap();
        }
        store.remove_tenant("beta", false).await.unwrap();
        store.flush().await.unwrap();
        store
    }

    /// Every tenant tree: id and raw entries.
    type Trees = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

    async fn all_raw(store: &Store) -> Trees {
        let mut ids = store.tenant_tree_ids().await.unwrap();
        ids.sort();
        let mut trees = Vec::with_capacity(ids.len());
        for id in ids {
            let entries = store
                .tenant(&id)
                .await
                .unwrap()
                .raw_entries()
                .await
                .unwrap();
            trees.push((id, entries));
        }
        trees
    }

    #[tokio::test]
    async fn export_then_import_restores_everything_byte_exact() {
        let source_dir = tempfile::tempdir().unwrap();
        let source = filled(source_dir.path()).await;
        let document = export(&source, true).await.unwrap();
        let mut text = Vec::new();
        write_document(&mut text, &document).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("\"key\": \"emp/4711\""), "{text}");
        assert!(text.contains("p-secret-1"));

        let target_dir = tempfile::tempdir().unwrap();
        let target_path = target_dir.path().join("data");
        ensure_empty_data_dir(&target_path).unwrap();
        let target = Store::open_with_key(&target_path, 8, SecretKey::generate())
            .await
            .unwrap();
        let document = read_document(text.as_bytes()).unwrap();
        let summary = import(&target, &document, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(summary.tenants, 1);
        assert!(summary.need_credentials.is_empty());
        assert_eq!(all_raw(&target).await, all_raw(&source).await);
        assert_eq!(
            target.tenant_specs().await.unwrap(),
            source.tenant_specs().await.unwrap()
        );
        let event_ids: Vec<u64> = target
            .tenant("acme")
            .await
            .unwrap()
            .pending_events(10)
            .await
            .unwrap()
            .into_iter()
            .map(|(sequence, _)| sequence)
            .collect();
        let next = target
            .tenant("acme")
            .await
            .unwrap()
            .push_event(&InboxEvent {
                received_at: "later".into(),
                event_name: "person.created".into(),
                occurred_at: "later".into(),
                person_id: None,
            })
            .await
            .unwrap();
        assert!(
            event_ids.iter().all(|old| *old < next),
            "{event_ids:?} {next}"
        );

        let error = import(&target, &document, ImportOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ExportError::HoldsTenants), "{error}");
        assert!(ensure_empty_data_dir(&target_path).is_err());
    }

    /// The raw format is the same on both backends: sled -> PostgreSQL -> sled keeps
    /// every byte, the inbox included.
    #[tokio::test]
    async fn an_export_moves_from_sled_to_postgres_and_back_byte_exact() {
        use crate::store::conformance::postgres_store_with_key;
        use crate::store::postgres_testing::fresh_database;
        let test = "an_export_moves_from_sled_to_postgres_and_back_byte_exact";
        let Some(database) = fresh_database(test).await else {
            return;
        };
        let source_dir = tempfile::tempdir().unwrap();
        let sled = filled(source_dir.path()).await;
        let from_sled = export(&sled, true).await.unwrap();

        let key = SecretKey::generate();
        let postgres = postgres_store_with_key(&database, key.clone()).await;
        let summary = import(&postgres, &from_sled, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(summary.tenants, 1);
        let expected = all_raw(&sled).await;
        assert!(
            expected[0]
                .1
                .iter()
                .any(|(key, _)| key.starts_with(b"inbox\0")),
            "the inbox is part of the export"
        );
        assert_eq!(all_raw(&postgres).await, expected);
        assert_eq!(
            postgres.tenant_specs().await.unwrap(),
            sled.tenant_specs().await.unwrap()
        );
        let acme = postgres.tenant("acme").await.unwrap();
        let pending = acme.pending_events(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let next = acme.push_event(&pending[0].1).await.unwrap();
        assert!(pending[0].0 < next, "new events number after imported ones");
        acme.remove_events(&[next]).await.unwrap();

        // Durable: a new connection reads the same.
        drop(acme);
        drop(postgres);
        let postgres = postgres_store_with_key(&database, key).await;
        let from_postgres = export(&postgres, true).await.unwrap();
        let target_dir = tempfile::tempdir().unwrap();
        let target =
            Store::open_with_key(&target_dir.path().join("data"), 8, SecretKey::generate())
                .await
                .unwrap();
        import(&target, &from_postgres, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(all_raw(&target).await, expected);
        assert_eq!(
            target.tenant_specs().await.unwrap(),
            sled.tenant_specs().await.unwrap()
        );
    }

    #[tokio::test]
    async fn secrets_stay_out_unless_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path()).await;
        let document = export(&store, false).await.unwrap();
        let mut text = Vec::new();
        write_document(&mut text, &document).unwrap();
        let text = String::from_utf8(text).unwrap();
        let original = store.tenant_spec("acme").await.unwrap().unwrap();
        let webhook = original.webhook.clone().unwrap();
        for secret in [
            "p-secret-1",
            "l-secret-2",
            webhook.key.expose(),
            webhook.token.expose(),
        ] {
            assert!(!text.contains(secret), "{secret} exported");
        }
        assert!(text.contains("\"client_secret\": null"));

        let target = Store::temporary().await.unwrap();
        let error = import(&target, &document, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("--with-secrets"), "{error}");
        assert!(target.holds_no_tenants().await.unwrap(), "nothing written");
        let options = ImportOptions {
            allow_missing_secrets: true,
        };
        let summary = import(&target, &document, options).await.unwrap();
        assert_eq!(summary.need_credentials, vec!["acme".to_string()]);
        let restored = target.tenant_spec("acme").await.unwrap().unwrap();
        assert_eq!(restored.settings, original.settings);
        assert_eq!(
            restored.personio.as_ref().unwrap().client_secret.expose(),
            ""
        );
        assert_ne!(restored.webhook, original.webhook);
    }

    #[tokio::test]
    async fn a_sign_in_connection_travels_sealed_and_only_with_secrets() {
        let source = Store::temporary().await.unwrap();
        let mut spec = crate::domain::tenant::parse_spec(serde_json::json!({
            "id": "oidc",
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "l-secret-9"}
        }))
        .unwrap();
        spec.webhook = Some(WebhookSecrets::generate());
        spec.personio_oidc = Some(crate::domain::tenant::OidcConnection {
            base_url: "http://p".into(),
            issuer: "http://p".into(),
            subject: "user-1".into(),
            email: Some("admin@oidc.test".into()),
            refresh_token: "refresh-token-5e1f".into(),
        });
        spec.connection = Some(crate::domain::tenant::ConnectionInfo {
            method: crate::domain::tenant::ConnectionMethod::Oidc,
            by: Some("admin@oidc.test".into()),
            at: "2026-12-07T00:00:00+00:00".into(),
        });
        assert!(source.insert_new_tenant_spec(&spec).await.unwrap());

        let with = export(&source, true).await.unwrap();
        let target = Store::temporary().await.unwrap();
        import(&target, &with, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(target.tenant_spec("oidc").await.unwrap().unwrap(), spec);

        let without = export(&source, false).await.unwrap();
        let mut text = Vec::new();
        write_document(&mut text, &without).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains("refresh-token-5e1f"), "{text}");
        assert!(text.contains("\"refresh_token\": null"), "{text}");
        assert!(
            text.contains("admin@oidc.test"),
            "the connection is carried"
        );
        let target = Store::temporary().await.unwrap();
        let options = ImportOptions {
            allow_missing_secrets: true,
        };
        let summary = import(&target, &without, options).await.unwrap();
        assert_eq!(summary.need_credentials, vec!["oidc".to_string()]);
        let restored = target.tenant_spec("oidc").await.unwrap().unwrap();
        assert_eq!(restored.connection, spec.connection);
        let oidc = restored.personio_oidc.unwrap();
        assert_eq!(oidc.subject, "user-1");
        assert_eq!(oidc.refresh_token.expose(), "");
    }

    #[test]
    fn keys_show_readably_and_come_back_exactly() {
        for key in [
            b"emp\x004711".to_vec(),
            b"hist\0\0\0\0\0\0\0\0\x2a".to_vec(),
            b"a/b\0c".to_vec(),
            b"\xff".to_vec(),
        ] {
            let record = Record::from_raw(&key, b"{\"a\":1}");
            assert_eq!(
                record.to_raw().unwrap(),
                (key.clone(), b"{\"a\":1}".to_vec())
            );
        }
        let record = Record::from_raw(b"emp\x004711", b"1");
        assert_eq!(record.key, "emp/4711");
        assert!(record.key_hex.is_none() && record.value.is_some());
        let record = Record::from_raw(b"hist\0\0\0\0\0\0\0\0\x2a", b" {}");
        assert_eq!(record.key, "hist/#000000000000002a");
        assert_eq!(record.value_hex.as_deref(), Some("207b7d"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_output_file_is_never_written_through_or_over_without_force() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = filled(&dir.path().join("data")).await;
        let document = export(&store, true).await.unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

        let existing = dir.path().join("existing.json");
        std::fs::write(&existing, "keep me").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = write_output_file(&existing, false, &document).unwrap_err();
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
        assert_eq!(mode(&existing), 0o644);
        write_output_file(&existing, true, &document).unwrap();
        assert_eq!(mode(&existing), 0o600);
        assert!(
            std::fs::read_to_string(&existing)
                .unwrap()
                .contains("p-secret-1")
        );

        let target = dir.path().join("target.txt");
        std::fs::write(&target, "not yours").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_output_file(&link, false, &document).is_err());
        write_output_file(&link, true, &document).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours");
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(mode(&link), 0o600);
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(write_output_file(&dangling, false, &document).is_err());
        assert!(!dir.path().join("nowhere").exists());

        let fresh = dir.path().join("fresh.json");
        write_output_file(&fresh, false, &document).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[tokio::test]
    async fn the_id_generator_is_advanced_first_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let source = filled(dir.path()).await;
        let mut document = export(&source, true).await.unwrap();
        // The generator goes past every imported inbox value; an absurd one is capped,
        // not looped to.
        let inbox_ids: Vec<u64> = document
            .tenants
            .iter()
            .flat_map(|tenant| &tenant.records)
            .filter_map(|record| crate::store::inbox::stored_value_id(&record.to_raw().unwrap().0))
            .collect();
        assert!(!inbox_ids.is_empty());
        document.id_generator = 0;
        let (_, _, next) = prepare(&document, ImportOptions::default()).unwrap();
        assert!(
            inbox_ids.iter().all(|id| *id < next),
            "{inbox_ids:?} {next}"
        );
        document.id_generator = u64::MAX;
        let (_, _, next) = prepare(&document, ImportOptions::default()).unwrap();
        assert_eq!(next, MAX_ID_GENERATOR);
        // An inbox numbered beyond the cap is refused before anything is written.
        let mut document = export(&source, true).await.unwrap();
        let mut key = b"inbox\0".to_vec();
        key.extend_from_slice(&MAX_ID_GENERATOR.to_be_bytes());
        document.tenants[0]
            .records
            .push(Record::from_raw(&key, b"{}"));
        let target = Store::temporary().await.unwrap();
        let error = import(&target, &document, ImportOptions::default())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("inbox record"), "{error}");
        assert!(target.holds_no_tenants().await.unwrap());
    }

    #[test]
    fn an_unfinished_import_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        refuse_unfinished_import(dir.path()).unwrap();
        begin_import(dir.path()).unwrap();
        let error = refuse_unfinished_import(dir.path()).unwrap_err();
        assert!(error.to_string().contains("unfinished import"), "{error}");
        assert!(ensure_empty_data_dir(dir.path()).is_err());
        finish_import(dir.path()).unwrap();
        refuse_unfinished_import(dir.path()).unwrap();
    }

    #[test]
    fn short_webhook_secrets_are_refused_on_import() {
        use crate::domain::Secret;
        let mut spec = parse_spec(json!({
            "id": "acme",
            "personio": {"base_url": "http://p", "client_id": "c", "client_secret": "s"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "s"}
        }))
        .unwrap();
        spec.webhook = Some(WebhookSecrets::generate());
        let good = serde_json::to_value(&spec).unwrap();
        assert!(decode_spec(&good, "acme", ImportOptions::default()).is_ok());
        for (key, token) in [
            ("k".repeat(31), "t".repeat(40)),
            ("k".repeat(32), "t".repeat(31)),
        ] {
            spec.webhook = Some(WebhookSecrets {
                key: Secret::new(key),
                token: Secret::new(token.clone()),
            });
            let json = serde_json::to_value(&spec).unwrap();
            let error = decode_spec(&json, "acme", ImportOptions::default()).unwrap_err();
            assert!(error.contains("at least 32"), "{error}");
            assert!(!error.contains(&token), "{error}");
        }
    }

    #[test]
    fn foreign_documents_are_refused() {
        let error = read_document(&b"{\"format\": \"x\"}"[..]).unwrap_err();
        assert!(matches!(error, ExportError::Format(_)));
        let document = ExportDocument {
            format: "other".into(),
            version: VERSION,
            exported_at: String::new(),
            with_secrets: true,
            id_generator: 0,
            meta: Vec::new(),
            tenants: Vec::new(),
        };
        assert!(prepare(&document, ImportOptions::default()).is_err());
    }
}
