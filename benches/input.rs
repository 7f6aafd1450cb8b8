//! The input stage: parsing single values, reading a firewall export and a plain list, and
//! searching a generated log with `--extract`.
//!
//! The inputs are generated with a fixed recipe into a temporary directory, so every run reads
//! the same bytes. Run with `cargo bench --bench input`. Figures are in `benches/README.md`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vt_enrich::input::{ExtractOptions, InputOptions, parse_address, read_inputs};

/// Rows of the generated firewall export, about 4.5 MB.
const FIREWALL_ROWS: usize = 80_000;

/// Lines of the generated plain list, about 2.6 MB.
const LIST_LINES: usize = 200_000;

/// Lines of the generated log for `--extract`, about 25 MB.
const LOG_LINES: usize = 100_000;

/// Values in the forms that firewall exports and pasted lists contain, valid and not.
const ADDRESS_FORMS: &[&str] = &[
    "8.8.8.8",
    "45.33.32.156",
    "10.0.0.1",
    " 203.0.113.77 ",
    "\"198.51.100.23\"",
    "1.2.3.4:443",
    "2001:4860:4860::8888",
    "2001:0db8:0000:0000:0000:ff00:0042:8329",
    "[2606:4700:4700::1111]:443",
    "fe80::1%eth0",
    "::ffff:8.8.4.4",
    "010.8.8.8",
    "192.168.0.0/24",
    "10.0.0.1-10.0.0.9",
    "example.com",
    "",
];

/// Returns one of 50,000 public addresses, chosen by `n` modulo 50,000. The repeats make the
/// dedupe set behave as with a real log.
fn public_address(n: usize) -> String {
    let n = n % 50_000;
    format!("45.{}.{}.{}", 10 + n / 62_500, (n / 250) % 250, n % 250 + 1)
}

/// Writes `timestamp,src_ip,dst_ip,dst_port,action` rows: private sources, public
/// destinations, and one malformed destination per 1,000 rows.
fn write_firewall_csv(path: &Path) -> u64 {
    let mut text = String::from("timestamp,src_ip,dst_ip,dst_port,action\n");
    for n in 0..FIREWALL_ROWS {
        let second = n % 86_400;
        let timestamp = format!(
            "2026-12-03T{:02}:{:02}:{:02}Z",
            second / 3600,
            second / 60 % 60,
            second % 60
        );
        let source = format!("10.{}.{}.{}", n % 4, n / 7 % 256, n % 251);
        let destination = if n % 1000 == 999 {
            "010.8.8.8".to_string()
        } else {
            public_address(n.wrapping_mul(7919))
        };
        let port = [443, 80, 53, 22, 8443][n % 5];
        let action = if n % 9 == 0 { "deny" } else { "allow" };
        writeln!(text, "{timestamp},{source},{destination},{port},{action}").unwrap();
    }
    std::fs::write(path, &text).expect("firewall export written");
    text.len() as u64
}

/// Writes one address per line, with a comment and a blank line every 10,000 lines.
fn write_plain_list(path: &Path) -> u64 {
    let mut text = String::new();
    for n in 0..LIST_LINES {
        if n % 10_000 == 0 {
            text.push_str("# block\n\n");
        }
        text.push_str(&public_address(n.wrapping_mul(104_729)));
        text.push('\n');
    }
    std::fs::write(path, &text).expect("plain list written");
    text.len() as u64
}

