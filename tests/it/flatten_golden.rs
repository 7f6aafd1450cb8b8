//! Golden tests: every real IP address document under `tests/data/responses` is flattened,
//! written through the Parquet and CSV writers, read back, and checked value by value against
//! the JSON it came from.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int8Type, Int64Type, SchemaRef, TimestampMicrosecondType};
use chrono::{NaiveDateTime, TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use serde_json::{Map, Value, json};

use vt_enrich::flatten::{
    EnginesMode, FIELD_DOC_KEY, SCHEMA_VERSION, TableBuilder, document_id, engine_columns,
    engines_schema, flatten, main_columns, main_schema,
};
use vt_enrich::model::{AnswerSource, Lookup, Status};
use vt_enrich::output::{
    COLUMNS_METADATA_KEY, CsvOptions, OutputFormat, OutputTarget, SCHEMA_VERSION_METADATA_KEY,
    create_writer,
};

/// One real document that is an IP address object.
struct Sample {
    name: String,
    id: String,
    body: Vec<u8>,
    attributes: Map<String, Value>,
}

fn responses_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/responses")
}

/// Loads every document that `document_id` accepts, sorted by file name.
fn samples() -> Vec<Sample> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(responses_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut samples = Vec::new();
    for path in paths {
        let body = std::fs::read(&path).unwrap();
        let Ok(id) = document_id(&body) else {
            continue;
        };
        let value: Value = serde_json::from_slice(&body).unwrap();
        let attributes = value["data"]["attributes"].as_object().unwrap().clone();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        samples.push(Sample {
            name,
            id,
            body,
            attributes,
        });
    }
    samples
}

fn lookup(sample: &Sample) -> Lookup {
    Lookup {
        ip: sample.id.clone(),
        ip_version: Some(4),
        status: Status::Ok,
        error_code: None,
        error_message: None,
        fetched_at: Some(Utc.with_ymd_and_hms(2025, 8, 7, 12, 0, 0).unwrap()),
        source: Some(AnswerSource::File),
        body: Some(sample.body.clone()),
    }
}

/// Writes the lookups as Parquet with the given mode and returns (main, engines) read back.
fn parquet_round_trip(
    directory: &Path,
    stem: &str,
    mode: EnginesMode,
    lookups: Vec<Lookup>,
) -> (RecordBatch, Option<RecordBatch>) {
    let mut builder = TableBuilder::new(mode);
    for lookup in lookups {
        builder.push(flatten(lookup));
    }
    let batches = builder.finish();

    let main_path = directory.join(format!("{stem}.parquet"));
    write_parquet(
        &main_path,
        main_schema(mode),
        &main_columns(mode),
        &batches.main,
    );
    let main = read_parquet(&main_path);

    let engines = batches.engines.map(|engines| {
        let path = directory.join(format!("{stem}.engines.parquet"));
        write_parquet(&path, engines_schema(), &engine_columns(), &engines);
        read_parquet(&path)
    });
    (main, engines)
}

fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    columns: &[vt_enrich::flatten::ColumnDoc],
    batch: &RecordBatch,
) {
    let target = OutputTarget::File(path.to_path_buf());
    let mut writer = create_writer(
        &target,
        OutputFormat::Parquet,
        schema,
        columns,
        &CsvOptions::default(),
    )
    .unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
}

fn read_parquet(path: &Path) -> RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// Returns the cell at (`column`, `row`) as JSON, so it compares with the source document.
fn cell(batch: &RecordBatch, column: &str, row: usize) -> Value {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::Int8 => json!(array.as_primitive::<Int8Type>().value(row)),
        DataType::Timestamp(_, _) => {
            json!(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let items: Vec<&str> = items
                .as_string::<i32>()
                .iter()
                .map(|i| i.unwrap())
                .collect();
            json!(items)
        }
        other => panic!("unexpected type {other}"),
    }
}

