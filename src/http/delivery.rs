//! A webhook delivery body read in one pass, straight into what the inbox keeps.
//!
//! The front door used to build a `serde_json::Value` tree of every body and then pick
//! fields out of it; that tree (a `BTreeMap` and a `String` per field) cost about a
//! tenth of the CPU at full ingest load. This parser visits the same tokens with the
//! same `serde_json` deserializer but keeps only the fields it needs. Everything else
//! is still *decoded*, not skipped: every string of the body goes through serde_json's
//! string decoding (so a lone `\ud800` escape in an ignored field is refused, exactly
//! as the tree refused it), numbers are parsed the same way, duplicate keys keep the
//! last value as the tree's map did. A property test below holds the two parsers to
//! the same answer, error messages included.
//!
//! Why not `#[derive(Deserialize)]` with `RawValue` fields: derived structs refuse a
//! repeated key (serde's "duplicate field" error) where the tree kept the last, and
//! `RawValue` / `IgnoredAny` skip strings without decoding them, so they accept a lone
//! `\ud800` the tree refused (both cases are among the hand-picked bodies below).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::store::inbox::InboxEvent;

/// Longest event name or person id kept.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `text` may be stored as an event name or a person id: 1 to
/// [`MAX_NAME_CHARS`] characters of `A-Z a-z 0-9 . _ : -` (every Personio event name
/// and id fits; anything else would only bloat the inbox and the logs).
pub fn is_plain_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_NAME_CHARS
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'))
}

/// Validates a delivery body and extracts what the inbox keeps; the error names the
/// problem (it becomes the 400's message). An `event_name` that is not a plain name
/// ([`is_plain_name`]) is refused; a person id that is not one counts as naming no
/// person. `received_at` is left empty: the front door stamps it by its clock.
pub fn parse_delivery(bytes: &[u8]) -> Result<InboxEvent, String> {
    let body: Shape<Fields> =
        serde_json::from_slice(bytes).map_err(|error| format!("the body is not JSON: {error}"))?;
    let Shape::Object(fields) = body else {
        return Err("the body must be a JSON object".to_string());
    };
    let text_field = |name: &str, seen: Seen| -> Result<String, String> {
        match seen {
            Seen::Missing | Seen::Null => Err(format!("`{name}` is missing")),
            Seen::Text(text) if !text.is_empty() => Ok(text),
            Seen::Text(_) => Err(format!("`{name}` is empty")),
            _ => Err(format!("`{name}` must be a string")),
        }
    };
    if !matches!(fields.company_id, Seen::Number(_)) {
        text_field("company_id", fields.company_id)?;
    }
    let event_name = text_field("event_name", fields.event_name)?;
    if !is_plain_name(&event_name) {
        return Err(EVENT_NAME_RULE.to_string());
    }
    let occurred_at = text_field("occurred_at", fields.occurred_at)?;
    chrono::DateTime::parse_from_rfc3339(&occurred_at)
        .map_err(|_| "`occurred_at` must be an RFC 3339 date-time".to_string())?;
    let ids = match fields.payload {
        None | Some(Shape::Null) => return Err("`payload` is missing".into()),
        Some(Shape::Object(ids)) => ids,
        Some(Shape::Other) => return Err("`payload` must be an object".into()),
    };
    if !matches!(fields.meta, Seen::Missing | Seen::Null | Seen::Object) {
        return Err("`meta` must be an object".into());
    }
    let PayloadIds {
        person_id,
        person_id_camel,
        employee_id,
        id,
    } = ids;
    let person_id = [person_id, person_id_camel, employee_id]
        .into_iter()
        .find_map(Seen::id_text)
        .or_else(|| {
            event_name
                .starts_with("person.")
                .then(|| id.id_text())
                .flatten()
        });
    Ok(InboxEvent {
        received_at: String::new(),
        event_name,
        occurred_at,
        person_id,
    })
}

/// What a kept field held (the last occurrence, as in a JSON map).
#[derive(Debug, Default)]
enum Seen {
    /// The key did not occur.
    #[default]
    Missing,
    Null,
    Text(String),
    Number(Number),
    Object,
    /// A boolean or an array.
    Other,
}

/// The 400's message for an event name that is not a plain name.
const EVENT_NAME_RULE: &str =
    "`event_name` must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_`, `:` and `-`";

