//! CSV and TSV writer.
//!
//! The dialect is RFC 4180: UTF-8 without a byte order mark, a header row, CRLF line endings,
//! and fields quoted with `"` when they contain the delimiter, a quote or a line break. TSV is
//! the same dialect with a tab delimiter. Cells are written as follows:
//! - null: an empty cell (so an empty string and a null look the same);
//! - integers: decimal digits with an optional leading `-`;
//! - timestamps: RFC 3339 in UTC with a `Z` suffix, with fractional seconds only when they
//!   are not zero (`2021-03-23T15:41:15Z`);
//! - lists: a JSON array of strings (`["vpn","tor"]`);
//! - text: verbatim, except that with [`CsvOptions::escape_formulas`] a cell starting with one
//!   of [`FORMULA_TRIGGERS`] gets a leading [`FORMULA_PREFIX`].

use std::fmt::Write as _;
use std::io::{self, Write};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Int8Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat};

use super::atomic::AtomicFile;
use super::{CsvOptions, OutputError, OutputTarget, TableWriter, check_schema};

/// Leading characters that can make a spreadsheet read a cell as a formula. `=`, `+`, `-` and
/// `@` are listed by CWE-1236, tab and NUL by OWASP ASVS 5.0 requirement 1.2.10. Carriage
/// return is included too because, like tab, it is a leading control character.
pub const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r', '\0'];

/// Prefix that makes spreadsheets show a formula-like cell as text (CWE-1236 mitigation).
pub const FORMULA_PREFIX: char = '\'';

/// Size of the buffer between the CSV encoder and the file or standard output.
const BUFFER_BYTES: usize = 256 * 1024;

/// Cell format of one column, chosen once from the schema.
#[derive(Clone, Copy, Debug)]
enum CellFormat {
    Text,
    Int8,
    Int64,
    TimestampMicros,
    TextList,
}

fn cell_format(data_type: &DataType) -> Option<CellFormat> {
    match data_type {
        DataType::Utf8 => Some(CellFormat::Text),
        DataType::Int8 => Some(CellFormat::Int8),
        DataType::Int64 => Some(CellFormat::Int64),
        // Any timezone is written as UTC, which is what the instant is.
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(CellFormat::TimestampMicros),
        DataType::List(item) if item.data_type() == &DataType::Utf8 => Some(CellFormat::TextList),
        _ => None,
    }
}

/// Returns whether a text cell needs [`FORMULA_PREFIX`]. A cell that is one plain number
/// (`-1`, `+3.5`) is left alone: a spreadsheet reads it as that number and runs nothing, and
/// joined input cells such as byte deltas must come back unchanged.
fn looks_like_formula(text: &str) -> bool {
    text.starts_with(FORMULA_TRIGGERS) && !is_plain_number(text)
}

/// Returns whether `text` is a sign followed by digits, with at most one decimal point.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    !whole.is_empty() && all_digits(whole) && all_digits(fraction)
}

enum Destination {
    File(AtomicFile),
    Stdout,
}

struct CsvTableWriter<W: Write + Send> {
    writer: csv::Writer<W>,
    destination: Destination,
    path: String,
    schema: SchemaRef,
    formats: Vec<CellFormat>,
    escape_formulas: bool,
    /// Reused per row so that no record is allocated per row.
    record: csv::ByteRecord,
    cell: String,
}

/// Creates a CSV (`delimiter` `,`) or TSV (`\t`) writer and writes the header row.
pub(super) fn create(
    target: &OutputTarget,
    delimiter: u8,
    schema: SchemaRef,
    options: &CsvOptions,
) -> Result<Box<dyn TableWriter>, OutputError> {
    let path = target.describe();
    let mut formats = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let Some(format) = cell_format(field.data_type()) else {
            return Err(OutputError::UnsupportedColumnType {
                path,
                column: field.name().clone(),
                data_type: field.data_type().to_string(),
            });
        };
        formats.push(format);
    }

    match target {
        OutputTarget::File(target_path) => {
            let file = AtomicFile::create(target_path)?;
            let handle = file.handle()?;
            let writer = CsvTableWriter::new(
                handle,
                Destination::File(file),
                path,
                delimiter,
                schema,
                formats,
                options,
            )?;
            Ok(Box::new(writer))
        }
        OutputTarget::Stdout => {
            let writer = CsvTableWriter::new(
                io::stdout(),
                Destination::Stdout,
                path,
                delimiter,
                schema,
                formats,
                options,
            )?;
            Ok(Box::new(writer))
        }
    }
}

