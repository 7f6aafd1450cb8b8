//! A second pass over a CSV input for join mode: every record as read, with the lookup key of
//! each IP cell.
//!
//! The first pass ([`super::read_inputs`]) decides the delimiter and the IP columns and records
//! them in a [`TableLayout`]. This pass reads the same records again with that layout. The two
//! passes thus agree on every row without holding the file in memory.

use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};

use super::address::{clean_value, parse_address};
use super::lines::{LineLimit, MAX_CSV_LINE_BYTES, OverlongLog};
use super::sink::{Flow, MAX_RAW_CHARS, truncate_chars};
use super::{InputError, InputOptions, open_source, read_as_text};

/// Layout of one CSV input as the first pass read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    pub delimiter: u8,
    /// Header cells, trimmed. When `header_is_data`, these are the first row's values.
    pub header: Vec<String>,
    /// Indices of the IP columns, in the order chosen.
    pub columns: Vec<usize>,
    /// Whether the file has no header row, because its first row contains addresses.
    pub header_is_data: bool,
}

/// Returns the key under which the first pass stored the answer for one cell: the canonical
/// address, or the value itself (cut like an `invalid` row's) when it is not one address.
/// Blank cells have no key.
pub fn lookup_key(cell: &str) -> Option<String> {
    let value = clean_value(cell);
    if value.is_empty() {
        return None;
    }
    match parse_address(value) {
        Ok(ip) => Some(ip.to_string()),
        Err(_) => Some(truncate_chars(value, MAX_RAW_CHARS)),
    }
}

/// Shape of an input as the first pass will read it, judged from its first lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputShape {
    /// A CSV or TSV table with a header row.
    Table,
    /// One value per line.
    PlainList,
    /// No line with a value at all.
    Empty,
}

/// Returns how `path` would be read with `opts`. Reads only the first lines.
pub fn input_shape(path: &Path, opts: &InputOptions) -> Result<InputShape, InputError> {
    let opened = open_source(path, opts)?;
    Ok(if opened.sample.lines.is_empty() {
        InputShape::Empty
    } else if read_as_text(opts, &opened.sample) {
        InputShape::PlainList
    } else {
        InputShape::Table
    })
}

/// Reads every data record of the CSV input at `path` with the layout of the first pass and
/// calls `visit` with each, in order. Stops early when `visit` returns [`Flow::Stop`].
///
/// Cells are passed as read, untrimmed, so a joined output can keep them byte for byte.
pub fn read_rows(
    path: &Path,
    opts: &InputOptions,
    layout: &TableLayout,
    visit: &mut dyn FnMut(&ByteRecord) -> Flow,
) -> Result<(), InputError> {
    let opened = open_source(path, opts)?;
    let context = opened.context;
    let leading_lines = opened.sample.leading_lines;
    let stream = opened.sample.replay_without_leading(opened.stream);
    // The same limit as the first pass, which reported the dropped lines.
    let overlong = OverlongLog::default();
    let stream = LineLimit::new(stream, MAX_CSV_LINE_BYTES, overlong.clone());
    let mut reader = ReaderBuilder::new()
        .delimiter(layout.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(stream);

    let mut record = ByteRecord::new();
    let mut first = true;
    loop {
        let found = reader
            .read_byte_record(&mut record)
            .map_err(|error| context.csv_error(error))?;
        report_overlong(&overlong, &context.name, leading_lines);
        if !found {
            return Ok(());
        }
        if std::mem::take(&mut first) && !layout.header_is_data {
            continue;
        }
        if visit(&record) == Flow::Stop {
            return Ok(());
        }
    }
}

/// Logs each line the limit dropped since the last call: it has no row in the joined output.
/// `leading_lines` are the blank and comment lines before the header, which the limit did not
/// see.
fn report_overlong(overlong: &OverlongLog, file: &str, leading_lines: u64) {
    for dropped in overlong.borrow_mut().drain(..) {
        tracing::warn!(
            "{file}:{}: line of {} bytes is longer than the {MAX_CSV_LINE_BYTES}-byte limit of one CSV row; it is left out of the joined output",
            dropped.line + leading_lines,
            dropped.length
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_first_pass() {
        assert_eq!(lookup_key(" 8.8.8.8:53 ").as_deref(), Some("8.8.8.8"));
        assert_eq!(
            lookup_key("[2001:DB8::1]:443").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(lookup_key("::ffff:1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(lookup_key("010.1.1.1").as_deref(), Some("010.1.1.1"));
        assert_eq!(lookup_key("  ").as_deref(), None);
        assert_eq!(lookup_key("\"\"").as_deref(), None);
    }
}
