//! Inputs that are not what the reader expects: over-long lines, binary data, junk headers.

use crate::input::{InputError, read_inputs};
use crate::model::InputItem;

use super::fixture::{Fixture, assert_counts_add_up, gzip, summary};

/// Returns the reason of an `Invalid` item.
fn reason(item: &InputItem) -> &str {
    match item {
        InputItem::Invalid { reason, .. } => reason,
        other => panic!("expected an invalid item, found {other:?}"),
    }
}

#[test]
fn overlong_list_line_is_one_invalid_value() {
    let mut content = b"8.8.8.8\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 100_000));
    content.extend(b"\n1.1.1.1\n");
    let fixture = Fixture::new().file("list.txt", &content);
    let (items, stats) = fixture.read();

    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(summary(&items[..1]), ["lookup 8.8.8.8 @1"]);
    assert_eq!(summary(&items[2..]), ["lookup 1.1.1.1 @3"]);
    let message = reason(&items[1]);
    assert!(message.contains("100001 bytes"), "{message}");
    assert!(message.contains("65536-byte limit"), "{message}");
    assert_eq!(stats.invalid_values, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn list_line_at_the_limit_is_a_value() {
    let content = format!("{}\r\n8.8.8.8\n", "y".repeat(65_536));
    let fixture = Fixture::new().file("list.txt", content.as_bytes());
    let (items, _) = fixture.read();

    assert_eq!(items.len(), 2, "{items:?}");
    let message = reason(&items[0]);
    assert!(!message.contains("limit"), "{message}");
}

#[test]
fn overlong_csv_line_is_skipped_and_reported() {
    let mut content = b"ip,port\n8.8.8.8,53\n9.9.9.9,".to_vec();
    content.extend(std::iter::repeat_n(b'7', 2 * 1024 * 1024));
    content.extend(b"\n1.1.1.1,443\n");
    let fixture = Fixture::new().file("log.csv", &content);
    let (items, stats) = fixture.read();

    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(summary(&items[..1]), ["lookup 8.8.8.8 @2"]);
    assert_eq!(summary(&items[2..]), ["lookup 1.1.1.1 @4"]);
    let InputItem::Invalid { raw, location, .. } = &items[1] else {
        panic!("unexpected {:?}", items[1]);
    };
    assert_eq!(location.line, 3);
    assert!(raw.starts_with("9.9.9.9,777"), "{raw}");
    let message = reason(&items[1]);
    assert!(message.contains("2097160 bytes"), "{message}");
    assert!(message.contains("1048576-byte limit"), "{message}");
    assert_eq!(stats.lines_read, 4);
    assert_counts_add_up(&stats);
}

#[test]
fn overlong_csv_line_after_the_sample_keeps_order() {
    let mut content = String::from("# export\nip\n");
    for i in 0..300 {
        content.push_str(&format!("8.8.{}.{}\n", i / 250, i % 250 + 1));
    }
    content.push_str(&"z".repeat(1_100_000));
    content.push_str("\n1.1.1.1\n");
    let fixture = Fixture::new().file("list.csv", content.as_bytes());
    let (items, stats) = fixture.read();

    assert_eq!(items.len(), 302);
    let InputItem::Invalid { location, .. } = &items[300] else {
        panic!("unexpected {:?}", items[300]);
    };
    assert_eq!(location.line, 303);
    assert_eq!(summary(&items[301..]), ["lookup 1.1.1.1 @304"]);
    assert_counts_add_up(&stats);
}

#[test]
fn nul_bytes_mean_binary() {
    let fixture = Fixture::new().file("dump.bin", b"ip\n8.8.8.8\n\x00\x01\x02\x03");
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();
    assert!(matches!(error, InputError::NotText { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("a NUL byte at byte 11"), "{message}");
    assert!(message.contains("dump.bin"), "{message}");
}

#[test]
fn utf16_export_is_not_text() {
    let text = "ip\r\n8.8.8.8\r\n";
    let mut utf16 = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    let fixture = Fixture::new().file("export.csv", &utf16);
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();
    assert!(error.to_string().contains("UTF-16"), "{error}");
}

#[test]
fn high_bytes_without_nul_mean_binary() {
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80)
        .collect();
    let fixture = Fixture::new().file("noise", &gzip(&noise));
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();
    assert!(matches!(error, InputError::NotText { .. }), "{error:?}");
    assert!(error.to_string().contains("invalid UTF-8"), "{error}");
}

#[test]
fn latin1_export_is_still_text() {
    let content = b"name,ip\nJos\xe9,8.8.8.8\nZo\xeb,1.1.1.1\nRen\xe9e,9.9.9.9\n";
    let fixture = Fixture::new().file("latin1.csv", content);
    let (items, stats) = fixture.read();
    assert_eq!(stats.lookup_addresses, 3, "{items:?}");
}

#[test]
fn junk_header_is_escaped_and_cut_in_errors() {
    let mut header: Vec<String> = (0..100).map(|i| format!("c\u{1}{i}")).collect();
    header[0] = "w".repeat(500);
    let mut content = header.join(",");
    content.push('\n');
    for _ in 0..5 {
        content.push_str(&vec!["x"; 100].join(","));
        content.push('\n');
    }
    let fixture = Fixture::new().file("wide.csv", content.as_bytes());
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();
    let message = error.to_string();

    assert!(
        matches!(error, InputError::NoAddressColumn { .. }),
        "{error:?}"
    );
    assert!(message.contains(r"`c\u{1}1`"), "{message}");
    assert!(message.contains("and 80 more"), "{message}");
    assert!(
        message.contains(&format!("`{}…`", "w".repeat(40))),
        "{message}"
    );
    assert!(!message.contains('\u{1}'), "{message}");
    assert!(message.len() < 1_000, "{} bytes: {message}", message.len());
}
