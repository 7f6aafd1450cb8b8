//! `enrich --join`: every input row back, in order, with the answers beside each address.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use arrow::array::RecordBatch;

use crate::fake_vt::{FakeVt, FakeVtConfig, document_facts};
use crate::support::{self, describe, enrich_command, ints, read_parquet, run, strings};

const ROWS: usize = 10_000;
const HEADER: [&str; 5] = ["timestamp", "src_ip", "dst_ip", "dst_port", "note"];

/// A firewall export with the cells real ones contain: private and public sources, ports
/// glued to addresses, IPv6, blank and invalid destinations, spaces kept inside quotes, and
/// notes with commas, quotes and newlines.
struct Export {
    path: PathBuf,
    /// Every row's cells, as the csv crate reads them back from the file.
    rows: Vec<Vec<String>>,
    /// Distinct public addresses, canonical: each must cost exactly one request.
    public: HashSet<String>,
}

fn write_export(dir: &Path) -> Export {
    let sources = support::public_ips(60, 300);
    let destinations = support::public_ips(61, 700);
    let mut rows = Vec::with_capacity(ROWS);
    for n in 0..ROWS {
        let second = n % 86_400;
        let timestamp = format!(
            "2026-12-03T{:02}:{:02}:{:02}Z",
            second / 3600,
            second / 60 % 60,
            second % 60
        );
        let source = if n % 3 == 0 {
            format!("10.1.{}.{}", n % 200, n % 250 + 1)
        } else {
            sources[n % sources.len()].clone()
        };
        let destination = match n {
            _ if n % 97 == 0 => String::new(),
            _ if n % 211 == 0 => "999.1.1.1".to_string(),
            _ if n % 13 == 0 => format!("[2606:4700:{:x}::1]:443", n % 50 + 1),
            _ if n % 7 == 0 => format!("{}:8443", destinations[n % destinations.len()]),
            _ if n % 5 == 0 => format!(" {} ", destinations[(n * 31) % destinations.len()]),
            _ => destinations[(n * 17) % destinations.len()].clone(),
        };
        let note = match n % 4 {
            0 => String::new(),
            1 => "allow, logged".to_string(),
            2 => "rule \"web\"\nsecond line".to_string(),
            _ => format!("session {n}"),
        };
        rows.push(vec![
            timestamp,
            source,
            destination,
            ["443", "80", "53"][n % 3].to_string(),
            note,
        ]);
    }

    let path = dir.join("firewall.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(HEADER).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();

    let public = rows
        .iter()
        .flat_map(|row| [&row[1], &row[2]])
        .filter_map(|cell| canonical_public(cell))
        .collect();
    Export { path, rows, public }
}

/// Returns the canonical text of a cell that contains one public address.
fn canonical_public(cell: &str) -> Option<String> {
    let trimmed = cell.trim();
    let host = match trimmed.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?,
        None => trimmed.split(':').next()?,
    };
    let ip: std::net::IpAddr = host.parse().ok()?;
    let text = ip.to_string();
    (text.starts_with("45.") || text.starts_with("2606:")).then_some(text)
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

/// Checks every row of a joined table against the export: the input cells unchanged, and the
/// answer for each address beside it.
fn check_joined(export: &Export, columns: &dyn Fn(&str) -> Vec<Option<String>>) {
    for (index, name) in HEADER.iter().enumerate() {
        let cells = columns(name);
        assert_eq!(cells.len(), ROWS, "{name}: one cell per input row");
        for (row, cell) in cells.iter().enumerate() {
            assert_eq!(
                cell.as_deref(),
                Some(export.rows[row][index].as_str()),
                "row {row}, column {name}: the input cell comes back unchanged"
            );
        }
    }

    for (index, prefix) in [(1, "src_ip"), (2, "dst_ip")] {
        let status = columns(&format!("{prefix}_status"));
        let country = columns(&format!("{prefix}_country"));
        let asn = columns(&format!("{prefix}_asn"));
        let ip = columns(&format!("{prefix}_ip"));
        for (row, cells) in export.rows.iter().enumerate() {
            let cell = cells[index].trim();
            let (expected_status, public) = if cell.is_empty() {
                (None, None)
            } else if cell == "999.1.1.1" {
                (Some("invalid"), None)
            } else if let Some(public) = canonical_public(cell) {
                (Some("ok"), Some(public))
            } else {
                (Some("skipped"), None)
            };
            assert_eq!(
                status[row].as_deref(),
                expected_status,
                "row {row} {prefix}"
            );
            match public {
                Some(address) => {
                    let facts = document_facts(&address);
                    assert_eq!(ip[row].as_deref(), Some(address.as_str()), "row {row}");
                    assert_eq!(country[row].as_deref(), Some(facts.country), "row {row}");
                    assert_eq!(asn[row], Some(facts.asn.to_string()), "row {row}");
                }
                None => {
                    assert_eq!(country[row], None, "row {row}: no enrichment");
                    assert_eq!(asn[row], None, "row {row}: no enrichment");
                }
            }
        }
    }
}

/// Reads a CSV file back with the csv crate into named columns of optional text. Empty cells
/// are `None`, except in the input's own columns, where they are empty text.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn csv_column(table: &(Vec<String>, Vec<Vec<String>>), name: &str) -> Vec<Option<String>> {
    let (header, rows) = table;
    let index = header
        .iter()
        .position(|column| column == name)
        .unwrap_or_else(|| panic!("column {name} in the CSV output"));
    let is_input = HEADER.contains(&name);
    rows.iter()
        .map(|row| {
            let cell = row[index].clone();
            (is_input || !cell.is_empty()).then_some(cell)
        })
        .collect()
}

