//! Typed columns of the IP address object's attributes.
//!
//! Coercion rule: a value of the type its column expects fills the column, and JSON `null`
//! counts as absent. Any other value is copied verbatim into `extra_attributes` under its own
//! key, and the column stays null. Examples are a string `asn`, a negative or fractional date,
//! an object where a list belongs, and a second occurrence of a key. Attributes without a
//! column are copied the same way.

use serde_json::value::RawValue;

use super::certificate::CertificateColumns;
use super::engines::{EngineResult, take_results};
use super::json::{
    Entries, ExtraObject, Leaf, epoch_seconds, integer, split_entries, split_nested, store, string,
    string_list,
};

/// Counts from `last_analysis_stats`, copied as given: they may not match the engine results.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisStats {
    pub harmless: Option<i64>,
    pub malicious: Option<i64>,
    pub suspicious: Option<i64>,
    pub timeout: Option<i64>,
    pub undetected: Option<i64>,
}

/// Community votes from `total_votes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TotalVotes {
    pub harmless: Option<i64>,
    pub malicious: Option<i64>,
}

/// The attributes that have typed columns. Timestamps are microseconds since the Unix epoch,
/// UTC. Every field is `None` when the attribute is absent, null or of the wrong type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IpAttributes {
    pub as_owner: Option<String>,
    pub asn: Option<i64>,
    pub continent: Option<String>,
    pub country: Option<String>,
    pub jarm: Option<String>,
    pub network: Option<String>,
    pub regional_internet_registry: Option<String>,
    pub reputation: Option<i64>,
    pub tags: Option<Vec<String>>,
    pub whois: Option<String>,
    pub whois_date: Option<i64>,
    pub last_analysis_date: Option<i64>,
    pub last_modification_date: Option<i64>,
    pub last_https_certificate_date: Option<i64>,
    pub first_seen_date: Option<i64>,
    pub last_analysis_stats: AnalysisStats,
    pub total_votes: TotalVotes,
    pub last_https_certificate: CertificateColumns,
}

/// Everything read from the attributes of one document.
#[derive(Debug, Default)]
pub(super) struct Extracted {
    pub attributes: IpAttributes,
    pub engines: Vec<EngineResult>,
    /// JSON text of `extra_attributes`, `None` when every attribute had a column.
    pub extra_attributes: Option<String>,
}

/// Splits the attribute entries into typed columns, engine results and the extra object.
pub(super) fn extract(entries: Entries<'_>) -> Extracted {
    let mut attributes = IpAttributes::default();
    let mut engines = Vec::new();
    let extra: ExtraObject = split_entries(entries, |key, raw| {
        take_attribute(&mut attributes, &mut engines, key, raw)
    });
    Extracted {
        attributes,
        engines,
        extra_attributes: extra.finish(),
    }
}

