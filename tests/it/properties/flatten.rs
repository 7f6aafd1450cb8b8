//! Properties of the flattener: no document makes it panic, and a document that is an IP
//! address object loses no leaf value on the way to Parquet and back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use chrono::{TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use vt_enrich::flatten::{
    EnginesMode, TableBuilder, document_id, engine_columns, engines_schema, flatten, main_columns,
    main_schema,
};
use vt_enrich::model::{AnswerSource, Lookup, Status};
use vt_enrich::output::{CsvOptions, OutputFormat, OutputTarget, create_writer};

use super::config;
use super::oracle::lost_leaves;

/// Loads the real IP address documents of `tests/data/responses` once, with their ids.
fn real_documents() -> &'static [(String, Value)] {
    static DOCUMENTS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/responses");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let body = std::fs::read(&path).unwrap();
                let id = document_id(&body).ok()?;
                Some((id, serde_json::from_slice(&body).unwrap()))
            })
            .collect()
    })
}

/// Keys that the flattener treats specially, mixed into generated objects so that generated
/// values land on typed columns too.
const KNOWN_KEYS: &[&str] = &[
    "asn",
    "as_owner",
    "tags",
    "whois",
    "whois_date",
    "reputation",
    "country",
    "network",
    "last_analysis_date",
    "first_seen_date",
    "last_analysis_stats",
    "total_votes",
    "harmless",
    "malicious",
    "last_https_certificate",
    "subject",
    "issuer",
    "CN",
    "validity",
    "not_before",
    "public_key",
    "rsa",
    "key_size",
    "extensions",
    "subject_alternative_name",
    "last_analysis_results",
    "engine_name",
    "category",
    "method",
    "result",
    "Dr.Web",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_string),
        1 => "[a-z_.0-9 -]{0,12}",
        1 => any::<String>(),
    ]
}

/// Any JSON value up to four levels deep. Floats are multiples of 1/8, which JSON text
/// carries exactly, so a value read back compares equal.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-2_000i32..2_000).prop_map(|n| json!(f64::from(n) / 8.0)),
        prop_oneof![
            Just("2021-03-23 15:41:15".to_string()),
            "[ -~]{0,16}",
            "[\\x00-\\x1f\"\\\\é\u{fffd}]{0,6}",
            any::<String>(),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// One change to a document: at the `selector`-th path of its attributes (counted modulo
/// the number of paths), replace the value, remove the member, or add a member beside it.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), json_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), key(), json_value())
            .prop_map(|(at, key, value)| Mutation::Insert(at, key, value)),
    ]
}

/// Returns the paths of every member of `value`, parents before children.
fn member_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            prefix.push(key.clone());
            out.push(prefix.clone());
            member_paths(child, prefix, out);
            prefix.pop();
        }
    }
}

/// Returns the object that contains the member at `path`.
fn parent_mut<'a>(root: &'a mut Value, path: &[String]) -> Option<&'a mut Map<String, Value>> {
    let (_, parents) = path.split_last()?;
    let mut value = root;
    for key in parents {
        value = value.as_object_mut()?.get_mut(key)?;
    }
    value.as_object_mut()
}

fn apply(attributes: &mut Value, mutation: &Mutation) {
    let mut paths = Vec::new();
    member_paths(attributes, &mut Vec::new(), &mut paths);
    let pick = |at: usize| {
        paths
            .get(at % paths.len().max(1))
            .cloned()
            .unwrap_or_default()
    };
    match mutation {
        Mutation::Replace(at, value) => {
            let path = pick(*at);
            if let (Some(parent), Some(key)) = (parent_mut(attributes, &path), path.last()) {
                parent.insert(key.clone(), value.clone());
            }
        }
        Mutation::Remove(at) => {
            let path = pick(*at);
            if let (Some(parent), Some(key)) = (parent_mut(attributes, &path), path.last()) {
                parent.remove(key);
            }
        }
        Mutation::Insert(at, key, value) => {
            let mut path = pick(*at);
            path.push(String::new());
            let parent = match parent_mut(attributes, &path) {
                Some(parent) => parent,
                None => attributes.as_object_mut().expect("attributes is an object"),
            };
            parent.insert(key.clone(), value.clone());
        }
    }
}

