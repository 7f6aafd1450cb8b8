//! `vt-enrich enrich` against the fake VirusTotal server over real HTTP on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use arrow::array::RecordBatch;

use crate::fake_vt::{
    FakeVt, FakeVtConfig, Fault, FaultPolicy, KeyQuota, TEST_KEY, document_facts,
};
use crate::support::{
    self, count_status, describe, enrich_command, ints, read_parquet, rows_by_ip, run, strings,
    without_columns,
};

fn public_ips(count: usize) -> Vec<String> {
    support::public_ips(10, count)
}

fn write_list(dir: &Path, ips: &[String]) -> PathBuf {
    support::write_list(&dir.join("ips.txt"), ips)
}

/// `enrich` against `server` with a cache file next to the output.
fn enrich(server: &FakeVt, input: &Path, out: &Path) -> Command {
    enrich_command(server, input, out, &out.with_extension("cache.sqlite"), 8)
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

/// Drops `fetched_at`, the one column that differs between two correct runs.
fn without_fetch_time(batch: &RecordBatch) -> RecordBatch {
    without_columns(batch, &["fetched_at"])
}

#[test]
fn clean_run_enriches_every_address_once() {
    let server = FakeVt::start(FakeVtConfig::default().with_not_found("45.10.0.7"));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(200);
    let input = write_list(dir.path(), &ips);
    let out = dir.path().join("out.parquet");

    let output = run(&mut enrich(&server, &input, &out));
    assert_exit(&output, 0);

    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), 200);
    let rows = rows_by_ip(&batch);
    let status = strings(&batch, "status");
    let asn = ints(&batch, "asn");
    let country = strings(&batch, "country");
    let stats = server.stats();
    for ip in &ips {
        let row = rows[ip];
        assert_eq!(stats.requests_for(ip), 1, "{ip} requested once");
        if ip == "45.10.0.7" {
            assert_eq!(status[row].as_deref(), Some("not_found"));
            assert_eq!(
                strings(&batch, "error_code")[row].as_deref(),
                Some("NotFoundError")
            );
            continue;
        }
        let facts = document_facts(ip);
        assert_eq!(status[row].as_deref(), Some("ok"), "{ip}");
        assert_eq!(asn[row], Some(facts.asn as i64), "{ip}");
        assert_eq!(country[row].as_deref(), Some(facts.country), "{ip}");
    }

    // Rows come out in input order.
    assert_eq!(
        strings(&batch, "ip")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        ips
    );

    // Compression is negotiated and the key travels only in `x-apikey`.
    for request in &stats.requests {
        assert!(request.header("user-agent").unwrap().contains("gzip"));
        assert_eq!(request.header("accept-encoding"), Some("gzip"));
        assert_eq!(request.header("x-apikey"), Some(TEST_KEY));
        let elsewhere = request
            .headers
            .iter()
            .filter(|(name, _)| name != "x-apikey")
            .any(|(_, value)| value.contains(TEST_KEY));
        assert!(!elsewhere, "key outside x-apikey: {:?}", request.headers);
        assert!(!request.path.contains(TEST_KEY));
    }
}

#[test]
fn mixed_faults_end_like_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(300);
    let input = write_list(dir.path(), &ips);

    let clean_server = FakeVt::start(FakeVtConfig::default());
    let clean_out = dir.path().join("clean.parquet");
    assert_exit(&run(&mut enrich(&clean_server, &input, &clean_out)), 0);

    let faulty_server = FakeVt::start(
        FakeVtConfig::default()
            .with_faults(FaultPolicy::mixed_with_stall(7, Duration::from_secs(3))),
    );
    let faulty_out = dir.path().join("faulty.parquet");
    let output = run(&mut enrich(&faulty_server, &input, &faulty_out));
    assert_exit(&output, 0);

    let stats = faulty_server.stats();
    assert!(
        stats.faults.values().sum::<u64>() > 30,
        "faults were injected: {:?}",
        stats.faults
    );
    for ip in &ips {
        assert_eq!(
            stats.successes(ip),
            1,
            "{ip} fetched successfully exactly once"
        );
    }
    assert_eq!(
        without_fetch_time(&read_parquet(&faulty_out)),
        without_fetch_time(&read_parquet(&clean_out))
    );
}

