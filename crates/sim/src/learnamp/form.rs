//! Request decoding: form bodies (URL-encoded and multipart) and query strings as ordered
//! key/value pairs with Rails conventions (`key[]` arrays, `customFields[][name]` objects),
//! JSON bodies for the membership routes, path segments with an optional `.json` suffix.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::error::{ApiError, FieldErrors, not_acceptable};

/// Largest form or JSON body read (the avatar route has its own limit).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Format suffixes that ask for something other than JSON (406).
const NON_JSON_FORMATS: [&str; 6] = [".xml", ".csv", ".html", ".txt", ".xlsx", ".pdf"];

/// Ordered key/value pairs of a form body or a query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Form {
    pairs: Vec<(String, String)>,
}

/// Whether a write creates a record or updates the record with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A create (`POST`).
    Create,
    /// An update of the record with this id.
    Update(u64),
}

impl Mode {
    /// The id being updated, which uniqueness checks skip; `None` on create.
    pub(super) fn own_id(self) -> Option<u64> {
        match self {
            Self::Create => None,
            Self::Update(id) => Some(id),
        }
    }

    /// What an absent text parameter adds: `on_create` on create; nothing on update, where
    /// absent means unchanged.
    pub(super) fn absent(self, on_create: Absent) -> Absent {
        match self {
            Self::Create => on_create,
            Self::Update(_) => Absent::Allowed,
        }
    }
}

/// What an absent text parameter adds to the field errors (see [`Form::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Absent {
    /// Nothing.
    Allowed,
    /// `is missing`.
    Missing,
    /// `is missing` and `is empty` (Grape's `allow_blank: false`).
    MissingAndEmpty,
}

/// One `customFields[]` entry as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CustomFieldInput {
    /// The field name (`None` if the entry had no name).
    pub name: Option<String>,
    /// The value; `None` or empty clears.
    pub value: Option<String>,
}

