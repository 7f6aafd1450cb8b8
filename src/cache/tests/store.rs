//! Answers: round trips, expiry, keys, export, prune and stats.

use std::net::IpAddr;
use std::time::Duration;

use chrono::TimeDelta;

use super::{at, sample_document, temp_cache_path};
use crate::cache::{Cache, CacheError, CachedAnswer, CachedStatus, Reservation};

const API: &str = "https://www.virustotal.com/api/v3";
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid test address")
}

#[test]
fn put_get_round_trip_ok() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.10");
    let now = at(2025, 3, 10, 12, 0, 0);
    let answer = CachedAnswer::ok(sample_document(&address), now);

    cache.put(API, &address, &answer).unwrap();
    let found = cache.get(API, &address, WEEK, now).unwrap();

    assert_eq!(found, Some(answer));
}

#[test]
fn put_get_round_trip_not_found() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("198.51.100.7");
    let now = at(2025, 3, 10, 12, 0, 0);
    let answer = CachedAnswer::not_found("NotFoundError", "Resource not found.", now);

    cache.put(API, &address, &answer).unwrap();
    let found = cache.get(API, &address, WEEK, now).unwrap().unwrap();

    assert_eq!(found.status, CachedStatus::NotFound);
    assert_eq!(found.body, None);
    assert_eq!(found.error_code.as_deref(), Some("NotFoundError"));
    assert_eq!(found.error_message.as_deref(), Some("Resource not found."));
    assert_eq!(found.fetched_at, now);
}

#[test]
fn fetched_at_keeps_microseconds() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.11");
    let fetched_at = at(2025, 3, 10, 12, 0, 0) + TimeDelta::nanoseconds(123_456_789);

    cache
        .put(API, &address, &CachedAnswer::ok(b"{}".to_vec(), fetched_at))
        .unwrap();
    let found = cache.get(API, &address, WEEK, fetched_at).unwrap().unwrap();

    assert_eq!(
        found.fetched_at,
        at(2025, 3, 10, 12, 0, 0) + TimeDelta::microseconds(123_456)
    );
}

#[test]
fn get_skips_expired_entries() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.12");
    let fetched_at = at(2025, 3, 1, 0, 0, 0);
    cache
        .put(API, &address, &CachedAnswer::ok(b"{}".to_vec(), fetched_at))
        .unwrap();

    let almost_week = fetched_at + TimeDelta::days(7) - TimeDelta::microseconds(1);
    let one_week = fetched_at + TimeDelta::days(7);
    assert!(
        cache
            .get(API, &address, WEEK, almost_week)
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.get(API, &address, WEEK, one_week).unwrap(), None);
    assert_eq!(
        cache
            .get(API, &address, Duration::ZERO, fetched_at)
            .unwrap(),
        None
    );
    // A maximum age beyond chrono's range saturates instead of overflowing.
    assert!(
        cache
            .get(API, &address, Duration::MAX, one_week)
            .unwrap()
            .is_some()
    );
}

#[test]
fn get_misses_unknown_address_and_root() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 1, 0, 0, 0);

    assert_eq!(cache.get(API, &ip("192.0.2.1"), WEEK, now).unwrap(), None);
    cache
        .put(
            API,
            &ip("192.0.2.1"),
            &CachedAnswer::ok(b"{}".to_vec(), now),
        )
        .unwrap();
    assert_eq!(cache.get(API, &ip("192.0.2.2"), WEEK, now).unwrap(), None);
}

