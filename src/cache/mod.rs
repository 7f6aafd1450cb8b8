//! The answer cache and request ledger: one SQLite file shared by every run and process.
//!
//! The file stores the API's answer for each address, keyed by API root and address: the IP
//! address object for `ok`, the error code and message for `not_found`, with the body
//! zstd-compressed and the time it was fetched. Later runs reuse answers younger than
//! `--max-age`, and a rerun after a crash fetches only the addresses whose answers are missing.
//!
//! The same file keeps a ledger of requests sent per API key, per UTC day and month, plus the
//! send times of the last minutes. The key is stored only as a domain-separated SHA-256 (see
//! [`KeyHash`]). The ledger makes daily, monthly and per-minute budgets hold across runs and
//! across processes sharing the file.
//!
//! Pages of relationship lists are stored the same way, keyed by the request that fetched them
//! (see [`Cache::get_page`]).
//!
//! The fetch stage calls [`Cache::get`] before a lookup, [`Cache::reserve_requests`] for a
//! block of requests (retries included; one at a time under a per-minute quota), and
//! [`Cache::prepare_answer`] then [`Cache::put_prepared`] for answers, which its committer thread
//! stores many to a transaction. `vt-enrich cache` calls
//! [`Cache::stats`], [`Cache::export`] and [`Cache::prune`].
//!
//! Durability: the file runs in WAL mode with `synchronous=NORMAL`. When a call returns, its
//! transaction is in the WAL file (in the operating system's page cache), so it survives the
//! process being killed at any moment, `kill -9` included. A power loss or OS crash can roll back
//! the commits made since the last checkpoint (those answers are fetched again, and the ledger
//! undercounts their requests), but SQLite's journaling keeps the file consistent. Every write
//! runs in a `BEGIN IMMEDIATE` transaction with a 30 s busy timeout, so concurrent processes
//! queue for the write lock instead of failing.
//!
//! Each [`Cache`] owns one connection behind a mutex. Every operation is one short transaction
//! (export and prune run batches of them), and compression runs outside the lock. An operation
//! blocks the calling thread while it waits for the lock or for another process's write, so
//! async code should call it through `spawn_blocking`.

mod error;
mod export;
mod ledger;
mod pages;
mod schema;
mod store;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub use error::CacheError;
pub use ledger::{Budgets, KeyHash, Reservation, Usage};
pub use pages::{CachedPage, PageForm, PageKey};
pub use store::{BodyCheck, CacheStats, KeyUsage, PreparedAnswer};

use error::SqliteResultExt;

/// How long an operation waits for another connection's write lock before it fails with
/// [`CacheError::Busy`]. Writers hold the lock for milliseconds (a `put` about 0.2 ms, a prune
/// batch about 15 ms), so reaching this means a process is stuck or the disk is extremely slow.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Outcome of a lookup that the cache stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachedStatus {
    /// The API returned the IP address object.
    Ok,
    /// The API returned 404 `NotFoundError`.
    NotFound,
}

impl CachedStatus {
    /// Text stored in the `status` column.
    fn as_sql(self) -> &'static str {
        match self {
            CachedStatus::Ok => "ok",
            CachedStatus::NotFound => "not_found",
        }
    }

    fn from_sql(text: &str) -> Option<CachedStatus> {
        match text {
            "ok" => Some(CachedStatus::Ok),
            "not_found" => Some(CachedStatus::NotFound),
            _ => None,
        }
    }
}

/// One stored answer of the API for one address.
///
/// `fetched_at` is stored with microsecond precision, so a finer time comes back truncated.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    /// Whether the API returned the object or `NotFoundError`.
    pub status: CachedStatus,
    /// The response body as received (uncompressed JSON). Required for `Ok`, where it must be
    /// valid JSON. Optional for `NotFound`, stored as given.
    pub body: Option<Vec<u8>>,
    /// The `error.code` of an error answer, such as `NotFoundError`.
    pub error_code: Option<String>,
    /// The `error.message` of an error answer.
    pub error_message: Option<String>,
    /// When the API sent the answer.
    pub fetched_at: DateTime<Utc>,
}

impl CachedAnswer {
    /// Builds an `Ok` answer from the response body.
    pub fn ok(body: Vec<u8>, fetched_at: DateTime<Utc>) -> CachedAnswer {
        CachedAnswer {
            status: CachedStatus::Ok,
            body: Some(body),
            error_code: None,
            error_message: None,
            fetched_at,
        }
    }

    /// Builds a `NotFound` answer from the API's error code and message.
    pub fn not_found(
        error_code: impl Into<String>,
        error_message: impl Into<String>,
        fetched_at: DateTime<Utc>,
    ) -> CachedAnswer {
        CachedAnswer {
            status: CachedStatus::NotFound,
            body: None,
            error_code: Some(error_code.into()),
            error_message: Some(error_message.into()),
            fetched_at,
        }
    }
}

/// Handle to one cache file. `Send + Sync`: share it with `Arc`. Several handles (in one or
/// several processes) may use the same file at once.
pub struct Cache {
    path: PathBuf,
    inner: Mutex<Connected>,
}

/// The connection and what this handle remembers about the file.
struct Connected {
    conn: Connection,
    /// `api_roots.id` per URL. Ids are never deleted or reused, so entries stay valid even
    /// when another process writes the file.
    root_ids: HashMap<String, i64>,
}

impl Cache {
    /// Opens the cache file at `path`, creating it and its parent directories when missing,
    /// and migrates its schema to the current version.
    ///
    /// Fails with a [`CacheError`] that names the path and the fix when the file is not a
    /// SQLite database, belongs to another program, is newer than this build, or is read-only.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        let conn = schema::connect(path)?;
        let version = schema::schema_version(&conn).during(path, "open")?;
        tracing::debug!(path = %path.display(), schema_version = version, "opened cache");
        Ok(Cache {
            path: path.to_path_buf(),
            inner: Mutex::new(Connected {
                conn,
                root_ids: HashMap::new(),
            }),
        })
    }

    /// Returns the default cache file, `<user cache dir>/vt-enrich/cache.sqlite` (on Linux
    /// `$XDG_CACHE_HOME` or `~/.cache`), or `None` when the platform has no cache directory.
    pub fn default_path() -> Option<PathBuf> {
        dirs::cache_dir().map(|dir| dir.join("vt-enrich").join("cache.sqlite"))
    }

    /// Returns the path of the cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks this handle's connection. A panic in another thread while it held the lock
    /// cannot leave a transaction open (rusqlite rolls back on drop), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Connected> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Converts a time to the stored form, Unix time in microseconds.
fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Converts a stored time back. `column` names the column in the conversion error.
fn from_micros(micros: i64, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(column, micros))
}

/// Returns `now - age` in stored form, saturating instead of overflowing for huge ages.
fn micros_before(now: DateTime<Utc>, age: Duration) -> i64 {
    let age = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
    to_micros(now).saturating_sub(age)
}