impl Form {
    /// Builds a form from pairs (tests and JSON conversion).
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Parses a URL-encoded string (body or query).
    pub(super) fn from_urlencoded(bytes: &[u8]) -> Result<Self, ApiError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
            .map(Self::from_pairs)
            .map_err(|_| ApiError::bad_request("Malformed form body"))
    }

    /// Parses an optional query string.
    pub(super) fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        match query {
            Some(q) => Self::from_urlencoded(q.as_bytes()),
            None => Ok(Self::default()),
        }
    }

    /// Whether `key` was sent at all.
    pub(super) fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The last value sent for `key` (Rack keeps the last one).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `None` if absent, `Some(None)` if sent empty (clear), `Some(Some(v))` otherwise.
    pub(super) fn optional(&self, key: &str) -> Option<Option<String>> {
        self.get(key).map(|v| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_string())
        })
    }

    /// Values of an array key `key[]` (or a comma-separated `key`); `None` when neither was
    /// sent. Empty values are dropped, so `key[]=` alone means "empty list".
    pub(super) fn list(&self, key: &str) -> Option<Vec<String>> {
        let array_key = format!("{key}[]");
        let mut found = false;
        let mut values = Vec::new();
        for (k, v) in &self.pairs {
            if *k == array_key || k == key {
                found = true;
                values.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
        found.then_some(values)
    }

    /// A boolean parameter: `true`/`1`, `false`/`0`; anything else is `Err(())`.
    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, ()> {
        match self.get(key).map(str::trim) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") | Some("") => Ok(Some(false)),
            Some(_) => Err(()),
        }
    }

    /// A boolean flag that defaults to false; a value [`Form::boolean`] refuses adds
    /// `is invalid` (and reads as false).
    pub(super) fn flag(&self, key: &str, errors: &mut FieldErrors) -> bool {
        match self.boolean(key) {
            Ok(value) => value.unwrap_or(false),
            Err(()) => {
                errors.add(key, "is invalid");
                false
            }
        }
    }

    /// Whether a parameter was sent plain or as a `key[]` array.
    pub(super) fn sent(&self, key: &str) -> bool {
        self.has(key) || self.has(&format!("{key}[]"))
    }

    /// 400 `{"error": "a, b are mutually exclusive"}` (no `fullErrors`) for the first of
    /// `pairs` sent together.
    pub(super) fn check_exclusive(&self, pairs: &[(&str, &str)]) -> Result<(), ApiError> {
        match pairs.iter().find(|(a, b)| self.sent(a) && self.sent(b)) {
            Some((a, b)) => Err(ApiError::bad_request(format!(
                "{a}, {b} are mutually exclusive"
            ))),
            None => Ok(()),
        }
    }

    /// A text parameter that may not be blank: absent adds what `absent` says, sent empty
    /// (after trimming) adds `is empty`; otherwise the trimmed value.
    pub(super) fn text(
        &self,
        key: &str,
        absent: Absent,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        match self.get(key).map(str::trim) {
            None => {
                if absent != Absent::Allowed {
                    errors.add(key, "is missing");
                }
                if absent == Absent::MissingAndEmpty {
                    errors.add(key, "is empty");
                }
                None
            }
            Some("") => {
                errors.add(key, "is empty");
                None
            }
            Some(value) => Some(value.to_string()),
        }
    }

    /// An optional id that must name an existing record: `None` when absent, `Some(None)`
    /// when sent empty (clear). A non-numeric value adds `is invalid`, an unknown one
    /// `unknown`.
    pub(super) fn existing_id(
        &self,
        key: &str,
        exists: impl Fn(u64) -> bool,
        unknown: &str,
        errors: &mut FieldErrors,
    ) -> Option<Option<u64>> {
        let raw = self.optional(key)?;
        let Some(raw) = raw else {
            return Some(None);
        };
        match raw.parse::<u64>() {
            Ok(id) if exists(id) => Some(Some(id)),
            Ok(_) => {
                errors.add(key, unknown);
                None
            }
            Err(_) => {
                errors.add(key, "is invalid");
                None
            }
        }
    }

    /// An id list ([`Form::list`]) whose members must name existing records; `None` when
    /// not sent. The first bad member adds one message: `non_numeric` when it is not a
    /// number, `unknown` when no record has it.
    pub(super) fn existing_ids(
        &self,
        key: &str,
        exists: impl Fn(u64) -> bool,
        unknown: &str,
        non_numeric: &str,
        errors: &mut FieldErrors,
    ) -> Option<Vec<u64>> {
        let mut ids = Vec::new();
        for value in self.list(key)? {
            match value.parse::<u64>() {
                Ok(id) if exists(id) => ids.push(id),
                Ok(_) => {
                    errors.add(key, unknown);
                    return None;
                }
                Err(_) => {
                    errors.add(key, non_numeric);
                    return None;
                }
            }
        }
        Some(ids)
    }

    /// A list parameter ([`Form::list`]) whose every value must `parse`; `None` when not
    /// sent. A value that does not parse is 400 for `key` with `message`.
    pub(super) fn parsed_list<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        message: &str,
    ) -> Result<Option<Vec<T>>, ApiError> {
        let Some(values) = self.list(key) else {
            return Ok(None);
        };
        values
            .iter()
            .map(|v| parse(v))
            .collect::<Option<Vec<T>>>()
            .map(Some)
            .ok_or_else(|| ApiError::param(key, message))
    }

    /// The `customFields` entries, Rails-style: `customFields[][name]`/`[value]` (a new
    /// entry starts when a key repeats) or indexed `customFields[0][name]`.
    pub(super) fn custom_fields(&self) -> Vec<CustomFieldInput> {
        let mut entries: Vec<(Option<String>, CustomFieldInput)> = Vec::new();
        for (key, value) in &self.pairs {
            let Some(rest) = key.strip_prefix("customFields[") else {
                continue;
            };
            let Some((index, sub)) = rest.split_once("][") else {
                continue;
            };
            let Some(sub) = sub.strip_suffix(']') else {
                continue;
            };
            let is_name = match sub {
                "name" => true,
                "value" => false,
                _ => continue,
            };
            let slot = if index.is_empty() {
                match entries.last() {
                    Some((None, last))
                        if (is_name && last.name.is_none())
                            || (!is_name && last.value.is_none()) =>
                    {
                        entries.len() - 1
                    }
                    _ => {
                        entries.push((None, CustomFieldInput::empty()));
                        entries.len() - 1
                    }
                }
            } else {
                match entries
                    .iter()
                    .position(|(i, _)| i.as_deref() == Some(index))
                {
                    Some(pos) => pos,
                    None => {
                        entries.push((Some(index.to_string()), CustomFieldInput::empty()));
                        entries.len() - 1
                    }
                }
            };
            let entry = &mut entries[slot].1;
            if is_name {
                entry.name = Some(value.clone());
            } else {
                entry.value = Some(value.clone());
            }
        }
        entries.into_iter().map(|(_, e)| e).collect()
    }
}

impl CustomFieldInput {
    fn empty() -> Self {
        Self {
            name: None,
            value: None,
        }
    }
}

/// A header's value as text; `None` when absent or not visible ASCII.
pub(super) fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A media type without its parameters, trimmed and lower-cased
/// (`"Application/JSON; charset=utf-8"` is `"application/json"`).
pub(super) fn bare_media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The request's `Content-Type` as a [`bare_media_type`].
pub(super) fn media_type(request: &Request) -> Option<String> {
    header_str(request.headers(), header::CONTENT_TYPE).map(bare_media_type)
}

