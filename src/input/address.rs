//! Parsing one input value into one IP address, with a precise reason when it is not one.
//!
//! The standard library parser reports only "invalid IP address syntax". Users fixing an export need
//! to know which octet is wrong or that the value is a CIDR block, so this module classifies the
//! failure itself and only hands well-formed text to `Ipv6Addr::from_str`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reason a value is not one IP address. The `Display` text is what users see in the status
/// output, so each message names the offending part and, where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty value")]
    Empty,

    #[error(
        "leading zero in octet `{octet}`: ambiguous (some parsers read it as octal); write `{fixed}`"
    )]
    LeadingZero { octet: String, fixed: String },

    #[error("octet `{octet}` out of range 0-255")]
    OctetOutOfRange { octet: String },

    #[error("octet `{octet}` is not a decimal number")]
    NonDecimalOctet { octet: String },

    #[error("empty octet (two dots in a row, or a dot at either end)")]
    EmptyOctet,

    #[error("IPv4 address has {found} octets, expected 4")]
    WrongOctetCount { found: usize },

    #[error("bare integer, not an IP address; write IPv4 addresses as four dotted octets")]
    Integer,

    #[error("CIDR block, not one address")]
    Cidr,

    #[error("address range, not one address")]
    Range,

    #[error("hostname, not an IP address")]
    Hostname,

    #[error("invalid port `{port}` after the address (expected 0-65535)")]
    InvalidPort { port: String },

    #[error("invalid IPv6 address: {detail}")]
    InvalidIpv6 { detail: String },

    #[error("whitespace inside the value, so it is not one address")]
    InnerWhitespace,

    #[error("not an IP address")]
    NotAnAddress,
}

/// Parses one value into an address: trims spaces and surrounding quotes, strips a port
/// (`1.2.3.4:443`, `[2001:db8::1]:443`) and an IPv6 zone id (`fe80::1%eth0`), and turns
/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) into IPv4.
///
/// Rejects octets with leading zeros, CIDR blocks (even `/32`), ranges, hostnames and anything
/// else that is not exactly one address. A bare IPv6 address is never read as `address:port`,
/// so `2001:db8::1:443` is the IPv6 address it spells.
pub fn parse_address(raw: &str) -> Result<IpAddr, AddressError> {
    let value = clean_value(raw);
    if value.is_empty() {
        return Err(AddressError::Empty);
    }

    if let Some(inner) = value.strip_prefix('[') {
        return parse_bracketed(inner);
    }

    if let Some((address, _prefix_len)) = value.split_once('/') {
        return Err(classify_cidr(address));
    }

    if let Some((first, _last)) = value.split_once('-') {
        return Err(classify_dash(value, first));
    }

    if value.chars().any(char::is_whitespace) {
        return Err(AddressError::InnerWhitespace);
    }

    match value.bytes().filter(|&b| b == b':').count() {
        0 => parse_ipv4_or_hostname(value).map(IpAddr::V4),
        1 => parse_ipv4_with_port(value),
        _ => parse_ipv6_with_zone(value),
    }
}

/// Trims whitespace and one pair of matching surrounding quotes (`"…"` or `'…'`).
///
/// The reader uses the same function, so a value is blank exactly when this returns "".
pub fn clean_value(raw: &str) -> &str {
    let trimmed = raw.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|&quote| {
            trimmed
                .strip_prefix(quote)
                .and_then(|rest| rest.strip_suffix(quote))
        })
        .unwrap_or(trimmed);
    unquoted.trim()
}

/// Turns IPv4-mapped IPv6 into IPv4, so both spellings of one host dedupe and look up as one.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn parse_bracketed(inner: &str) -> Result<IpAddr, AddressError> {
    let Some((host, after)) = inner.split_once(']') else {
        return Err(invalid_ipv6("`[` without a matching `]`"));
    };

    if after.starts_with('/') {
        return Err(classify_cidr(host));
    }
    if !after.is_empty() {
        let Some(port) = after.strip_prefix(':') else {
            return Err(AddressError::NotAnAddress);
        };
        check_port(port)?;
    }

    if host.contains('/') {
        return Err(classify_cidr(host));
    }
    if !host.contains(':') {
        return Err(invalid_ipv6("brackets are only used around IPv6 addresses"));
    }
    parse_ipv6_with_zone(host)
}

fn classify_cidr(address: &str) -> AddressError {
    let address = address.trim();
    let address = address.strip_prefix('[').unwrap_or(address);
    let address = address.strip_suffix(']').unwrap_or(address);
    if parse_address(address).is_ok() {
        AddressError::Cidr
    } else {
        AddressError::NotAnAddress
    }
}

