use std::net::IpAddr;

use crate::input::extract_addresses;

fn extract(line: &str) -> Vec<String> {
    let mut found: Vec<IpAddr> = Vec::new();
    extract_addresses(line.as_bytes(), &mut found);
    found.iter().map(IpAddr::to_string).collect()
}

#[test]
fn extract_addresses_from_log_lines() {
    let cases: [(&str, &[&str]); 10] = [
        (
            "Jan  1 00:00:00 fw kernel: IN=eth0 SRC=203.0.113.9 DST=10.0.0.1 LEN=60",
            &["203.0.113.9", "10.0.0.1"],
        ),
        (
            r#"{"id.orig_h":"192.168.1.5","id.resp_h":"2001:4860:4860::8888"}"#,
            &["192.168.1.5", "2001:4860:4860::8888"],
        ),
        (
            "1700000000.1\tCx\t8.8.8.8\t53\t1.1.1.1\t53",
            &["8.8.8.8", "1.1.1.1"],
        ),
        (
            "connect to [2001:db8::1]:443 from 1.2.3.4:51515",
            &["2001:db8::1", "1.2.3.4"],
        ),
        ("GET http://198.51.100.7/index.html", &["198.51.100.7"]),
        ("peer ::ffff:8.8.4.4 closed", &["8.8.4.4"]),
        ("link fe80::1%eth0 up", &["fe80::1"]),
        ("blocked 9.9.9.9.", &["9.9.9.9"]),
        ("from 2001:db8::2: refused", &["2001:db8::2"]),
        ("loopback ::1 and 127.0.0.1", &["::1", "127.0.0.1"]),
    ];
    for (line, expected) in cases {
        assert_eq!(extract(line), expected, "line {line:?}");
    }
}

#[test]
fn extract_addresses_skips_lookalikes() {
    let cases = [
        "five parts 1.2.3.4.5",
        "version v1.2.3.4 released",
        "Mozilla/5.0 Chrome/120.0.1.2 Safari",
        "date 2024.01.02 and 2024-01-02",
        "time 10:20:30 and 10:20",
        "mac 00:11:22:33:44:55",
        "octal 010.8.8.8",
        "build 10.0.19041.1",
        "std::vector and Error::new",
        "out of range 256.1.1.1",
        "id abc1.2.3.4 or 1.2.3.4x",
        "port 1.2.3.4:99999",
        "",
    ];
    for line in cases {
        assert_eq!(extract(line), Vec::<String>::new(), "line {line:?}");
    }
}

#[test]
fn extract_addresses_keeps_repeats_in_order() {
    assert_eq!(
        extract("8.8.8.8 -> 1.1.1.1 -> 8.8.8.8"),
        ["8.8.8.8", "1.1.1.1", "8.8.8.8"]
    );
}

#[test]
fn extract_addresses_never_panics_on_unicode() {
    let lines = [
        "é1.2.3.4é",
        "１.２.３.４",
        "\u{feff}8.8.8.8",
        "💥::1💥",
        "::",
    ];
    let expected: [&[&str]; 5] = [&[], &[], &["8.8.8.8"], &["::1"], &[]];
    for (line, expected) in lines.iter().zip(expected) {
        assert_eq!(extract(line), expected, "line {line:?}");
    }
}

#[test]
fn address_ending_in_double_colon_is_found() {
    assert_eq!(
        extract("route to 2001:db8:: via 0:1:1:0:1::, done."),
        ["2001:db8::", "0:1:1:0:1::"]
    );
    assert_eq!(extract("from 2001:db8::1: refused"), ["2001:db8::1"]);
}

#[test]
fn extract_addresses_skips_cidr_and_glued_versions() {
    let cases: [(&str, &[&str]); 10] = [
        ("nat64 64:ff9b:0:0:0:0:8.8.8.8 seen", &["64:ff9b::808:808"]),
        (
            "full 1:2:3:4:5:6:7:8 and 1:2:3:4:5:6:7::",
            &["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:0"],
        ),
        ("route 10.0.0.0/8 via 192.0.2.1", &["192.0.2.1"]),
        ("nets 10.0.0.0/8, 2001:db8::/32.", &[]),
        ("GET http://198.51.100.7/8x", &["198.51.100.7"]),
        ("GET http://198.51.100.8/24/index.html", &["198.51.100.8"]),
        ("package nginx-1.25.3.1 installed", &[]),
        ("range 10.0.0.1-10.0.0.9", &["10.0.0.1", "10.0.0.9"]),
        ("blocked «8.8.8.8» twice", &["8.8.8.8"]),
        (
            "peer [2001:db8::1]:443 and 1.2.3.4:0",
            &["2001:db8::1", "1.2.3.4"],
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(extract(line), expected, "line {line:?}");
    }
}

#[test]
fn extract_addresses_reads_invalid_utf8_around_addresses() {
    let mut found = Vec::new();
    extract_addresses(b"\xff8.8.8.8\xfe 1.1.1.1\xc3", &mut found);
    let found: Vec<String> = found.iter().map(IpAddr::to_string).collect();
    assert_eq!(found, ["8.8.8.8", "1.1.1.1"]);
}
