//! Properties of `extract_addresses`: no input makes it panic, and an address set off by
//! separators in a log line is always found.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vt_enrich::input::extract_addresses;

use super::config;

/// Characters that end a word in log lines without being part of an address. `/` is left
/// out because `word/1.2.3.4` reads as a version string, and `.` and `:` because they are
/// address characters.
const OPENING: &[char] = &[' ', '\t', ',', ';', '=', '(', '[', '<', '"', '\'', '|', '{'];
const CLOSING: &[char] = &[
    ' ', '\t', ',', ';', ')', ']', '>', '"', '\'', '|', '}', '\n',
];

/// Every address but the unspecified `::`, which has no digit to anchor on.
fn any_address() -> impl Strategy<Value = IpAddr> {
    let group = prop_oneof![3 => Just(0u16), 4 => any::<u16>()];
    let v6 = prop::array::uniform8(group)
        .prop_map(Ipv6Addr::from)
        .prop_filter("no digit to find", |ip| !ip.is_unspecified());
    prop_oneof![
        any::<Ipv4Addr>().prop_map(IpAddr::V4),
        v6.prop_map(IpAddr::V6),
    ]
}

/// Returns how the extractor reports `ip`: IPv4-mapped IPv6 as IPv4.
fn reported(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let mut found = Vec::new();
        extract_addresses(text.as_bytes(), &mut found);
        prop_assert!(found.len() <= text.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut found = Vec::new();
        extract_addresses(&bytes, &mut found);
        prop_assert!(found.len() <= bytes.len());
    }

    #[test]
    fn address_between_separators_is_found(
        ip in any_address(),
        before in "[a-zA-Z0-9 _=-]{0,20}",
        after in "[a-zA-Z0-9 _=.:-]{0,20}",
        open in prop::sample::select(OPENING),
        close in prop::sample::select(CLOSING),
        port in prop::option::of(any::<u16>()),
    ) {
        let spelled = match (ip, port) {
            (IpAddr::V4(v4), Some(port)) => format!("{v4}:{port}"),
            (IpAddr::V6(v6), Some(port)) => format!("[{v6}]:{port}"),
            (ip, None) => ip.to_string(),
        };
        let line = format!("{before}{open}{spelled}{close}{after}");
        let mut found = Vec::new();
        extract_addresses(line.as_bytes(), &mut found);
        prop_assert!(found.contains(&reported(ip)), "{:?} in {:?}: found {:?}", ip, line, found);
    }
}
