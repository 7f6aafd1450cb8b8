//! The answer cache and the request ledger, over real HTTP against the fake server and real
//! SQLite files: reruns cost nothing, kills lose nothing, budgets hold across runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;

use crate::fake_vt::{FakeVt, FakeVtConfig, Fault, FaultPolicy, KeyQuota};
use crate::support::{
    self, count_status, describe, enrich_command, read_parquet, rows_by_ip, run, strings,
    vt_enrich, without_columns, write_list,
};

fn public_ips(count: usize) -> Vec<String> {
    support::public_ips(20, count)
}

/// `enrich` against `server` with the given cache file.
fn enrich(server: &FakeVt, input: &Path, out: &Path, cache: &Path) -> Command {
    enrich_command(server, input, out, cache, 4)
}

/// Drops the columns that legitimately differ between a fresh and a cached answer.
fn comparable(batch: &RecordBatch) -> RecordBatch {
    without_columns(batch, &["fetched_at", "source"])
}

#[test]
fn second_run_costs_no_request() {
    let server = FakeVt::start(FakeVtConfig::default().with_not_found("45.20.0.3"));
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(40));
    let cache = dir.path().join("cache.sqlite");
    let first = dir.path().join("first.parquet");
    let second = dir.path().join("second.parquet");

    let output = run(&mut enrich(&server, &input, &first, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 40);

    let output = run(&mut enrich(&server, &input, &second, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 40, "the rerun sent requests");

    let first = read_parquet(&first);
    let second = read_parquet(&second);
    assert!(
        strings(&second, "source")
            .iter()
            .all(|s| s.as_deref() == Some("cache"))
    );
    let fetch_times = |batch: &RecordBatch| batch.column_by_name("fetched_at").unwrap().to_data();
    assert_eq!(fetch_times(&first), fetch_times(&second));
    assert_eq!(comparable(&first), comparable(&second));
}

#[test]
fn unanswered_address_is_asked_again_next_run() {
    let throttling = Arc::new(AtomicBool::new(true));
    let policy = {
        let throttling = throttling.clone();
        FaultPolicy::from_fn(move |info| {
            let target = info.ip.as_deref() == Some("45.20.0.3");
            if target && throttling.load(Ordering::SeqCst) {
                Fault::QUOTA_EXCEEDED
            } else {
                Fault::None
            }
        })
    };
    let server = FakeVt::start(FakeVtConfig::default().with_faults(policy));
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(5));
    let cache = dir.path().join("cache.sqlite");
    let out = dir.path().join("out.parquet");

    let output = run(enrich(&server, &input, &out, &cache).args(["--quota-probe-window", "1"]));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let batch = read_parquet(&out);
    let status = strings(&batch, "status")[rows_by_ip(&batch)["45.20.0.3"]].clone();
    assert!(
        matches!(status.as_deref(), Some("failed" | "quota_exhausted")),
        "{status:?}"
    );

    throttling.store(false, Ordering::SeqCst);
    server.reset_stats();
    let output = run(&mut enrich(&server, &input, &out, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stats = server.stats();
    assert_eq!(
        stats.total_requests, 1,
        "only the unanswered address is asked again"
    );
    assert_eq!(stats.successes("45.20.0.3"), 1);
}

#[test]
fn daily_budget_holds_across_runs_and_resets_next_day() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(80));
    let cache = dir.path().join("cache.sqlite");
    let out = dir.path().join("out.parquet");
    let budget = |now: &str| {
        let mut command = enrich(&server, &input, &out, &cache);
        command
            .args(["--per-day", "50"])
            .env("VT_ENRICH_TEST_NOW", now);
        command
    };

    let output = run(&mut budget("2026-12-04T10:00:00Z"));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 50);
    let batch = read_parquet(&out);
    assert_eq!(count_status(&batch, "ok"), 50);
    assert_eq!(count_status(&batch, "quota_exhausted"), 30);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("resets at 2026-12-05T00:00:00Z"),
        "{stderr}"
    );

    // Later the same day: the budget is still spent, and nothing is sent.
    let output = run(&mut budget("2026-12-04T18:00:00Z"));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 50);

    // The next UTC day: exactly the 30 missing addresses are fetched.
    let output = run(&mut budget("2026-12-05T00:00:01Z"));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 80);
    let statuses = strings(&read_parquet(&out), "status");
    assert!(statuses.iter().all(|s| s.as_deref() == Some("ok")));
}

