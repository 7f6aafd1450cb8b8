//! Per-engine results of `last_analysis_results`.
//!
//! Each entry becomes an [`EngineResult`]. How the results are written depends on the
//! [`EnginesMode`](super::EnginesMode) chosen for the output: a long table, one column per
//! engine, or nothing.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{Key, Leaf, Typed, object_entries, split_entries, string};

/// Prefix of the per-engine columns of `EnginesMode::Wide`; the engine name follows verbatim.
pub const WIDE_ENGINE_PREFIX: &str = "last_analysis_results_";

/// Column of `EnginesMode::Wide` for the engines that are not in [`ENGINE_NAMES`].
pub const OTHER_ENGINES_COLUMN: &str = "last_analysis_results_other";

/// Engines that get a column of their own with `EnginesMode::Wide`, sorted by byte value.
///
/// The list is fixed so that the schema is the same for every run. It is the union of the
/// engines in real IP address objects returned by the API between 2019 and 2025 (94 engines in
/// a 2025 object, 116 in all). Engines that VirusTotal adds later go to
/// [`OTHER_ENGINES_COLUMN`]; adding a name here changes the schema and [`super::SCHEMA_VERSION`].
pub const ENGINE_NAMES: &[&str] = &[
    "0xSI_f33d",
    "ADMINUSLabs",
    "AICC (MONITORAPP)",
    "AILabs (MONITORAPP)",
    "Abusix",
    "Acronis",
    "AlienVault",
    "AlphaSOC",
    "Antiy-AVL",
    "ArcSight Threat Intelligence",
    "Armis",
    "AutoShun",
    "Avira",
    "Axur",
    "BADWARE.INFO",
    "Baidu-International",
    "Bfore.Ai PreCrime",
    "BitDefender",
    "Bkav",
    "Blueliv",
    "CINS Army",
    "CMC Threat Intelligence",
    "CRDF",
    "CSIS Security Group",
    "Certego",
    "Chong Lua Dao",
    "Cluster25",
    "Comodo Valkyrie Verdict",
    "Criminal IP",
    "CyRadar",
    "Cyan",
    "CyberCrime",
    "Cyble",
    "DNS8",
    "Dr.Web",
    "ESET",
    "ESTsecurity",
    "ESTsecurity-Threat Inside",
    "EmergingThreats",
    "Emsisoft",
    "EonScope",
    "Ermes",
    "Forcepoint ThreatSeeker",
    "Fortinet",
    "FraudScore",
    "G-Data",
    "GCP Abuse Intelligence",
    "Google Safebrowsing",
    "GreenSnow",
    "Gridinsoft",
    "Heimdal Security",
    "Hoplite Industries",
    "Hunt.io Intelligence",
    "IPsum",
    "Juniper Networks",
    "K7AntiVirus",
    "Kaspersky",
    "Lionic",
    "Lumu",
    "MalBeacon",
    "MalSilo",
    "MalwareDomainList",
    "MalwarePatrol",
    "MalwareURL",
    "Malwared",
    "Mimecast",
    "Netcraft",
    "NotMining",
    "Nucleon",
    "OpenPhish",
    "PREBYTES",
    "PhishFort",
    "PhishLabs",
    "Phishing Database",
    "Phishtank",
    "PrecisionSec",
    "Quick Heal",
    "Quttera",
    "SCUMWARE.org",
    "SOCRadar",
    "SafeToOpen",
    "Sansec eComscan",
    "Scantitan",
    "Seclookup",
    "SecureBrain",
    "Segasec",
    "Snort IP sample list",
    "Sophos",
    "Spam404",
    "StopBadware",
    "StopForumSpam",
    "Sucuri SiteCheck",
    "Tencent",
    "ThreatHive",
    "Threatsourcing",
    "Trustwave",
    "URLQuery",
    "URLhaus",
    "Underworld",
    "VIPRE",
    "VX Vault",
    "Viettel Threat Intelligence",
    "ViriBack",
    "Virusdie External Site Scan",
    "Web Security Guard",
    "Webroot",
    "Xcitium Verdict Cloud",
    "Yandex Safebrowsing",
    "ZeroCERT",
    "ZeroFox",
    "alphaMountain.ai",
    "benkow.cc",
    "desenmascara.me",
    "malwares.com URL checker",
    "securolytics",
    "zvelo",
];

