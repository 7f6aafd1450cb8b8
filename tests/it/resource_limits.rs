//! Resource limits through the binary: a full disk for the output, an unwritable cache, a
//! read-only output directory, stdout closed early, and an input without read permission.
//!
//! Root ignores permission bits, and these tests run as root in CI. The permission cases
//! therefore run the binary as `nobody` (uid 65534) when the test runs as root, so the kernel
//! enforces the bits for the child. Each also has a variant the kernel enforces for root too: a
//! path under a regular file, which fails with `ENOTDIR`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::child::{Watchdog, output_within, wait_or_kill};
use crate::fake_vt::{FakeVt, FakeVtConfig, TEST_KEY, expected_document};
use crate::support::{
    describe, enrich_command, public_ips, read_parquet, vt_enrich_at, write_list,
};

/// Maximum time one run of this file may take before its child is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The uid and gid of `nobody` on Linux, which the permission cases run as under root.
const NOBODY: u32 = 65_534;

/// Largest file the child may write in the disk-full test, in bytes. The cache files stay
/// below it: SQLite's WAL file peaks near 4 MiB, its default checkpoint size of 1000 pages,
/// and the documents are small once compressed. The CSV output does not, because each
/// document carries a long, repetitive whois text that is written out in full. The test
/// checks both sizes, so a change in either is reported as such.
const FILE_SIZE_LIMIT: u64 = 8 << 20;

/// Addresses of the disk-full test, and the length of the whois text of each, in bytes.
const FULL_DISK_ADDRESSES: usize = 100;
const LONG_WHOIS_BYTES: usize = 160 * 1024;

fn euid_is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Makes a temporary directory that `nobody` may use, with the given mode.
fn shared_dir(mode: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// Returns a path to the binary that `nobody` can run: the built one when every directory
/// above it lets others in, or else a copy in a world-readable temporary directory.
fn binary_for_nobody() -> &'static Path {
    static COPY: OnceLock<(Option<tempfile::TempDir>, PathBuf)> = OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_vt-enrich"));
        let reachable = built.ancestors().skip(1).all(|dir| {
            dir.metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
        });
        if reachable {
            return (None, built);
        }
        let dir = shared_dir(0o755);
        let copy = dir.path().join("vt-enrich");
        std::fs::copy(&built, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        (Some(dir), copy)
    });
    path
}

/// Returns a command that runs the binary as `nobody` when the test runs as root, so that
/// permission bits apply to it, and as the current user otherwise.
fn unprivileged() -> Command {
    if !euid_is_root() {
        return crate::support::vt_enrich();
    }
    let mut command = vt_enrich_at(binary_for_nobody());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (setgroups, setgid, setuid).
    unsafe {
        command.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Runs `command`, or returns `None` when the child cannot drop root privileges here, after
/// saying that the case was skipped.
fn run_unprivileged(command: &mut Command, case: &str) -> Option<Output> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    match command.spawn() {
        Ok(child) => {
            let watchdog = Watchdog::new(child.id(), RUN_TIMEOUT);
            let output = child.wait_with_output().unwrap();
            assert!(!watchdog.disarm(), "{case}: killed after {RUN_TIMEOUT:?}");
            Some(output)
        }
        Err(error) if euid_is_root() => {
            eprintln!("skipped {case}: cannot run the binary as nobody here: {error}");
            None
        }
        Err(error) => panic!("{case}: the binary did not start: {error}"),
    }
}

/// Adds `enrich` arguments against `server` with fast retries.
fn enrich_args(command: &mut Command, server: &FakeVt, input: &Path, out: &Path) {
    command
        .env("VT_API_KEY", TEST_KEY)
        .arg("enrich")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--api-url", &server.url(), "--profile", "unlimited"])
        .args(["--backoff-base", "0.01", "--backoff-max", "0.05"]);
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Returns the names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Returns the size of the largest of the cache file and its WAL and shared-memory files,
/// since `RLIMIT_FSIZE` limits each file on its own.
fn largest_cache_file(cache: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let path = PathBuf::from(format!("{}{suffix}", cache.display()));
            path.metadata().map_or(0, |m| m.len())
        })
        .max()
        .unwrap_or(0)
}