#[test]
fn wrong_key_stops_after_one_request() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(dir.path(), &public_ips(50));
    let out = dir.path().join("out.parquet");

    let output = run(enrich(&server, &input, &out).env("VT_API_KEY", "not-the-key-5ecr3t"));
    assert_exit(&output, 1);

    assert_eq!(server.stats().total_requests, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WrongCredentialsError"), "{stderr}");
    assert!(!stderr.contains("not-the-key-5ecr3t"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn quota_storm_ends_quota_exhausted_after_few_probes() {
    let server = FakeVt::start(
        FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::QUOTA_EXCEEDED)),
    );
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(dir.path(), &public_ips(100));
    let out = dir.path().join("out.csv");

    // Probes double their spacing from the 0.01 s backoff base until the 2 s window ends.
    let output = run(enrich(&server, &input, &out).args(["--quota-probe-window", "2"]));
    assert_exit(&output, 3);

    // At most the 8 requests in flight when the storm began, then one probe at a time.
    let total = server.stats().total_requests;
    assert!(total <= 8 + 9, "{total} requests");

    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers = reader.headers().unwrap().clone();
    let status = headers.iter().position(|name| name == "status").unwrap();
    let statuses: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[status].to_string())
        .collect();
    assert_eq!(statuses.len(), 100);
    assert!(
        statuses.iter().all(|s| s == "quota_exhausted"),
        "{statuses:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("QuotaExceededError"), "{stderr}");
}

#[test]
fn daily_budget_stops_sending_and_names_the_reset() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(dir.path(), &public_ips(8));
    let out = dir.path().join("out.parquet");

    let output = run(enrich(&server, &input, &out).args(["--per-day", "5"]));
    assert_exit(&output, 3);

    assert_eq!(server.stats().total_requests, 5);
    let batch = read_parquet(&out);
    assert_eq!(count_status(&batch, "ok"), 5);
    assert_eq!(count_status(&batch, "quota_exhausted"), 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("daily budget of 5 requests"), "{stderr}");
    assert!(stderr.contains("T00:00:00Z"), "{stderr}");
}

#[test]
fn bad_lines_are_reported_while_the_rest_is_enriched() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("fw.csv");
    std::fs::write(
        &input,
        "ts,src_ip\n1,45.10.0.1\n2,010.8.8.8\n3,45.10.0.2:443\n4,not-an-ip\n5,10.0.0.5\n6,95.32.221.040\n7,[2001:4860::8888]:443\n",
    )
    .unwrap();
    let out = dir.path().join("out.parquet");

    let output = run(enrich(&server, &input, &out).args(["--column", "src_ip"]));
    assert_exit(&output, 0);

    let batch = read_parquet(&out);
    let rows = rows_by_ip(&batch);
    let status = strings(&batch, "status");
    let message = strings(&batch, "error_message");
    assert_eq!(status[rows["45.10.0.1"]].as_deref(), Some("ok"));
    assert_eq!(status[rows["45.10.0.2"]].as_deref(), Some("ok"));
    assert_eq!(status[rows["2001:4860::8888"]].as_deref(), Some("ok"));
    assert_eq!(status[rows["10.0.0.5"]].as_deref(), Some("skipped"));
    for (raw, line) in [("010.8.8.8", 3), ("not-an-ip", 5), ("95.32.221.040", 7)] {
        assert_eq!(status[rows[raw]].as_deref(), Some("invalid"), "{raw}");
        let text = message[rows[raw]].as_deref().unwrap();
        assert!(text.contains(&format!("fw.csv:{line}")), "{raw}: {text}");
    }

    // Nothing is sent for invalid or skipped values.
    let stats = server.stats();
    assert_eq!(stats.total_requests, 3);
}

#[test]
fn api_key_appears_in_no_output_or_log() {
    let server = FakeVt::start(
        FakeVtConfig::default().with_faults(FaultPolicy::first_attempts(1, Fault::TRANSIENT)),
    );
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(dir.path(), &public_ips(5));
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");

    let output = run(enrich(&server, &input, &out)
        .arg("-vvv")
        .arg("--summary-json")
        .arg(&summary));
    assert_exit(&output, 0);

    let mut haystacks = vec![output.stdout.clone(), output.stderr.clone()];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        haystacks.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for bytes in haystacks {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(TEST_KEY), "key found in: {text:.300}");
    }
}

#[test]
fn per_minute_quota_is_never_answered_429() {
    // 33 requests at 30 a minute: the 31st must wait past the first minute.
    let server = FakeVt::start(FakeVtConfig::default().with_quota(KeyQuota::per_minute(30)));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(33);
    let input = write_list(dir.path(), &ips);
    let out = dir.path().join("out.parquet");

    let output =
        run(enrich(&server, &input, &out).args(["--per-minute", "30", "--progress", "log"]));
    assert_exit(&output, 0);

    let stats = server.stats();
    assert_eq!(stats.status_count(429), 0);
    assert_eq!(stats.total_requests, 33);
    let arrivals = &stats.arrivals;
    for (index, start) in arrivals.iter().enumerate() {
        let in_window = arrivals[index..]
            .iter()
            .take_while(|at| at.duration_since(*start) < Duration::from_secs(60))
            .count();
        assert!(
            in_window <= 30,
            "{in_window} requests within 60 s of request {index}"
        );
    }
}
