//! The "no value lost" check: every leaf of a document's `attributes` must come back from the
//! Parquet file, in its typed column, in the engines table, or at the same path in
//! `extra_attributes`.
//!
//! The expected column values follow the coercion rules of the flattener: a value of the
//! column's type fills it, JSON `null` counts as absent, and anything else stays in
//! `extra_attributes`.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use chrono::NaiveDateTime;
use serde_json::{Value, json};

/// Latest epoch second the timestamp columns accept: 9999-12-31T23:59:59Z.
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// How a typed column reads its JSON value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    EpochSeconds,
    DateTimeText,
    TextList,
}

/// Objects whose members are split between columns and `extra_attributes`. An empty one, or
/// `null` in its place, leaves nothing behind, as an absent one does.
const SPLIT_OBJECTS: &[&[&str]] = &[
    &["last_analysis_stats"],
    &["total_votes"],
    &["last_https_certificate"],
    &["last_https_certificate", "subject"],
    &["last_https_certificate", "issuer"],
    &["last_https_certificate", "validity"],
    &["last_https_certificate", "extensions"],
    &["last_https_certificate", "public_key"],
    &["last_https_certificate", "public_key", "rsa"],
    &["last_analysis_results"],
];

/// Returns the typed column of a JSON path, and how it reads the value.
fn column_of(path: &[&str]) -> Option<(String, Kind)> {
    let named = |name: &str, kind| Some((name.to_string(), kind));
    match path {
        [
            name @ ("as_owner"
            | "continent"
            | "country"
            | "jarm"
            | "network"
            | "regional_internet_registry"
            | "whois"),
        ] => named(name, Kind::Text),
        [name @ ("asn" | "reputation")] => named(name, Kind::Integer),
        ["tags"] => named("tags", Kind::TextList),
        [
            name @ ("whois_date"
            | "last_analysis_date"
            | "last_modification_date"
            | "last_https_certificate_date"
            | "first_seen_date"),
        ] => named(name, Kind::EpochSeconds),
        [
            "last_analysis_stats",
            leaf @ ("harmless" | "malicious" | "suspicious" | "timeout" | "undetected"),
        ] => named(&format!("last_analysis_stats_{leaf}"), Kind::Integer),
        ["total_votes", leaf @ ("harmless" | "malicious")] => {
            named(&format!("total_votes_{leaf}"), Kind::Integer)
        }
        ["last_https_certificate", rest @ ..] => {
            let (leaf, kind) = match rest {
                ["subject", "CN"] => ("subject_cn", Kind::Text),
                ["issuer", "C"] => ("issuer_c", Kind::Text),
                ["issuer", "CN"] => ("issuer_cn", Kind::Text),
                ["issuer", "O"] => ("issuer_o", Kind::Text),
                ["validity", "not_before"] => ("validity_not_before", Kind::DateTimeText),
                ["validity", "not_after"] => ("validity_not_after", Kind::DateTimeText),
                [
                    leaf @ ("serial_number"
                    | "thumbprint"
                    | "thumbprint_sha256"
                    | "signature_algorithm"
                    | "version"),
                ] => (*leaf, Kind::Text),
                ["size"] => ("size", Kind::Integer),
                ["extensions", "subject_alternative_name"] => {
                    ("extensions_subject_alternative_name", Kind::TextList)
                }
                ["public_key", "algorithm"] => ("public_key_algorithm", Kind::Text),
                ["public_key", "rsa", "key_size"] => ("public_key_size", Kind::Integer),
                _ => return None,
            };
            named(&format!("last_https_certificate_{leaf}"), kind)
        }
        _ => None,
    }
}

