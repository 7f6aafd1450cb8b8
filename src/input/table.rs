//! Reading a CSV or TSV file with a header: chooses the IP columns and offers their cells.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use csv::{ByteRecord, ReaderBuilder, Trim};

use super::address::{clean_value, parse_address};
use super::detect::{COLUMN_SAMPLE_RECORDS, detect_address_columns, select_named_columns};
use super::lines::{LineLimit, MAX_CSV_LINE_BYTES, OverlongLog};
use super::sink::{Flow, Sink};
use super::{InputError, SourceContext, TableLayout};

/// Ragged rows logged one by one per file; the rest are only counted, then logged as one total.
const RAGGED_ROWS_LOGGED: u64 = 10;

/// Source and layout of one CSV input.
pub struct TableInput<'a> {
    pub context: &'a SourceContext,
    pub delimiter: u8,
    /// Lines before the header that were skipped as blank or comments.
    pub line_offset: u64,
    /// Column names from `--column`, or empty to detect the IP columns.
    pub requested_columns: &'a [String],
}

/// Reads a CSV file with a header from `stream` and offers the cells of its IP columns to `sink`.
pub fn read_table(
    input: &TableInput<'_>,
    stream: Box<dyn BufRead>,
    sink: &mut Sink<'_>,
) -> Result<Flow, InputError> {
    // The CSV parser has no limit on the size of one record, so over-long lines are dropped
    // before it. NOTE: a quote left open still joins the lines after it into one record, up
    // to the next quote or the end of the file, but each of those lines is within the limit.
    let overlong = OverlongLog::default();
    let limited = LineLimit::new(stream, MAX_CSV_LINE_BYTES, overlong.clone());
    let mut reader = ReaderBuilder::new()
        .delimiter(input.delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .from_reader(LineCounter::new(Box::new(limited)));

    let mut table = TableState::new(input, overlong);
    let flow = table.read_all(&mut reader, sink);

    sink.stats.lines_read += reader.get_ref().lines() + input.line_offset;
    table.log_ragged_total();
    flow
}

struct TableState<'a> {
    input: &'a TableInput<'a>,
    header: Vec<String>,
    columns: Vec<usize>,
    ragged_rows: u64,
    /// Lines the parser never saw because they were too long, to report in input order.
    overlong: OverlongLog,
}

impl<'a> TableState<'a> {
    fn new(input: &'a TableInput<'a>, overlong: OverlongLog) -> Self {
        TableState {
            input,
            header: Vec::new(),
            columns: Vec::new(),
            ragged_rows: 0,
            overlong,
        }
    }

