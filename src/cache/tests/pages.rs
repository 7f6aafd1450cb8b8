//! Relationship pages: round trips, keys, expiry, prune, and files written before the table.

use std::net::IpAddr;
use std::time::Duration;

use chrono::TimeDelta;

use super::{at, temp_cache_path};
use crate::cache::{Cache, CacheError, PageForm, PageKey};

const API: &str = "https://www.virustotal.com/api/v3";
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const PAGE: &[u8] = br#"{"data": [{"type": "resolution", "id": "192.0.2.1example.com"}]}"#;

fn key<'a>(ip: &'a IpAddr, cursor: &'a str, page_size: u32) -> PageKey<'a> {
    PageKey {
        ip,
        relationship: "resolutions",
        form: PageForm::Objects,
        cursor,
        page_size,
    }
}

#[test]
fn page_round_trip() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let now = at(2025, 3, 10, 12, 0, 0);

    cache.put_page(API, &key(&ip, "", 10), PAGE, now).unwrap();
    let found = cache.get_page(API, &key(&ip, "", 10), WEEK, now).unwrap();

    let found = found.expect("the page just stored");
    assert_eq!(found.body, PAGE);
    assert_eq!(found.fetched_at, now);
    assert_eq!(cache.stats().unwrap().relationship_pages, 1);
}

#[test]
fn every_key_part_tells_pages_apart() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let other_ip: IpAddr = "192.0.2.2".parse().unwrap();
    let now = at(2025, 3, 10, 12, 0, 0);
    cache.put_page(API, &key(&ip, "", 10), PAGE, now).unwrap();

    let descriptors = PageKey {
        form: PageForm::Descriptors,
        ..key(&ip, "", 10)
    };
    let whois = PageKey {
        relationship: "historical_whois",
        ..key(&ip, "", 10)
    };
    let misses = [
        key(&ip, "abc=", 10),
        key(&ip, "", 12),
        key(&other_ip, "", 10),
        descriptors,
        whois,
    ];
    for miss in &misses {
        assert_eq!(
            cache.get_page(API, miss, WEEK, now).unwrap(),
            None,
            "{miss:?}"
        );
    }
    let other_root = "http://127.0.0.1:9/api/v3";
    assert_eq!(
        cache
            .get_page(other_root, &key(&ip, "", 10), WEEK, now)
            .unwrap(),
        None
    );
    assert!(
        cache
            .get_page(&format!("{API}/"), &key(&ip, "", 10), WEEK, now)
            .unwrap()
            .is_some()
    );
}

#[test]
fn old_pages_expire_and_are_pruned() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let fetched = at(2025, 3, 1, 12, 0, 0);
    cache
        .put_page(API, &key(&ip, "", 10), PAGE, fetched)
        .unwrap();
    cache
        .put_page(
            API,
            &key(&ip, "next", 10),
            PAGE,
            fetched + TimeDelta::days(6),
        )
        .unwrap();

    let now = fetched + TimeDelta::days(8);
    assert_eq!(
        cache.get_page(API, &key(&ip, "", 10), WEEK, now).unwrap(),
        None
    );
    assert!(
        cache
            .get_page(API, &key(&ip, "next", 10), WEEK, now)
            .unwrap()
            .is_some()
    );

    assert_eq!(cache.prune(WEEK, now).unwrap(), 1);
    assert_eq!(cache.stats().unwrap().relationship_pages, 1);
}

#[test]
fn newer_page_wins_and_older_is_ignored() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let now = at(2025, 3, 10, 12, 0, 0);
    let newer = br#"{"data": []}"#;

    cache.put_page(API, &key(&ip, "", 10), PAGE, now).unwrap();
    cache
        .put_page(API, &key(&ip, "", 10), newer, now + TimeDelta::seconds(1))
        .unwrap();
    cache
        .put_page(API, &key(&ip, "", 10), PAGE, now - TimeDelta::seconds(1))
        .unwrap();

    let found = cache
        .get_page(API, &key(&ip, "", 10), WEEK, now + TimeDelta::seconds(2))
        .unwrap()
        .unwrap();
    assert_eq!(found.body, newer);
}

#[test]
fn invalid_json_page_is_rejected() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let result = cache.put_page(
        API,
        &key(&ip, "", 10),
        b"{\"data\": [",
        at(2025, 3, 10, 0, 0, 0),
    );
    assert!(matches!(result, Err(CacheError::InvalidAnswer { .. })));
}

#[test]
fn table_is_created_in_files_written_without_it() {
    let (_dir, path) = temp_cache_path();
    drop(Cache::open(&path).unwrap());
    // A file written before relationships existed: same schema version, no pages table.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX relationship_pages_fetched_at; DROP TABLE relationship_pages;",
        )
        .unwrap();
    }

    let cache = Cache::open(&path).unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let now = at(2025, 3, 10, 12, 0, 0);
    cache.put_page(API, &key(&ip, "", 10), PAGE, now).unwrap();
    assert!(
        cache
            .get_page(API, &key(&ip, "", 10), WEEK, now)
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.stats().unwrap().schema_version, 1);
}