/// Returns the position of `name` in [`ENGINE_NAMES`].
pub(crate) fn engine_index(name: &str) -> Option<usize> {
    ENGINE_NAMES.binary_search(&name).ok()
}

/// One engine's verdict from `last_analysis_results`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineResult {
    /// The entry's `engine_name`, or the map key when that field is absent.
    pub engine_name: String,
    pub category: Option<String>,
    pub method: Option<String>,
    pub result: Option<String>,
}

/// Reads `last_analysis_results` into `engines` and returns what does not fit an
/// [`EngineResult`]: entries that are not objects, fields of the wrong type, fields other than
/// the four known ones, and an `engine_name` that differs from its map key. A value that is
/// not an object at all is returned as [`Leaf::Kept`].
pub(super) fn take_results(raw: &RawValue, engines: &mut Vec<EngineResult>) -> Leaf {
    if let Some(strict) = strict_results(raw) {
        engines.extend(strict);
        return Leaf::Taken;
    }
    let Some(entries) = object_entries(raw) else {
        return if raw.get() == "null" {
            Leaf::Taken
        } else {
            Leaf::Kept
        };
    };
    engines.reserve(entries.len());
    let rest = split_entries(entries, |key, value| take_entry(key, value, engines));
    Leaf::Rest(rest)
}

/// An entry with exactly the documented fields, each a string or null. Duplicate or unknown
/// fields make deserialization fail, which sends the results to the general path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictEntry {
    engine_name: Option<String>,
    category: Option<String>,
    method: Option<String>,
    result: Option<String>,
}

/// Reads well-formed results in one typed pass, which is what nearly every document contains.
/// Returns `None` when anything would need the residual object of the general path.
fn strict_results(raw: &RawValue) -> Option<Vec<EngineResult>> {
    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Option<Vec<EngineResult>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of engine results")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut engines = Vec::with_capacity(map.size_hint().unwrap_or(100));
            let mut consistent = true;
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let entry: StrictEntry = map.next_value()?;
                let engine_name = match entry.engine_name {
                    Some(name) => {
                        consistent &= name == key.as_str();
                        name
                    }
                    None => key.0.into_owned(),
                };
                engines.push(EngineResult {
                    engine_name,
                    category: entry.category,
                    method: entry.method,
                    result: entry.result,
                });
            }
            Ok(consistent.then_some(engines))
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    deserializer.deserialize_map(StrictVisitor).ok().flatten()
}

fn take_entry(key: &str, raw: &RawValue, engines: &mut Vec<EngineResult>) -> Leaf {
    let Some(fields) = object_entries(raw) else {
        return Leaf::Kept;
    };
    let mut engine = EngineResult::default();
    let mut name = None;
    let mut rest = split_entries(fields, |field, value| {
        let slot = match field {
            "engine_name" => &mut name,
            "category" => &mut engine.category,
            "method" => &mut engine.method,
            "result" => &mut engine.result,
            _ => return Leaf::Kept,
        };
        match string(value) {
            Typed::Value(text) if slot.is_none() => {
                *slot = Some(text);
                Leaf::Taken
            }
            Typed::Null => Leaf::Taken,
            _ => Leaf::Kept,
        }
    });
    engine.engine_name = match name {
        Some(name) => {
            if name != key {
                // The residual is stored under the map key, so keeping the differing name
                // there makes both recoverable.
                rest.push_string("engine_name", &name);
            }
            name
        }
        None => key.to_string(),
    };
    engines.push(engine);
    Leaf::Rest(rest)
}

