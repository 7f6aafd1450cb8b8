//! IP address documents generated from one real VirusTotal response.
//!
//! Every generated document is the embedded sample with a few fields replaced
//! by values derived from a hash of the address, so tests can compute exactly
//! what the server sends with [`expected_document`].

use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// A real `GET /api/v3/ip_addresses/8.8.8.8` response (2025), used as the
/// template for every generated document.
const TEMPLATE_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/responses/ip_8.8.8.8_2025_rich.json"
));

/// Countries that generated documents cycle through, with the continent and
/// regional internet registry that go with each.
const COUNTRIES: [(&str, &str, &str); 12] = [
    ("US", "NA", "ARIN"),
    ("DE", "EU", "RIPE NCC"),
    ("NL", "EU", "RIPE NCC"),
    ("FR", "EU", "RIPE NCC"),
    ("GB", "EU", "RIPE NCC"),
    ("JP", "AS", "APNIC"),
    ("CN", "AS", "APNIC"),
    ("IN", "AS", "APNIC"),
    ("BR", "SA", "LACNIC"),
    ("AU", "OC", "APNIC"),
    ("ZA", "AF", "AFRINIC"),
    ("CA", "NA", "ARIN"),
];

/// Categories counted in `last_analysis_stats`, as VirusTotal names them.
const STAT_CATEGORIES: [&str; 5] = [
    "harmless",
    "malicious",
    "suspicious",
    "timeout",
    "undetected",
];

/// Values that vary from one address to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentFacts {
    /// Canonical text of the address (RFC 5952 for IPv6), used as the `id`.
    pub id: String,
    /// `a.b.c.0/24` for IPv4, the covering `/32` for IPv6.
    pub network: Option<String>,
    pub asn: u64,
    /// `FAKE-AS{asn}`.
    pub as_owner: String,
    pub country: &'static str,
    pub continent: &'static str,
    pub regional_internet_registry: &'static str,
    /// In -100..=100.
    pub reputation: i64,
    /// Number of engines (the first ones by name) reporting `malicious`.
    pub malicious_engines: u64,
    /// Number of engines after those reporting `suspicious`.
    pub suspicious_engines: u64,
    pub votes_harmless: u64,
    pub votes_malicious: u64,
}

/// Returns the varying values of the document for `ip`.
///
/// Text that parses as an address is canonicalised first, so `2001:DB8::1`
/// and `2001:db8::1` give the same facts. Other text is hashed as it is and
/// gets no `network`.
pub fn document_facts(ip: &str) -> DocumentFacts {
    let parsed: Option<IpAddr> = ip.parse().ok();
    let id = parsed.map_or_else(|| ip.to_string(), |addr| addr.to_string());
    let hash = mix64(fnv1a64(id.as_bytes()));

    let (country, continent, regional_internet_registry) =
        COUNTRIES[(hash % COUNTRIES.len() as u64) as usize];
    let asn = 1000 + (hash >> 8) % 64_000;
    DocumentFacts {
        network: parsed.map(network_of),
        as_owner: format!("FAKE-AS{asn}"),
        asn,
        country,
        continent,
        regional_internet_registry,
        reputation: ((hash >> 24) % 201) as i64 - 100,
        malicious_engines: (hash >> 32) % 8,
        suspicious_engines: (hash >> 36) % 3,
        votes_harmless: (hash >> 40) % 300,
        votes_malicious: (hash >> 50) % 60,
        id,
    }
}

/// Builds the document the server returns for `ip` when no explicit document
/// is configured for it.
///
/// Replaced fields: `id`, `links.self`, and the attributes `network`, `asn`,
/// `as_owner`, `country`, `continent`, `regional_internet_registry`,
/// `reputation`, `whois`, `total_votes`, `last_analysis_results` (the first
/// engines by name turn malicious, then suspicious) and `last_analysis_stats`
/// (recounted from those results). Every other field is the template's.
pub fn expected_document(ip: &str) -> Value {
    let facts = document_facts(ip);
    let mut document = template().clone();

    let data = &mut document["data"];
    data["id"] = json!(facts.id);
    data["links"] = json!({
        "self": format!("https://www.virustotal.com/api/v3/ip_addresses/{}", facts.id),
    });

    let attributes = &mut data["attributes"];
    match &facts.network {
        Some(network) => attributes["network"] = json!(network),
        None => {
            if let Some(map) = attributes.as_object_mut() {
                map.remove("network");
            }
        }
    }
    attributes["asn"] = json!(facts.asn);
    attributes["as_owner"] = json!(facts.as_owner);
    attributes["country"] = json!(facts.country);
    attributes["continent"] = json!(facts.continent);
    attributes["regional_internet_registry"] = json!(facts.regional_internet_registry);
    attributes["reputation"] = json!(facts.reputation);
    attributes["whois"] = json!(format!(
        "NetRange: {}\nOrgName: {}\nCountry: {}\n",
        facts.network.as_deref().unwrap_or("unknown"),
        facts.as_owner,
        facts.country
    ));
    attributes["total_votes"] = json!({
        "harmless": facts.votes_harmless,
        "malicious": facts.votes_malicious,
    });

    let results = &mut attributes["last_analysis_results"];
    set_engine_verdicts(results, facts.malicious_engines, facts.suspicious_engines);
    let stats = count_categories(results);
    attributes["last_analysis_stats"] = stats;

    document
}

/// Serialises [`expected_document`] exactly as the server sends it.
pub fn expected_document_bytes(ip: &str) -> Vec<u8> {
    serde_json::to_vec(&expected_document(ip)).expect("a serde_json::Value always serialises")
}

fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        serde_json::from_str(TEMPLATE_JSON).expect("the embedded template is valid JSON")
    })
}

/// Marks the first `malicious` engines (sorted by name, so the choice does not
/// depend on the map's iteration order) as malicious and the next
/// `suspicious` ones as suspicious.
fn set_engine_verdicts(results: &mut Value, malicious: u64, suspicious: u64) {
    let Some(engines) = results.as_object_mut() else {
        return;
    };
    let mut names: Vec<String> = engines.keys().cloned().collect();
    names.sort();

    let verdicts = std::iter::repeat_n(("malicious", "malware"), malicious as usize).chain(
        std::iter::repeat_n(("suspicious", "suspicious"), suspicious as usize),
    );
    for (name, (category, result)) in names.iter().zip(verdicts) {
        let engine = &mut engines[name.as_str()];
        engine["category"] = json!(category);
        engine["result"] = json!(result);
    }
}

fn count_categories(results: &Value) -> Value {
    let mut counts = serde_json::Map::new();
    for category in STAT_CATEGORIES {
        counts.insert(category.to_string(), json!(0u64));
    }
    let engines = results.as_object().into_iter().flat_map(|map| map.values());
    for engine in engines {
        let Some(category) = engine["category"].as_str() else {
            continue;
        };
        if let Some(count) = counts.get_mut(category) {
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
    }
    Value::Object(counts)
}

fn network_of(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 96);
            format!("{}/32", std::net::Ipv6Addr::from(masked))
        }
    }
}

/// FNV-1a, 64-bit: a stable hash, unlike `std`'s randomly seeded hasher.
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Applies the SplitMix64 finaliser, which spreads FNV's weak low bits over
/// all 64.
pub(super) fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
