//! `--extract` mode end to end through `read_inputs`: layout detection, Zeek, JSON Lines,
//! free text, refang and the line scanner.

use std::io::Cursor;

use crate::input::line_scan::{Line, for_each_line};
use crate::input::sink::Flow;
use crate::input::{ExtractOptions, InputError, InputOptions, read_inputs, refang};
use crate::model::InputItem;

use super::fixture::{Fixture, assert_counts_add_up, gzip, read_all, summary, zstd_compress};

fn extract_options(fixture: &Fixture) -> InputOptions {
    InputOptions {
        extract: Some(ExtractOptions::default()),
        ..fixture.options()
    }
}

const ZEEK_CONN: &[u8] = b"#separator \\x09\n\
#set_separator\t,\n\
#empty_field\t(empty)\n\
#unset_field\t-\n\
#path\tconn\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tnote\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tstring\n\
1728684000.1\tC1\t192.168.1.20\t51544\t151.101.1.69\t443\tseen 9.9.9.9\n\
1728684001.2\tC2\t2001:470:1f0b:1a5::2\t51000\t2606:4700:4700::1111\t443\t-\n\
#close\t2024-10-11-23-00-00\n";

#[test]
fn zeek_reads_addr_fields_only() {
    let fixture = Fixture::new().file("conn.log", ZEEK_CONN);
    let (items, stats) = read_all(&extract_options(&fixture));

    assert_eq!(
        summary(&items),
        [
            "skipped 192.168.1.20 @8",
            "lookup 151.101.1.69 @8",
            "lookup 2001:470:1f0b:1a5::2 @9",
            "lookup 2606:4700:4700::1111 @9",
        ]
    );
    assert_eq!(stats.columns_used, ["id.orig_h", "id.resp_h"]);
    assert_eq!(stats.records_read, 2);
    assert_eq!(stats.ignored_lines, 8);
    assert_eq!(stats.lines_read, 10);
    assert_counts_add_up(&stats);
}

#[test]
fn zeek_column_option_picks_fields() {
    let fixture = Fixture::new().file("conn.log", ZEEK_CONN);
    let options = InputOptions {
        columns: vec!["note".to_string(), "ID.RESP_H".to_string()],
        ..extract_options(&fixture)
    };
    let (items, stats) = read_all(&options);
    assert_eq!(
        summary(&items),
        [
            "invalid seen 9.9.9.9 @8",
            "lookup 151.101.1.69 @8",
            "lookup 2606:4700:4700::1111 @9",
        ]
    );
    assert_eq!(stats.blank_values, 1, "the unset `-` is a blank value");
    assert_counts_add_up(&stats);
}

#[test]
fn zeek_unknown_column_is_an_error() {
    let fixture = Fixture::new().file("conn.log", ZEEK_CONN);
    let options = InputOptions {
        columns: vec!["src".to_string()],
        ..extract_options(&fixture)
    };
    let error = read_inputs(&options, &mut |_| true).unwrap_err();
    assert!(
        matches!(&error, InputError::ColumnNotFound { column, .. } if column == "src"),
        "{error}"
    );
}

#[test]
fn zeek_sets_and_repeated_headers() {
    let content = b"#separator \\x09\n\
#fields\tts\ttx_hosts\n\
#types\ttime\tset[addr]\n\
1.0\t8.8.8.8,1.1.1.1\n\
2.0\t(empty)\n\
#separator \\x7c\n\
#fields|ts|resp\n\
#types|time|addr\n\
3.0|9.9.9.9\n";
    let fixture = Fixture::new().file("files.log", content);
    let (items, stats) = read_all(&extract_options(&fixture));
    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @4",
            "lookup 1.1.1.1 @4",
            "lookup 9.9.9.9 @9"
        ]
    );
    assert_eq!(stats.blank_values, 1);
    assert_eq!(stats.columns_used, ["tx_hosts", "resp"]);
}

