//! Fault matrix: one run per kind of injected fault, and one with all of them, each compared
//! with a clean run of the same input over real HTTP against the fake VirusTotal server.
//!
//! Every faulty run must exit 0 and fetch each address successfully exactly once (the
//! server's per-address count of delivered documents). It must send nothing for an address
//! after its document arrived, and write the same rows as the clean run, `fetched_at` and
//! `source` aside.
//!
//! CI runs 120 addresses per row. `FAULT_MATRIX_ADDRESSES=5000 cargo test --release --test
//! it fault_matrix -- --nocapture --test-threads 1` runs the large counts and prints one
//! `fault-matrix` line of figures per row.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use crate::fake_vt::{FakeVt, FakeVtConfig, Fault, FaultPolicy, FaultRates, Stats, TEST_KEY};
use crate::support::{self, describe, read_parquet, strings, without_columns};
use crate::timed::run_within;

/// Addresses per row, unless `FAULT_MATRIX_ADDRESSES` sets another number.
const DEFAULT_ADDRESSES: usize = 120;
/// Retries per address. At the combined fault rate of about 26% per attempt, the chance that
/// all 11 attempts of one address fail is 0.26^11, about 4 in 10 million.
const MAX_RETRIES: u32 = 10;
/// Read timeout of the faulty runs; stalls last longer, so each one is a timeout.
const READ_TIMEOUT_SECS: &str = "0.5";
const STALL: Duration = Duration::from_secs(3);
/// Seed of the fault choice: the same seed gives the same faults on every machine.
const SEED: u64 = 20_261_204;

