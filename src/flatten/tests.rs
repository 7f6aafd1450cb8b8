use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int8Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{TimeZone, Utc};

use super::*;

const FULL: &str = r#"{"data": {"id": "8.8.8.8", "type": "ip_address", "links": {"self": "x"},
  "attributes": {
    "as_owner": "GOOGLE", "asn": 15169, "continent": "NA", "country": "US",
    "jarm": "29d3fd00029d29d00042d43d00041d", "network": "8.8.8.0/24",
    "regional_internet_registry": "ARIN", "reputation": -9, "tags": ["vpn", "tor"],
    "whois": "NetRange: 8.8.8.0 - 8.8.8.255\nOrgName: Google LLC\n",
    "whois_date": 1616514075, "last_analysis_date": 1616514076,
    "last_modification_date": 1616514077, "last_https_certificate_date": 1616514078,
    "first_seen_date": 1409607591,
    "last_analysis_stats": {"harmless": 61, "malicious": 1, "suspicious": 2, "timeout": 3, "undetected": 33},
    "total_votes": {"harmless": 236, "malicious": 44},
    "last_analysis_results": {
      "Dr.Web": {"method": "blacklist", "engine_name": "Dr.Web", "category": "harmless", "result": "clean"},
      "Brand New Engine": {"method": "blacklist", "engine_name": "Brand New Engine", "category": "malicious", "result": "phishing"}
    },
    "last_https_certificate": {
      "subject": {"CN": "dns.google"},
      "issuer": {"C": "US", "O": "Google Trust Services", "CN": "WR2"},
      "validity": {"not_after": "2025-09-29 08:35:57", "not_before": "2025-07-07 08:35:58"},
      "serial_number": "f6dd595b0c2839cd0912a6e66311be3a",
      "thumbprint": "731bceed54fa81fc066acd8324f47dd16be28757",
      "thumbprint_sha256": "649981865a3effb5ff7be7c842e336ea61f14f5696cc1bde9b068dd03cd6c29d",
      "extensions": {"subject_alternative_name": ["dns.google", "2001:4860:4860::8888"]},
      "public_key": {"algorithm": "RSA", "rsa": {"key_size": 2048}},
      "signature_algorithm": "sha256RSA", "version": "V3", "size": 1461
    },
    "rdap": {"handle": "NET-8-8-8-0-2"}
  }}}"#;

fn ok_lookup(ip: &str, body: &str) -> Lookup {
    Lookup {
        ip: ip.to_string(),
        ip_version: Some(4),
        status: Status::Ok,
        error_code: None,
        error_message: None,
        fetched_at: Some(Utc.with_ymd_and_hms(2025, 8, 7, 12, 0, 0).unwrap()),
        source: Some(AnswerSource::Api),
        body: Some(body.as_bytes().to_vec()),
    }
}

fn build(mode: EnginesMode, records: Vec<FlatRecord>) -> TableBatches {
    let mut builder = TableBuilder::new(mode);
    for record in records {
        builder.push(record);
    }
    builder.finish()
}

fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_string::<i32>();
    array.is_valid(row).then(|| array.value(row).to_string())
}

fn int64(batch: &RecordBatch, column: &str, row: usize) -> Option<i64> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_primitive::<Int64Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn micros(batch: &RecordBatch, column: &str, row: usize) -> Option<i64> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_primitive::<TimestampMicrosecondType>();
    array.is_valid(row).then(|| array.value(row))
}

fn list(batch: &RecordBatch, column: &str, row: usize) -> Option<Vec<String>> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_list::<i32>();
    if array.is_null(row) {
        return None;
    }
    let values = array.value(row);
    let values = values.as_string::<i32>();
    Some(values.iter().map(|v| v.unwrap().to_string()).collect())
}

fn seconds(epoch: i64) -> Option<i64> {
    Some(epoch * 1_000_000)
}