#[test]
fn zeek_without_addr_fields_reads_nothing() {
    let content = b"#separator \\x09\n#fields\tts\tname\n#types\ttime\tstring\n1.0\t8.8.8.8\n";
    let fixture = Fixture::new().file("loaded.log", content);
    let (items, stats) = read_all(&extract_options(&fixture));
    assert!(items.is_empty(), "{items:?}");
    assert_eq!(stats.records_read, 1);
}

const ECS_LINES: &[u8] = br#"{"source":{"ip":"8.8.8.8","port":53},"destination":{"ip":"10.0.0.1"},"observer":{"ip":"1.1.1.1"}}
{"source.ip":"9.9.9.9","destination":{"ip":null}}

not json at all
{"source":{"ip.v4":"x"},"destination.ip":["2606:4700:4700::1111","8.8.4.4"]}
{"related":{"ip":["4.4.4.4"]},"source":{"ip":45}}
"#;

#[test]
fn json_lines_default_fields() {
    let fixture = Fixture::new().file("ecs.ndjson", ECS_LINES);
    let (items, stats) = read_all(&extract_options(&fixture));
    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @1",
            "skipped 10.0.0.1 @1",
            "lookup 9.9.9.9 @2",
            "invalid not json at all @4",
            "lookup 2606:4700:4700::1111 @5",
            "lookup 8.8.4.4 @5",
            "invalid 45 @6",
        ]
    );
    assert_eq!(stats.blank_values, 1, "null counts as blank");
    assert_eq!(stats.records_read, 5);
    assert_eq!(stats.ignored_lines, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn json_bad_line_names_the_problem() {
    let fixture = Fixture::new().file("ecs.ndjson", ECS_LINES);
    let (items, _) = read_all(&extract_options(&fixture));
    let Some(InputItem::Invalid {
        reason, location, ..
    }) = items.get(3)
    else {
        panic!("item 3 is the bad line: {items:?}");
    };
    assert_eq!(location.line, 4);
    assert!(reason.starts_with("line is not valid JSON ("), "{reason}");
    assert!(reason.contains(" at column "), "{reason}");
}

#[test]
fn json_field_paths_and_arrays() {
    let fixture = Fixture::new().file("ecs.ndjson", ECS_LINES);
    let options = InputOptions {
        extract: Some(ExtractOptions {
            json_fields: vec!["related.ip".to_string(), "observer.ip".to_string()],
            refang: false,
        }),
        ..fixture.options()
    };
    let (items, _) = read_all(&options);
    assert_eq!(
        summary(&items),
        [
            "lookup 1.1.1.1 @1",
            "invalid not json at all @4",
            "lookup 4.4.4.4 @6",
        ]
    );
}

#[test]
fn free_text_finds_every_address() {
    let content = b"Oct 11 22:14:15 fw kernel: SRC=185.220.101.45 DST=10.0.0.1 LEN=60\r\n\
\r\n\
203.0.113.9 - - [11/Oct/2024:22:14:15 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"Chrome/120.0.1.2\"\n\
from [2001:db8::1]:443 to 185.220.101.45:22";
    let fixture = Fixture::new().file("mixed.log", content);
    let (items, stats) = read_all(&extract_options(&fixture));
    assert_eq!(
        summary(&items),
        [
            "lookup 185.220.101.45 @1",
            "skipped 10.0.0.1 @1",
            "skipped 203.0.113.9 @3",
            "skipped 2001:db8::1 @4",
        ]
    );
    assert_eq!(stats.lines_read, 4);
    assert_eq!(stats.ignored_lines, 1);
    assert_eq!(stats.duplicate_values, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn layout_is_chosen_per_input() {
    let fixture = Fixture::new()
        .file(
            "a.ndjson",
            b"\n{\"src_ip\":\"8.8.8.8\",\"note\":\"1.1.1.1\"}\n",
        )
        .file("b.log", b"x 1.1.1.1 y\n")
        .file("c.log.gz", &gzip(ZEEK_CONN))
        .file(
            "d.log.zst",
            &zstd_compress(b"\xef\xbb\xbf{\"dest_ip\":\"9.9.9.9\"}\n"),
        );
    let (items, _) = read_all(&extract_options(&fixture));
    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @2",
            "lookup 1.1.1.1 @1",
            "skipped 192.168.1.20 @8",
            "lookup 151.101.1.69 @8",
            "lookup 2001:470:1f0b:1a5::2 @9",
            "lookup 2606:4700:4700::1111 @9",
            "lookup 9.9.9.9 @1",
        ]
    );
}

#[test]
fn refang_rewrites_markers_in_every_layout() {
    let fixture = Fixture::new()
        .file(
            "iocs.txt",
            b"1[.]1[.]1[.]1 and 8.8.8(.)8\nhxxp://9[dot]9[DOT]9[dot]9/x\n2606:4700:4700[:]:1111\n",
        )
        .file("ecs.ndjson", b"{\"source\":{\"ip\":\"4.4.4[.]4\"}}\n");
    // Free text yields nothing, but a named JSON field without an address is reported.
    let (plain, _) = read_all(&extract_options(&fixture));
    assert_eq!(summary(&plain), ["invalid 4.4.4[.]4 @1"]);

    let options = InputOptions {
        extract: Some(ExtractOptions {
            json_fields: Vec::new(),
            refang: true,
        }),
        ..fixture.options()
    };
    let (items, _) = read_all(&options);
    assert_eq!(
        summary(&items),
        [
            "lookup 1.1.1.1 @1",
            "lookup 8.8.8.8 @1",
            "lookup 9.9.9.9 @2",
            "lookup 2606:4700:4700::1111 @3",
            "lookup 4.4.4.4 @1",
        ]
    );
}

#[test]
fn refang_leaves_other_text_alone() {
    assert_eq!(
        refang(b"plain 1.2.3.4 text").as_ref(),
        b"plain 1.2.3.4 text"
    );
    assert_eq!(
        refang(b"listen [::]:80 (ok)").as_ref(),
        b"listen [::]:80 (ok)"
    );
    assert_eq!(refang(b"a[.]b(.)c{.}d[dot]e[:]f").as_ref(), b"a.b.c.d.e:f");
    assert_eq!(refang(b"HXXPS[://]x").as_ref(), b"httpS://x");
}

fn lines_of(input: &[u8], max_bytes: usize, capacity: usize) -> Vec<(u64, String, bool)> {
    let mut reader = std::io::BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
    let mut lines = Vec::new();
    let mut visit = |line: Line<'_>| {
        let text = String::from_utf8_lossy(line.text).into_owned();
        lines.push((line.number, text, line.truncated));
        Flow::Continue
    };
    for_each_line(&mut reader, max_bytes, &mut visit).unwrap();
    lines
}

