//! Classification of addresses that are not globally routable.
//!
//! The tables follow the IANA IPv4 and IPv6 Special-Purpose Address Registries. Every block whose
//! "Globally Reachable" column is False is listed. The blocks inside them that are marked True
//! (anycast services, AMT, AS112, ORCHIDv2, drone identifiers) are listed before them as
//! exceptions.
//! Multicast, the deprecated IPv6 site-local block and IPv6 space outside global unicast
//! `2000::/3` are not special-purpose entries, but are never routed as unicast on the Internet.
//! Blocks the registry marks N/A (6to4 `2002::/16`, the deprecated 6to4 relay anycast
//! `192.88.99.0/24`) are treated as global, because addresses in them still get looked up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One registry entry: the block and the reason shown to the user, or `None` for a block that is
/// globally reachable although a wider entry is not.
struct Block<T> {
    network: T,
    prefix_len: u32,
    reason: Option<&'static str>,
}

const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    prefix_len: u32,
    reason: Option<&'static str>,
) -> Block<u32> {
    Block {
        network: u32::from_be_bytes([a, b, c, d]),
        prefix_len,
        reason,
    }
}

const fn v6(segments: [u16; 8], prefix_len: u32, reason: Option<&'static str>) -> Block<u128> {
    let mut bits: u128 = 0;
    let mut i = 0;
    while i < 8 {
        bits = (bits << 16) | segments[i] as u128;
        i += 1;
    }
    Block {
        network: bits,
        prefix_len,
        reason,
    }
}

const PRIVATE: Option<&str> = Some("private address (RFC 1918)");
const DOCUMENTATION_V4: Option<&str> = Some("documentation address (RFC 5737)");
const GLOBAL: Option<&str> = None;

/// Checked in order, so exceptions and narrower blocks come before the blocks that contain them.
const IPV4_BLOCKS: &[Block<u32>] = &[
    v4(
        0,
        0,
        0,
        0,
        32,
        Some("unspecified address 0.0.0.0 (RFC 1122)"),
    ),
    v4(
        0,
        0,
        0,
        0,
        8,
        Some("\"this network\" block 0.0.0.0/8 (RFC 1122)"),
    ),
    v4(10, 0, 0, 0, 8, PRIVATE),
    v4(
        100,
        64,
        0,
        0,
        10,
        Some("shared address space (carrier-grade NAT) 100.64.0.0/10 (RFC 6598)"),
    ),
    v4(127, 0, 0, 0, 8, Some("loopback address (RFC 1122)")),
    v4(169, 254, 0, 0, 16, Some("link-local address (RFC 3927)")),
    v4(172, 16, 0, 0, 12, PRIVATE),
    // Port Control Protocol and TURN anycast addresses are globally reachable.
    v4(192, 0, 0, 9, 32, GLOBAL),
    v4(192, 0, 0, 10, 32, GLOBAL),
    v4(
        192,
        0,
        0,
        0,
        24,
        Some("IETF protocol assignment 192.0.0.0/24 (RFC 6890)"),
    ),
    v4(192, 0, 2, 0, 24, DOCUMENTATION_V4),
    v4(192, 168, 0, 0, 16, PRIVATE),
    v4(
        198,
        18,
        0,
        0,
        15,
        Some("benchmarking address 198.18.0.0/15 (RFC 2544)"),
    ),
    v4(198, 51, 100, 0, 24, DOCUMENTATION_V4),
    v4(203, 0, 113, 0, 24, DOCUMENTATION_V4),
    v4(224, 0, 0, 0, 4, Some("multicast address (RFC 5771)")),
    v4(
        255,
        255,
        255,
        255,
        32,
        Some("limited broadcast address (RFC 919)"),
    ),
    v4(
        240,
        0,
        0,
        0,
        4,
        Some("reserved address 240.0.0.0/4 (RFC 1112)"),
    ),
];

const DOCUMENTATION_V6: Option<&str> = Some("documentation address (RFC 3849)");

/// Checked in order, like [`IPV4_BLOCKS`]. Addresses matching none of these are then checked
/// against global unicast `2000::/3`.
const IPV6_BLOCKS: &[Block<u128>] = &[
    v6([0; 8], 128, Some("unspecified address :: (RFC 4291)")),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        Some("loopback address ::1 (RFC 4291)"),
    ),
    v6(
        [0, 0, 0, 0, 0, 0xffff, 0, 0],
        96,
        Some("IPv4-mapped address (RFC 4291)"),
    ),
    // The NAT64 well-known prefix is globally reachable, although it lies outside 2000::/3.
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, GLOBAL),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        Some("local-use IPv4/IPv6 translation prefix (RFC 8215)"),
    ),
    v6(
        [0x100, 0, 0, 0, 0, 0, 0, 0],
        64,
        Some("discard-only address block 100::/64 (RFC 6666)"),
    ),
    v6(
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        Some("dummy IPv6 prefix 100:0:0:1::/64 (IANA special-purpose registry)"),
    ),
    // Anycast services, AMT, AS112-v6, ORCHIDv2 and drone identifiers inside 2001::/23 are
    // globally reachable.
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, GLOBAL),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, GLOBAL),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, GLOBAL),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, GLOBAL),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, GLOBAL),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, GLOBAL),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, GLOBAL),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        Some("Teredo tunnelling address 2001::/32 (RFC 4380)"),
    ),
    v6(
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        Some("benchmarking address 2001:2::/48 (RFC 5180)"),
    ),
    v6(
        [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
        28,
        Some("deprecated ORCHID address 2001:10::/28 (RFC 4843)"),
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        Some("IETF protocol assignment 2001::/23 (RFC 2928)"),
    ),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, DOCUMENTATION_V6),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        Some("documentation address 3fff::/20 (RFC 9637)"),
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        Some("segment routing SID block 5f00::/16 (RFC 9602)"),
    ),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        Some("unique local address fc00::/7 (RFC 4193)"),
    ),
    v6(
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        Some("link-local address fe80::/10 (RFC 4291)"),
    ),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        Some("deprecated site-local address fec0::/10 (RFC 3879)"),
    ),
    v6(
        [0xff00, 0, 0, 0, 0, 0, 0, 0],
        8,
        Some("multicast address ff00::/8 (RFC 4291)"),
    ),
];

const OUTSIDE_GLOBAL_UNICAST: &str =
    "reserved by the IETF, outside global unicast 2000::/3 (RFC 4291)";

/// Returns why `ip` is not globally routable, naming the block and its RFC, or `None` for an
/// address that may be sent to the API.
pub fn non_global_reason(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => ipv4_reason(*v4),
        IpAddr::V6(v6) => ipv6_reason(*v6),
    }
}

fn ipv4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    let block = IPV4_BLOCKS
        .iter()
        .find(|block| prefix_matches_u32(bits, block))?;
    block.reason
}

fn ipv6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    if let Some(block) = IPV6_BLOCKS
        .iter()
        .find(|block| prefix_matches_u128(bits, block))
    {
        return block.reason;
    }

    let in_global_unicast = bits >> 125 == 0b001;
    if in_global_unicast {
        None
    } else {
        Some(OUTSIDE_GLOBAL_UNICAST)
    }
}

fn prefix_matches_u32(bits: u32, block: &Block<u32>) -> bool {
    let mask = u32::MAX.checked_shl(32 - block.prefix_len).unwrap_or(0);
    bits & mask == block.network
}

fn prefix_matches_u128(bits: u128, block: &Block<u128>) -> bool {
    let mask = u128::MAX.checked_shl(128 - block.prefix_len).unwrap_or(0);
    bits & mask == block.network
}