#[test]
fn join_keeps_every_firewall_row_with_answers() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let export = write_export(dir.path());
    let cache = dir.path().join("cache.sqlite");
    let parquet = dir.path().join("joined.parquet");

    let output = run(enrich_command(&server, &export.path, &parquet, &cache, 16).arg("--join"));
    assert_exit(&output, 0);

    let batch: RecordBatch = read_parquet(&parquet);
    assert_eq!(batch.num_rows(), ROWS);
    check_joined(&export, &|name| strings(&batch, name));
    let stats = server.stats();
    assert_eq!(
        stats.total_requests as usize,
        export.public.len(),
        "each distinct public address is requested once"
    );
    for address in &export.public {
        assert_eq!(stats.requests_for(address), 1, "{address}");
    }

    // Engine verdicts stay in their own table, each address once.
    let engines = read_parquet(&dir.path().join("joined.engines.parquet"));
    let ips = strings(&engines, "ip");
    let names = strings(&engines, "engine_name");
    let pairs: HashSet<(Option<String>, Option<String>)> =
        ips.iter().cloned().zip(names.iter().cloned()).collect();
    assert_eq!(
        pairs.len(),
        engines.num_rows(),
        "no (ip, engine) pair twice"
    );
    let with_engines: HashSet<String> = ips.into_iter().flatten().collect();
    assert_eq!(with_engines, export.public);

    // The same join to CSV, answered by the cache: no request, the same rows.
    server.reset_stats();
    let csv_out = dir.path().join("joined.csv");
    let output = run(enrich_command(&server, &export.path, &csv_out, &cache, 16).arg("--join"));
    assert_exit(&output, 0);
    assert_eq!(server.stats().total_requests, 0, "a rerun costs nothing");
    let table = read_csv(&csv_out);
    assert_eq!(table.1.len(), ROWS);
    check_joined(&export, &|name| csv_column(&table, name));
    let asn_parquet = ints(&batch, "dst_ip_asn");
    let asn_csv: Vec<Option<i64>> = csv_column(&table, "dst_ip_asn")
        .into_iter()
        .map(|cell| cell.map(|text| text.parse().unwrap()))
        .collect();
    assert_eq!(asn_parquet, asn_csv);
}

#[test]
fn join_from_stdin_matches_file() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let text = "when,client,server,delta\n\
                t1,10.0.0.1,45.62.0.1,-5\n\
                t2,45.62.0.2,,+2.5\n\
                t3,10.0.0.1,45.62.0.1:443,=1+1\n\
                t4,,not-an-ip,0\n";
    let input = dir.path().join("small.csv");
    std::fs::write(&input, text).unwrap();
    let cache = dir.path().join("cache.sqlite");

    let from_file = dir.path().join("file.csv");
    let output = run(enrich_command(&server, &input, &from_file, &cache, 4).arg("--join"));
    assert_exit(&output, 0);

    let from_stdin = dir.path().join("stdin.csv");
    let mut command = enrich_command(&server, Path::new("-"), &from_stdin, &cache, 4);
    let mut child = command
        .arg("--join")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 0);

    let (file_header, file_rows) = read_csv(&from_file);
    let (stdin_header, stdin_rows) = read_csv(&from_stdin);
    assert_eq!(file_header, stdin_header);
    assert_eq!(file_rows.len(), 4);
    let skip: Vec<usize> = file_header
        .iter()
        .enumerate()
        // Fetch times and sources differ between runs, and messages name the file or stdin.
        .filter(|(_, name)| {
            ["_fetched_at", "_source", "_error_message"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
        })
        .map(|(index, _)| index)
        .collect();
    for (file_row, stdin_row) in file_rows.iter().zip(&stdin_rows) {
        for (index, (a, b)) in file_row.iter().zip(stdin_row).enumerate() {
            if !skip.contains(&index) {
                assert_eq!(a, b, "column {}", file_header[index]);
            }
        }
    }
    // Plain numbers come back as read; a formula gets the CSV formula escape.
    let delta: Vec<&str> = file_rows.iter().map(|row| row[3].as_str()).collect();
    assert_eq!(delta, ["-5", "+2.5", "'=1+1", "0"]);
    let server_status = csv_column(&(file_header.clone(), file_rows.clone()), "server_status");
    assert_eq!(
        server_status,
        [Some("ok"), None, Some("ok"), Some("invalid")].map(|s| s.map(str::to_string))
    );
}

#[test]
fn join_rejects_unusable_inputs_before_requests() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let list = support::write_list(&dir.path().join("ips.txt"), &support::public_ips(63, 3));
    let out = dir.path().join("out.parquet");
    let cache = dir.path().join("cache.sqlite");

    let output = run(enrich_command(&server, &list, &out, &cache, 2).arg("--join"));
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plain list"), "{stderr}");
    assert!(stderr.contains("header"), "{stderr}");

    let output = run(enrich_command(&server, &list, &out, &cache, 2)
        .arg(&list)
        .arg("--join"));
    assert_exit(&output, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("takes one input"));

    let output = run(enrich_command(&server, &list, &out, &cache, 2).args(["--join", "--extract"]));
    assert_exit(&output, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--extract"));

    let binary = dir.path().join("capture.csv");
    std::fs::write(&binary, b"ip,x\n\x00\x01\x02\xff\xfe,1\n").unwrap();
    let output = run(enrich_command(&server, &binary, &out, &cache, 2).arg("--join"));
    assert_exit(&output, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not text"));

    assert_eq!(server.stats().total_requests, 0);
    assert!(!out.exists());
}
