//! The answers of the first pass, kept on disk until the joined output is written.
//!
//! Join mode needs the answer for an address long after it was fetched, once per input row that
//! names it. Holding every answer in memory would grow with the number of distinct addresses, so
//! each flattened row goes to a SQLite file in a private temporary directory, serialised and
//! zstd-compressed, and is read back by key in the second pass. Storing the flattened row, not
//! the document, means the second pass decodes about 2 KB per value instead of parsing and
//! flattening a document of 10 to 25 KB again.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::flatten::FlatRecord;

/// zstd level of stored rows: level 1 is the fastest, and the rows are scratch data.
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

    /// Stores a batch of rows in one transaction, each under its `ip` (the canonical address,
    /// or the raw value of an `invalid` row). A key stored twice keeps the last row.
    pub fn put_all(&mut self, records: &[FlatRecord]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT OR REPLACE INTO answers (key, record) VALUES (?1, ?2)")?;
            for record in records {
                let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
                let compressed = zstd::bulk::compress(&json, COMPRESSION_LEVEL)?;
                insert.execute(rusqlite::params![record.ip, compressed])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Returns the row stored under `key`.
    pub fn get(&self, key: &str) -> Result<Option<FlatRecord>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT record FROM answers WHERE key = ?1")?;
        let compressed: Option<Vec<u8>> = select.query_row([key], |row| row.get(0)).optional()?;
        let Some(compressed) = compressed else {
            return Ok(None);
        };

        let json = zstd::stream::decode_all(compressed.as_slice())?;
        let record = serde_json::from_slice(&json).map_err(std::io::Error::other)?;
        Ok(Some(record))
    }
}

fn open_database(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // The file is scratch space, deleted at the end of the run: a crash loses nothing that a
    // rerun (answered by the cache) cannot rebuild, so durability is not worth an fsync.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         CREATE TABLE answers (key TEXT PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::flatten;
    use crate::model::{AnswerSource, Lookup, Status};
    use chrono::{DateTime, Utc};

    #[test]
    fn store_returns_rows_as_stored() {
        let mut store = AnswerStore::create().unwrap();
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/responses/ip_8.8.8.8_2025_rich.json"
        ))
        .unwrap();
        let ok = flatten(Lookup {
            ip: "8.8.8.8".to_string(),
            ip_version: Some(4),
            status: Status::Ok,
            error_code: None,
            error_message: None,
            fetched_at: DateTime::<Utc>::from_timestamp_micros(1_764_806_400_123_456),
            source: Some(AnswerSource::Cache),
            body: Some(body),
        });
        assert!(ok.attributes.asn.is_some());
        assert!(!ok.engines.is_empty());
        let invalid = flatten(Lookup {
            ip: "010.1.1.1".to_string(),
            ip_version: None,
            status: Status::Invalid,
            error_code: Some("InvalidAddress".to_string()),
            error_message: Some("fw.csv:3: leading zeros".to_string()),
            fetched_at: None,
            source: None,
            body: None,
        });
        store.put_all(&[ok.clone(), invalid.clone()]).unwrap();

        assert_eq!(store.get("8.8.8.8").unwrap(), Some(ok));
        assert_eq!(store.get("010.1.1.1").unwrap(), Some(invalid));
        assert_eq!(store.get("1.1.1.1").unwrap(), None);
    }
}
