//! The fixed output columns: names, Arrow types and documentation.
//!
//! The attribute list follows VirusTotal's description of the IP address object
//! (<https://docs.virustotal.com/reference/ip-object>). The schema depends only on the
//! [`EnginesMode`], never on the documents, so every run writes the same columns.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::EnginesMode;
use super::engines::{ENGINE_NAMES, OTHER_ENGINES_COLUMN, WIDE_ENGINE_PREFIX};

/// Version of the column layout, written to the Parquet key-value metadata. Increase it when a
/// column is added, removed, renamed or changes type.
pub const SCHEMA_VERSION: &str = "1";

/// Timezone of every timestamp column. With a timezone set, parquet 60.1 writes the Parquet
/// type for instants, TIMESTAMP(isAdjustedToUTC = true, MICROS). The unit is microseconds
/// because they cover the years 1 to 9999, where nanoseconds end in the year 2262.
pub const TIMESTAMP_TIMEZONE: &str = "UTC";

/// Key of the per-field Arrow metadata entry that contains the column's documentation.
pub const FIELD_DOC_KEY: &str = "doc";

/// One column as `vt-enrich schema` prints it; serializes as `{"name", "data_type", "doc"}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ColumnDoc {
    pub name: String,
    /// Arrow type in words, for example `timestamp[us, UTC]` or `list<utf8>`.
    pub data_type: String,
    /// Meaning, unit and the attribute the value comes from.
    pub doc: String,
}

/// Physical kind of a column, shared by the schema and the builders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Utf8,
    Int8,
    Int64,
    /// Microseconds since the Unix epoch, timezone UTC.
    Timestamp,
    Utf8List,
}

impl Kind {
    pub(super) fn data_type(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::Int8 => DataType::Int8,
            Kind::Int64 => DataType::Int64,
            Kind::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(TIMESTAMP_TIMEZONE.into()))
            }
            Kind::Utf8List => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Utf8 => "utf8",
            Kind::Int8 => "int8",
            Kind::Int64 => "int64",
            Kind::Timestamp => "timestamp[us, UTC]",
            Kind::Utf8List => "list<utf8>",
        }
    }
}