/// Reads a form body: URL-encoded or multipart; an empty body without a content type is an
/// empty form; anything else is 400.
pub(super) async fn read_form(request: Request) -> Result<Form, ApiError> {
    match media_type(&request).as_deref() {
        Some("multipart/form-data") => read_multipart(request).await,
        Some("application/x-www-form-urlencoded") => {
            let bytes = read_bytes(request).await?;
            Form::from_urlencoded(&bytes)
        }
        _ => {
            let bytes = read_bytes(request).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                Ok(Form::default())
            } else {
                Err(ApiError::bad_request(
                    "Unsupported Content-Type: send application/x-www-form-urlencoded",
                ))
            }
        }
    }
}

/// Reads a multipart form; file parts are read as text too.
async fn read_multipart(request: Request) -> Result<Form, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|_| ApiError::bad_request("Malformed multipart body"))?;
    let mut pairs = Vec::new();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|_| ApiError::bad_request("Malformed multipart body"))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_string();
        let value = field
            .text()
            .await
            .map_err(|_| ApiError::bad_request("Malformed multipart body"))?;
        pairs.push((name, value));
    }
    Ok(Form::from_pairs(pairs))
}

/// Reads a JSON object body (membership routes); an empty body is an empty object.
pub(super) async fn read_json(
    request: Request,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let is_json = media_type(&request).is_some_and(|m| m == "application/json");
    let bytes = read_bytes(request).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    if !is_json {
        return Err(ApiError::bad_request(
            "Unsupported Content-Type: send application/json",
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request("Malformed JSON body")),
    }
}

/// Reads a body up to [`BODY_LIMIT`].
async fn read_bytes(request: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::message(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            )
        })
}

/// Whether a path ends in a non-JSON format suffix (`.xml`, …).
pub(super) fn non_json_format(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    NON_JSON_FORMATS.iter().any(|ext| lower.ends_with(ext))
}

/// Unknown routes: 404 `{"error": "Not found"}`, or 406 when a non-JSON format suffix was asked.
pub(super) async fn fallback(uri: axum::http::Uri) -> ApiError {
    if non_json_format(uri.path()) {
        return not_acceptable();
    }
    ApiError::not_found()
}

/// A captured path segment without its `.json` suffix; 406 for another format suffix.
pub(super) fn segment(raw: &str) -> Result<&str, ApiError> {
    if let Some(stripped) = raw.strip_suffix(".json") {
        return Ok(stripped);
    }
    if non_json_format(raw) {
        return Err(not_acceptable());
    }
    Ok(raw)
}

/// A numeric id segment; 404 when it is not a number.
pub(super) fn id_segment(raw: &str) -> Result<u64, ApiError> {
    segment(raw)?.parse().map_err(|_| ApiError::not_found())
}

/// Whether `value` is a strict `YYYY-MM-DD` calendar date.
pub(super) fn is_iso_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

