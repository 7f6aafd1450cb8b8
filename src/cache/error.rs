//! Errors of the cache, each naming the cache file and what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use super::BUSY_TIMEOUT;

/// Advice appended to errors that the user fixes by pointing at another file.
const OTHER_FILE: &str = "or pass another file with --cache PATH, or run with --no-cache";

/// An error of the cache. Every variant names the cache file, and the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory that should contain the cache file could not be created.
    #[error(
        "failed to create the directory of cache file {}: {source}; create it yourself, {OTHER_FILE}",
        path.display()
    )]
    CreateDir { path: PathBuf, source: io::Error },

    /// The file could not be opened or created (missing permissions, a directory in its place).
    #[error(
        "cannot open cache file {}: {source}; check that it is a regular file you can read and write, {OTHER_FILE}",
        path.display()
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// The file is not a SQLite database, or its pages are damaged.
    #[error(
        "cache file {} is not a SQLite database or is corrupt ({source}); delete it \
         (it contains only cached answers, which the next run fetches again, and request counts \
         for the budgets), {OTHER_FILE}",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// The file is a SQLite database that some other program created.
    #[error(
        "cache file {} is a SQLite database with tables of another program, not a vt-enrich cache; \
         nothing was changed in it; {OTHER_FILE}",
        path.display()
    )]
    ForeignDatabase { path: PathBuf },

    /// A newer vt-enrich changed the file's schema in a way this version cannot read.
    #[error(
        "cache file {} has schema version {found}, but this vt-enrich reads versions up to {supported}; \
         upgrade vt-enrich, {OTHER_FILE}",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// SQLite can read the file but not write it.
    #[error(
        "cache file {} is read-only{}; make the file and its directory writable \
         (SQLite also creates the -wal and -shm files beside it), {OTHER_FILE}",
        path.display(),
        source.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    ReadOnly {
        path: PathBuf,
        source: Option<rusqlite::Error>,
    },

    /// Another connection held the write lock for longer than the busy timeout.
    #[error(
        "cache file {} stayed locked by another process for more than {} s during {operation}; \
         retry when the other vt-enrich run has finished, {OTHER_FILE}",
        path.display(),
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        path: PathBuf,
        operation: &'static str,
        source: rusqlite::Error,
    },

    /// The disk (or a quota on it) is full.
    #[error(
        "cache file {} could not grow during {operation}: the disk is full; free some space \
         or remove old answers with `vt-enrich cache prune`, {OTHER_FILE}",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        operation: &'static str,
        source: rusqlite::Error,
    },

    /// Any other SQLite failure.
    #[error("cache operation {operation} failed on {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        operation: &'static str,
        source: rusqlite::Error,
    },

    /// A stored entry cannot be decoded (the file was changed outside vt-enrich).
    #[error(
        "the cached answer for {ip} in {} is invalid: {reason}; delete the cache file, {OTHER_FILE}",
        path.display()
    )]
    InvalidEntry {
        path: PathBuf,
        ip: String,
        reason: String,
    },

    /// `put` was given an answer that the cache does not store, such as an `Ok` without a body.
    #[error("cannot store the answer for {ip} in cache {}: {reason}", path.display())]
    InvalidAnswer {
        path: PathBuf,
        ip: String,
        reason: String,
    },

    /// Writing the export to its destination failed (a full disk, or a closed pipe).
    #[error("failed to write the export of cache {}: {source}", path.display())]
    ExportWrite { path: PathBuf, source: io::Error },
}

impl CacheError {
    /// Classifies a SQLite error, so the message gives the fix that applies to it.
    pub(crate) fn from_sqlite(
        path: &Path,
        operation: &'static str,
        source: rusqlite::Error,
    ) -> Self {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                CacheError::Corrupt { path, source }
            }
            Some(ErrorCode::ReadOnly) => CacheError::ReadOnly {
                path,
                source: Some(source),
            },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                CacheError::Open { path, source }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => CacheError::Busy {
                path,
                operation,
                source,
            },
            Some(ErrorCode::DiskFull) => CacheError::DiskFull {
                path,
                operation,
                source,
            },
            _ => CacheError::Sqlite {
                path,
                operation,
                source,
            },
        }
    }
}

/// Attaches the cache path and the operation name to SQLite errors.
pub(crate) trait SqliteResultExt<T> {
    fn during(self, path: &Path, operation: &'static str) -> Result<T, CacheError>;
}

impl<T> SqliteResultExt<T> for Result<T, rusqlite::Error> {
    fn during(self, path: &Path, operation: &'static str) -> Result<T, CacheError> {
        self.map_err(|source| CacheError::from_sqlite(path, operation, source))
    }
}