/// Maps a JSON path to its typed column and to the value expected in that column.
fn column_of(path: &[&str], value: &Value) -> Option<(String, Value)> {
    let epoch = |v: &Value| json!(v.as_i64().unwrap() * 1_000_000);
    let validity = |v: &Value| {
        let text = v.as_str().unwrap();
        let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        json!(at.and_utc().timestamp_micros())
    };
    let same = |name: &str| Some((name.to_string(), value.clone()));
    match path {
        [
            name @ ("as_owner"
            | "asn"
            | "continent"
            | "country"
            | "jarm"
            | "network"
            | "regional_internet_registry"
            | "reputation"
            | "tags"
            | "whois"),
        ] => same(name),
        [
            name @ ("whois_date"
            | "last_analysis_date"
            | "last_modification_date"
            | "last_https_certificate_date"
            | "first_seen_date"),
        ] => Some((name.to_string(), epoch(value))),
        [
            "last_analysis_stats",
            leaf @ ("harmless" | "malicious" | "suspicious" | "timeout" | "undetected"),
        ] => same(&format!("last_analysis_stats_{leaf}")),
        ["total_votes", leaf @ ("harmless" | "malicious")] => same(&format!("total_votes_{leaf}")),
        ["last_https_certificate", rest @ ..] => {
            let column = |leaf: &str| Some(format!("last_https_certificate_{leaf}"));
            let (name, read) = match rest {
                ["subject", "CN"] => (column("subject_cn"), value.clone()),
                ["issuer", "C"] => (column("issuer_c"), value.clone()),
                ["issuer", "CN"] => (column("issuer_cn"), value.clone()),
                ["issuer", "O"] => (column("issuer_o"), value.clone()),
                ["validity", "not_before"] => (column("validity_not_before"), validity(value)),
                ["validity", "not_after"] => (column("validity_not_after"), validity(value)),
                [
                    leaf @ ("serial_number"
                    | "thumbprint"
                    | "thumbprint_sha256"
                    | "signature_algorithm"
                    | "version"
                    | "size"),
                ] => (column(leaf), value.clone()),
                ["extensions", "subject_alternative_name"] => {
                    (column("extensions_subject_alternative_name"), value.clone())
                }
                ["public_key", "algorithm"] => (column("public_key_algorithm"), value.clone()),
                ["public_key", "rsa", "key_size"] => (column("public_key_size"), value.clone()),
                _ => (None, Value::Null),
            };
            name.map(|name| (name, read))
        }
        _ => None,
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

fn lookup_path<'a>(mut value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    for key in path {
        value = value.as_object()?.get(*key)?;
    }
    Some(value)
}

/// Engine rows of one address: engine name → (category, method, result).
fn engine_rows(engines: &RecordBatch, ip: &str) -> BTreeMap<String, [Value; 3]> {
    let mut rows = BTreeMap::new();
    for row in 0..engines.num_rows() {
        if cell(engines, "ip", row) != json!(ip) {
            continue;
        }
        let name = cell(engines, "engine_name", row)
            .as_str()
            .unwrap()
            .to_string();
        let fields = [
            cell(engines, "category", row),
            cell(engines, "method", row),
            cell(engines, "result", row),
        ];
        assert!(
            rows.insert(name.clone(), fields).is_none(),
            "{ip}: engine {name} twice"
        );
    }
    rows
}

#[test]
fn samples_include_every_real_ip_object() {
    let names: Vec<String> = samples().into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 11, "{names:?}");
    assert!(
        names.iter().all(|name| name.starts_with("ip_")),
        "{names:?}"
    );
}