impl Seen {
    /// A person id: a string (trimmed) or a number, as text, if that is a plain name.
    fn id_text(self) -> Option<String> {
        let text = match self {
            Seen::Text(text) => text.trim().to_string(),
            Seen::Number(number) => number.to_string(),
            _ => return None,
        };
        is_plain_name(&text).then_some(text)
    }
}

/// An object whose fields named in [`ObjectReader::KEYS`] are kept (the last
/// occurrence of each) and the others decoded and dropped.
trait ObjectReader: Default {
    /// The keys read, in the order [`ObjectReader::read`] numbers them.
    const KEYS: &'static [&'static str];

    /// Reads the value of `KEYS[index]`.
    fn read<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error>;
}

/// A value that should be the object `T`.
#[derive(Debug)]
enum Shape<T> {
    Object(T),
    /// `null` (or a float JSON cannot carry, which `Value` also turns into null).
    Null,
    Other,
}

/// The top-level fields the front door reads.
#[derive(Debug, Default)]
struct Fields {
    company_id: Seen,
    event_name: Seen,
    occurred_at: Seen,
    payload: Option<Shape<PayloadIds>>,
    meta: Seen,
}

impl ObjectReader for Fields {
    const KEYS: &'static [&'static str] =
        &["company_id", "event_name", "occurred_at", "payload", "meta"];

    fn read<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.company_id = map.next_value()?,
            1 => self.event_name = map.next_value()?,
            2 => self.occurred_at = map.next_value()?,
            3 => self.payload = Some(map.next_value()?),
            _ => self.meta = map.next_value()?,
        }
        Ok(())
    }
}

/// The payload's id fields.
#[derive(Debug, Default)]
struct PayloadIds {
    person_id: Seen,
    person_id_camel: Seen,
    employee_id: Seen,
    id: Seen,
}

impl ObjectReader for PayloadIds {
    const KEYS: &'static [&'static str] = &["person_id", "personId", "employee_id", "id"];

    fn read<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        let field = match index {
            0 => &mut self.person_id,
            1 => &mut self.person_id_camel,
            2 => &mut self.employee_id,
            _ => &mut self.id,
        };
        *field = map.next_value()?;
        Ok(())
    }
}

/// Visits any JSON value, keeping what `T` says and decoding the rest: scalars become
/// `K` through [`Kind`], containers are walked with [`Checked`] elements.
struct ValueVisitor<K>(std::marker::PhantomData<K>);

/// What a visited value becomes, by its JSON kind.
trait Kind: Sized {
    fn null() -> Self;
    fn other(seen: Seen) -> Self;
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl Kind for Seen {
    fn null() -> Self {
        Seen::Null
    }

    fn other(seen: Seen) -> Self {
        seen
    }

    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        drain_map(map)?;
        Ok(Seen::Object)
    }
}

impl<T: ObjectReader> Kind for Shape<T> {
    fn null() -> Self {
        Shape::Null
    }

    fn other(_: Seen) -> Self {
        Shape::Other
    }

    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut object = T::default();
        while let Some(index) = map.next_key_seed(KeySeed(T::KEYS))? {
            match index {
                Some(index) => object.read(index, &mut map)?,
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Shape::Object(object))
    }
}

impl<'de, K: Kind> Visitor<'de> for ValueVisitor<K> {
    type Value = K;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<K, E> {
        Ok(K::other(Seen::Other))
    }

    fn visit_i64<E>(self, value: i64) -> Result<K, E> {
        Ok(K::other(Seen::Number(value.into())))
    }

    fn visit_u64<E>(self, value: u64) -> Result<K, E> {
        Ok(K::other(Seen::Number(value.into())))
    }

    fn visit_f64<E>(self, value: f64) -> Result<K, E> {
        // As `Value` does: a float JSON cannot carry becomes null.
        Ok(Number::from_f64(value).map_or_else(K::null, |number| K::other(Seen::Number(number))))
    }