/// Checks the cache file with SQLite's own integrity check and returns its number of answers.
fn check_cache(cache: &Path) -> i64 {
    let connection = rusqlite::Connection::open(cache).unwrap();
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    connection
        .query_row("SELECT count(*) FROM answers", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn output_disk_full_fails_cleanly() {
    let ips = public_ips(140, FULL_DISK_ADDRESSES);
    let mut config = FakeVtConfig::default();
    for ip in &ips {
        let mut document = expected_document(ip);
        let line = format!("NetRange: {ip}\n");
        let whois = line.repeat(LONG_WHOIS_BYTES / line.len());
        document["data"]["attributes"]["whois"] = whois.into();
        config = config.with_document(ip, serde_json::to_vec(&document).unwrap());
    }
    let server = FakeVt::start(config);
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &ips);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("enriched.csv");
    let cache = dir.path().join("cache.sqlite");

    // Writes past the limit fail with EFBIG, as on a full disk, instead of raising SIGXFSZ.
    let mut command = enrich_command(&server, &input, &out, &cache, 8);
    unsafe {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (setrlimit, signal).
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: FILE_SIZE_LIMIT,
                rlim_max: FILE_SIZE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let output = output_within(&mut command, RUN_TIMEOUT);
    let message = stderr(&output);

    assert_exit(&output, 1);
    assert!(message.contains("cannot write the output"), "{message}");
    assert!(message.contains("enriched"), "{message}");
    assert!(message.contains("File too large"), "{message}");
    assert!(
        message.contains("hint: the file system is full"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(
        names_in(&out_dir),
        Vec::<String>::new(),
        "no file, partial or temporary"
    );
    assert_eq!(server.stats().total_requests, ips.len() as u64);
    let largest = largest_cache_file(&cache);
    assert!(
        largest < FILE_SIZE_LIMIT,
        "a cache file reached the limit: {largest} bytes"
    );
    assert_eq!(check_cache(&cache), ips.len() as i64);

    // Without the limit the same command finishes from the cache alone.
    server.reset_stats();
    let output = output_within(
        &mut enrich_command(&server, &input, &out, &cache, 8),
        RUN_TIMEOUT,
    );
    assert_exit(&output, 0);
    assert_eq!(server.stats().total_requests, 0);
    let written = out.metadata().unwrap().len();
    assert!(
        written > FILE_SIZE_LIMIT,
        "the output is only {written} bytes"
    );
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers = reader.headers().unwrap().clone();
    let status = headers.iter().position(|name| name == "status").unwrap();
    let source = headers.iter().position(|name| name == "source").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), ips.len());
    assert!(
        rows.iter()
            .all(|row| &row[status] == "ok" && &row[source] == "cache")
    );
}

#[test]
fn cache_under_file_is_usage_error() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(141, 3));
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let out = dir.path().join("out.parquet");

    let cache = blocker.join("cache.sqlite");
    let output = output_within(
        &mut enrich_command(&server, &input, &out, &cache, 4),
        RUN_TIMEOUT,
    );
    let message = stderr(&output);

    assert_exit(&output, 2);
    assert!(message.contains("not-a-dir/cache.sqlite"), "{message}");
    assert!(message.contains("--no-cache"), "{message}");
    assert!(!out.exists());
    assert_eq!(server.stats().total_requests, 0);
}

#[test]
fn unwritable_cache_is_a_usage_error() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = shared_dir(0o777);
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(142, 3));
    let out = dir.path().join("out.parquet");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();

    // A new cache file in a directory without write permission.
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut command = unprivileged();
    enrich_args(&mut command, &server, &input, &out);
    command.arg("--cache").arg(locked.join("cache.sqlite"));
    let Some(output) = run_unprivileged(&mut command, "new cache in a read-only directory") else {
        return;
    };
    let message = stderr(&output);
    assert_exit(&output, 2);
    assert!(message.contains("locked/cache.sqlite"), "{message}");
    assert!(message.contains("--no-cache"), "{message}");

    // An existing cache file without write permission.
    let read_only = dir.path().join("read-only.sqlite");
    drop(rusqlite::Connection::open(&read_only).unwrap());
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut command = unprivileged();
    enrich_args(&mut command, &server, &input, &out);
    command.arg("--cache").arg(&read_only);
    let output = run_unprivileged(&mut command, "read-only cache file").unwrap();
    let message = stderr(&output);
    assert_exit(&output, 2);
    assert!(message.contains("read-only.sqlite"), "{message}");
    assert!(message.contains("read-only"), "{message}");

    assert!(!out.exists());
    assert_eq!(server.stats().total_requests, 0);
}

