//! Helpers shared by the integration tests: running the binary, reading outputs back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    let mut command = Command::new(env!("CARGO_BIN_EXE_vt-enrich"));
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
