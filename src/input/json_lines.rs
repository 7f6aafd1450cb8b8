//! Reading addresses from named fields of JSON Lines logs, for `--extract`.
//!
//! Each line is one JSON object. A field is named by a dotted path such as `source.ip`, which
//! matches a nested object (`{"source": {"ip": …}}`), a flat key (`{"source.ip": …}`) and any
//! mix of the two, because Elastic Common Schema documents come in both shapes. Arrays along
//! the path or at its end are searched element by element.

use std::borrow::Cow;

use serde_json::Value;

use super::SourceContext;
use super::line_scan::Line;
use super::refang::refang;
use super::sink::{Flow, Sink};

/// Fields read when `--json-field` is not given: the source and destination addresses of
/// Elastic Common Schema (`source.ip`, `destination.ip`), Zeek's JSON logs (`id.orig_h`,
/// `id.resp_h`) and Suricata's EVE JSON (`src_ip`, `dest_ip`).
pub const DEFAULT_JSON_FIELDS: &[&str] = &[
    "source.ip",
    "destination.ip",
    "id.orig_h",
    "id.resp_h",
    "src_ip",
    "dest_ip",
];

/// Lines that are not JSON logged one by one per input; the rest are only counted.
const BAD_LINES_LOGGED: u64 = 10;

/// A dotted field path, split into its segments.
#[derive(Debug, Clone)]
pub struct FieldPath {
    segments: Vec<String>,
    /// Object keys that can match the rest of the path from segment `from`:
    /// `keys[from][count - 1]` is `segments[from..from + count]` joined with `.`. They are
    /// built once per input instead of once per line.
    keys: Vec<Vec<String>>,
}

impl FieldPath {
    /// Splits `path` at its dots. Empty segments are kept, so `a..b` matches the key `a..b`.
    pub fn new(path: &str) -> FieldPath {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        let keys = (0..segments.len())
            .map(|from| {
                (from + 1..=segments.len())
                    .map(|to| segments[from..to].join("."))
                    .collect()
            })
            .collect();
        FieldPath { segments, keys }
    }

    /// Appends to `out` every value that the path reaches in `value`.
    pub fn collect<'v>(&self, value: &'v Value, out: &mut Vec<Cow<'v, str>>) {
        self.walk(value, 0, out);
    }

    fn walk<'v>(&self, value: &'v Value, from: usize, out: &mut Vec<Cow<'v, str>>) {
        if from == self.segments.len() {
            push_leaf(value, out);
            return;
        }
        match value {
            Value::Object(map) => {
                for (count, key) in self.keys[from].iter().enumerate() {
                    if let Some(child) = map.get(key) {
                        self.walk(child, from + count + 1, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, from, out);
                }
            }
            _ => {}
        }
    }
}

/// Turns the value at the end of a path into values to offer: a string as it is, each element
/// of an array, `null` as a blank value, and anything else as its JSON text (reported invalid).
fn push_leaf<'v>(value: &'v Value, out: &mut Vec<Cow<'v, str>>) {
    match value {
        Value::String(text) => out.push(Cow::Borrowed(text)),
        Value::Array(items) => {
            for item in items {
                push_leaf(item, out);
            }
        }
        Value::Null => out.push(Cow::Borrowed("")),
        other => out.push(Cow::Owned(other.to_string())),
    }
}

/// Reads the lines of one JSON Lines input.
pub struct JsonLinesReader<'a> {
    context: &'a SourceContext,
    paths: &'a [FieldPath],
    refang: bool,
    /// Non-blank lines read.
    lines: u64,
    /// Lines that are not JSON, each reported as an `Invalid` item.
    bad_lines: u64,
    /// JSON lines in which no path reached a value.
    lines_without_fields: u64,
}

impl<'a> JsonLinesReader<'a> {
    pub fn new(context: &'a SourceContext, paths: &'a [FieldPath], refang: bool) -> Self {
        JsonLinesReader {
            context,
            paths,
            refang,
            lines: 0,
            bad_lines: 0,
            lines_without_fields: 0,
        }
    }

    /// Offers the values of the named fields of one line, or reports the line when it is not
    /// JSON.
    pub fn read_line(&mut self, line: &Line<'_>, sink: &mut Sink<'_>) -> Flow {
        if line.text.trim_ascii().is_empty() {
            sink.stats.ignored_lines += 1;
            return Flow::Continue;
        }
        self.lines += 1;
        sink.stats.records_read += 1;

        let value: Value = match serde_json::from_slice(line.text) {
            Ok(value) => value,
            Err(error) => return self.report_bad_line(line, &error, sink),
        };

        let mut values = Vec::new();
        for path in self.paths {
            path.collect(&value, &mut values);
        }
        if values.is_empty() {
            self.lines_without_fields += 1;
        }

        for value in values {
            let value = if self.refang {
                Cow::Owned(String::from_utf8_lossy(&refang(value.as_bytes())).into_owned())
            } else {
                value
            };
            if sink.offer(&value, &self.context.name, line.number) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn report_bad_line(
        &mut self,
        line: &Line<'_>,
        error: &serde_json::Error,
        sink: &mut Sink<'_>,
    ) -> Flow {
        self.bad_lines += 1;
        // serde_json ends its message with "at line 1 column N"; only the column means
        // anything for one line.
        let message = error.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        let reason = format!(
            "line is not valid JSON ({message} at column {}); the input is read as JSON Lines because its first line is a JSON object",
            error.column()
        );
        if self.bad_lines <= BAD_LINES_LOGGED {
            tracing::warn!(
                "{}:{}: {reason}; reporting the line as invalid and reading on",
                self.context.name,
                line.number
            );
        }
        // TODO: the row's `error_code` is `InvalidAddress`, as for every invalid value, though
        // the whole line is at fault. Only `error_message` reports that it is not JSON.
        let raw = String::from_utf8_lossy(line.text);
        sink.offer_bad_line(raw.trim(), reason, &self.context.name, line.number)
    }

    /// Logs the totals that were not logged line by line.
    pub fn finish(&self) {
        let file = &self.context.name;
        if self.bad_lines > BAD_LINES_LOGGED {
            tracing::warn!(
                "{file}: {} lines in total are not valid JSON and were reported as invalid",
                self.bad_lines
            );
        }
        if self.lines_without_fields == 0 {
            return;
        }
        let fields = self
            .paths
            .iter()
            .map(|path| format!("`{}`", path.segments.join(".")))
            .collect::<Vec<_>>()
            .join(", ");
        let parsed = self.lines - self.bad_lines;
        if self.lines_without_fields == parsed {
            tracing::warn!(
                "{file}: none of the {parsed} JSON lines has any of the fields {fields}; name the fields that hold addresses with --json-field PATH"
            );
        } else {
            tracing::debug!(
                "{file}: {} of {parsed} JSON lines have none of the fields {fields}",
                self.lines_without_fields
            );
        }
    }
}
