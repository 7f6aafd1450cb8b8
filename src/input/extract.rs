//! Finding addresses in free text (syslog, iptables, Zeek or JSON lines), for `--extract`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::address::normalise;

/// Appends to `out` every IPv4 and IPv6 address found in `line`, in order of appearance.
/// IPv4-mapped IPv6 is returned as IPv4 and zone ids are dropped, as [`super::parse_address`]
/// does. Duplicates are kept; the caller dedupes.
///
/// A candidate is a run of hex digits, `.` and `:`, and is kept only when it is one whole
/// address: `1.2.3.4.5`, octets with leading zeros, times (`10:20:30`) and MAC addresses do not
/// match. A candidate glued to a word (`v1.2.3.4`, `Chrome/120.0.1.2`, `abc1.2.3.4`) is a
/// version string or an identifier, not an address, and is skipped too.
///
/// NOTE: short hex words around `::` in prose (`ab::cd`) are valid IPv6 and are returned.
pub fn extract_addresses(line: &str, out: &mut Vec<IpAddr>) {
    let bytes = line.as_bytes();
    let mut start = 0;

    while start < bytes.len() {
        if !is_candidate_byte(bytes[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_candidate_byte(bytes[end]) {
            end += 1;
        }

        // Candidate bytes are ASCII, so `start` and `end` are character boundaries.
        let before = &line[..start];
        let after = &line[end..];
        let followed_by_word = after.chars().next().is_some_and(is_word_char);
        if !is_glued_before(before)
            && !followed_by_word
            && let Some(ip) = address_in_run(&line[start..end])
        {
            out.push(ip);
        }
        start = end;
    }
}

fn is_candidate_byte(byte: u8) -> bool {
    byte.is_ascii_hexdigit() || byte == b'.' || byte == b':'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Returns whether a run after `before` continues a word, or follows `word/` as in a user
/// agent's `Chrome/120.0.1.2`. A URL's `//` does not count, so `http://1.2.3.4` matches.
fn is_glued_before(before: &str) -> bool {
    let mut previous = before.chars().rev();
    match previous.next() {
        Some('/') => previous.next().is_some_and(is_word_char),
        Some(c) => is_word_char(c),
        None => false,
    }
}

/// Returns the address a run spells, as it is or without one trailing `.` or `:`.
fn address_in_run(run: &str) -> Option<IpAddr> {
    if !run.bytes().any(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Sentence punctuation (`… from 1.2.3.4.`, `2001:db8::1: refused`) is not part of the
    // address, but the `::` that ends an address such as `2001:db8::` is, so the whole run
    // is tried first.
    address_in_text(run).or_else(|| {
        let trimmed = run.strip_suffix('.').or_else(|| run.strip_suffix(':'))?;
        address_in_text(trimmed)
    })
}

/// Parses IPv6 first, then IPv4 with an optional port.
fn address_in_text(run: &str) -> Option<IpAddr> {
    if run.matches(':').count() >= 2
        && let Ok(v6) = run.parse::<Ipv6Addr>()
    {
        return Some(normalise(IpAddr::V6(v6)));
    }

    let (host, port) = match run.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (run, None),
    };
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
    if !port_ok {
        return None;
    }
    strict_ipv4(host).map(IpAddr::V4)
}

/// Parses exactly four decimal octets without leading zeros.
fn strict_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for slot in &mut octets {
        let part = parts.next()?;
        let decimal = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !decimal || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}
