//! Helpers shared by the integration tests: running the binary, reading outputs back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fake_vt::{FakeVt, TEST_KEY};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Root of the repository, for the bundled samples.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command for the built binary with a clean environment: no user config, no key, no
/// proxy, and no colour.
pub fn vt_enrich() -> Command {
    vt_enrich_at(Path::new(env!("CARGO_BIN_EXE_vt-enrich")))
}

/// Same as [`vt_enrich`], for a copy of the binary at `program`.
pub fn vt_enrich_at(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_remove("VT_API_KEY")
        .env_remove("RUST_LOG")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent-vt-enrich-test-config")
        // Tests name their cache file; this only keeps a forgotten one out of the user's home.
        .env(
            "XDG_CACHE_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache"),
        );
    for (name, _) in std::env::vars() {
        if name.starts_with("VT_ENRICH_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a command and returns its output, printing stderr when it is not what the test wants.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("the vt-enrich binary runs")
}

/// Returns the exit code, stdout and stderr of an output as text.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Reads a whole Parquet file back into one batch through the Arrow reader.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let file =
        std::fs::File::open(path).unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a valid Parquet file");
    let schema = builder.schema().clone();
    let reader = builder.build().expect("a Parquet reader");
    let batches: Vec<RecordBatch> = reader
        .map(|batch| batch.expect("a readable batch"))
        .collect();
    concat_batches(&schema, &batches).expect("batches of one schema")
}

/// Returns the text value of `column` in every row, `None` for nulls.
pub fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("column {column} exists"));
    let array =
        arrow::compute::cast(array, &arrow::datatypes::DataType::Utf8).expect("castable to text");
    let array = array.as_string::<i32>();
    (0..array.len())
        .map(|row| (!array.is_null(row)).then(|| array.value(row).to_string()))
        .collect()
}

/// Returns the integer value of `column` in every row.
pub fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("column {column} exists"));
    let array =
        arrow::compute::cast(array, &arrow::datatypes::DataType::Int64).expect("castable to int64");
    let array = array.as_primitive::<Int64Type>();
    (0..array.len())
        .map(|row| (!array.is_null(row)).then(|| array.value(row)))
        .collect()
}

/// Maps each row's `ip` to its row number.
pub fn rows_by_ip(batch: &RecordBatch) -> HashMap<String, usize> {
    strings(batch, "ip")
        .into_iter()
        .enumerate()
        .map(|(row, ip)| (ip.expect("ip is never null"), row))
        .collect()
}

/// Returns `count` distinct public addresses in `45.<block>.0.0/16` and the blocks after it,
/// outside every special-purpose range, so each test can use its own block.
pub fn public_ips(block: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            format!(
                "45.{}.{}.{}",
                block + n / 62_500,
                (n / 250) % 250,
                n % 250 + 1
            )
        })
        .collect()
}

/// Writes one address per line to `path` and returns the path.
pub fn write_list(path: &Path, ips: &[String]) -> PathBuf {
    std::fs::write(path, ips.join("\n") + "\n").unwrap();
    path.to_path_buf()
}

/// Returns `enrich` against `server` with the test key, the given cache file, no local quota,
/// fast retries and short timeouts.
pub fn enrich_command(
    server: &FakeVt,
    input: &Path,
    out: &Path,
    cache: &Path,
    concurrency: u32,
) -> Command {
    let mut command = vt_enrich();
    command
        .env("VT_API_KEY", TEST_KEY)
        .arg("enrich")
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(["--api-url", &server.url()])
        .args([
            "--profile",
            "unlimited",
            "--concurrency",
            &concurrency.to_string(),
        ])
        .args(["--backoff-base", "0.01", "--backoff-max", "0.05"])
        .args(["--connect-timeout", "2", "--read-timeout", "1"]);
    command
}

/// Returns `batch` without the named columns, for comparing runs whose fetch times or sources
/// legitimately differ.
pub fn without_columns(batch: &RecordBatch, names: &[&str]) -> RecordBatch {
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| !names.contains(&field.name().as_str()))
        .map(|(index, _)| index)
        .collect();
    batch.project(&keep).unwrap()
}

/// Returns how many rows of `batch` have `status`.
pub fn count_status(batch: &RecordBatch, status: &str) -> usize {
    strings(batch, "status")
        .iter()
        .filter(|value| value.as_deref() == Some(status))
        .count()
}
