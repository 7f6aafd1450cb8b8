use std::io::{BufRead, Cursor, Read, Write};

use crate::input::decompress::{Compression, decode_reader, skip_bom};
use crate::input::detect::{Sample, detect_delimiter, is_plain_list, select_named_columns};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn is_plain_list_decisions() {
    let cases = [
        ("8.8.8.8\n1.1.1.1", true),
        ("8.8.8.8 # dns\nname,ip", true),
        ("example.com\nfoo.org", true),
        ("ip\n8.8.8.8\n1.1.1.1", false),
        ("Source IP\n8.8.8.8", false),
        ("ip\nexample.com\nfoo.org", true),
        ("name,ip\na,8.8.8.8", false),
        ("name;ip", false),
        // A quoted comma is not a delimiter, so this is a one-value list.
        ("\"a,b\"\n8.8.8.8", true),
        ("", true),
    ];
    for (text, expected) in cases {
        assert_eq!(is_plain_list(&lines(text)), expected, "input {text:?}");
    }
}

#[test]
fn detect_delimiter_picks_consistent_split() {
    let cases = [
        ("a,b,c\n1,2,3", b','),
        ("a;b;c\n1;2;3", b';'),
        ("a\tb\n1\t2", b'\t'),
        ("a|b\n1|2", b'|'),
        ("ip", b','),
        // Decimal commas inside a semicolon file: the semicolon count is the consistent one.
        ("a;b\n1,5;2\n3;4,25", b';'),
        // Commas only inside quotes do not count.
        ("\"x,y\";ip\n\"1,2\";8.8.8.8", b';'),
    ];
    for (text, expected) in cases {
        let detected = detect_delimiter(&lines(text));
        assert_eq!(detected, expected, "input {text:?}");
    }
}

/// Requested names and the expected column indices, or the name that matches nothing.
type ColumnCase = (&'static [&'static str], Result<Vec<usize>, &'static str>);

#[test]
fn select_named_columns_matches() {
    let header: Vec<String> = ["ip", "IP", "Dst"].map(String::from).to_vec();
    let cases: [ColumnCase; 5] = [
        (&["ip"], Ok(vec![0])),
        (&["IP"], Ok(vec![1])),
        (&["dst"], Ok(vec![2])),
        (&["Dst", "ip", "dst"], Ok(vec![2, 0])),
        (&["ip", "src"], Err("src")),
    ];
    for (requested, expected) in cases {
        let requested: Vec<String> = requested.iter().map(|name| name.to_string()).collect();
        let selected = select_named_columns(&header, &requested);
        assert_eq!(selected, expected, "requested {requested:?}");
    }
}

#[test]
fn sample_keeps_every_byte_for_replay() {
    let text = "# comment\n\nname,ip\na,8.8.8.8\n";
    let mut reader: Box<dyn BufRead> = Box::new(Cursor::new(text.as_bytes().to_vec()));
    let sample = Sample::take(&mut *reader).unwrap();

    assert_eq!(sample.leading_lines, 2);
    assert_eq!(sample.leading_bytes, "# comment\n\n".len());
    assert_eq!(sample.lines, ["name,ip", "a,8.8.8.8"]);

    let mut replayed = String::new();
    sample.replay(reader).read_to_string(&mut replayed).unwrap();
    assert_eq!(replayed, text);
}

#[test]
fn sample_stops_at_byte_budget() {
    let long_line = vec![b'x'; 1024 * 1024];
    let mut reader: Box<dyn BufRead> = Box::new(Cursor::new(long_line));
    let sample = Sample::take(&mut *reader).unwrap();

    assert_eq!(sample.bytes.len(), 256 * 1024);
    let mut rest = Vec::new();
    sample.replay(reader).read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 1024 * 1024);
}

fn decode_all(data: Vec<u8>) -> (Vec<u8>, Compression) {
    let (mut reader, compression) = decode_reader(Box::new(Cursor::new(data))).unwrap();
    skip_bom(&mut reader).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    (out, compression)
}

#[test]
fn decode_reader_detects_magic_and_bom() {
    let text = b"\xef\xbb\xbfip\n8.8.8.8\n";
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(text).unwrap();
    let cases = [
        (text.to_vec(), Compression::None),
        (gzip.finish().unwrap(), Compression::Gzip),
        (zstd::encode_all(&text[..], 1).unwrap(), Compression::Zstd),
    ];
    for (data, expected) in cases {
        let (decoded, compression) = decode_all(data);
        assert_eq!(compression, expected);
        assert_eq!(decoded, b"ip\n8.8.8.8\n", "compression {expected:?}");
    }
}

#[test]
fn decode_reader_keeps_short_and_partial_bom_input() {
    let cases: [(&[u8], &[u8]); 5] = [
        (b"", b""),
        (b"\x1f", b"\x1f"),
        (b"\xef\xbb", b"\xef\xbb"),
        (b"\xef\xbbx1.2.3.4", b"\xef\xbbx1.2.3.4"),
        (b"\xef\xbb\xbf", b""),
    ];
    for (data, expected) in cases {
        let (decoded, compression) = decode_all(data.to_vec());
        assert_eq!(compression, Compression::None);
        assert_eq!(decoded, expected, "input {data:?}");
    }
}
