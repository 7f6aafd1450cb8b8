//! Relationship lists of IP addresses, served page by page.
//!
//! `GET /api/v3/ip_addresses/{ip}/{relationship}` returns full objects and
//! `GET /api/v3/ip_addresses/{ip}/relationships/{relationship}` descriptors
//! (type and id), as VirusTotal documents them
//! (docs.virustotal.com/reference/relationships). A page is
//! `{"data": [...], "meta": {"cursor", "count"}, "links": {"self", "next"}}`.
//! The last page has no cursor and no `links.next`. An empty list is
//! `{"data": [], "links": {"self"}}` without `meta`, as in a real empty
//! comments page. Items are generated deterministically, so a test predicts
//! them with [`expected_related_item`].
//!
//! The server returns at most `FakeVtConfig::relationship_page_cap` items per
//! page whatever `limit` asks for, like a server that serves fewer items than
//! requested; clients must follow the cursor rather than count on `limit`.

use serde_json::{Value, json};

use super::FakeVtConfig;
use super::document::{fnv1a64, mix64};

/// The relationships of the IP address object
/// (docs.virustotal.com/reference/ip-object, "Relationships").
pub const RELATIONSHIPS: [&str; 12] = [
    "comments",
    "communicating_files",
    "downloaded_files",
    "graphs",
    "historical_ssl_certificates",
    "historical_whois",
    "related_comments",
    "related_references",
    "related_threat_actors",
    "referrer_files",
    "resolutions",
    "urls",
];

/// Relationships that only VirusTotal Enterprise (premium) keys may read;
/// other keys get 403 `ForbiddenError`.
pub const ENTERPRISE_ONLY: [&str; 4] = [
    "downloaded_files",
    "related_references",
    "related_threat_actors",
    "urls",
];

/// Largest `limit` accepted. VirusTotal's reference gives no maximum, and
/// clients cap it at 40; what the real API does above that is not documented,
/// so the fake rejects it and a client that sends more fails its tests.
pub const MAX_LIMIT: usize = 40;

/// The API's default `limit`.
const DEFAULT_LIMIT: usize = 10;

/// A relationship request, parsed from the path and query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PageQuery {
    pub relationship: String,
    pub descriptors: bool,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// An error response: status, VirusTotal error code, message.
pub(super) type ErrorResponse = (u16, &'static str, String);

/// Builds the page for `canonical` (an address that exists), or the error
/// response the API would send instead. `key` is the caller's API key and `host` the Host
/// header, used for the absolute URLs in `links`.
pub(super) fn page(
    config: &FakeVtConfig,
    key: &str,
    host: &str,
    canonical: &str,
    query: &PageQuery,
) -> Result<Value, ErrorResponse> {
    let relationship = query.relationship.as_str();
    if !RELATIONSHIPS.contains(&relationship) {
        // NOTE: the real API's response to an unknown relationship is not
        // documented. A 400 keeps it apart from an unknown address.
        return Err((
            400,
            "InvalidArgumentError",
            format!("\"{relationship}\" is not a valid relationship"),
        ));
    }
    if ENTERPRISE_ONLY.contains(&relationship) && !config.enterprise_keys.contains(key) {
        return Err((
            403,
            "ForbiddenError",
            format!("The relationship \"{relationship}\" is only available to premium API users"),
        ));
    }

    let limit = match &query.limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                return Err((
                    400,
                    "InvalidArgumentError",
                    format!("limit must be a number from 1 to {MAX_LIMIT}, got \"{text}\""),
                ));
            }
        },
    };
    let offset = match &query.cursor {
        None => 0,
        Some(cursor) => decode_cursor(cursor).ok_or_else(|| {
            (
                400,
                "InvalidArgumentError",
                format!("invalid cursor \"{cursor}\""),
            )
        })?,
    };

    let total = config
        .relationship_items
        .get(relationship)
        .copied()
        .unwrap_or(0);
    let count = limit
        .min(config.relationship_page_cap.max(1))
        .min(total.saturating_sub(offset));
    let errors = config.relationship_item_errors.get(relationship);
    let data: Vec<Value> = (offset..offset + count)
        .map(|position| {
            item(
                canonical,
                relationship,
                position,
                query.descriptors,
                errors.is_some_and(|errors| errors.contains(&position)),
            )
        })
        .collect();

    let path = if query.descriptors {
        format!("http://{host}/api/v3/ip_addresses/{canonical}/relationships/{relationship}")
    } else {
        format!("http://{host}/api/v3/ip_addresses/{canonical}/{relationship}")
    };
    let self_link = match &query.cursor {
        Some(cursor) => format!("{path}?cursor={}&limit={limit}", url_encode(cursor)),
        None => format!("{path}?limit={limit}"),
    };
    if total == 0 {
        return Ok(json!({"data": [], "links": {"self": self_link}}));
    }

    let next = offset + count;
    let mut page = json!({"data": data, "links": {"self": self_link}});
    if next < total && count > 0 {
        let cursor = encode_cursor(next);
        page["links"]["next"] = json!(format!(
            "{path}?cursor={}&limit={limit}",
            url_encode(&cursor)
        ));
        if !config.cursor_in_links_only {
            page["meta"] = json!({"cursor": cursor, "count": total});
        }
    } else if !config.cursor_in_links_only {
        page["meta"] = json!({"count": total});
    }
    Ok(page)
}

