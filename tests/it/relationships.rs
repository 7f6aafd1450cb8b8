//! `--relationships` against the fake VirusTotal server: paging, the cache, 403s, item errors,
//! budgets, and the tables read back through the Parquet and CSV readers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::RecordBatch;
use serde_json::Value;

use crate::fake_vt::{FakeVt, FakeVtConfig, Fault, FaultPolicy, expected_related_item};
use crate::support::{
    self, describe, enrich_command, ints, read_parquet, run, strings, without_columns,
};

fn public_ips(count: usize) -> Vec<String> {
    support::public_ips(40, count)
}

/// `enrich` of `ips` against `server` into `dir/out.<extension>`, with a cache in `dir`.
fn enrich(server: &FakeVt, dir: &Path, ips: &[String], extension: &str) -> Command {
    let input = support::write_list(&dir.join("ips.txt"), ips);
    let out = dir.join(format!("out.{extension}"));
    let mut command = enrich_command(server, &input, &out, &dir.join("cache.sqlite"), 4);
    command
        .args(["--engines", "none"])
        .arg("--summary-json")
        .arg(dir.join("run.json"));
    command
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

fn table(dir: &Path, relationship: &str) -> PathBuf {
    dir.join(format!("out.{relationship}.parquet"))
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

/// Returns the summary entry of `relationship`.
fn table_summary(summary: &Value, relationship: &str) -> Value {
    summary["relationships"]["tables"]
        .as_array()
        .expect("a relationships section")
        .iter()
        .find(|table| table["relationship"] == relationship)
        .cloned()
        .unwrap_or_else(|| panic!("no {relationship} in {summary}"))
}

/// Returns the `limit` and `cursor` query values of every `relationship` request, in order.
fn page_queries(server: &FakeVt, relationship: &str) -> Vec<(String, Option<String>)> {
    server
        .stats()
        .requests
        .iter()
        .filter(|request| request.path.contains(&format!("/{relationship}?")))
        .map(|request| {
            let url = reqwest::Url::parse(&format!("http://fake{}", request.path)).unwrap();
            let value = |name: &str| {
                url.query_pairs()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.into_owned())
            };
            (value("limit").unwrap_or_default(), value("cursor"))
        })
        .collect()
}

fn host_names(ip: &str, count: usize) -> Vec<Option<String>> {
    (0..count)
        .map(|position| {
            let item = expected_related_item(ip, "resolutions", position);
            Some(
                item["attributes"]["host_name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn resolutions_are_read_page_by_page_in_order() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 25));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "resolutions",
        "--relationship-limit",
        "25",
    ]));
    assert_exit(&output, 0);

    // Pages of at most 10 items: 25 items take 3 requests, each asking for what is left.
    let stats = server.stats();
    assert_eq!(stats.relationship_requests_for(&ips[0], "resolutions"), 3);
    let queries = page_queries(&server, "resolutions");
    let limits: Vec<&str> = queries.iter().map(|(limit, _)| limit.as_str()).collect();
    assert_eq!(limits, ["25", "15", "5"]);
    assert_eq!(queries[0].1, None);
    assert_eq!(
        queries[1].1.as_deref(),
        Some(crate::fake_vt::encode_cursor(10).as_str())
    );

    let batch = read_parquet(&table(dir.path(), "resolutions"));
    assert_eq!(batch.num_rows(), 25);
    assert_eq!(strings(&batch, "host_name"), host_names(&ips[0], 25));
    let positions: Vec<Option<i64>> = (0..25).map(Some).collect();
    assert_eq!(ints(&batch, "position"), positions);
    assert!(
        strings(&batch, "ip")
            .iter()
            .all(|ip| ip.as_ref() == Some(&ips[0]))
    );
    assert!(strings(&batch, "error_code").iter().all(Option::is_none));
    let first = expected_related_item(&ips[0], "resolutions", 0);
    let date_micros = first["attributes"]["date"].as_i64().unwrap() * 1_000_000;
    assert_eq!(ints(&batch, "date")[0], Some(date_micros));
    assert_eq!(
        strings(&batch, "relationship")[0].as_deref(),
        Some("resolutions")
    );

    let summary = summary(dir.path());
    let resolutions = table_summary(&summary, "resolutions");
    assert_eq!(resolutions["rows"], 25);
    assert_eq!(resolutions["pages_from_api"], 3);
    assert_eq!(summary["relationships"]["limit"], 25);
    // The lookup and the three pages, all through the same fetch stage.
    assert_eq!(summary["requests"], 4);
}

#[test]
fn limit_of_twelve_takes_two_requests() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 25));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "resolutions",
        "--relationship-limit",
        "12",
    ]));
    assert_exit(&output, 0);

    assert_eq!(
        server
            .stats()
            .relationship_requests_for(&ips[0], "resolutions"),
        2
    );
    let limits: Vec<String> = page_queries(&server, "resolutions")
        .into_iter()
        .map(|(limit, _)| limit)
        .collect();
    assert_eq!(limits, ["12", "2"]);
    let batch = read_parquet(&table(dir.path(), "resolutions"));
    assert_eq!(batch.num_rows(), 12);
    assert_eq!(strings(&batch, "host_name"), host_names(&ips[0], 12));
}

