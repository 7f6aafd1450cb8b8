use crate::input::{InputError, InputFormat, InputOptions, read_inputs};

use super::fixture::{Fixture, assert_counts_add_up, read_all, summary};

#[test]
fn csv_auto_detects_ip_columns() {
    let content = b"time,src_ip,port,dst_ip,action\n\
        2024-01-01T00:00:00Z,8.8.8.8,53,192.168.1.1,allow\n\
        2024-01-01T00:00:01Z,1.1.1.1,443,,deny\n\
        2024-01-01T00:00:02Z,bad-value,443,9.9.9.9,deny\n";
    let fixture = Fixture::new().file("log.csv", content);
    let (items, stats) = fixture.read();

    assert_eq!(stats.columns_used, ["src_ip", "dst_ip"]);
    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @2",
            "skipped 192.168.1.1 @2",
            "lookup 1.1.1.1 @3",
            "invalid bad-value @4",
            "lookup 9.9.9.9 @4",
        ]
    );
    assert_eq!(stats.records_read, 3);
    assert_eq!(stats.lines_read, 4);
    assert_eq!(stats.blank_values, 1);
    assert_counts_add_up(&stats);
}

#[test]
fn csv_tolerates_real_export_quirks() {
    // BOM, CRLF, quoted fields with an embedded newline, spaces around values.
    let content = "\u{feff}\"note\";\"ip\"\r\n\"multi\r\nline\"; 8.8.8.8 \r\nplain;\"1.1.1.1\"\r\n\"a;b\";[2001:4860::8888]:443\r\n";
    let fixture = Fixture::new().file("export.csv", content.as_bytes());
    let (items, stats) = fixture.read();

    assert_eq!(stats.columns_used, ["ip"]);
    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @2",
            "lookup 1.1.1.1 @4",
            "lookup 2001:4860::8888 @5"
        ]
    );
    assert_eq!(stats.lines_read, 5);
    assert_eq!(stats.ragged_rows, 0);
}

#[test]
fn csv_lf_and_crlf_lines_agree() {
    let lf = "ip\n8.8.8.8\n\n\"1.1.1.1\"\n9.9.9.9\n";
    let crlf = lf.replace('\n', "\r\n");
    for content in [lf.to_string(), crlf] {
        let fixture = Fixture::new().file("data.csv", content.as_bytes());
        let options = InputOptions {
            format: InputFormat::Csv,
            ..fixture.options()
        };
        let (items, stats) = read_all(&options);
        assert_eq!(
            summary(&items),
            [
                "lookup 8.8.8.8 @2",
                "lookup 1.1.1.1 @4",
                "lookup 9.9.9.9 @5"
            ],
            "content {content:?}"
        );
        assert_eq!(stats.lines_read, 5, "content {content:?}");
    }
}

#[test]
fn csv_delimiters_detected() {
    let cases: [(&str, &[u8]); 4] = [
        ("comma.csv", b"host,ip\na,8.8.8.8\n"),
        ("semicolon.csv", b"host;ip\na;8.8.8.8\n"),
        ("tab.csv", b"host\tip\na\t8.8.8.8\n"),
        ("pipe.csv", b"host|ip\na|8.8.8.8\n"),
    ];
    for (name, content) in cases {
        let fixture = Fixture::new().file(name, content);
        let (items, stats) = fixture.read();
        assert_eq!(summary(&items), ["lookup 8.8.8.8 @2"], "file {name}");
        assert_eq!(stats.columns_used, ["ip"], "file {name}");
    }
}

#[test]
fn tsv_extension_means_tab() {
    // With auto-detection the commas would win; the extension forces tab.
    let content = b"ip\tnote\n8.8.8.8\ta,b,c\n1.1.1.1\td,e,f\n";
    let fixture = Fixture::new().file("hosts.tsv", content);
    let (items, stats) = fixture.read();

    assert_eq!(summary(&items), ["lookup 8.8.8.8 @2", "lookup 1.1.1.1 @3"]);
    assert_eq!(stats.ragged_rows, 0);
}

#[test]
fn explicit_delimiter_overrides_detection() {
    let content = b"ip,extra\n8.8.8.8,x\n";
    let fixture = Fixture::new().file("data.csv", content);
    let options = InputOptions {
        delimiter: Some(b';'),
        columns: vec!["ip,extra".to_string()],
        ..fixture.options()
    };
    let (items, _) = read_all(&options);

    assert_eq!(summary(&items), ["invalid 8.8.8.8,x @2"]);
}

#[test]
fn ragged_rows_counted_and_read() {
    let content = b"a,ip,b\nx,8.8.8.8\ny,1.1.1.1,z,extra\nshort\nq,9.9.9.9,r\n";
    let fixture = Fixture::new().file("ragged.csv", content);
    let (items, stats) = fixture.read();

    assert_eq!(
        summary(&items),
        [
            "lookup 8.8.8.8 @2",
            "lookup 1.1.1.1 @3",
            "lookup 9.9.9.9 @5"
        ]
    );
    assert_eq!(stats.ragged_rows, 3);
}