#[test]
fn killed_runs_resume_without_refetching() {
    let concurrency = 4;
    let server = FakeVt::start(FakeVtConfig::default().with_latency(Duration::from_millis(20)));
    let dir = tempfile::tempdir().unwrap();
    // At 20 ms a request and 4 at a time, 1,000 addresses take at least 5 s, far more than the
    // 2.1 s the killed runs get, so the last run always has work left.
    let ips = public_ips(1000);
    let input = write_list(&dir.path().join("ips.txt"), &ips);
    let cache = dir.path().join("cache.sqlite");
    let out = dir.path().join("out.parquet");

    // Three runs killed with SIGKILL at different points, then one that finishes.
    let kills = [300, 700, 1100];
    for after_ms in kills {
        let mut child = enrich(&server, &input, &out, &cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let before_last = server.stats().total_requests;
    assert!(
        before_last > 0 && before_last < 1000,
        "{before_last} requests before the last run"
    );

    let output = run(&mut enrich(&server, &input, &out, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stats = server.stats();

    // An answer the server delivered in the instant before a kill may never reach the cache;
    // at most one per request in flight, that is `concurrency` per kill.
    let refetched: u32 = ips
        .iter()
        .map(|ip| stats.successes(ip).saturating_sub(1))
        .sum();
    assert!(
        refetched as usize <= concurrency * kills.len(),
        "{refetched} addresses fetched successfully twice"
    );
    assert!(ips.iter().all(|ip| stats.successes(ip) >= 1));

    let server_clean = FakeVt::start(FakeVtConfig::default());
    let clean = dir.path().join("clean.parquet");
    let output = run(&mut enrich(
        &server_clean,
        &input,
        &clean,
        &dir.path().join("clean.sqlite"),
    ));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        comparable(&read_parquet(&out)),
        comparable(&read_parquet(&clean))
    );
}

#[test]
fn two_processes_share_the_per_minute_quota() {
    // 30 requests from two processes at 20 a minute each: without the shared ledger they
    // would send up to 40 in the first minute and meet 429s.
    let server = FakeVt::start(FakeVtConfig::default().with_quota(KeyQuota::per_minute(20)));
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(30);
    let cache = dir.path().join("cache.sqlite");
    let inputs = [
        write_list(&dir.path().join("a.txt"), &ips[..15]),
        write_list(&dir.path().join("b.txt"), &ips[15..]),
    ];

    let children: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            enrich(
                &server,
                input,
                &dir.path().join(format!("out{index}.parquet")),
                &cache,
            )
            .args(["--per-minute", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    }

    let stats = server.stats();
    let summary: Vec<_> = stats
        .requests
        .iter()
        .map(|r| (r.ip.clone(), r.status, r.fault, r.delivered))
        .collect();
    assert_eq!(
        stats.total_requests, 30,
        "{summary:?} {:?}",
        stats.status_counts
    );
    assert_eq!(stats.status_count(429), 0);
}

#[test]
fn offline_answers_from_the_cache_only() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let known = write_list(&dir.path().join("known.txt"), &public_ips(3));
    let out = dir.path().join("out.parquet");
    let output = run(&mut enrich(&server, &known, &out, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let mut ips = public_ips(3);
    ips.push("45.99.0.1".to_string());
    let mixed = write_list(&dir.path().join("mixed.txt"), &ips);
    let output = run(vt_enrich()
        .env_remove("VT_API_KEY")
        .arg("enrich")
        .arg(&mixed)
        .arg("--offline")
        .arg("--cache")
        .arg(&cache)
        .args(["--api-url", &server.url()])
        .arg("-o")
        .arg(&out));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(server.stats().total_requests, 3, "offline sent a request");

    let batch = read_parquet(&out);
    let rows = rows_by_ip(&batch);
    let status = strings(&batch, "status");
    assert_eq!(status[rows["45.20.0.1"]].as_deref(), Some("ok"));
    assert_eq!(status[rows["45.99.0.1"]].as_deref(), Some("failed"));
    assert_eq!(
        strings(&batch, "error_code")[rows["45.99.0.1"]].as_deref(),
        Some("NotCached")
    );
}

#[test]
fn cache_export_is_readable_by_from() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(6));
    let fetched = dir.path().join("fetched.parquet");
    assert_eq!(
        run(&mut enrich(&server, &input, &fetched, &cache))
            .status
            .code(),
        Some(0)
    );

    let export = dir.path().join("answers.jsonl");
    let output = run(vt_enrich()
        .args(["cache", "export", "--cache"])
        .arg(&cache)
        .arg("-o")
        .arg(&export));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 6);

    let from = dir.path().join("from.parquet");
    let output = run(vt_enrich()
        .arg("enrich")
        .arg(&input)
        .arg("--from")
        .arg(&export)
        .arg("-o")
        .arg(&from));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        comparable(&read_parquet(&fetched)),
        comparable(&read_parquet(&from))
    );

    let output = run(vt_enrich()
        .args(["cache", "stats", "--json", "--cache"])
        .arg(&cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stats["entries"], 6);
    assert_eq!(stats["ledger"][0]["today"], 6);
}

/// Sends `signal` (a `kill` name such as `INT`) to a child process.
fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn interrupt_writes_what_is_done_and_rerun_finishes() {
    for signal in ["INT", "TERM"] {
        let server =
            FakeVt::start(FakeVtConfig::default().with_latency(Duration::from_millis(100)));
        let dir = tempfile::tempdir().unwrap();
        let ips = public_ips(100);
        let input = write_list(&dir.path().join("ips.txt"), &ips);
        let cache = dir.path().join("cache.sqlite");
        let out = dir.path().join("out.parquet");

        let child = enrich(&server, &input, &out, &cache)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        send_signal(&child, signal);
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(3),
            "SIG{signal}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("rerun the same command"), "{stderr}");

        // Every answer received before the signal is written, in input order.
        let batch = read_parquet(&out);
        let done = batch.num_rows();
        assert!(done > 0, "SIG{signal}: no row written");
        assert!(
            done < 100,
            "SIG{signal}: every row written before the signal"
        );
        let written: Vec<String> = strings(&batch, "ip").into_iter().flatten().collect();
        let mut in_input_order = written.clone();
        in_input_order.sort_by_key(|ip| ips.iter().position(|known| known == ip));
        assert_eq!(written, in_input_order);
        let answered = server.stats().successes_per_ip.len();
        assert!(
            done + 4 >= answered,
            "SIG{signal}: {answered} answered, {done} written"
        );
        assert!(
            strings(&batch, "status")
                .iter()
                .all(|s| s.as_deref() == Some("ok"))
        );

        let output = run(&mut enrich(&server, &input, &out, &cache));
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        assert_eq!(read_parquet(&out).num_rows(), 100);
        let stats = server.stats();
        assert!(ips.iter().all(|ip| stats.successes(ip) >= 1));
        // Requests cancelled by the interrupt (at most the 4 in flight) may have been answered;
        // nothing else repeats.
        let refetched: u32 = ips
            .iter()
            .map(|ip| stats.successes(ip).saturating_sub(1))
            .sum();
        assert!(
            refetched <= 4,
            "SIG{signal}: {refetched} addresses fetched twice"
        );
    }
}

#[test]
fn second_interrupt_exits_at_once_with_a_consistent_cache() {
    let server = FakeVt::start(FakeVtConfig::default().with_latency(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(50));
    let cache = dir.path().join("cache.sqlite");
    let out = dir.path().join("out.parquet");

    let child = enrich(&server, &input, &out, &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    send_signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(50));
    send_signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The cache opens and answers; the rerun completes from it and the API.
    let output = run(&mut enrich(&server, &input, &out, &cache));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(read_parquet(&out).num_rows(), 50);
}
