//! The whole `enrich` command against the fake VirusTotal server on 127.0.0.1.
//!
//! Each iteration runs the release binary as a user would, over 2,000 public addresses, with
//! `--profile unlimited --concurrency 64`: with an instant server and `--no-cache`, with an
//! instant server and a new cache file each run, and with 20 ms of server latency and
//! `--no-cache` (ideal rate 64 / 0.020 s = 3,200 requests/s).
//!
//! ```sh
//! cargo build --release && cargo bench --bench pipeline
//! ```
//!
//! Cargo 1.95 builds the binary for `cargo bench` and sets `CARGO_BIN_EXE_vt-enrich`, which this
//! bench uses when it is set. Otherwise it looks for `target/release/vt-enrich`, which only
//! `cargo build --release` brings up to date. Figures are in `benches/README.md`.

#[path = "../tests/fake_vt/mod.rs"]
mod fake_vt;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use fake_vt::{FakeVt, FakeVtConfig, TEST_KEY};

const ADDRESSES: usize = 2_000;
const CONCURRENCY: &str = "64";

/// Returns the binary that cargo built for this bench, else the release binary next to this
/// bench's `deps/` directory or under the manifest's `target/release`.
///
/// # Panics
///
/// If none exists, with the command that builds it.
fn release_binary() -> PathBuf {
    if let Some(built) = option_env!("CARGO_BIN_EXE_vt-enrich")
        && Path::new(built).is_file()
    {
        return PathBuf::from(built);
    }
    let name = format!("vt-enrich{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Ok(bench) = std::env::current_exe()
        && let Some(profile_dir) = bench.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join(&name));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/release")
            .join(&name),
    );
    let found = candidates.iter().find(|path| path.is_file()).cloned();
    let Some(binary) = found else {
        panic!(
            "the release binary was not found at {candidates:?}; run `cargo build --release` \
             before `cargo bench --bench pipeline`"
        );
    };
    warn_if_stale(&binary);
    binary
}

/// Prints a warning when a file under `src/` is newer than `binary`, because `cargo bench`
/// rebuilds the library but not the binary that this bench runs.
fn warn_if_stale(binary: &Path) {
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let Some(built) = modified(binary) else {
        return;
    };
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut newest = SystemTime::UNIX_EPOCH;
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(time) = modified(&path) {
                newest = newest.max(time);
            }
        }
    }
    if newest > built {
        eprintln!(
            "warning: {} is older than the sources; run `cargo build --release` to measure the \
             current code",
            binary.display()
        );
    }
}

/// Writes `ADDRESSES` distinct public addresses, one per line, none in a special-purpose range.
fn write_address_list(path: &Path) {
    let text: String = (0..ADDRESSES)
        .map(|n| {
            format!(
                "45.{}.{}.{}\n",
                10 + n / 62_500,
                (n / 250) % 250,
                n % 250 + 1
            )
        })
        .collect();
    std::fs::write(path, text).expect("address list written");
}

/// Returns the `enrich` command against `server`, with no user config, proxy or
/// `VT_ENRICH_*` setting from the calling environment. With `cache`, the run uses that cache
/// file (removed before each run by [`run_once`]), otherwise `--no-cache`.
fn enrich_command(
    binary: &Path,
    server: &FakeVt,
    input: &Path,
    output: &Path,
    cache: Option<&Path>,
) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("VT_ENRICH_") || name.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(name);
        }
    }
    command
        .env("VT_API_KEY", TEST_KEY)
        .env("XDG_CONFIG_HOME", "/nonexistent-vt-enrich-bench-config")
        .env_remove("RUST_LOG")
        .arg("enrich")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["--api-url", &server.url()])
        .args(["--profile", "unlimited", "--concurrency", CONCURRENCY]);
    match cache {
        Some(path) => command.arg("--cache").arg(path),
        None => command.arg("--no-cache"),
    };
    command
}

/// Removes a cache file and its WAL and shared-memory files, so every run starts empty.
fn remove_cache(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Runs one enrichment and panics with the program's output unless it succeeds.
fn run_once(command: &mut Command) {
    let output = command.output().expect("the vt-enrich binary starts");
    assert!(
        output.status.success(),
        "vt-enrich exited with {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn enrich_end_to_end(c: &mut Criterion) {
    let binary = release_binary();
    let directory = tempfile::tempdir().expect("temporary directory");
    let input = directory.path().join("ips.txt");
    let output = directory.path().join("out.parquet");
    write_address_list(&input);

    let mut group = c.benchmark_group("enrich_fake_vt");
    // One run of the binary per sample: a run lasts about a second, so criterion's linear
    // sampling would cost minutes.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(ADDRESSES as u64));

    let cache = directory.path().join("cache.sqlite");
    for (latency_ms, cached) in [(0u64, false), (0, true), (20, false)] {
        let mut config = FakeVtConfig::default().with_latency(Duration::from_millis(latency_ms));
        // Only counters are needed; request details would grow by one record per request.
        config.max_recorded_requests = 0;
        let server = FakeVt::start(config);
        let cache = cached.then_some(cache.as_path());
        let mut command = enrich_command(&binary, &server, &input, &output, cache);

        let suffix = if cached { "_new_cache" } else { "" };
        let id = format!("{ADDRESSES}_addresses_latency_{latency_ms}ms{suffix}");
        group.bench_function(id, |b| {
            b.iter(|| {
                // A new cache file each run, so every address is a request.
                if let Some(cache) = cache {
                    remove_cache(cache);
                }
                run_once(&mut command)
            })
        });

        // Every request must have got 200, and the count must be a whole number of runs.
        let stats = server.stats();
        assert_eq!(
            stats.total_requests,
            stats.status_count(200),
            "the fake server answered something other than 200: {:?}",
            stats.status_counts
        );
        assert_eq!(
            stats.total_requests % ADDRESSES as u64,
            0,
            "requests are not a whole number of runs of {ADDRESSES} addresses"
        );
    }
    group.finish();
}

/// Ten samples of one run each, and a warm-up of at least one run.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        // Room for ten runs of about a second, so criterion plans one run per sample.
        .measurement_time(Duration::from_secs(12))
}

criterion_group! {
    name = benches;
    config = config();
    targets = enrich_end_to_end
}
criterion_main!(benches);
