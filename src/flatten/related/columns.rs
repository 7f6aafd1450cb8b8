//! The typed columns of each relationship table: which attribute each one reads, how, and
//! what it means.
//!
//! The relationships of an IP address return nine kinds of objects. Relationships that return
//! the same kind share one set of columns. An attribute that an object lacks leaves its column
//! null. The resolution, WHOIS and certificate attributes are those of the real responses in
//! `tests/data/responses`. The URL, reference and collection attributes are those of the
//! examples in VirusTotal's API reference (docs.virustotal.com/reference).
//!
//! NOTE: the file, comment and graph attribute names are VirusTotal's usual ones but were not
//! checked against a real response; a name that differs leaves its column null and the value
//! in `extra_attributes`.

use crate::model::Relationship;

use super::super::schema::Kind;

/// Parser of a column's JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    Text,
    Integer,
    /// Unix epoch seconds, stored as a UTC timestamp.
    EpochSeconds,
    /// A UTC `YYYY-MM-DD HH:MM:SS` string, stored as a UTC timestamp.
    DateText,
    TextList,
}

impl Read {
    pub(super) fn kind(self) -> Kind {
        match self {
            Read::Text => Kind::Utf8,
            Read::Integer => Kind::Int64,
            Read::EpochSeconds | Read::DateText => Kind::Timestamp,
            Read::TextList => Kind::Utf8List,
        }
    }
}

/// Location of a column's value in an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Path {
    /// `attributes.<key>`.
    Attribute(&'static str),
    /// `attributes.<parent>.<key>`.
    Nested(&'static str, &'static str),
    /// `context_attributes.<key>`: a fact about the link between the address and the object.
    Context(&'static str),
}

/// One typed column of a relationship table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Column {
    pub name: &'static str,
    pub read: Read,
    pub path: Path,
    pub doc: &'static str,
}

const fn column(name: &'static str, read: Read, path: Path, doc: &'static str) -> Column {
    Column {
        name,
        read,
        path,
        doc,
    }
}

const RESOLUTION: &[Column] = &[
    column(
        "host_name",
        Read::Text,
        Path::Attribute("host_name"),
        "Host name that resolved to the address (attribute host_name).",
    ),
    column(
        "date",
        Read::EpochSeconds,
        Path::Attribute("date"),
        "When the resolution was seen (attribute date, epoch seconds).",
    ),
    column(
        "resolver",
        Read::Text,
        Path::Attribute("resolver"),
        "Source of the resolution, for example VirusTotal (attribute resolver).",
    ),
    column(
        "host_name_last_analysis_stats_harmless",
        Read::Integer,
        Path::Nested("host_name_last_analysis_stats", "harmless"),
        "Engines that rated the host name harmless in its last analysis (attribute host_name_last_analysis_stats.harmless; absent from older resolutions).",
    ),
    column(
        "host_name_last_analysis_stats_malicious",
        Read::Integer,
        Path::Nested("host_name_last_analysis_stats", "malicious"),
        "Engines that rated the host name malicious (attribute host_name_last_analysis_stats.malicious).",
    ),
    column(
        "host_name_last_analysis_stats_suspicious",
        Read::Integer,
        Path::Nested("host_name_last_analysis_stats", "suspicious"),
        "Engines that rated the host name suspicious (attribute host_name_last_analysis_stats.suspicious).",
    ),
    column(
        "host_name_last_analysis_stats_timeout",
        Read::Integer,
        Path::Nested("host_name_last_analysis_stats", "timeout"),
        "Engines that timed out on the host name (attribute host_name_last_analysis_stats.timeout).",
    ),
    column(
        "host_name_last_analysis_stats_undetected",
        Read::Integer,
        Path::Nested("host_name_last_analysis_stats", "undetected"),
        "Engines with no opinion on the host name (attribute host_name_last_analysis_stats.undetected).",
    ),
];

