//! Request ledger: budgets per day, month and sliding minute, across handles and threads.

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;

use chrono::TimeDelta;

use super::{at, temp_cache_path};
use crate::cache::{Budgets, Cache, CachedAnswer, KeyHash, Reservation, Usage};

const API: &str = "https://www.virustotal.com/api/v3";

fn per_day(limit: u32) -> Budgets {
    Budgets {
        per_day: Some(limit),
        ..Budgets::default()
    }
}

#[test]
fn key_hash_is_hex_and_hides_key() {
    let hash = KeyHash::of("0123456789abcdef");

    assert_eq!(hash.as_str().len(), 64);
    assert!(
        hash.as_str()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(hash, KeyHash::of("0123456789abcdef"));
    assert_ne!(hash, KeyHash::of("0123456789abcdeF"));
    assert!(!format!("{hash:?}").contains("0123456789abcdef"));
    assert!(format!("{hash:?}").contains(hash.as_str()));
    assert_eq!(hash.to_string(), hash.as_str());
}

#[test]
fn day_budget_spent_then_resets() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("day-key");
    let now = at(2025, 6, 14, 22, 30, 0);

    for attempt in 0..50 {
        let reservation = cache.reserve_request(&key, now, &per_day(50)).unwrap();
        assert_eq!(reservation, Reservation::Granted, "attempt {attempt}");
    }
    let spent = cache.reserve_request(&key, now, &per_day(50)).unwrap();
    assert_eq!(
        spent,
        Reservation::DaySpent {
            limit: 50,
            resets_at: at(2025, 6, 15, 0, 0, 0)
        }
    );
    // A denied request is not counted.
    assert_eq!(cache.usage(&key, now).unwrap().today, 50);

    let last_second = at(2025, 6, 14, 23, 59, 59);
    assert!(matches!(
        cache
            .reserve_request(&key, last_second, &per_day(50))
            .unwrap(),
        Reservation::DaySpent { .. }
    ));
    let next_day = at(2025, 6, 15, 0, 0, 0);
    assert_eq!(
        cache.reserve_request(&key, next_day, &per_day(50)).unwrap(),
        Reservation::Granted
    );
    assert_eq!(
        cache.usage(&key, next_day).unwrap(),
        Usage {
            today: 1,
            this_month: 51,
            last_minute: 1
        }
    );
}

#[test]
fn month_budget_rolls_over_on_first() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("month-key");
    let budgets = Budgets {
        per_month: Some(20),
        per_day: Some(15),
        ..Budgets::default()
    };

    // 10 requests on each of two days of December, so the month runs out before either day.
    for day in [30, 31] {
        let now = at(2025, 12, day, 12, 0, 0);
        for _ in 0..10 {
            assert_eq!(
                cache.reserve_request(&key, now, &budgets).unwrap(),
                Reservation::Granted
            );
        }
    }
    let new_year_eve = at(2025, 12, 31, 23, 59, 59);
    assert_eq!(
        cache.reserve_request(&key, new_year_eve, &budgets).unwrap(),
        Reservation::MonthSpent {
            limit: 20,
            resets_at: at(2026, 1, 1, 0, 0, 0)
        }
    );

    let new_year = at(2026, 1, 1, 0, 0, 0);
    assert_eq!(
        cache.reserve_request(&key, new_year, &budgets).unwrap(),
        Reservation::Granted
    );
    let usage = cache.usage(&key, new_year).unwrap();
    assert_eq!(usage.today, 1);
    assert_eq!(usage.this_month, 1);
}

#[test]
fn month_reported_before_day() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("both-key");
    let now = at(2024, 2, 29, 8, 0, 0);
    let budgets = Budgets {
        per_month: Some(5),
        per_day: Some(5),
        ..Budgets::default()
    };

    for _ in 0..5 {
        cache.reserve_request(&key, now, &budgets).unwrap();
    }

    assert_eq!(
        cache.reserve_request(&key, now, &budgets).unwrap(),
        Reservation::MonthSpent {
            limit: 5,
            resets_at: at(2024, 3, 1, 0, 0, 0)
        }
    );
}

#[test]
fn keys_have_separate_budgets() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let first = KeyHash::of("first-key");
    let second = KeyHash::of("second-key");
    let now = at(2025, 6, 14, 12, 0, 0);

    for _ in 0..3 {
        cache.reserve_request(&first, now, &per_day(3)).unwrap();
    }

    assert!(matches!(
        cache.reserve_request(&first, now, &per_day(3)).unwrap(),
        Reservation::DaySpent { .. }
    ));
    assert_eq!(
        cache.reserve_request(&second, now, &per_day(3)).unwrap(),
        Reservation::Granted
    );
}

#[test]
fn zero_limits_mean_no_limit() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("zero-key");
    let now = at(2025, 6, 14, 12, 0, 0);
    let zero = Budgets {
        per_minute: Some(0),
        per_day: Some(0),
        per_month: Some(0),
    };

    for _ in 0..100 {
        assert_eq!(
            cache.reserve_request(&key, now, &zero).unwrap(),
            Reservation::Granted
        );
    }
    assert_eq!(cache.usage(&key, now).unwrap().last_minute, 100);
}

