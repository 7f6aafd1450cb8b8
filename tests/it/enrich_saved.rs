//! The main job end to end from saved responses (`--from`), as the README's first command runs
//! it: no network, real files, the real Parquet and CSV readers.

use std::io::Write;
use std::process::Stdio;

use crate::support::{describe, ints, read_parquet, repo, rows_by_ip, run, strings, vt_enrich};

#[test]
fn firewall_sample_enriches_to_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fw.parquet");
    let output = run(vt_enrich()
        .arg("enrich")
        .arg(repo().join("samples/firewall.csv"))
        .arg("--from")
        .arg(repo().join("samples/responses"))
        .arg("-o")
        .arg(&out));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let batch = read_parquet(&out);
    let rows = rows_by_ip(&batch);
    let status = strings(&batch, "status");
    let source = strings(&batch, "source");
    let message = strings(&batch, "error_message");
    let asn = ints(&batch, "asn");

    // One row per distinct value, whatever column or form it came in.
    assert_eq!(rows.len(), batch.num_rows(), "ip values are unique");
    let google = rows["8.8.8.8"];
    assert_eq!(status[google].as_deref(), Some("ok"));
    assert_eq!(source[google].as_deref(), Some("file"));
    assert_eq!(asn[google], Some(15169));

    // `1.1.1.1:443` is looked up without its port.
    assert_eq!(status[rows["1.1.1.1"]].as_deref(), Some("ok"));
    assert!(!rows.contains_key("1.1.1.1:443"));

    // No saved document: not found, a normal final status.
    assert_eq!(status[rows["9.9.9.9"]].as_deref(), Some("not_found"));

    // Private and CGNAT addresses are skipped with a reason.
    let private = rows["10.0.0.5"];
    assert_eq!(status[private].as_deref(), Some("skipped"));
    assert!(
        message[private].as_deref().unwrap().contains("RFC 1918"),
        "{:?}",
        message[private]
    );
    assert_eq!(status[rows["100.64.0.1"]].as_deref(), Some("skipped"));

    // Bad values are rows of their own with the line and the reason.
    let octal = rows["010.8.8.8"];
    assert_eq!(status[octal].as_deref(), Some("invalid"));
    let reason = message[octal].as_deref().unwrap();
    assert!(reason.contains("firewall.csv:17"), "{reason}");
    assert!(reason.contains("leading zero"), "{reason}");
    assert_eq!(
        status[rows["updates.example.com"]].as_deref(),
        Some("invalid")
    );

    // The engines table sits next to the main output and keeps dotted engine names whole.
    let engines = read_parquet(&dir.path().join("fw.engines.parquet"));
    let engine_ips = strings(&engines, "ip");
    let engine_names = strings(&engines, "engine_name");
    let dr_web = engine_ips
        .iter()
        .zip(&engine_names)
        .filter(|(ip, name)| ip.as_deref() == Some("8.8.8.8") && name.as_deref() == Some("Dr.Web"))
        .count();
    assert_eq!(dr_web, 1);

    // Nothing but the two outputs is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fw.engines.parquet", "fw.parquet"]);
}

#[test]
fn stdin_list_to_csv_on_stdout() {
    let mut child = vt_enrich()
        .args(["enrich", "--from"])
        .arg(repo().join("samples/responses"))
        .args(["-o", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"8.8.8.8\n ::ffff:8.8.8.8 \n# comment\n\n192.168.0.1\n203.0.113.0/24\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let ip = headers.iter().position(|name| name == "ip").unwrap();
    let status = headers.iter().position(|name| name == "status").unwrap();
    let rows: Vec<(String, String)> = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            (record[ip].to_string(), record[status].to_string())
        })
        .collect();

    assert_eq!(
        rows,
        [
            ("8.8.8.8".to_string(), "ok".to_string()),
            ("192.168.0.1".to_string(), "skipped".to_string()),
            ("203.0.113.0/24".to_string(), "invalid".to_string()),
        ]
    );
    // The summary goes to stderr, never into the data.
    assert!(String::from_utf8_lossy(&output.stderr).contains("rows written"));
}

#[test]
fn flatten_command_writes_every_saved_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("saved.parquet");
    let output = run(vt_enrich()
        .arg("flatten")
        .arg(repo().join("samples/responses"))
        .args(["--engines", "wide", "-o"])
        .arg(&out));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), 10);
    assert!(
        batch
            .column_by_name("last_analysis_results_Dr.Web")
            .is_some()
    );
    assert!(!dir.path().join("saved.engines.parquet").exists());
}

#[test]
fn input_error_part_way_keeps_the_rows_done() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "8.8.8.8\n1.1.1.1\n").unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,port\nweb,443\ndns,53\n").unwrap();
    let out = dir.path().join("out.parquet");

    let output = run(vt_enrich()
        .arg("enrich")
        .arg(&good)
        .arg(&bad)
        .arg("--from")
        .arg(repo().join("samples/responses"))
        .arg("-o")
        .arg(&out));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.csv"), "{stderr}");
    assert!(stderr.contains("were written to"), "{stderr}");
    assert_eq!(read_parquet(&out).num_rows(), 2);
}

#[test]
fn output_over_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ips.csv");
    std::fs::write(&input, "ip\n8.8.8.8\n").unwrap();

    let output = run(vt_enrich()
        .arg("enrich")
        .arg(&input)
        .arg("--from")
        .arg(repo().join("samples/responses"))
        .arg("-o")
        .arg(&input));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "ip\n8.8.8.8\n");
}

#[test]
fn interrupt_with_stdin_still_open_exits_promptly() {
    let mut child = vt_enrich()
        .args(["enrich", "--from"])
        .arg(repo().join("samples/responses"))
        .args(["-o", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"8.8.8.8\n1.1.1.1\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Poll rather than wait, so a hang fails the test instead of blocking it.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(3));
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still running 10 s after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(stdin);
    // The input stage was still reading its format sample, so no row was done; the CSV is
    // still complete, with its header.
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("ip,ip_version,status"), "{stdout}");
}
