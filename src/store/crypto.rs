//! Secrets at rest: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under a 32-byte
//! key, and the rules for finding that key.
//!
//! ## Storage format
//!
//! A stored tenant spec is the spec's JSON with each secret string (the Personio and
//! Learn Amp client secrets, the Personio webhook signing secret, the webhook key and
//! token, the refresh token of a "Sign in with Personio" connection) replaced by
//! `{"enc": "<hex of 24-byte nonce ‖ ciphertext ‖ 16-byte tag>"}`. The associated data
//! binds each sealed value to its tenant and field
//! (`personio-sync/v1/tenant/<id>/<field path>`), so a sealed value copied to another
//! field or tenant does not open. Everything else in the spec stays readable.
//!
//! The `meta` tree also holds a sealed constant under `secret_key_check`: opening a
//! store with another key fails at once with [`CryptoError::WrongKey`] instead of
//! failing later tenant by tenant.
//!
//! ## The key
//!
//! 64 hex digits (32 bytes), from the first of: the `PERSONIO_SYNC_SECRET_KEY`
//! environment variable, the file named by `storage.key_file`, or `<data_dir>/secret.key`
//! (created with mode 0600 for a new database; a warning says production should keep
//! the key apart from the data).

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde_json::Value;

/// The environment variable that holds the secret key (64 hex digits).
pub const KEY_ENV: &str = "PERSONIO_SYNC_SECRET_KEY";

/// The key file created in the data dir when no key is given.
pub const DATA_DIR_KEY_FILE: &str = "secret.key";

/// Bytes of a key.
const KEY_LEN: usize = 32;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// The JSON paths of every secret in a tenant spec.
const SECRET_PATHS: [[&str; 2]; 6] = [
    ["personio", "client_secret"],
    ["personio", "webhook_signing_secret"],
    ["learnamp", "client_secret"],
    ["webhook", "key"],
    ["webhook", "token"],
    ["personio_oidc", "refresh_token"],
];
/// The field name of a sealed value.
const SEALED_FIELD: &str = "enc";
/// The plaintext sealed under `secret_key_check`.
const KEY_CHECK_PLAINTEXT: &[u8] = b"personio-sync secret key check";
/// The associated data of the key check.
const KEY_CHECK_CONTEXT: &[u8] = b"personio-sync/v1/key-check";
/// What a derived key's purpose follows (see [`SecretBox::derive_key`]).
const DERIVED_KEY_CONTEXT: &[u8] = b"personio-sync/v1/derived/";

/// A key or sealed-value problem. No variant carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key text is not 64 hex digits.
    #[error(
        "the secret key from {origin} must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`"
    )]
    MalformedKey {
        /// Where the key came from (variable or file name).
        origin: String,
    },
    /// A key file could not be read or created.
    #[error("cannot {action} the secret key file {path}: {source}")]
    KeyFile {
        /// `read` or `create`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database holds encrypted secrets but no key was given and the data dir has
    /// no key file.
    #[error(
        "the database in {dir} holds encrypted secrets but no key was found: set {KEY_ENV} or storage.key_file to the key they were stored with"
    )]
    MissingKey {
        /// The data dir.
        dir: PathBuf,
    },
    /// The key does not open the stored secrets.
    #[error(
        "the secret key does not match the one the stored secrets were encrypted with; give the original key ({KEY_ENV}, storage.key_file or <data_dir>/{DATA_DIR_KEY_FILE})"
    )]
    WrongKey,
    /// A sealed value is malformed or fails authentication.
    #[error("the sealed secret at {field} cannot be opened (wrong key or damaged data)")]
    Unseal {
        /// Where the value was.
        field: String,
    },
    /// Encryption failed (only for absurdly large values).
    #[error("a secret could not be encrypted")]
    Seal,
}

