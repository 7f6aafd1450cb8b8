use std::net::IpAddr;

use crate::input::non_global_reason;

fn reason(text: &str) -> Option<&'static str> {
    let ip: IpAddr = text.parse().unwrap();
    non_global_reason(&ip)
}

#[test]
fn non_global_reason_ipv4_blocks() {
    let cases = [
        ("0.0.0.0", "unspecified address 0.0.0.0 (RFC 1122)"),
        ("0.1.2.3", "\"this network\" block 0.0.0.0/8 (RFC 1122)"),
        ("10.0.0.5", "private address (RFC 1918)"),
        ("172.16.0.1", "private address (RFC 1918)"),
        ("172.31.255.255", "private address (RFC 1918)"),
        ("192.168.0.1", "private address (RFC 1918)"),
        (
            "100.64.0.1",
            "shared address space (carrier-grade NAT) 100.64.0.0/10 (RFC 6598)",
        ),
        (
            "100.127.255.255",
            "shared address space (carrier-grade NAT) 100.64.0.0/10 (RFC 6598)",
        ),
        ("127.0.0.1", "loopback address (RFC 1122)"),
        ("169.254.1.1", "link-local address (RFC 3927)"),
        (
            "192.0.0.8",
            "IETF protocol assignment 192.0.0.0/24 (RFC 6890)",
        ),
        (
            "192.0.0.170",
            "IETF protocol assignment 192.0.0.0/24 (RFC 6890)",
        ),
        ("192.0.2.1", "documentation address (RFC 5737)"),
        ("198.51.100.7", "documentation address (RFC 5737)"),
        ("203.0.113.255", "documentation address (RFC 5737)"),
        (
            "198.18.0.1",
            "benchmarking address 198.18.0.0/15 (RFC 2544)",
        ),
        (
            "198.19.255.255",
            "benchmarking address 198.18.0.0/15 (RFC 2544)",
        ),
        ("224.0.0.1", "multicast address (RFC 5771)"),
        ("239.255.255.250", "multicast address (RFC 5771)"),
        ("240.0.0.1", "reserved address 240.0.0.0/4 (RFC 1112)"),
        ("255.255.255.254", "reserved address 240.0.0.0/4 (RFC 1112)"),
        ("255.255.255.255", "limited broadcast address (RFC 919)"),
    ];
    for (address, expected) in cases {
        assert_eq!(reason(address), Some(expected), "address {address}");
    }
}

#[test]
fn non_global_reason_ipv4_global() {
    let cases = [
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.0.9",
        "192.0.0.10",
        "192.0.1.1",
        "192.88.99.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
    ];
    for address in cases {
        assert_eq!(reason(address), None, "address {address}");
    }
}

#[test]
fn non_global_reason_ipv6_blocks() {
    let cases = [
        ("::", "unspecified address :: (RFC 4291)"),
        ("::1", "loopback address ::1 (RFC 4291)"),
        ("::ffff:8.8.8.8", "IPv4-mapped address (RFC 4291)"),
        (
            "64:ff9b:1::1",
            "local-use IPv4/IPv6 translation prefix (RFC 8215)",
        ),
        ("100::1", "discard-only address block 100::/64 (RFC 6666)"),
        (
            "100:0:0:1::1",
            "dummy IPv6 prefix 100:0:0:1::/64 (IANA special-purpose registry)",
        ),
        ("2001::1", "Teredo tunnelling address 2001::/32 (RFC 4380)"),
        ("2001:2::1", "benchmarking address 2001:2::/48 (RFC 5180)"),
        (
            "2001:10::1",
            "deprecated ORCHID address 2001:10::/28 (RFC 4843)",
        ),
        ("2001:1::4", "IETF protocol assignment 2001::/23 (RFC 2928)"),
        (
            "2001:1ff::1",
            "IETF protocol assignment 2001::/23 (RFC 2928)",
        ),
        ("2001:db8::1", "documentation address (RFC 3849)"),
        ("3fff:fff::1", "documentation address 3fff::/20 (RFC 9637)"),
        ("5f00::1", "segment routing SID block 5f00::/16 (RFC 9602)"),
        ("fc00::1", "unique local address fc00::/7 (RFC 4193)"),
        ("fd12:3456::1", "unique local address fc00::/7 (RFC 4193)"),
        ("fe80::1", "link-local address fe80::/10 (RFC 4291)"),
        ("febf::1", "link-local address fe80::/10 (RFC 4291)"),
        (
            "fec0::1",
            "deprecated site-local address fec0::/10 (RFC 3879)",
        ),
        ("ff02::1", "multicast address ff00::/8 (RFC 4291)"),
        (
            "::1.2.3.4",
            "reserved by the IETF, outside global unicast 2000::/3 (RFC 4291)",
        ),
        (
            "4000::1",
            "reserved by the IETF, outside global unicast 2000::/3 (RFC 4291)",
        ),
    ];
    for (address, expected) in cases {
        assert_eq!(reason(address), Some(expected), "address {address}");
    }
}

#[test]
fn non_global_reason_ipv6_global() {
    let cases = [
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
        "2001:1::1",
        "2001:1::2",
        "2001:1::3",
        "2001:3::1",
        "2001:4:112::1",
        "2001:20::1",
        "2001:3f::1",
        "2001:200::1",
        "2002:c058:6301::1",
        "3fff:1000::1",
        "3ffe::1",
    ];
    for address in cases {
        assert_eq!(reason(address), None, "address {address}");
    }
}
