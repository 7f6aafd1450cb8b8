//! 429 storms: the fake server returns 429 to every request for ten minutes. A run must stop
//! after a handful of requests, mark the rest `quota_exhausted` and exit 3, without waiting
//! for the storm to end, and the next run must fetch only what is missing.
//!
//! CI uses a 2-second `--quota-probe-window`. The two ignored tests run the default 60-second
//! window by hand: `cargo test --test it storm_by_hand -- --ignored --nocapture`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fake_vt::{FakeVt, FakeVtConfig, Fault, FaultPolicy, TEST_KEY};
use crate::support::{self, count_status, describe, read_parquet, strings, without_columns};
use crate::timed::run_within;

/// How long the storm lasts: far longer than any run may take.
const STORM: Duration = Duration::from_secs(600);

/// Returns 429 `QuotaExceededError` to every request after the `after`-th one, for [`STORM`]
/// from the first such request.
fn storm_after(after: u64) -> FaultPolicy {
    let started: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    FaultPolicy::from_fn(move |info| {
        if info.seq <= after {
            return Fault::None;
        }
        let now = Instant::now();
        let began = *started.lock().unwrap().get_or_insert(now);
        if now.duration_since(began) < STORM {
            Fault::QUOTA_EXCEEDED
        } else {
            Fault::None
        }
    })
}

/// Returns 429 to every request for `length` from the first one, then lets them through.
fn storm_for(length: Duration) -> (FaultPolicy, Arc<AtomicU64>) {
    let throttled = Arc::new(AtomicU64::new(0));
    let counter = throttled.clone();
    let started: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let policy = FaultPolicy::from_fn(move |_| {
        let now = Instant::now();
        let began = *started.lock().unwrap().get_or_insert(now);
        if now.duration_since(began) < length {
            counter.fetch_add(1, Ordering::Relaxed);
            Fault::QUOTA_EXCEEDED
        } else {
            Fault::None
        }
    });
    (policy, throttled)
}

struct Work {
    dir: tempfile::TempDir,
    ips: Vec<String>,
    input: PathBuf,
}