/// The main table's columns before the engine columns, in output order. The builder in
/// `builder.rs` appends values in exactly this order.
const MAIN_COLUMNS: &[(&str, Kind, &str)] = &[
    (
        "ip",
        Kind::Utf8,
        "IP address looked up: RFC 5952 text for IPv6, or the raw input value for invalid rows.",
    ),
    ("ip_version", Kind::Int8, "4 or 6; null for invalid rows."),
    (
        "status",
        Kind::Utf8,
        "Outcome of the lookup: ok, not_found, invalid, skipped, failed or quota_exhausted.",
    ),
    (
        "error_code",
        Kind::Utf8,
        "VirusTotal error code (for example NotFoundError) or a local code such as InvalidAddress, Timeout or InvalidResponse; null for ok rows.",
    ),
    (
        "error_message",
        Kind::Utf8,
        "Human-readable reason for a status other than ok.",
    ),
    (
        "fetched_at",
        Kind::Timestamp,
        "When the answer was fetched from the API (also for answers served from the cache).",
    ),
    (
        "source",
        Kind::Utf8,
        "Where the answer came from: api, cache or file.",
    ),
    (
        "as_owner",
        Kind::Utf8,
        "Owner of the autonomous system the address belongs to (attribute as_owner).",
    ),
    (
        "asn",
        Kind::Int64,
        "Autonomous system number the address belongs to (attribute asn).",
    ),
    (
        "continent",
        Kind::Utf8,
        "Continent where the address is placed, ISO-3166 continent code (attribute continent).",
    ),
    (
        "country",
        Kind::Utf8,
        "Country where the address is placed, ISO-3166 country code (attribute country).",
    ),
    (
        "jarm",
        Kind::Utf8,
        "JARM TLS server fingerprint of the address (attribute jarm).",
    ),
    (
        "network",
        Kind::Utf8,
        "Network range the address belongs to, in CIDR notation (attribute network).",
    ),
    (
        "regional_internet_registry",
        Kind::Utf8,
        "Regional Internet registry that allocated the address, for example ARIN or RIPE NCC (attribute regional_internet_registry).",
    ),
    (
        "reputation",
        Kind::Int64,
        "Score computed from the VirusTotal community's votes; negative means malicious (attribute reputation).",
    ),
    (
        "tags",
        Kind::Utf8List,
        "Tags VirusTotal gave the address, for example vpn or self-signed (attribute tags).",
    ),
    (
        "whois",
        Kind::Utf8,
        "WHOIS record text as VirusTotal stored it (attribute whois).",
    ),
    (
        "whois_date",
        Kind::Timestamp,
        "When VirusTotal last updated the WHOIS record (attribute whois_date, epoch seconds).",
    ),
    (
        "last_analysis_date",
        Kind::Timestamp,
        "When the address was last scanned (attribute last_analysis_date, epoch seconds).",
    ),
    (
        "last_modification_date",
        Kind::Timestamp,
        "When the object last changed (attribute last_modification_date, epoch seconds).",
    ),
    (
        "last_https_certificate_date",
        Kind::Timestamp,
        "When the HTTPS certificate was retrieved (attribute last_https_certificate_date, epoch seconds).",
    ),
    (
        "first_seen_date",
        Kind::Timestamp,
        "When VirusTotal first saw the address (attribute first_seen_date, epoch seconds; absent from older objects).",
    ),
    (
        "last_analysis_stats_harmless",
        Kind::Int64,
        "Number of engines that rated the address harmless in the last analysis (attribute last_analysis_stats.harmless).",
    ),
    (
        "last_analysis_stats_malicious",
        Kind::Int64,
        "Number of engines that rated the address malicious (attribute last_analysis_stats.malicious).",
    ),
    (
        "last_analysis_stats_suspicious",
        Kind::Int64,
        "Number of engines that rated the address suspicious (attribute last_analysis_stats.suspicious).",
    ),
    (
        "last_analysis_stats_timeout",
        Kind::Int64,
        "Number of engines that timed out (attribute last_analysis_stats.timeout).",
    ),
    (
        "last_analysis_stats_undetected",
        Kind::Int64,
        "Number of engines with no opinion (attribute last_analysis_stats.undetected). The stats are copied as given and may not match the number of engine results.",
    ),
    (
        "total_votes_harmless",
        Kind::Int64,
        "Community votes saying harmless (attribute total_votes.harmless).",
    ),
    (
        "total_votes_malicious",
        Kind::Int64,
        "Community votes saying malicious (attribute total_votes.malicious).",
    ),
    (
        "last_https_certificate_subject_cn",
        Kind::Utf8,
        "Common name of the certificate subject (last_https_certificate.subject.CN).",
    ),
    (
        "last_https_certificate_issuer_c",
        Kind::Utf8,
        "Country of the certificate issuer (last_https_certificate.issuer.C).",
    ),
    (
        "last_https_certificate_issuer_cn",
        Kind::Utf8,
        "Common name of the certificate issuer (last_https_certificate.issuer.CN).",
    ),
    (
        "last_https_certificate_issuer_o",
        Kind::Utf8,
        "Organization of the certificate issuer (last_https_certificate.issuer.O).",
    ),
    (
        "last_https_certificate_validity_not_before",
        Kind::Timestamp,
        "Start of the certificate validity (last_https_certificate.validity.not_before, a UTC `YYYY-MM-DD HH:MM:SS` string).",
    ),
    (
        "last_https_certificate_validity_not_after",
        Kind::Timestamp,
        "End of the certificate validity (last_https_certificate.validity.not_after, a UTC `YYYY-MM-DD HH:MM:SS` string).",
    ),
    (
        "last_https_certificate_serial_number",
        Kind::Utf8,
        "Certificate serial number in hexadecimal (last_https_certificate.serial_number).",
    ),
    (
        "last_https_certificate_thumbprint",
        Kind::Utf8,
        "SHA-1 fingerprint of the certificate in hexadecimal (last_https_certificate.thumbprint).",
    ),
    (
        "last_https_certificate_thumbprint_sha256",
        Kind::Utf8,
        "SHA-256 fingerprint of the certificate in hexadecimal (last_https_certificate.thumbprint_sha256).",
    ),
    (
        "last_https_certificate_extensions_subject_alternative_name",
        Kind::Utf8List,
        "Subject alternative names, verbatim (last_https_certificate.extensions.subject_alternative_name).",
    ),
    (
        "last_https_certificate_public_key_algorithm",
        Kind::Utf8,
        "Public key algorithm, for example RSA or EC (last_https_certificate.public_key.algorithm).",
    ),
    (
        "last_https_certificate_public_key_size",
        Kind::Int64,
        "Public key size in bits: public_key.rsa.key_size for RSA keys, or the field size of a well-known named curve (public_key.ec.oid, for example secp256r1 gives 256) for EC keys; null for other curves.",
    ),
    (
        "last_https_certificate_signature_algorithm",
        Kind::Utf8,
        "Signature algorithm, for example sha256RSA (last_https_certificate.signature_algorithm).",
    ),
    (
        "last_https_certificate_version",
        Kind::Utf8,
        "X.509 version, for example V3 (last_https_certificate.version).",
    ),
    (
        "last_https_certificate_size",
        Kind::Int64,
        "Size of the encoded certificate in bytes (last_https_certificate.size).",
    ),
    (
        "extra_attributes",
        Kind::Utf8,
        "JSON object with every attribute that has no column of its own (for example rdap, crowdsourced_context, gti_assessment, and a last_https_certificate object with the certificate fields that have no column). A value of the wrong type for its column (a string asn, a negative or fractional date, an object where a list belongs) is kept here under its own key and its column stays null. Parts of last_analysis_results that an engine row cannot hold (an entry that is not an object, an unknown field, a field of the wrong type) are kept here too, whatever the engines mode. Null when empty.",
    ),
];

