//! Reading Zeek's tab-separated logs (`conn.log` and the others), for `--extract`.
//!
//! A Zeek log starts with header lines: `#separator \x09`, then `#set_separator`,
//! `#empty_field`, `#unset_field`, `#path`, `#open`, `#fields` (the column names) and `#types`
//! (their Zeek types), and may end with `#close`. Concatenated logs repeat the header, so every
//! header line is read wherever it appears. The columns read are those named by `--column`, or
//! else those whose type is `addr`, `set[addr]` or `vector[addr]`.

use std::borrow::Cow;

use super::detect::select_named_columns;
use super::line_scan::Line;
use super::refang::refang;
use super::sink::{Flow, Sink};
use super::{InputError, SourceContext};

/// Returns whether a first line starts a Zeek log header.
pub fn is_zeek_header(line: &[u8]) -> bool {
    line.starts_with(b"#separator") || line.starts_with(b"#fields")
}

/// The layout declared by the header lines read so far.
struct Header {
    separator: Vec<u8>,
    set_separator: Vec<u8>,
    empty_field: Vec<u8>,
    unset_field: Vec<u8>,
    fields: Vec<String>,
    types: Vec<String>,
}

impl Default for Header {
    /// Zeek's own defaults, used until the header says otherwise.
    fn default() -> Self {
        Header {
            separator: b"\t".to_vec(),
            set_separator: b",".to_vec(),
            empty_field: b"(empty)".to_vec(),
            unset_field: b"-".to_vec(),
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// A column to read, and whether it contains a set or vector of addresses.
#[derive(Debug, Clone, Copy)]
struct Column {
    index: usize,
    is_container: bool,
}

/// Reads the lines of one Zeek log.
pub struct ZeekReader<'a> {
    context: &'a SourceContext,
    requested_columns: &'a [String],
    refang: bool,
    header: Header,
    /// Chosen at the first data line after a `#fields` or `#types` line; `None` before.
    columns: Option<Vec<Column>>,
    /// Byte ranges of the fields of the current line, reused from line to line.
    field_ranges: Vec<(usize, usize)>,
}

impl<'a> ZeekReader<'a> {
    pub fn new(context: &'a SourceContext, requested_columns: &'a [String], refang: bool) -> Self {
        ZeekReader {
            context,
            requested_columns,
            refang,
            header: Header::default(),
            columns: None,
            field_ranges: Vec::new(),
        }
    }

    /// Reads one header or data line. Fails only when a column named by `--column` is not in
    /// the `#fields` line.
    pub fn read_line(&mut self, line: &Line<'_>, sink: &mut Sink<'_>) -> Result<Flow, InputError> {
        if line.text.starts_with(b"#") {
            sink.stats.ignored_lines += 1;
            self.read_header_line(line.text);
            return Ok(Flow::Continue);
        }
        if line.text.is_empty() {
            sink.stats.ignored_lines += 1;
            return Ok(Flow::Continue);
        }
        sink.stats.records_read += 1;

        if self.columns.is_none() {
            self.choose_columns(sink)?;
        }
        Ok(self.offer_fields(line, sink))
    }

    fn read_header_line(&mut self, text: &[u8]) {
        // `#separator` is the one directive whose value follows a space, since the separator
        // is not known yet; its value is escaped, as in `\x09`.
        if let Some(value) = text.strip_prefix(b"#separator ") {
            self.header.separator = unescape(value);
            return;
        }

        let mut parts = split(text, &self.header.separator).map(|(start, end)| &text[start..end]);
        let directive = parts.next().unwrap_or_default();
        let values: Vec<&[u8]> = parts.collect();
        let single = || {
            values
                .first()
                .map(|value| value.to_vec())
                .unwrap_or_default()
        };
        match directive {
            b"#set_separator" => self.header.set_separator = unescape(&single()),
            b"#empty_field" => self.header.empty_field = single(),
            b"#unset_field" => self.header.unset_field = single(),
            b"#fields" => {
                self.header.fields = values.iter().map(|value| decode(value)).collect();
                self.columns = None;
            }
            b"#types" => {
                self.header.types = values.iter().map(|value| decode(value)).collect();
                self.columns = None;
            }
            _ => {}
        }
    }

    fn choose_columns(&mut self, sink: &mut Sink<'_>) -> Result<(), InputError> {
        let header = &self.header;
        let indices = if self.requested_columns.is_empty() {
            (0..header.fields.len())
                .filter(|&index| {
                    header
                        .types
                        .get(index)
                        .is_some_and(|kind| is_address_type(kind))
                })
                .collect()
        } else {
            select_named_columns(&header.fields, self.requested_columns).map_err(|missing| {
                InputError::ColumnNotFound {
                    path: self.context.path.clone(),
                    column: missing.to_string(),
                    available: header.fields.clone(),
                }
            })?
        };

        let names: Vec<&String> = indices
            .iter()
            .filter_map(|&index| header.fields.get(index))
            .collect();
        if names.is_empty() {
            tracing::warn!(
                "{}: the Zeek log header declares no field of type addr, so its rows are not read; name the fields that hold addresses with --column NAME",
                self.context.name
            );
        } else {
            tracing::info!(file = %self.context.name, columns = ?names, "reading Zeek fields");
        }
        for name in names {
            if !sink.stats.columns_used.contains(name) {
                sink.stats.columns_used.push(name.clone());
            }
        }

        let columns = indices
            .into_iter()
            .map(|index| Column {
                index,
                is_container: header
                    .types
                    .get(index)
                    .is_some_and(|kind| kind.ends_with("[addr]")),
            })
            .collect();
        self.columns = Some(columns);
        Ok(())
    }

    fn offer_fields(&mut self, line: &Line<'_>, sink: &mut Sink<'_>) -> Flow {
        let Some(columns) = &self.columns else {
            return Flow::Continue;
        };
        self.field_ranges.clear();
        self.field_ranges
            .extend(split(line.text, &self.header.separator));

        for column in columns {
            let Some(&(start, end)) = self.field_ranges.get(column.index) else {
                continue;
            };
            let field = &line.text[start..end];
            let flow = if column.is_container {
                self.offer_container(field, line.number, sink)
            } else {
                self.offer_value(field, line.number, sink)
            };
            if flow == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn offer_container(&self, field: &[u8], line: u64, sink: &mut Sink<'_>) -> Flow {
        if field == self.header.empty_field.as_slice()
            || field == self.header.unset_field.as_slice()
        {
            return sink.offer("", &self.context.name, line);
        }
        for (start, end) in split(field, &self.header.set_separator) {
            if self.offer_value(&field[start..end], line, sink) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Offers one value; Zeek's unset and empty markers count as blank values.
    fn offer_value(&self, value: &[u8], line: u64, sink: &mut Sink<'_>) -> Flow {
        let is_unset = value == self.header.unset_field.as_slice()
            || value == self.header.empty_field.as_slice();
        let value: Cow<'_, [u8]> = match (is_unset, self.refang) {
            (true, _) => Cow::Borrowed(b""),
            (false, true) => refang(value),
            (false, false) => Cow::Borrowed(value),
        };
        sink.offer(&String::from_utf8_lossy(&value), &self.context.name, line)
    }
}

/// Returns whether a Zeek type contains addresses.
fn is_address_type(kind: &str) -> bool {
    matches!(kind, "addr" | "set[addr]" | "vector[addr]")
}

/// Splits `text` at each `separator` and returns the byte range of every part.
fn split<'t>(text: &'t [u8], separator: &'t [u8]) -> impl Iterator<Item = (usize, usize)> + 't {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let found = if separator.is_empty() {
            None
        } else {
            memchr::memmem::find(&text[start..], separator)
        };
        let range = match found {
            Some(offset) => {
                let range = (start, start + offset);
                start += offset + separator.len();
                range
            }
            None => {
                done = true;
                (start, text.len())
            }
        };
        Some(range)
    })
}

/// Decodes Zeek's `\xNN` escapes; other bytes are kept as they are.
fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        let escaped = text
            .get(index..index + 4)
            .filter(|window| window.starts_with(b"\\x"))
            .and_then(|window| std::str::from_utf8(&window[2..]).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(text[index]);
                index += 1;
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