#[test]
fn column_option_selects_by_name() {
    let content = b"Src_IP,Dst_IP,Nat\n8.8.8.8,1.1.1.1,9.9.9.9\n";
    let cases: [(&[&str], &[&str]); 4] = [
        (&["Src_IP"], &["lookup 8.8.8.8 @2"]),
        (&["dst_ip"], &["lookup 1.1.1.1 @2"]),
        (
            &["NAT", " Src_IP "],
            &["lookup 9.9.9.9 @2", "lookup 8.8.8.8 @2"],
        ),
        (&["Nat", "nat"], &["lookup 9.9.9.9 @2"]),
    ];
    for (columns, expected) in cases {
        let fixture = Fixture::new().file("data.csv", content);
        let options = InputOptions {
            columns: columns.iter().map(|name| name.to_string()).collect(),
            ..fixture.options()
        };
        let (items, _) = read_all(&options);
        assert_eq!(summary(&items), expected, "columns {columns:?}");
    }
}

#[test]
fn column_option_prefers_exact_case() {
    let content = b"ip,IP\n8.8.8.8,1.1.1.1\n";
    let fixture = Fixture::new().file("data.csv", content);
    let options = InputOptions {
        columns: vec!["IP".to_string()],
        ..fixture.options()
    };
    let (items, stats) = read_all(&options);

    assert_eq!(summary(&items), ["lookup 1.1.1.1 @2"]);
    assert_eq!(stats.columns_used, ["IP"]);
}

#[test]
fn column_option_forces_csv_on_single_column() {
    let fixture = Fixture::new().file("list.txt", b"address\n8.8.8.8\n");
    let options = InputOptions {
        columns: vec!["address".to_string()],
        format: InputFormat::Text,
        ..fixture.options()
    };
    let (items, _) = read_all(&options);

    assert_eq!(summary(&items), ["lookup 8.8.8.8 @2"]);
}

#[test]
fn missing_column_is_an_error() {
    let fixture = Fixture::new().file("data.csv", b"src,dst\n8.8.8.8,1.1.1.1\n");
    let options = InputOptions {
        columns: vec!["ip".to_string()],
        ..fixture.options()
    };
    let error = read_inputs(&options, &mut |_| true).unwrap_err();

    let InputError::ColumnNotFound {
        column, available, ..
    } = &error
    else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(column, "ip");
    assert_eq!(available, &["src", "dst"]);
    let message = error.to_string();
    assert!(message.contains("column `ip` not found"), "{message}");
    assert!(
        message.contains("available columns: `src`, `dst`"),
        "{message}"
    );
}

#[test]
fn no_address_column_is_an_error() {
    let fixture = Fixture::new().file("data.csv", b"name,port\nweb,443\ndb,5432\n");
    let error = read_inputs(&fixture.options(), &mut |_| true).unwrap_err();

    let InputError::NoAddressColumn {
        header,
        sampled_rows,
        ..
    } = &error
    else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(header, &["name", "port"]);
    assert_eq!(*sampled_rows, 2);
    let message = error.to_string();
    assert!(message.contains("--column NAME"), "{message}");
    assert!(message.contains("`name`, `port`"), "{message}");
}

#[test]
fn detection_needs_most_values_to_parse() {
    // `mostly_bad` has one address in four values; `mostly_good` three in four.
    let content = b"mostly_bad,mostly_good\n8.8.8.8,1.1.1.1\nx,1.1.1.2\ny,1.1.1.3\nz,nope\n";
    let fixture = Fixture::new().file("data.csv", content);
    let (_, stats) = fixture.read();

    assert_eq!(stats.columns_used, ["mostly_good"]);
}

#[test]
fn detection_counts_private_addresses() {
    let content = b"inside,outside\n10.0.0.1,8.8.8.8\n10.0.0.2,1.1.1.1\n";
    let fixture = Fixture::new().file("data.csv", content);
    let (_, stats) = fixture.read();

    assert_eq!(stats.columns_used, ["inside", "outside"]);
}

#[test]
fn detection_reads_past_the_sample() {
    let mut content = String::from("ip\n");
    for i in 0..1000 {
        content.push_str(&format!("8.8.{}.{}\n", i / 256, i % 256));
    }
    let fixture = Fixture::new().file("big.csv", content.as_bytes());
    let (items, stats) = fixture.read();

    assert_eq!(items.len(), 1000);
    assert_eq!(stats.lookup_addresses, 1000);
    assert_eq!(stats.records_read, 1000);
    assert_eq!(summary(&items[999..]), ["lookup 8.8.3.231 @1001"]);
}

#[test]
fn blank_csv_cells_are_counted_not_emitted() {
    let content = b"ip\n8.8.8.8\n\"\"\n  \n1.1.1.1\n";
    let fixture = Fixture::new().file("data.csv", content);
    let options = InputOptions {
        format: InputFormat::Csv,
        ..fixture.options()
    };
    let (items, stats) = read_all(&options);

    assert_eq!(summary(&items), ["lookup 8.8.8.8 @2", "lookup 1.1.1.1 @5"]);
    assert!(stats.blank_values >= 1, "{stats:?}");
    assert_counts_add_up(&stats);
}

#[test]
fn header_only_csv_reads_nothing() {
    let fixture = Fixture::new().file("empty.csv", b"name,ip\n");
    let (items, stats) = fixture.read();
    assert!(items.is_empty());
    assert_eq!(stats.files_read, 1);
}
