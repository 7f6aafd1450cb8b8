//! `enrich --extract` on the bundled log samples, read back from the Parquet output.
//!
//! Each sample in `samples/extract/` has a `.expected` file next to it: one line per output
//! row, in order, with the address (or the raw value of an invalid row) and its input-stage
//! outcome, `lookup`, `skipped` or `invalid`. The runs are `--offline` with an empty cache, so a
//! `lookup` address ends as `failed` with `NotCached` and no request is sent anywhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{describe, read_parquet, repo, run, strings, vt_enrich};

fn sample(name: &str) -> PathBuf {
    repo().join("samples/extract").join(name)
}

/// Reads an expected file into `(ip, status)` pairs, with `lookup` turned into the `failed`
/// status that an offline run with an empty cache gives.
fn expected_rows(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    text.lines()
        .map(|line| {
            let (ip, outcome) = line
                .rsplit_once('\t')
                .unwrap_or_else(|| panic!("{name}: `{line}` has no tab"));
            let status = if outcome == "lookup" {
                "failed"
            } else {
                outcome
            };
            (ip.to_string(), status.to_string())
        })
        .collect()
}

/// `enrich --extract` writing `out`, offline against an empty cache in the same directory.
fn extract_command(out: &Path) -> Command {
    let mut command = vt_enrich();
    command
        .args(["enrich", "--extract", "--offline", "--engines", "none"])
        .arg("--cache")
        .arg(out.with_extension("cache.sqlite"))
        .arg("-o")
        .arg(out);
    command
}

/// Returns the `(ip, status)` of every output row, in order.
fn output_rows(out: &Path) -> Vec<(String, String)> {
    let batch = read_parquet(out);
    let ips = strings(&batch, "ip");
    let statuses = strings(&batch, "status");
    ips.into_iter()
        .zip(statuses)
        .map(|(ip, status)| (ip.unwrap(), status.unwrap()))
        .collect()
}

fn run_sample(input: &str, extra: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let output = run(extract_command(&out).args(extra).arg(sample(input)));
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{}",
        describe(&output)
    );
    assert_eq!(output_rows(&out), expected_rows(expected), "{input}");
}

#[test]
fn iptables_sample_yields_expected_addresses() {
    run_sample("iptables.log", &[], "iptables.expected");
}

#[test]
fn zeek_sample_yields_addr_fields() {
    run_sample("conn.log", &[], "conn.expected");
}

#[test]
fn ecs_sample_yields_source_and_destination() {
    run_sample("ecs.ndjson", &[], "ecs.expected");
}

#[test]
fn access_log_sample_yields_clients() {
    run_sample("access.log", &[], "access.expected");
}

#[test]
fn syslog_sample_yields_expected_addresses() {
    run_sample("auth.log", &[], "auth.expected");
}

#[test]
fn defanged_list_needs_refang() {
    run_sample("indicators.txt", &[], "indicators.expected");
    run_sample(
        "indicators.txt",
        &["--refang"],
        "indicators.refanged.expected",
    );
}

#[test]
fn zeek_from_stdin_with_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let output = run(extract_command(&out)
        .args(["--column", "id.resp_h", "-"])
        .stdin(std::fs::File::open(sample("conn.log")).unwrap()));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));

    let ips: Vec<String> = output_rows(&out).into_iter().map(|(ip, _)| ip).collect();
    assert_eq!(
        ips,
        [
            "151.101.1.69",
            "192.168.1.1",
            "104.16.132.229",
            "ff02::1:2",
            "2606:4700:4700::1111",
            "192.168.1.20",
        ]
    );
}

#[test]
fn json_bad_line_is_reported_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let output = run(extract_command(&out).arg(sample("ecs.ndjson")));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ecs.ndjson:5: line is not valid JSON"),
        "{stderr}"
    );
    let batch = read_parquet(&out);
    let messages = strings(&batch, "error_message");
    let ips = strings(&batch, "ip");
    let row = ips
        .iter()
        .position(|ip| {
            ip.as_deref()
                .is_some_and(|ip| ip.starts_with("--- filebeat"))
        })
        .expect("the bad line has a row");
    let message = messages[row].as_deref().unwrap();
    assert!(
        message.contains("ecs.ndjson:5: line is not valid JSON"),
        "{message}"
    );
}

#[test]
fn json_field_option_reads_named_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let output = run(extract_command(&out)
        .args(["--json-field", "related.ip", "--json-field", "host.ip"])
        .arg(sample("ecs.ndjson")));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));

    let ips: Vec<String> = output_rows(&out)
        .into_iter()
        .filter(|(_, status)| status != "invalid")
        .map(|(ip, _)| ip)
        .collect();
    assert_eq!(
        ips,
        [
            "10.20.0.14",
            "140.82.121.4",
            "10.20.0.30",
            "fe80::5054:ff:fe12:3456"
        ]
    );
}

#[test]
fn extract_options_from_env_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");

    // The environment turns on --extract and --refang.
    let mut command = vt_enrich();
    command
        .env("VT_ENRICH_EXTRACT", "true")
        .env("VT_ENRICH_REFANG", "true")
        .args(["enrich", "--offline", "--engines", "none", "--cache"])
        .arg(dir.path().join("c.sqlite"))
        .arg("-o")
        .arg(&out)
        .arg(sample("indicators.txt"));
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(
        output_rows(&out),
        expected_rows("indicators.refanged.expected")
    );

    // The config file sets the three options.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "extract = true\nrefang = true\njson_fields = [\"observer.ip\"]\n",
    )
    .unwrap();
    let output = run(vt_enrich()
        .arg("--config")
        .arg(&config)
        .args(["enrich", "--offline", "--engines", "none", "--cache"])
        .arg(dir.path().join("c.sqlite"))
        .arg("-o")
        .arg(&out)
        .arg(sample("ecs.ndjson")));
    // The one address found is private, so nothing is looked up and nothing fails.
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let ips: Vec<String> = output_rows(&out)
        .into_iter()
        .filter(|(_, status)| status != "invalid")
        .map(|(ip, _)| ip)
        .collect();
    assert_eq!(ips, ["10.20.0.1"]);
}

#[test]
fn refang_without_extract_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for option in [["--refang", ""], ["--json-field", "source.ip"]] {
        let out = dir.path().join("out.csv");
        let output = run(vt_enrich()
            .args(["enrich", "--offline", "--cache"])
            .arg(dir.path().join("c.sqlite"))
            .args(option.iter().filter(|arg| !arg.is_empty()))
            .arg(sample("iptables.log"))
            .arg("-o")
            .arg(&out)
            .stdin(Stdio::null()));
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("add --extract"), "{stderr}");
        assert!(!out.exists());
    }
}