/// A 32-byte key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// A fresh random key from the OS-seeded CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses 64 hex digits (surrounding whitespace ignored); `origin` names the source
    /// in the error.
    pub fn from_hex(text: &str, origin: &str) -> Result<Self, CryptoError> {
        let malformed = || CryptoError::MalformedKey {
            origin: origin.to_string(),
        };
        let bytes = decode_hex(text.trim()).ok_or_else(malformed)?;
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self(array))
    }

    /// Reads a key file holding 64 hex digits.
    pub fn read_file(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFile {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if key_file_is_shared(path) {
            tracing::warn!(
                key_file = %path.display(),
                "the secret key file is readable by group or others; make it readable by its owner only (chmod 600)"
            );
        }
        Self::from_hex(&text, &path.display().to_string())
    }

    /// Writes a fresh key to a new file `path` (mode 0600 on Unix; an existing file is
    /// never overwritten).
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let key = Self::generate();
        let created = |source| CryptoError::KeyFile {
            action: "create",
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(created)?;
        writeln!(file, "{}", encode_hex(&key.0)).map_err(created)?;
        file.sync_all().map_err(created)?;
        Ok(key)
    }
}

/// Whether the file at `path` grants any access to group or others (always `false`
/// where file modes do not exist).
pub fn key_file_is_shared(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Where a store's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A key given by the operator (environment variable or `storage.key_file`).
    Given(SecretKey),
    /// `<data_dir>/secret.key`, created for a new database.
    DataDir,
}

impl KeySource {
    /// The operator's choice: `env_value` (from [`KEY_ENV`]) first, then `key_file`
    /// (empty path = none), else the data dir's own key file.
    pub fn resolve(env_value: Option<&str>, key_file: &Path) -> Result<Self, CryptoError> {
        if let Some(text) = env_value.filter(|text| !text.trim().is_empty()) {
            return Ok(Self::Given(SecretKey::from_hex(text, KEY_ENV)?));
        }
        if !key_file.as_os_str().is_empty() {
            return Ok(Self::Given(SecretKey::read_file(key_file)?));
        }
        Ok(Self::DataDir)
    }

    /// [`KeySource::resolve`] with the process environment.
    pub fn from_env(key_file: &Path) -> Result<Self, CryptoError> {
        Self::resolve(std::env::var(KEY_ENV).ok().as_deref(), key_file)
    }

    /// The key itself. For [`KeySource::DataDir`], reads `<dir>/secret.key`, or creates
    /// it when `may_create` (a database without encrypted secrets yet) and warns.
    pub fn into_key(self, dir: &Path, may_create: bool) -> Result<SecretKey, CryptoError> {
        match self {
            Self::Given(key) => Ok(key),
            Self::DataDir => {
                let path = dir.join(DATA_DIR_KEY_FILE);
                let key = if path.exists() {
                    SecretKey::read_file(&path)?
                } else if may_create {
                    SecretKey::create_file(&path)?
                } else {
                    return Err(CryptoError::MissingKey {
                        dir: dir.to_path_buf(),
                    });
                };
                tracing::warn!(
                    key_file = %path.display(),
                    "secrets are encrypted with a key kept in the data dir; in production set {KEY_ENV} or storage.key_file so the key is kept apart from the data"
                );
                Ok(key)
            }
        }
    }
}

