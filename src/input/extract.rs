//! Finding addresses in free text (syslog, iptables, web server access logs), for `--extract`.
//!
//! The scan works on bytes and jumps from one `.` or `:` to the next with `memchr`, because
//! every address spelling contains one and most bytes of a log line are not near one. Only the
//! run of hex digits, `.` and `:` around each hit is examined.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::address::normalise;

/// Appends to `out` every IPv4 and IPv6 address found in `line`, in order of appearance.
/// IPv4-mapped IPv6 is returned as IPv4 and zone ids are dropped, as [`super::parse_address`]
/// does. Duplicates are kept; the caller dedupes.
///
/// A candidate is a run of hex digits, `.` and `:`, and is kept only when it is one whole
/// address: `1.2.3.4.5`, octets with leading zeros, times (`10:20:30`) and MAC addresses do not
/// match. A candidate glued to a word (`v1.2.3.4`, `Chrome/120.0.1.2`, `nginx-1.2.3.4`,
/// `1.2.3.4x`) is a version string or an identifier, not an address, and is skipped too, and so
/// is the start of a CIDR block (`10.0.0.0/8`). A port after the address (`1.2.3.4:443`,
/// `[2001:db8::1]:443`) is not part of it.
///
/// NOTE: short hex words around `::` in prose (`ab::cd`) are valid IPv6 and are returned.
pub fn extract_addresses(line: &[u8], out: &mut Vec<IpAddr>) {
    let mut from = 0;
    while let Some(offset) = memchr::memchr2(b'.', b':', &line[from..]) {
        let hit = from + offset;

        // `line[from]` is never a candidate byte (it ends the previous run), so the run found
        // here cannot overlap the previous one.
        let mut start = hit;
        while start > from && is_candidate_byte(line[start - 1]) {
            start -= 1;
        }
        let mut end = hit + 1;
        while end < line.len() && is_candidate_byte(line[end]) {
            end += 1;
        }

        if !is_glued_before(&line[..start])
            && !is_glued_after(&line[end..])
            && let Some(ip) = address_in_run(&line[start..end])
        {
            out.push(ip);
        }
        from = end;
    }
}

fn is_candidate_byte(byte: u8) -> bool {
    byte.is_ascii_hexdigit() || byte == b'.' || byte == b':'
}

fn is_ascii_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Returns whether a run after `before` continues a word, or follows `word/` as in a user
/// agent's `Chrome/120.0.1.2`, or `name-` as in `nginx-1.25.3.1`. A URL's `//` does not count,
/// so `http://1.2.3.4` matches, and neither does a digit before `-`, so both ends of a range
/// `1.2.3.4-1.2.3.9` match.
fn is_glued_before(before: &[u8]) -> bool {
    let Some((&last, rest)) = before.split_last() else {
        return false;
    };
    match last {
        b'/' => ends_with_word_char(rest),
        b'-' => rest.last().is_some_and(u8::is_ascii_alphabetic),
        _ => ends_with_word_char(before),
    }
}

/// Returns whether the text after a run starts with a word character (`1.2.3.4x`), or with a
/// prefix length (`/24`) that makes the run the start of a CIDR block.
fn is_glued_after(after: &[u8]) -> bool {
    match after.strip_prefix(b"/") {
        Some(rest) => is_prefix_length(rest),
        None => starts_with_word_char(after),
    }
}

/// Returns whether `text` starts with 1 to 3 digits that end the token, as a CIDR prefix
/// length does (`/8`, `/24,`, `/64.` at the end of a sentence). A URL path such as `/8x` or
/// `/24/index.html` is not one.
fn is_prefix_length(text: &[u8]) -> bool {
    let digits = text.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) {
        return false;
    }
    let rest = &text[digits..];
    match rest {
        [] => true,
        [b'.' | b':', next, ..] => next.is_ascii_whitespace(),
        [b'.' | b':'] => true,
        [next, ..] => next.is_ascii_whitespace() || b",;)]}>\"'|".contains(next),
    }
}