/// Returns the cell a column holds for `value`, or `None` when the value does not fit it.
fn typed(kind: Kind, value: &Value) -> Option<Value> {
    match kind {
        Kind::Text => value.is_string().then(|| value.clone()),
        Kind::Integer => value.as_i64().map(|n| json!(n)),
        Kind::EpochSeconds => value
            .as_i64()
            .filter(|seconds| (0..=MAX_EPOCH_SECONDS).contains(seconds))
            .map(|seconds| json!(seconds * 1_000_000)),
        Kind::DateTimeText => {
            let text = value.as_str()?;
            let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
            Some(json!(at.and_utc().timestamp_micros()))
        }
        Kind::TextList => {
            let items = value.as_array()?;
            items.iter().all(Value::is_string).then(|| value.clone())
        }
    }
}

/// Returns the cell at (`column`, `row`) as JSON.
pub fn cell(batch: &RecordBatch, column: &str, row: usize) -> Value {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::Timestamp(_, _) => {
            json!(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let texts: Vec<Option<&str>> = items.as_string::<i32>().iter().collect();
            json!(texts)
        }
        other => json!(format!("<{other}>")),
    }
}

/// Collects the leaves (scalars, arrays and empty objects) of a JSON value with their paths.
fn leaves<'a>(
    prefix: &mut Vec<&'a str>,
    value: &'a Value,
    out: &mut Vec<(Vec<&'a str>, &'a Value)>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key);
                leaves(prefix, child, out);
                prefix.pop();
            }
        }
        _ => out.push((prefix.clone(), value)),
    }
}

fn at_path<'a>(mut value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    for key in path {
        value = value.as_object()?.get(*key)?;
    }
    Some(value)
}

/// Returns whether an engine leaf is in the engines table of `ip`: a row named after the map
/// key or after the entry's own `engine_name` with the same field value.
fn in_engines(
    engines: &RecordBatch,
    ip: &str,
    attributes: &Value,
    path: &[&str],
    value: &Value,
) -> bool {
    let ["last_analysis_results", key, field] = path else {
        return false;
    };
    let own_name =
        at_path(attributes, &["last_analysis_results", key, "engine_name"]).and_then(Value::as_str);
    (0..engines.num_rows()).any(|row| {
        let name = cell(engines, "engine_name", row);
        let named = name.as_str() == Some(key) || (own_name.is_some() && name.as_str() == own_name);
        if cell(engines, "ip", row) != json!(ip) || !named {
            return false;
        }
        match *field {
            "engine_name" => value.is_string() && &name == value,
            "category" | "method" | "result" => {
                value.is_string() && &cell(engines, field, row) == value
            }
            _ => false,
        }
    })
}

/// Returns the leaves of `attributes` that are in no column, no engine row and not in
/// `extra_attributes`, as `path: value` texts. Empty means nothing was lost.
pub fn lost_leaves(
    attributes: &Value,
    main: &RecordBatch,
    row: usize,
    engines: &RecordBatch,
) -> Vec<String> {
    let ip = cell(main, "ip", row);
    let ip = ip.as_str().unwrap_or_default();
    let extra = match cell(main, "extra_attributes", row) {
        Value::String(text) => serde_json::from_str(&text).expect("extra_attributes is JSON"),
        _ => Value::Object(Default::default()),
    };

    let mut all = Vec::new();
    leaves(&mut Vec::new(), attributes, &mut all);
    let mut lost = Vec::new();
    for (path, value) in all {
        let column = column_of(&path);
        let engine_field = matches!(
            path.as_slice(),
            [
                "last_analysis_results",
                _,
                "engine_name" | "category" | "method" | "result"
            ]
        );
        if value.is_null() && (column.is_some() || engine_field) {
            continue;
        }
        let split_object = SPLIT_OBJECTS.contains(&path.as_slice())
            || matches!(path.as_slice(), ["last_analysis_results", _]);
        let empty = value.is_null() || value.as_object().is_some_and(|map| map.is_empty());
        if split_object && empty {
            continue;
        }
        let in_column = column.is_some_and(|(name, kind)| {
            typed(kind, value).is_some_and(|expected| cell(main, &name, row) == expected)
        });
        let in_extra = at_path(&extra, &path) == Some(value);
        if !in_column && !in_extra && !in_engines(engines, ip, attributes, &path, value) {
            lost.push(format!("{}: {value}", path.join(".")));
        }
    }
    lost
}
