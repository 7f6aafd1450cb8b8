//! Relationship pages from real VirusTotal responses, and hard cases, flattened to rows.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/responses/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

fn origin() -> PageOrigin {
    PageOrigin {
        fetched_at: Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap(),
        source: AnswerSource::Api,
    }
}

fn flatten(body: &[u8], relationship: Relationship) -> RelatedPage {
    flatten_page(body, "1.1.1.1", relationship, 0, usize::MAX, origin()).expect("a valid page")
}

fn micros(seconds: i64) -> Cell {
    Cell::Micros(seconds * 1_000_000)
}

fn text(value: &str) -> Cell {
    Cell::Text(value.to_string())
}

fn extra(row: &RelatedRow) -> Value {
    serde_json::from_str(row.extra_attributes.as_deref().expect("extra attributes")).unwrap()
}

#[test]
fn resolutions_page_keeps_order_dates_and_cursor() {
    let page = flatten(
        &sample("resolutions_1.1.1.1_page_with_cursor.json"),
        Relationship::Resolutions,
    );

    assert_eq!(page.rows.len(), 10);
    assert_eq!(page.items_on_page, 10);
    assert_eq!(
        page.next_cursor.as_deref(),
        Some(
            "ClMKEQoEZGF0ZRIJCPTGk8eEqeUCEjpqEXN-dmlydXN0b3RhbGNsb3VkciULEgpSZXNvbHV0aW9uIhUxLjEuMS4xc3RvY2twZWl6aS5jb20MGAAgAQ=="
        )
    );

    let first = &page.rows[0];
    assert_eq!(first.ip, "1.1.1.1");
    assert_eq!(first.position, Some(0));
    assert_eq!(first.object_type.as_deref(), Some("resolution"));
    assert_eq!(
        first.id.as_deref(),
        Some("1.1.1.1kdhnuvweq.xpqgimn.qypvthu.loqu.forum.mythem.es")
    );
    assert_eq!(
        first.cell("host_name"),
        Some(&text("kdhnuvweq.xpqgimn.qypvthu.loqu.forum.mythem.es"))
    );
    assert_eq!(first.cell("date"), Some(&micros(1_571_522_736)));
    assert_eq!(first.cell("resolver"), Some(&text("VirusTotal")));
    assert_eq!(
        first.cell("host_name_last_analysis_stats_malicious"),
        Some(&Cell::Null)
    );
    assert_eq!(first.error_code, None);
    assert_eq!(first.fetched_at, Some(origin().fetched_at));
    assert_eq!(first.source, Some(AnswerSource::Api));
    // The queried address itself has no column, and the self link is dropped.
    assert_eq!(extra(first), json!({"ip_address": "1.1.1.1"}));

    let hosts: Vec<_> = page
        .rows
        .iter()
        .map(|row| row.cell("host_name").cloned())
        .collect();
    assert_eq!(hosts[9], Some(text("stockpeizi.com")));
    let positions: Vec<_> = page.rows.iter().map(|row| row.position).collect();
    assert_eq!(positions, (0..10).map(Some).collect::<Vec<_>>());
}

#[test]
fn resolution_host_stats_become_columns() {
    let page = flatten(
        &sample("resolutions_8.8.8.8_with_stats.json"),
        Relationship::Resolutions,
    );

    assert_eq!(page.rows.len(), 2);
    // No `meta`, and `links` has only `self`: this is the last page.
    assert_eq!(page.next_cursor, None);
    let row = &page.rows[0];
    assert_eq!(row.cell("host_name"), Some(&text("franttini.com.ua")));
    assert_eq!(
        row.cell("host_name_last_analysis_stats_harmless"),
        Some(&Cell::Integer(64))
    );
    assert_eq!(
        row.cell("host_name_last_analysis_stats_undetected"),
        Some(&Cell::Integer(26))
    );
    assert_eq!(
        row.cell("host_name_last_analysis_stats_malicious"),
        Some(&Cell::Integer(0))
    );
    let extra = extra(row);
    assert_eq!(extra["ip_address_last_analysis_stats"]["malicious"], 1);
    assert_eq!(extra["ip_address"], "8.8.8.8");
}