#[test]
fn nothing_is_lost() {
    let samples = samples();
    let directory = tempfile::tempdir().unwrap();
    // Two samples are 1.1.1.1, so each row is keyed by its file name to keep engine rows apart.
    let lookups = samples
        .iter()
        .map(|sample| Lookup {
            ip: sample.name.clone(),
            ..lookup(sample)
        })
        .collect();
    let (main, engines) = parquet_round_trip(directory.path(), "all", EnginesMode::Long, lookups);
    let engines = engines.unwrap();
    assert_eq!(main.num_rows(), samples.len());

    for (row, sample) in samples.iter().enumerate() {
        let name = &sample.name;
        assert_eq!(cell(&main, "status", row), json!("ok"), "{name}");
        assert_eq!(cell(&main, "ip", row), json!(name), "{name}");
        let extra = match cell(&main, "extra_attributes", row) {
            Value::String(text) => serde_json::from_str(&text).unwrap(),
            _ => Value::Object(Map::new()),
        };
        let rows = engine_rows(&engines, name);
        let attributes = Value::Object(sample.attributes.clone());

        let mut all = Vec::new();
        leaves(&mut Vec::new(), &attributes, &mut all);
        for (path, value) in all {
            let path_text = path.join(".");
            if let ["last_analysis_results", engine, field] = path.as_slice() {
                let fields = rows
                    .get(*engine)
                    .unwrap_or_else(|| panic!("{name}: {path_text}"));
                let index = match *field {
                    "category" => 0,
                    "method" => 1,
                    "result" => 2,
                    "engine_name" => {
                        assert_eq!(value, &json!(engine), "{name}: {path_text}");
                        continue;
                    }
                    other => panic!("{name}: unexpected engine field {other}"),
                };
                assert_eq!(&fields[index], value, "{name}: {path_text}");
            } else if let Some((column, expected)) = column_of(&path, value) {
                assert_eq!(
                    cell(&main, &column, row),
                    expected,
                    "{name}: {path_text} in {column}"
                );
                assert!(
                    lookup_path(&extra, &path).is_none(),
                    "{name}: {path_text} duplicated"
                );
            } else {
                let extra_value = lookup_path(&extra, &path);
                assert_eq!(
                    extra_value,
                    Some(value),
                    "{name}: {path_text} missing from extra_attributes"
                );
            }
        }
        let engine_count = sample
            .attributes
            .get("last_analysis_results")
            .map_or(0, |r| r.as_object().unwrap().len());
        assert_eq!(rows.len(), engine_count, "{name}");
    }
}

#[test]
fn absent_attributes_are_null() {
    let samples = samples();
    let directory = tempfile::tempdir().unwrap();
    let lookups = samples.iter().map(lookup).collect();
    let (main, _) = parquet_round_trip(directory.path(), "all", EnginesMode::Long, lookups);
    let row_of = |prefix: &str| {
        samples
            .iter()
            .position(|s| s.name.starts_with(prefix))
            .unwrap()
    };

    let no_asn = row_of("ip_42.134.73.173");
    for column in [
        "asn",
        "as_owner",
        "network",
        "jarm",
        "last_https_certificate_subject_cn",
    ] {
        assert_eq!(cell(&main, column, no_asn), Value::Null, "{column}");
    }
    assert_eq!(cell(&main, "country", no_asn), json!("CN"));

    let minimal = row_of("ip_201.253.251.234");
    for column in [
        "whois",
        "whois_date",
        "last_modification_date",
        "last_analysis_date",
    ] {
        assert_eq!(cell(&main, column, minimal), Value::Null, "{column}");
    }
    assert_eq!(cell(&main, "extra_attributes", minimal), Value::Null);

    let no_country = row_of("ip_1.1.1.1_2022");
    for column in ["country", "continent", "regional_internet_registry"] {
        assert_eq!(cell(&main, column, no_country), Value::Null, "{column}");
    }

    let early = row_of("ip_1.1.1.1_2019");
    for column in [
        "last_analysis_stats_harmless",
        "tags",
        "jarm",
        "first_seen_date",
    ] {
        assert_eq!(cell(&main, column, early), Value::Null, "{column}");
    }
    assert_eq!(cell(&main, "total_votes_malicious", early), json!(1));
    assert_eq!(
        cell(&main, "last_https_certificate_public_key_size", early),
        json!(256)
    );
}