#[test]
fn default_limit_reads_ten_items_per_address() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("historical_whois", 25)
            .with_relationship("comments", 3),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(5);

    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .args(["--relationships", "historical_whois,comments"]));
    assert_exit(&output, 0);

    let stats = server.stats();
    let whois = read_parquet(&table(dir.path(), "historical_whois"));
    let comments = read_parquet(&table(dir.path(), "comments"));
    assert_eq!(whois.num_rows(), 5 * 10);
    assert_eq!(comments.num_rows(), 5 * 3);
    for ip in &ips {
        assert_eq!(stats.relationship_requests_for(ip, "historical_whois"), 1);
        assert_eq!(stats.relationship_requests_for(ip, "comments"), 1);
    }
    // Addresses come out in input order, each with its items in the API's order.
    let expected: Vec<Option<String>> = ips
        .iter()
        .flat_map(|ip| std::iter::repeat_n(Some(ip.clone()), 10))
        .collect();
    assert_eq!(strings(&whois, "ip"), expected);
    let registrars = strings(&whois, "registrar_name");
    assert_eq!(registrars[0].as_deref(), Some("Fake Registrar"));
    assert_eq!(registrars[1], None);
    assert_eq!(
        strings(&comments, "text")[0].as_deref(),
        Some(format!("comment 0 on {} #scanner", ips[0]).as_str())
    );
}

/// Drops the columns that legitimately differ between a fetching run and a cached rerun.
fn comparable(batch: &RecordBatch) -> RecordBatch {
    without_columns(batch, &["source"])
}

#[test]
fn rerun_with_the_cache_costs_no_request() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("resolutions", 25)
            .with_relationship("historical_ssl_certificates", 4),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(3);
    let args = [
        "--relationships",
        "resolutions,historical_ssl_certificates",
        "--relationship-limit",
        "25",
    ];

    assert_exit(
        &run(enrich(&server, dir.path(), &ips, "parquet").args(args)),
        0,
    );
    let first_resolutions = read_parquet(&table(dir.path(), "resolutions"));
    let first_certificates = read_parquet(&table(dir.path(), "historical_ssl_certificates"));
    assert_eq!(first_resolutions.num_rows(), 3 * 25);
    assert_eq!(first_certificates.num_rows(), 3 * 4);

    server.reset_stats();
    let output = run(enrich(&server, dir.path(), &ips, "parquet").args(args));
    assert_exit(&output, 0);
    assert_eq!(server.stats().total_requests, 0, "{}", describe(&output));

    let second_resolutions = read_parquet(&table(dir.path(), "resolutions"));
    let second_certificates = read_parquet(&table(dir.path(), "historical_ssl_certificates"));
    assert_eq!(
        comparable(&second_resolutions),
        comparable(&first_resolutions)
    );
    assert_eq!(
        comparable(&second_certificates),
        comparable(&first_certificates)
    );
    assert!(
        strings(&second_resolutions, "source")
            .iter()
            .all(|source| source.as_deref() == Some("cache"))
    );
    let summary = summary(dir.path());
    assert_eq!(summary["requests"], 0);
    assert_eq!(
        table_summary(&summary, "resolutions")["pages_from_cache"],
        3 * 3
    );
    assert_eq!(table_summary(&summary, "resolutions")["pages_from_api"], 0);

    // --offline reads the same pages without the API.
    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .args(args)
        .arg("--offline"));
    assert_exit(&output, 0);
    assert_eq!(server.stats().total_requests, 0);
    assert_eq!(
        comparable(&read_parquet(&table(dir.path(), "resolutions"))),
        comparable(&first_resolutions)
    );
}