#[test]
fn historical_whois_with_count_has_no_cursor() {
    let page = flatten(
        &sample("historical_whois_1.1.1.1_with_count.json"),
        Relationship::HistoricalWhois,
    );

    assert_eq!(page.rows.len(), 5);
    assert_eq!(page.next_cursor, None);
    let first = &page.rows[0];
    assert_eq!(first.object_type.as_deref(), Some("whois"));
    assert_eq!(
        first.cell("registrar_name"),
        Some(&text("One.com A/S - ONE"))
    );
    assert_eq!(first.cell("registrant_country"), Some(&text("dk")));
    assert_eq!(first.cell("first_seen_date"), Some(&micros(1_626_180_117)));
    assert_eq!(first.cell("last_updated"), Some(&micros(1_625_400_949)));
    let extra = extra(first);
    assert_eq!(extra["registrant_name"], "REDACTED FOR PRIVACY");
    assert_eq!(extra["whois_map"]["Domain Name"], "one.one");

    // RIR records of addresses have no registrar.
    let last = &page.rows[4];
    assert_eq!(last.cell("registrar_name"), Some(&Cell::Null));
    assert_eq!(last.cell("registrant_country"), Some(&text("AU")));
    assert_eq!(last.position, Some(4));
}

#[test]
fn historical_whois_keys_with_spaces_stay_in_extra() {
    let page = flatten(
        &sample("historical_whois_1.1.1.1_2019.json"),
        Relationship::HistoricalWhois,
    );

    assert_eq!(page.rows.len(), 1);
    let row = &page.rows[0];
    assert_eq!(row.cell("first_seen_date"), Some(&micros(1_568_361_100)));
    assert_eq!(row.cell("last_updated"), Some(&micros(1_521_219_486)));
    assert_eq!(extra(row)["whois_map"]["Registrant Country"], "AU");
}

#[test]
fn empty_page_without_meta_has_no_rows() {
    let page = flatten(
        &sample("comments_1.1.1.1_empty_page.json"),
        Relationship::Comments,
    );
    assert!(page.rows.is_empty());
    assert_eq!(page.items_on_page, 0);
    assert_eq!(page.next_cursor, None);
}

#[test]
fn embedded_relationship_map_entries_are_descriptor_pages() {
    let map: Value = serde_json::from_slice(&sample("relationships_map_1.1.1.1.json")).unwrap();
    for (name, relationship) in [
        ("communicating_files", Relationship::CommunicatingFiles),
        ("referrer_files", Relationship::ReferrerFiles),
    ] {
        let body = serde_json::to_vec(&map[name]).unwrap();
        let page = flatten(&body, relationship);

        assert_eq!(page.rows.len(), 2, "{name}");
        assert_eq!(page.next_cursor.as_deref(), Some("STIwCi4="), "{name}");
        for row in &page.rows {
            assert_eq!(row.object_type.as_deref(), Some("file"));
            assert_eq!(row.id.as_deref().map(str::len), Some(64));
            assert!(row.cells.iter().all(|cell| *cell == Cell::Null));
            assert_eq!(row.extra_attributes, None);
            assert_eq!(row.context_attributes, None);
        }
    }
    let body = serde_json::to_vec(&map["communicating_files"]).unwrap();
    let page = flatten(&body, Relationship::CommunicatingFiles);
    assert_eq!(
        page.rows[0].id.as_deref(),
        Some("1471f53e5391f8a06171ffe21dec0d6d27b0201e28e66455030609b7a7ba955e")
    );
}

#[test]
fn cursor_is_read_from_links_next_without_meta() {
    let body = json!({
        "data": [{"type": "file", "id": "a"}],
        "links": {
            "self": "https://www.virustotal.com/api/v3/ip_addresses/1.1.1.1/relationships/communicating_files?limit=20",
            "next": "https://www.virustotal.com/api/v3/ip_addresses/1.1.1.1/relationships/communicating_files?cursor=STIwCi4%3D&limit=20"
        }
    });
    let page = flatten(
        &serde_json::to_vec(&body).unwrap(),
        Relationship::CommunicatingFiles,
    );
    assert_eq!(page.next_cursor.as_deref(), Some("STIwCi4="));
}