impl<W: Write + Send> CsvTableWriter<W> {
    fn new(
        output: W,
        destination: Destination,
        path: String,
        delimiter: u8,
        schema: SchemaRef,
        formats: Vec<CellFormat>,
        options: &CsvOptions,
    ) -> Result<Self, OutputError> {
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .buffer_capacity(BUFFER_BYTES)
            .from_writer(output);
        let mut table = CsvTableWriter {
            writer,
            destination,
            path,
            schema,
            formats,
            escape_formulas: options.escape_formulas,
            record: csv::ByteRecord::new(),
            cell: String::new(),
        };
        let header: Vec<String> = table
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        table
            .writer
            .write_record(&header)
            .map_err(|source| table.csv_error(source))?;
        Ok(table)
    }

    fn csv_error(&self, source: csv::Error) -> OutputError {
        OutputError::Csv {
            path: self.path.clone(),
            source,
        }
    }

    /// Formats the cell at `row` of `array` into `self.cell`; leaves it empty for a null.
    fn format_cell(&mut self, format: CellFormat, array: &dyn Array, row: usize) {
        self.cell.clear();
        if array.is_null(row) {
            return;
        }
        match format {
            CellFormat::Text => {
                let text = array.as_string::<i32>().value(row);
                if self.escape_formulas && looks_like_formula(text) {
                    self.cell.push(FORMULA_PREFIX);
                }
                self.cell.push_str(text);
            }
            CellFormat::Int8 => {
                let value = array.as_primitive::<Int8Type>().value(row);
                let _ = write!(self.cell, "{value}");
            }
            CellFormat::Int64 => {
                let value = array.as_primitive::<Int64Type>().value(row);
                let _ = write!(self.cell, "{value}");
            }
            CellFormat::TimestampMicros => {
                let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
                match DateTime::from_timestamp_micros(micros) {
                    Some(at) => self
                        .cell
                        .push_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                    // Out of chrono's range (beyond ±262,000 years): write the raw number
                    // rather than lose it.
                    None => {
                        let _ = write!(self.cell, "{micros}");
                    }
                }
            }
            CellFormat::TextList => {
                let list = array.as_list::<i32>().value(row);
                let items = list.as_string::<i32>();
                let values: Vec<Option<&str>> = items.iter().collect();
                // Serializing strings and nulls cannot fail.
                let json = serde_json::to_string(&values).expect("strings serialize to JSON");
                self.cell.push_str(&json);
            }
        }
    }
}

