//! Answers: lookup, storage, pruning and statistics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::error::{CacheError, SqliteResultExt};
use super::ledger::KeyHash;
use super::{Cache, CachedAnswer, CachedStatus, Connected, from_micros, micros_before, to_micros};

/// zstd level for bodies. Level 3 (zstd's default) shrank real 11 kB and 23 kB responses 7 and
/// 10 times, and a whole `put` of the 23 kB one took about 150 µs.
pub(super) const ZSTD_LEVEL: i32 = 3;

/// Rows deleted per transaction by [`Cache::prune`]. A batch held the write lock for about
/// 15 ms in a release build, so other processes keep working during a prune.
const PRUNE_BATCH_ROWS: i64 = 1000;

/// Free pages returned to the file system per `incremental_vacuum` step.
const VACUUM_BATCH_PAGES: i64 = 2048;

/// Whether [`Cache::prepare_answer`] parses an `Ok` body to check that it is JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCheck {
    /// Parse the body; for bodies of unknown origin.
    Parse,
    /// Skip the parse because the caller has already checked the body with
    /// [`check_json`](crate::json_check::check_json), as the fetch stage does for every 200.
    AlreadyChecked,
}

/// An answer checked and compressed by [`Cache::prepare_answer`], ready to be committed.
#[derive(Debug)]
pub struct PreparedAnswer {
    ip_text: String,
    status: CachedStatus,
    /// The zstd-compressed body.
    compressed: Option<Vec<u8>>,
    /// Length of the body before compression.
    raw_bytes: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
    fetched_at: DateTime<Utc>,
}

/// Contents and size of the cache file, for `vt-enrich cache stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStats {
    /// The cache file.
    pub path: PathBuf,
    /// Schema version of the file.
    pub schema_version: i64,
    /// Stored answers, over all API roots.
    pub entries: u64,
    /// Answers with status `ok`.
    pub ok: u64,
    /// Answers with status `not_found`.
    pub not_found: u64,
    /// Stored pages of relationship lists, over all API roots.
    pub relationship_pages: u64,
    /// Fetch time of the oldest answer, `None` when the cache is empty.
    pub oldest_fetched_at: Option<DateTime<Utc>>,
    /// Fetch time of the newest answer, `None` when the cache is empty.
    pub newest_fetched_at: Option<DateTime<Utc>>,
    /// Bytes of stored (compressed) bodies.
    pub compressed_bytes: u64,
    /// Bytes of the bodies before compression.
    pub raw_bytes: u64,
    /// Size of the database file in bytes, without the `-wal` file.
    pub file_bytes: u64,
    /// Size of the `-wal` file in bytes (0 when absent). Commits land there first and move
    /// into the database file at checkpoints.
    pub wal_bytes: u64,
    /// Bytes of unused pages inside the database file, which [`Cache::prune`] gives back.
    pub free_bytes: u64,
    /// Requests recorded per API key hash for the current UTC day and month, ordered by hash.
    /// Keys without requests in the current month are left out.
    pub ledger: Vec<KeyUsage>,
}

/// Requests recorded for one API key in the current UTC day and month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// Hash of the API key.
    pub key: KeyHash,
    /// Requests sent in the current UTC day.
    pub today: u64,
    /// Requests sent in the current UTC month.
    pub this_month: u64,
}

/// Returns the id of `url` in `api_roots`, from `known` when possible, and inserts the URL
/// when `create` is set. With `create`, the caller must be inside a transaction and may add the
/// id to `known` only after it commits.
pub(super) fn root_id(
    conn: &Connection,
    known: &HashMap<String, i64>,
    url: &str,
    create: bool,
) -> rusqlite::Result<Option<i64>> {
    if let Some(id) = known.get(url) {
        return Ok(Some(*id));
    }
    if create {
        conn.prepare_cached(
            "INSERT INTO api_roots (url) VALUES (?1) ON CONFLICT (url) DO NOTHING",
        )?
        .execute([url])?;
    }
    conn.prepare_cached("SELECT id FROM api_roots WHERE url = ?1")?
        .query_row([url], |row| row.get(0))
        .optional()
}

/// Returns the id of an API root already in the file, without adding it, and remembers it in
/// `known` so later reads skip the query.
pub(super) fn existing_root_id(
    conn: &Connection,
    known: &mut HashMap<String, i64>,
    url: &str,
) -> rusqlite::Result<Option<i64>> {
    let id = root_id(conn, known, url, false)?;
    if let Some(id) = id
        && !known.contains_key(url)
    {
        known.insert(url.to_owned(), id);
    }
    Ok(id)
}