const FILE: &[Column] = &[
    column(
        "sha256",
        Read::Text,
        Path::Attribute("sha256"),
        "SHA-256 of the file (attribute sha256); the id holds it too.",
    ),
    column(
        "md5",
        Read::Text,
        Path::Attribute("md5"),
        "MD5 of the file (attribute md5).",
    ),
    column(
        "sha1",
        Read::Text,
        Path::Attribute("sha1"),
        "SHA-1 of the file (attribute sha1).",
    ),
    column(
        "type_description",
        Read::Text,
        Path::Attribute("type_description"),
        "File type in words, for example Win32 EXE (attribute type_description).",
    ),
    column(
        "size",
        Read::Integer,
        Path::Attribute("size"),
        "File size in bytes (attribute size).",
    ),
    column(
        "meaningful_name",
        Read::Text,
        Path::Attribute("meaningful_name"),
        "The most interesting of the file's names (attribute meaningful_name).",
    ),
    column(
        "reputation",
        Read::Integer,
        Path::Attribute("reputation"),
        "Score from the community's votes; negative means malicious (attribute reputation).",
    ),
    column(
        "tags",
        Read::TextList,
        Path::Attribute("tags"),
        "Tags VirusTotal gave the file (attribute tags).",
    ),
    column(
        "last_analysis_stats_harmless",
        Read::Integer,
        Path::Nested("last_analysis_stats", "harmless"),
        "Engines that rated the file harmless in the last analysis (attribute last_analysis_stats.harmless).",
    ),
    column(
        "last_analysis_stats_malicious",
        Read::Integer,
        Path::Nested("last_analysis_stats", "malicious"),
        "Engines that rated the file malicious (attribute last_analysis_stats.malicious).",
    ),
    column(
        "last_analysis_stats_suspicious",
        Read::Integer,
        Path::Nested("last_analysis_stats", "suspicious"),
        "Engines that rated the file suspicious (attribute last_analysis_stats.suspicious).",
    ),
    column(
        "last_analysis_stats_timeout",
        Read::Integer,
        Path::Nested("last_analysis_stats", "timeout"),
        "Engines that timed out (attribute last_analysis_stats.timeout).",
    ),
    column(
        "last_analysis_stats_undetected",
        Read::Integer,
        Path::Nested("last_analysis_stats", "undetected"),
        "Engines with no opinion (attribute last_analysis_stats.undetected). Other counts, such as type-unsupported, stay in extra_attributes.",
    ),
    column(
        "first_submission_date",
        Read::EpochSeconds,
        Path::Attribute("first_submission_date"),
        "When the file was first submitted (attribute first_submission_date, epoch seconds).",
    ),
    column(
        "last_submission_date",
        Read::EpochSeconds,
        Path::Attribute("last_submission_date"),
        "When the file was last submitted (attribute last_submission_date, epoch seconds).",
    ),
    column(
        "last_analysis_date",
        Read::EpochSeconds,
        Path::Attribute("last_analysis_date"),
        "When the file was last scanned (attribute last_analysis_date, epoch seconds).",
    ),
];

const CERTIFICATE: &[Column] = &[
    column(
        "thumbprint_sha256",
        Read::Text,
        Path::Attribute("thumbprint_sha256"),
        "SHA-256 fingerprint of the certificate (attribute thumbprint_sha256).",
    ),
    column(
        "thumbprint",
        Read::Text,
        Path::Attribute("thumbprint"),
        "SHA-1 fingerprint of the certificate (attribute thumbprint).",
    ),
    column(
        "serial_number",
        Read::Text,
        Path::Attribute("serial_number"),
        "Serial number, hexadecimal (attribute serial_number).",
    ),
    column(
        "subject_cn",
        Read::Text,
        Path::Nested("subject", "CN"),
        "Common name of the subject (attribute subject.CN).",
    ),
    column(
        "issuer_cn",
        Read::Text,
        Path::Nested("issuer", "CN"),
        "Common name of the issuer (attribute issuer.CN).",
    ),
    column(
        "issuer_o",
        Read::Text,
        Path::Nested("issuer", "O"),
        "Organization of the issuer (attribute issuer.O).",
    ),
    column(
        "validity_not_before",
        Read::DateText,
        Path::Nested("validity", "not_before"),
        "Start of the validity (attribute validity.not_before, a UTC `YYYY-MM-DD HH:MM:SS` string).",
    ),
    column(
        "validity_not_after",
        Read::DateText,
        Path::Nested("validity", "not_after"),
        "End of the validity (attribute validity.not_after, a UTC `YYYY-MM-DD HH:MM:SS` string).",
    ),
    column(
        "first_seen_date",
        Read::EpochSeconds,
        Path::Context("first_seen_date"),
        "When the address was first seen serving the certificate (context_attributes.first_seen_date, epoch seconds).",
    ),
    column(
        "port",
        Read::Integer,
        Path::Context("port"),
        "Port on which the address served the certificate (context_attributes.port).",
    ),
];

const WHOIS: &[Column] = &[
    column(
        "first_seen_date",
        Read::EpochSeconds,
        Path::Attribute("first_seen_date"),
        "When VirusTotal first saw this WHOIS record (attribute first_seen_date, epoch seconds).",
    ),
    column(
        "last_updated",
        Read::EpochSeconds,
        Path::Attribute("last_updated"),
        "When the record was last updated at its registry (attribute last_updated, epoch seconds).",
    ),
    column(
        "registrar_name",
        Read::Text,
        Path::Attribute("registrar_name"),
        "Registrar of the record (attribute registrar_name; absent from RIR records of addresses).",
    ),
    column(
        "registrant_country",
        Read::Text,
        Path::Attribute("registrant_country"),
        "Country of the registrant as the record gives it, for example AU or dk (attribute registrant_country).",
    ),
];