#[test]
fn forbidden_relationship_reported_once() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("resolutions", 2)
            .with_relationship("urls", 5),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(12);

    let output =
        run(enrich(&server, dir.path(), &ips, "parquet")
            .args(["--relationships", "urls,resolutions"]));
    assert_exit(&output, 0);

    // Only one request met the 403, even with several addresses in flight.
    let stats = server.stats();
    let url_requests: u32 = ips
        .iter()
        .map(|ip| stats.relationship_requests_for(ip, "urls"))
        .sum();
    assert_eq!(url_requests, 1);
    assert_eq!(stats.status_count(403), 1);
    for ip in &ips {
        assert_eq!(stats.relationship_requests_for(ip, "resolutions"), 1);
    }

    let urls = read_parquet(&table(dir.path(), "urls"));
    assert_eq!(urls.num_rows(), 1);
    assert_eq!(
        strings(&urls, "error_code")[0].as_deref(),
        Some("ForbiddenError")
    );
    let message = strings(&urls, "error_message")[0].clone().unwrap();
    assert!(message.contains("Enterprise"), "{message}");
    assert_eq!(ints(&urls, "position")[0], None);
    assert_eq!(
        read_parquet(&table(dir.path(), "resolutions")).num_rows(),
        24
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("not requesting it for other addresses")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("refused:"), "{stderr}");
    let summary = summary(dir.path());
    assert_eq!(summary["exit_code"], 0);
    let forbidden = table_summary(&summary, "urls")["forbidden"].clone();
    assert!(forbidden.as_str().unwrap().contains("403"), "{forbidden}");
    assert!(table_summary(&summary, "resolutions")["forbidden"].is_null());
}

#[test]
fn enterprise_key_reads_the_enterprise_relationships() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_enterprise_key(crate::fake_vt::TEST_KEY)
            .with_relationship("related_threat_actors", 2)
            .with_relationship("downloaded_files", 3),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .args(["--relationships", "related_threat_actors,downloaded_files"]));
    assert_exit(&output, 0);

    let actors = read_parquet(&table(dir.path(), "related_threat_actors"));
    assert_eq!(
        strings(&actors, "name"),
        [Some("ACTOR0".to_string()), Some("ACTOR1".to_string())]
    );
    let files = read_parquet(&table(dir.path(), "downloaded_files"));
    let item = expected_related_item(&ips[0], "downloaded_files", 2);
    assert_eq!(
        strings(&files, "sha256")[2].as_deref(),
        item["attributes"]["sha256"].as_str()
    );
    assert_eq!(ints(&files, "size")[2], item["attributes"]["size"].as_i64());
    assert_eq!(
        ints(&files, "last_analysis_stats_malicious")[2],
        item["attributes"]["last_analysis_stats"]["malicious"].as_i64()
    );
}

#[test]
fn item_errors_are_rows_with_the_error() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("communicating_files", 3)
            .with_item_error("communicating_files", 1),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .args(["--relationships", "communicating_files"]));
    assert_exit(&output, 0);

    let batch = read_parquet(&table(dir.path(), "communicating_files"));
    assert_eq!(batch.num_rows(), 3);
    let codes = strings(&batch, "error_code");
    assert_eq!(codes, [None, Some("NotFoundError".to_string()), None]);
    let item = expected_related_item(&ips[0], "communicating_files", 1);
    assert_eq!(strings(&batch, "id")[1].as_deref(), item["id"].as_str());
    assert_eq!(strings(&batch, "sha256")[1], None);
    assert_eq!(ints(&batch, "position")[1], Some(1));
    assert_eq!(
        table_summary(&summary(dir.path()), "communicating_files")["item_errors"],
        1
    );
}