#[test]
fn read_only_output_directory_fails_early() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = shared_dir(0o777);
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(143, 3));
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = out_dir.join("enriched.parquet");

    let mut command = unprivileged();
    enrich_args(&mut command, &server, &input, &out);
    command.arg("--no-cache");
    if let Some(output) = run_unprivileged(&mut command, "read-only output directory") {
        let message = stderr(&output);
        assert_exit(&output, 1);
        assert!(message.contains("cannot open the output"), "{message}");
        assert!(message.contains("out/enriched.parquet"), "{message}");
        assert!(message.contains("Permission denied"), "{message}");
        assert_eq!(names_in(&out_dir), Vec::<String>::new());
    }

    // The same for root: a directory that is a regular file.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let mut command = crate::support::vt_enrich();
    enrich_args(
        &mut command,
        &server,
        &input,
        &blocker.join("enriched.parquet"),
    );
    let output = output_within(command.arg("--no-cache"), RUN_TIMEOUT);
    let message = stderr(&output);
    assert_exit(&output, 1);
    assert!(message.contains("not-a-dir/enriched.parquet"), "{message}");
    assert!(message.contains("Not a directory"), "{message}");

    assert_eq!(server.stats().total_requests, 0);
}

#[test]
fn stdout_closed_by_head_is_success() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let ips = public_ips(144, 300);
    let input = write_list(&dir.path().join("ips.txt"), &ips);
    let cache = dir.path().join("cache.sqlite");

    let mut command = enrich_command(&server, &input, Path::new("-"), &cache, 8);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let head = Command::new("head")
        .args(["-n", "1"])
        .stdin(child.stdout.take().unwrap())
        .output()
        .unwrap();
    let stderr_text = crate::child::collect_stderr(&mut child);
    let status = wait_or_kill(&mut child, RUN_TIMEOUT);
    let message = stderr_text.join().unwrap();

    let first_line = String::from_utf8_lossy(&head.stdout);
    assert!(
        first_line.starts_with("ip,ip_version,status"),
        "{first_line}"
    );
    assert_eq!(status.code(), Some(0), "{message}");
    assert!(!message.contains("error"), "{message}");
    assert!(!message.contains("panicked"), "{message}");

    // Every answer was cached before the pipe closed, so a rerun into a file costs nothing.
    assert_eq!(check_cache(&cache), ips.len() as i64);
    server.reset_stats();
    let out = dir.path().join("out.parquet");
    let output = output_within(
        &mut enrich_command(&server, &input, &out, &cache, 8),
        RUN_TIMEOUT,
    );
    assert_exit(&output, 0);
    assert_eq!(server.stats().total_requests, 0);
    assert_eq!(read_parquet(&out).num_rows(), ips.len());
}

#[test]
fn unreadable_input_is_a_usage_error() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = shared_dir(0o777);
    let input = write_list(&dir.path().join("ips.txt"), &public_ips(145, 3));
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = dir.path().join("out.parquet");

    let mut command = unprivileged();
    enrich_args(&mut command, &server, &input, &out);
    command.arg("--no-cache");
    if let Some(output) = run_unprivileged(&mut command, "input without read permission") {
        let message = stderr(&output);
        assert_exit(&output, 2);
        assert!(message.contains("cannot open input `"), "{message}");
        assert!(message.contains("ips.txt"), "{message}");
        assert!(message.contains("Permission denied"), "{message}");
    }

    // The same for root: an input path under a regular file.
    let mut command = crate::support::vt_enrich();
    let under_file = input.join("ips.txt");
    enrich_args(&mut command, &server, &under_file, &out);
    let output = output_within(command.arg("--no-cache"), RUN_TIMEOUT);
    let message = stderr(&output);
    assert_exit(&output, 2);
    assert!(message.contains("ips.txt/ips.txt"), "{message}");
    assert!(message.contains("Not a directory"), "{message}");

    assert!(!out.exists());
    assert_eq!(server.stats().total_requests, 0);
}