#[test]
fn full_document_fills_every_column() {
    let record = flatten(ok_lookup("8.8.8.8", FULL));
    assert_eq!(record.status, Status::Ok);
    let batches = build(EnginesMode::Long, vec![record]);
    let main = &batches.main;

    assert_eq!(text(main, "ip", 0).as_deref(), Some("8.8.8.8"));
    let version = main
        .column_by_name("ip_version")
        .unwrap()
        .as_primitive::<Int8Type>();
    assert_eq!(version.value(0), 4);
    assert_eq!(text(main, "status", 0).as_deref(), Some("ok"));
    assert_eq!(text(main, "error_code", 0), None);
    assert_eq!(micros(main, "fetched_at", 0), seconds(1_754_568_000));
    assert_eq!(text(main, "source", 0).as_deref(), Some("api"));
    assert_eq!(text(main, "as_owner", 0).as_deref(), Some("GOOGLE"));
    assert_eq!(int64(main, "asn", 0), Some(15169));
    assert_eq!(text(main, "continent", 0).as_deref(), Some("NA"));
    assert_eq!(text(main, "country", 0).as_deref(), Some("US"));
    assert_eq!(
        text(main, "jarm", 0).as_deref(),
        Some("29d3fd00029d29d00042d43d00041d")
    );
    assert_eq!(text(main, "network", 0).as_deref(), Some("8.8.8.0/24"));
    assert_eq!(
        text(main, "regional_internet_registry", 0).as_deref(),
        Some("ARIN")
    );
    assert_eq!(int64(main, "reputation", 0), Some(-9));
    assert_eq!(
        list(main, "tags", 0),
        Some(vec!["vpn".into(), "tor".into()])
    );
    assert!(text(main, "whois", 0).unwrap().starts_with("NetRange"));
    assert_eq!(micros(main, "whois_date", 0), seconds(1_616_514_075));
    assert_eq!(
        micros(main, "last_analysis_date", 0),
        seconds(1_616_514_076)
    );
    assert_eq!(
        micros(main, "last_modification_date", 0),
        seconds(1_616_514_077)
    );
    assert_eq!(
        micros(main, "last_https_certificate_date", 0),
        seconds(1_616_514_078)
    );
    assert_eq!(micros(main, "first_seen_date", 0), seconds(1_409_607_591));
    assert_eq!(int64(main, "last_analysis_stats_harmless", 0), Some(61));
    assert_eq!(int64(main, "last_analysis_stats_malicious", 0), Some(1));
    assert_eq!(int64(main, "last_analysis_stats_suspicious", 0), Some(2));
    assert_eq!(int64(main, "last_analysis_stats_timeout", 0), Some(3));
    assert_eq!(int64(main, "last_analysis_stats_undetected", 0), Some(33));
    assert_eq!(int64(main, "total_votes_harmless", 0), Some(236));
    assert_eq!(int64(main, "total_votes_malicious", 0), Some(44));

    let cert = "last_https_certificate_";
    let cert_text = |leaf: &str| text(main, &format!("{cert}{leaf}"), 0);
    assert_eq!(cert_text("subject_cn").as_deref(), Some("dns.google"));
    assert_eq!(cert_text("issuer_c").as_deref(), Some("US"));
    assert_eq!(cert_text("issuer_cn").as_deref(), Some("WR2"));
    assert_eq!(
        cert_text("issuer_o").as_deref(),
        Some("Google Trust Services")
    );
    let not_before = Utc.with_ymd_and_hms(2025, 7, 7, 8, 35, 58).unwrap();
    assert_eq!(
        micros(main, &format!("{cert}validity_not_before"), 0),
        Some(not_before.timestamp_micros())
    );
    let not_after = Utc.with_ymd_and_hms(2025, 9, 29, 8, 35, 57).unwrap();
    assert_eq!(
        micros(main, &format!("{cert}validity_not_after"), 0),
        Some(not_after.timestamp_micros())
    );
    assert_eq!(
        cert_text("serial_number").as_deref(),
        Some("f6dd595b0c2839cd0912a6e66311be3a")
    );
    assert_eq!(
        cert_text("thumbprint").as_deref(),
        Some("731bceed54fa81fc066acd8324f47dd16be28757")
    );
    assert!(
        cert_text("thumbprint_sha256")
            .unwrap()
            .starts_with("649981865a3e")
    );
    assert_eq!(
        list(
            main,
            &format!("{cert}extensions_subject_alternative_name"),
            0
        ),
        Some(vec!["dns.google".into(), "2001:4860:4860::8888".into()])
    );
    assert_eq!(cert_text("public_key_algorithm").as_deref(), Some("RSA"));
    assert_eq!(
        int64(main, &format!("{cert}public_key_size"), 0),
        Some(2048)
    );
    assert_eq!(
        cert_text("signature_algorithm").as_deref(),
        Some("sha256RSA")
    );
    assert_eq!(cert_text("version").as_deref(), Some("V3"));
    assert_eq!(int64(main, &format!("{cert}size"), 0), Some(1461));
    assert_eq!(
        text(main, "extra_attributes", 0).as_deref(),
        Some(r#"{"rdap":{"handle":"NET-8-8-8-0-2"}}"#)
    );

    let engines = batches.engines.expect("long mode has an engines table");
    assert_eq!(engines.num_rows(), 2);
    assert_eq!(text(&engines, "ip", 0).as_deref(), Some("8.8.8.8"));
    assert_eq!(text(&engines, "engine_name", 0).as_deref(), Some("Dr.Web"));
    assert_eq!(text(&engines, "category", 1).as_deref(), Some("malicious"));
    assert_eq!(text(&engines, "method", 1).as_deref(), Some("blacklist"));
    assert_eq!(text(&engines, "result", 1).as_deref(), Some("phishing"));
}

#[test]
fn empty_attributes_give_null_columns() {
    let body = r#"{"data": {"id": "9.9.9.9", "type": "ip_address", "attributes": {}}}"#;
    let batches = build(EnginesMode::Long, vec![flatten(ok_lookup("9.9.9.9", body))]);
    let main = &batches.main;
    assert_eq!(main.schema(), main_schema(EnginesMode::Long));
    assert_eq!(text(main, "status", 0).as_deref(), Some("ok"));
    // Every attribute column, from as_owner on, is null.
    let first_attribute = main.schema().index_of("as_owner").unwrap();
    for (index, column) in main.columns().iter().enumerate().skip(first_attribute) {
        let name = main.schema().field(index).name().clone();
        assert!(column.is_null(0), "{name} is not null");
    }
    assert_eq!(batches.engines.unwrap().num_rows(), 0);
}

#[test]
fn partial_document_keeps_present_values() {
    let body = r#"{"_id": "42.134.73.173", "_type": "ip_address", "country": "CN",
        "last_analysis_stats": {"malicious": 0}, "tags": []}"#;
    let batches = build(
        EnginesMode::None,
        vec![flatten(ok_lookup("42.134.73.173", body))],
    );
    let main = &batches.main;
    assert_eq!(text(main, "country", 0).as_deref(), Some("CN"));
    assert_eq!(int64(main, "asn", 0), None);
    assert_eq!(text(main, "as_owner", 0), None);
    assert_eq!(micros(main, "last_analysis_date", 0), None);
    assert_eq!(int64(main, "last_analysis_stats_malicious", 0), Some(0));
    assert_eq!(int64(main, "last_analysis_stats_harmless", 0), None);
    assert_eq!(list(main, "tags", 0), Some(vec![]));
    assert!(batches.engines.is_none());
}