    fn read_all(
        &mut self,
        reader: &mut csv::Reader<LineCounter>,
        sink: &mut Sink<'_>,
    ) -> Result<Flow, InputError> {
        let mut header_record = ByteRecord::new();
        let Some(header_line) = self.read_record(reader, &mut header_record)? else {
            return Ok(Flow::Continue);
        };
        self.header = header_record.iter().map(decode_cell).collect();

        let sampled = self.read_sample(reader)?;
        let has_rows = self.choose_columns(&sampled)?;
        // Recorded also for a file without data rows, so that a joined output still gets the
        // input's columns.
        sink.stats.tables.push(TableLayout {
            delimiter: self.input.delimiter,
            header: self.header.clone(),
            columns: self.columns.clone(),
            header_is_data: self.header_is_data(),
        });
        if !has_rows {
            return Ok(Flow::Continue);
        }
        self.record_columns_used(sink);

        if self.header_is_data() {
            tracing::info!(file = %self.input.context.name, "no header row: the first row contains addresses, so it is read as data");
            sink.stats.records_read += 1;
            if self.offer_record(&header_record, header_line, sink) == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }

        for (record, line) in &sampled {
            sink.stats.records_read += 1;
            if self.offer_record(record, *line, sink) == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }

        let mut record = ByteRecord::new();
        while let Some(line) = self.read_record(reader, &mut record)? {
            sink.stats.records_read += 1;
            if self.offer_record(&record, line, sink) == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(self.report_overlong(u64::MAX, sink))
    }

    /// Offers the dropped over-long lines that come before `line` as invalid values.
    fn report_overlong(&mut self, line: u64, sink: &mut Sink<'_>) -> Flow {
        loop {
            let next = {
                let mut log = self.overlong.borrow_mut();
                match log.front() {
                    Some(dropped) if dropped.line + self.input.line_offset < line => {
                        log.pop_front()
                    }
                    _ => None,
                }
            };
            let Some(dropped) = next else {
                return Flow::Continue;
            };
            let reason = format!(
                "line of {} bytes, longer than the {MAX_CSV_LINE_BYTES}-byte limit of one CSV \
                 row; skipped",
                dropped.length
            );
            let at = dropped.line + self.input.line_offset;
            let name = &self.input.context.name;
            tracing::debug!(file = %name, line = at, bytes = dropped.length, "skipping an over-long CSV line");
            if sink.offer_overlong_line(&dropped.start, reason, name, at) == Flow::Stop {
                return Flow::Stop;
            }
        }
    }

    /// Reads the first records into memory; they decide the columns when `--column` is absent.
    fn read_sample(
        &self,
        reader: &mut csv::Reader<LineCounter>,
    ) -> Result<Vec<(ByteRecord, u64)>, InputError> {
        let sample_size = if self.input.requested_columns.is_empty() {
            COLUMN_SAMPLE_RECORDS
        } else {
            0
        };

        let mut sampled = Vec::new();
        let mut record = ByteRecord::new();
        while sampled.len() < sample_size {
            let Some(line) = self.read_record(reader, &mut record)? else {
                break;
            };
            sampled.push((record.clone(), line));
        }
        Ok(sampled)
    }

    /// Sets `self.columns`. Returns `false` for a file with a header and no data rows.
    fn choose_columns(&mut self, sampled: &[(ByteRecord, u64)]) -> Result<bool, InputError> {
        let context = self.input.context;

        if !self.input.requested_columns.is_empty() {
            self.columns = select_named_columns(&self.header, self.input.requested_columns)
                .map_err(|missing| InputError::ColumnNotFound {
                    path: context.path.clone(),
                    column: missing.to_string(),
                    available: self.header.clone(),
                })?;
            return Ok(true);
        }

        let rows: Vec<Vec<String>> = sampled
            .iter()
            .map(|(record, _)| record.iter().map(decode_cell).collect())
            .collect();
        self.columns = detect_address_columns(self.header.len(), &rows);
        if sampled.is_empty() {
            // A one-row file without a header has its addresses in the row read as the header.
            self.columns =
                detect_address_columns(self.header.len(), std::slice::from_ref(&self.header));
        }

        if !self.columns.is_empty() {
            let names: Vec<String> = self.columns.iter().map(|&i| self.column_name(i)).collect();
            tracing::info!(file = %context.name, columns = ?names, sampled_rows = sampled.len(), "detected IP columns");
            return Ok(true);
        }
        if sampled.is_empty() {
            tracing::warn!(file = %context.name, "CSV input has a header but no data rows");
            return Ok(false);
        }
        Err(InputError::NoAddressColumn {
            path: context.path.clone(),
            header: self.header.clone(),
            sampled_rows: sampled.len(),
        })
    }

    fn record_columns_used(&self, sink: &mut Sink<'_>) {
        for &index in &self.columns {
            let name = self.column_name(index);
            if !sink.stats.columns_used.contains(&name) {
                sink.stats.columns_used.push(name);
            }
        }
    }

    /// Returns whether the first row contains addresses in a chosen column, which means the file
    /// has no header row.
    fn header_is_data(&self) -> bool {
        self.columns.iter().any(|&index| {
            self.header
                .get(index)
                .is_some_and(|cell| parse_address(cell).is_ok())
        })
    }

    /// Names a column for logs and the summary; blank names and address-valued header cells
    /// become `column N` (1-based).
    fn column_name(&self, index: usize) -> String {
        match self.header.get(index) {
            Some(name) if !name.is_empty() && parse_address(name).is_err() => name.clone(),
            _ => format!("column {}", index + 1),
        }
    }

    fn offer_record(&mut self, record: &ByteRecord, line: u64, sink: &mut Sink<'_>) -> Flow {
        if self.report_overlong(line, sink) == Flow::Stop {
            return Flow::Stop;
        }
        if record.len() != self.header.len() {
            self.report_ragged(record.len(), line, sink);
        }

        for &index in &self.columns {
            let Some(cell) = record.get(index) else {
                continue;
            };
            let value = decode_cell(cell);
            if sink.offer(&value, &self.input.context.name, line) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn report_ragged(&mut self, fields: usize, line: u64, sink: &mut Sink<'_>) {
        self.ragged_rows += 1;
        sink.stats.ragged_rows += 1;
        if self.ragged_rows <= RAGGED_ROWS_LOGGED {
            tracing::warn!(
                "{}:{line}: row has {fields} fields, the header has {}; reading the fields present",
                self.input.context.name,
                self.header.len()
            );
        }
    }

    fn log_ragged_total(&self) {
        if self.ragged_rows > RAGGED_ROWS_LOGGED {
            tracing::warn!(
                "{}: {} rows in total have a different number of fields than the header",
                self.input.context.name,
                self.ragged_rows
            );
        }
    }

    /// Reads the next record and returns the 1-based line where it starts in the original file,
    /// or `None` at the end of the input.
    fn read_record(
        &self,
        reader: &mut csv::Reader<LineCounter>,
        record: &mut ByteRecord,
    ) -> Result<Option<u64>, InputError> {
        let found = reader
            .read_byte_record(record)
            .map_err(|error| self.input.context.csv_error(error))?;
        if !found {
            return Ok(None);
        }

        let byte = record.position().map_or(0, |position| position.byte());
        let line = reader.get_mut().line_at(byte);
        Ok(Some(line + self.input.line_offset))
    }
}

/// Decodes one cell lossily and trims it like any other value.
fn decode_cell(cell: &[u8]) -> String {
    clean_value(&String::from_utf8_lossy(cell)).to_string()
}

/// Counts the lines that pass through and maps record offsets to line numbers.
///
/// The CSV parser's own line numbers are wrong after CRLF and after blank lines: it reports a
/// record as starting at the line terminator before it, still counted on the previous line. So
/// this counter tracks each run of `\r` and `\n` bytes, and a record reported inside or at the
/// start of a run is placed after the whole run.
struct LineCounter {
    inner: Box<dyn BufRead>,
    /// Bytes read so far.
    offset: u64,
    newlines: u64,
    last_byte: Option<u8>,
    /// Runs of line terminator bytes read ahead of the last record asked about. The parser reads
    /// at most one buffer ahead of the record it returns, so this stays small.
    pending_runs: VecDeque<TerminatorRun>,
    /// Newlines before the last record asked about.
    newlines_passed: u64,
}

/// A maximal run of `\r` and `\n` bytes: its byte range and the number of `\n` in it.
struct TerminatorRun {
    start: u64,
    end: u64,
    newlines: u64,
}

impl LineCounter {
    fn new(inner: Box<dyn BufRead>) -> Self {
        LineCounter {
            inner,
            offset: 0,
            newlines: 0,
            last_byte: None,
            pending_runs: VecDeque::new(),
            newlines_passed: 0,
        }
    }

    /// Returns the number of lines read so far, counting an unterminated last line.
    fn lines(&self) -> u64 {
        match self.last_byte {
            Some(byte) if byte != b'\n' => self.newlines + 1,
            _ => self.newlines,
        }
    }

    /// Returns the 1-based line of the record reported at byte `offset`. Offsets must not
    /// decrease from one call to the next.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self
            .pending_runs
            .front()
            .is_some_and(|run| run.start <= offset)
        {
            if let Some(run) = self.pending_runs.pop_front() {
                self.newlines_passed += run.newlines;
            }
        }
        self.newlines_passed + 1
    }

    fn note_terminator(&mut self, position: u64, byte: u8) {
        let newline = u64::from(byte == b'\n');
        if let Some(run) = self.pending_runs.back_mut()
            && run.end == position
        {
            run.end += 1;
            run.newlines += newline;
            return;
        }
        self.pending_runs.push_back(TerminatorRun {
            start: position,
            end: position + 1,
            newlines: newline,
        });
    }
}

impl Read for LineCounter {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let chunk = &buffer[..read];

        for (index, &byte) in chunk.iter().enumerate() {
            if byte == b'\n' || byte == b'\r' {
                self.note_terminator(self.offset + index as u64, byte);
            }
            if byte == b'\n' {
                self.newlines += 1;
            }
        }
        self.offset += read as u64;
        if let Some(&byte) = chunk.last() {
            self.last_byte = Some(byte);
        }
        Ok(read)
    }
}