#[test]
fn line_scanner_across_buffer_edges() {
    let input = b"first\r\nsecond line is long\n\nlast";
    let expected = [
        (1, "first".to_string(), false),
        (2, "second line is long".to_string(), false),
        (3, String::new(), false),
        (4, "last".to_string(), false),
    ];
    // Buffers of 1 to 40 bytes split the lines at every possible place.
    for capacity in 1..40 {
        assert_eq!(
            lines_of(input, 100, capacity),
            expected,
            "capacity {capacity}"
        );
    }
}

#[test]
fn line_scanner_cuts_long_lines() {
    for capacity in [1, 3, 64] {
        let lines = lines_of(b"abcdefgh\nij\nklmnop", 4, capacity);
        assert_eq!(
            lines,
            [
                (1, "abcd".to_string(), true),
                (2, "ij".to_string(), false),
                (3, "klmn".to_string(), true),
            ],
            "capacity {capacity}"
        );
    }
}

#[test]
fn line_scanner_stops_when_asked() {
    let mut reader = Cursor::new(b"a\nb\nc\n".to_vec());
    let mut seen = 0;
    let flow = for_each_line(&mut reader, 10, &mut |_| {
        seen += 1;
        if seen == 2 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .unwrap();
    assert_eq!(flow, Flow::Stop);
    assert_eq!(seen, 2);
    assert_eq!(
        reader.position(),
        4,
        "the rest of the input is not consumed"
    );
}
