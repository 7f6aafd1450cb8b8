//! Types that travel between the pipeline stages.
//!
//! The input stage produces [`InputItem`]s, the fetch stage turns each address into a
//! [`Lookup`], and the flattener turns a [`Lookup`] into one output row. Keeping these types in
//! one place lets every stage depend on them without depending on each other.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

/// Final status of one output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// The API (or the cache, or a saved document) returned the IP address object.
    Ok,
    /// The API answered 404 `NotFoundError`: VirusTotal has no object for this address.
    NotFound,
    /// The input value is not one IP address; nothing was sent for it.
    Invalid,
    /// The address is not globally routable and was not sent (see `--include-private`).
    Skipped,
    /// Every attempt failed, or the API rejected the request with a non-retryable error.
    Failed,
    /// The daily or monthly budget ran out before this address was looked up.
    QuotaExhausted,
}

impl Status {
    /// Returns the lower-case name written to the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotFound => "not_found",
            Status::Invalid => "invalid",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::QuotaExhausted => "quota_exhausted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Origin of the data in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AnswerSource {
    Api,
    Cache,
    File,
}

impl AnswerSource {
    /// Returns the lower-case name written to the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Api => "api",
            AnswerSource::Cache => "cache",
            AnswerSource::File => "file",
        }
    }
}

/// Position of a value in the input, for messages that point the user at the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name as given on the command line, or `-` for stdin.
    pub file: String,
    /// 1-based physical line number where the record starts.
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `-:17` would read as a negative number and start with a spreadsheet formula sign.
        let file = if self.file == "-" {
            "stdin"
        } else {
            &self.file
        };
        write!(f, "{file}:{}", self.line)
    }
}

/// One distinct value read from the input, after normalisation and dedupe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputItem {
    /// A globally routable address (or any address with `--include-private`) to look up.
    Lookup { ip: IpAddr, location: Location },
    /// An address that is not sent to the API, with the reason (for example `private (RFC 1918)`).
    Skipped {
        ip: IpAddr,
        location: Location,
        reason: String,
    },
    /// A value that is not one IP address. `raw` is the trimmed input text, cut to 200
    /// characters so binary junk cannot flood the output.
    Invalid {
        raw: String,
        location: Location,
        reason: String,
    },
}

/// The outcome of looking up one address: everything the flattener needs to write one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Canonical text of the address (RFC 5952 for IPv6), or the raw value for `invalid` rows.
    pub ip: String,
    /// 4 or 6; `None` for `invalid` rows.
    pub ip_version: Option<u8>,
    pub status: Status,
    /// VirusTotal error code (`NotFoundError`, `QuotaExceededError`, …) or a local code such as
    /// `InvalidAddress`, `Timeout`, `ConnectionError`, `InvalidResponse`.
    pub error_code: Option<String>,
    /// Human-readable reason; for `invalid` and `skipped` rows it names the input location.
    pub error_message: Option<String>,
    /// When the answer was fetched from the API (also for cached answers).
    pub fetched_at: Option<DateTime<Utc>>,
    pub source: Option<AnswerSource>,
    /// The JSON document returned for `ok` rows: `{"data": {...}}`, a bare object, or the flat
    /// form that the `vt` command-line tool prints. `None` for every other status.
    pub body: Option<Vec<u8>>,
}

impl Lookup {
    /// Builds a row without a document, for every status but `ok`.
    pub fn without_body(ip: &IpAddr, status: Status) -> Lookup {
        Lookup {
            ip: ip.to_string(),
            ip_version: Some(if ip.is_ipv4() { 4 } else { 6 }),
            status,
            error_code: None,
            error_message: None,
            fetched_at: None,
            source: None,
            body: None,
        }
    }
}

/// A relationship of the IP address object, named as in the API path
/// `/ip_addresses/{ip}/{relationship}`.
///
/// The list is the one of VirusTotal's IP address object reference
/// (<https://docs.virustotal.com/reference/ip-object>, "Relationships").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Relationship {
    Comments,
    CommunicatingFiles,
    DownloadedFiles,
    Graphs,
    HistoricalSslCertificates,
    HistoricalWhois,
    RelatedComments,
    RelatedReferences,
    RelatedThreatActors,
    ReferrerFiles,
    Resolutions,
    Urls,
}

impl Relationship {
    /// Every relationship, in the API reference's order.
    pub const ALL: [Relationship; 12] = [
        Relationship::Comments,
        Relationship::CommunicatingFiles,
        Relationship::DownloadedFiles,
        Relationship::Graphs,
        Relationship::HistoricalSslCertificates,
        Relationship::HistoricalWhois,
        Relationship::RelatedComments,
        Relationship::RelatedReferences,
        Relationship::RelatedThreatActors,
        Relationship::ReferrerFiles,
        Relationship::Resolutions,
        Relationship::Urls,
    ];

    /// Returns the name used in the API path, the output file name and the `relationship`
    /// column.
    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Comments => "comments",
            Relationship::CommunicatingFiles => "communicating_files",
            Relationship::DownloadedFiles => "downloaded_files",
            Relationship::Graphs => "graphs",
            Relationship::HistoricalSslCertificates => "historical_ssl_certificates",
            Relationship::HistoricalWhois => "historical_whois",
            Relationship::RelatedComments => "related_comments",
            Relationship::RelatedReferences => "related_references",
            Relationship::RelatedThreatActors => "related_threat_actors",
            Relationship::ReferrerFiles => "referrer_files",
            Relationship::Resolutions => "resolutions",
            Relationship::Urls => "urls",
        }
    }

    /// Parses an API name such as `historical_whois`.
    pub fn from_name(name: &str) -> Option<Relationship> {
        Relationship::ALL
            .into_iter()
            .find(|relationship| relationship.as_str() == name)
    }

    /// Returns the valid names joined with `, `, for error messages.
    pub fn names() -> String {
        Relationship::ALL.map(Relationship::as_str).join(", ")
    }

    /// Whether the API serves this relationship only to VirusTotal Enterprise (premium) keys;
    /// other keys get 403 `ForbiddenError`. The reference marks these with a lock and "only
    /// available for Premium API users", as on
    /// <https://gtidocs.virustotal.com/reference/ip-downloaded_files>.
    pub fn needs_enterprise(self) -> bool {
        matches!(
            self,
            Relationship::DownloadedFiles
                | Relationship::RelatedReferences
                | Relationship::RelatedThreatActors
                | Relationship::Urls
        )
    }
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