fn address_count() -> usize {
    std::env::var("FAULT_MATRIX_ADDRESSES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_ADDRESSES)
}

/// The input of one row: public addresses, some of them unknown to the server, plus the
/// values the input stage settles without a request.
struct Input {
    dir: tempfile::TempDir,
    path: PathBuf,
    /// Public addresses, in input order.
    public: Vec<String>,
    /// The public addresses for which the server returns 404 `NotFoundError`.
    not_found: HashSet<String>,
}

impl Input {
    fn new(block: usize) -> Input {
        let dir = tempfile::tempdir().unwrap();
        let public = support::public_ips(block, address_count());
        let not_found: HashSet<String> = public.iter().step_by(17).cloned().collect();

        let mut lines = public.clone();
        // A duplicate, a private address and a malformed value: each must keep its status.
        lines.insert(3, public[0].clone());
        lines.insert(5, "10.1.2.3".to_string());
        lines.insert(7, "010.1.2.3".to_string());
        let path = support::write_list(&dir.path().join("ips.txt"), &lines);
        Input {
            dir,
            path,
            public,
            not_found,
        }
    }

    fn server(&self, faults: FaultPolicy) -> FakeVt {
        let mut config = FakeVtConfig::default().with_faults(faults);
        for ip in &self.not_found {
            config = config.with_not_found(ip);
        }
        FakeVt::start(config)
    }

    /// Runs `enrich` against `server` into `<name>.parquet`, with a fresh cache file.
    fn run(&self, server: &FakeVt, name: &str) -> Run {
        let out = self.dir.path().join(format!("{name}.parquet"));
        let mut command = enrich(
            server,
            &self.path,
            &out,
            &self.dir.path().join(format!("{name}.sqlite")),
        );
        let limit = Duration::from_secs(60) + Duration::from_millis(50) * address_count() as u32;
        let started = Instant::now();
        let output = run_within(&mut command, limit);
        Run {
            elapsed: started.elapsed(),
            engines: out.with_extension("engines.parquet"),
            out,
            output,
        }
    }
}

/// `enrich` with small retry and timeout settings so the faults cost little time.
fn enrich(server: &FakeVt, input: &Path, out: &Path, cache: &Path) -> Command {
    let mut command = support::vt_enrich();
    command
        .env("VT_API_KEY", TEST_KEY)
        .arg("enrich")
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(["--api-url", &server.url(), "--profile", "unlimited"])
        .args([
            "--concurrency",
            "8",
            "--max-retries",
            &MAX_RETRIES.to_string(),
        ])
        .args(["--backoff-base", "0.01", "--backoff-max", "0.05"])
        .args([
            "--connect-timeout",
            "2",
            "--read-timeout",
            READ_TIMEOUT_SECS,
        ])
        .args(["--quota-probe-window", "10", "--progress", "none"]);
    command
}

struct Run {
    out: PathBuf,
    engines: PathBuf,
    output: Output,
    elapsed: Duration,
}

impl Run {
    fn assert_done(&self) {
        assert_eq!(
            self.output.status.code(),
            Some(0),
            "{}",
            describe(&self.output)
        );
    }

    /// Returns the main table without the columns that differ between two correct runs.
    fn rows(&self) -> RecordBatch {
        without_columns(&read_parquet(&self.out), &["fetched_at", "source"])
    }

    fn engine_rows(&self) -> RecordBatch {
        read_parquet(&self.engines)
    }
}

/// Runs the clean and the faulty run of one row and checks every property of the matrix.
/// Returns the faulty server's counters for checks of its own.
fn check_row(name: &str, block: usize, faults: FaultPolicy, expected_kinds: &[&str]) -> Stats {
    let input = Input::new(block);

    let clean_server = input.server(FaultPolicy::none());
    let clean = input.run(&clean_server, "clean");
    clean.assert_done();
    check_clean_statuses(&input, &clean);

    let faulty_server = input.server(faults);
    let faulty = input.run(&faulty_server, "faulty");
    faulty.assert_done();
    let stats = faulty_server.stats();

    for kind in expected_kinds {
        assert!(
            stats.faults.get(kind).copied().unwrap_or(0) > 0,
            "{name}: no `{kind}` fault was injected: {:?}",
            stats.faults
        );
    }
    check_fetched_once(name, &input, &stats);
    assert_eq!(
        faulty.rows(),
        clean.rows(),
        "{name}: rows differ from the clean run"
    );
    assert_eq!(
        faulty.engine_rows(),
        clean.engine_rows(),
        "{name}: engine rows differ from the clean run"
    );

    // One line of figures per row, for the reliability page (visible with --nocapture).
    println!(
        "fault-matrix {name}: addresses={} requests={} faults={:?} statuses={:?} elapsed={:.2}s clean={:.2}s",
        input.public.len(),
        stats.total_requests,
        stats.faults,
        stats.status_counts,
        faulty.elapsed.as_secs_f64(),
        clean.elapsed.as_secs_f64(),
    );
    stats
}

/// Checks that the clean run gave each value its correct status, so that equality with it
/// means correctness and not only consistency.
fn check_clean_statuses(input: &Input, clean: &Run) {
    let batch = read_parquet(&clean.out);
    let by_ip: HashMap<String, String> = strings(&batch, "ip")
        .into_iter()
        .zip(strings(&batch, "status"))
        .map(|(ip, status)| (ip.unwrap(), status.unwrap()))
        .collect();
    assert_eq!(batch.num_rows(), input.public.len() + 2);
    for ip in &input.public {
        let expected = if input.not_found.contains(ip) {
            "not_found"
        } else {
            "ok"
        };
        assert_eq!(by_ip[ip], expected, "{ip}");
    }
    assert_eq!(by_ip["10.1.2.3"], "skipped");
    assert_eq!(by_ip["010.1.2.3"], "invalid");
}

/// Checks that every known address got its document exactly once and that nothing was sent
/// for an address after its final response arrived.
fn check_fetched_once(name: &str, input: &Input, stats: &Stats) {
    assert_eq!(
        stats.unrecorded_requests, 0,
        "{name}: raise max_recorded_requests"
    );
    for ip in &input.public {
        let expected = if input.not_found.contains(ip) { 0 } else { 1 };
        assert_eq!(
            stats.successes(ip),
            expected,
            "{name}: documents delivered for {ip}"
        );
    }

    let mut answered: HashSet<&str> = HashSet::new();
    for request in &stats.requests {
        let Some(ip) = request.ip.as_deref() else {
            continue;
        };
        assert!(
            !answered.contains(ip),
            "{name}: request {} for {ip} after its final answer was delivered",
            request.seq
        );
        let final_answer = request.delivered
            && request.fault == Fault::None
            && matches!(request.status, Some(200 | 404));
        if final_answer {
            answered.insert(ip);
        }
    }
    assert_eq!(
        answered.len(),
        input.public.len(),
        "{name}: addresses answered"
    );
}

/// Returns rates with only the given field set, on every attempt.
fn rates(set: impl FnOnce(&mut FaultRates)) -> FaultRates {
    let mut rates = FaultRates {
        stall_for: STALL,
        ..FaultRates::default()
    };
    set(&mut rates);
    rates
}

/// Returns 429 `TooManyRequestsError` to every request for `length` from the first request whose
/// sequence number reaches each of `starts`, then lets requests through again.
fn bursts(starts: Vec<u64>, length: Duration, then: FaultPolicy) -> FaultPolicy {
    let begun: Mutex<Vec<Option<Instant>>> = Mutex::new(vec![None; starts.len()]);
    FaultPolicy::from_fn(move |info| {
        let now = Instant::now();
        let mut begun = begun.lock().unwrap();
        for (start, began) in starts.iter().zip(begun.iter_mut()) {
            if info.seq >= *start {
                let at = *began.get_or_insert(now);
                if now.duration_since(at) < length {
                    return Fault::TOO_MANY_REQUESTS;
                }
            }
        }
        then.decide(info)
    })
}

/// Two bursts of 429, a quarter and two thirds of the way through the requests.
fn two_bursts(then: FaultPolicy) -> FaultPolicy {
    let count = address_count() as u64;
    bursts(
        vec![count / 4, count * 2 / 3],
        Duration::from_millis(300),
        then,
    )
}

#[test]
fn fault_matrix_server_errors() {
    let policy = FaultPolicy::rates(SEED, rates(|r| r.server_error = 0.10));
    let stats = check_row("5xx 10%", 70, policy, &["status"]);
    for status in [500, 502, 503, 504] {
        assert!(
            stats.status_count(status) > 0,
            "no {status}: {:?}",
            stats.status_counts
        );
    }
}

#[test]
fn fault_matrix_connection_resets() {
    let policy = FaultPolicy::rates(SEED, rates(|r| r.reset = 0.05));
    check_row("resets 5%", 71, policy, &["reset"]);
}

#[test]
fn fault_matrix_truncated_bodies() {
    let policy = FaultPolicy::rates(SEED, rates(|r| r.truncated = 0.05));
    check_row("truncated 5%", 72, policy, &["truncated"]);
}

#[test]
fn fault_matrix_garbage_bodies() {
    let policy = FaultPolicy::rates(SEED, rates(|r| r.garbage = 0.05));
    check_row("garbage 5%", 73, policy, &["garbage"]);
}

#[test]
fn fault_matrix_stalls() {
    let policy = FaultPolicy::rates(SEED, rates(|r| r.stall = 0.01));
    check_row("stalls 1%", 74, policy, &["stall"]);
}

#[test]
fn fault_matrix_429_bursts() {
    let stats = check_row(
        "429 bursts",
        75,
        two_bursts(FaultPolicy::none()),
        &["status"],
    );
    assert!(stats.status_count(429) > 0, "{:?}", stats.status_counts);
}

#[test]
fn fault_matrix_all_at_once() {
    let mixed = FaultPolicy::rates(
        SEED,
        rates(|r| {
            r.server_error = 0.10;
            r.reset = 0.05;
            r.truncated = 0.05;
            r.garbage = 0.05;
            r.stall = 0.01;
        }),
    );
    let stats = check_row(
        "all at once",
        76,
        two_bursts(mixed),
        &["status", "reset", "truncated", "garbage", "stall"],
    );
    assert!(stats.status_count(429) > 0, "{:?}", stats.status_counts);
    assert!(stats.status_count(503) > 0, "{:?}", stats.status_counts);
}