#[cfg(test)]
mod tests {
    use super::super::json::ExtraObject;
    use super::*;

    fn take(text: &str) -> (Vec<EngineResult>, Option<String>) {
        let raw = RawValue::from_string(text.to_string()).unwrap();
        let mut engines = Vec::new();
        let mut extra = ExtraObject::default();
        match take_results(&raw, &mut engines) {
            Leaf::Taken => {}
            Leaf::Kept => extra.push_raw("last_analysis_results", &raw),
            Leaf::Rest(rest) => extra.push_object("last_analysis_results", rest),
        }
        (engines, extra.finish())
    }

    #[test]
    fn engine_names_are_sorted_and_unique() {
        assert!(ENGINE_NAMES.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(ENGINE_NAMES.len(), 116);
        assert_eq!(
            engine_index("Dr.Web").map(|i| ENGINE_NAMES[i]),
            Some("Dr.Web")
        );
        assert_eq!(engine_index("Not An Engine"), None);
    }

    #[test]
    fn well_formed_entries_leave_no_residual() {
        let (engines, extra) = take(
            r#"{"Dr.Web": {"method": "blacklist", "engine_name": "Dr.Web", "category": "harmless", "result": "clean"},
                "Snort IP sample list": {"category": "suspicious", "engine_name": "Snort IP sample list", "method": "blacklist", "result": null}}"#,
        );
        assert_eq!(engines.len(), 2);
        assert_eq!(engines[0].engine_name, "Dr.Web");
        assert_eq!(engines[0].category.as_deref(), Some("harmless"));
        assert_eq!(engines[0].method.as_deref(), Some("blacklist"));
        assert_eq!(engines[0].result.as_deref(), Some("clean"));
        assert_eq!(engines[1].engine_name, "Snort IP sample list");
        assert_eq!(engines[1].result, None);
        assert_eq!(extra, None);
    }

    #[test]
    fn missing_engine_name_uses_key() {
        let (engines, extra) = take(r#"{"G-Data": {"category": "harmless"}}"#);
        assert_eq!(engines[0].engine_name, "G-Data");
        assert_eq!(extra, None);
    }

    #[test]
    fn odd_entries_go_to_residual() {
        let (engines, extra) = take(
            r#"{"A": {"category": 3, "engine_version": "1.2", "engine_name": "B"}, "C": "clean"}"#,
        );
        assert_eq!(engines.len(), 1);
        assert_eq!(engines[0].engine_name, "B");
        assert_eq!(engines[0].category, None);
        assert_eq!(
            extra.as_deref(),
            Some(
                r#"{"last_analysis_results":{"A":{"category":3,"engine_version":"1.2","engine_name":"B"},"C":"clean"}}"#
            )
        );
    }

    #[test]
    fn differing_engine_name_keeps_key() {
        let (engines, extra) = take(r#"{"A": {"engine_name": "B", "category": "harmless"}}"#);
        assert_eq!(engines[0].engine_name, "B");
        assert_eq!(engines[0].category.as_deref(), Some("harmless"));
        assert_eq!(
            extra.as_deref(),
            Some(r#"{"last_analysis_results":{"A":{"engine_name":"B"}}}"#)
        );
    }

    #[test]
    fn duplicate_field_takes_general_path() {
        let (engines, extra) = take(r#"{"A": {"category": "harmless", "category": "malicious"}}"#);
        assert_eq!(engines[0].category.as_deref(), Some("harmless"));
        assert_eq!(
            extra.as_deref(),
            Some(r#"{"last_analysis_results":{"A":{"category":"malicious"}}}"#)
        );
    }

    #[test]
    fn non_object_results_are_kept() {
        let (engines, extra) = take(r#"["Dr.Web"]"#);
        assert!(engines.is_empty());
        assert_eq!(
            extra.as_deref(),
            Some(r#"{"last_analysis_results":["Dr.Web"]}"#)
        );
    }
}