/// Returns whether the last character of `text` is a letter, a digit or `_`, in any script.
fn ends_with_word_char(text: &[u8]) -> bool {
    let Some(&last) = text.last() else {
        return false;
    };
    if last.is_ascii() {
        return is_ascii_word_byte(last);
    }
    // A UTF-8 character is at most 4 bytes, and the shortest tail that decodes is the last one.
    let tail =
        (1..=4.min(text.len())).find_map(|len| std::str::from_utf8(&text[text.len() - len..]).ok());
    tail.and_then(|tail| tail.chars().next())
        .is_some_and(char::is_alphanumeric)
}

/// Returns whether the first character of `text` is a letter, a digit or `_`, in any script.
fn starts_with_word_char(text: &[u8]) -> bool {
    let Some(&first) = text.first() else {
        return false;
    };
    if first.is_ascii() {
        return is_ascii_word_byte(first);
    }
    let head = &text[..4.min(text.len())];
    let valid = match std::str::from_utf8(head) {
        Ok(valid) => valid,
        Err(error) => {
            // The prefix that decodes contains the first character when it is valid UTF-8.
            std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or_default()
        }
    };
    valid.chars().next().is_some_and(char::is_alphanumeric)
}

/// Returns the address a run spells. A last `.` or `:` that makes it no address is sentence
/// punctuation (`… from 1.2.3.4.`, `2001:db8::1: refused`) and is dropped, but `2001:db8::`
/// keeps its colons.
fn address_in_run(run: &[u8]) -> Option<IpAddr> {
    match run.split_last() {
        Some((b'.' | b':', rest)) => whole_address(run).or_else(|| whole_address(rest)),
        _ => whole_address(run),
    }
}

/// Returns the address that the whole run spells: IPv6 when it has two colons or more, else
/// IPv4 with an optional port.
fn whole_address(run: &[u8]) -> Option<IpAddr> {
    // A bare `::` is the unspecified address, but in text it is a separator (`Foo::Bar`,
    // `std::`), so a run needs a hex digit.
    if !run.iter().any(u8::is_ascii_hexdigit) {
        return None;
    }
    let colons = run.iter().filter(|&&byte| byte == b':').count();

    if colons >= 2 {
        if !has_ipv6_group_count(run, colons) {
            return None;
        }
        // Candidate bytes are ASCII, so the run is valid UTF-8.
        let text = std::str::from_utf8(run).ok()?;
        let v6 = text.parse::<Ipv6Addr>().ok()?;
        return Some(normalise(IpAddr::V6(v6)));
    }

    let (host, port) = match memchr::memchr(b':', run) {
        Some(colon) => (&run[..colon], Some(&run[colon + 1..])),
        None => (run, None),
    };
    if port.is_some_and(|port| !is_port(port)) {
        return None;
    }
    strict_ipv4(host).map(IpAddr::V4)
}

/// Returns whether a run with `colons` colons can be IPv6 at all, before the full parse.
/// Times (`10:20:30`) and MAC addresses, the usual colon runs in logs, fail here cheaply.
fn has_ipv6_group_count(run: &[u8], colons: usize) -> bool {
    // Eight groups need 7 colons, or 6 when the last two groups are dotted IPv4. `::` stands
    // for one group or more, so with it there are at most 7 colons, or 8 at either end.
    if memchr::memmem::find(run, b"::").is_some() {
        return colons <= 8;
    }
    colons == 7 || (colons == 6 && memchr::memchr(b'.', run).is_some())
}

/// Returns whether `text` is a decimal port number, 0 to 65535.
fn is_port(text: &[u8]) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.iter().all(u8::is_ascii_digit)
        && text
            .iter()
            .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'))
            <= 65_535
}

/// Parses exactly four decimal octets without leading zeros.
fn strict_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&byte| byte == b'.');
    for slot in &mut octets {
        *slot = strict_octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parses one decimal octet of 1 to 3 digits, `0` alone being the only one starting with `0`.
fn strict_octet(part: &[u8]) -> Option<u8> {
    let well_formed = matches!(part.len(), 1..=3)
        && part.iter().all(u8::is_ascii_digit)
        && (part.len() == 1 || part[0] != b'0');
    if !well_formed {
        return None;
    }
    let value = part
        .iter()
        .fold(0u16, |value, &digit| value * 10 + u16::from(digit - b'0'));
    u8::try_from(value).ok()
}
