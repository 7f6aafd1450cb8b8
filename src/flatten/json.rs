//! JSON building blocks of the flattener: borrowed object entries, typed leaf parsers that
//! report a wrong type instead of failing, and the writer of the `extra_attributes` object.
//!
//! Values are captured as [`RawValue`] slices of the input, so an attribute without a column is
//! copied to `extra_attributes` as text without being parsed into a tree first.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDateTime;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Latest epoch second accepted as a timestamp: 9999-12-31T23:59:59Z. Later values do not fit
/// the four-digit year of RFC 3339 text.
pub(super) const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// An object key, borrowed from the input unless it contains escape sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key<'a>(pub Cow<'a, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(value)))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value.to_string())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The entries of one JSON object in document order, with unparsed values.
pub(super) type Entries<'a> = Vec<(Key<'a>, &'a RawValue)>;

/// A JSON object read as [`Entries`]; the wrapper exists to give it a `Deserialize` impl.
#[derive(Debug, Default)]
pub(super) struct RawObject<'a>(pub Entries<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(RawObject(entries))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Reads the entries of `raw` if it is a JSON object, `None` for any other JSON type.
pub(super) fn object_entries(raw: &RawValue) -> Option<Entries<'_>> {
    if !raw.get().starts_with('{') {
        return None;
    }
    serde_json::from_str::<RawObject>(raw.get())
        .ok()
        .map(|object| object.0)
}

/// A leaf value read for a typed column.
#[derive(Debug, PartialEq)]
pub(super) enum Typed<T> {
    /// JSON `null`: the column stays null and nothing is kept, as for an absent attribute.
    Null,
    Value(T),
    /// Valid JSON of a type or range the column cannot hold: the raw value is kept in
    /// `extra_attributes` and the column stays null.
    Wrong,
}

fn first_byte(raw: &RawValue) -> u8 {
    // A RawValue never starts with whitespace and is never empty.
    raw.get().as_bytes()[0]
}

/// Reads a JSON string.
pub(super) fn string(raw: &RawValue) -> Typed<String> {
    match first_byte(raw) {
        b'n' => Typed::Null,
        b'"' => match serde_json::from_str::<String>(raw.get()) {
            Ok(text) => Typed::Value(text),
            Err(_) => Typed::Wrong,
        },
        _ => Typed::Wrong,
    }
}

/// Reads a JSON integer that fits an `i64`. Fractions and exponents are wrong types.
pub(super) fn integer(raw: &RawValue) -> Typed<i64> {
    match first_byte(raw) {
        b'n' => Typed::Null,
        b'-' | b'0'..=b'9' => match serde_json::from_str::<i64>(raw.get()) {
            Ok(number) => Typed::Value(number),
            Err(_) => Typed::Wrong,
        },
        _ => Typed::Wrong,
    }
}

/// Reads Unix epoch seconds and returns microseconds. Negative values, fractions and values
/// after [`MAX_EPOCH_SECONDS`] are wrong types.
pub(super) fn epoch_seconds(raw: &RawValue) -> Typed<i64> {
    match integer(raw) {
        Typed::Value(seconds) if (0..=MAX_EPOCH_SECONDS).contains(&seconds) => {
            Typed::Value(seconds * MICROS_PER_SECOND)
        }
        Typed::Value(_) => Typed::Wrong,
        other => other,
    }
}

/// Reads a UTC date-time string in the `YYYY-MM-DD HH:MM:SS` form of certificate validity
/// fields and returns microseconds since the Unix epoch.
pub(super) fn utc_date_time_text(raw: &RawValue) -> Typed<i64> {
    match string(raw) {
        Typed::Value(text) => match NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S") {
            Ok(date_time) => Typed::Value(date_time.and_utc().timestamp_micros()),
            Err(_) => Typed::Wrong,
        },
        Typed::Null => Typed::Null,
        Typed::Wrong => Typed::Wrong,
    }
}

/// Reads an array of strings. An array with any other element type is a wrong type as a whole,
/// so the original array is kept intact in `extra_attributes`.
pub(super) fn string_list(raw: &RawValue) -> Typed<Vec<String>> {
    match first_byte(raw) {
        b'n' => Typed::Null,
        b'[' => match serde_json::from_str::<Vec<String>>(raw.get()) {
            Ok(items) => Typed::Value(items),
            Err(_) => Typed::Wrong,
        },
        _ => Typed::Wrong,
    }
}

/// Stores a typed leaf in its slot. Returns `true` when the value was used (or was null), and
/// `false` when the raw value must be kept: a wrong type, or a duplicate key whose slot is
/// already filled.
pub(super) fn store<T>(slot: &mut Option<T>, typed: Typed<T>) -> bool {
    match typed {
        Typed::Null => true,
        Typed::Value(_) if slot.is_some() => false,
        Typed::Value(value) => {
            *slot = Some(value);
            true
        }
        Typed::Wrong => false,
    }
}

/// A JSON object under construction, holding the values that have no column.
#[derive(Debug, Default)]
pub(super) struct ExtraObject {
    text: String,
}