    fn visit_str<E>(self, value: &str) -> Result<K, E> {
        Ok(K::other(Seen::Text(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<K, E> {
        Ok(K::other(Seen::Text(value)))
    }

    fn visit_unit<E>(self) -> Result<K, E> {
        Ok(K::null())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<K, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(K::other(Seen::Other))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<K, A::Error> {
        K::map(map)
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

impl<'de, T: ObjectReader> Deserialize<'de> for Shape<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

/// Decodes and drops the rest of a map.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<Checked>()?.is_some() {
        map.next_value::<Checked>()?;
    }
    Ok(())
}

/// A value decoded and dropped: strings are decoded (escapes checked), not copied.
struct Checked;

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Checked, A::Error> {
        drain_map(map)?;
        Ok(Checked)
    }
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

/// Decodes a map key and finds it in a list of names: its index there, or `None`.
struct KeySeed(&'static [&'static str]);

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The front door's former parser (a `Value` tree): the oracle the one-pass parser
    /// must agree with.
    fn parse_with_tree(bytes: &[u8]) -> Result<InboxEvent, String> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|error| format!("the body is not JSON: {error}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "the body must be a JSON object".to_string())?;
        let text_field = |name: &str| -> Result<String, String> {
            match object.get(name) {
                None | Some(Value::Null) => Err(format!("`{name}` is missing")),
                Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
                Some(Value::String(_)) => Err(format!("`{name}` is empty")),
                Some(_) => Err(format!("`{name}` must be a string")),
            }
        };
        if !matches!(object.get("company_id"), Some(Value::Number(_))) {
            text_field("company_id")?;
        }
        let event_name = text_field("event_name")?;
        if !is_plain_name(&event_name) {
            return Err(EVENT_NAME_RULE.to_string());
        }
        let occurred_at = text_field("occurred_at")?;
        chrono::DateTime::parse_from_rfc3339(&occurred_at)
            .map_err(|_| "`occurred_at` must be an RFC 3339 date-time".to_string())?;
        let payload = match object.get("payload") {
            None | Some(Value::Null) => return Err("`payload` is missing".into()),
            Some(Value::Object(payload)) => payload,
            Some(_) => return Err("`payload` must be an object".into()),
        };
        if let Some(meta) = object.get("meta")
            && !(meta.is_object() || meta.is_null())
        {
            return Err("`meta` must be an object".into());
        }
        let id_text = |value: &Value| {
            let text = match value {
                Value::String(text) => text.trim().to_string(),
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            is_plain_name(&text).then_some(text)
        };
        let person_id = ["person_id", "personId", "employee_id"]
            .iter()
            .find_map(|name| payload.get(*name).and_then(id_text))
            .or_else(|| {
                event_name
                    .starts_with("person.")
                    .then(|| payload.get("id").and_then(id_text))
                    .flatten()
            });
        Ok(InboxEvent {
            received_at: String::new(),
            event_name,
            occurred_at,
            person_id,
        })
    }

    fn same_answer(bytes: &[u8]) -> Result<(), String> {
        let fast = parse_delivery(bytes).map(|mut event| {
            event.received_at = String::new();
            event
        });
        let tree = parse_with_tree(bytes);
        if fast == tree {
            Ok(())
        } else {
            Err(format!(
                "{:?}: one pass {fast:?}, tree {tree:?}",
                String::from_utf8_lossy(bytes)
            ))
        }
    }

    #[test]
    fn hand_picked_bodies_get_the_trees_answer() {
        let good = r#""company_id":"1","event_name":"person.updated","occurred_at":"2025-03-01T10:15:30Z""#;
        for body in [
            format!(r#"{{{good},"payload":{{"id":"4711"}},"meta":{{}}}}"#),
            format!(r#"{{{good},"payload":{{"id":4711,"person_id":" 12 "}}}}"#),
            format!(r#"{{{good},"payload":{{"personId":1.5e3}}}}"#),
            format!(r#"{{{good},"payload":{{"employee_id":-7,"employee_id":"  "}}}}"#),
            format!(r#"{{{good},"payload":{{"x":"\ud800"}}}}"#),
            format!(r#"{{{good},"payload":{{"x":"\ud800\udc00"}}}}"#),
            format!(r#"{{{good},"payload":{{}},"extra":["\udfff"]}}"#),
            format!(r#"{{{good},"payload":{{}},"extra":1e400}}"#),
            format!(r#"{{{good},"payload":{{}},"extra":18446744073709551616}}"#),
            format!(r#"{{{good},"payload":{{}},"meta":[]}}"#),
            format!(r#"{{{good},"payload":{{}},"meta":null}}"#),
            format!(r#"{{{good},"payload":"x"}}"#),
            format!(r#"{{{good},"payload":null}}"#),
            format!(r#"{{{good},"payload":{{}},"payload":7}}"#),
            format!(r#"{{{good},"payload":7,"payload":{{"id":"1"}}}}"#),
            format!(r#"{{{good},"company_id":12,"payload":{{}}}}"#),
            format!(r#"{{{good},"company_id":true,"payload":{{}}}}"#),
            format!(r#"{{{good},"event_name":"","payload":{{}}}}"#),
            format!(r#"{{{good},"occurred_at":"yesterday","payload":{{}}}}"#),
            format!(r#"{{{good},"payload":{{}}}} x"#),
            format!(r#"{{{good},"payload":{{}},}}"#),
            format!(r#"{{{good},"payload":{{"\u0069d":"5"}}}}"#),
            format!(r#"{{{good},"pay\u006coad":{{"id":"5"}}}}"#),
            format!("{{{good},\"payload\":{{}},\"x\":\"\u{1}\"}}"),
            "[1,2,\"\\ud800\"]".to_string(),
            "[1,2]".to_string(),
            "\"text\"".to_string(),
            "null".to_string(),
            "".to_string(),
            "{".to_string(),
            "{\"a\":[[[[[[[[[[]]]]]]]]]]}".to_string(),
            "[".repeat(200) + &"]".repeat(200),
        ] {
            same_answer(body.as_bytes()).unwrap();
        }
        same_answer(b"{\"company_id\":\"\xff\"}").unwrap();
    }

    #[test]
    fn names_and_ids_are_plain_and_bounded() {
        let body = |event: &str, payload: &str| {
            format!(
                r#"{{"company_id":"1","event_name":{event},"occurred_at":"2025-03-01T10:15:30Z","payload":{payload}}}"#
            )
        };
        let person = |payload: &str| {
            parse_delivery(body("\"person.updated\"", payload).as_bytes())
                .unwrap()
                .person_id
        };
        assert_eq!(
            person(r#"{"id":"emp:4711_a-b.c"}"#).as_deref(),
            Some("emp:4711_a-b.c")
        );
        let longest = "9".repeat(MAX_NAME_CHARS);
        assert_eq!(
            person(&format!(r#"{{"id":"{longest}"}}"#)),
            Some(longest.clone())
        );
        for named_nobody in [
            format!(r#"{{"id":"{longest}9"}}"#),
            r#"{"id":"47 11"}"#.to_string(),
            r#"{"id":"../4711"}"#.to_string(),
            r#"{"id":"47\t11"}"#.to_string(),
            r#"{"person_id":"ü"}"#.to_string(),
        ] {
            assert_eq!(person(&named_nobody), None, "{named_nobody}");
        }
        // A bad id under one key does not hide a good one under the next.
        assert_eq!(
            person(r#"{"person_id":"a b","id":"12"}"#).as_deref(),
            Some("12")
        );
        for bad_event in [
            format!("\"{}\"", "e".repeat(MAX_NAME_CHARS + 1)),
            "\"person updated\"".to_string(),
            "\"person.updated\\n\"".to_string(),
            "\"<script>\"".to_string(),
        ] {
            let error = parse_delivery(body(&bad_event, "{}").as_bytes()).unwrap_err();
            assert!(error.contains("`event_name`"), "{bad_event}: {error}");
        }
        let longest_event = format!("\"{}\"", "e".repeat(MAX_NAME_CHARS));
        assert!(parse_delivery(body(&longest_event, "{}").as_bytes()).is_ok());
    }

    /// Pieces a generated body is built from: the fields the parser reads, with values
    /// of every kind, plus ignored fields with hostile strings and numbers.
    fn value_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("\"\"".to_string()),
            Just("\"   \"".to_string()),
            Just("\"4711\"".to_string()),
            Just("\" 42 \"".to_string()),
            Just("\"person.updated\"".to_string()),
            Just("\"employment.updated\"".to_string()),
            Just("\"person updated\"".to_string()),
            Just("\"id/../x\"".to_string()),
            Just("\"emp:4711_a-b.c\"".to_string()),
            Just(format!("\"{}\"", "9".repeat(64))),
            Just(format!("\"{}\"", "9".repeat(65))),
            Just("1e300".to_string()),
            Just("\"2025-03-01T10:15:30Z\"".to_string()),
            Just("\"2025-03-01T10:15:30+01:00\"".to_string()),
            Just("\"\\ud800\"".to_string()),
            Just("\"\\udc00\\ud800\"".to_string()),
            Just("\"\\ud83d\\ude00\"".to_string()),
            Just("\"\\u00e9\\n\\\"\"".to_string()),
            Just("\"\\x\"".to_string()),
            Just("12".to_string()),
            Just("-0".to_string()),
            Just("1.0".to_string()),
            Just("2.5e-3".to_string()),
            Just("1e400".to_string()),
            Just("-18446744073709551617".to_string()),
            Just("18446744073709551615".to_string()),
            Just("[]".to_string()),
            Just("[1,\"\\ud800\"]".to_string()),
            Just("{}".to_string()),
            Just("{\"id\":\"9\",\"person_id\":10}".to_string()),
            Just("{\"personId\":\"\\ud800\"}".to_string()),
            Just("{\"employee_id\":\"8\",\"employee_id\":null}".to_string()),
        ]
    }

    fn key_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("company_id".to_string()),
            Just("event_name".to_string()),
            Just("occurred_at".to_string()),
            Just("payload".to_string()),
            Just("meta".to_string()),
            Just("id".to_string()),
            Just("person_id".to_string()),
            Just("other".to_string()),
            Just("\\ud800".to_string()),
            Just("event\\u005fname".to_string()),
        ]
    }

    fn object_text() -> impl Strategy<Value = String> {
        prop::collection::vec((key_text(), value_text()), 0..9).prop_map(|pairs| {
            let fields: Vec<String> = pairs
                .into_iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            format!("{{{}}}", fields.join(","))
        })
    }

    /// A delivery the front door accepts, then extra pairs that may override its
    /// fields or add hostile ignored ones.
    fn mostly_good_text() -> impl Strategy<Value = String> {
        let payload = prop_oneof![
            Just("{}"),
            Just("{\"id\":\"9\"}"),
            Just("{\"id\":9,\"person_id\":\" 10 \"}"),
            Just("{\"personId\":1.5,\"employee_id\":\"8\"}"),
            Just("{\"employee_id\":\"  \",\"id\":-3,\"x\":[\"\\ud83d\\ude00\"]}"),
            Just("{\"person_id\":null,\"person_id\":\"11\"}"),
            Just("{\"personId\":\"13\",\"person_id\":\"12\",\"employee_id\":14}"),
            Just("{\"employee_id\":14,\"personId\":13}"),
        ];
        let event = prop_oneof![Just("person.updated"), Just("employment.created")];
        let company = prop_oneof![Just("\"1\""), Just("12"), Just("3.0")];
        let extra = prop::collection::vec((key_text(), value_text()), 0..3);
        (payload, event, company, extra).prop_map(|(payload, event, company, extra)| {
            let mut text = format!(
                "{{\"company_id\":{company},\"event_name\":\"{event}\",\"occurred_at\":\"2025-03-01T10:15:30Z\",\"payload\":{payload}"
            );
            for (key, value) in extra {
                text.push_str(&format!(",\"{key}\":{value}"));
            }
            text.push('}');
            text
        })
    }

    fn body_text() -> impl Strategy<Value = Vec<u8>> {
        let nested = (
            object_text(),
            prop::collection::vec((key_text(), object_text()), 0..3),
        )
            .prop_map(|(top, inner)| {
                let mut top = top;
                for (key, value) in inner {
                    top.insert_str(1, &format!("\"{key}\":{value},"));
                }
                top.replace(",}", "}")
            });
        let text = prop_oneof![nested, mostly_good_text()];
        (text, any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(text, position, byte, dice)| {
            let mut bytes = text.into_bytes();
            if dice % 4 == 0 && !bytes.is_empty() {
                let at = usize::from(position) % bytes.len();
                bytes[at] = byte;
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn the_one_pass_parser_answers_as_the_tree_did(body in body_text()) {
            if let Err(difference) = same_answer(&body) {
                prop_assert!(false, "{}", difference);
            }
        }
    }
}
