//! Flattening of VirusTotal IP address objects into typed rows and Arrow record batches.
//!
//! [`flatten`] consumes one [`Lookup`] (the outcome of a lookup, with the JSON document for `ok`
//! rows) and produces a [`FlatRecord`]: the typed main row plus one [`EngineResult`] per engine
//! of `last_analysis_results`. It returns a row for every lookup, so a bad document never stops a
//! run, and it can run on worker threads. [`TableBuilder`]
//! collects records into Arrow [`RecordBatch`](arrow::record_batch::RecordBatch)es with the
//! fixed schema of [`main_schema`] and [`engines_schema`]; [`main_columns`] documents each column.
//!
//! The schema never depends on the documents: absent attributes are nulls, values of the wrong
//! type and attributes without a column go to the `extra_attributes` JSON column, so no value is
//! lost. Timestamps are microseconds since the Unix epoch with timezone UTC.
//!
//! Fetching, caching and writing files are left to other modules; see `crate::output` for
//! the writers.

mod attributes;
mod builder;
mod certificate;
mod document;
mod engines;
mod json;
pub mod related;
mod schema;

use chrono::{DateTime, Utc};

use crate::model::{AnswerSource, Lookup, Status};

pub use attributes::{AnalysisStats, IpAttributes, TotalVotes};
pub use builder::{TableBatches, TableBuilder};
pub use certificate::CertificateColumns;
pub use document::{check_ip_document, document_id};
pub use engines::{ENGINE_NAMES, EngineResult, OTHER_ENGINES_COLUMN, WIDE_ENGINE_PREFIX};
pub use schema::{
    ColumnDoc, FIELD_DOC_KEY, SCHEMA_VERSION, TIMESTAMP_TIMEZONE, engine_columns, engines_schema,
    main_columns, main_schema,
};

/// Error code written to `error_code` when an `ok` row's document cannot be flattened.
pub const INVALID_RESPONSE_CODE: &str = "InvalidResponse";

/// Output form of the per-engine results of `last_analysis_results`. The mode changes only
/// the engine columns and table, and `extra_attributes` is the same in every mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnginesMode {
    /// A second table with one row per (ip, engine): `ip`, `engine_name`, `category`, `method`,
    /// `result`.
    Long,
    /// One category column per engine of [`ENGINE_NAMES`] in the main table, plus
    /// [`OTHER_ENGINES_COLUMN`] for the rest. The `method` and `result` fields are not written.
    Wide,
    /// No engine data at all.
    None,
}

/// Reason a document is not accepted as an IP address object.
#[derive(Debug, thiserror::Error)]
pub enum FlattenError {
    #[error("invalid JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the document is a VirusTotal error response ({code}: {message}), not an object")]
    ErrorDocument { code: String, message: String },
    #[error("the document is a VirusTotal object of type {0:?}, expected \"ip_address\"")]
    WrongType(String),
    #[error("the document has no object type (no \"type\" or \"_type\" member)")]
    MissingType,
    #[error("the IP address object has no \"id\" (or \"_id\") member")]
    MissingId,
    #[error("the document is the object of `{found}`, not of the requested address `{requested}`")]
    IdMismatch { requested: String, found: String },
}

/// One flattened row, ready for [`TableBuilder::push`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlatRecord {
    pub ip: String,
    pub ip_version: Option<u8>,
    pub status: Status,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub source: Option<AnswerSource>,
    pub attributes: IpAttributes,
    /// Entries of `last_analysis_results`, in document order.
    pub engines: Vec<EngineResult>,
    /// JSON object text of the attributes without a column, or `None` when there are none.
    pub extra_attributes: Option<String>,
}

/// Parses `lookup.body` of an `ok` row and returns the typed row.
///
/// Never fails: a body that does not parse, or whose data is not an `ip_address` object,
/// turns the row into status `failed` with error code `InvalidResponse` and a message, and
/// the `ip` stays. That case is logged here as a warning with the address. A body on a row
/// whose status is not `ok` is ignored. When `lookup.ip` is empty, the document's `id` fills it,
/// and a missing `ip_version` of an `ok` row is derived from the address.
pub fn flatten(lookup: Lookup) -> FlatRecord {
    let Lookup {
        ip,
        ip_version,
        status,
        error_code,
        error_message,
        fetched_at,
        source,
        body,
    } = lookup;
    let mut record = FlatRecord {
        ip,
        ip_version,
        status,
        error_code,
        error_message,
        fetched_at,
        source,
        attributes: IpAttributes::default(),
        engines: Vec::new(),
        extra_attributes: None,
    };
    let Some(body) = body.filter(|_| status == Status::Ok) else {
        return record;
    };

    match document::parse_document(&body) {
        Ok(document) => {
            if record.ip.is_empty()
                && let Some(id) = &document.id
            {
                record.ip = id.to_string();
            }
            let extracted = attributes::extract(document.attributes);
            record.attributes = extracted.attributes;
            record.engines = extracted.engines;
            record.extra_attributes = extracted.extra_attributes;
        }
        Err(error) => {
            tracing::warn!(ip = %record.ip, %error, "response is not a VirusTotal IP address object");
            record.status = Status::Failed;
            record.error_code = Some(INVALID_RESPONSE_CODE.to_string());
            record.error_message = Some(format!(
                "the response is not a VirusTotal IP address object: {error}"
            ));
        }
    }

    if record.ip_version.is_none() {
        record.ip_version = match record.ip.parse::<std::net::IpAddr>() {
            Ok(address) if address.is_ipv4() => Some(4),
            Ok(_) => Some(6),
            Err(_) => None,
        };
    }
    record
}

#[cfg(test)]
mod tests;