#[test]
fn rich_sample_values() {
    let samples = samples();
    let rich = samples
        .iter()
        .find(|s| s.name.starts_with("ip_8.8.8.8"))
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let (main, engines) = parquet_round_trip(
        directory.path(),
        "rich",
        EnginesMode::Long,
        vec![lookup(rich)],
    );

    assert_eq!(cell(&main, "asn", 0), json!(15169));
    assert_eq!(cell(&main, "reputation", 0), json!(556));
    // 1754552878 is 2025-08-07T07:47:58Z.
    let analysed = Utc.with_ymd_and_hms(2025, 8, 7, 7, 47, 58).unwrap();
    assert_eq!(
        cell(&main, "last_analysis_date", 0),
        json!(analysed.timestamp_micros())
    );
    assert_eq!(
        cell(&main, "last_https_certificate_subject_cn", 0),
        json!("dns.google")
    );
    assert_eq!(
        cell(&main, "last_https_certificate_public_key_size", 0),
        json!(2048)
    );
    let sans = cell(
        &main,
        "last_https_certificate_extensions_subject_alternative_name",
        0,
    );
    assert_eq!(sans.as_array().unwrap().len(), 11);
    assert_eq!(sans[7], json!("2001:4860:4860::8888"));

    let extra: Value =
        serde_json::from_str(cell(&main, "extra_attributes", 0).as_str().unwrap()).unwrap();
    for key in [
        "rdap",
        "crowdsourced_context",
        "gti_assessment",
        "last_seen_itw_date",
        "threat_severity",
    ] {
        assert!(
            extra.get(key).is_some(),
            "{key} missing from extra_attributes"
        );
    }
    assert!(extra.get("last_analysis_results").is_none());
    assert_eq!(
        extra["last_https_certificate"]["extensions"]["1.3.6.1.4.1.11129.2.4.2"],
        json!("0481f100ef007600ccfb0f6a85710965fe959b53cee9b27c22e9855c0d978db6")
    );

    let engines = engines.unwrap();
    assert_eq!(engines.num_rows(), 94);
    let dr_web: Vec<usize> = (0..engines.num_rows())
        .filter(|&row| cell(&engines, "engine_name", row) == json!("Dr.Web"))
        .collect();
    assert_eq!(dr_web.len(), 1);
    assert_eq!(cell(&engines, "category", dr_web[0]), json!("harmless"));
    let split = (0..engines.num_rows())
        .filter(|&row| {
            matches!(
                cell(&engines, "engine_name", row).as_str(),
                Some("Dr" | "Web")
            )
        })
        .count();
    assert_eq!(split, 0);

    let (wide, none) = parquet_round_trip(
        directory.path(),
        "wide",
        EnginesMode::Wide,
        vec![lookup(rich)],
    );
    assert!(none.is_none());
    assert_eq!(
        cell(&wide, "last_analysis_results_Dr.Web", 0),
        json!("harmless")
    );
    assert_eq!(
        cell(&wide, "last_analysis_results_Criminal IP", 0),
        json!("harmless")
    );
    assert_eq!(cell(&wide, "last_analysis_results_other", 0), Value::Null);
    let dr_columns = wide
        .schema()
        .fields()
        .iter()
        .filter(|f| f.name().contains("Dr.Web"))
        .count();
    assert_eq!(dr_columns, 1);
}

