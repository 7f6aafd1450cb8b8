//! The input stage: reads files and stdin and produces one [`InputItem`] per distinct value.
//!
//! It consumes plain lists (one value per line), CSV/TSV files with a header, and, with
//! `--extract`, logs (free text, Zeek and JSON Lines), each either uncompressed, gzip or zstd. It produces items in input order, each with the location of the
//! value's first occurrence: one `Lookup` per distinct globally routable address, and one
//! `Skipped` per distinct address that is not (`Lookup` too with `include_private`). Each
//! distinct value that is not one address becomes one `Invalid` item. Blank values and repeats
//! are only counted in [`InputStats`].
//!
//! It leaves the cache, the API and the output to later stages, and does not remember values
//! across runs. A bad value never stops the stage; only an input that cannot be opened, read or
//! decompressed, or a CSV file whose IP columns cannot be found, returns an [`InputError`].

mod address;
mod decompress;
mod detect;
mod extract;
mod json_lines;
mod line_scan;
mod lines;
mod logs;
mod refang;
mod rows;
mod sink;
mod special;
mod table;
mod text;
mod zeek;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

pub use address::{AddressError, parse_address};
pub use extract::extract_addresses;
pub use json_lines::DEFAULT_JSON_FIELDS;
pub use logs::ExtractOptions;
pub use refang::refang;
pub use rows::{InputShape, TableLayout, input_shape, lookup_key, read_rows};
pub use sink::Flow;
pub use special::non_global_reason;

use crate::model::InputItem;
use decompress::{Compression, decode, open_raw, skip_bom};
use detect::{Sample, binary_evidence, detect_delimiter, is_plain_list};
use sink::Sink;
use table::{TableInput, read_table};
use text::read_text;

/// How to read the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Decide per input from its first lines: a plain list, or CSV with a header.
    #[default]
    Auto,
    /// CSV or TSV with a header row.
    Csv,
    /// One value per line; blank lines and `#` comments are ignored.
    Text,
}

/// Settings of the input stage, usually filled from the command line.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Inputs read in this order. Empty, or a path `-`, means stdin.
    pub paths: Vec<PathBuf>,
    /// Header names of the IP columns (`--column`, repeatable). Non-empty forces CSV, unless
    /// `extract` is set: then they name the fields of Zeek logs.
    pub columns: Vec<String>,
    pub format: InputFormat,
    /// CSV delimiter. `None` detects one of `,` `;` tab `|`, and uses tab for `.tsv` files.
    pub delimiter: Option<u8>,
    /// Emit addresses that are not globally routable as `Lookup` instead of `Skipped`.
    pub include_private: bool,
    /// A file holding a copy of stdin, read wherever a path is `-`. Join mode reads its input
    /// twice, and stdin can be read only once.
    pub stdin_copy: Option<PathBuf>,
    /// Read every input as a log (`--extract`) instead of a list or a table; `format` and
    /// `delimiter` are then unused.
    pub extract: Option<ExtractOptions>,
}

impl InputOptions {
    /// Returns the file to open for `path`: the copy of stdin for `-` when there is one.
    fn source_path<'a>(&'a self, path: &'a Path) -> &'a Path {
        match &self.stdin_copy {
            Some(copy) if is_stdin(path) => copy,
            _ => path,
        }
    }
}

/// Counters of one `read_inputs` call.
///
/// Every value is counted exactly once, so `values_read` equals `blank_values + invalid_values
/// + duplicate_values + skipped_addresses + lookup_addresses`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InputStats {
    /// Inputs read to the end, or to the point where the receiver stopped the stage.
    pub files_read: u64,
    /// Physical lines, including headers, blank lines and comments.
    pub lines_read: u64,
    /// CSV data rows, and with `--extract`, Zeek data rows and non-blank JSON lines.
    pub records_read: u64,
    /// Blank and `#` comment lines of plain lists; blank lines and Zeek header lines of logs.
    pub ignored_lines: u64,
    /// Values examined: plain list lines that are not ignored, cells of the IP columns, and
    /// with `--extract`, addresses found in free text, Zeek and JSON field values, and JSON
    /// lines that are not JSON.
    pub values_read: u64,
    /// Values that are empty after trimming spaces and quotes; never emitted.
    pub blank_values: u64,
    /// Values that are not one address, repeats included.
    pub invalid_values: u64,
    /// Distinct invalid values, each emitted once as `Invalid`.
    pub distinct_invalid_values: u64,
    /// Addresses already emitted earlier in the run.
    pub duplicate_values: u64,
    /// Distinct addresses emitted as `Skipped`.
    pub skipped_addresses: u64,
    /// Distinct addresses emitted as `Lookup`.
    pub lookup_addresses: u64,
    /// CSV rows whose number of fields differs from the header.
    pub ragged_rows: u64,
    /// Names of the CSV columns read, across all inputs, in the order first chosen.
    pub columns_used: Vec<String>,
    /// Layout of each CSV input as it was read, in input order. Plain lists have none.
    pub tables: Vec<TableLayout>,
}