#[test]
fn item_errors_become_rows_with_the_error() {
    let body = json!({"data": [
        {"type": "file", "id": "aa", "attributes": {"size": 10}},
        {"type": "file", "id": "bb", "error": {"code": "NotFoundError", "message": "File \"bb\" not found"}},
        "not an object",
        {"type": "file", "id": "cc", "error": "gone"},
    ]});
    let page = flatten(
        &serde_json::to_vec(&body).unwrap(),
        Relationship::CommunicatingFiles,
    );

    assert_eq!(page.rows.len(), 4);
    assert_eq!(page.rows[0].error_code, None);
    assert_eq!(page.rows[0].cell("size"), Some(&Cell::Integer(10)));

    let missing = &page.rows[1];
    assert_eq!(missing.id.as_deref(), Some("bb"));
    assert_eq!(missing.error_code.as_deref(), Some("NotFoundError"));
    assert_eq!(
        missing.error_message.as_deref(),
        Some("File \"bb\" not found")
    );
    assert_eq!(missing.position, Some(1));

    let junk = &page.rows[2];
    assert_eq!(junk.error_code.as_deref(), Some(INVALID_ITEM_CODE));
    assert!(
        junk.error_message
            .as_deref()
            .unwrap()
            .contains("not an object")
    );

    let odd = &page.rows[3];
    assert_eq!(odd.error_code.as_deref(), Some("ItemError"));
    assert_eq!(odd.error_message.as_deref(), Some("\"gone\""));
}

