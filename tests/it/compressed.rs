//! gzip and zstd inputs, from files and from stdin, give the same output as the plain input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use arrow::array::RecordBatch;

use crate::support::{describe, read_parquet, repo, run, strings, vt_enrich, without_columns};

/// Writes one input plain, gzip-compressed and zstd-compressed, and returns the three paths.
fn encodings(dir: &Path, name: &str, content: &[u8]) -> Vec<PathBuf> {
    let plain = dir.join(name);
    std::fs::write(&plain, content).unwrap();

    let gz = dir.join(format!("{name}.gz"));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();

    let zst = dir.join(format!("{name}.zst"));
    std::fs::write(&zst, zstd::encode_all(content, 3).unwrap()).unwrap();
    vec![plain, gz, zst]
}

/// Runs `enrich` offline on `input` (a path, or stdin fed from the path when `from_stdin`)
/// and returns the main table read back. Every run uses the same empty cache file, whose path
/// is part of the `failed` rows' message.
fn enrich_offline(input: &Path, extra: &[&str], from_stdin: bool, out: &Path) -> RecordBatch {
    let mut command = vt_enrich();
    command
        .args(["enrich", "--offline", "--engines", "none"])
        .args(extra)
        .arg("--cache")
        .arg(out.with_file_name("empty.sqlite"))
        .arg("-o")
        .arg(out);
    if from_stdin {
        command.arg("-").stdin(std::fs::File::open(input).unwrap());
    } else {
        command.arg(input).stdin(Stdio::null());
    }
    let output = run(&mut command);
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{}",
        describe(&output)
    );
    read_parquet(out)
}

/// Splits the table into the `error_message` column, with the input's name replaced
/// (`first seen at NAME:3`), and the other columns. The name is the only value that
/// legitimately differs between a file and stdin, or between `x` and `x.gz`.
fn comparable(batch: &RecordBatch, input: &Path) -> (RecordBatch, Vec<Option<String>>) {
    let name = input.display().to_string();
    let messages = strings(batch, "error_message")
        .into_iter()
        .map(|message| message.map(|text| text.replace(&name, "INPUT").replace("stdin:", "INPUT:")))
        .collect();
    (without_columns(batch, &["error_message"]), messages)
}

fn check_encodings_match(name: &str, content: &[u8], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = encodings(dir.path(), name, content);

    let reference_out = dir.path().join("reference.parquet");
    let reference_batch = enrich_offline(&inputs[0], extra, false, &reference_out);
    assert!(
        reference_batch.num_rows() >= 5,
        "{name}: too few rows to compare"
    );
    let reference = comparable(&reference_batch, &inputs[0]);

    for input in &inputs {
        for from_stdin in [false, true] {
            let out = dir.path().join(format!(
                "{}-{from_stdin}.parquet",
                input.file_name().unwrap().to_string_lossy()
            ));
            let batch = enrich_offline(input, extra, from_stdin, &out);
            let (columns, messages) = comparable(&batch, input);
            let case = format!("{} (stdin: {from_stdin})", input.display());
            assert_eq!(columns.schema(), reference.0.schema(), "{case}");
            for (index, field) in columns.schema().fields().iter().enumerate() {
                assert_eq!(
                    columns.column(index),
                    reference.0.column(index),
                    "{case}: column {}",
                    field.name()
                );
            }
            assert_eq!(messages, reference.1, "{case}: column error_message");
        }
    }
}

#[test]
fn compressed_log_matches_plain() {
    let log = std::fs::read(repo().join("samples/extract/auth.log")).unwrap();
    check_encodings_match("auth.log", &log, &["--extract"]);
}

#[test]
fn compressed_zeek_log_matches_plain() {
    let log = std::fs::read(repo().join("samples/extract/conn.log")).unwrap();
    check_encodings_match("conn.log", &log, &["--extract"]);
}

#[test]
fn compressed_csv_matches_plain() {
    let csv = std::fs::read(repo().join("samples/firewall.csv")).unwrap();
    check_encodings_match("firewall.csv", &csv, &[]);
}