/// Classifies a value containing `-`, which no IP address spelling contains.
fn classify_dash(value: &str, first: &str) -> AddressError {
    if parse_address(first).is_ok() {
        return AddressError::Range;
    }
    let host = match value.split_once(':') {
        Some((host, port)) if check_port(port).is_ok() => host,
        _ => value,
    };
    if is_hostname_like(host) {
        return AddressError::Hostname;
    }
    AddressError::NotAnAddress
}

fn parse_ipv4_with_port(value: &str) -> Result<IpAddr, AddressError> {
    let (host, port) = value.split_once(':').unwrap_or((value, ""));
    let ip = parse_ipv4_or_hostname(host)?;
    check_port(port)?;
    Ok(IpAddr::V4(ip))
}

fn check_port(port: &str) -> Result<(), AddressError> {
    let valid = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|n| n <= 65535);
    if valid {
        Ok(())
    } else {
        Err(AddressError::InvalidPort {
            port: port.to_string(),
        })
    }
}

fn parse_ipv4_or_hostname(value: &str) -> Result<Ipv4Addr, AddressError> {
    if is_hostname_like(value) {
        return Err(AddressError::Hostname);
    }
    parse_ipv4_strict(value)
}

/// Parses dotted-quad IPv4 with decimal octets only, rejecting the octal, hex and short forms
/// that `inet_aton` accepts, because different tools read them as different addresses.
fn parse_ipv4_strict(value: &str) -> Result<Ipv4Addr, AddressError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::Integer);
    }

    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() != 4 && parts.iter().all(|part| is_decimal(part)) {
        return Err(AddressError::WrongOctetCount { found: parts.len() });
    }

    let mut octets = [0u8; 4];
    for (index, part) in parts.iter().enumerate() {
        let octet = parse_octet(part)?;
        match octets.get_mut(index) {
            Some(slot) => *slot = octet,
            None => return Err(AddressError::WrongOctetCount { found: parts.len() }),
        }
    }
    if parts.len() != 4 {
        return Err(AddressError::WrongOctetCount { found: parts.len() });
    }
    Ok(Ipv4Addr::from(octets))
}

fn is_decimal(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

fn parse_octet(part: &str) -> Result<u8, AddressError> {
    if part.is_empty() {
        return Err(AddressError::EmptyOctet);
    }
    if !is_decimal(part) {
        return Err(AddressError::NonDecimalOctet {
            octet: part.to_string(),
        });
    }
    if part.len() > 1 && part.starts_with('0') {
        let digits = part.trim_start_matches('0');
        let fixed = if digits.is_empty() { "0" } else { digits };
        return Err(AddressError::LeadingZero {
            octet: part.to_string(),
            fixed: fixed.to_string(),
        });
    }
    // Digits only, so the parse fails only on overflow; anything too long is out of range too.
    match part.parse::<u16>() {
        Ok(n) if n <= 255 => Ok(n as u8),
        _ => Err(AddressError::OctetOutOfRange {
            octet: part.to_string(),
        }),
    }
}

/// Tells DNS names (`example.com`, `localhost`, `host-1`) from malformed numeric addresses: a
/// name has at least one letter and a last label that is not all digits.
fn is_hostname_like(value: &str) -> bool {
    let allowed = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let has_letter = value.bytes().any(|b| b.is_ascii_alphabetic());
    let last_label = value.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    allowed && has_letter && !last_label.bytes().all(|b| b.is_ascii_digit())
}

/// Parses IPv6, dropping a zone id (`%eth0`): the zone only names the interface that reaches a
/// link-local address, and VirusTotal has no use for it.
fn parse_ipv6_with_zone(value: &str) -> Result<IpAddr, AddressError> {
    let (address, zone) = match value.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (value, None),
    };
    if zone.is_some_and(str::is_empty) {
        return Err(invalid_ipv6("empty zone id after `%`"));
    }

    match address.parse::<Ipv6Addr>() {
        Ok(v6) => Ok(normalise(IpAddr::V6(v6))),
        Err(_) => Err(explain_ipv6_error(address)),
    }
}

fn explain_ipv6_error(address: &str) -> AddressError {
    let allowed = address
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    if !allowed {
        return invalid_ipv6("contains a character other than hex digits, `:` and `.`");
    }
    if address.matches("::").count() > 1 {
        return invalid_ipv6("`::` appears more than once");
    }
    if let Some(group) = address
        .split(':')
        .find(|group| !group.contains('.') && group.len() > 4)
    {
        return invalid_ipv6(&format!("group `{group}` has more than 4 hex digits"));
    }
    let dotted = address.rsplit(':').next().filter(|tail| tail.contains('.'));
    if let Some(dotted) = dotted
        && let Err(error) = parse_ipv4_strict(dotted)
    {
        return invalid_ipv6(&format!("embedded IPv4 `{dotted}`: {error}"));
    }
    invalid_ipv6("wrong number of groups")
}

fn invalid_ipv6(detail: &str) -> AddressError {
    AddressError::InvalidIpv6 {
        detail: detail.to_string(),
    }
}
