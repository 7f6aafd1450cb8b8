//! The API key never leaves the `x-apikey` header.
//!
//! The tests run the binary at every verbosity, with failures, a rejected key, every output
//! form, the cache commands, `quota` and every key source. Then they scan every byte printed
//! or written for the key and its URL-encoded form.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fake_vt::{FakeVt, FakeVtConfig, FaultPolicy, FaultRates, KeyQuota, RequestRecord};
use crate::support::{self, describe};
use crate::timed::run_within;

/// A key no output could contain by chance. `+` and `=` make its URL-encoded form differ.
const KEY: &str = "vtk-Pr1vate+Key=7c3e9a51d2b84f06aa";
/// [`KEY`] percent-encoded, as it would appear in a URL.
const KEY_URL_ENCODED: &str = "vtk-Pr1vate%2BKey%3D7c3e9a51d2b84f06aa";
const LIMIT: Duration = Duration::from_secs(60);

/// Everything printed or written, by where it came from.
#[derive(Default)]
struct Haystack {
    pieces: Vec<(String, Vec<u8>)>,
}

impl Haystack {
    fn add_output(&mut self, label: &str, output: &Output) {
        self.pieces
            .push((format!("{label}: stdout"), output.stdout.clone()));
        self.pieces
            .push((format!("{label}: stderr"), output.stderr.clone()));
    }

    /// Adds every file under `dir`, recursively.
    fn add_dir(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                self.add_dir(&path);
            } else {
                self.pieces
                    .push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }

    fn assert_no_key(&self) {
        assert!(!self.pieces.is_empty(), "nothing was scanned");
        for (label, bytes) in &self.pieces {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !contains(bytes, KEY.as_bytes()),
                "{label} contains the key:\n{text:.2000}"
            );
            let lower = text.to_ascii_lowercase();
            assert!(
                !lower.contains(&KEY_URL_ENCODED.to_ascii_lowercase()),
                "{label} contains the URL-encoded key"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Checks that the key went only in `x-apikey`, never in the target or another header.
fn assert_key_only_in_header(records: &[RequestRecord], expected_header: Option<&str>) {
    assert!(!records.is_empty());
    for record in records {
        assert_eq!(record.header("x-apikey"), expected_header, "{record:?}");
        let path = record.path.to_ascii_lowercase();
        assert!(!record.path.contains(KEY), "key in target {}", record.path);
        assert!(
            !path.contains(&KEY_URL_ENCODED.to_ascii_lowercase()),
            "{}",
            record.path
        );
        for (name, value) in &record.headers {
            if name != "x-apikey" {
                assert!(!value.contains(KEY), "key in header {name}");
                assert!(
                    !value.contains(KEY_URL_ENCODED),
                    "encoded key in header {name}"
                );
            }
        }
    }
}

/// The directories of a test. `work` receives what the product writes and is scanned whole.
/// `secret` has the config and key files, which contain the key on purpose.
struct Dirs {
    _root: tempfile::TempDir,
    work: PathBuf,
    secret: PathBuf,
    input: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        let secret = root.path().join("secret");
        std::fs::create_dir(&work).unwrap();
        std::fs::create_dir(&secret).unwrap();
        let mut ips = support::public_ips(90, 24);
        ips.push("192.0.2.10".to_string());
        ips.push("not-an-address".to_string());
        let input = support::write_list(&secret.join("ips.txt"), &ips);
        Dirs {
            _root: root,
            work,
            secret,
            input,
        }
    }

    fn work(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    fn cache(&self) -> PathBuf {
        self.work("cache.sqlite")
    }
}

/// A server that accepts [`KEY`], returns 404 for some addresses and faults many attempts:
/// every attempt with `every_attempt`, else only the first one of each address.
fn faulty_server(every_attempt: bool) -> FakeVt {
    let faults = FaultPolicy::rates(
        5,
        FaultRates {
            server_error: 0.3,
            reset: 0.1,
            truncated: 0.1,
            garbage: 0.1,
            faulty_attempts: (!every_attempt).then_some(1),
            ..FaultRates::default()
        },
    );
    FakeVt::start(
        FakeVtConfig::default()
            .with_key(KEY, KeyQuota::unlimited())
            .with_not_found("45.90.0.3")
            .with_faults(faults),
    )
}

/// `enrich` with [`KEY`] in `VT_API_KEY`, the shared cache file and `--include-private`, so
/// the documentation address reaches the server and gets its 404.
fn enrich(dirs: &Dirs, server: &FakeVt, out: &Path) -> Command {
    enrich_cached(dirs, server, out, &dirs.cache())
}

/// [`enrich`] with its own cache file.
fn enrich_cached(dirs: &Dirs, server: &FakeVt, out: &Path, cache: &Path) -> Command {
    let mut command = support::vt_enrich();
    command
        .env("VT_API_KEY", KEY)
        .arg("enrich")
        .arg(&dirs.input)
        .arg("-o")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--include-private")
        .args(["--api-url", &server.url(), "--profile", "unlimited"])
        .args(["--backoff-base", "0.01", "--backoff-max", "0.02"])
        .args(["--connect-timeout", "2", "--read-timeout", "1"]);
    command
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

#[test]
fn api_key_never_leaves_the_header() {
    let dirs = Dirs::new();
    let mut seen = Haystack::default();
    let failing = faulty_server(true);
    let server = faulty_server(false);

    // Every verbosity, with retries that fail (--max-retries 0), CSV and Parquet, a summary.
    // Each run uses a fresh cache so that every one of them sends requests.
    for (index, verbosity) in ["-q", "", "-v", "-vv", "-vvv"].into_iter().enumerate() {
        let extension = if index % 2 == 0 { "csv" } else { "parquet" };
        let out = dirs.work(&format!("run{index}.{extension}"));
        let cache = dirs.work(&format!("cache{index}.sqlite"));
        let mut command = enrich_cached(&dirs, &failing, &out, &cache);
        command
            .args(["--max-retries", "0"])
            .arg("--summary-json")
            .arg(dirs.work(&format!("summary{index}.json")));
        if !verbosity.is_empty() {
            command.arg(verbosity);
        }
        let output = run_within(&mut command, LIMIT);
        assert_exit(&output, 3);
        seen.add_output(&format!("enrich {verbosity}"), &output);
    }

    // Every log line of every crate, dependencies included.
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("trace.csv")).env("RUST_LOG", "trace"),
        LIMIT,
    );
    assert_exit(&output, 0);
    seen.add_output("enrich RUST_LOG=trace", &output);

    // CSV on stdout, served from the same cache.
    let output = run_within(&mut enrich(&dirs, &server, Path::new("-")), LIMIT);
    assert_exit(&output, 0);
    seen.add_output("enrich -o -", &output);

    // The key from a config file and from a key file, with no VT_API_KEY.
    let config = dirs.secret.join("config.toml");
    std::fs::write(
        &config,
        format!("api_key = \"{KEY}\"\nuser_id = \"analyst\"\n"),
    )
    .unwrap();
    let key_file = dirs.secret.join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("config.parquet"))
            .env_remove("VT_API_KEY")
            .arg("--config")
            .arg(&config)
            .args(["--no-cache", "-vvv"]),
        LIMIT,
    );
    assert_exit(&output, 0);
    seen.add_output("enrich with config key", &output);
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("keyfile.parquet"))
            .env_remove("VT_API_KEY")
            .arg("--api-key-file")
            .arg(&key_file)
            .args(["--no-cache", "-vvv"]),
        LIMIT,
    );
    assert_exit(&output, 0);
    seen.add_output("enrich with key file", &output);

    // The cache commands.
    for args in [
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["export", "-o", "-"],
    ] {
        let output = run_within(
            support::vt_enrich()
                .env("VT_API_KEY", KEY)
                .arg("cache")
                .arg("--cache")
                .arg(dirs.cache())
                .args(&args)
                .arg("-vvv"),
            LIMIT,
        );
        assert_exit(&output, 0);
        seen.add_output(&format!("cache {args:?}"), &output);
    }
    let output = run_within(
        support::vt_enrich()
            .arg("cache")
            .arg("--cache")
            .arg(dirs.cache())
            .arg("export")
            .arg("-o")
            .arg(dirs.work("export.jsonl")),
        LIMIT,
    );
    assert_exit(&output, 0);

    // `quota`, text and JSON, with the user ID from the command line and from the config.
    for extra in [vec!["--user-id", "analyst"], vec!["--json", "--config"]] {
        let mut command = support::vt_enrich();
        command
            .env("VT_API_KEY", KEY)
            .arg("quota")
            .arg("--cache")
            .arg(dirs.cache())
            .args(["--api-url", &server.url(), "-vvv"])
            .args(&extra);
        if extra.contains(&"--config") {
            command.arg(&config).env_remove("VT_API_KEY");
        }
        let output = run_within(&mut command, LIMIT);
        assert_exit(&output, 0);
        seen.add_output(&format!("quota {extra:?}"), &output);
    }

    // Everything the servers saw carried the key in x-apikey only.
    assert_key_only_in_header(&failing.stats().requests, Some(KEY));
    let records = server.stats().requests;
    assert!(
        records
            .iter()
            .any(|record| record.path.contains("/users/analyst/"))
    );
    assert_key_only_in_header(&records, Some(KEY));

    seen.add_dir(&dirs.work);
    seen.assert_no_key();
}