/// Columns of the engines table (`EnginesMode::Long`), in output order.
const ENGINE_COLUMNS: &[(&str, Kind, &str)] = &[
    (
        "ip",
        Kind::Utf8,
        "IP address, as in the main table's ip column.",
    ),
    (
        "engine_name",
        Kind::Utf8,
        "Name of the engine, verbatim (last_analysis_results.<engine>.engine_name, or the map key when that field is absent).",
    ),
    (
        "category",
        Kind::Utf8,
        "Normalized verdict: harmless, undetected, suspicious, malicious or timeout (last_analysis_results.<engine>.category).",
    ),
    (
        "method",
        Kind::Utf8,
        "How the engine reached its verdict, for example blacklist (last_analysis_results.<engine>.method).",
    ),
    (
        "result",
        Kind::Utf8,
        "The engine's own result label, for example clean or phishing (last_analysis_results.<engine>.result).",
    ),
];

pub(super) fn field(name: &str, kind: Kind, doc: &str) -> Field {
    let metadata = HashMap::from([(FIELD_DOC_KEY.to_string(), doc.to_string())]);
    Field::new(name, kind.data_type(), true).with_metadata(metadata)
}

pub(super) fn column_doc(name: &str, kind: Kind, doc: &str) -> ColumnDoc {
    ColumnDoc {
        name: name.to_string(),
        data_type: kind.describe().to_string(),
        doc: doc.to_string(),
    }
}

/// Lists every main-table column in output order, with its kind and documentation.
fn main_column_specs(mode: EnginesMode) -> Vec<(String, Kind, String)> {
    let mut specs: Vec<(String, Kind, String)> = MAIN_COLUMNS
        .iter()
        .map(|(name, kind, doc)| (name.to_string(), *kind, doc.to_string()))
        .collect();
    if mode == EnginesMode::Wide {
        for engine in ENGINE_NAMES {
            specs.push((
                format!("{WIDE_ENGINE_PREFIX}{engine}"),
                Kind::Utf8,
                format!(
                    "Category that the engine \"{engine}\" gave in the last analysis \
                     (last_analysis_results.{engine}.category); null when the engine is absent."
                ),
            ));
        }
        specs.push((
            OTHER_ENGINES_COLUMN.to_string(),
            Kind::Utf8,
            "JSON object mapping the name of every engine without a column of its own to its \
             category (last_analysis_results); null when there is none."
                .to_string(),
        ));
    }
    specs
}

