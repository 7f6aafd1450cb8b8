//! CSV exports as real systems write them, end to end against the fake server: byte order
//! marks, CRLF, each delimiter, quoted fields across lines, ragged rows and blank cells.

use std::path::Path;

use crate::fake_vt::{FakeVt, FakeVtConfig};
use crate::support::{describe, enrich_command, read_parquet, run, strings};

/// One output row: `ip`, `status` and `error_message`.
type Row = (String, String, Option<String>);

fn rows(out: &Path) -> Vec<Row> {
    let batch = read_parquet(out);
    let ips = strings(&batch, "ip");
    let statuses = strings(&batch, "status");
    let messages = strings(&batch, "error_message");
    ips.into_iter()
        .zip(statuses)
        .zip(messages)
        .map(|((ip, status), message)| (ip.unwrap(), status.unwrap(), message))
        .collect()
}

/// Runs `enrich` on `content` written to `name` and returns the rows, the summary JSON and
/// stderr. Every run must end with exit code 0.
fn enrich_csv(
    server: &FakeVt,
    name: &str,
    content: &[u8],
) -> (Vec<Row>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, content).unwrap();
    let out = dir.path().join("out.parquet");
    let summary = dir.path().join("summary.json");

    let output = run(
        enrich_command(server, &input, &out, &dir.path().join("c.sqlite"), 4)
            .args(["--engines", "none", "--summary-json"])
            .arg(&summary),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&*input.display().to_string(), "INPUT");
    (rows(&out), summary, stderr)
}

fn ips_and_statuses(rows: &[Row]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|(ip, status, _)| (ip.as_str(), status.as_str()))
        .collect()
}

#[test]
fn each_delimiter_is_detected() {
    let server = FakeVt::start(FakeVtConfig::default());
    for delimiter in [",", ";", "\t", "|"] {
        let content = [
            "time,src_ip,dst_ip,action",
            "t1,10.0.0.1,45.60.0.1,allow",
            "t2,45.60.0.2,10.0.0.1,deny",
        ]
        .map(|line| line.replace(',', delimiter))
        .join("\n");
        let (rows, summary, _) = enrich_csv(&server, "fw.csv", content.as_bytes());
        assert_eq!(
            ips_and_statuses(&rows),
            [
                ("10.0.0.1", "skipped"),
                ("45.60.0.1", "ok"),
                ("45.60.0.2", "ok")
            ],
            "delimiter {delimiter:?}"
        );
        assert_eq!(
            summary["input"]["columns_used"],
            serde_json::json!(["src_ip", "dst_ip"])
        );
    }
}

#[test]
fn bom_and_crlf_are_read_as_text() {
    let server = FakeVt::start(FakeVtConfig::default());
    let content = b"\xef\xbb\xbfsrc_ip;port\r\n45.60.1.1;443\r\n10.1.1.1;22\r\n";
    let (rows, summary, _) = enrich_csv(&server, "export.csv", content);
    assert_eq!(
        ips_and_statuses(&rows),
        [("45.60.1.1", "ok"), ("10.1.1.1", "skipped")]
    );
    // The header was found despite the BOM, and the line numbers count CRLF lines.
    assert_eq!(
        summary["input"]["columns_used"],
        serde_json::json!(["src_ip"])
    );
    let message = rows[1].2.as_deref().unwrap();
    assert!(message.contains("export.csv:3"), "{message}");
}

#[test]
fn quoted_newlines_keep_line_numbers() {
    let server = FakeVt::start(FakeVtConfig::default());
    let content = b"note,ip\n\"first line\nsecond line, with a comma\",45.60.2.1\n\"plain\",10.2.2.2\n\"a\r\nb\",010.1.1.1\n";
    let (rows, _, _) = enrich_csv(&server, "notes.csv", content);
    assert_eq!(
        ips_and_statuses(&rows),
        [
            ("45.60.2.1", "ok"),
            ("10.2.2.2", "skipped"),
            ("010.1.1.1", "invalid")
        ]
    );
    let skipped = rows[1].2.as_deref().unwrap();
    assert!(skipped.contains("notes.csv:4"), "{skipped}");
    let invalid = rows[2].2.as_deref().unwrap();
    assert!(invalid.contains("notes.csv:5"), "{invalid}");
}

#[test]
fn ragged_rows_are_reported_not_fatal() {
    let server = FakeVt::start(FakeVtConfig::default());
    let content = b"time,ip,action\nt1,45.60.3.1,allow\nt2,45.60.3.2\nt3,45.60.3.3,deny,extra\nt4,45.60.3.4,allow\n";
    let (rows, summary, stderr) = enrich_csv(&server, "fw.csv", content);
    assert_eq!(rows.len(), 4, "every row is read");
    assert_eq!(summary["input"]["ragged_rows"], 2);
    assert!(
        stderr.contains("INPUT:3: row has 2 fields, the header has 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("INPUT:4: row has 4 fields, the header has 3"),
        "{stderr}"
    );
}

#[test]
fn blank_values_are_counted_never_sent() {
    let server = FakeVt::start(FakeVtConfig::default());
    let content = b"src_ip,dst_ip\n45.60.4.1,\n,45.60.4.2\n\"  \",\"\"\n45.60.4.1, 45.60.4.3 \n";
    let (rows, summary, _) = enrich_csv(&server, "fw.csv", content);
    assert_eq!(
        ips_and_statuses(&rows),
        [
            ("45.60.4.1", "ok"),
            ("45.60.4.2", "ok"),
            ("45.60.4.3", "ok")
        ]
    );
    assert_eq!(summary["input"]["blank_values"], 4);
    assert_eq!(summary["input"]["values_read"], 8);
    assert_eq!(summary["input"]["duplicate_values"], 1);

    let stats = server.stats();
    assert_eq!(stats.total_requests, 3);
    for request in &stats.requests {
        assert!(
            !request.path.ends_with("/ip_addresses/") && request.ip.as_deref() != Some(""),
            "request for an empty id: {}",
            request.path
        );
    }
}
