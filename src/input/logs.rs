//! Reading one input in `--extract` mode: raw logs rather than lists or tables.
//!
//! The first non-blank line of each input decides how the whole input is read. A Zeek header
//! (`#separator` or `#fields`) makes it a Zeek log, and a line starting with `{` makes it JSON
//! Lines. Anything else is free text (syslog, iptables, web server access logs, indicator
//! lists), searched for every address on every line.

use std::borrow::Cow;
use std::io::BufRead;
use std::net::IpAddr;

use super::extract::extract_addresses;
use super::json_lines::{FieldPath, JsonLinesReader};
use super::line_scan::{Line, for_each_line};
use super::refang::refang;
use super::sink::{Flow, Sink};
use super::zeek::{ZeekReader, is_zeek_header};
use super::{InputError, SourceContext};

/// Maximum number of bytes of one line that are searched. Longer lines are cut, so that a file
/// without newlines cannot grow memory; 1 MiB is far above any log line or JSON event we
/// have seen.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Over-long lines logged one by one per input; the rest are only counted.
const TRUNCATED_LINES_LOGGED: u64 = 10;

/// Settings of `--extract` mode.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Dotted paths of the JSON fields read from JSON Lines (`--json-field`); empty means
    /// [`super::json_lines::DEFAULT_JSON_FIELDS`].
    pub json_fields: Vec<String>,
    /// Rewrite defang markers (`1[.]1[.]1[.]1`) before searching each line (`--refang`).
    pub refang: bool,
}

/// Reads one input as a log and offers every address found to `sink`.
///
/// `columns` are the Zeek fields named by `--column`; they are ignored for other layouts.
pub fn read_log(
    stream: &mut dyn BufRead,
    context: &SourceContext,
    options: &ExtractOptions,
    columns: &[String],
    sink: &mut Sink<'_>,
) -> Result<Flow, InputError> {
    let paths: Vec<FieldPath> = if options.json_fields.is_empty() {
        super::json_lines::DEFAULT_JSON_FIELDS
            .iter()
            .map(|path| FieldPath::new(path))
            .collect()
    } else {
        options
            .json_fields
            .iter()
            .map(|path| FieldPath::new(path))
            .collect()
    };
    let mut reader = LogReader {
        context,
        options,
        columns,
        paths: &paths,
        layout: Layout::Undecided,
        found: Vec::new(),
        truncated_lines: 0,
        error: None,
    };

    let flow = for_each_line(stream, MAX_LINE_BYTES, &mut |line| {
        reader.read_line(&line, sink)
    })
    .map_err(|error| context.io_error(error))?;
    reader.finish();
    match reader.error {
        Some(error) => Err(error),
        None => Ok(flow),
    }
}

/// The layout of an input, decided from its first non-blank line.
enum Layout<'a> {
    Undecided,
    FreeText,
    Zeek(ZeekReader<'a>),
    JsonLines(JsonLinesReader<'a>),
}

struct LogReader<'a> {
    context: &'a SourceContext,
    options: &'a ExtractOptions,
    columns: &'a [String],
    paths: &'a [FieldPath],
    layout: Layout<'a>,
    /// Addresses found on the current free-text line, reused from line to line.
    found: Vec<IpAddr>,
    truncated_lines: u64,
    /// The error that stopped the reading, returned once the line loop has ended.
    error: Option<InputError>,
}

impl<'a> LogReader<'a> {
    fn read_line(&mut self, line: &Line<'_>, sink: &mut Sink<'_>) -> Flow {
        sink.stats.lines_read += 1;
        if line.truncated {
            self.report_truncated(line.number);
        }

        if matches!(self.layout, Layout::Undecided) {
            if line.text.trim_ascii().is_empty() {
                sink.stats.ignored_lines += 1;
                return Flow::Continue;
            }
            self.layout = self.choose_layout(line.text);
        }

        match &mut self.layout {
            Layout::Undecided | Layout::FreeText => self.read_free_text(line, sink),
            Layout::JsonLines(reader) => reader.read_line(line, sink),
            Layout::Zeek(reader) => match reader.read_line(line, sink) {
                Ok(flow) => flow,
                Err(error) => {
                    self.error = Some(error);
                    Flow::Stop
                }
            },
        }
    }

    fn choose_layout(&self, first_line: &[u8]) -> Layout<'a> {
        let name = &self.context.name;
        let refang = self.options.refang;
        if is_zeek_header(first_line) {
            tracing::debug!(file = %name, "reading as a Zeek log: the first line is a Zeek header");
            return Layout::Zeek(ZeekReader::new(self.context, self.columns, refang));
        }
        if first_line.trim_ascii_start().starts_with(b"{") {
            tracing::debug!(file = %name, "reading as JSON Lines: the first line starts with `{{`");
            return Layout::JsonLines(JsonLinesReader::new(self.context, self.paths, refang));
        }
        tracing::debug!(file = %name, "reading as free text: every address on every line");
        if !self.columns.is_empty() {
            tracing::warn!(
                "{name}: --column names Zeek or CSV columns, but this input is free text; every address of every line is read"
            );
        }
        Layout::FreeText
    }

    fn read_free_text(&mut self, line: &Line<'_>, sink: &mut Sink<'_>) -> Flow {
        if line.text.trim_ascii().is_empty() {
            sink.stats.ignored_lines += 1;
            return Flow::Continue;
        }
        let text = if self.options.refang {
            refang(line.text)
        } else {
            Cow::Borrowed(line.text)
        };

        self.found.clear();
        extract_addresses(&text, &mut self.found);
        for &ip in &self.found {
            if sink.offer_found(ip, &self.context.name, line.number) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn report_truncated(&mut self, line: u64) {
        self.truncated_lines += 1;
        if self.truncated_lines <= TRUNCATED_LINES_LOGGED {
            tracing::warn!(
                "{}:{line}: line is longer than {MAX_LINE_BYTES} bytes; only its first {MAX_LINE_BYTES} bytes are read",
                self.context.name
            );
        }
    }

    fn finish(&self) {
        if let Layout::JsonLines(reader) = &self.layout {
            reader.finish();
        }
        if self.truncated_lines > TRUNCATED_LINES_LOGGED {
            tracing::warn!(
                "{}: {} lines in total were longer than {MAX_LINE_BYTES} bytes and were cut",
                self.context.name,
                self.truncated_lines
            );
        }
    }
}