const COMMENT: &[Column] = &[
    column(
        "date",
        Read::EpochSeconds,
        Path::Attribute("date"),
        "When the comment was posted (attribute date, epoch seconds).",
    ),
    column(
        "text",
        Read::Text,
        Path::Attribute("text"),
        "Text of the comment (attribute text).",
    ),
    column(
        "tags",
        Read::TextList,
        Path::Attribute("tags"),
        "Hashtags of the comment (attribute tags).",
    ),
    column(
        "votes_positive",
        Read::Integer,
        Path::Nested("votes", "positive"),
        "Positive votes on the comment (attribute votes.positive).",
    ),
    column(
        "votes_negative",
        Read::Integer,
        Path::Nested("votes", "negative"),
        "Negative votes on the comment (attribute votes.negative).",
    ),
    column(
        "votes_abuse",
        Read::Integer,
        Path::Nested("votes", "abuse"),
        "Votes reporting the comment as abuse (attribute votes.abuse).",
    ),
];

const GRAPH: &[Column] = &[
    column(
        "name",
        Read::Text,
        Path::Attribute("name"),
        "Title of the graph (attribute name); the id is the graph's id.",
    ),
    column(
        "creation_date",
        Read::EpochSeconds,
        Path::Attribute("creation_date"),
        "When the graph was created (attribute creation_date, epoch seconds).",
    ),
    column(
        "last_modified_date",
        Read::EpochSeconds,
        Path::Attribute("last_modified_date"),
        "When the graph last changed (attribute last_modified_date, epoch seconds).",
    ),
];

const URL: &[Column] = &[
    column(
        "url",
        Read::Text,
        Path::Attribute("url"),
        "The URL (attribute url); the id is its VirusTotal identifier.",
    ),
    column(
        "last_final_url",
        Read::Text,
        Path::Attribute("last_final_url"),
        "URL reached after redirects at the last analysis (attribute last_final_url).",
    ),
    column(
        "title",
        Read::Text,
        Path::Attribute("title"),
        "Title of the page (attribute title).",
    ),
    column(
        "last_http_response_code",
        Read::Integer,
        Path::Attribute("last_http_response_code"),
        "HTTP status of the last fetch (attribute last_http_response_code).",
    ),
    column(
        "reputation",
        Read::Integer,
        Path::Attribute("reputation"),
        "Score from the community's votes; negative means malicious (attribute reputation).",
    ),
    column(
        "last_analysis_stats_harmless",
        Read::Integer,
        Path::Nested("last_analysis_stats", "harmless"),
        "Engines that rated the URL harmless in the last analysis (attribute last_analysis_stats.harmless).",
    ),
    column(
        "last_analysis_stats_malicious",
        Read::Integer,
        Path::Nested("last_analysis_stats", "malicious"),
        "Engines that rated the URL malicious (attribute last_analysis_stats.malicious).",
    ),
    column(
        "last_analysis_stats_suspicious",
        Read::Integer,
        Path::Nested("last_analysis_stats", "suspicious"),
        "Engines that rated the URL suspicious (attribute last_analysis_stats.suspicious).",
    ),
    column(
        "last_analysis_stats_timeout",
        Read::Integer,
        Path::Nested("last_analysis_stats", "timeout"),
        "Engines that timed out (attribute last_analysis_stats.timeout).",
    ),
    column(
        "last_analysis_stats_undetected",
        Read::Integer,
        Path::Nested("last_analysis_stats", "undetected"),
        "Engines with no opinion (attribute last_analysis_stats.undetected).",
    ),
    column(
        "first_submission_date",
        Read::EpochSeconds,
        Path::Attribute("first_submission_date"),
        "When the URL was first submitted (attribute first_submission_date, epoch seconds).",
    ),
    column(
        "last_analysis_date",
        Read::EpochSeconds,
        Path::Attribute("last_analysis_date"),
        "When the URL was last scanned (attribute last_analysis_date, epoch seconds).",
    ),
];

const REFERENCE: &[Column] = &[
    column(
        "title",
        Read::Text,
        Path::Attribute("title"),
        "Title of the report or article (attribute title).",
    ),
    column(
        "url",
        Read::Text,
        Path::Attribute("url"),
        "Where the reference is published (attribute url).",
    ),
    column(
        "author",
        Read::Text,
        Path::Attribute("author"),
        "Author of the reference (attribute author).",
    ),
    column(
        "creation_date",
        Read::EpochSeconds,
        Path::Attribute("creation_date"),
        "Publication date of the reference (attribute creation_date, epoch seconds).",
    ),
];