#[test]
fn trimmed_engines_keep_stats() {
    let samples = samples();
    let trimmed = samples
        .iter()
        .find(|s| s.name.contains("trimmed_engines"))
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let (main, engines) = parquet_round_trip(
        directory.path(),
        "trimmed",
        EnginesMode::Long,
        vec![lookup(trimmed)],
    );

    let engines = engines.unwrap();
    assert_eq!(engines.num_rows(), 3);
    let names: Vec<Value> = (0..3)
        .map(|row| cell(&engines, "engine_name", row))
        .collect();
    assert_eq!(
        names,
        [
            json!("ADMINUSLabs"),
            json!("GreenSnow"),
            json!("Snort IP sample list")
        ]
    );

    // The stats are copied as given: they add up to 87 while only 3 engines are listed.
    assert_eq!(cell(&main, "last_analysis_stats_harmless", 0), json!(72));
    assert_eq!(cell(&main, "last_analysis_stats_malicious", 0), json!(5));
    assert_eq!(cell(&main, "last_analysis_stats_suspicious", 0), json!(2));
    assert_eq!(cell(&main, "last_analysis_stats_timeout", 0), json!(0));
    assert_eq!(cell(&main, "last_analysis_stats_undetected", 0), json!(8));

    assert_eq!(cell(&main, "last_analysis_date", 0), Value::Null);
    assert_eq!(cell(&main, "reputation", 0), json!(-4));
}

#[test]
fn schema_identical_for_every_document() {
    let directory = tempfile::tempdir().unwrap();
    for mode in [EnginesMode::Long, EnginesMode::Wide, EnginesMode::None] {
        let expected = main_schema(mode);
        for (index, sample) in samples().iter().enumerate() {
            let stem = format!("{mode:?}-{index}");
            let (main, engines) =
                parquet_round_trip(directory.path(), &stem, mode, vec![lookup(sample)]);
            assert_eq!(
                main.schema().fields(),
                expected.fields(),
                "{} {mode:?}",
                sample.name
            );
            if let Some(engines) = engines {
                assert_eq!(engines.schema().fields(), engines_schema().fields());
            }
        }
    }
}

#[test]
fn epoch_converts_to_utc() {
    let body = br#"{"data": {"id": "192.0.2.1", "type": "ip_address",
        "attributes": {"whois_date": 1616514075}}}"#;
    let sample = Sample {
        name: "constructed".to_string(),
        id: "192.0.2.1".to_string(),
        body: body.to_vec(),
        attributes: Map::new(),
    };
    let directory = tempfile::tempdir().unwrap();
    let (main, _) = parquet_round_trip(
        directory.path(),
        "epoch",
        EnginesMode::None,
        vec![lookup(&sample)],
    );
    let column = main.column_by_name("whois_date").unwrap();
    assert_eq!(
        column.data_type(),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
    );
    let micros = column.as_primitive::<TimestampMicrosecondType>().value(0);
    let at = chrono::DateTime::from_timestamp_micros(micros).unwrap();
    assert_eq!(
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "2021-03-23T15:41:15Z"
    );
}

#[test]
fn parquet_metadata_documents_columns() {
    let samples = samples();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("meta.parquet");
    let mut builder = TableBuilder::new(EnginesMode::Long);
    builder.push(flatten(lookup(&samples[0])));
    let batches = builder.finish();
    let mode = EnginesMode::Long;
    write_parquet(&path, main_schema(mode), &main_columns(mode), &batches.main);

    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let metadata = reader.metadata().file_metadata();
    let kv: BTreeMap<&str, &str> = metadata
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(kv.get(SCHEMA_VERSION_METADATA_KEY), Some(&SCHEMA_VERSION));
    let columns: Value = serde_json::from_str(kv[COLUMNS_METADATA_KEY]).unwrap();
    assert_eq!(
        columns.as_array().unwrap().len(),
        main_schema(mode).fields().len()
    );
    assert_eq!(columns[0]["name"], json!("ip"));
    assert!(columns[0]["doc"].as_str().is_some_and(|d| !d.is_empty()));

    let whois = reader.schema().field_with_name("whois").unwrap();
    assert!(
        whois
            .metadata()
            .get(FIELD_DOC_KEY)
            .is_some_and(|d| d.contains("WHOIS"))
    );
    let row_group = &reader.metadata().row_groups()[0];
    assert!(matches!(
        row_group.column(0).compression(),
        Compression::ZSTD(_)
    ));
}

