//! `vt-enrich quota` and `--quota-from-api` against the fake server's quota endpoint.

use crate::fake_vt::{FakeVt, FakeVtConfig, KeyQuota, TEST_KEY};
use std::path::Path;
use std::process::Command;

use crate::support::{count_status, describe, read_parquet, run, strings, vt_enrich};

fn daily_quota(per_day: u64) -> KeyQuota {
    KeyQuota {
        per_day: Some(per_day),
        ..KeyQuota::unlimited()
    }
}

/// `enrich` with `--quota-from-api`, no local budget and no cache.
fn enrich_from_api_quota(server: &FakeVt, input: &Path, out: &Path) -> Command {
    let mut command = vt_enrich();
    command
        .env("VT_API_KEY", TEST_KEY)
        .arg("enrich")
        .arg(input)
        .args(["--api-url", &server.url(), "--profile", "unlimited"])
        .args(["--quota-from-api", "--no-cache", "-o"])
        .arg(out);
    command
}

#[test]
fn quota_command_shows_api_use_next_to_the_ledger() {
    let server = FakeVt::start(FakeVtConfig::default().with_quota(daily_quota(500)));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let input = dir.path().join("ips.txt");
    std::fs::write(&input, "45.30.0.1\n45.30.0.2\n45.30.0.3\n").unwrap();

    let output = run(vt_enrich()
        .env("VT_API_KEY", TEST_KEY)
        .arg("enrich")
        .arg(&input)
        .args([
            "--api-url",
            &server.url(),
            "--profile",
            "unlimited",
            "--cache",
        ])
        .arg(&cache)
        .arg("-o")
        .arg(dir.path().join("out.csv")));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let output = run(vt_enrich()
        .env("VT_API_KEY", TEST_KEY)
        .args(["quota", "--json", "--api-url", &server.url(), "--cache"])
        .arg(&cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["api"]["api_requests_daily"]["user"]["allowed"], 500);
    assert_eq!(value["api"]["api_requests_daily"]["user"]["used"], 3);
    assert_eq!(value["ledger"]["today"], 3);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(TEST_KEY));
}

#[test]
fn quota_from_api_lowers_the_daily_budget() {
    let server = FakeVt::start(FakeVtConfig::default().with_quota(daily_quota(10)));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ips.txt");
    let ips: Vec<String> = (1..=12).map(|n| format!("45.31.0.{n}")).collect();
    std::fs::write(&input, ips.join("\n")).unwrap();
    let out = dir.path().join("out.parquet");

    // No local budget at all: only the API's answer can stop this run at 10.
    let output = run(&mut enrich_from_api_quota(&server, &input, &out));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));

    let stats = server.stats();
    assert_eq!(
        stats.status_count(429),
        0,
        "the budget stopped the run before the API did"
    );
    let batch = read_parquet(&out);
    assert_eq!(count_status(&batch, "ok"), 10);
    assert_eq!(count_status(&batch, "quota_exhausted"), 2);
}

#[test]
fn quota_from_api_sends_nothing_when_spent() {
    let spent = KeyQuota {
        per_day: Some(5),
        used_today: 5,
        ..KeyQuota::unlimited()
    };
    let server = FakeVt::start(FakeVtConfig::default().with_quota(spent));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ips.txt");
    std::fs::write(&input, "45.32.0.1\n45.32.0.2\n").unwrap();
    let out = dir.path().join("out.parquet");

    let output = run(&mut enrich_from_api_quota(&server, &input, &out));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(
        server.stats().requests_per_ip.len(),
        0,
        "an address was looked up"
    );
    let statuses = strings(&read_parquet(&out), "status");
    assert!(
        statuses
            .iter()
            .all(|s| s.as_deref() == Some("quota_exhausted")),
        "{statuses:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("daily budget"), "{stderr}");
}
