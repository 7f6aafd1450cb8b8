//! The request ledger: requests sent per API key, per UTC day and month, and the send times of
//! the last minutes, shared by every process that uses the cache file.

use std::fmt::{self, Write as _};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::{CacheError, SqliteResultExt};
use super::{Cache, from_micros, micros_before, to_micros};

/// Length of the per-minute window.
const MINUTE: Duration = Duration::from_secs(60);

/// Window used to decide whether a request fits. A request reserved at `t` may reach the API
/// later than the one reserved after it (scheduling and network jitter), so a slot frees half
/// a second later than a strict 60-second window would free it: a 0.8% loss of throughput for
/// no 429 at the boundary.
const PACING_WINDOW: Duration = Duration::from_millis(60_500);

/// How long send times stay in `ledger_sent`. Only the last 60 s count, and the margin keeps
/// the window intact when the clocks of processes sharing the file differ a little.
const SENT_LOG_RETENTION: Duration = Duration::from_secs(5 * 60);

/// Prefix hashed before the key, so the stored value differs from the plain SHA-256 of the key
/// that another program might store.
const KEY_HASH_DOMAIN: &[u8] = b"vt-enrich request ledger v1\0";

/// Hex SHA-256 of an API key, which identifies the key in the ledger. The key itself is never
/// stored. The hash is not secret, so `Debug` and `Display` show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    /// Hashes `api_key` with a fixed domain prefix.
    pub fn of(api_key: &str) -> KeyHash {
        let mut hasher = Sha256::new();
        hasher.update(KEY_HASH_DOMAIN);
        hasher.update(api_key.as_bytes());
        let digest = hasher.finalize();

        let mut hex = String::with_capacity(2 * digest.len());
        for byte in digest.iter() {
            write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
        }
        KeyHash(hex)
    }

    /// Returns the hash as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a hash read from the ledger.
    pub(crate) fn from_stored(hex: String) -> KeyHash {
        KeyHash(hex)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Request budgets of one API key. `None` and `Some(0)` both mean no limit, as 0 does on the
/// command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    /// Maximum requests in any 60-second window, sliding or calendar-aligned.
    pub per_minute: Option<u32>,
    /// Maximum requests per UTC day.
    pub per_day: Option<u32>,
    /// Maximum requests per UTC month.
    pub per_month: Option<u32>,
}

/// Result of [`Cache::reserve_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The request is recorded: send it.
    Granted,
    /// The per-minute window is full. This is the earliest time at which the next request fits.
    RetryAt(DateTime<Utc>),
    /// The daily budget is spent until `resets_at`, the next 00:00 UTC.
    DaySpent {
        limit: u32,
        resets_at: DateTime<Utc>,
    },
    /// The monthly budget is spent until `resets_at`, 00:00 UTC on the 1st of next month.
    /// Reported in preference to [`Reservation::DaySpent`] when both are spent.
    MonthSpent {
        limit: u32,
        resets_at: DateTime<Utc>,
    },
}

/// Requests recorded for one API key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Requests in the current UTC day.
    pub today: u64,
    /// Requests in the current UTC month.
    pub this_month: u64,
    /// Requests in the 60 seconds up to now (and any recorded after now by a process whose
    /// clock runs ahead).
    pub last_minute: u64,
}

/// Returns the ledger periods of `now`: the UTC day `YYYY-MM-DD` and month `YYYY-MM`.
pub(crate) fn periods(now: DateTime<Utc>) -> (String, String) {
    (
        now.format("%Y-%m-%d").to_string(),
        now.format("%Y-%m").to_string(),
    )
}

/// Returns 00:00 UTC of the day after `now`.
fn next_day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive() + TimeDelta::days(1);
    tomorrow.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Returns 00:00 UTC on the 1st of the month after `now`.
fn next_month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .expect("the 1st of a month is a valid date")
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

/// Returns the limit when it is set and not 0.
fn active(limit: Option<u32>) -> Option<u32> {
    limit.filter(|&limit| limit > 0)
}

/// Reads the requests recorded for `key_hash` in `period`.
fn count_in_period(tx: &Transaction<'_>, key_hash: &str, period: &str) -> rusqlite::Result<u64> {
    let requests: Option<i64> = tx
        .prepare_cached("SELECT requests FROM ledger_counts WHERE key_hash = ?1 AND period = ?2")?
        .query_row((key_hash, period), |row| row.get(0))
        .optional()?;
    Ok(requests.unwrap_or(0) as u64)
}

