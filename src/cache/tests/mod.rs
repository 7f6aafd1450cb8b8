//! Tests against real SQLite files in temporary directories.

mod durability;
mod ledger;
mod pages;
mod store;

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

/// Returns a fixed clock reading. Tests move it explicitly.
fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, second)
        .single()
        .expect("valid test time")
}

/// Creates a temporary directory and returns it with a cache path inside a subdirectory that
/// does not exist yet.
fn temp_cache_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let path = dir.path().join("nested").join("cache.sqlite");
    (dir, path)
}

/// Builds a pretty-printed document shaped like an API v3 IP address object, as the API sends it.
fn sample_document(ip: &IpAddr) -> Vec<u8> {
    let document = json!({
        "data": {
            "id": ip.to_string(),
            "type": "ip_address",
            "links": { "self": format!("https://www.virustotal.com/api/v3/ip_addresses/{ip}") },
            "attributes": {
                "as_owner": "Example Networks B.V.",
                "asn": 64500,
                "country": "NL",
                "network": "192.0.2.0/24",
                "reputation": -3,
                "tags": ["vpn"],
                "last_analysis_date": 1_700_000_000,
                "last_analysis_stats": { "harmless": 60, "malicious": 2, "suspicious": 0, "undetected": 28, "timeout": 0 },
                "last_analysis_results": {
                    "Engine A": { "category": "malicious", "result": "malware", "method": "blacklist", "engine_name": "Engine A" },
                    "Engine B": { "category": "harmless", "result": "clean", "method": "blacklist", "engine_name": "Engine B" }
                },
                "whois": "NetRange: 192.0.2.0 - 192.0.2.255\nOrgName: Example \"Networks\"\n",
                "total_votes": { "harmless": 1, "malicious": 0 }
            }
        }
    });
    serde_json::to_vec_pretty(&document).expect("serialize sample document")
}