const THREAT_ACTOR: &[Column] = &[
    column(
        "name",
        Read::Text,
        Path::Attribute("name"),
        "Name of the threat actor (attribute name).",
    ),
    column(
        "alt_names",
        Read::TextList,
        Path::Attribute("alt_names"),
        "Other names of the threat actor (attribute alt_names).",
    ),
    column(
        "description",
        Read::Text,
        Path::Attribute("description"),
        "Description of the threat actor (attribute description).",
    ),
    column(
        "creation_date",
        Read::EpochSeconds,
        Path::Attribute("creation_date"),
        "When the threat actor's entry was created (attribute creation_date, epoch seconds).",
    ),
    column(
        "last_modification_date",
        Read::EpochSeconds,
        Path::Attribute("last_modification_date"),
        "When the entry last changed (attribute last_modification_date, epoch seconds).",
    ),
];

/// Returns the typed columns of a relationship's table, after the common ones.
pub(super) fn columns(relationship: Relationship) -> &'static [Column] {
    match relationship {
        Relationship::Resolutions => RESOLUTION,
        Relationship::CommunicatingFiles
        | Relationship::DownloadedFiles
        | Relationship::ReferrerFiles => FILE,
        Relationship::HistoricalSslCertificates => CERTIFICATE,
        Relationship::HistoricalWhois => WHOIS,
        Relationship::Comments | Relationship::RelatedComments => COMMENT,
        Relationship::Graphs => GRAPH,
        Relationship::Urls => URL,
        Relationship::RelatedReferences => REFERENCE,
        Relationship::RelatedThreatActors => THREAT_ACTOR,
    }
}

/// Columns that every relationship table starts with, in output order.
pub(super) const LEADING: &[(&str, Kind, &str)] = &[
    (
        "ip",
        Kind::Utf8,
        "IP address the relationship belongs to, as in the main table's ip column.",
    ),
    (
        "relationship",
        Kind::Utf8,
        "Relationship name, as in the API path /ip_addresses/{ip}/{relationship}.",
    ),
    (
        "position",
        Kind::Int64,
        "0-based position of the item in the address's list, in the API's order; null on a row that stands for the whole relationship, such as a 403.",
    ),
    (
        "id",
        Kind::Utf8,
        "Id of the related object: a file's SHA-256, a certificate's SHA-256 thumbprint, a resolution's address followed by its host name.",
    ),
    (
        "type",
        Kind::Utf8,
        "Type of the related object, for example file, resolution, ssl_cert, whois, comment, graph, url, reference or collection.",
    ),
    (
        "error_code",
        Kind::Utf8,
        "VirusTotal error code of an item that came back as an error, or of a relationship that could not be fetched (ForbiddenError, NotFoundError, or a local code such as Timeout); null otherwise.",
    ),
    (
        "error_message",
        Kind::Utf8,
        "Human-readable reason that goes with error_code.",
    ),
    (
        "fetched_at",
        Kind::Timestamp,
        "When the page with this item was fetched from the API (also for pages served from the cache).",
    ),
    (
        "source",
        Kind::Utf8,
        "Where the page came from: api or cache.",
    ),
];

/// Columns that every relationship table ends with, in output order.
pub(super) const TRAILING: &[(&str, Kind, &str)] = &[
    (
        "context_attributes",
        Kind::Utf8,
        "JSON object with the item's context_attributes (facts about the link itself) that have no column; null when there are none.",
    ),
    (
        "extra_attributes",
        Kind::Utf8,
        "JSON object with every attribute of the related object that has no column, so nothing is lost; null when there are none or for descriptors.",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn column_names_are_unique_in_every_table() {
        for relationship in Relationship::ALL {
            let mut names: HashSet<&str> = HashSet::new();
            let all = LEADING
                .iter()
                .map(|(name, ..)| *name)
                .chain(columns(relationship).iter().map(|column| column.name))
                .chain(TRAILING.iter().map(|(name, ..)| *name));
            for name in all {
                assert!(names.insert(name), "{name} twice in {relationship}");
            }
        }
    }

    #[test]
    fn timestamps_read_dates_and_lists_read_lists() {
        for relationship in Relationship::ALL {
            for column in columns(relationship) {
                let dated = column.name.ends_with("_date")
                    || column.name == "date"
                    || column.name == "last_updated"
                    || column.name.starts_with("validity_");
                assert_eq!(
                    column.read.kind() == Kind::Timestamp,
                    dated,
                    "{relationship}.{}",
                    column.name
                );
            }
        }
    }
}