/// Returns the Arrow schema of the main table. The schema is built once per mode and shared.
pub fn main_schema(mode: EnginesMode) -> SchemaRef {
    static LONG: OnceLock<SchemaRef> = OnceLock::new();
    static WIDE: OnceLock<SchemaRef> = OnceLock::new();
    static NONE: OnceLock<SchemaRef> = OnceLock::new();
    let cell = match mode {
        EnginesMode::Long => &LONG,
        EnginesMode::Wide => &WIDE,
        EnginesMode::None => &NONE,
    };
    cell.get_or_init(|| {
        let fields: Vec<Field> = main_column_specs(mode)
            .iter()
            .map(|(name, kind, doc)| field(name, *kind, doc))
            .collect();
        Arc::new(Schema::new(fields))
    })
    .clone()
}

/// Returns the Arrow schema of the engines table written with `EnginesMode::Long`.
pub fn engines_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields: Vec<Field> = ENGINE_COLUMNS
                .iter()
                .map(|(name, kind, doc)| field(name, *kind, doc))
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Lists the main table's columns with their types and documentation, in output order.
pub fn main_columns(mode: EnginesMode) -> Vec<ColumnDoc> {
    main_column_specs(mode)
        .iter()
        .map(|(name, kind, doc)| column_doc(name, *kind, doc))
        .collect()
}

/// Lists the engines table's columns with their types and documentation, in output order.
pub fn engine_columns() -> Vec<ColumnDoc> {
    ENGINE_COLUMNS
        .iter()
        .map(|(name, kind, doc)| column_doc(name, *kind, doc))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn column_names_are_unique_in_every_mode() {
        for mode in [EnginesMode::Long, EnginesMode::Wide, EnginesMode::None] {
            let columns = main_columns(mode);
            let names: HashSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names.len(), columns.len(), "duplicate column in {mode:?}");
        }
    }

    #[test]
    fn wide_mode_adds_engine_columns_only() {
        let long = main_schema(EnginesMode::Long);
        let wide = main_schema(EnginesMode::Wide);
        assert_eq!(long.fields().len(), MAIN_COLUMNS.len());
        assert_eq!(
            wide.fields().len(),
            MAIN_COLUMNS.len() + ENGINE_NAMES.len() + 1
        );
        assert_eq!(&wide.fields()[..MAIN_COLUMNS.len()], &long.fields()[..]);
        assert!(wide.field_with_name("last_analysis_results_Dr.Web").is_ok());
        assert!(
            wide.field_with_name("last_analysis_results_Antiy-AVL")
                .is_ok()
        );
        assert!(
            wide.field_with_name("last_analysis_results_Criminal IP")
                .is_ok()
        );
    }

    #[test]
    fn every_field_has_doc_metadata() {
        for mode in [EnginesMode::Long, EnginesMode::Wide] {
            for field in main_schema(mode).fields() {
                let doc = field.metadata().get(FIELD_DOC_KEY);
                assert!(
                    doc.is_some_and(|d| !d.is_empty()),
                    "{} has no doc",
                    field.name()
                );
            }
        }
        for field in engines_schema().fields() {
            assert!(
                field.metadata().contains_key(FIELD_DOC_KEY),
                "{}",
                field.name()
            );
        }
    }

    #[test]
    fn column_docs_match_schema() {
        let schema = main_schema(EnginesMode::Wide);
        let docs = main_columns(EnginesMode::Wide);
        assert_eq!(schema.fields().len(), docs.len());
        for (field, doc) in schema.fields().iter().zip(&docs) {
            assert_eq!(field.name(), &doc.name);
        }
        let fetched_at = docs.iter().find(|c| c.name == "fetched_at").unwrap();
        assert_eq!(fetched_at.data_type, "timestamp[us, UTC]");
        let tags = docs.iter().find(|c| c.name == "tags").unwrap();
        assert_eq!(tags.data_type, "list<utf8>");
    }
}