/// Seals and opens secret values under one key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    key: SecretKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A box for `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key.0)),
            key: key.clone(),
        }
    }

    /// A 32-byte key for `purpose`, derived from this box's key (HMAC-SHA256 of
    /// `personio-sync/v1/derived/<purpose>`): every process with the same key derives
    /// the same one, and it is never stored. Different purposes give unrelated keys.
    pub fn derive_key(&self, purpose: &str) -> [u8; KEY_LEN] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key.0)
            .expect("HMAC accepts keys of any length");
        mac.update(DERIVED_KEY_CONTEXT);
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts `plaintext` bound to `context` (associated data): hex of
    /// nonce ‖ ciphertext ‖ tag, with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(encode_hex(&sealed))
    }

    /// Decrypts what [`SecretBox::seal`] produced with the same `context`; `None` when
    /// malformed, damaged or sealed under another key or context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let bytes = decode_hex(sealed)?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
    }

    /// The value stored under `secret_key_check` in a new database.
    pub fn key_check(&self) -> Result<String, CryptoError> {
        self.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT)
    }

    /// Whether `stored` (the `secret_key_check` value) was sealed with this key.
    pub fn verify_key_check(&self, stored: &[u8]) -> Result<(), CryptoError> {
        let text = std::str::from_utf8(stored).map_err(|_| CryptoError::WrongKey)?;
        match self.open(text, KEY_CHECK_CONTEXT) {
            Some(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(CryptoError::WrongKey),
        }
    }

    /// Replaces every secret string of a tenant spec's JSON with `{"enc": …}`.
    pub fn seal_spec(&self, spec: &mut Value) -> Result<(), CryptoError> {
        let id = spec_id(spec);
        for path in SECRET_PATHS {
            let Some(slot) = slot_mut(spec, &path) else {
                continue;
            };
            if let Value::String(plain) = slot {
                let sealed = self.seal(plain.as_bytes(), &context(&id, &path))?;
                *slot = serde_json::json!({ SEALED_FIELD: sealed });
            }
        }
        Ok(())
    }

    /// Opens every `{"enc": …}` of a stored spec's JSON in place. Returns whether a
    /// secret was found in clear (written before encryption at rest existed).
    pub fn open_spec(&self, spec: &mut Value) -> Result<bool, CryptoError> {
        let id = spec_id(spec);
        let mut found_clear = false;
        for path in SECRET_PATHS {
            let Some(slot) = slot_mut(spec, &path) else {
                continue;
            };
            match slot {
                Value::String(_) => found_clear = true,
                Value::Object(object) => {
                    let field = || CryptoError::Unseal {
                        field: format!("tenant {id}: {}", path.join(".")),
                    };
                    let sealed = object
                        .get(SEALED_FIELD)
                        .and_then(Value::as_str)
                        .ok_or_else(field)?;
                    let plain = self
                        .open(sealed, &context(&id, &path))
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .ok_or_else(field)?;
                    *slot = Value::String(plain);
                }
                _ => {}
            }
        }
        Ok(found_clear)
    }
}

/// Replaces every secret of a tenant spec's JSON (clear or sealed) with `null`.
pub fn strip_spec_secrets(spec: &mut Value) {
    for path in SECRET_PATHS {
        if let Some(slot) = slot_mut(spec, &path) {
            *slot = Value::Null;
        }
    }
}

fn spec_id(spec: &Value) -> String {
    spec.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn slot_mut<'a>(spec: &'a mut Value, path: &[&str; 2]) -> Option<&'a mut Value> {
    spec.get_mut(path[0])?.get_mut(path[1])
}

fn context(id: &str, path: &[&str; 2]) -> Vec<u8> {
    format!("personio-sync/v1/tenant/{id}/{}", path.join(".")).into_bytes()
}