impl Work {
    fn new(count: usize) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let ips = support::public_ips(80, count);
        let input = support::write_list(&dir.path().join("ips.txt"), &ips);
        Work { dir, ips, input }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `enrich` into `out` with the shared cache file of this workspace.
    fn enrich(&self, server: &FakeVt, out: &Path) -> Command {
        let mut command = support::vt_enrich();
        command
            .env("VT_API_KEY", TEST_KEY)
            .arg("enrich")
            .arg(&self.input)
            .arg("-o")
            .arg(out)
            .arg("--cache")
            .arg(self.path("cache.sqlite"))
            .args(["--api-url", &server.url()])
            .args([
                "--connect-timeout",
                "2",
                "--read-timeout",
                "2",
                "--progress",
                "none",
            ]);
        command
    }
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

#[test]
fn storm_stops_after_a_handful_of_requests() {
    let server = FakeVt::start(FakeVtConfig::default().with_faults(storm_after(0)));
    let work = Work::new(200);
    let out = work.path("out.parquet");
    let summary = work.path("summary.json");

    let started = Instant::now();
    let output = run_within(
        work.enrich(&server, &out)
            .args(["--profile", "unlimited", "--concurrency", "8"])
            .args(["--backoff-base", "0.05", "--quota-probe-window", "2"])
            .arg("--summary-json")
            .arg(&summary),
        Duration::from_secs(60),
    );
    let elapsed = started.elapsed();
    assert_exit(&output, 3);

    // The first request goes out alone; then one probe at a time at 0.05, 0.15, 0.35, 0.75,
    // 1.55 and 2 s after the first 429.
    let requests = server.stats().total_requests;
    assert!(requests <= 10, "{requests} requests");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    let batch = read_parquet(&out);
    assert_eq!(batch.num_rows(), work.ips.len());
    assert_eq!(count_status(&batch, "quota_exhausted"), work.ips.len());
    let codes = strings(&batch, "error_code");
    assert!(
        codes
            .iter()
            .all(|code| code.as_deref() == Some("QuotaExceededError"))
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("QuotaExceededError"), "{stderr}");
    assert!(stderr.contains("00:00 UTC"), "{stderr}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 3, "{json}");
    assert_eq!(json["requests"], requests, "{json}");
}

#[test]
fn storm_shorter_than_the_window_is_waited_out() {
    let (policy, throttled) = storm_for(Duration::from_millis(1500));
    let server = FakeVt::start(FakeVtConfig::default().with_faults(policy));
    let work = Work::new(60);
    let out = work.path("out.parquet");

    let output = run_within(
        work.enrich(&server, &out)
            .args(["--profile", "unlimited", "--concurrency", "8"])
            .args(["--backoff-base", "0.05", "--quota-probe-window", "10"]),
        Duration::from_secs(60),
    );
    assert_exit(&output, 0);

    let stats = server.stats();
    assert!(throttled.load(Ordering::Relaxed) > 0);
    let batch = read_parquet(&out);
    assert_eq!(count_status(&batch, "ok"), work.ips.len());
    for ip in &work.ips {
        assert_eq!(stats.successes(ip), 1, "{ip}");
    }
    // One probe at a time during the storm: the 429s stay few.
    assert!(stats.status_count(429) <= 10, "{:?}", stats.status_counts);
}

#[test]
fn rerun_after_storm_fetches_the_rest() {
    let work = Work::new(40);

    // Night one: 15 answers, then 429 for the rest of the night.
    let stormy = FakeVt::start(FakeVtConfig::default().with_faults(storm_after(15)));
    let first = work.path("night1.parquet");
    let output = run_within(
        work.enrich(&stormy, &first)
            .args(["--profile", "unlimited", "--concurrency", "1"])
            .args(["--backoff-base", "0.05", "--quota-probe-window", "1"]),
        Duration::from_secs(60),
    );
    assert_exit(&output, 3);
    let batch = read_parquet(&first);
    assert_eq!(count_status(&batch, "ok"), 15);
    assert_eq!(count_status(&batch, "quota_exhausted"), 25);

    // Night two, quota back: only the 25 missing addresses cost a request. The cache is
    // keyed by API root, so the server comes back on the same port.
    let port = stormy.address().port();
    drop(stormy);
    let calm = FakeVt::start(FakeVtConfig::default().with_port(port));
    let second = work.path("night2.parquet");
    let output = run_within(
        work.enrich(&calm, &second).args(["--profile", "unlimited"]),
        Duration::from_secs(60),
    );
    assert_exit(&output, 0);
    assert_eq!(calm.stats().total_requests, 25);

    // The combined answer equals a clean run with no cache.
    let clean_server = FakeVt::start(FakeVtConfig::default());
    let clean = work.path("clean.parquet");
    let output = run_within(
        work.enrich(&clean_server, &clean)
            .args(["--profile", "unlimited", "--no-cache"]),
        Duration::from_secs(60),
    );
    assert_exit(&output, 0);
    let ignore = ["fetched_at", "source"];
    assert_eq!(
        without_columns(&read_parquet(&second), &ignore),
        without_columns(&read_parquet(&clean), &ignore)
    );
}

/// Runs the default 60-second probe window against a ten-minute storm and prints the figures.
fn storm_by_hand(profile: &str) {
    let server = FakeVt::start(FakeVtConfig::default().with_faults(storm_after(0)));
    let work = Work::new(500);
    let out = work.path("out.parquet");

    let started = Instant::now();
    let output = run_within(
        work.enrich(&server, &out).args(["--profile", profile]),
        Duration::from_secs(300),
    );
    let elapsed = started.elapsed();
    assert_exit(&output, 3);

    let stats = server.stats();
    let batch = read_parquet(&out);
    assert_eq!(count_status(&batch, "quota_exhausted"), work.ips.len());
    let offsets: Vec<String> = stats
        .arrivals
        .iter()
        .map(|at| format!("{:.1}", at.duration_since(stats.arrivals[0]).as_secs_f64()))
        .collect();
    println!(
        "storm profile={profile}: addresses={} requests={} request_offsets_s=[{}] wall={:.1}s",
        work.ips.len(),
        stats.total_requests,
        offsets.join(", "),
        elapsed.as_secs_f64()
    );
    assert!(
        stats.total_requests <= 10,
        "{} requests",
        stats.total_requests
    );
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
}

#[test]
#[ignore = "takes about a minute; run by hand for the reliability page"]
fn storm_by_hand_unlimited_profile() {
    storm_by_hand("unlimited");
}

#[test]
#[ignore = "takes about a minute; run by hand for the reliability page"]
fn storm_by_hand_public_profile() {
    storm_by_hand("public");
}
