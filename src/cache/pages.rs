//! Relationship pages: one stored API response per page of a relationship list.
//!
//! A page is keyed by everything that decides its content: the API root, the address, the
//! relationship, the form (full objects or descriptors), the cursor it was requested with
//! (empty for the first page) and the page size sent as `limit`. A rerun with the same
//! settings asks for the same keys in the same order, because each page's cursor comes from
//! the stored page before it, so a complete rerun is answered from the cache alone.
//!
//! The table is created when missing, inside the schema migration transaction, so cache files
//! written before relationships existed gain it on their next open. It adds no schema version:
//! a build that does not know the table leaves it alone.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::{CacheError, SqliteResultExt};
use super::store::{ZSTD_LEVEL, existing_root_id, normalize_root, root_id};
use super::{Cache, Connected, from_micros, micros_before, to_micros};

/// Times are Unix time in microseconds (UTC), as in the rest of the file.
const CREATE_PAGES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS relationship_pages (
    id INTEGER PRIMARY KEY,
    root_id INTEGER NOT NULL REFERENCES api_roots (id),
    ip TEXT NOT NULL,              -- canonical text form, as std::net::IpAddr displays it
    relationship TEXT NOT NULL,    -- API name, such as 'resolutions'
    form TEXT NOT NULL CHECK (form IN ('objects', 'descriptors')),
    cursor TEXT NOT NULL,          -- cursor sent with the request; '' for the first page
    page_size INTEGER NOT NULL,    -- the limit parameter sent with the request
    body BLOB NOT NULL,            -- zstd frame of the JSON page as received
    body_bytes INTEGER NOT NULL,   -- size of the body before compression
    fetched_at INTEGER NOT NULL,
    UNIQUE (root_id, ip, relationship, form, cursor, page_size)
);
CREATE INDEX IF NOT EXISTS relationship_pages_fetched_at ON relationship_pages (fetched_at);
";

/// Creates the pages table and its index unless they exist. Runs inside the migration's
/// write transaction.
pub(crate) fn create_table_if_missing(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(CREATE_PAGES_TABLE)
}

/// Form of the relationship list on a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageForm {
    /// `GET /ip_addresses/{ip}/{relationship}`: the related objects with their attributes.
    Objects,
    /// `GET /ip_addresses/{ip}/relationships/{relationship}`: type and id only.
    Descriptors,
}

impl PageForm {
    fn as_sql(self) -> &'static str {
        match self {
            PageForm::Objects => "objects",
            PageForm::Descriptors => "descriptors",
        }
    }
}

/// Everything that identifies one page under an API root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey<'a> {
    pub ip: &'a IpAddr,
    /// API name of the relationship, such as `resolutions`.
    pub relationship: &'a str,
    pub form: PageForm,
    /// Cursor the page was requested with; empty for the first page.
    pub cursor: &'a str,
    /// The `limit` parameter the page was requested with.
    pub page_size: u32,
}

/// One stored page.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPage {
    /// The response body as received (uncompressed JSON).
    pub body: Vec<u8>,
    /// When the API sent the page.
    pub fetched_at: DateTime<Utc>,
}

impl Cache {
    /// Returns the page stored under `key` for the API at `api_url` when it was fetched less
    /// than `max_age` before `now`, and `None` when it is missing or older.
    pub fn get_page(
        &self,
        api_url: &str,
        key: &PageKey<'_>,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<CachedPage>, CacheError> {
        const OPERATION: &str = "get relationship page";
        let url = normalize_root(api_url);
        let ip_text = key.ip.to_string();
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
                "SELECT body, fetched_at FROM relationship_pages \
                 WHERE root_id = ?1 AND ip = ?2 AND relationship = ?3 AND form = ?4 \
                 AND cursor = ?5 AND page_size = ?6 AND fetched_at > ?7",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(
                        (
                            root_id,
                            &ip_text,
                            key.relationship,
                            key.form.as_sql(),
                            key.cursor,
                            key.page_size,
                            cutoff,
                        ),
                        |row| Ok((row.get::<_, Vec<u8>>(0)?, from_micros(row.get(1)?, 1)?)),
                    )
                    .optional()
            })
            .during(&self.path, OPERATION)?
        };
        let Some((compressed, fetched_at)) = row else {
            return Ok(None);
        };

        let body = zstd::stream::decode_all(compressed.as_slice()).map_err(|err| {
            CacheError::InvalidEntry {
                path: self.path.clone(),
                ip: ip_text.clone(),
                reason: format!("failed to decompress the {} page: {err}", key.relationship),
            }
        })?;
        Ok(Some(CachedPage { body, fetched_at }))
    }

    /// Stores `body` under `key` for the API at `api_url`, replacing an older page, and
    /// commits before returning. A page older than the stored one is ignored.
    ///
    /// Fails with [`CacheError::InvalidAnswer`] when the body is not valid JSON.
    pub fn put_page(
        &self,
        api_url: &str,
        key: &PageKey<'_>,
        body: &[u8],
        fetched_at: DateTime<Utc>,
    ) -> Result<(), CacheError> {
        const OPERATION: &str = "put relationship page";
        let url = normalize_root(api_url);
        let ip_text = key.ip.to_string();
        let invalid = |reason: String| CacheError::InvalidAnswer {
            path: self.path.clone(),
            ip: ip_text.clone(),
            reason,
        };

        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_err(|err| invalid(format!("the page is not valid JSON: {err}")))?;
        let compressed = zstd::bulk::compress(body, ZSTD_LEVEL)
            .map_err(|err| invalid(format!("failed to compress the page: {err}")))?;

        let mut guard = self.lock();
        let Connected { conn, root_ids } = &mut *guard;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.path, OPERATION)?;
        let root_id = root_id(&tx, root_ids, url, true)
            .during(&self.path, OPERATION)?
            .expect("api_roots contains the URL inserted in this transaction");
        tx.prepare_cached(
            "INSERT INTO relationship_pages \
             (root_id, ip, relationship, form, cursor, page_size, body, body_bytes, fetched_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (root_id, ip, relationship, form, cursor, page_size) DO UPDATE SET \
             body = excluded.body, body_bytes = excluded.body_bytes, \
             fetched_at = excluded.fetched_at \
             WHERE excluded.fetched_at >= relationship_pages.fetched_at",
        )
        .and_then(|mut statement| {
            statement.execute((
                root_id,
                &ip_text,
                key.relationship,
                key.form.as_sql(),
                key.cursor,
                key.page_size,
                compressed,
                body.len() as i64,
                to_micros(fetched_at),
            ))
        })
        .during(&self.path, OPERATION)?;
        tx.commit().during(&self.path, OPERATION)?;
        if !root_ids.contains_key(url) {
            root_ids.insert(url.to_owned(), root_id);
        }
        Ok(())
    }
}