#[test]
fn certificate_reads_validity_text_and_context() {
    let object: Value = serde_json::from_slice(&sample("ip_8.8.8.8_2025_rich.json")).unwrap();
    let certificate = &object["data"]["attributes"]["last_https_certificate"];
    let body = json!({"data": [{
        "type": "ssl_cert",
        "id": certificate["thumbprint_sha256"],
        "attributes": certificate,
        "context_attributes": {"first_seen_date": 1_700_000_000, "port": 443, "source": "scan"},
    }]});
    let page = flatten(
        &serde_json::to_vec(&body).unwrap(),
        Relationship::HistoricalSslCertificates,
    );

    let row = &page.rows[0];
    assert_eq!(
        row.cell("thumbprint_sha256"),
        Some(&text(
            "649981865a3effb5ff7be7c842e336ea61f14f5696cc1bde9b068dd03cd6c29d"
        ))
    );
    assert_eq!(row.cell("subject_cn"), Some(&text("dns.google")));
    assert_eq!(row.cell("issuer_cn"), Some(&text("WR2")));
    assert_eq!(row.cell("issuer_o"), Some(&text("Google Trust Services")));
    let not_after = DateTime::parse_from_rfc3339("2025-09-29T08:35:57Z").unwrap();
    assert_eq!(
        row.cell("validity_not_after"),
        Some(&Cell::Micros(not_after.timestamp_micros()))
    );
    assert_eq!(row.cell("first_seen_date"), Some(&micros(1_700_000_000)));
    assert_eq!(row.cell("port"), Some(&Cell::Integer(443)));
    assert_eq!(
        row.context_attributes.as_deref(),
        Some(r#"{"source":"scan"}"#)
    );

    // The issuer's country has no column and stays beside the rest of the certificate.
    let extra = extra(row);
    assert_eq!(extra["issuer"], json!({"C": "US"}));
    assert_eq!(extra["public_key"]["rsa"]["key_size"], 2048);
    assert!(extra.get("validity").is_none());
    assert!(extra.get("subject").is_none());
}

#[test]
fn wrong_types_are_kept_in_extra() {
    let body = json!({"data": [{
        "type": "resolution",
        "id": "x",
        "attributes": {"date": "yesterday", "host_name": 7, "resolver": null},
    }]});
    let page = flatten(
        &serde_json::to_vec(&body).unwrap(),
        Relationship::Resolutions,
    );

    let row = &page.rows[0];
    assert_eq!(row.cell("date"), Some(&Cell::Null));
    assert_eq!(row.cell("host_name"), Some(&Cell::Null));
    assert_eq!(row.cell("resolver"), Some(&Cell::Null));
    assert_eq!(extra(row), json!({"date": "yesterday", "host_name": 7}));
}

#[test]
fn items_past_the_limit_are_left_out() {
    let page = flatten_page(
        &sample("resolutions_1.1.1.1_page_with_cursor.json"),
        "1.1.1.1",
        Relationship::Resolutions,
        20,
        3,
        origin(),
    )
    .unwrap();
    assert_eq!(page.rows.len(), 3);
    assert_eq!(page.items_on_page, 10);
    assert_eq!(page.rows[2].position, Some(22));
}

#[test]
fn error_documents_and_junk_are_page_errors() {
    let error = br#"{"error": {"message": "Forbidden", "code": "ForbiddenError"}}"#;
    match flatten_page(error, "1.1.1.1", Relationship::Urls, 0, 10, origin()) {
        Err(PageError::ErrorDocument { code, message }) => {
            assert_eq!(code, "ForbiddenError");
            assert_eq!(message, "Forbidden");
        }
        other => panic!("unexpected {other:?}"),
    }
    for junk in [
        &b"[]"[..],
        b"{\"meta\": {}}",
        b"{\"data\": 5}",
        b"{\"data\": [",
        b"",
    ] {
        assert!(
            flatten_page(junk, "1.1.1.1", Relationship::Urls, 0, 10, origin()).is_err(),
            "{}",
            String::from_utf8_lossy(junk)
        );
    }
}

#[test]
fn relationship_error_row_has_no_position() {
    let row = RelatedRow::relationship_error(
        "8.8.8.8",
        Relationship::Urls,
        "ForbiddenError".into(),
        "needs a premium key".into(),
    );
    assert_eq!(row.position, None);
    assert_eq!(row.cells.len(), columns::columns(Relationship::Urls).len());
}

#[test]
fn builder_writes_rows_with_the_table_schema() {
    let page = flatten(
        &sample("resolutions_1.1.1.1_page_with_cursor.json"),
        Relationship::Resolutions,
    );
    let mut builder = RelatedTableBuilder::new(Relationship::Resolutions);
    for row in page.rows {
        builder.push(row);
    }
    builder.push(RelatedRow::relationship_error(
        "1.1.1.1",
        Relationship::Resolutions,
        "Timeout".into(),
        "timed out".into(),
    ));
    assert_eq!(builder.len(), 11);

    let batch = builder.finish();
    assert!(builder.is_empty());
    assert_eq!(batch.schema(), related_schema(Relationship::Resolutions));
    assert_eq!(batch.num_rows(), 11);

    let dates = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(dates.value(0), 1_571_522_736_000_000);
    assert!(dates.is_null(10));
    let positions = batch
        .column_by_name("position")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(positions.value(9), 9);
    assert!(positions.is_null(10));
    let names = batch
        .column_by_name("relationship")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(names.value(0), "resolutions");
    let codes = batch
        .column_by_name("error_code")
        .unwrap()
        .as_string::<i32>();
    assert!(codes.is_null(0));
    assert_eq!(codes.value(10), "Timeout");
}

#[test]
fn every_table_documents_every_column() {
    for relationship in Relationship::ALL {
        let schema = related_schema(relationship);
        let docs = related_columns(relationship);
        assert_eq!(schema.fields().len(), docs.len(), "{relationship}");
        for (field, doc) in schema.fields().iter().zip(&docs) {
            assert_eq!(field.name(), &doc.name);
            assert!(!doc.doc.is_empty(), "{relationship}.{}", doc.name);
            assert!(
                field
                    .metadata()
                    .get(crate::flatten::FIELD_DOC_KEY)
                    .is_some()
            );
        }
        let fetched_at = docs.iter().find(|c| c.name == "fetched_at").unwrap();
        assert_eq!(fetched_at.data_type, "timestamp[us, UTC]");
    }
}