/// Fatal input failures. Invalid values are not errors: they become `Invalid` items.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open input {}: {source}", shown(path))]
    Open { path: PathBuf, source: io::Error },

    #[error("failed to read input {}: {source}", shown(path))]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "failed to decompress {format} input {}: {source}; the file may be truncated or corrupt",
        shown(path)
    )]
    Decompress {
        path: PathBuf,
        format: &'static str,
        source: io::Error,
    },

    #[error("failed to parse CSV input {}: {source}", shown(path))]
    Csv { path: PathBuf, source: csv::Error },

    #[error(
        "column `{column}` not found in the header of {}; available columns: {}",
        shown(path),
        list_names(available)
    )]
    ColumnNotFound {
        path: PathBuf,
        column: String,
        available: Vec<String>,
    },

    #[error(
        "no column of {} contains IP addresses in its first {sampled_rows} rows (header: {}); choose the column with --column NAME",
        shown(path),
        list_names(header)
    )]
    NoAddressColumn {
        path: PathBuf,
        header: Vec<String>,
        sampled_rows: usize,
    },

    #[error(
        "input {} is not text ({evidence}); give a CSV, TSV or plain list of addresses in UTF-8, \
         uncompressed or compressed with gzip or zstd (convert UTF-16 exports to UTF-8 first)",
        shown(path)
    )]
    NotText { path: PathBuf, evidence: String },
}

fn shown(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".to_string()
    } else {
        format!("`{}`", path.display())
    }
}

/// Names listed in an error message at most; a header of binary junk can have thousands.
const MAX_LISTED_NAMES: usize = 20;

/// Characters of one listed name at most.
const MAX_LISTED_NAME_CHARS: usize = 40;

/// Lists column names for an error message: quoted, control characters escaped, long names and
/// long lists cut.
fn list_names(names: &[String]) -> String {
    let mut quoted: Vec<String> = names
        .iter()
        .take(MAX_LISTED_NAMES)
        .map(|name| {
            let mut shown = String::new();
            for c in name.chars().take(MAX_LISTED_NAME_CHARS) {
                if c.is_control() {
                    shown.extend(c.escape_default());
                } else {
                    shown.push(c);
                }
            }
            if name.chars().count() > MAX_LISTED_NAME_CHARS {
                shown.push('…');
            }
            format!("`{shown}`")
        })
        .collect();
    if names.len() > MAX_LISTED_NAMES {
        quoted.push(format!("and {} more", names.len() - MAX_LISTED_NAMES));
    }
    quoted.join(", ")
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads every input in order, calling `emit` once per distinct value; stops early if `emit`
/// returns false.
///
/// Every path is opened before anything is read, so a missing file fails the call before the
/// first item is emitted.
pub fn read_inputs(
    opts: &InputOptions,
    emit: &mut dyn FnMut(InputItem) -> bool,
) -> Result<InputStats, InputError> {
    let paths = input_paths(opts);
    let sources: Vec<PathBuf> = paths
        .iter()
        .map(|path| opts.source_path(path).to_path_buf())
        .collect();
    check_openable(&paths, &sources)?;

    let mut sink = Sink::new(opts.include_private, emit);
    for path in &paths {
        let flow = read_source(path, opts, &mut sink)?;
        sink.stats.files_read += 1;
        if flow == Flow::Stop {
            tracing::debug!("input stage stopped early: the receiver wants no more items");
            break;
        }
    }
    Ok(sink.stats)
}

/// Runs [`read_inputs`] on a new thread, sending items with `blocking_send` so that a full
/// channel pauses the reading. The thread stops when the receiver is dropped.
pub fn spawn_reader(
    opts: InputOptions,
    tx: mpsc::Sender<InputItem>,
) -> JoinHandle<Result<InputStats, InputError>> {
    std::thread::spawn(move || read_inputs(&opts, &mut |item| tx.blocking_send(item).is_ok()))
}

fn input_paths(opts: &InputOptions) -> Vec<PathBuf> {
    if opts.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        opts.paths.clone()
    }
}

