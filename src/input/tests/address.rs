use std::net::IpAddr;

use crate::input::{AddressError, parse_address};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn parse_address_accepts_and_normalises() {
    let cases = [
        ("8.8.8.8", "8.8.8.8"),
        (" 8.8.8.8 ", "8.8.8.8"),
        ("\t8.8.8.8\r", "8.8.8.8"),
        ("\"8.8.8.8\"", "8.8.8.8"),
        ("' 8.8.8.8 '", "8.8.8.8"),
        ("::ffff:8.8.8.8", "8.8.8.8"),
        ("::FFFF:808:808", "8.8.8.8"),
        ("[::ffff:8.8.8.8]:53", "8.8.8.8"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("1.2.3.4:443", "1.2.3.4"),
        ("1.2.3.4:0", "1.2.3.4"),
        ("1.2.3.4:65535", "1.2.3.4"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("[2001:4860::8888]:443", "2001:4860::8888"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1:443", "2001:db8::1:443"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]:80", "fe80::1"),
        ("::1", "::1"),
        ("::", "::"),
        ("::1.2.3.4", "::102:304"),
        ("64:ff9b::8.8.8.8", "64:ff9b::808:808"),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_address(raw), Ok(ip(expected)), "input {raw:?}");
    }
}

#[test]
fn parse_address_ipv6_text_is_rfc5952() {
    let cases = [
        ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0DB8::0001", "2001:db8::1"),
    ];
    for (raw, expected) in cases {
        let parsed = parse_address(raw).unwrap();
        assert_eq!(parsed.to_string(), expected, "input {raw:?}");
    }
}

#[test]
fn parse_address_rejects_with_reason() {
    let leading = |octet: &str, fixed: &str| AddressError::LeadingZero {
        octet: octet.to_string(),
        fixed: fixed.to_string(),
    };
    let range = |octet: &str| AddressError::OctetOutOfRange {
        octet: octet.to_string(),
    };
    let cases = [
        ("010.8.8.8", leading("010", "10")),
        ("95.32.221.040", leading("040", "40")),
        ("1.2.3.00", leading("00", "0")),
        ("0300.1.1.1", leading("0300", "300")),
        ("256.1.1.1", range("256")),
        ("1.2.3.300", range("300")),
        ("1.2.3.99999999999999999999", range("99999999999999999999")),
        ("1.2.3", AddressError::WrongOctetCount { found: 3 }),
        ("1.2.3.4.5", AddressError::WrongOctetCount { found: 5 }),
        ("1..3.4", AddressError::EmptyOctet),
        ("1.2.3.", AddressError::EmptyOctet),
        ("134744072", AddressError::Integer),
        (
            "0x8.8.8.8",
            AddressError::NonDecimalOctet {
                octet: "0x8".to_string(),
            },
        ),
        ("example.com", AddressError::Hostname),
        ("localhost", AddressError::Hostname),
        ("mail-1.example.org:25", AddressError::Hostname),
        ("host-name", AddressError::Hostname),
        ("203.0.113.0/24", AddressError::Cidr),
        ("8.8.8.8/32", AddressError::Cidr),
        ("2001:db8::/32", AddressError::Cidr),
        ("[2001:db8::]/48", AddressError::Cidr),
        ("198.51.100.1-198.51.100.3", AddressError::Range),
        ("198.51.100.1 - 198.51.100.3", AddressError::Range),
        ("198.51.100.1-3", AddressError::Range),
        ("2001:db8::1-2001:db8::9", AddressError::Range),
        (
            "1.2.3.4:",
            AddressError::InvalidPort {
                port: String::new(),
            },
        ),
        (
            "1.2.3.4:65536",
            AddressError::InvalidPort {
                port: "65536".to_string(),
            },
        ),
        (
            "1.2.3.4:http",
            AddressError::InvalidPort {
                port: "http".to_string(),
            },
        ),
        (
            "[2001:db8::1]:99999",
            AddressError::InvalidPort {
                port: "99999".to_string(),
            },
        ),
        ("1.2.3.4 5.6.7.8", AddressError::InnerWhitespace),
        ("", AddressError::Empty),
        ("   ", AddressError::Empty),
        ("\"\"", AddressError::Empty),
        ("/", AddressError::NotAnAddress),
        ("-", AddressError::NotAnAddress),
        ("[2001:db8::1]x", AddressError::NotAnAddress),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_address(raw), Err(expected), "input {raw:?}");
    }
}

#[test]
fn parse_address_rejects_bad_ipv6() {
    let cases = [
        ("2001:db8::1::2", "`::` appears more than once"),
        (
            "2001:db8:12345::1",
            "group `12345` has more than 4 hex digits",
        ),
        (
            "2001:db8:g::1",
            "contains a character other than hex digits, `:` and `.`",
        ),
        ("1:2:3:4:5:6:7:8:9", "wrong number of groups"),
        ("::ffff:010.1.1.1", "embedded IPv4 `010.1.1.1`"),
        ("[2001:db8::1", "`[` without a matching `]`"),
        ("[1.2.3.4]", "brackets are only used around IPv6 addresses"),
        ("fe80::1%", "empty zone id after `%`"),
    ];
    for (raw, expected) in cases {
        let error = parse_address(raw).unwrap_err();
        assert!(
            matches!(error, AddressError::InvalidIpv6 { .. }),
            "input {raw:?} gave {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(expected), "input {raw:?} gave {message:?}");
    }
}

#[test]
fn address_error_messages_read_well() {
    let cases = [
        (
            "010.8.8.8",
            "leading zero in octet `010`: ambiguous (some parsers read it as octal); write `10`",
        ),
        ("1.2.3.300", "octet `300` out of range 0-255"),
        ("203.0.113.0/24", "CIDR block, not one address"),
        (
            "198.51.100.1-198.51.100.3",
            "address range, not one address",
        ),
        ("example.com", "hostname, not an IP address"),
        ("1.2.3", "IPv4 address has 3 octets, expected 4"),
    ];
    for (raw, expected) in cases {
        let message = parse_address(raw).unwrap_err().to_string();
        assert_eq!(message, expected, "input {raw:?}");
    }
}

#[test]
fn parse_address_same_address_spellings() {
    let spellings = [
        "8.8.8.8",
        " 8.8.8.8 ",
        "::ffff:8.8.8.8",
        "8.8.8.8:53",
        "[::ffff:8.8.8.8]",
    ];
    for raw in spellings {
        assert_eq!(parse_address(raw), Ok(ip("8.8.8.8")), "input {raw:?}");
    }
}
