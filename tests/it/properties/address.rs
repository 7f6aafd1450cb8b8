//! Properties of `parse_address`: canonical text parses back to the same address, every other
//! accepted spelling parses to that address too, and no string makes it panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vt_enrich::input::{AddressError, parse_address};

use super::config;

/// IPv6 addresses with runs of zero groups, so `::` compression is exercised, and without
/// IPv4-mapped ones, which parse to IPv4.
fn ipv6_not_mapped() -> impl Strategy<Value = Ipv6Addr> {
    let group = prop_oneof![3 => Just(0u16), 1 => Just(0xffff), 4 => any::<u16>()];
    prop::array::uniform8(group)
        .prop_map(Ipv6Addr::from)
        .prop_filter("IPv4-mapped parses to IPv4", |ip| {
            ip.to_ipv4_mapped().is_none()
        })
}

/// Text the parser has to think about: address characters, brackets, ports, ranges, zones.
fn address_like_text() -> impl Strategy<Value = String> {
    "[0-9a-fA-F:.\\[\\]/%\\- \"']{0,48}"
}

/// Writes every group of `ip` in full, upper case: a spelling that is not RFC 5952.
fn expanded_upper(ip: &Ipv6Addr) -> String {
    let groups: Vec<String> = ip.segments().iter().map(|g| format!("{g:04X}")).collect();
    groups.join(":")
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn ipv4_text_round_trips(ip in any::<Ipv4Addr>()) {
        prop_assert_eq!(parse_address(&ip.to_string()), Ok(IpAddr::V4(ip)));
    }

    #[test]
    fn ipv6_text_round_trips(ip in ipv6_not_mapped()) {
        let text = ip.to_string();
        prop_assert_eq!(parse_address(&text), Ok(IpAddr::V6(ip)));
        prop_assert_eq!(parse_address(&expanded_upper(&ip)), Ok(IpAddr::V6(ip)));
    }

    #[test]
    fn mapped_ipv6_becomes_ipv4(ip in any::<Ipv4Addr>()) {
        let expected = Ok(IpAddr::V4(ip));
        prop_assert_eq!(parse_address(&ip.to_ipv6_mapped().to_string()), expected.clone());
        prop_assert_eq!(parse_address(&format!("::FFFF:{ip}")), expected.clone());
        let [a, b, c, d] = ip.octets();
        let hex = format!("::ffff:{:x}:{:x}", u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        prop_assert_eq!(parse_address(&hex), expected);
    }

    #[test]
    fn ports_quotes_and_spaces_are_removed(
        v4 in any::<Ipv4Addr>(),
        v6 in ipv6_not_mapped(),
        port in any::<u16>(),
    ) {
        prop_assert_eq!(parse_address(&format!("{v4}:{port}")), Ok(IpAddr::V4(v4)));
        prop_assert_eq!(parse_address(&format!("[{v6}]:{port}")), Ok(IpAddr::V6(v6)));
        prop_assert_eq!(parse_address(&format!(" \"{v4}\" ")), Ok(IpAddr::V4(v4)));
        prop_assert_eq!(parse_address(&format!("'{v6}'")), Ok(IpAddr::V6(v6)));
    }

    #[test]
    fn leading_zero_octet_is_rejected(ip in any::<Ipv4Addr>(), index in 0usize..4, zeros in 1usize..3) {
        let mut octets: Vec<String> = ip.octets().iter().map(u8::to_string).collect();
        octets[index] = format!("{}{}", "0".repeat(zeros), octets[index]);
        let text = octets.join(".");
        let rejected = matches!(parse_address(&text), Err(AddressError::LeadingZero { .. }));
        prop_assert!(rejected, "{} gave {:?}", text, parse_address(&text));
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_address(&text);
    }

    #[test]
    fn accepted_text_is_canonical_once_parsed(text in address_like_text()) {
        // Whatever spelling was accepted, the canonical text of the result parses to itself.
        if let Ok(ip) = parse_address(&text) {
            prop_assert_eq!(parse_address(&ip.to_string()), Ok(ip), "from {:?}", text);
            let mapped = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
            prop_assert!(!mapped, "{:?} gave IPv4-mapped {}", text, ip);
        }
    }
}