impl Cache {
    /// Records one request for `key` at `now` if the budgets allow it, and otherwise returns
    /// why not and until when.
    ///
    /// Runs in one `BEGIN IMMEDIATE` transaction, so processes sharing the file take turns:
    /// together they never exceed `per_day`, `per_month`, or `per_minute` requests in any
    /// 60-second window. A request at `t` frees its slot at `t + 60.5 s` (see
    /// `PACING_WINDOW` for the half second). The month is checked first, then the day,
    /// then the minute. Every call, granted or not, also deletes the key's send times older
    /// than 5 minutes.
    ///
    /// Call it before every attempt, retries included, because the API counts each one.
    pub fn reserve_request(
        &self,
        key: &KeyHash,
        now: DateTime<Utc>,
        limits: &Budgets,
    ) -> Result<Reservation, CacheError> {
        const OPERATION: &str = "reserve request";
        let path = &self.path;
        let key_hash = key.as_str();
        let (day, month) = periods(now);

        let mut guard = self.lock();
        let tx = guard
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, OPERATION)?;

        let reservation =
            decide(&tx, key_hash, now, limits, &day, &month).during(path, OPERATION)?;
        if reservation == Reservation::Granted {
            record(&tx, key_hash, now, &day, &month).during(path, OPERATION)?;
        }

        tx.commit().during(path, OPERATION)?;
        Ok(reservation)
    }

    /// Records up to `wanted` requests for `key` at `now` in one transaction, each checked
    /// against the budgets as [`Cache::reserve_request`] checks one. Returns how many were
    /// granted, and the outcome of the first that was not (or `Granted` when all were).
    ///
    /// The caller sends the granted requests itself, soon after `now`, and gives back those it
    /// does not send with [`Cache::release_requests`]. Their send times stay in the per-minute
    /// log at `now`, which can only delay other requests, never admit too many.
    pub fn reserve_requests(
        &self,
        key: &KeyHash,
        now: DateTime<Utc>,
        limits: &Budgets,
        wanted: u32,
    ) -> Result<(u32, Reservation), CacheError> {
        const OPERATION: &str = "reserve requests";
        let path = &self.path;
        let key_hash = key.as_str();
        let (day, month) = periods(now);

        let mut guard = self.lock();
        let tx = guard
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, OPERATION)?;

        let mut granted = 0;
        let mut outcome = Reservation::Granted;
        while granted < wanted {
            outcome = decide(&tx, key_hash, now, limits, &day, &month).during(path, OPERATION)?;
            if outcome != Reservation::Granted {
                break;
            }
            record(&tx, key_hash, now, &day, &month).during(path, OPERATION)?;
            granted += 1;
        }

        tx.commit().during(path, OPERATION)?;
        Ok((granted, outcome))
    }

    /// Takes back `count` requests that [`Cache::reserve_requests`] granted at `reserved_at` but
    /// that were never sent, from the day and month counts of `reserved_at`. Their send times
    /// stay in the per-minute log, because removing entries would break the contiguous
    /// sequence numbers that the window check relies on.
    pub fn release_requests(
        &self,
        key: &KeyHash,
        reserved_at: DateTime<Utc>,
        count: u32,
    ) -> Result<(), CacheError> {
        const OPERATION: &str = "release requests";
        let path = &self.path;
        let (day, month) = periods(reserved_at);

        let mut guard = self.lock();
        let tx = guard
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, OPERATION)?;
        {
            let mut decrement = tx
                .prepare_cached(
                    "UPDATE ledger_counts SET requests = MAX(requests - ?3, 0) \
                     WHERE key_hash = ?1 AND period = ?2",
                )
                .during(path, OPERATION)?;
            for period in [&day, &month] {
                decrement
                    .execute((key.as_str(), period, i64::from(count)))
                    .during(path, OPERATION)?;
            }
        }
        tx.commit().during(path, OPERATION)?;
        Ok(())
    }

    /// Returns the requests recorded for `key` in the UTC day and month of `now` and in the
    /// 60 seconds before it.
    pub fn usage(&self, key: &KeyHash, now: DateTime<Utc>) -> Result<Usage, CacheError> {
        const OPERATION: &str = "usage";
        let path = &self.path;
        let key_hash = key.as_str();
        let (day, month) = periods(now);

        let mut guard = self.lock();
        // One read transaction, so the three counts describe the same snapshot.
        let tx = guard.conn.transaction().during(path, OPERATION)?;
        let today = count_in_period(&tx, key_hash, &day).during(path, OPERATION)?;
        let this_month = count_in_period(&tx, key_hash, &month).during(path, OPERATION)?;
        let last_minute = sends_in_window(&tx, key_hash, now).during(path, OPERATION)?;
        tx.finish().during(path, OPERATION)?;

        Ok(Usage {
            today,
            this_month,
            last_minute,
        })
    }
}