/// Writes a log that alternates iptables kernel lines and web server access log lines, as a
/// syslog server that collects both would. Lines are about 250 bytes, with 2 addresses per
/// iptables line and 1 or 2 per access log line, among 50,000 distinct public addresses.
fn write_log(path: &Path) -> u64 {
    let mut text = String::new();
    for n in 0..LOG_LINES {
        let second = n % 86_400;
        let (hour, minute, second) = (second / 3600, second / 60 % 60, second % 60);
        let remote = public_address(n.wrapping_mul(7919));
        if n % 2 == 0 {
            let local = format!("10.20.{}.{}", n % 4, n % 251 + 1);
            let port = [22, 443, 3389, 23, 8080][n % 5];
            writeln!(
                text,
                "Oct 11 {hour:02}:{minute:02}:{second:02} fw01 kernel: [8412233.512208] IPTABLES-DROP: IN=eth0 OUT= \
                 MAC=52:54:00:12:35:02:52:54:00:9a:cb:11:08:00 SRC={remote} DST={local} LEN=60 TOS=0x00 \
                 PREC=0x00 TTL=51 ID={n} DF PROTO=TCP SPT={} DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0",
                30_000 + n % 30_000
            )
            .unwrap();
        } else {
            let forwarded = if n % 7 == 0 {
                format!(" \"{}\"", public_address(n))
            } else {
                String::new()
            };
            writeln!(
                text,
                "{remote} - - [11/Oct/2024:{hour:02}:{minute:02}:{second:02} +0000] \"GET /static/app.{n}.js HTTP/1.1\" \
                 200 {} \"https://shop.example.com/\" \"Mozilla/5.0 (Windows NT 10.0; Win64; x64) \
                 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.6668.90 Safari/537.36\"{forwarded}",
                1000 + n % 50_000
            )
            .unwrap();
        }
    }
    std::fs::write(path, &text).expect("log written");
    text.len() as u64
}

fn parse(c: &mut Criterion) {
    let total_bytes: usize = ADDRESS_FORMS.iter().map(|value| value.len()).sum();
    let mut group = c.benchmark_group("parse_address");
    group.throughput(Throughput::Bytes(total_bytes as u64));
    group.bench_function(format!("mix_of_{}_forms", ADDRESS_FORMS.len()), |b| {
        b.iter(|| {
            for value in ADDRESS_FORMS {
                let _ = black_box(parse_address(black_box(value)));
            }
        });
    });
    group.finish();
}

/// Runs `read_inputs` on one file and returns the number of items it emitted.
fn read_file(path: &Path, extract: Option<ExtractOptions>) -> u64 {
    let options = InputOptions {
        paths: vec![PathBuf::from(path)],
        extract,
        ..InputOptions::default()
    };
    let mut items = 0u64;
    read_inputs(&options, &mut |item| {
        black_box(item);
        items += 1;
        true
    })
    .expect("generated input is readable");
    items
}

/// `read_inputs` with format and columns detected, as in `vt-enrich enrich FILE`.
fn read(c: &mut Criterion) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let firewall = directory.path().join("firewall.csv");
    let list = directory.path().join("ips.txt");
    let firewall_bytes = write_firewall_csv(&firewall);
    let list_bytes = write_plain_list(&list);

    let mut group = c.benchmark_group("read_inputs");
    // A call takes about 100 ms, too long for criterion's linear sampling in 3 s.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(firewall_bytes));
    group.bench_function(format!("firewall_csv_{FIREWALL_ROWS}_rows"), |b| {
        b.iter(|| read_file(&firewall, None));
    });
    group.throughput(Throughput::Bytes(list_bytes));
    group.bench_function(format!("plain_list_{LIST_LINES}_lines"), |b| {
        b.iter(|| read_file(&list, None));
    });
    group.finish();
}

/// `read_inputs` with `--extract` on a free-text log, as in `vt-enrich enrich --extract FILE`.
fn extract(c: &mut Criterion) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let log = directory.path().join("fw.log");
    let log_bytes = write_log(&log);

    let text = std::fs::read(&log).expect("log readable");
    let gzip = directory.path().join("fw.log.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &text).expect("gzip encoded");
    std::fs::write(&gzip, encoder.finish().expect("gzip finished")).expect("gzip written");
    let zstd = directory.path().join("fw.log.zst");
    std::fs::write(
        &zstd,
        zstd::encode_all(text.as_slice(), 3).expect("zstd encoded"),
    )
    .expect("zstd written");

    // Throughput is counted in bytes of log text for all three, so the figures compare.
    let mut group = c.benchmark_group("extract");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(log_bytes));
    for (encoding, path) in [("plain", &log), ("gzip", &gzip), ("zstd", &zstd)] {
        group.bench_function(
            format!("iptables_and_access_log_{LOG_LINES}_lines_{encoding}"),
            |b| {
                b.iter(|| read_file(path, Some(ExtractOptions::default())));
            },
        );
    }
    group.finish();
}

/// Few, short samples keep `cargo bench` to a few minutes on a two-core machine.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse, read, extract
}
criterion_main!(benches);
