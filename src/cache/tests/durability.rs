//! The file on disk: reopening, secrets, bad files, concurrent creation and process kills.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::Connection;

use super::{at, sample_document, temp_cache_path};
use crate::cache::{Budgets, Cache, CacheError, CachedAnswer, KeyHash, Reservation};

const API: &str = "https://www.virustotal.com/api/v3";

/// Set in the child process of [`kill_leaves_file_consistent`] to the cache file it writes.
const CHILD_PATH_VAR: &str = "VT_ENRICH_CACHE_TEST_CHILD_PATH";
/// Set in that child to the first address number it writes, so each round adds new rows.
const CHILD_START_VAR: &str = "VT_ENRICH_CACHE_TEST_CHILD_START";

/// Returns the paths of the database file and of its `-wal` and `-shm` files.
fn file_set(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Runs SQLite's own consistency check on the file and returns its first line.
fn integrity_check(path: &Path) -> String {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

fn count_answers(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM answers", [], |row| row.get(0))
        .unwrap()
}

/// Address number `n` of the kill test, in 10.0.0.0/8.
fn child_address(n: u32) -> IpAddr {
    IpAddr::from((10 << 24 | n).to_be_bytes())
}

#[test]
fn data_survives_reopen() {
    let (_dir, path) = temp_cache_path();
    let now = at(2025, 3, 1, 0, 0, 0);
    let address: IpAddr = "192.0.2.30".parse().unwrap();
    let answer = CachedAnswer::ok(sample_document(&address), now);
    let key = KeyHash::of("reopen-key");
    {
        let cache = Cache::open(&path).unwrap();
        cache.put(API, &address, &answer).unwrap();
        cache
            .reserve_request(&key, now, &Budgets::default())
            .unwrap();
    }

    let cache = Cache::open(&path).unwrap();

    assert_eq!(
        cache
            .get(API, &address, Duration::from_secs(3600), now)
            .unwrap(),
        Some(answer)
    );
    assert_eq!(cache.usage(&key, now).unwrap().today, 1);
    assert_eq!(integrity_check(&path), "ok");
}

#[test]
fn file_never_contains_api_key() {
    let (_dir, path) = temp_cache_path();
    let api_key = "3f1c9a7be2d54c8a9b0e6f71d2c3a4b5e6f708192a3b4c5d6e7f8091a2b3c4d5";
    let now = at(2025, 3, 1, 0, 0, 0);
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of(api_key);
    for second in 0..50 {
        cache
            .reserve_request(
                &key,
                now + chrono::TimeDelta::seconds(second),
                &Budgets::default(),
            )
            .unwrap();
    }
    cache
        .put(
            API,
            &"192.0.2.31".parse().unwrap(),
            &CachedAnswer::ok(b"{}".to_vec(), now),
        )
        .unwrap();

    // Scan while the connection is open (the commits are in the WAL) and after it closed.
    assert_files_hold_hash_not_key(&path, api_key, &key);
    drop(cache);
    assert_files_hold_hash_not_key(&path, api_key, &key);
}

fn assert_files_hold_hash_not_key(path: &Path, api_key: &str, key: &KeyHash) {
    let mut hash_seen = false;
    for file in file_set(path) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        assert!(
            !contains(&bytes, api_key.as_bytes()),
            "{} contains the key",
            file.display()
        );
        assert!(
            !contains(&bytes, &api_key.as_bytes()[..16]),
            "{} contains part of the key",
            file.display()
        );
        hash_seen |= contains(&bytes, key.as_str().as_bytes());
    }
    assert!(hash_seen, "the key hash is in none of the files");
}

#[test]
fn garbage_file_is_rejected() {
    let (_dir, path) = temp_cache_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let err = Cache::open(&path).err().expect("garbage must not open");

    assert!(matches!(err, CacheError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("--cache"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file was changed"
    );
}

#[test]
fn foreign_database_is_rejected() {
    let (_dir, path) = temp_cache_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
            .unwrap();
    }

    let err = Cache::open(&path)
        .err()
        .expect("a foreign database must not open");

    assert!(matches!(err, CacheError::ForeignDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    let conn = Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "tables were added to the foreign database");
}

#[test]
fn newer_schema_is_rejected() {
    let (_dir, path) = temp_cache_path();
    drop(Cache::open(&path).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)",
            [],
        )
        .unwrap();
    }

    let err = Cache::open(&path)
        .err()
        .expect("a newer schema must not open");

    assert!(
        matches!(
            err,
            CacheError::NewerSchema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn empty_file_becomes_cache() {
    let (_dir, path) = temp_cache_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();

    let cache = Cache::open(&path).unwrap();

    assert_eq!(cache.stats().unwrap().schema_version, 1);
}

#[test]
fn parent_that_is_a_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("cache.sqlite");

    let err = Cache::open(&path).err().expect("open must fail");

    assert!(matches!(err, CacheError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn concurrent_opens_create_schema_once() {
    let (_dir, path) = temp_cache_path();

    let handles: Vec<Cache> = thread::scope(|scope| {
        let openers: Vec<_> = (0..8).map(|_| scope.spawn(|| Cache::open(&path))).collect();
        openers
            .into_iter()
            .map(|opener| opener.join().unwrap().unwrap())
            .collect()
    });

    let conn = Connection::open(&path).unwrap();
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(versions, 1);
    assert_eq!(handles.len(), 8);
}

/// Child process of [`kill_leaves_file_consistent`]: writes answers and ledger entries in a
/// loop and prints `committed N` after each `put` returns. Does nothing when run directly.
#[test]
#[ignore = "helper process of kill_leaves_file_consistent"]
fn kill_child_writer() {
    let Some(path) = std::env::var_os(CHILD_PATH_VAR) else {
        return;
    };
    let start: u32 = std::env::var(CHILD_START_VAR).unwrap().parse().unwrap();
    let cache = Cache::open(Path::new(&path)).unwrap();
    let key = KeyHash::of("kill-test-key");
    let deadline = Instant::now() + Duration::from_secs(60);

    let mut n = start;
    while Instant::now() < deadline {
        let now = Utc::now();
        let reservation = cache
            .reserve_request(&key, now, &Budgets::default())
            .unwrap();
        assert_eq!(reservation, Reservation::Granted);
        let address = child_address(n);
        cache
            .put(
                API,
                &address,
                &CachedAnswer::ok(sample_document(&address), now),
            )
            .unwrap();
        println!("committed {n}");
        n += 1;
    }
}

#[test]
fn kill_leaves_file_consistent() {
    let (_dir, path) = temp_cache_path();
    drop(Cache::open(&path).unwrap());
    // The harness names tests by module path without the crate name.
    let module = module_path!().split_once("::").unwrap().1;
    let child_test = format!("{module}::kill_child_writer");

    // Kill at different points: soon after the first commit, and after many.
    let mut next_start = 0u32;
    for (round, delay_ms) in [0u64, 7, 40, 150].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                child_test.as_str(),
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PATH_VAR, &path)
            .env(CHILD_START_VAR, next_start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel::<u32>();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness prints `test … ...` before the first output, without a newline.
                if let Some((_, n)) = line.split_once("committed ") {
                    let _ = sender.send(n.trim().parse().unwrap());
                }
            }
        });

        let first = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: the child committed nothing"));
        assert_eq!(first, next_start);
        thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let last_committed = receiver.try_iter().last().unwrap_or(first);

        assert_eq!(integrity_check(&path), "ok", "round {round}");
        let cache = Cache::open(&path).unwrap();
        let now = Utc::now();
        for n in next_start..=last_committed {
            let found = cache
                .get(API, &child_address(n), Duration::from_secs(3600), now)
                .unwrap();
            assert!(
                found.is_some(),
                "round {round}: committed answer {n} is missing"
            );
        }
        // At most one put was in flight when the kill came; it either committed or not.
        let rows = count_answers(&path) as u32;
        assert!(
            rows == last_committed + 1 || rows == last_committed + 2,
            "round {round}: {rows} rows after committing up to {last_committed}"
        );
        next_start = rows;
    }
}
