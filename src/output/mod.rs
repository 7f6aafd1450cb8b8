//! Writers of the output tables: Parquet, CSV and TSV.
//!
//! A writer consumes Arrow record batches with a fixed schema (the flattener's
//! [`main_schema`](crate::flatten::main_schema) or
//! [`engines_schema`](crate::flatten::engines_schema)) together with the column documentation,
//! and produces one file, or CSV on standard output. Files are written under a temporary name
//! in the target's directory and renamed over the target only by [`TableWriter::finish`], so the
//! target path never contains a partial file. Choosing the output paths, batching rows and
//! back-pressure are left to the caller.

mod atomic;

pub use atomic::remove_unfinished_files;
mod csv;
mod parquet;

use std::io;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::flatten::ColumnDoc;

pub use self::csv::{FORMULA_PREFIX, FORMULA_TRIGGERS};
pub use self::parquet::{
    COLUMNS_METADATA_KEY, MAX_ROW_GROUP_BYTES, MAX_ROW_GROUP_ROWS, SCHEMA_VERSION_METADATA_KEY,
};

/// File format of an output table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Parquet,
    Csv,
    Tsv,
}

impl OutputFormat {
    /// Returns the format named by the path's extension (`.parquet`, `.csv`, `.tsv`, in any
    /// letter case), or `None` for any other extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "parquet" => Some(OutputFormat::Parquet),
            "csv" => Some(OutputFormat::Csv),
            "tsv" => Some(OutputFormat::Tsv),
            _ => None,
        }
    }

    /// Returns the file extension of the format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Csv => "csv",
            OutputFormat::Tsv => "tsv",
        }
    }
}

/// Destination of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    File(PathBuf),
    /// Standard output, for CSV and TSV only.
    Stdout,
}

impl OutputTarget {
    /// Returns the text that names the target in messages: the path, or `standard output`.
    pub fn describe(&self) -> String {
        match self {
            OutputTarget::File(path) => path.display().to_string(),
            OutputTarget::Stdout => "standard output".to_string(),
        }
    }
}

/// Settings of the CSV and TSV writers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Prefixes text cells that a spreadsheet would run as a formula with `'`. Numeric and
    /// timestamp cells are never changed.
    pub escape_formulas: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            escape_formulas: true,
        }
    }
}

/// A table being written. Dropping a writer without calling [`finish`](TableWriter::finish)
/// discards the temporary file and leaves any existing file at the target untouched.
pub trait TableWriter: Send {
    /// Appends the rows of `batch`, whose schema must equal the writer's schema.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError>;

    /// Writes the rest of the table (the Parquet footer, buffered CSV rows), then moves the
    /// file into place at the target path.
    fn finish(self: Box<Self>) -> Result<(), OutputError>;
}

/// Why writing a table failed. Every message names the output path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create a temporary file next to {path}: {source}")]
    CreateTemporary { path: String, source: io::Error },
    #[error("failed to write {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("failed to write Parquet file {path}: {source}")]
    Parquet {
        path: String,
        source: ::parquet::errors::ParquetError,
    },
    #[error("failed to write CSV to {path}: {source}")]
    Csv { path: String, source: ::csv::Error },
    #[error("failed to move the finished file into place at {path}: {source}")]
    Persist { path: String, source: io::Error },
    #[error(
        "cannot write Parquet to standard output; give an output file such as -o results.parquet, \
         or choose CSV or TSV for standard output"
    )]
    ParquetToStdout,
    #[error("the record batch for {path} does not match the output schema: {detail}")]
    SchemaMismatch { path: String, detail: String },
    #[error("the writer thread stopped unexpectedly; the output was not written")]
    WriterPanicked,
    #[error("column {column} of {path} has type {data_type}, which the CSV writer cannot format")]
    UnsupportedColumnType {
        path: String,
        column: String,
        data_type: String,
    },
}

/// Creates a writer for one table.
///
/// `columns` documents the schema's columns; the Parquet writer stores it in the file's
/// key-value metadata. Parquet needs a file target.
pub fn create_writer(
    target: &OutputTarget,
    format: OutputFormat,
    schema: SchemaRef,
    columns: &[ColumnDoc],
    csv: &CsvOptions,
) -> Result<Box<dyn TableWriter>, OutputError> {
    match (format, target) {
        (OutputFormat::Parquet, OutputTarget::File(path)) => {
            let writer = parquet::ParquetTableWriter::create(path, schema, columns)?;
            Ok(Box::new(writer))
        }
        (OutputFormat::Parquet, OutputTarget::Stdout) => Err(OutputError::ParquetToStdout),
        (OutputFormat::Csv | OutputFormat::Tsv, _) => {
            let delimiter = if format == OutputFormat::Tsv {
                b'\t'
            } else {
                b','
            };
            self::csv::create(target, delimiter, schema, csv)
        }
    }
}

/// Returns the path of the engines table that goes with the main table at `main`:
/// `results.parquet` gives `results.engines.parquet`, and `results` gives `results.engines`.
pub fn engines_path(main: &Path) -> PathBuf {
    let stem = main.file_stem().unwrap_or_default().to_string_lossy();
    let name = match main.extension() {
        Some(extension) => format!("{stem}.engines.{}", extension.to_string_lossy()),
        None => format!("{stem}.engines"),
    };
    main.with_file_name(name)
}

/// Checks that `batch` has the writer's schema.
fn check_schema(path: &str, schema: &SchemaRef, batch: &RecordBatch) -> Result<(), OutputError> {
    if batch.schema_ref() == schema {
        return Ok(());
    }
    let expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let found: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let detail = if expected == found {
        "the column names match but a type or metadata differs".to_string()
    } else {
        format!("expected {} columns, found {}", expected.len(), found.len())
    };
    Err(OutputError::SchemaMismatch {
        path: path.to_string(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(
            OutputFormat::from_path(Path::new("a/b.parquet")),
            Some(OutputFormat::Parquet)
        );
        assert_eq!(
            OutputFormat::from_path(Path::new("b.CSV")),
            Some(OutputFormat::Csv)
        );
        assert_eq!(
            OutputFormat::from_path(Path::new("b.tsv")),
            Some(OutputFormat::Tsv)
        );
        assert_eq!(OutputFormat::from_path(Path::new("b.json")), None);
        assert_eq!(OutputFormat::from_path(Path::new("b")), None);
    }

    #[test]
    fn engines_path_inserts_suffix() {
        assert_eq!(
            engines_path(Path::new("out/r.parquet")),
            PathBuf::from("out/r.engines.parquet")
        );
        assert_eq!(engines_path(Path::new("r")), PathBuf::from("r.engines"));
    }

    #[test]
    fn parquet_to_stdout_is_rejected() {
        let schema = crate::flatten::engines_schema();
        let result = create_writer(
            &OutputTarget::Stdout,
            OutputFormat::Parquet,
            schema,
            &[],
            &CsvOptions::default(),
        );
        let error = result.err().expect("Parquet to stdout must fail");
        assert!(matches!(error, OutputError::ParquetToStdout));
        assert!(error.to_string().contains("-o results.parquet"));
    }
}