#[test]
fn minute_window_slides() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("minute-key");
    let budgets = Budgets {
        per_minute: Some(4),
        ..Budgets::default()
    };
    let start = at(2025, 6, 14, 12, 0, 0);

    // Sends at 0 s, 10 s, 20 s and 30 s fill the window.
    for offset in [0, 10, 20, 30] {
        let now = start + TimeDelta::seconds(offset);
        assert_eq!(
            cache.reserve_request(&key, now, &budgets).unwrap(),
            Reservation::Granted
        );
    }
    // A slot frees 60.5 s after its send: the half second covers requests that reach the API
    // in another order than they were reserved.
    let frees = |sent: i64| start + TimeDelta::seconds(sent) + TimeDelta::milliseconds(60_500);
    let at_40 = start + TimeDelta::seconds(40);
    assert_eq!(
        cache.reserve_request(&key, at_40, &budgets).unwrap(),
        Reservation::RetryAt(frees(0))
    );
    let just_before = frees(0) - TimeDelta::microseconds(1);
    assert_eq!(
        cache.reserve_request(&key, just_before, &budgets).unwrap(),
        Reservation::RetryAt(frees(0))
    );

    // The send at 0 s leaves the window at 60.5 s; the next slot frees at 70.5 s.
    let at_free = frees(0);
    assert_eq!(
        cache.reserve_request(&key, at_free, &budgets).unwrap(),
        Reservation::Granted
    );
    assert_eq!(
        cache.reserve_request(&key, at_free, &budgets).unwrap(),
        Reservation::RetryAt(frees(10))
    );
    assert_eq!(cache.usage(&key, at_free).unwrap().last_minute, 4);

    // Long after, the old send times are gone and the window is empty.
    let later = start + TimeDelta::minutes(30);
    assert_eq!(cache.usage(&key, later).unwrap().last_minute, 0);
    assert_eq!(
        cache.reserve_request(&key, later, &budgets).unwrap(),
        Reservation::Granted
    );
}

#[test]
fn minute_limit_holds_across_handles() {
    let (_dir, path) = temp_cache_path();
    let handles = [
        Arc::new(Cache::open(&path).unwrap()),
        Arc::new(Cache::open(&path).unwrap()),
    ];
    let key = KeyHash::of("shared-key");
    let now = at(2025, 6, 14, 12, 0, 0);
    let budgets = Budgets {
        per_minute: Some(30),
        per_day: Some(500),
        per_month: Some(15_500),
    };

    // 8 threads, 4 per handle, 25 attempts each: 200 attempts at the same instant.
    let results: Vec<Reservation> = thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let cache = Arc::clone(&handles[worker % 2]);
                let key = key.clone();
                scope.spawn(move || {
                    (0..25)
                        .map(|_| cache.reserve_request(&key, now, &budgets).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });

    assert_eq!(results.len(), 200);
    let granted = results
        .iter()
        .filter(|r| **r == Reservation::Granted)
        .count();
    let retry_at = Reservation::RetryAt(now + TimeDelta::milliseconds(60_500));
    let delayed = results.iter().filter(|r| **r == retry_at).count();
    assert_eq!(granted, 30);
    assert_eq!(delayed, 170);
    assert_eq!(handles[0].usage(&key, now).unwrap().today, 30);
    assert_eq!(handles[1].usage(&key, now).unwrap().last_minute, 30);
}

#[test]
fn two_connections_hammer_without_busy_errors() {
    let (_dir, path) = temp_cache_path();
    let handles = [
        Arc::new(Cache::open(&path).unwrap()),
        Arc::new(Cache::open(&path).unwrap()),
    ];
    let key = KeyHash::of("hammer-key");
    let now = at(2025, 6, 14, 12, 0, 0);
    let unlimited = Budgets::default();
    const THREADS: u32 = 4;
    const ROUNDS: u32 = 500;

    thread::scope(|scope| {
        for worker in 0..THREADS {
            let cache = Arc::clone(&handles[worker as usize % 2]);
            let key = key.clone();
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let reservation = cache.reserve_request(&key, now, &unlimited).unwrap();
                    assert_eq!(reservation, Reservation::Granted);
                    let address = IpAddr::from((worker << 16 | round).to_be_bytes());
                    let answer = CachedAnswer::ok(format!(r#"{{"n":{round}}}"#).into_bytes(), now);
                    cache.put(API, &address, &answer).unwrap();
                    let found = cache
                        .get(API, &address, std::time::Duration::MAX, now)
                        .unwrap();
                    assert_eq!(found, Some(answer));
                }
            });
        }
    });

    let usage = handles[0].usage(&key, now).unwrap();
    assert_eq!(usage.today, u64::from(THREADS * ROUNDS));
    assert_eq!(
        handles[1].stats_at(now).unwrap().entries,
        u64::from(THREADS * ROUNDS)
    );
}

#[test]
fn future_send_times_never_block_past_one_window() {
    let (_dir, path) = temp_cache_path();
    let cache = Cache::open(&path).unwrap();
    let key = KeyHash::of("clock-key");
    let budgets = Budgets {
        per_minute: Some(2),
        ..Budgets::default()
    };
    let now = at(2025, 6, 14, 12, 0, 0);
    let tomorrow = now + TimeDelta::days(1);

    // A process whose clock reads tomorrow fills the window.
    for _ in 0..2 {
        assert_eq!(
            cache.reserve_request(&key, tomorrow, &budgets).unwrap(),
            Reservation::Granted
        );
    }

    // Today's process waits one window at most, not until tomorrow.
    match cache.reserve_request(&key, now, &budgets).unwrap() {
        Reservation::Granted => {}
        Reservation::RetryAt(at) => assert!(at <= now + TimeDelta::milliseconds(60_500), "{at}"),
        other => panic!("unexpected {other:?}"),
    }
}
