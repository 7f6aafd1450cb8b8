//! Hostile 200 responses from the fake server, over real HTTP: bodies over the size cap, deep
//! nesting, wrong types, NUL bytes, invalid UTF-8, duplicate keys, objects of another type or
//! another address. Each address must end in one row, `ok` with a documented coercion or
//! `failed` with a clear error, and the ordinary addresses of the same run must not notice.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use serde_json::{Value, json};

use crate::fake_vt::{FakeVt, FakeVtConfig, document_facts};
use crate::support::{
    describe, enrich_command, ints, public_ips, read_parquet, rows_by_ip, run, strings, write_list,
};

/// The default `max_body_bytes`: 16 MiB after decompression.
const BODY_CAP: usize = 16 << 20;

/// Wraps attributes in the API's response form for `ip`.
fn ip_object(ip: &str, attributes: Value) -> Vec<u8> {
    let document = json!({"data": {"id": ip, "type": "ip_address", "attributes": attributes}});
    serde_json::to_vec(&document).unwrap()
}

/// One address per hostile body, plus what the row must show.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// `ok`, or the `error_code` of a `failed` row.
    outcome: &'static str,
    /// Text the `error_message` must contain, for failed rows.
    message: &'static [&'static str],
    /// Requests the first run spends on the address.
    requests: u32,
}