/// Lowercase hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Hex (either case) to bytes; `None` if not hex of even length.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "id": "acme",
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": "p-secret"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "l-secret"},
            "webhook": {"key": "hook-key", "token": "Bearer hook-token"}
        })
    }

    #[test]
    fn sealed_specs_hide_every_secret_and_open_again() {
        let secrets = SecretBox::new(&SecretKey::generate());
        let mut value = spec();
        secrets.seal_spec(&mut value).unwrap();
        let text = value.to_string();
        for secret in ["p-secret", "l-secret", "hook-key", "hook-token"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(value["personio"]["client_secret"]["enc"].is_string());
        assert_eq!(value["personio"]["client_id"], "a");
        assert!(!secrets.open_spec(&mut value).unwrap());
        assert_eq!(value, spec());
    }

    #[test]
    fn another_key_or_field_does_not_open() {
        let secrets = SecretBox::new(&SecretKey::generate());
        let mut value = spec();
        secrets.seal_spec(&mut value).unwrap();
        let other = SecretBox::new(&SecretKey::generate());
        let error = other.open_spec(&mut value.clone()).unwrap_err();
        assert!(matches!(error, CryptoError::Unseal { .. }), "{error}");
        assert!(error.to_string().contains("personio.client_secret"));
        let mut swapped = value.clone();
        swapped["learnamp"]["client_secret"] = value["personio"]["client_secret"].clone();
        assert!(secrets.open_spec(&mut swapped).is_err());
        let mut renamed = value.clone();
        renamed["id"] = json!("other");
        assert!(secrets.open_spec(&mut renamed).is_err());
    }

    #[test]
    fn clear_secrets_are_reported() {
        let secrets = SecretBox::new(&SecretKey::generate());
        let mut value = spec();
        assert!(secrets.open_spec(&mut value).unwrap());
        assert_eq!(value, spec());
    }

    #[test]
    fn derived_keys_depend_on_the_key_and_the_purpose_only() {
        let key = SecretKey::generate();
        let derived = SecretBox::new(&key).derive_key("settings-preview");
        assert_eq!(SecretBox::new(&key).derive_key("settings-preview"), derived);
        assert_ne!(SecretBox::new(&key).derive_key("other"), derived);
        assert_ne!(
            SecretBox::new(&SecretKey::generate()).derive_key("settings-preview"),
            derived
        );
        assert_ne!(derived, key.0, "never the key itself");
    }

    #[test]
    fn key_check_detects_a_wrong_key() {
        let key = SecretKey::generate();
        let check = SecretBox::new(&key).key_check().unwrap();
        assert!(
            SecretBox::new(&key)
                .verify_key_check(check.as_bytes())
                .is_ok()
        );
        let error = SecretBox::new(&SecretKey::generate())
            .verify_key_check(check.as_bytes())
            .unwrap_err();
        assert!(matches!(error, CryptoError::WrongKey));
    }

    #[test]
    fn keys_parse_from_hex_only() {
        let hex = "00".repeat(31) + "ff";
        let key = SecretKey::from_hex(&format!(" {hex}\n"), "test").unwrap();
        assert_eq!(key.0[31], 0xff);
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        for bad in ["", "abc", &"zz".repeat(32), &"00".repeat(31)] {
            let error = SecretKey::from_hex(bad, "VAR").unwrap_err().to_string();
            assert!(error.contains("VAR") && error.contains("64 hex"), "{error}");
        }
    }

    #[test]
    fn key_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, "11".repeat(32)).unwrap();
        let env = "22".repeat(32);
        let KeySource::Given(key) = KeySource::resolve(Some(&env), &file).unwrap() else {
            panic!("env key expected");
        };
        assert_eq!(key.0[0], 0x22);
        let KeySource::Given(key) = KeySource::resolve(Some(" "), &file).unwrap() else {
            panic!("file key expected");
        };
        assert_eq!(key.0[0], 0x11);
        assert!(matches!(
            KeySource::resolve(None, Path::new("")).unwrap(),
            KeySource::DataDir
        ));
        assert!(KeySource::resolve(None, &dir.path().join("missing")).is_err());
    }

    #[test]
    fn data_dir_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            KeySource::DataDir.into_key(dir.path(), false),
            Err(CryptoError::MissingKey { .. })
        ));
        let first = KeySource::DataDir.into_key(dir.path(), true).unwrap();
        let again = KeySource::DataDir.into_key(dir.path(), false).unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DATA_DIR_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let path = dir.path().join(DATA_DIR_KEY_FILE);
            assert!(!key_file_is_shared(&path));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(key_file_is_shared(&path));
        }
    }

    fn tenant(id: &str) -> crate::domain::tenant::TenantSpec {
        let mut spec = crate::domain::tenant::parse_spec(json!({
            "id": id,
            "personio": {"base_url": "http://p", "client_id": "visible-client-id", "client_secret": "p-secret-4f1c9e",
                         "webhook_signing_secret": "p-signing-5be07a"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "l-secret-83ab2d"}
        }))
        .unwrap();
        spec.webhook = Some(crate::domain::tenant::WebhookSecrets {
            key: "hook-key-77e0c1".into(),
            token: "Bearer hook-token-a9d350".into(),
        });
        spec
    }

    fn all_bytes_under(dir: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                bytes.extend(all_bytes_under(&path));
            } else {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        bytes
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    }

    #[tokio::test]
    async fn secrets_never_reach_the_sled_files() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate();
        {
            let store = Store::open_with_key(dir.path(), 8, key.clone())
                .await
                .unwrap();
            assert!(store.insert_new_tenant_spec(&tenant("acme")).await.unwrap());
            store.put_tenant_spec(&tenant("acme")).await.unwrap();
            store.flush().await.unwrap();
        }
        let files = all_bytes_under(dir.path());
        assert!(
            contains(&files, "visible-client-id"),
            "the scan sees stored specs"
        );
        for secret in [
            "p-secret-4f1c9e",
            "p-signing-5be07a",
            "l-secret-83ab2d",
            "hook-key-77e0c1",
            "hook-token-a9d350",
        ] {
            assert!(
                !contains(&files, secret),
                "{secret} found in the sled files"
            );
        }
        let store = Store::open_with_key(dir.path(), 8, key).await.unwrap();
        assert_eq!(
            store.tenant_spec("acme").await.unwrap().unwrap(),
            tenant("acme")
        );
        assert_eq!(store.tenant_specs().await.unwrap(), vec![tenant("acme")]);
        drop(store);
        let error = Store::open_with_key(dir.path(), 8, SecretKey::generate())
            .await
            .err()
            .expect("a wrong key is refused");
        assert!(
            matches!(
                error,
                crate::store::StoreError::Crypto(CryptoError::WrongKey)
            ),
            "{error}"
        );
        assert!(error.to_string().contains("does not match"), "{error}");
        let error = Store::open(dir.path(), 8)
            .await
            .err()
            .expect("no key in the data dir");
        assert!(error.to_string().contains(KEY_ENV), "{error}");
        assert!(!dir.path().join(DATA_DIR_KEY_FILE).exists());
    }

    #[tokio::test]
    async fn a_sign_in_refresh_token_never_reaches_the_sled_files() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate();
        let mut spec = tenant("oidc");
        spec.personio = None;
        spec.personio_oidc = Some(crate::domain::tenant::OidcConnection {
            base_url: "http://p".into(),
            issuer: "http://issuer".into(),
            subject: "visible-subject-1".into(),
            email: None,
            refresh_token: "refresh-token-0c7d1e".into(),
        });
        {
            let store = Store::open_with_key(dir.path(), 8, key.clone())
                .await
                .unwrap();
            assert!(store.insert_new_tenant_spec(&spec).await.unwrap());
            let rotated = store
                .update_tenant_spec("oidc", |stored| {
                    if let Some(oidc) = stored.personio_oidc.as_mut() {
                        oidc.refresh_token = "refresh-token-rotated-44a0".into();
                    }
                })
                .await
                .unwrap();
            assert_eq!(rotated, Some(()));
            store.flush().await.unwrap();
        }
        let files = all_bytes_under(dir.path());
        assert!(
            contains(&files, "visible-subject-1"),
            "the scan sees the spec"
        );
        for secret in ["refresh-token-0c7d1e", "refresh-token-rotated-44a0"] {
            assert!(
                !contains(&files, secret),
                "{secret} found in the sled files"
            );
        }
        let store = Store::open_with_key(dir.path(), 8, key).await.unwrap();
        let stored = store.tenant_spec("oidc").await.unwrap().unwrap();
        assert_eq!(
            stored.personio_oidc.unwrap().refresh_token.expose(),
            "refresh-token-rotated-44a0"
        );
    }

    #[tokio::test]
    async fn the_default_key_lives_in_the_data_dir() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 8).await.unwrap();
            store.put_tenant_spec(&tenant("acme")).await.unwrap();
        }
        let key = SecretKey::read_file(&dir.path().join(DATA_DIR_KEY_FILE)).unwrap();
        let store = Store::open(dir.path(), 8).await.unwrap();
        assert_eq!(store.tenant_specs().await.unwrap(), vec![tenant("acme")]);
        drop(store);
        let store = Store::open_with_key(dir.path(), 8, key).await.unwrap();
        assert_eq!(store.tenant_specs().await.unwrap(), vec![tenant("acme")]);
    }

    #[tokio::test]
    async fn secrets_stored_in_clear_are_sealed_at_open() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate();
        {
            let store = Store::open_with_key(dir.path(), 8, key.clone())
                .await
                .unwrap();
            let clear = serde_json::to_vec(&tenant("old")).unwrap();
            store
                .backend
                .meta_insert(b"tenant\0old", clear)
                .await
                .unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open_with_key(dir.path(), 8, key).await.unwrap();
        assert_eq!(
            store.tenant_spec("old").await.unwrap().unwrap(),
            tenant("old")
        );
        let raw = store
            .backend
            .meta_get(b"tenant\0old")
            .await
            .unwrap()
            .unwrap();
        assert!(!contains(&raw, "p-secret-4f1c9e"));
        assert!(contains(&raw, "\"enc\""));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0, 1, 0xab, 0xff];
        assert_eq!(decode_hex(&encode_hex(&bytes)).unwrap(), bytes);
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("zz").is_none());
        assert!(decode_hex("é1").is_none());
    }
}
