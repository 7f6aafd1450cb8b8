use crate::input::{InputError, InputFormat, InputOptions, read_inputs, spawn_reader};
use crate::model::InputItem;

use super::fixture::{
    Fixture, assert_counts_add_up, at, gzip, ip, read_all, summary, zstd_compress,
};

#[test]
fn text_list_comments_and_blanks() {
    let content = b"# addresses to check\n\n8.8.8.8\n  1.1.1.1  # resolver\n\n192.168.0.1\nexample.com\n#8.8.4.4\n";
    let fixture = Fixture::new().file("list.txt", content);
    let (items, stats) = fixture.read();

    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @3",
            "lookup 1.1.1.1 @4",
            "skipped 192.168.0.1 @6",
            "invalid example.com @7",
        ]
    );
    assert_eq!(stats.lines_read, 8);
    assert_eq!(stats.ignored_lines, 4);
    assert_eq!(stats.values_read, 4);
    assert_eq!(stats.blank_values, 0);
    assert_eq!(stats.lookup_addresses, 2);
    assert_eq!(stats.skipped_addresses, 1);
    assert_eq!(stats.invalid_values, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn invalid_item_carries_location_and_reason() {
    let fixture = Fixture::new().file("list.txt", b"8.8.8.8\n010.8.8.8\n");
    let (items, _) = fixture.read();

    let expected = InputItem::Invalid {
        raw: "010.8.8.8".to_string(),
        location: at(&fixture.name(0), 2),
        reason:
            "leading zero in octet `010`: ambiguous (some parsers read it as octal); write `10`"
                .to_string(),
    };
    assert_eq!(items[1], expected);
}

#[test]
fn skipped_item_carries_reason() {
    let fixture = Fixture::new().file("list.txt", b"10.0.0.5\n");
    let (items, _) = fixture.read();

    let expected = InputItem::Skipped {
        ip: ip("10.0.0.5"),
        location: at(&fixture.name(0), 1),
        reason: "private address (RFC 1918)".to_string(),
    };
    assert_eq!(items, [expected]);
}

#[test]
fn include_private_turns_skipped_into_lookup() {
    let content = b"192.168.0.1\n10.0.0.5\n127.0.0.1\n169.254.1.1\n100.64.0.1\nfe80::1%eth0\n";
    let fixture = Fixture::new().file("list.txt", content);

    let (default_items, default_stats) = fixture.read();
    assert_eq!(default_stats.skipped_addresses, 6);
    assert!(
        default_items
            .iter()
            .all(|item| matches!(item, InputItem::Skipped { .. }))
    );

    let options = InputOptions {
        include_private: true,
        ..fixture.options()
    };
    let (items, stats) = read_all(&options);
    assert_eq!(
        summary(&items),
        [
            "lookup 192.168.0.1 @1",
            "lookup 10.0.0.5 @2",
            "lookup 127.0.0.1 @3",
            "lookup 169.254.1.1 @4",
            "lookup 100.64.0.1 @5",
            "lookup fe80::1 @6",
        ]
    );
    assert_eq!(stats.lookup_addresses, 6);
    assert_eq!(stats.skipped_addresses, 0);
}

#[test]
fn dedupe_across_spellings_columns_and_files() {
    let csv =
        b"src,dst\n8.8.8.8,::ffff:8.8.8.8\n2001:DB8:0:0::1,1.1.1.1\n\" 8.8.8.8 \",1.1.1.1:53\n";
    let list = b"1.1.1.1\n2001:db8::1\n9.9.9.9\nbad\nbad\n";
    let fixture = Fixture::new().file("a.csv", csv).file("b.txt", list);
    let (items, stats) = fixture.read();

    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @2",
            "skipped 2001:db8::1 @3",
            "lookup 1.1.1.1 @3",
            "lookup 9.9.9.9 @3",
            "invalid bad @4",
        ]
    );
    let InputItem::Lookup { location, .. } = &items[3] else {
        panic!("expected a lookup, got {:?}", items[3]);
    };
    assert_eq!(location.file, fixture.name(1));
    assert_eq!(stats.files_read, 2);
    assert_eq!(stats.duplicate_values, 5);
    assert_eq!(stats.invalid_values, 2);
    assert_eq!(stats.distinct_invalid_values, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn auto_format_decisions() {
    let cases: [(&str, &[u8], &[&str]); 6] = [
        // First line is an address: a list, although it has a comma later.
        (
            "list",
            b"8.8.8.8\n1.1.1.1,x\n",
            &["lookup 8.8.8.8 @1", "invalid 1.1.1.1,x @2"],
        ),
        // First line has no delimiter and is not an address, nor followed by addresses.
        (
            "list of names",
            b"example.com\nfoo\n",
            &["invalid example.com @1", "invalid foo @2"],
        ),
        // A one-column CSV: a header followed by addresses.
        (
            "single column",
            b"ip\n8.8.8.8\n1.1.1.1\n",
            &["lookup 8.8.8.8 @2", "lookup 1.1.1.1 @3"],
        ),
        // Comment lines before the header of a CSV file keep their line numbers.
        (
            "csv after comments",
            b"# export\n\nname,ip\na,8.8.8.8\n",
            &["lookup 8.8.8.8 @4"],
        ),
        // A CSV file without a header row: the first row is data.
        (
            "headerless csv",
            b"8.8.8.8,80\n1.1.1.1,443\n",
            &["lookup 8.8.8.8 @1", "lookup 1.1.1.1 @2"],
        ),
        (
            "ip:port list",
            b"1.2.3.4:443\n[2001:4860::8888]:443\n",
            &["lookup 1.2.3.4 @1", "lookup 2001:4860::8888 @2"],
        ),
    ];
    for (label, content, expected) in cases {
        let fixture = Fixture::new().file("input", content);
        let (items, _) = fixture.read();
        assert_eq!(summary(&items), expected, "case {label}");
    }
}

#[test]
fn explicit_format_overrides_detection() {
    let content = b"name,ip\na,8.8.8.8\n";
    let fixture = Fixture::new().file("data.csv", content);
    let options = InputOptions {
        format: InputFormat::Text,
        ..fixture.options()
    };
    let (items, _) = read_all(&options);
    assert_eq!(
        summary(&items),
        ["invalid name,ip @1", "invalid a,8.8.8.8 @2"]
    );

    let fixture = Fixture::new().file("list.txt", b"ip\n8.8.8.8\n");
    let options = InputOptions {
        format: InputFormat::Csv,
        ..fixture.options()
    };
    let (items, stats) = read_all(&options);
    assert_eq!(summary(&items), ["lookup 8.8.8.8 @2"]);
    assert_eq!(stats.columns_used, ["ip"]);
}

#[test]
fn gzip_and_zstd_by_magic_bytes() {
    let plain = b"ip,n\n8.8.8.8,1\n1.1.1.1,2\n";
    let cases: [(&str, Vec<u8>); 3] = [
        ("data.csv.gz", gzip(plain)),
        ("misnamed.txt", zstd_compress(plain)),
        ("no-extension", gzip(plain)),
    ];
    for (name, content) in cases {
        let fixture = Fixture::new().file(name, &content);
        let (items, _) = fixture.read();
        assert_eq!(
            summary(&items),
            ["lookup 8.8.8.8 @2", "lookup 1.1.1.1 @3"],
            "file {name}"
        );
    }
}

#[test]
fn gzip_members_are_concatenated() {
    let mut two_members = gzip(b"8.8.8.8\n");
    two_members.extend(gzip(b"1.1.1.1\n"));
    let fixture = Fixture::new().file("concatenated.gz", &two_members);
    let (items, _) = fixture.read();

    assert_eq!(summary(&items), ["lookup 8.8.8.8 @1", "lookup 1.1.1.1 @2"]);
}

#[test]
fn compressed_tsv_keeps_tab() {
    let fixture = Fixture::new().file("hosts.tsv.gz", &gzip(b"ip\tnote\n8.8.8.8\ta,b\n"));
    let (items, _) = fixture.read();
    assert_eq!(summary(&items), ["lookup 8.8.8.8 @2"]);
}

#[test]
fn truncated_gzip_is_a_decompress_error() {
    let compressed = gzip(&b"8.8.8.8\n".repeat(10_000));
    let truncated = &compressed[..compressed.len() / 2];
    let fixture = Fixture::new().file("cut.gz", truncated);
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();

    let InputError::Decompress { path, format, .. } = &error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(path, &fixture.paths[0]);
    assert_eq!(*format, "gzip");
}

#[test]
fn corrupt_zstd_is_a_decompress_error() {
    let mut compressed = zstd_compress(&b"8.8.8.8\n".repeat(1000));
    let middle = compressed.len() / 2;
    compressed[middle..]
        .iter_mut()
        .for_each(|byte| *byte = !*byte);
    let fixture = Fixture::new().file("bad.zst", &compressed);
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();

    assert!(
        matches!(error, InputError::Decompress { format: "zstd", .. }),
        "{error:?}"
    );
}

#[test]
fn missing_file_fails_before_any_item() {
    let fixture = Fixture::new().file("first.txt", b"8.8.8.8\n");
    let mut options = fixture.options();
    options.paths.push(fixture.dir.path().join("missing.txt"));

    let mut emitted = 0;
    let error = read_inputs(&options, &mut |_| {
        emitted += 1;
        true
    })
    .unwrap_err();

    assert_eq!(emitted, 0);
    let InputError::Open { path, .. } = &error else {
        panic!("unexpected error {error:?}");
    };
    assert!(path.ends_with("missing.txt"));
    assert!(error.to_string().contains("missing.txt"), "{error}");
}

#[test]
fn directory_is_an_open_error() {
    let fixture = Fixture::new();
    let options = InputOptions {
        paths: vec![fixture.dir.path().to_path_buf()],
        ..InputOptions::default()
    };
    let error = read_inputs(&options, &mut |_| true).unwrap_err();
    assert!(matches!(error, InputError::Open { .. }), "{error:?}");
}

#[test]
fn non_utf8_bytes_become_invalid_values() {
    let content = b"8.8.8.8\n\xff\xfe1.2.3.4\n1.1.1.1\n";
    let fixture = Fixture::new().file("mixed.txt", content);
    let (items, stats) = fixture.read();

    assert_eq!(stats.lookup_addresses, 2);
    assert_eq!(stats.invalid_values, 1);
    assert!(matches!(&items[1], InputItem::Invalid { location, .. } if location.line == 2));

    let csv = b"name,ip\n\xff\xfe,8.8.8.8\nok,\xc3\x28\nfine,1.1.1.1\n";
    let fixture = Fixture::new().file("mixed.csv", csv);
    let (items, stats) = fixture.read();
    assert_eq!(stats.columns_used, ["ip"]);
    assert_eq!(stats.lookup_addresses, 2);
    assert_eq!(stats.invalid_values, 1);
    assert_eq!(items.len(), 3);
}

#[test]
fn long_invalid_values_are_cut() {
    let long = "x".repeat(100_000);
    let fixture = Fixture::new().file("long.txt", format!("{long}\n8.8.8.8\n").as_bytes());
    let (items, _) = fixture.read();

    let InputItem::Invalid { raw, .. } = &items[0] else {
        panic!("unexpected item {:?}", items[0]);
    };
    assert_eq!(raw.chars().count(), 201);
    assert!(raw.ends_with('…'));
    assert_eq!(summary(&items[1..]), ["lookup 8.8.8.8 @2"]);
}

#[test]
fn emit_false_stops_reading() {
    let fixture = Fixture::new()
        .file("a.txt", b"8.8.8.8\n1.1.1.1\n9.9.9.9\n")
        .file("b.txt", b"4.4.4.4\n");
    let mut items = Vec::new();
    let stats = read_inputs(&fixture.options(), &mut |item| {
        items.push(item);
        items.len() < 2
    })
    .unwrap();

    assert_eq!(summary(&items), ["lookup 8.8.8.8 @1", "lookup 1.1.1.1 @2"]);
    assert_eq!(stats.lookup_addresses, 2);
    assert_eq!(stats.files_read, 1);
}

#[test]
fn empty_file_reads_nothing() {
    let fixture = Fixture::new().file("empty.txt", b"");
    let (items, stats) = fixture.read();
    assert!(items.is_empty());
    assert_eq!(stats.lines_read, 0);
}

#[test]
fn spawn_reader_sends_with_backpressure() {
    let mut content = String::new();
    for i in 0..500 {
        content.push_str(&format!("8.8.{}.{}\n", i / 256, i % 256));
    }
    let fixture = Fixture::new().file("list.txt", content.as_bytes());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle = spawn_reader(fixture.options(), tx);

    let mut received = 0;
    while let Some(item) = rx.blocking_recv() {
        assert!(matches!(item, InputItem::Lookup { .. }));
        received += 1;
    }
    let stats = handle.join().unwrap().unwrap();
    assert_eq!(received, 500);
    assert_eq!(stats.lookup_addresses, 500);
}

#[test]
fn spawn_reader_stops_when_receiver_dropped() {
    let content: String = (0..10_000)
        .map(|i| format!("9.{}.{}.1\n", i / 256, i % 256))
        .collect();
    let fixture = Fixture::new().file("list.txt", content.as_bytes());
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let handle = spawn_reader(fixture.options(), tx);

    let first = rx.blocking_recv();
    assert!(first.is_some());
    drop(rx);
    let stats = handle.join().unwrap().unwrap();
    assert!(stats.lookup_addresses < 100, "{stats:?}");
}