#[test]
fn csv_round_trip_of_real_whois() {
    let samples = samples();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("all.csv");
    let mut builder = TableBuilder::new(EnginesMode::None);
    for sample in &samples {
        builder.push(flatten(lookup(sample)));
    }
    let batch = builder.finish().main;
    let target = OutputTarget::File(path.clone());
    let mode = EnginesMode::None;
    let mut writer = create_writer(
        &target,
        OutputFormat::Csv,
        main_schema(mode),
        &main_columns(mode),
        &CsvOptions::default(),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();

    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let whois_index = header.iter().position(|h| h == "whois").unwrap();
    let reputation_index = header.iter().position(|h| h == "reputation").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), samples.len());
    for (sample, record) in samples.iter().zip(&records) {
        let expected = sample
            .attributes
            .get("whois")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert_eq!(&record[whois_index], expected, "{}", sample.name);
        let reputation = sample.attributes["reputation"]
            .as_i64()
            .unwrap()
            .to_string();
        assert_eq!(&record[reputation_index], reputation, "{}", sample.name);
    }
}

#[test]
fn csv_escapes_constructed_cells() {
    let whois = "OrgName: Example, \"Quoted\" Inc.\r\nAddress: 1 Main St, Suite 2\nComment: a,b\n";
    let attributes = json!({
        "whois": whois,
        "as_owner": "=HYPERLINK(\"http://example.invalid\",\"x\")",
        "reputation": -9,
        "tags": ["vpn", "tor"],
        "last_modification_date": 1616514075
    });
    let body = json!({"data": {"id": "192.0.2.7", "type": "ip_address", "attributes": attributes}});
    let sample = Sample {
        name: "constructed".to_string(),
        id: "192.0.2.7".to_string(),
        body: serde_json::to_vec(&body).unwrap(),
        attributes: Map::new(),
    };
    let mut builder = TableBuilder::new(EnginesMode::None);
    builder.push(flatten(lookup(&sample)));
    let batch = builder.finish().main;

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("one.csv");
    let mode = EnginesMode::None;
    let target = OutputTarget::File(path.clone());
    let mut writer = create_writer(
        &target,
        OutputFormat::Csv,
        main_schema(mode),
        &main_columns(mode),
        &CsvOptions::default(),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.ends_with(b"\r\n"));
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader.headers().unwrap().clone();
    let record = reader.records().next().unwrap().unwrap();
    let get = |name: &str| record[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(get("whois"), whois);
    assert_eq!(
        get("as_owner"),
        "'=HYPERLINK(\"http://example.invalid\",\"x\")"
    );
    assert_eq!(get("reputation"), "-9");
    assert_eq!(get("tags"), r#"["vpn","tor"]"#);
    assert_eq!(get("last_modification_date"), "2021-03-23T15:41:15Z");
    assert_eq!(get("fetched_at"), "2025-08-07T12:00:00Z");
    assert_eq!(get("asn"), "");
}

#[test]
fn unfinished_writer_leaves_no_file() {
    let directory = tempfile::tempdir().unwrap();
    for format in [OutputFormat::Parquet, OutputFormat::Csv, OutputFormat::Tsv] {
        let path = directory
            .path()
            .join(format!("dropped.{}", format.extension()));
        let mode = EnginesMode::Long;
        let target = OutputTarget::File(path.clone());
        let mut writer = create_writer(
            &target,
            format,
            main_schema(mode),
            &main_columns(mode),
            &CsvOptions::default(),
        )
        .unwrap();
        let mut builder = TableBuilder::new(mode);
        builder.push(flatten(lookup(&samples()[0])));
        writer.write(&builder.finish().main).unwrap();
        drop(writer);
        assert!(!path.exists(), "{format:?}");
    }
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0);
}