#[test]
fn epoch_reads_back_as_utc() {
    let body = r#"{"data": {"id": "1.2.3.4", "type": "ip_address", "attributes": {"last_modification_date": 1616514075}}}"#;
    let batches = build(EnginesMode::None, vec![flatten(ok_lookup("1.2.3.4", body))]);
    let value = micros(&batches.main, "last_modification_date", 0).unwrap();
    let at = chrono::DateTime::from_timestamp_micros(value).unwrap();
    assert_eq!(
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "2021-03-23T15:41:15Z"
    );
}

#[test]
fn wrong_types_keep_row_and_value() {
    let body = r#"{"data": {"id": "1.2.3.4", "type": "ip_address", "attributes": {
        "asn": "15169", "whois_date": -1, "last_analysis_date": 1616514075.5,
        "tags": {"vpn": true}, "reputation": 5}}}"#;
    let record = flatten(ok_lookup("1.2.3.4", body));
    assert_eq!(record.status, Status::Ok);
    assert_eq!(record.attributes.asn, None);
    assert_eq!(record.attributes.reputation, Some(5));
    let extra: serde_json::Value =
        serde_json::from_str(record.extra_attributes.as_deref().unwrap()).unwrap();
    assert_eq!(extra["asn"], "15169");
    assert_eq!(extra["whois_date"], -1);
    assert_eq!(extra["last_analysis_date"], 1616514075.5);
    assert_eq!(extra["tags"]["vpn"], true);
}