fn take_attribute(
    attributes: &mut IpAttributes,
    engines: &mut Vec<EngineResult>,
    key: &str,
    raw: &RawValue,
) -> Leaf {
    match key {
        "as_owner" => store(&mut attributes.as_owner, string(raw)).into(),
        "asn" => store(&mut attributes.asn, integer(raw)).into(),
        "continent" => store(&mut attributes.continent, string(raw)).into(),
        "country" => store(&mut attributes.country, string(raw)).into(),
        "jarm" => store(&mut attributes.jarm, string(raw)).into(),
        "network" => store(&mut attributes.network, string(raw)).into(),
        "regional_internet_registry" => {
            store(&mut attributes.regional_internet_registry, string(raw)).into()
        }
        "reputation" => store(&mut attributes.reputation, integer(raw)).into(),
        "tags" => store(&mut attributes.tags, string_list(raw)).into(),
        "whois" => store(&mut attributes.whois, string(raw)).into(),
        "whois_date" => store(&mut attributes.whois_date, epoch_seconds(raw)).into(),
        "last_analysis_date" => {
            store(&mut attributes.last_analysis_date, epoch_seconds(raw)).into()
        }
        "last_modification_date" => {
            store(&mut attributes.last_modification_date, epoch_seconds(raw)).into()
        }
        "last_https_certificate_date" => store(
            &mut attributes.last_https_certificate_date,
            epoch_seconds(raw),
        )
        .into(),
        "first_seen_date" => store(&mut attributes.first_seen_date, epoch_seconds(raw)).into(),
        "last_analysis_stats" => {
            let stats = &mut attributes.last_analysis_stats;
            split_nested(raw, |key, raw| match key {
                "harmless" => store(&mut stats.harmless, integer(raw)).into(),
                "malicious" => store(&mut stats.malicious, integer(raw)).into(),
                "suspicious" => store(&mut stats.suspicious, integer(raw)).into(),
                "timeout" => store(&mut stats.timeout, integer(raw)).into(),
                "undetected" => store(&mut stats.undetected, integer(raw)).into(),
                _ => Leaf::Kept,
            })
        }
        "total_votes" => {
            let votes = &mut attributes.total_votes;
            split_nested(raw, |key, raw| match key {
                "harmless" => store(&mut votes.harmless, integer(raw)).into(),
                "malicious" => store(&mut votes.malicious, integer(raw)).into(),
                _ => Leaf::Kept,
            })
        }
        "last_https_certificate" => attributes.last_https_certificate.take(raw),
        "last_analysis_results" => take_results(raw, engines),
        _ => Leaf::Kept,
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::RawObject;
    use super::*;

    fn extract_text(text: &str) -> Extracted {
        let object: RawObject = serde_json::from_str(text).unwrap();
        extract(object.0)
    }

    #[test]
    fn typed_values_fill_columns() {
        let extracted = extract_text(
            r#"{"asn": 15169, "reputation": -9, "tags": ["vpn", "tor"], "country": "US",
                "whois_date": 1616514075, "last_analysis_stats": {"harmless": 61, "malicious": 0},
                "total_votes": {"harmless": 236, "malicious": 44}}"#,
        );
        let a = &extracted.attributes;
        assert_eq!(a.asn, Some(15169));
        assert_eq!(a.reputation, Some(-9));
        assert_eq!(a.tags, Some(vec!["vpn".to_string(), "tor".to_string()]));
        assert_eq!(a.country.as_deref(), Some("US"));
        assert_eq!(a.whois_date, Some(1_616_514_075_000_000));
        assert_eq!(a.last_analysis_stats.harmless, Some(61));
        assert_eq!(a.last_analysis_stats.malicious, Some(0));
        assert_eq!(a.last_analysis_stats.suspicious, None);
        assert_eq!(a.total_votes.malicious, Some(44));
        assert_eq!(extracted.extra_attributes, None);
    }

    #[test]
    fn wrong_types_move_to_extra() {
        let extracted = extract_text(
            r#"{"asn": "15169", "whois_date": -5, "last_analysis_date": 1.5,
                "tags": {"vpn": true}, "country": 840, "reputation": null,
                "last_analysis_stats": {"harmless": "many", "malicious": 2, "failure": 0}}"#,
        );
        let a = &extracted.attributes;
        assert_eq!(a.asn, None);
        assert_eq!(a.whois_date, None);
        assert_eq!(a.last_analysis_date, None);
        assert_eq!(a.tags, None);
        assert_eq!(a.country, None);
        assert_eq!(a.reputation, None);
        assert_eq!(a.last_analysis_stats.malicious, Some(2));
        assert_eq!(
            extracted.extra_attributes.as_deref(),
            Some(
                r#"{"asn":"15169","whois_date":-5,"last_analysis_date":1.5,"tags":{"vpn":true},"country":840,"last_analysis_stats":{"harmless":"many","failure":0}}"#
            )
        );
    }

    #[test]
    fn unknown_attributes_move_to_extra() {
        let extracted = extract_text(
            r#"{"rdap": {"handle": "NET-8-8-8-0-2", "status": ["active"]},
                "last_seen_itw_date": 1754525736, "asn": 1}"#,
        );
        assert_eq!(
            extracted.extra_attributes.as_deref(),
            Some(
                r#"{"rdap":{"handle":"NET-8-8-8-0-2","status":["active"]},"last_seen_itw_date":1754525736}"#
            )
        );
    }

    #[test]
    fn duplicate_key_keeps_second_value() {
        let extracted = extract_text(r#"{"asn": 1, "asn": 2}"#);
        assert_eq!(extracted.attributes.asn, Some(1));
        assert_eq!(extracted.extra_attributes.as_deref(), Some(r#"{"asn":2}"#));
    }
}
