//! Requests reserved in the shared ledger ahead of sending them, so that the ledger costs one
//! transaction per batch of requests instead of one per request.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Requests reserved per ledger transaction when no per-minute quota applies. At 3,000
/// requests a second a lease of 32 lasts about 10 ms.
pub const LEASE_REQUESTS: u32 = 32;

/// How long reserved requests stay usable. The ledger logs their send time as the time of the
/// reservation, so a request sent later than that ends its per-minute slot early by at most this
/// much. It is half of the 0.5 s margin that the ledger's pacing window adds to 60 s.
pub const LEASE_LIFETIME: Duration = Duration::from_millis(250);

/// Requests reserved at one time and not yet sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub remaining: u32,
    pub reserved_at: DateTime<Utc>,
}

/// The current lease of a pacer. Only the task that holds the pacer's turn uses it.
#[derive(Debug, Default)]
pub struct LeaseBook {
    lease: Mutex<Option<Lease>>,
}

impl LeaseBook {
    /// Takes one reserved request when a lease younger than [`LEASE_LIFETIME`] has one left.
    pub fn take_one(&self, now: DateTime<Utc>) -> bool {
        let mut lease = lock(&self.lease);
        match lease.as_mut() {
            Some(current) if current.remaining > 0 && is_fresh(current, now) => {
                current.remaining -= 1;
                true
            }
            _ => false,
        }
    }

    /// Removes the current lease and returns it when it still has requests, which the caller
    /// must give back to the ledger.
    pub fn take_leftover(&self) -> Option<Lease> {
        lock(&self.lease).take().filter(|lease| lease.remaining > 0)
    }

    /// Stores a new lease of `remaining` requests reserved at `reserved_at`.
    pub fn store(&self, remaining: u32, reserved_at: DateTime<Utc>) {
        *lock(&self.lease) = Some(Lease {
            remaining,
            reserved_at,
        });
    }
}

fn is_fresh(lease: &Lease, now: DateTime<Utc>) -> bool {
    (now - lease.reserved_at)
        .to_std()
        .is_ok_and(|age| age < LEASE_LIFETIME)
        // A clock stepped back makes the age negative; the lease is then still fresh.
        || now < lease.reserved_at
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + millis).unwrap()
    }

    #[test]
    fn lease_gives_out_its_requests_once() {
        let book = LeaseBook::default();
        assert!(!book.take_one(at(0)));
        book.store(2, at(0));
        assert!(book.take_one(at(1)));
        assert!(book.take_one(at(2)));
        assert!(!book.take_one(at(3)));
        assert_eq!(book.take_leftover(), None);
    }

    #[test]
    fn expired_lease_is_returned_as_leftover() {
        let book = LeaseBook::default();
        book.store(5, at(0));
        assert!(book.take_one(at(100)));
        assert!(!book.take_one(at(250)));
        assert_eq!(
            book.take_leftover(),
            Some(Lease {
                remaining: 4,
                reserved_at: at(0)
            })
        );
        assert_eq!(book.take_leftover(), None);
    }

    #[test]
    fn clock_stepped_back_keeps_lease() {
        let book = LeaseBook::default();
        book.store(1, at(1_000));
        assert!(book.take_one(at(0)));
    }
}