/// Returns item `position` of `relationship` for `ip` as the server sends it
/// in full-object pages, without item errors.
pub fn expected_related_item(ip: &str, relationship: &str, position: usize) -> Value {
    full_item(ip, relationship, position)
}

fn item(ip: &str, relationship: &str, position: usize, descriptors: bool, error: bool) -> Value {
    let full = full_item(ip, relationship, position);
    let descriptor = json!({"type": full["type"], "id": full["id"]});
    if error {
        let mut failed = descriptor;
        failed["error"] = json!({
            "code": "NotFoundError",
            "message": format!("{} \"{}\" not found", full["type"].as_str().unwrap_or(""), full["id"].as_str().unwrap_or("")),
        });
        return failed;
    }
    if descriptors { descriptor } else { full }
}

/// Returns a deterministic 64-bit value for (`ip`, `relationship`,
/// `position`, `salt`).
fn hash(ip: &str, relationship: &str, position: usize, salt: u8) -> u64 {
    let text = format!("{ip}|{relationship}|{position}|{salt}");
    mix64(fnv1a64(text.as_bytes()))
}

/// `digits` hexadecimal digits derived from the item's identity.
fn hex(ip: &str, relationship: &str, position: usize, digits: usize) -> String {
    let mut out = String::with_capacity(digits + 16);
    let mut salt = 0u8;
    while out.len() < digits {
        out.push_str(&format!("{:016x}", hash(ip, relationship, position, salt)));
        salt += 1;
    }
    out.truncate(digits);
    out
}

/// Seconds since the epoch for item dates: 2024-01-01 minus one hour per
/// position, so lists come newest first as VirusTotal sorts them.
fn date(position: usize) -> u64 {
    1_704_067_200 - position as u64 * 3600
}

fn stats(seed: u64) -> Value {
    json!({
        "harmless": seed % 70,
        "malicious": (seed >> 8) % 5,
        "suspicious": (seed >> 16) % 3,
        "timeout": 0,
        "undetected": (seed >> 24) % 30,
    })
}