#[test]
fn descriptors_only_reads_the_relationships_path() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("referrer_files", 4));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "referrer_files",
        "--descriptors-only",
    ]));
    assert_exit(&output, 0);

    let stats = server.stats();
    let pages: Vec<&str> = stats
        .requests
        .iter()
        .map(|request| request.path.as_str())
        .filter(|path| path.contains("referrer_files"))
        .collect();
    assert_eq!(pages.len(), 1);
    assert!(
        pages[0].starts_with(&format!(
            "/api/v3/ip_addresses/{}/relationships/referrer_files?",
            ips[0]
        )),
        "{pages:?}"
    );

    let batch = read_parquet(&table(dir.path(), "referrer_files"));
    assert_eq!(batch.num_rows(), 4);
    let item = expected_related_item(&ips[0], "referrer_files", 0);
    assert_eq!(strings(&batch, "id")[0].as_deref(), item["id"].as_str());
    assert_eq!(strings(&batch, "type")[0].as_deref(), Some("file"));
    assert!(strings(&batch, "sha256").iter().all(Option::is_none));
    assert!(
        strings(&batch, "extra_attributes")
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(summary(dir.path())["relationships"]["form"], "descriptors");
}

#[test]
fn cursor_in_links_next_only_is_followed() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("graphs", 25)
            .with_cursor_in_links_only(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "graphs",
        "--relationship-limit",
        "100",
    ]));
    assert_exit(&output, 0);

    assert_eq!(
        server.stats().relationship_requests_for(&ips[0], "graphs"),
        3
    );
    let batch = read_parquet(&table(dir.path(), "graphs"));
    assert_eq!(batch.num_rows(), 25);
    assert_eq!(
        strings(&batch, "name")[24].as_deref(),
        Some(format!("graph 24 of {}", ips[0]).as_str())
    );
}

#[test]
fn retried_page_counts_once_in_the_table() {
    // The first request for a second page gets 503; the retry succeeds.
    let failed_once = Arc::new(AtomicBool::new(false));
    let policy = {
        let failed_once = failed_once.clone();
        FaultPolicy::from_fn(move |info| {
            if info.path.contains("/resolutions?")
                && info.path.contains("cursor=")
                && !failed_once.swap(true, Ordering::SeqCst)
            {
                Fault::TRANSIENT
            } else {
                Fault::None
            }
        })
    };
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("resolutions", 15)
            .with_faults(policy),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "resolutions",
        "--relationship-limit",
        "15",
    ]));
    assert_exit(&output, 0);

    assert!(failed_once.load(Ordering::SeqCst));
    assert_eq!(
        server
            .stats()
            .relationship_requests_for(&ips[0], "resolutions"),
        3
    );
    let batch = read_parquet(&table(dir.path(), "resolutions"));
    assert_eq!(strings(&batch, "host_name"), host_names(&ips[0], 15));
}

#[test]
fn daily_budget_stops_relationship_pages() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 25));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);

    // One request for the lookup and one for the first page; the second page finds the
    // budget spent.
    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "resolutions",
        "--relationship-limit",
        "25",
        "--per-day",
        "2",
    ]));
    assert_exit(&output, 3);
    assert_eq!(server.stats().total_requests, 2);

    let batch = read_parquet(&table(dir.path(), "resolutions"));
    assert_eq!(batch.num_rows(), 11);
    assert_eq!(
        strings(&batch, "error_code")[10].as_deref(),
        Some("BudgetSpent")
    );
    assert_eq!(ints(&batch, "position")[10], None);
    let summary = summary(dir.path());
    assert_eq!(table_summary(&summary, "resolutions")["quota_exhausted"], 1);
}

