//! Hostile inputs through the built binary: a 1 GB line streamed into stdin, a binary file, a
//! CSV file without an IP column, empty input, and a million copies of one address.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vt_enrich::flatten::{EnginesMode, engines_schema, main_schema};

use crate::child::{Watchdog, collect_stderr, output_within, wait_with_peak_memory};
use crate::fake_vt::{FakeVt, FakeVtConfig};
use crate::support::{
    count_status, describe, enrich_command, public_ips, read_parquet, rows_by_ip, strings,
};

/// Maximum time one run of this file may take before its child is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Size of the long line streamed into stdin.
const LONG_LINE_BYTES: u64 = 1 << 30;

/// Peak resident memory allowed to a run that reads the long line, in KiB. Both runs peaked at
/// 31 MiB when measured by this test, and holding the line would take over 1 GiB.
const MAX_RSS_KIB: i64 = 150 * 1024;

/// Returns `enrich` reading stdin against `server`, with a cache in `dir`.
fn enrich_stdin(server: &FakeVt, dir: &Path, out: &Path) -> Command {
    let mut command = enrich_command(server, Path::new("-"), out, &dir.join("cache.sqlite"), 4);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Writes `head`, then `LONG_LINE_BYTES` copies of `fill`, then `tail` to the child's stdin,
/// without holding more than 1 MiB of it.
fn stream_long_line(
    child: &mut Child,
    head: &[u8],
    fill: u8,
    tail: &[u8],
) -> std::thread::JoinHandle<u64> {
    let mut stdin = child.stdin.take().unwrap();
    let (head, tail) = (head.to_vec(), tail.to_vec());
    std::thread::spawn(move || {
        let chunk = vec![fill; 1 << 20];
        let mut written = 0u64;
        let mut send = |bytes: &[u8]| {
            if stdin.write_all(bytes).is_ok() {
                written += bytes.len() as u64;
            }
        };
        send(&head);
        for _ in 0..LONG_LINE_BYTES / chunk.len() as u64 {
            send(&chunk);
        }
        send(&tail);
        written
    })
}

/// Streams a 1 GB line between two addresses and checks the run's rows and memory.
fn long_line_run(head: &[u8], fill: u8, tail: &[u8], block: usize, limit: &str) {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let ips = public_ips(block, 2);

    let mut child = enrich_stdin(&server, dir.path(), &out).spawn().unwrap();
    let head = [head, ips[0].as_bytes(), b"\n"].concat();
    let tail = [tail, b"\n", ips[1].as_bytes(), b"\n"].concat();
    let writer = stream_long_line(&mut child, &head, fill, &tail);
    let stderr = collect_stderr(&mut child);
    let (status, peak_kib) = wait_with_peak_memory(&child, RUN_TIMEOUT);
    let written = writer.join().unwrap();
    let stderr = stderr.join().unwrap();

    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        written > LONG_LINE_BYTES,
        "only {written} bytes reached the child"
    );
    eprintln!("long line ({limit}): peak RSS {} MiB", peak_kib / 1024);
    assert!(peak_kib < MAX_RSS_KIB, "peak RSS {peak_kib} KiB");

    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), 3, "{stderr}");
    let rows = rows_by_ip(&batch);
    let status = strings(&batch, "status");
    assert_eq!(status[rows[&ips[0]]].as_deref(), Some("ok"));
    assert_eq!(status[rows[&ips[1]]].as_deref(), Some("ok"));
    assert_eq!(count_status(&batch, "invalid"), 1);
    let message = strings(&batch, "error_message")
        .into_iter()
        .flatten()
        .next()
        .unwrap();
    assert!(message.starts_with("stdin:"), "{message}");
    assert!(message.contains(limit), "{message}");
    let invalid_ip = strings(&batch, "ip")
        .into_iter()
        .flatten()
        .find(|ip| !ips.contains(ip))
        .unwrap();
    assert!(
        invalid_ip.chars().count() <= 201,
        "{} chars",
        invalid_ip.len()
    );
}

#[test]
fn gigabyte_list_line_is_one_invalid_row() {
    long_line_run(b"", b'x', b"", 130, "65536-byte limit of one value");
}

#[test]
fn gigabyte_csv_line_is_one_invalid_row() {
    long_line_run(
        b"ip,note\n",
        b',',
        b"",
        131,
        "1048576-byte limit of one CSV row",
    );
}

#[test]
fn binary_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.pcap");
    let mut bytes = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..65_536 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push((state >> 56) as u8);
    }
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.parquet");
    let server = FakeVt::start(FakeVtConfig::default());

    let mut command = enrich_command(&server, &input, &out, &dir.path().join("cache.sqlite"), 4);
    let output = output_within(&mut command, RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains("capture.pcap` is not text"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    assert!(stderr.len() < 1_000, "{} bytes of stderr", stderr.len());
    assert!(!out.exists());
    assert_eq!(server.stats().total_requests, 0);
}

#[test]
fn csv_without_ip_column_names_header_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("fw.csv");
    std::fs::write(
        &input,
        "time,action,bytes\n2026-12-03,allow,10\n2026-12-03,deny,20\n",
    )
    .unwrap();
    let out = dir.path().join("out.parquet");
    std::fs::write(&out, "yesterday's output").unwrap();
    let server = FakeVt::start(FakeVtConfig::default());

    let mut command = enrich_command(&server, &input, &out, &dir.path().join("cache.sqlite"), 4);
    let output = output_within(&mut command, RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains("no column of `"), "{stderr}");
    assert!(
        stderr.contains("(header: `time`, `action`, `bytes`)"),
        "{stderr}"
    );
    assert!(stderr.contains("--column NAME"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "yesterday's output");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
}

#[test]
fn empty_stdin_writes_full_schema() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");

    let mut command = enrich_stdin(&server, dir.path(), &out);
    let output = output_within(command.stdin(Stdio::null()), RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stderr.contains("the input contains no values to look up"),
        "{stderr}"
    );
    let main = read_parquet(&out);
    assert_eq!(main.num_rows(), 0);
    assert_eq!(
        main.schema().fields(),
        main_schema(EnginesMode::Long).fields()
    );
    let engines = read_parquet(&dir.path().join("out.engines.parquet"));
    assert_eq!(engines.num_rows(), 0);
    assert_eq!(engines.schema().fields(), engines_schema().fields());
    assert_eq!(server.stats().total_requests, 0);
}

#[test]
fn million_duplicates_cost_one_request() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let summary = dir.path().join("summary.json");
    let ip = &public_ips(132, 1)[0];

    let mut child = enrich_stdin(&server, dir.path(), &out)
        .arg("--summary-json")
        .arg(&summary)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = format!("{ip}\n");
    let writer = std::thread::spawn(move || {
        let block = line.repeat(10_000);
        for _ in 0..100 {
            stdin.write_all(block.as_bytes()).unwrap();
        }
    });
    let watchdog = Watchdog::new(child.id(), RUN_TIMEOUT);
    let output = child.wait_with_output().unwrap();
    assert!(!watchdog.disarm(), "killed after {RUN_TIMEOUT:?}");
    writer.join().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 1);
    assert_eq!(server.stats().requests_for(ip), 1);
    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(strings(&batch, "status")[0].as_deref(), Some("ok"));
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(summary["input"]["values_read"], 1_000_000);
    assert_eq!(summary["input"]["duplicate_values"], 999_999);
    assert_eq!(summary["requests"], 1);
}