fn full_item(ip: &str, relationship: &str, position: usize) -> Value {
    let seed = hash(ip, relationship, position, 99);
    match relationship {
        "resolutions" => {
            let host = format!(
                "h{position}-{}.example.com",
                &hex(ip, relationship, position, 8)
            );
            json!({
                "type": "resolution",
                "id": format!("{ip}{host}"),
                "links": {"self": format!("https://www.virustotal.com/api/v3/resolutions/{ip}{host}")},
                "attributes": {
                    "date": date(position),
                    "host_name": host,
                    "ip_address": ip,
                    "resolver": "VirusTotal",
                    "host_name_last_analysis_stats": stats(seed),
                },
            })
        }
        "communicating_files" | "downloaded_files" | "referrer_files" => {
            let sha256 = hex(ip, relationship, position, 64);
            json!({
                "type": "file",
                "id": sha256,
                "attributes": {
                    "sha256": sha256,
                    "md5": hex(ip, relationship, position, 32),
                    "sha1": hex(ip, relationship, position, 40),
                    "size": 1024 + seed % 100_000,
                    "type_description": "Win32 EXE",
                    "meaningful_name": format!("sample{position}.exe"),
                    "reputation": -((seed % 50) as i64),
                    "tags": ["peexe", "overlay"],
                    "names": [format!("sample{position}.exe"), "setup.exe"],
                    "last_analysis_stats": {
                        "harmless": 0, "malicious": seed % 60, "suspicious": 0,
                        "undetected": 10, "timeout": 0, "type-unsupported": 4,
                    },
                    "first_submission_date": date(position) - 86_400,
                    "last_submission_date": date(position),
                    "last_analysis_date": date(position),
                },
            })
        }
        "historical_ssl_certificates" => {
            let thumbprint = hex(ip, relationship, position, 64);
            json!({
                "type": "ssl_cert",
                "id": thumbprint,
                "attributes": {
                    "thumbprint_sha256": thumbprint,
                    "thumbprint": hex(ip, relationship, position, 40),
                    "serial_number": hex(ip, relationship, position, 32),
                    "subject": {"CN": format!("cert{position}.example.com")},
                    "issuer": {"C": "US", "O": "Fake Trust Services", "CN": "FTS1"},
                    "validity": {"not_before": "2024-01-01 00:00:00", "not_after": "2024-04-01 00:00:00"},
                    "size": 1461,
                    "version": "V3",
                },
                "context_attributes": {"first_seen_date": date(position), "port": 443},
            })
        }
        "historical_whois" => json!({
            "type": "whois",
            "id": hex(ip, relationship, position, 64),
            "attributes": {
                "first_seen_date": date(position),
                "last_updated": date(position) - 30 * 86_400,
                "registrant_country": "AU",
                "registrar_name": if position.is_multiple_of(2) { Value::from("Fake Registrar") } else { Value::Null },
                "whois_map": {"NetRange": format!("{ip} - {ip}"), "Registrant Country": "AU"},
            },
        }),
        "comments" | "related_comments" => json!({
            "type": "comment",
            "id": format!("i-{}", hex(ip, relationship, position, 16)),
            "attributes": {
                "date": date(position),
                "text": format!("comment {position} on {ip} #scanner"),
                "html": format!("comment {position} on {ip} #scanner"),
                "tags": ["scanner"],
                "votes": {"positive": seed % 7, "negative": seed % 3, "abuse": 0},
            },
        }),
        "graphs" => json!({
            "type": "graph",
            "id": format!("g{}", hex(ip, relationship, position, 24)),
            "attributes": {
                "name": format!("graph {position} of {ip}"),
                "creation_date": date(position),
                "last_modified_date": date(position) + 60,
                "views_count": seed % 100,
            },
        }),
        "urls" => json!({
            "type": "url",
            "id": hex(ip, relationship, position, 64),
            "attributes": {
                "url": format!("http://{ip}/path{position}"),
                "last_final_url": format!("http://{ip}/path{position}/"),
                "title": format!("Page {position}"),
                "last_http_response_code": 200,
                "reputation": 0,
                "last_analysis_stats": stats(seed),
                "first_submission_date": date(position) - 86_400,
                "last_analysis_date": date(position),
            },
        }),
        "related_references" => json!({
            "type": "reference",
            "id": hex(ip, relationship, position, 64),
            "attributes": {
                "title": format!("Report {position}"),
                "url": format!("https://reports.example.com/{position}"),
                "author": "Fake Research",
                "creation_date": date(position),
            },
        }),
        _ => json!({
            "type": "collection",
            "id": format!("threat-actor--{}", hex(ip, relationship, position, 32)),
            "attributes": {
                "name": format!("ACTOR{position}"),
                "alt_names": [format!("Group {position}")],
                "description": "A fake threat actor.",
                "creation_date": date(position),
                "last_modification_date": date(position) + 60,
            },
        }),
    }
}

/// Bytes in front of the offset in a cursor: they make the base64 text start
/// with `+/+/`, so cursors need URL encoding, as real ones often do.
const CURSOR_PREFIX: [u8; 3] = [0xfb, 0xff, 0xbf];

/// Encodes the offset of the next item as an opaque base64 cursor.
pub fn encode_cursor(offset: usize) -> String {
    let mut bytes = CURSOR_PREFIX.to_vec();
    bytes.extend_from_slice(format!("offset:{offset}").as_bytes());
    base64(&bytes)
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = unbase64(cursor)?;
    let text = bytes.strip_prefix(&CURSOR_PREFIX[..])?;
    std::str::from_utf8(text)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648, section 4).
fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but unreserved characters (RFC 3986, 2.3).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_need_encoding() {
        for offset in [0, 5, 10, 25, 1000] {
            let cursor = encode_cursor(offset);
            assert_eq!(decode_cursor(&cursor), Some(offset), "{cursor}");
            assert!(cursor.starts_with("+/+/"), "{cursor}");
        }
        assert_eq!(base64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
    }
}