/// zstd contexts kept for reuse. Creating a context per body allocated and cleared several
/// megabytes each time, about 4 % of a cached run's CPU time in a `perf record` profile. A
/// context per blocking thread instead raised peak RSS by about 100 MB, because the blocking
/// pool grows to dozens of threads, so only this many are kept and extra ones are dropped.
const KEPT_COMPRESSORS: usize = 4;

static COMPRESSORS: std::sync::Mutex<Vec<zstd::bulk::Compressor<'static>>> =
    std::sync::Mutex::new(Vec::new());

/// Compresses a body at [`ZSTD_LEVEL`] with a reused zstd context.
fn compress_body(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let kept = COMPRESSORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop();
    let mut compressor = match kept {
        Some(compressor) => compressor,
        None => zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
    };
    let compressed = compressor.compress(body);

    let mut kept = COMPRESSORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() < KEPT_COMPRESSORS {
        kept.push(compressor);
    }
    compressed
}

/// Strips trailing slashes from an API root, so `…/api/v3` and `…/api/v3/` share entries.
pub(super) fn normalize_root(api_url: &str) -> &str {
    api_url.trim_end_matches('/')
}

impl Cache {
    /// Returns the stored answer for `ip` from the API at `api_url` when it was fetched less
    /// than `max_age` before `now`, and `None` when it is missing or older.
    ///
    /// An answer fetched after `now` (clocks of two hosts disagree) counts as fresh.
    pub fn get(
        &self,
        api_url: &str,
        ip: &IpAddr,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<CachedAnswer>, CacheError> {
        const OPERATION: &str = "get";
        let url = normalize_root(api_url);
        let ip_text = ip.to_string();
        let cutoff = micros_before(now, max_age);

        let row = {
            let mut guard = self.lock();
            let Connected { conn, root_ids } = &mut *guard;
            let Some(root_id) =
                existing_root_id(conn, root_ids, url).during(&self.path, OPERATION)?
            else {
                return Ok(None);
            };
            conn.prepare_cached(
                "SELECT status, body, error_code, error_message, fetched_at FROM answers \
                     WHERE root_id = ?1 AND ip = ?2 AND fetched_at > ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row((root_id, &ip_text, cutoff), |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<Vec<u8>>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, Option<String>>(3)?,
                            from_micros(row.get(4)?, 4)?,
                        ))
                    })
                    .optional()
            })
            .during(&self.path, OPERATION)?
        };
        let Some((status, compressed, error_code, error_message, fetched_at)) = row else {
            return Ok(None);
        };

        let invalid = |reason: String| CacheError::InvalidEntry {
            path: self.path.clone(),
            ip: ip_text.clone(),
            reason,
        };
        let status = CachedStatus::from_sql(&status)
            .ok_or_else(|| invalid(format!("unknown status `{status}`")))?;
        let body = match compressed {
            Some(compressed) => Some(
                zstd::stream::decode_all(compressed.as_slice())
                    .map_err(|err| invalid(format!("failed to decompress the body: {err}")))?,
            ),
            None if status == CachedStatus::Ok => {
                return Err(invalid("an `ok` answer without a body".to_owned()));
            }
            None => None,
        };

        Ok(Some(CachedAnswer {
            status,
            body,
            error_code,
            error_message,
            fetched_at,
        }))
    }

    /// Stores `answer` for `ip` from the API at `api_url`, replacing an older answer, and
    /// commits before returning. An answer older than the stored one is ignored, so the
    /// newest answer wins when two processes fetch the same address.
    ///
    /// Fails with [`CacheError::InvalidAnswer`] for an `Ok` answer whose body is missing or is
    /// not valid JSON, because export writes bodies as JSON Lines.
    pub fn put(&self, api_url: &str, ip: &IpAddr, answer: &CachedAnswer) -> Result<(), CacheError> {
        let prepared = self.prepare_answer(ip, answer, BodyCheck::Parse)?;
        self.put_prepared(api_url, std::slice::from_ref(&prepared))
    }

    /// Checks and compresses `answer` for [`Cache::put_prepared`]. Takes no lock, so callers
    /// can compress on several threads while one of them commits.
    ///
    /// Fails with [`CacheError::InvalidAnswer`] for an `Ok` answer without a body, and, with
    /// [`BodyCheck::Parse`], for one whose body is not valid JSON.
    pub fn prepare_answer(
        &self,
        ip: &IpAddr,
        answer: &CachedAnswer,
        check: BodyCheck,
    ) -> Result<PreparedAnswer, CacheError> {
        let ip_text = ip.to_string();
        let invalid = |reason: String| CacheError::InvalidAnswer {
            path: self.path.clone(),
            ip: ip_text.clone(),
            reason,
        };

        if answer.status == CachedStatus::Ok {
            let Some(body) = &answer.body else {
                return Err(invalid("an `ok` answer needs a body".to_owned()));
            };
            if check == BodyCheck::Parse {
                crate::json_check::check_json(body)
                    .map_err(|err| invalid(format!("the body is not valid JSON: {err}")))?;
            }
        }
        let compressed = match &answer.body {
            Some(body) => Some(
                compress_body(body)
                    .map_err(|err| invalid(format!("failed to compress the body: {err}")))?,
            ),
            None => None,
        };

        Ok(PreparedAnswer {
            raw_bytes: answer.body.as_ref().map(|body| body.len() as i64),
            ip_text,
            status: answer.status,
            compressed,
            error_code: answer.error_code.clone(),
            error_message: answer.error_message.clone(),
            fetched_at: answer.fetched_at,
        })
    }

    /// Stores prepared answers from the API at `api_url` in one transaction, replacing older
    /// answers, and commits before returning: either all of them are stored or none is.
    ///
    /// One transaction for many answers is what makes a commit per answer affordable: SQLite
    /// pays its write lock and WAL append once per transaction, not once per row.
    pub fn put_prepared(
        &self,
        api_url: &str,
        answers: &[PreparedAnswer],
    ) -> Result<(), CacheError> {
        const OPERATION: &str = "put";
        let url = normalize_root(api_url);

        let mut guard = self.lock();
        let Connected { conn, root_ids } = &mut *guard;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.path, OPERATION)?;
        let root_id = root_id(&tx, root_ids, url, true)
            .during(&self.path, OPERATION)?
            .expect("api_roots contains the URL inserted in this transaction");
        {
            let mut statement = tx
                .prepare_cached(
                    "INSERT INTO answers \
                     (root_id, ip, status, body, body_bytes, error_code, error_message, fetched_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (root_id, ip) DO UPDATE SET \
                     status = excluded.status, body = excluded.body, body_bytes = excluded.body_bytes, \
                     error_code = excluded.error_code, error_message = excluded.error_message, \
                     fetched_at = excluded.fetched_at \
                     WHERE excluded.fetched_at >= answers.fetched_at",
                )
                .during(&self.path, OPERATION)?;
            for answer in answers {
                statement
                    .execute((
                        root_id,
                        &answer.ip_text,
                        answer.status.as_sql(),
                        &answer.compressed,
                        answer.raw_bytes,
                        &answer.error_code,
                        &answer.error_message,
                        to_micros(answer.fetched_at),
                    ))
                    .during(&self.path, OPERATION)?;
            }
        }
        tx.commit().during(&self.path, OPERATION)?;
        if !root_ids.contains_key(url) {
            root_ids.insert(url.to_owned(), root_id);
        }
        Ok(())
    }

    /// Deletes the answers and relationship pages fetched `older_than` or longer before `now`
    /// (exactly those that [`Cache::get`] and [`Cache::get_page`] with that `max_age` no longer
    /// return), then gives the freed pages back to the file system. Returns the number of
    /// answers and relationship pages deleted.
    ///
    /// Deletes in batches of short transactions, so concurrent runs keep working meanwhile.
    pub fn prune(&self, older_than: Duration, now: DateTime<Utc>) -> Result<u64, CacheError> {
        let cutoff = micros_before(now, older_than);
        let mut deleted = self.delete_older("answers", cutoff, PRUNE_BATCH_ROWS, "prune")?;
        deleted += self.delete_older(
            "relationship_pages",
            cutoff,
            PRUNE_BATCH_ROWS,
            "prune relationship pages",
        )?;

        self.vacuum_free_pages()?;
        tracing::info!(path = %self.path.display(), deleted, "pruned cache");
        Ok(deleted)
    }

    /// Deletes the rows of `table` fetched at or before `cutoff` (µs since the epoch), in
    /// transactions of at most `batch_rows` rows so concurrent runs keep working meanwhile.
    /// Returns the number of rows deleted. `table` is one of this module's table names.
    pub(super) fn delete_older(
        &self,
        table: &'static str,
        cutoff: i64,
        batch_rows: i64,
        operation: &'static str,
    ) -> Result<u64, CacheError> {
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE fetched_at <= ?1 LIMIT ?2)"
        );
        let mut deleted: u64 = 0;
        loop {
            let mut guard = self.lock();
            let tx = guard
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(&self.path, operation)?;
            let batch = tx
                .prepare_cached(&sql)
                .and_then(|mut statement| statement.execute((cutoff, batch_rows)))
                .during(&self.path, operation)?;
            tx.commit().during(&self.path, operation)?;
            deleted += batch as u64;
            if (batch as i64) < batch_rows {
                return Ok(deleted);
            }
        }
    }

    /// Returns free pages to the file system a batch at a time, then truncates the WAL.
    /// Needs `auto_vacuum=INCREMENTAL`, which files created by this module have. On other
    /// files `incremental_vacuum` does nothing.
    fn vacuum_free_pages(&self) -> Result<(), CacheError> {
        const OPERATION: &str = "prune (incremental vacuum)";
        loop {
            let guard = self.lock();
            let free_pages: i64 = guard
                .conn
                .pragma_query_value(None, "freelist_count", |row| row.get(0))
                .during(&self.path, OPERATION)?;
            if free_pages == 0 {
                break;
            }
            // The pragma frees one page per step, so step it to the end.
            let mut statement = guard
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_BATCH_PAGES})"))
                .during(&self.path, OPERATION)?;
            let mut rows = statement.query([]).during(&self.path, OPERATION)?;
            while rows.next().during(&self.path, OPERATION)?.is_some() {}
            drop(rows);
            drop(statement);
            let still_free: i64 = guard
                .conn
                .pragma_query_value(None, "freelist_count", |row| row.get(0))
                .during(&self.path, OPERATION)?;
            if still_free >= free_pages {
                // Not an auto_vacuum file: the pages stay free for reuse.
                break;
            }
        }

        // A busy result (a reader in another process) is not an error: the WAL is truncated by
        // a later checkpoint instead.
        let guard = self.lock();
        guard
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .during(&self.path, "prune (checkpoint)")?;
        Ok(())
    }

    /// Collects [`CacheStats`], with ledger totals for the current UTC day and month.
    ///
    /// Reads every answer row: 0.11 s for 100,000 rows in a release build, so an estimated
    /// second per million.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        self.stats_at(Utc::now())
    }

    /// Like [`Cache::stats`], with ledger totals for the day and month of `now`.
    pub fn stats_at(&self, now: DateTime<Utc>) -> Result<CacheStats, CacheError> {
        const OPERATION: &str = "stats";
        let path = &self.path;
        let mut guard = self.lock();
        // One read transaction, so all numbers describe the same snapshot.
        let tx = guard.conn.transaction().during(path, OPERATION)?;

        let schema_version = super::schema::schema_version(&tx).during(path, OPERATION)?;
        let (entries, ok, not_found, oldest, newest, compressed_bytes, raw_bytes) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(status = 'ok'), 0), \
                 COALESCE(SUM(status = 'not_found'), 0), MIN(fetched_at), MAX(fetched_at), \
                 COALESCE(SUM(length(body)), 0), COALESCE(SUM(body_bytes), 0) FROM answers",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, Option<i64>>(3)?
                            .map(|micros| from_micros(micros, 3))
                            .transpose()?,
                        row.get::<_, Option<i64>>(4)?
                            .map(|micros| from_micros(micros, 4))
                            .transpose()?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                },
            )
            .during(path, OPERATION)?;

        let relationship_pages: i64 = tx
            .query_row("SELECT COUNT(*) FROM relationship_pages", [], |row| {
                row.get(0)
            })
            .during(path, OPERATION)?;
        let page_size: i64 = tx
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .during(path, OPERATION)?;
        let free_pages: i64 = tx
            .pragma_query_value(None, "freelist_count", |row| row.get(0))
            .during(path, OPERATION)?;

        let (day, month) = super::ledger::periods(now);
        let mut statement = tx
            .prepare(
                "SELECT key_hash, \
                 COALESCE(SUM(CASE WHEN period = ?1 THEN requests END), 0), \
                 COALESCE(SUM(CASE WHEN period = ?2 THEN requests END), 0) \
                 FROM ledger_counts WHERE period IN (?1, ?2) GROUP BY key_hash ORDER BY key_hash",
            )
            .during(path, OPERATION)?;
        let ledger = statement
            .query_map((&day, &month), |row| {
                Ok(KeyUsage {
                    key: KeyHash::from_stored(row.get(0)?),
                    today: row.get::<_, i64>(1)? as u64,
                    this_month: row.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .during(path, OPERATION)?;
        drop(statement);
        tx.finish().during(path, OPERATION)?;
        drop(guard);

        Ok(CacheStats {
            path: path.clone(),
            schema_version,
            entries: entries as u64,
            ok: ok as u64,
            not_found: not_found as u64,
            relationship_pages: relationship_pages as u64,
            oldest_fetched_at: oldest,
            newest_fetched_at: newest,
            compressed_bytes: compressed_bytes as u64,
            raw_bytes: raw_bytes as u64,
            file_bytes: file_size(path),
            wal_bytes: file_size(&wal_path(path)),
            free_bytes: (free_pages * page_size) as u64,
            ledger,
        })
    }
}

/// Returns the size of a file in bytes, 0 when it is missing.
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// Returns the path of the WAL file SQLite keeps beside `path`.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}