/// Opens each path once and closes it again, because holding every file open until its turn
/// could exceed the open-file limit when a shell glob names thousands of files.
fn check_openable(paths: &[PathBuf], sources: &[PathBuf]) -> Result<(), InputError> {
    for (path, source_path) in paths.iter().zip(sources) {
        open_raw(source_path).map_err(|source| InputError::Open {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The input being read, for error messages and item locations.
pub struct SourceContext {
    pub path: PathBuf,
    /// The path as given, `-` for stdin.
    pub name: String,
    pub compression: Compression,
}

impl SourceContext {
    /// Wraps an error returned while reading, blaming the decoder when the input is compressed.
    pub fn io_error(&self, source: io::Error) -> InputError {
        let path = self.path.clone();
        match self.compression {
            Compression::None => InputError::Read { path, source },
            compressed => InputError::Decompress {
                path,
                format: compressed.name(),
                source,
            },
        }
    }

    /// Wraps a CSV parser error, unwrapping the read errors it passes through.
    pub fn csv_error(&self, error: csv::Error) -> InputError {
        if let csv::ErrorKind::Io(source) = error.kind() {
            // The message is copied because `io::Error` cannot be cloned out of a borrow.
            return self.io_error(io::Error::new(source.kind(), source.to_string()));
        }
        InputError::Csv {
            path: self.path.clone(),
            source: error,
        }
    }
}

fn read_source(path: &Path, opts: &InputOptions, sink: &mut Sink<'_>) -> Result<Flow, InputError> {
    if let Some(extract) = &opts.extract {
        let (context, mut stream) = open_stream(path, opts)?;
        tracing::debug!(file = %context.name, compression = context.compression.name(), "reading as a log (--extract)");
        return logs::read_log(&mut *stream, &context, extract, &opts.columns, sink);
    }

    let opened = open_source(path, opts)?;
    let OpenedSource {
        context,
        stream,
        sample,
    } = opened;

    if read_as_text(opts, &sample) {
        tracing::debug!(file = %context.name, compression = context.compression.name(), "reading as a plain list");
        let mut replayed = sample.replay(stream);
        return read_text(&mut *replayed, &context.name, sink)
            .map_err(|error| context.io_error(error));
    }

    let delimiter = choose_delimiter(opts, path, &sample);
    tracing::debug!(file = %context.name, compression = context.compression.name(), delimiter = %char::from(delimiter).escape_default(), "reading as CSV");
    let table = TableInput {
        context: &context,
        delimiter,
        line_offset: sample.leading_lines,
        requested_columns: &opts.columns,
    };
    let replayed = sample.replay_without_leading(stream);
    read_table(&table, replayed, sink)
}

/// One input opened for reading: decompressed, past its byte order mark, with its first lines
/// read ahead for detection.
struct OpenedSource {
    context: SourceContext,
    stream: Box<dyn std::io::BufRead>,
    sample: Sample,
}

fn open_source(path: &Path, opts: &InputOptions) -> Result<OpenedSource, InputError> {
    let (context, mut stream) = open_stream(path, opts)?;
    let sample = Sample::take(&mut *stream).map_err(|error| context.io_error(error))?;
    if let Some(evidence) = binary_evidence(&sample.bytes) {
        return Err(InputError::NotText {
            path: path.to_path_buf(),
            evidence,
        });
    }
    Ok(OpenedSource {
        context,
        stream,
        sample,
    })
}

/// Opens one input, decompressed and past its byte order mark.
fn open_stream(
    path: &Path,
    opts: &InputOptions,
) -> Result<(SourceContext, Box<dyn std::io::BufRead>), InputError> {
    let raw = open_raw(opts.source_path(path)).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut context = SourceContext {
        path: path.to_path_buf(),
        name: path.display().to_string(),
        compression: Compression::None,
    };

    let (mut stream, compression) = decode(raw).map_err(|error| context.io_error(error))?;
    context.compression = compression;
    skip_bom(&mut stream).map_err(|error| context.io_error(error))?;
    Ok((context, stream))
}

fn read_as_text(opts: &InputOptions, sample: &Sample) -> bool {
    if !opts.columns.is_empty() {
        return false;
    }
    match opts.format {
        InputFormat::Csv => false,
        InputFormat::Text => true,
        InputFormat::Auto => is_plain_list(&sample.lines),
    }
}

fn choose_delimiter(opts: &InputOptions, path: &Path, sample: &Sample) -> u8 {
    if let Some(delimiter) = opts.delimiter {
        return delimiter;
    }
    if has_tsv_extension(path) {
        return b'\t';
    }
    detect_delimiter(&sample.lines)
}

/// Returns whether the name ends in `.tsv`, also under a compression suffix (`x.tsv.gz`).
fn has_tsv_extension(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let base = [".gz", ".zst", ".zstd"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    base.ends_with(".tsv")
}