impl<W: Write + Send> TableWriter for CsvTableWriter<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        check_schema(&self.path, &self.schema, batch)?;
        let columns = batch.columns();
        for row in 0..batch.num_rows() {
            let mut record = std::mem::take(&mut self.record);
            record.clear();
            for (index, column) in columns.iter().enumerate() {
                self.format_cell(self.formats[index], column.as_ref(), row);
                record.push_field(self.cell.as_bytes());
            }
            let result = self.writer.write_byte_record(&record);
            self.record = record;
            result.map_err(|source| self.csv_error(source))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), OutputError> {
        let CsvTableWriter {
            writer,
            destination,
            path,
            ..
        } = *self;
        let mut output = writer.into_inner().map_err(|error| OutputError::Io {
            path: path.clone(),
            source: io::Error::new(error.error().kind(), error.error().to_string()),
        })?;
        output
            .flush()
            .map_err(|source| OutputError::Io { path, source })?;
        match destination {
            Destination::File(file) => file.commit(),
            Destination::Stdout => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn plain_numbers_are_not_escaped_but_formulas_are() {
        for number in ["-1", "+3", "-2.5", "-0", "42"] {
            assert!(!looks_like_formula(number), "{number}");
        }
        for formula in ["-1+1", "=1", "-", "-.5", "@SUM(A1)", "-1e3", "-2-3"] {
            assert_eq!(
                looks_like_formula(formula),
                formula.starts_with(FORMULA_TRIGGERS),
                "{formula}"
            );
        }
        assert!(looks_like_formula("-1+cmd|' /C calc'!A0"));
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("whois", DataType::Utf8, true),
            Field::new("reputation", DataType::Int64, true),
            Field::new(
                "seen",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
        ]))
    }

    fn batch(whois: Vec<Option<&str>>) -> RecordBatch {
        let rows = whois.len();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            if row == 0 {
                tags.values().append_value("vpn");
                tags.values().append_value("t\"or");
                tags.append(true);
            } else {
                tags.append(false);
            }
        }
        let seen: Vec<Option<i64>> = (0..rows)
            .map(|row| (row == 0).then_some(1_616_514_075_000_000))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(whois)),
            Arc::new(Int64Array::from(vec![Some(-9); rows])),
            Arc::new(TimestampMicrosecondArray::from(seen).with_timezone("UTC")),
            Arc::new(tags.finish()),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    fn write_csv(batch: &RecordBatch, options: &CsvOptions) -> String {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("out.csv");
        let target = OutputTarget::File(path.clone());
        let mut writer = create(&target, b',', schema(), options).unwrap();
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn cells_use_documented_forms() {
        let text = write_csv(&batch(vec![Some("plain"), None]), &CsvOptions::default());
        let expected = "whois,reputation,seen,tags\r\n\
                        plain,-9,2021-03-23T15:41:15Z,\"[\"\"vpn\"\",\"\"t\\\"\"or\"\"]\"\r\n\
                        ,-9,,\r\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn formula_cells_are_prefixed() {
        let cells = vec![
            Some("=1+1"),
            Some("+1"),
            Some("-2"),
            Some("-2+3"),
            Some("@SUM(A1)"),
            Some("\tx"),
            Some("a=b"),
        ];
        let text = write_csv(&batch(cells), &CsvOptions::default());
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let whois: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[0].to_string())
            .collect();
        // Plain numbers are numbers to a spreadsheet too, and are left alone.
        assert_eq!(
            whois,
            ["'=1+1", "+1", "-2", "'-2+3", "'@SUM(A1)", "'\tx", "a=b"]
        );
        let reputation: Vec<String> = csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap()[1].to_string())
            .collect();
        assert!(
            reputation.iter().all(|value| value == "-9"),
            "{reputation:?}"
        );
    }

    #[test]
    fn formula_escaping_can_be_disabled() {
        let options = CsvOptions {
            escape_formulas: false,
        };
        let text = write_csv(&batch(vec![Some("=1+1")]), &options);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(&reader.records().next().unwrap().unwrap()[0], "=1+1");
    }

    #[test]
    fn whois_round_trips_byte_identical() {
        let whois = "NetName: EXAMPLE, Inc.\r\nComment: \"quoted\" text\nOrgName: A, B \u{fffd}\n";
        let text = write_csv(&batch(vec![Some(whois)]), &CsvOptions::default());
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], whois);
    }

    #[test]
    fn tsv_quotes_tabs_and_round_trips() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("out.tsv");
        let target = OutputTarget::File(path.clone());
        let mut writer = create(&target, b'\t', schema(), &CsvOptions::default()).unwrap();
        writer.write(&batch(vec![Some("a\tb, c")])).unwrap();
        writer.finish().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("whois\treputation\tseen\ttags\r\n"),
            "{text}"
        );
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .from_path(&path)
            .unwrap();
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], "a\tb, c");
        assert_eq!(&record[1], "-9");
    }

    #[test]
    fn unsupported_type_is_rejected() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "flag",
            DataType::Boolean,
            true,
        )]));
        let target = OutputTarget::File("/tmp/never-created.csv".into());
        let error = create(&target, b',', schema, &CsvOptions::default())
            .err()
            .unwrap();
        assert!(error.to_string().contains("flag"), "{error}");
        assert!(error.to_string().contains("never-created.csv"), "{error}");
    }
}