/// Builds the hostile cases, one per address of `ips`, in order.
fn cases(ips: &[String]) -> Vec<Case> {
    let ip = |index: usize| ips[index].as_str();
    let mut cases = Vec::new();

    let huge_whois = "A".repeat(BODY_CAP + 1024);
    cases.push(Case {
        name: "body over the cap",
        body: ip_object(ip(0), json!({"whois": huge_whois})),
        outcome: "ResponseTooLarge",
        message: &["16777216-byte cap", "max_body_bytes"],
        requests: 1,
    });

    let depth = 100_000;
    let deep = format!(
        r#"{{"data": {{"id": "{}", "type": "ip_address", "links": {}{}, "attributes": {{"asn": 64500, "deep": {}1{}}}}}}}"#,
        ip(1),
        "[".repeat(depth),
        "]".repeat(depth),
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    cases.push(Case {
        name: "deeply nested JSON",
        body: deep.into_bytes(),
        outcome: "ok",
        message: &[],
        requests: 1,
    });

    cases.push(Case {
        name: "wrong type in every attribute",
        body: ip_object(ip(2), wrong_types()),
        outcome: "ok",
        message: &[],
        requests: 1,
    });

    cases.push(Case {
        name: "escaped NUL and control characters",
        body: ip_object(
            ip(3),
            json!({"as_owner": "NUL\u{0}IN\u{1}NAME", "tags": ["a\u{0}b"]}),
        ),
        outcome: "ok",
        message: &[],
        requests: 1,
    });

    let mut raw_nul = format!(
        r#"{{"data": {{"id": "{}", "type": "ip_address", "attributes": {{"as_owner": "A"#,
        ip(4)
    )
    .into_bytes();
    raw_nul.extend(b"\x00B\"}}}");
    cases.push(Case {
        name: "raw NUL byte inside a string",
        body: raw_nul,
        outcome: "InvalidResponse",
        message: &["not valid JSON", "control character"],
        requests: 7,
    });

    let mut invalid_utf8 = format!(
        r#"{{"data": {{"id": "{}", "type": "ip_address", "attributes": {{"as_owner": "A"#,
        ip(5)
    )
    .into_bytes();
    invalid_utf8.extend(b"\xff\xfeB\"}}}");
    cases.push(Case {
        name: "invalid UTF-8 inside a string",
        body: invalid_utf8,
        outcome: "InvalidResponse",
        message: &["not its IP address object", "unicode"],
        requests: 1,
    });

    let duplicate_attributes = format!(
        r#"{{"data": {{"id": "{}", "type": "ip_address", "attributes": {{"asn": 64501, "asn": "second", "country": "NL", "country": "DE"}}}}}}"#,
        ip(6)
    );
    cases.push(Case {
        name: "duplicate attribute keys",
        body: duplicate_attributes.into_bytes(),
        outcome: "ok",
        message: &[],
        requests: 1,
    });

    let duplicate_envelope = format!(
        r#"{{"data": {{"id": "{}", "type": "ip_address", "attributes": {{"asn": 1}}, "attributes": {{"asn": 2}}}}}}"#,
        ip(7)
    );
    cases.push(Case {
        name: "duplicate attributes member",
        body: duplicate_envelope.into_bytes(),
        outcome: "InvalidResponse",
        message: &["duplicate field `attributes`"],
        requests: 1,
    });

    let domain = json!({"data": {"id": ip(8), "type": "domain", "attributes": {"asn": 1}}});
    cases.push(Case {
        name: "object of another type",
        body: serde_json::to_vec(&domain).unwrap(),
        outcome: "InvalidResponse",
        message: &["\"domain\"", "expected \"ip_address\""],
        requests: 1,
    });

    cases.push(Case {
        name: "object of another address",
        body: ip_object("8.8.4.4", json!({"asn": 15169})),
        outcome: "InvalidResponse",
        message: &["`8.8.4.4`", "not of the requested address"],
        requests: 1,
    });

    let error_with_200 = json!({"error": {"code": "NotFoundError", "message": "gone"}});
    cases.push(Case {
        name: "error document with status 200",
        body: serde_json::to_vec(&error_with_200).unwrap(),
        outcome: "InvalidResponse",
        message: &["NotFoundError", "gone"],
        requests: 1,
    });

    let list_data = json!({"data": [{"id": ip(11), "type": "ip_address"}]});
    cases.push(Case {
        name: "data is a list",
        body: serde_json::to_vec(&list_data).unwrap(),
        outcome: "InvalidResponse",
        message: &["expected a VirusTotal object"],
        requests: 1,
    });

    let text_attributes = json!({"data": {"id": ip(12), "type": "ip_address", "attributes": "x"}});
    cases.push(Case {
        name: "attributes is a string",
        body: serde_json::to_vec(&text_attributes).unwrap(),
        outcome: "InvalidResponse",
        message: &["expected a JSON object"],
        requests: 1,
    });

    cases
}

/// Every typed attribute with a value of a type its column does not take.
fn wrong_types() -> Value {
    json!({
        "as_owner": 12,
        "asn": "15169",
        "continent": [],
        "country": {"code": "US"},
        "jarm": true,
        "network": 1.5,
        "regional_internet_registry": 7,
        "reputation": "high",
        "tags": {"vpn": true},
        "whois": ["a", "b"],
        "whois_date": -5,
        "last_analysis_date": 1.5,
        "last_modification_date": "2021-01-01",
        "last_https_certificate_date": 253_402_300_800i64,
        "first_seen_date": {},
        "last_analysis_stats": [1, 2],
        "total_votes": "many",
        "last_https_certificate": "CN=example",
        "last_analysis_results": ["Dr.Web"],
    })
}

/// Typed columns that `wrong_types` leaves null.
const TYPED_COLUMNS: &[&str] = &[
    "as_owner",
    "asn",
    "continent",
    "country",
    "jarm",
    "network",
    "regional_internet_registry",
    "reputation",
    "tags",
    "whois",
    "whois_date",
    "last_analysis_date",
    "last_modification_date",
    "last_https_certificate_date",
    "first_seen_date",
    "last_analysis_stats_harmless",
    "total_votes_malicious",
    "last_https_certificate_subject_cn",
];

fn assert_ordinary_rows(batch: &RecordBatch, rows: &HashMap<String, usize>, ips: &[String]) {
    let status = strings(batch, "status");
    let asn = ints(batch, "asn");
    let country = strings(batch, "country");
    for ip in ips {
        let row = rows[ip];
        let facts = document_facts(ip);
        assert_eq!(status[row].as_deref(), Some("ok"), "{ip}");
        assert_eq!(asn[row], Some(facts.asn as i64), "{ip}");
        assert_eq!(country[row].as_deref(), Some(facts.country), "{ip}");
    }
}

/// Checks the coercions of the hostile bodies that become `ok` rows.
fn assert_coerced_rows(batch: &RecordBatch, rows: &HashMap<String, usize>, hostile: &[String]) {
    let asn = ints(batch, "asn");
    let extra = strings(batch, "extra_attributes");

    // Deep nesting: the typed attribute is read, the deep one kept verbatim as text.
    let deep = extra[rows[&hostile[1]]].clone().expect("deep value kept");
    assert_eq!(asn[rows[&hostile[1]]], Some(64_500));
    assert!(deep.starts_with(r#"{"deep":{"a":{"a":"#), "{}", &deep[..80]);
    assert_eq!(deep.len(), r#"{"deep":"#.len() + 6 * 100_000 + "1}".len());

    // Wrong types: every typed column is null, every value is in extra_attributes.
    let row = rows[&hostile[2]];
    for column in TYPED_COLUMNS {
        let array = batch.column_by_name(column).unwrap();
        assert!(array.is_null(row), "{column} is not null");
    }
    let kept: Value = serde_json::from_str(extra[row].as_deref().unwrap()).unwrap();
    assert_eq!(kept, wrong_types());

    // Escaped NUL and control characters are kept as they are.
    let row = rows[&hostile[3]];
    assert_eq!(
        strings(batch, "as_owner")[row].as_deref(),
        Some("NUL\u{0}IN\u{1}NAME")
    );
    let tags = batch
        .column_by_name("tags")
        .unwrap()
        .as_list::<i32>()
        .value(row);
    assert_eq!(tags.as_string::<i32>().value(0), "a\u{0}b");

    // Duplicate keys: the first value fills the column, the second stays in extra_attributes.
    let row = rows[&hostile[6]];
    assert_eq!(asn[row], Some(64_501));
    assert_eq!(strings(batch, "country")[row].as_deref(), Some("NL"));
    assert_eq!(
        extra[row].as_deref(),
        Some(r#"{"asn":"second","country":"DE"}"#)
    );
}

fn run_enrich(server: &FakeVt, input: &Path, out: &Path, cache: &Path) -> std::process::Output {
    let output = run(&mut enrich_command(server, input, out, cache, 4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{}", describe(&output));
    output
}

#[test]
fn hostile_bodies_end_in_one_row_each() {
    let hostile = public_ips(120, 13);
    let ordinary = public_ips(121, 26);
    let cases = cases(&hostile);
    let mut config = FakeVtConfig::default();
    for (ip, case) in hostile.iter().zip(&cases) {
        config = config.with_document(ip, case.body.clone());
    }
    let server = FakeVt::start(config);

    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<String> = Vec::new();
    for (index, ip) in hostile.iter().enumerate() {
        all.push(ip.clone());
        all.extend(ordinary.iter().skip(index * 2).take(2).cloned());
    }
    let input = write_list(&dir.path().join("ips.txt"), &all);
    let out = dir.path().join("out.parquet");
    let cache = dir.path().join("cache.sqlite");

    let output = run_enrich(&server, &input, &out, &cache);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));

    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), all.len(), "one row per address");
    let rows = rows_by_ip(&batch);
    assert_ordinary_rows(&batch, &rows, &ordinary);

    let status = strings(&batch, "status");
    let code = strings(&batch, "error_code");
    let message = strings(&batch, "error_message");
    let stats = server.stats();
    for (ip, case) in hostile.iter().zip(&cases) {
        let row = rows[ip];
        let name = case.name;
        assert_eq!(stats.requests_for(ip), case.requests, "{name}: requests");
        if case.outcome == "ok" {
            assert_eq!(status[row].as_deref(), Some("ok"), "{name}");
            continue;
        }
        assert_eq!(status[row].as_deref(), Some("failed"), "{name}");
        assert_eq!(code[row].as_deref(), Some(case.outcome), "{name}");
        let text = message[row].clone().unwrap_or_default();
        for part in case.message {
            assert!(text.contains(part), "{name}: {text}");
        }
        assert!(text.len() < 1_000, "{name}: {} bytes", text.len());
    }
    assert_coerced_rows(&batch, &rows, &hostile);

    // Failed answers were not cached, so a second run asks for them again and for nothing else.
    server.reset_stats();
    let output = run_enrich(&server, &input, &out, &cache);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stats = server.stats();
    for (ip, case) in hostile.iter().zip(&cases) {
        let expected = if case.outcome == "ok" {
            0
        } else {
            case.requests
        };
        assert_eq!(
            stats.requests_for(ip),
            expected,
            "{}: second run",
            case.name
        );
    }
    for ip in &ordinary {
        assert_eq!(stats.requests_for(ip), 0, "{ip}: cached");
    }
}