#[test]
fn api_urls_are_separate_entries() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.13");
    let now = at(2025, 3, 1, 0, 0, 0);
    let fake = "http://127.0.0.1:8080/api/v3";

    cache
        .put(
            API,
            &address,
            &CachedAnswer::ok(br#"{"from":"real"}"#.to_vec(), now),
        )
        .unwrap();
    assert_eq!(cache.get(fake, &address, WEEK, now).unwrap(), None);

    cache
        .put(
            fake,
            &address,
            &CachedAnswer::ok(br#"{"from":"fake"}"#.to_vec(), now),
        )
        .unwrap();
    let real = cache.get(API, &address, WEEK, now).unwrap().unwrap();
    let faked = cache.get(fake, &address, WEEK, now).unwrap().unwrap();
    assert_eq!(real.body.as_deref(), Some(&br#"{"from":"real"}"#[..]));
    assert_eq!(faked.body.as_deref(), Some(&br#"{"from":"fake"}"#[..]));

    // A trailing slash names the same root.
    let slashed = cache.get(&format!("{API}/"), &address, WEEK, now).unwrap();
    assert_eq!(slashed, Some(real));
}

#[test]
fn ipv6_addresses_are_keys() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 1, 0, 0, 0);
    let v6 = ip("2001:db8::1");
    let v6_other = ip("2001:db8::2");
    let mapped = ip("::ffff:192.0.2.14");
    let v4 = ip("192.0.2.14");

    cache
        .put(API, &v6, &CachedAnswer::ok(sample_document(&v6), now))
        .unwrap();
    cache
        .put(API, &v4, &CachedAnswer::ok(br#"{"v":4}"#.to_vec(), now))
        .unwrap();

    let found = cache.get(API, &v6, WEEK, now).unwrap().unwrap();
    assert_eq!(found.body, Some(sample_document(&v6)));
    // The same address written differently parses to the same key.
    assert!(
        cache
            .get(API, &ip("2001:0db8:0:0::1"), WEEK, now)
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.get(API, &v6_other, WEEK, now).unwrap(), None);
    // An IPv4-mapped IPv6 address is a different key from the IPv4 address.
    assert_eq!(cache.get(API, &mapped, WEEK, now).unwrap(), None);
}

#[test]
fn put_keeps_newest_answer() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.15");
    let older = at(2025, 3, 1, 0, 0, 0);
    let newer = at(2025, 3, 2, 0, 0, 0);

    cache
        .put(
            API,
            &address,
            &CachedAnswer::ok(br#"{"n":1}"#.to_vec(), older),
        )
        .unwrap();
    cache
        .put(
            API,
            &address,
            &CachedAnswer::not_found("NotFoundError", "gone", newer),
        )
        .unwrap();
    cache
        .put(
            API,
            &address,
            &CachedAnswer::ok(br#"{"n":3}"#.to_vec(), older),
        )
        .unwrap();

    let found = cache.get(API, &address, WEEK, newer).unwrap().unwrap();
    assert_eq!(found.status, CachedStatus::NotFound);
    assert_eq!(found.fetched_at, newer);
    assert_eq!(cache.stats_at(newer).unwrap().entries, 1);
}

#[test]
fn put_rejects_ok_without_valid_body() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let address = ip("192.0.2.16");
    let now = at(2025, 3, 1, 0, 0, 0);
    let mut missing_body = CachedAnswer::ok(Vec::new(), now);
    missing_body.body = None;

    let missing = cache.put(API, &address, &missing_body).unwrap_err();
    let truncated = cache
        .put(
            API,
            &address,
            &CachedAnswer::ok(br#"{"data": {"#.to_vec(), now),
        )
        .unwrap_err();

    assert!(
        matches!(missing, CacheError::InvalidAnswer { .. }),
        "{missing}"
    );
    assert!(
        matches!(truncated, CacheError::InvalidAnswer { .. }),
        "{truncated}"
    );
    assert!(truncated.to_string().contains("192.0.2.16"), "{truncated}");
    assert_eq!(cache.get(API, &address, WEEK, now).unwrap(), None);
}

#[test]
fn export_writes_stored_documents() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 1, 0, 0, 0);

    // More than one export batch, pretty-printed documents, one single-line document and
    // one not_found answer that export leaves out.
    let mut expected = Vec::new();
    for index in 0..600u32 {
        let address = IpAddr::from([203, 0, (index >> 8) as u8, index as u8]);
        let document = sample_document(&address);
        cache
            .put(API, &address, &CachedAnswer::ok(document.clone(), now))
            .unwrap();
        expected.push(document);
    }
    let one_line = br#"{"data": {"id": "2001:db8::5", "attributes": {"asn": 1}}}"#.to_vec();
    cache
        .put(
            API,
            &ip("2001:db8::5"),
            &CachedAnswer::ok(one_line.clone(), now),
        )
        .unwrap();
    expected.push(one_line.clone());
    cache
        .put(
            API,
            &ip("2001:db8::6"),
            &CachedAnswer::not_found("NotFoundError", "none", now),
        )
        .unwrap();

    let mut out = Vec::new();
    let written = cache.export(&mut out).unwrap();

    assert_eq!(written, expected.len() as u64);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (line, document) in lines.iter().zip(&expected) {
        let exported: serde_json::Value = serde_json::from_str(line).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(document).unwrap();
        assert_eq!(exported, stored);
    }
    // A document that fits on one line comes out byte for byte.
    assert_eq!(lines.last().unwrap().as_bytes(), one_line.as_slice());
    assert!(text.ends_with('\n'));
}

#[test]
fn export_reports_write_failure() {
    struct ClosedPipe;
    impl std::io::Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 1, 0, 0, 0);
    cache
        .put(
            API,
            &ip("192.0.2.17"),
            &CachedAnswer::ok(b"{}".to_vec(), now),
        )
        .unwrap();

    let err = cache.export(&mut ClosedPipe).unwrap_err();

    assert!(matches!(err, CacheError::ExportWrite { .. }), "{err}");
    let io = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .expect("the I/O error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn prune_removes_only_old_rows() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 31, 0, 0, 0);

    // 2500 old answers (more than one prune batch) and 10 recent ones.
    for index in 0..2500u32 {
        let address = IpAddr::from([10, 1, (index >> 8) as u8, index as u8]);
        let fetched_at = now - TimeDelta::days(30) - TimeDelta::seconds(i64::from(index));
        cache
            .put(
                API,
                &address,
                &CachedAnswer::ok(sample_document(&address), fetched_at),
            )
            .unwrap();
    }
    for index in 0..10u8 {
        let address = IpAddr::from([10, 2, 0, index]);
        cache
            .put(
                API,
                &address,
                &CachedAnswer::ok(sample_document(&address), now - TimeDelta::days(1)),
            )
            .unwrap();
    }
    let before = cache.stats_at(now).unwrap();

    let removed = cache.prune(WEEK, now).unwrap();

    assert_eq!(removed, 2500);
    let after = cache.stats_at(now).unwrap();
    assert_eq!(after.entries, 10);
    assert!(
        cache
            .get(API, &IpAddr::from([10, 2, 0, 3]), WEEK, now)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        cache
            .get(API, &IpAddr::from([10, 1, 0, 3]), Duration::MAX, now)
            .unwrap(),
        None
    );
    assert!(
        after.file_bytes < before.file_bytes + before.wal_bytes,
        "file did not shrink: {before:?} then {after:?}"
    );
    assert_eq!(after.free_bytes, 0);
    assert_eq!(cache.prune(WEEK, now).unwrap(), 0);
}

#[test]
fn stats_counts_entries_and_ledger() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let now = at(2025, 3, 10, 12, 0, 0);
    let documents = [
        sample_document(&ip("192.0.2.20")),
        sample_document(&ip("192.0.2.21")),
    ];
    cache
        .put(
            API,
            &ip("192.0.2.20"),
            &CachedAnswer::ok(documents[0].clone(), now - TimeDelta::days(2)),
        )
        .unwrap();
    cache
        .put(
            API,
            &ip("192.0.2.21"),
            &CachedAnswer::ok(documents[1].clone(), now),
        )
        .unwrap();
    cache
        .put(
            API,
            &ip("192.0.2.22"),
            &CachedAnswer::not_found("NotFoundError", "none", now),
        )
        .unwrap();
    let key = crate::cache::KeyHash::of("test-key");
    let unlimited = crate::cache::Budgets::default();
    for _ in 0..3 {
        assert_eq!(
            cache.reserve_request(&key, now, &unlimited).unwrap(),
            Reservation::Granted
        );
    }
    assert_eq!(
        cache
            .reserve_request(&key, now - TimeDelta::days(1), &unlimited)
            .unwrap(),
        Reservation::Granted
    );

    let stats = cache.stats_at(now).unwrap();

    assert_eq!(stats.path, path);
    assert_eq!(stats.schema_version, 1);
    assert_eq!(stats.entries, 3);
    assert_eq!(stats.ok, 2);
    assert_eq!(stats.not_found, 1);
    assert_eq!(stats.oldest_fetched_at, Some(now - TimeDelta::days(2)));
    assert_eq!(stats.newest_fetched_at, Some(now));
    assert_eq!(
        stats.raw_bytes,
        (documents[0].len() + documents[1].len()) as u64
    );
    assert!(stats.compressed_bytes > 0);
    assert!(stats.compressed_bytes < stats.raw_bytes);
    assert!(stats.file_bytes > 0);
    assert_eq!(stats.ledger.len(), 1);
    assert_eq!(stats.ledger[0].key, key);
    assert_eq!(stats.ledger[0].today, 3);
    assert_eq!(stats.ledger[0].this_month, 4);
}

#[test]
fn stats_of_empty_cache() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();

    let stats = cache.stats().unwrap();

    assert_eq!(stats.entries, 0);
    assert_eq!(stats.oldest_fetched_at, None);
    assert_eq!(stats.newest_fetched_at, None);
    assert_eq!(stats.compressed_bytes, 0);
    assert!(stats.ledger.is_empty());
}