#[test]
fn rejected_key_and_bad_keys_are_never_echoed() {
    let dirs = Dirs::new();
    let mut seen = Haystack::default();
    // This server accepts only its own test key, so KEY gets 401 WrongCredentialsError.
    let server = FakeVt::start(FakeVtConfig::default());

    for verbosity in ["-q", "-vvv"] {
        let output = run_within(
            enrich(&dirs, &server, &dirs.work("rejected.csv"))
                .arg(verbosity)
                .arg("--summary-json")
                .arg(dirs.work("summary.json")),
            LIMIT,
        );
        assert_exit(&output, 1);
        assert!(String::from_utf8_lossy(&output.stderr).contains("WrongCredentialsError"));
        seen.add_output(&format!("401 {verbosity}"), &output);
    }
    let output = run_within(
        support::vt_enrich().env("VT_API_KEY", KEY).args([
            "quota",
            "--no-cache",
            "--user-id",
            "analyst",
            "--api-url",
            &server.url(),
        ]),
        LIMIT,
    );
    assert_exit(&output, 1);
    seen.add_output("quota 401", &output);
    assert_key_only_in_header(&server.stats().requests, Some(KEY));

    // Keys that fail validation, and a config file whose key line does not parse.
    let spaced = format!("{KEY} trailing");
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("spaced.csv")).env("VT_API_KEY", &spaced),
        LIMIT,
    );
    assert_exit(&output, 2);
    seen.add_output("key with a space", &output);
    let broken = dirs.secret.join("broken.toml");
    std::fs::write(&broken, format!("api_key = \"{KEY}\nconcurrency = 2\n")).unwrap();
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("broken.csv"))
            .env_remove("VT_API_KEY")
            .arg("--config")
            .arg(&broken),
        LIMIT,
    );
    assert_exit(&output, 2);
    seen.add_output("unterminated key in config", &output);
    let wrong_type = dirs.secret.join("wrong-type.toml");
    std::fs::write(&wrong_type, format!("concurrency = \"{KEY}\"\n")).unwrap();
    let output = run_within(
        enrich(&dirs, &server, &dirs.work("type.csv"))
            .arg("--config")
            .arg(&wrong_type),
        LIMIT,
    );
    assert_exit(&output, 2);
    seen.add_output("key in a number setting", &output);

    // Help text, with the key in the environment.
    for command in [
        vec!["--help"],
        vec!["enrich", "--help"],
        vec!["quota", "--help"],
    ] {
        let output = run_within(
            support::vt_enrich().env("VT_API_KEY", KEY).args(&command),
            LIMIT,
        );
        assert_exit(&output, 0);
        seen.add_output(&format!("{command:?}"), &output);
    }

    seen.add_dir(&dirs.work);
    seen.assert_no_key();
}

#[test]
fn cache_write_ahead_log_never_holds_the_key() {
    // A run killed mid-way leaves the -wal and -shm files as SQLite had them.
    let dirs = Dirs::new();
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_key(KEY, KeyQuota::unlimited())
            .with_latency(Duration::from_millis(150)),
    );
    let mut child = enrich(&dirs, &server, &dirs.work("killed.parquet"))
        .args(["--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let wal = dirs.work("cache.sqlite-wal");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stats().successes_per_ip.len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(wal.exists(), "the killed run left no -wal file");
    let mut seen = Haystack::default();
    seen.add_dir(&dirs.work);
    assert!(
        seen.pieces
            .iter()
            .any(|(label, bytes)| label.ends_with("-wal") && !bytes.is_empty())
    );
    seen.assert_no_key();
    assert_key_only_in_header(&server.stats().requests, Some(KEY));
}

#[test]
fn quota_without_user_id_puts_key_in_path() {
    // The documented exception: VirusTotal's quota endpoint takes the key as the user ID, so
    // without --user-id the key is in the request line (still never printed).
    let server = FakeVt::start(FakeVtConfig::default().with_key(KEY, KeyQuota::unlimited()));
    let output = run_within(
        support::vt_enrich().env("VT_API_KEY", KEY).args([
            "quota",
            "--no-cache",
            "-vvv",
            "--api-url",
            &server.url(),
        ]),
        LIMIT,
    );
    assert_exit(&output, 0);

    let records = server.stats().requests;
    assert_eq!(records.len(), 1);
    // `+` and `=` are allowed in a path segment, so the key appears as it is.
    assert!(records[0].path.contains(KEY), "{}", records[0].path);
    let mut seen = Haystack::default();
    seen.add_output("quota without --user-id", &output);
    seen.assert_no_key();
}