/// Parses a URL-encoded test input (panics when it is malformed).
#[cfg(test)]
pub(super) fn test_form(s: &str) -> Form {
    Form::from_urlencoded(s.as_bytes()).expect("valid form")
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_form as form;

    /// The `customFields` entries of a URL-encoded input as (name, value) pairs.
    fn custom_fields(s: &str) -> Vec<(Option<String>, Option<String>)> {
        form(s)
            .custom_fields()
            .into_iter()
            .map(|c| (c.name, c.value))
            .collect()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn rails_custom_fields_start_a_new_entry_when_a_key_repeats() {
        assert_eq!(
            custom_fields(
                "customFields[][name]=Cost%20code&customFields[][value]=42&customFields[][name]=Badge&customFields[][value]=",
            ),
            vec![(some("Cost code"), some("42")), (some("Badge"), some(""))]
        );
    }

    #[test]
    fn indexed_custom_fields_are_grouped_by_index() {
        assert_eq!(
            custom_fields(
                "customFields[0][name]=A&customFields[1][name]=B&customFields[1][value]=2&customFields[0][value]=1",
            ),
            vec![(some("A"), some("1")), (some("B"), some("2"))]
        );
    }

    #[test]
    fn lists_accept_repeated_and_comma_separated_values() {
        let f = form("filters[status][]=confirmed&filters[status][]=deactivated,invite_pending");
        assert_eq!(
            f.list("filters[status]"),
            Some(vec![
                "confirmed".to_string(),
                "deactivated".to_string(),
                "invite_pending".to_string()
            ])
        );
        assert_eq!(form("x[]=").list("x"), Some(vec![]));
        assert_eq!(form("y=1").list("x"), None);
    }

    #[test]
    fn optional_distinguishes_absent_from_empty() {
        let f = form("a=&b=x");
        assert_eq!(f.optional("a"), Some(None));
        assert_eq!(f.optional("b"), Some(Some("x".to_string())));
        assert_eq!(f.optional("c"), None);
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(form("s=true").boolean("s"), Ok(Some(true)));
        assert_eq!(form("s=0").boolean("s"), Ok(Some(false)));
        assert_eq!(form("s=yes").boolean("s"), Err(()));
        assert_eq!(form("").boolean("s"), Ok(None));
    }

    #[test]
    fn text_reports_absent_and_empty_values() {
        let mut errors = FieldErrors::default();
        let f = form("b=&c=%20x%20");
        assert_eq!(f.text("a", Absent::MissingAndEmpty, &mut errors), None);
        assert_eq!(f.text("a", Absent::Missing, &mut errors), None);
        assert_eq!(f.text("a", Absent::Allowed, &mut errors), None);
        assert_eq!(f.text("b", Absent::Allowed, &mut errors), None);
        assert_eq!(
            f.text("c", Absent::Missing, &mut errors),
            Some("x".to_string())
        );
        assert_eq!(
            errors.summary(),
            "a is missing, a is empty, a is missing, b is empty"
        );
        assert_eq!(Mode::Update(1).absent(Absent::Missing), Absent::Allowed);
        assert_eq!(Mode::Create.absent(Absent::Missing), Absent::Missing);
    }

    #[test]
    fn existing_ids_name_the_first_bad_member() {
        let exists = |id: u64| id < 10;
        let mut errors = FieldErrors::default();
        let f = form("a[]=1&a[]=2&b[]=1&b[]=x&b[]=99&c[]=99&c[]=x&d=");
        assert_eq!(
            f.existing_ids("a", exists, "unknown", "nan", &mut errors),
            Some(vec![1, 2])
        );
        assert_eq!(
            f.existing_ids("b", exists, "unknown", "nan", &mut errors),
            None
        );
        assert_eq!(
            f.existing_ids("c", exists, "unknown", "nan", &mut errors),
            None
        );
        assert_eq!(
            f.existing_ids("d", exists, "unknown", "nan", &mut errors),
            Some(vec![])
        );
        assert_eq!(
            f.existing_ids("e", exists, "unknown", "nan", &mut errors),
            None
        );
        assert_eq!(errors.summary(), "b nan, c unknown");
    }

    #[test]
    fn existing_id_tells_clear_invalid_and_unknown_apart() {
        let exists = |id: u64| id == 1;
        let mut errors = FieldErrors::default();
        let f = form("a=1&b=&c=x&d=2");
        assert_eq!(
            f.existing_id("a", exists, "unknown", &mut errors),
            Some(Some(1))
        );
        assert_eq!(
            f.existing_id("b", exists, "unknown", &mut errors),
            Some(None)
        );
        assert_eq!(f.existing_id("c", exists, "unknown", &mut errors), None);
        assert_eq!(f.existing_id("d", exists, "unknown", &mut errors), None);
        assert_eq!(f.existing_id("e", exists, "unknown", &mut errors), None);
        assert_eq!(errors.summary(), "c is invalid, d unknown");
    }

    #[test]
    fn flags_exclusive_pairs_and_parsed_lists() {
        let mut errors = FieldErrors::default();
        assert!(form("s=1").flag("s", &mut errors));
        assert!(!form("").flag("s", &mut errors));
        assert!(!form("s=yes").flag("s", &mut errors));
        assert_eq!(errors.summary(), "s is invalid");

        let pairs = [("a", "b"), ("c", "d")];
        assert!(form("a=1&d=2").check_exclusive(&pairs).is_ok());
        let error = form("c[]=1&d=2&a=1&b=1")
            .check_exclusive(&pairs)
            .expect_err("exclusive");
        assert_eq!(
            error.body(),
            serde_json::json!({"error": "a, b are mutually exclusive"})
        );

        let number = |v: &str| v.parse::<u64>().ok();
        assert_eq!(
            form("n[]=1,2").parsed_list("n", number, "is invalid").ok(),
            Some(Some(vec![1, 2]))
        );
        assert_eq!(
            form("").parsed_list("n", number, "is invalid").ok(),
            Some(None)
        );
        let error = form("n[]=1&n[]=x")
            .parsed_list("n", number, "is invalid")
            .expect_err("invalid");
        assert_eq!(
            error.body(),
            serde_json::json!({"error": "n is invalid", "fullErrors": {"n": ["is invalid"]}})
        );
    }

    #[test]
    fn dates_must_be_strict_iso() {
        assert!(is_iso_date("2025-06-30"));
        assert!(!is_iso_date("2025-6-30"));
        assert!(!is_iso_date("2025-02-30"));
        assert!(!is_iso_date("30.06.2025"));
        assert!(!is_iso_date("2025-06-30T00:00:00"));
    }

    #[test]
    fn segments_strip_json_and_refuse_other_formats() {
        assert_eq!(segment("15.json").ok(), Some("15"));
        assert!(segment("15.xml").is_err());
        assert_eq!(id_segment("7").ok(), Some(7));
        assert!(id_segment("abc").is_err());
    }
}