#[test]
fn addresses_not_found_get_no_relationship_request() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 2));
    let dir = tempfile::tempdir().unwrap();
    let mut ips = public_ips(2);
    ips.push("192.0.2.44".to_string());

    let output = run(enrich(&server, dir.path(), &ips, "parquet").args([
        "--relationships",
        "resolutions",
        "--include-private",
    ]));
    assert_exit(&output, 0);

    let stats = server.stats();
    assert_eq!(
        stats.relationship_requests_for("192.0.2.44", "resolutions"),
        0
    );
    assert_eq!(stats.relationship_requests_total(), 2);
    assert_eq!(
        read_parquet(&table(dir.path(), "resolutions")).num_rows(),
        4
    );
}

#[test]
fn csv_output_gets_csv_relationship_tables() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 3));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(2);

    let output =
        run(enrich(&server, dir.path(), &ips, "csv")
            .args(["--relationships", "resolutions,comments"]));
    assert_exit(&output, 0);

    let mut reader = csv::Reader::from_path(dir.path().join("out.resolutions.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let expected: Vec<String> =
        vt_enrich::flatten::related::related_columns(vt_enrich::model::Relationship::Resolutions)
            .into_iter()
            .map(|column| column.name)
            .collect();
    assert_eq!(headers.iter().collect::<Vec<_>>(), expected);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let host = headers.iter().position(|name| name == "host_name").unwrap();
    let date = headers.iter().position(|name| name == "date").unwrap();
    let item = expected_related_item(&ips[0], "resolutions", 0);
    assert_eq!(
        &rows[0][host],
        item["attributes"]["host_name"].as_str().unwrap()
    );
    assert_eq!(&rows[0][date], "2024-01-01T00:00:00Z");

    // A relationship with no items still gets a table with its header.
    let mut comments = csv::Reader::from_path(dir.path().join("out.comments.csv")).unwrap();
    assert!(
        comments
            .headers()
            .unwrap()
            .iter()
            .any(|name| name == "text")
    );
    assert_eq!(comments.records().count(), 0);
}

#[test]
fn unknown_relationship_and_stdout_are_usage_errors() {
    let output = run(support::vt_enrich().args([
        "enrich",
        "--relationships",
        "resolutions,passive_dns",
        "-o",
        "out.parquet",
    ]));
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("passive_dns"), "{stderr}");
    assert!(stderr.contains("historical_ssl_certificates"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let input = support::write_list(&dir.path().join("ips.txt"), &public_ips(1));
    let output = run(support::vt_enrich()
        .env("VT_API_KEY", "unused")
        .arg("enrich")
        .arg(&input)
        .args(["-o", "-", "--relationships", "resolutions"]));
    assert_exit(&output, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("-o out.parquet"));

    let output = run(support::vt_enrich()
        .env("VT_ENRICH_RELATIONSHIPS", "resolutions,nope")
        .arg("enrich")
        .arg(&input)
        .args(["-o", "x.parquet"]));
    assert_exit(&output, 2);
}

#[test]
fn options_come_from_environment_and_config_file() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("historical_whois", 8)
            .with_relationship("comments", 8),
    );
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(1);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "relationships = [\"historical_whois\"]\nrelationship_limit = 3\n",
    )
    .unwrap();

    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .arg("--config")
        .arg(&config));
    assert_exit(&output, 0);
    assert_eq!(
        read_parquet(&table(dir.path(), "historical_whois")).num_rows(),
        3
    );

    // The environment overrides the config file, and the command line overrides both.
    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .arg("--config")
        .arg(&config)
        .env("VT_ENRICH_RELATIONSHIPS", "comments")
        .env("VT_ENRICH_RELATIONSHIP_LIMIT", "5"));
    assert_exit(&output, 0);
    assert_eq!(read_parquet(&table(dir.path(), "comments")).num_rows(), 5);

    let output = run(enrich(&server, dir.path(), &ips, "parquet")
        .arg("--config")
        .arg(&config)
        .env("VT_ENRICH_RELATIONSHIP_LIMIT", "5")
        .args(["--relationship-limit", "7"]));
    assert_exit(&output, 0);
    assert_eq!(
        read_parquet(&table(dir.path(), "historical_whois")).num_rows(),
        7
    );
}