impl ExtraObject {
    fn push_key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        self.text
            .push_str(&serde_json::to_string(key).expect("a str serializes to JSON"));
        self.text.push(':');
    }

    /// Appends `key` with the raw value, with the whitespace between tokens removed.
    pub fn push_raw(&mut self, key: &str, raw: &RawValue) {
        self.push_key(key);
        push_compact(&mut self.text, raw.get());
    }

    /// Appends `key` with a string value.
    pub fn push_string(&mut self, key: &str, value: &str) {
        self.push_key(key);
        self.text
            .push_str(&serde_json::to_string(value).expect("a str serializes to JSON"));
    }

    /// Appends `key` with a JSON `null`.
    pub fn push_null(&mut self, key: &str) {
        self.push_key(key);
        self.text.push_str("null");
    }

    /// Appends `key` with a nested object, unless that object is empty.
    pub fn push_object(&mut self, key: &str, object: ExtraObject) {
        if let Some(text) = object.finish() {
            self.push_key(key);
            self.text.push_str(&text);
        }
    }

    /// Returns the object's JSON text, or `None` when no entry was added.
    pub fn finish(mut self) -> Option<String> {
        if self.text.is_empty() {
            return None;
        }
        self.text.push('}');
        Some(self.text)
    }
}

/// Appends valid JSON text to `out` without the insignificant whitespace (RFC 8259, section 2)
/// between tokens, so pretty-printed documents give one-line `extra_attributes` cells.
fn push_compact(out: &mut String, json: &str) {
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (index, byte) in json.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b' ' | b'\t' | b'\n' | b'\r' => {
                // Whitespace bytes are ASCII, so both slice bounds are character boundaries.
                out.push_str(&json[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    out.push_str(&json[start..]);
}

/// Outcome for one entry of an object that is split into columns and a residual object.
pub(super) enum Leaf {
    /// The value went into a column (or was null); nothing is kept.
    Taken,
    /// The value is kept verbatim in the residual object.
    Kept,
    /// Part of a nested object went into columns; this residual is kept under the key.
    Rest(ExtraObject),
}

impl From<bool> for Leaf {
    fn from(stored: bool) -> Self {
        if stored { Leaf::Taken } else { Leaf::Kept }
    }
}

/// Splits an object's entries between columns and a residual object. `take` stores what has
/// a column and returns what to keep, and every entry it does not take goes into the returned
/// object.
pub(super) fn split_entries<'a>(
    entries: Entries<'a>,
    mut take: impl FnMut(&str, &'a RawValue) -> Leaf,
) -> ExtraObject {
    let mut rest = ExtraObject::default();
    for (key, raw) in entries {
        match take(key.as_str(), raw) {
            Leaf::Taken => {}
            Leaf::Kept => rest.push_raw(key.as_str(), raw),
            Leaf::Rest(nested) => rest.push_object(key.as_str(), nested),
        }
    }
    rest
}

/// Splits a nested object value; a value that is not an object is kept whole.
pub(super) fn split_nested<'a>(
    raw: &'a RawValue,
    take: impl FnMut(&str, &'a RawValue) -> Leaf,
) -> Leaf {
    match first_byte(raw) {
        b'n' => Leaf::Taken,
        _ => match object_entries(raw) {
            Some(entries) => Leaf::Rest(split_entries(entries, take)),
            None => Leaf::Kept,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn epoch_seconds_become_microseconds() {
        assert_eq!(
            epoch_seconds(&raw("1616514075")),
            Typed::Value(1_616_514_075_000_000)
        );
        assert_eq!(epoch_seconds(&raw("0")), Typed::Value(0));
        assert_eq!(epoch_seconds(&raw("null")), Typed::Null);
    }

    #[test]
    fn epoch_seconds_reject_bad_values() {
        for text in [
            "-1",
            "1616514075.5",
            "1e9",
            "\"1616514075\"",
            "253402300800",
            "[]",
        ] {
            assert_eq!(epoch_seconds(&raw(text)), Typed::Wrong, "{text}");
        }
    }

    #[test]
    fn integer_rejects_fraction_and_overflow() {
        assert_eq!(integer(&raw("-9")), Typed::Value(-9));
        assert_eq!(integer(&raw("1.0")), Typed::Wrong);
        assert_eq!(integer(&raw("18446744073709551615")), Typed::Wrong);
        assert_eq!(integer(&raw("\"15169\"")), Typed::Wrong);
    }

    #[test]
    fn certificate_date_text_is_utc() {
        let micros = utc_date_time_text(&raw("\"2021-03-23 15:41:15\""));
        assert_eq!(micros, Typed::Value(1_616_514_075_000_000));
        assert_eq!(
            utc_date_time_text(&raw("\"2021-03-23T15:41:15Z\"")),
            Typed::Wrong
        );
        assert_eq!(utc_date_time_text(&raw("1616514075")), Typed::Wrong);
    }

    #[test]
    fn string_list_keeps_mixed_arrays_whole() {
        assert_eq!(
            string_list(&raw(r#"["vpn","tor"]"#)),
            Typed::Value(vec!["vpn".into(), "tor".into()])
        );
        assert_eq!(string_list(&raw(r#"["vpn",1]"#)), Typed::Wrong);
        assert_eq!(string_list(&raw(r#"{"a":"b"}"#)), Typed::Wrong);
    }

    #[test]
    fn compact_keeps_whitespace_inside_strings() {
        let mut out = String::new();
        push_compact(&mut out, "{ \"a b\" : [ 1 ,\n 2 ], \"c\":\"x\\\" y\" }");
        assert_eq!(out, r#"{"a b":[1,2],"c":"x\" y"}"#);
    }

    #[test]
    fn extra_object_escapes_keys() {
        let mut extra = ExtraObject::default();
        extra.push_raw("we\"ird", &raw("1"));
        extra.push_object("empty", ExtraObject::default());
        assert_eq!(extra.finish().unwrap(), r#"{"we\"ird":1}"#);
        assert_eq!(ExtraObject::default().finish(), None);
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let object: RawObject = serde_json::from_str(r#"{"a\u0041": 1, "b": {"c": 2}}"#).unwrap();
        assert_eq!(object.0[0].0.as_str(), "aA");
        assert_eq!(object.0[1].1.get(), r#"{"c": 2}"#);
    }
}