/// Checks the budgets inside the reservation's transaction.
fn decide(
    tx: &Transaction<'_>,
    key_hash: &str,
    now: DateTime<Utc>,
    limits: &Budgets,
    day: &str,
    month: &str,
) -> rusqlite::Result<Reservation> {
    tx.prepare_cached("DELETE FROM ledger_sent WHERE key_hash = ?1 AND sent_at <= ?2")?
        .execute((key_hash, micros_before(now, SENT_LOG_RETENTION)))?;
    // Send times further in the future than the retention (a clock stepped back, or a process
    // whose clock runs ahead) would hold the window shut until then; forget them.
    tx.prepare_cached("DELETE FROM ledger_sent WHERE key_hash = ?1 AND sent_at > ?2")?
        .execute((
            key_hash,
            to_micros(now) + SENT_LOG_RETENTION.as_micros() as i64,
        ))?;

    if let Some(limit) = active(limits.per_month)
        && count_in_period(tx, key_hash, month)? >= u64::from(limit)
    {
        return Ok(Reservation::MonthSpent {
            limit,
            resets_at: next_month_start(now),
        });
    }
    if let Some(limit) = active(limits.per_day)
        && count_in_period(tx, key_hash, day)? >= u64::from(limit)
    {
        return Ok(Reservation::DaySpent {
            limit,
            resets_at: next_day_start(now),
        });
    }

    if let Some(limit) = active(limits.per_minute)
        && let Some(last) = last_send(tx, key_hash)?
    {
        // The window is full when the limit-th newest send is still in it. The next request
        // fits once that send leaves the window, PACING_WINDOW after it was sent.
        let limit_th_newest: Option<i64> = tx
            .prepare_cached("SELECT sent_at FROM ledger_sent WHERE key_hash = ?1 AND seq = ?2")?
            .query_row((key_hash, last.seq - i64::from(limit) + 1), |row| {
                row.get(0)
            })
            .optional()?;
        if let Some(sent_at) = limit_th_newest
            && sent_at > micros_before(now, PACING_WINDOW)
        {
            // A send dated after `now` counts as sent now, so a clock that differs between
            // processes delays the next request by one window at most.
            let sent_at = sent_at.min(to_micros(now));
            let frees_at = from_micros(sent_at, 0)?
                + TimeDelta::milliseconds(PACING_WINDOW.as_millis() as i64);
            return Ok(Reservation::RetryAt(frees_at));
        }
    }
    Ok(Reservation::Granted)
}

/// The newest entry of a key's send log.
struct LastSend {
    seq: i64,
    sent_at: i64,
}

/// Reads the newest entry of the key's send log, `None` when the log is empty.
fn last_send(tx: &Transaction<'_>, key_hash: &str) -> rusqlite::Result<Option<LastSend>> {
    tx.prepare_cached(
        "SELECT seq, sent_at FROM ledger_sent WHERE key_hash = ?1 ORDER BY seq DESC LIMIT 1",
    )?
    .query_row([key_hash], |row| {
        Ok(LastSend {
            seq: row.get(0)?,
            sent_at: row.get(1)?,
        })
    })
    .optional()
}

/// Counts the key's sends after `now - 60 s`, in two index lookups: sequence numbers and send
/// times rise together, so the count is the difference of the newest and the oldest one's.
fn sends_in_window(
    tx: &Transaction<'_>,
    key_hash: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<u64> {
    let Some(last) = last_send(tx, key_hash)? else {
        return Ok(0);
    };
    let first_in_window: Option<i64> = tx
        .prepare_cached(
            "SELECT seq FROM ledger_sent WHERE key_hash = ?1 AND sent_at > ?2 \
             ORDER BY sent_at, seq LIMIT 1",
        )?
        .query_row((key_hash, micros_before(now, MINUTE)), |row| row.get(0))
        .optional()?;
    Ok(first_in_window.map_or(0, |first| (last.seq - first + 1) as u64))
}

/// Counts a granted request in its day and month and logs its send time.
fn record(
    tx: &Transaction<'_>,
    key_hash: &str,
    now: DateTime<Utc>,
    day: &str,
    month: &str,
) -> rusqlite::Result<()> {
    let mut increment = tx.prepare_cached(
        "INSERT INTO ledger_counts (key_hash, period, requests) VALUES (?1, ?2, 1) \
         ON CONFLICT (key_hash, period) DO UPDATE SET requests = requests + 1",
    )?;
    increment.execute((key_hash, day))?;
    increment.execute((key_hash, month))?;

    // A send time before the key's newest one (a process whose clock runs behind) is logged
    // as that newest time. The log stays ordered by seq, and the window errs on the safe side.
    let (seq, sent_at) = match last_send(tx, key_hash)? {
        Some(last) => (last.seq + 1, last.sent_at.max(to_micros(now))),
        None => (1, to_micros(now)),
    };
    tx.prepare_cached("INSERT INTO ledger_sent (key_hash, seq, sent_at) VALUES (?1, ?2, ?3)")?
        .execute((key_hash, seq, sent_at))?;
    Ok(())
}