fn lookup(ip: &str, body: Vec<u8>) -> Lookup {
    Lookup {
        ip: ip.to_string(),
        ip_version: Some(4),
        status: Status::Ok,
        error_code: None,
        error_message: None,
        fetched_at: Some(Utc.with_ymd_and_hms(2025, 8, 7, 12, 0, 0).unwrap()),
        source: Some(AnswerSource::File),
        body: Some(body),
    }
}

/// Flattens one document, writes both tables as Parquet and reads them back.
fn parquet_round_trip(lookup: Lookup) -> (RecordBatch, RecordBatch) {
    let directory = tempfile::tempdir().unwrap();
    let mut builder = TableBuilder::new(EnginesMode::Long);
    builder.push(flatten(lookup));
    let batches = builder.finish();

    let main_path = directory.path().join("main.parquet");
    let engines_path = directory.path().join("main.engines.parquet");
    let mode = EnginesMode::Long;
    write(
        &main_path,
        main_schema(mode),
        &main_columns(mode),
        &batches.main,
    );
    let engines = batches.engines.expect("long mode has an engines table");
    write(&engines_path, engines_schema(), &engine_columns(), &engines);
    (read(&main_path), read(&engines_path))
}

fn write(
    path: &Path,
    schema: arrow::datatypes::SchemaRef,
    columns: &[vt_enrich::flatten::ColumnDoc],
    batch: &RecordBatch,
) {
    let target = OutputTarget::File(path.to_path_buf());
    let options = CsvOptions::default();
    let mut writer =
        create_writer(&target, OutputFormat::Parquet, schema, columns, &options).unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
}

fn read(path: &Path) -> RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// Checks that flattening any body gives one row for the address, `ok` or `failed`.
fn assert_one_row(body: Vec<u8>) -> Result<(), TestCaseError> {
    let record = flatten(lookup("8.8.8.8", body));
    prop_assert_eq!(record.ip, "8.8.8.8");
    prop_assert!(
        matches!(record.status, Status::Ok | Status::Failed),
        "{:?}",
        record.status
    );
    if record.status == Status::Failed {
        prop_assert_eq!(record.error_code.as_deref(), Some("InvalidResponse"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_one_row(bytes)?;
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), attributes in json_value()) {
        assert_one_row(serde_json::to_vec(&value).unwrap())?;
        let wrapped = json!({"data": value});
        assert_one_row(serde_json::to_vec(&wrapped).unwrap())?;
        let object = json!({"data": {"id": "8.8.8.8", "type": "ip_address", "attributes": attributes}});
        assert_one_row(serde_json::to_vec(&object).unwrap())?;
    }

    #[test]
    fn damaged_real_bytes_never_panic(
        document in 0usize..64,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let (_, value) = &real_documents()[document % real_documents().len()];
        let mut bytes = serde_json::to_vec_pretty(value).unwrap();
        for (at, byte, action) in edits {
            let at = at % (bytes.len() + 1);
            match action {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        assert_one_row(bytes)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn mutated_real_documents_lose_nothing(
        document in 0usize..64,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (id, original) = &real_documents()[document % real_documents().len()];
        let mut value = original.clone();
        let attributes = &mut value["data"]["attributes"];
        for mutation in &mutations {
            apply(attributes, mutation);
        }

        let body = serde_json::to_vec(&value).unwrap();
        let (main, engines) = parquet_round_trip(lookup(id, body));
        prop_assert_eq!(main.num_rows(), 1);
        prop_assert_eq!(super::oracle::cell(&main, "status", 0), json!("ok"));
        let lost = lost_leaves(&value["data"]["attributes"], &main, 0, &engines);
        prop_assert!(lost.is_empty(), "lost after {:?}: {:?}", mutations, lost);
    }

    #[test]
    fn arbitrary_attributes_lose_nothing(
        entries in prop::collection::vec((key(), json_value()), 0..12),
    ) {
        let attributes = Value::Object(entries.into_iter().collect());
        let value = json!({"data": {"id": "8.8.8.8", "type": "ip_address", "attributes": attributes}});

        let body = serde_json::to_vec(&value).unwrap();
        let (main, engines) = parquet_round_trip(lookup("8.8.8.8", body));
        prop_assert_eq!(super::oracle::cell(&main, "status", 0), json!("ok"));
        let lost = lost_leaves(&value["data"]["attributes"], &main, 0, &engines);
        prop_assert!(lost.is_empty(), "lost: {:?}", lost);
    }
}
