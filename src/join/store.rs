//! The answers of the first pass, kept on disk until the joined output is written.
//!
//! Join mode needs the answer for an address long after it was fetched, once per input row that
//! names it. Holding every answer in memory would grow with the number of distinct addresses
//! (a realistic document is about 13 KB), so they go to a SQLite file in a private temporary
//! directory, zstd-compressed, and are read back by key in the second pass.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{AnswerSource, Lookup, Status};

/// zstd level of stored documents: level 1 compresses a VirusTotal document about 5:1 at
/// several hundred MB/s, which keeps the spool far off the critical path.
const COMPRESSION_LEVEL: i32 = 1;

/// A failure of the temporary answer store. The message names the temporary directory, so a
/// full or unwritable temp directory can be told from other errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the temporary answer store for --join in {dir}: {source}")]
    Create { dir: String, source: std::io::Error },
    #[error("the temporary answer store for --join failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the temporary answer store for --join failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Answers by lookup key: the canonical address, or the raw value of an `invalid` row.
pub struct AnswerStore {
    conn: Connection,
    /// Removed with the store, together with the database in it.
    _dir: tempfile::TempDir,
}

impl AnswerStore {
    /// Creates an empty store in the system's temporary directory (`TMPDIR` on Unix).
    pub fn create() -> Result<AnswerStore, StoreError> {
        let parent = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("vt-enrich-join.")
            .tempdir_in(&parent)
            .map_err(|source| StoreError::Create {
                dir: parent.display().to_string(),
                source,
            })?;
        let conn = open_database(&dir.path().join("answers.sqlite"))?;
        Ok(AnswerStore { conn, _dir: dir })
    }

    /// Stores a batch of answers in one transaction. A key stored twice keeps the last answer.
    pub fn put_all(&mut self, lookups: &[Lookup]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO answers \
                 (key, ip_version, status, error_code, error_message, fetched_at, source, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for lookup in lookups {
                let body = match &lookup.body {
                    Some(body) => Some(zstd::bulk::compress(body, COMPRESSION_LEVEL)?),
                    None => None,
                };
                insert.execute(params![
                    lookup.ip,
                    lookup.ip_version,
                    status_code(lookup.status),
                    lookup.error_code,
                    lookup.error_message,
                    lookup.fetched_at.map(|at| at.timestamp_micros()),
                    lookup.source.map(AnswerSource::as_str),
                    body,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Returns the answer stored under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Lookup>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT ip_version, status, error_code, error_message, fetched_at, source, body \
             FROM answers WHERE key = ?1",
        )?;
        let row = select
            .query_row([key], |row| {
                Ok((
                    row.get::<_, Option<u8>>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, Option<Vec<u8>>>(6)?,
                ))
            })
            .optional()?;
        let Some((ip_version, status, error_code, error_message, fetched_at, source, body)) = row
        else {
            return Ok(None);
        };

        let body = match body {
            Some(compressed) => Some(zstd::stream::decode_all(compressed.as_slice())?),
            None => None,
        };
        Ok(Some(Lookup {
            ip: key.to_string(),
            ip_version,
            status: status_from_code(status),
            error_code,
            error_message,
            fetched_at: fetched_at.and_then(DateTime::<Utc>::from_timestamp_micros),
            source: source.as_deref().and_then(source_from_name),
            body,
        }))
    }
}

fn open_database(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // The file is scratch space, deleted at the end of the run: a crash loses nothing that a
    // rerun (answered by the cache) cannot rebuild, so durability is not worth an fsync.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         CREATE TABLE answers (
             key TEXT PRIMARY KEY,
             ip_version INTEGER,
             status INTEGER NOT NULL,
             error_code TEXT,
             error_message TEXT,
             fetched_at INTEGER,
             source TEXT,
             body BLOB
         ) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

const STATUSES: [Status; 6] = [
    Status::Ok,
    Status::NotFound,
    Status::Invalid,
    Status::Skipped,
    Status::Failed,
    Status::QuotaExhausted,
];

fn status_code(status: Status) -> i64 {
    STATUSES
        .iter()
        .position(|known| *known == status)
        .unwrap_or_default() as i64
}

/// Returns the status stored as `code`; the store writes only codes of [`STATUSES`], so the
/// fallback is never taken.
fn status_from_code(code: i64) -> Status {
    usize::try_from(code)
        .ok()
        .and_then(|index| STATUSES.get(index).copied())
        .unwrap_or(Status::Failed)
}

fn source_from_name(name: &str) -> Option<AnswerSource> {
    [AnswerSource::Api, AnswerSource::Cache, AnswerSource::File]
        .into_iter()
        .find(|source| source.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_as_stored() {
        let mut store = AnswerStore::create().unwrap();
        let fetched_at = DateTime::<Utc>::from_timestamp_micros(1_764_806_400_123_456);
        let ok = Lookup {
            ip: "8.8.8.8".to_string(),
            ip_version: Some(4),
            status: Status::Ok,
            error_code: None,
            error_message: None,
            fetched_at,
            source: Some(AnswerSource::Cache),
            body: Some(br#"{"data":{"id":"8.8.8.8","type":"ip_address"}}"#.to_vec()),
        };
        let invalid = Lookup {
            ip: "010.1.1.1".to_string(),
            ip_version: None,
            status: Status::Invalid,
            error_code: Some("InvalidAddress".to_string()),
            error_message: Some("fw.csv:3: leading zeros".to_string()),
            fetched_at: None,
            source: None,
            body: None,
        };
        store.put_all(&[ok.clone(), invalid.clone()]).unwrap();

        assert_eq!(store.get("8.8.8.8").unwrap(), Some(ok));
        assert_eq!(store.get("010.1.1.1").unwrap(), Some(invalid));
        assert_eq!(store.get("1.1.1.1").unwrap(), None);
    }
}