#[test]
fn unparsable_body_fails_row() {
    for body in [
        "{\"data\": {",
        "[1, 2]",
        r#"{"data": {"id": "x.com", "type": "domain"}}"#,
    ] {
        let record = flatten(ok_lookup("5.6.7.8", body));
        assert_eq!(record.status, Status::Failed, "{body}");
        assert_eq!(record.ip, "5.6.7.8");
        assert_eq!(record.error_code.as_deref(), Some(INVALID_RESPONSE_CODE));
        assert!(
            record
                .error_message
                .as_deref()
                .unwrap()
                .contains("not a VirusTotal IP address")
        );
        assert_eq!(record.attributes, IpAttributes::default());
    }
}

#[test]
fn body_of_other_status_is_ignored() {
    let mut lookup = ok_lookup("5.6.7.8", FULL);
    lookup.status = Status::NotFound;
    lookup.error_code = Some("NotFoundError".to_string());
    let record = flatten(lookup);
    assert_eq!(record.status, Status::NotFound);
    assert_eq!(record.error_code.as_deref(), Some("NotFoundError"));
    assert_eq!(record.attributes.asn, None);
}

#[test]
fn empty_ip_taken_from_document() {
    let mut lookup = ok_lookup("", FULL);
    lookup.ip_version = None;
    let record = flatten(lookup);
    assert_eq!(record.ip, "8.8.8.8");
    assert_eq!(record.ip_version, Some(4));
}

#[test]
fn rows_without_body_build() {
    let address: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    let mut lookup = Lookup::without_body(&address, Status::Skipped);
    lookup.error_message = Some("documentation address (RFC 3849)".to_string());
    let batches = build(EnginesMode::Wide, vec![flatten(lookup)]);
    let main = &batches.main;
    assert_eq!(text(main, "status", 0).as_deref(), Some("skipped"));
    assert_eq!(text(main, "ip", 0).as_deref(), Some("2001:db8::1"));
    assert_eq!(micros(main, "fetched_at", 0), None);
    assert_eq!(text(main, "source", 0), None);
    assert_eq!(text(main, "last_analysis_results_Dr.Web", 0), None);
    assert_eq!(text(main, OTHER_ENGINES_COLUMN, 0), None);
}

#[test]
fn wide_mode_has_engine_columns() {
    let batches = build(EnginesMode::Wide, vec![flatten(ok_lookup("8.8.8.8", FULL))]);
    let main = &batches.main;
    assert!(batches.engines.is_none());
    assert_eq!(main.schema(), main_schema(EnginesMode::Wide));
    assert_eq!(
        text(main, "last_analysis_results_Dr.Web", 0).as_deref(),
        Some("harmless")
    );
    assert_eq!(text(main, "last_analysis_results_Antiy-AVL", 0), None);
    assert_eq!(
        text(main, OTHER_ENGINES_COLUMN, 0).as_deref(),
        Some(r#"{"Brand New Engine":"malicious"}"#)
    );
}

#[test]
fn builder_resets_between_batches() {
    let mut builder = TableBuilder::new(EnginesMode::Long);
    builder.push(flatten(ok_lookup("8.8.8.8", FULL)));
    builder.push(flatten(ok_lookup("8.8.8.8", FULL)));
    assert_eq!(builder.len(), 2);
    let first = builder.finish();
    assert_eq!(first.main.num_rows(), 2);
    assert_eq!(first.engines.unwrap().num_rows(), 4);
    assert!(builder.is_empty());

    builder.push(flatten(ok_lookup("8.8.8.8", FULL)));
    let second = builder.finish();
    assert_eq!(second.main.num_rows(), 1);
    assert_eq!(second.engines.unwrap().num_rows(), 2);
    assert_eq!(second.main.schema(), first.main.schema());
    assert_eq!(int64(&second.main, "asn", 0), Some(15169));
}
