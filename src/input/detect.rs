//! Decisions taken from the start of an input: plain list or CSV, which delimiter, which columns.
//!
//! Stdin cannot be rewound, so the first lines are read into memory as a [`Sample`] and replayed
//! in front of the rest of the stream. Nothing is read twice from the source.

use std::io::{self, BufRead, Cursor, Read};

use super::address::parse_address;
use super::text::{is_ignored_line, strip_comment};

/// Delimiters tried by auto-detection, in order of preference when two fit equally well.
pub const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// Non-blank, non-comment lines examined to decide the format and the delimiter.
const SAMPLE_LINES: usize = 20;

/// Upper bound on the bytes held for the sample, so a file without newlines cannot grow it.
const SAMPLE_BYTES: u64 = 256 * 1024;

/// The start of an input, read ahead for detection.
#[derive(Debug, Default)]
pub struct Sample {
    /// Every byte consumed from the stream, to be replayed before the rest of it.
    pub bytes: Vec<u8>,
    /// Length in bytes of the blank and `#` comment lines before the first data line.
    pub leading_bytes: usize,
    /// Number of those leading lines.
    pub leading_lines: u64,
    /// The first non-blank, non-comment lines, decoded lossily, without line endings.
    pub lines: Vec<String>,
}

impl Sample {
    /// Reads the start of `reader` until [`SAMPLE_LINES`] data lines or [`SAMPLE_BYTES`] bytes.
    pub fn take(reader: &mut dyn BufRead) -> io::Result<Sample> {
        let mut sample = Sample::default();
        let mut seen_data = false;

        while sample.lines.len() < SAMPLE_LINES {
            let budget = SAMPLE_BYTES.saturating_sub(sample.bytes.len() as u64);
            if budget == 0 {
                break;
            }

            let start = sample.bytes.len();
            let read = reader.take(budget).read_until(b'\n', &mut sample.bytes)?;
            if read == 0 {
                break;
            }

            let line = decode_line(&sample.bytes[start..]);
            if !seen_data && is_ignored_line(&line) {
                sample.leading_bytes = sample.bytes.len();
                sample.leading_lines += 1;
                continue;
            }
            seen_data = true;
            if !is_ignored_line(&line) {
                sample.lines.push(line);
            }
        }
        Ok(sample)
    }

    /// Joins the sample back in front of the rest of the stream.
    pub fn replay(self, rest: Box<dyn BufRead>) -> Box<dyn BufRead> {
        Box::new(Cursor::new(self.bytes).chain(rest))
    }

    /// Same as [`Sample::replay`], minus the leading blank and comment lines, which a CSV
    /// parser would otherwise take for the header.
    pub fn replay_without_leading(mut self, rest: Box<dyn BufRead>) -> Box<dyn BufRead> {
        self.bytes.drain(..self.leading_bytes);
        Box::new(Cursor::new(self.bytes).chain(rest))
    }
}

/// Share of the sample, in bytes, that may be invalid UTF-8 or control characters before the
/// input counts as binary. A Latin-1 export has invalid bytes only at its accented letters.
const MAX_NON_TEXT_SHARE: f64 = 0.1;

/// Returns why the start of an input is not text, or `None` when it is. Text exports contain no
/// NUL byte, while UTF-16 text has one in every ASCII character. Nor do they contain a high
/// share of invalid UTF-8 sequences and control characters other than tab, line feed, form feed
/// and carriage return.
pub fn binary_evidence(sample: &[u8]) -> Option<String> {
    if let Some(offset) = sample.iter().position(|&byte| byte == 0) {
        return Some(format!("a NUL byte at byte {offset}"));
    }

    let mut non_text = 0usize;
    for chunk in sample.utf8_chunks() {
        non_text += chunk.invalid().len();
        non_text += chunk
            .valid()
            .chars()
            .filter(|&c| c.is_control() && !matches!(c, '\t' | '\n' | '\x0c' | '\r'))
            .map(char::len_utf8)
            .sum::<usize>();
    }
    if non_text as f64 > sample.len() as f64 * MAX_NON_TEXT_SHARE {
        return Some(format!(
            "{non_text} of its first {} bytes are invalid UTF-8 or control characters",
            sample.len()
        ));
    }
    None
}

/// Decodes one line, replacing invalid UTF-8 so that binary input cannot stop the run.
pub fn decode_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// Decides whether an input of unknown format is a plain list of values (`true`) or a CSV file
/// with a header (`false`).
///
/// A list's first line is an address, or has no delimiter. The one exception is a single-column
/// CSV file such as `ip` followed by addresses: a first line that is not an address, followed
/// by lines most of which are, is taken as a header.
pub fn is_plain_list(lines: &[String]) -> bool {
    let Some(first) = lines.first() else {
        return true;
    };
    if parse_address(strip_comment(first)).is_ok() {
        return true;
    }
    if CANDIDATE_DELIMITERS
        .iter()
        .any(|&delimiter| count_unquoted(first, delimiter) > 0)
    {
        return false;
    }

    let rest = &lines[1..];
    let addresses = rest
        .iter()
        .filter(|line| parse_address(strip_comment(line)).is_ok())
        .count();
    let followed_by_addresses = !rest.is_empty() && addresses * 2 > rest.len();
    !(is_header_name(first) && followed_by_addresses)
}

/// Returns whether `line` can be a column name such as `ip`, `Source IP` or `src_addr`: short,
/// starting with a letter, and made of letters, digits, spaces, `_` and `-`.
fn is_header_name(line: &str) -> bool {
    let name = line.trim().trim_matches('"');
    let allowed = name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '_' || c == '-');
    let starts_with_letter = name.chars().next().is_some_and(char::is_alphabetic);
    name.len() <= 64 && allowed && starts_with_letter
}

/// Picks the delimiter that splits the header and the following lines into the same, largest
/// number of fields. Returns `,` when no candidate occurs in the header (a single column).
pub fn detect_delimiter(lines: &[String]) -> u8 {
    let Some(header) = lines.first() else {
        return b',';
    };

    let mut best = (b',', 0usize, 0usize);
    for &delimiter in &CANDIDATE_DELIMITERS {
        let header_count = count_unquoted(header, delimiter);
        if header_count == 0 {
            continue;
        }
        let consistent_lines = lines
            .iter()
            .filter(|line| count_unquoted(line, delimiter) == header_count)
            .count();

        let (_, best_consistent, best_count) = best;
        let better = consistent_lines > best_consistent
            || (consistent_lines == best_consistent && header_count > best_count);
        if better {
            best = (delimiter, consistent_lines, header_count);
        }
    }
    best.0
}

/// Counts `delimiter` outside double-quoted parts of one line.
fn count_unquoted(line: &str, delimiter: u8) -> usize {
    let mut in_quotes = false;
    let mut count = 0;
    for byte in line.bytes() {
        if byte == b'"' {
            in_quotes = !in_quotes;
        } else if byte == delimiter && !in_quotes {
            count += 1;
        }
    }
    count
}

/// Records examined to choose IP columns when `--column` is not given.
pub const COLUMN_SAMPLE_RECORDS: usize = 200;

/// Chooses the columns named by `--column`: an exact match first, then a case-insensitive one.
/// Returns the first name that matches no column as the error.
pub fn select_named_columns<'a>(
    header: &[String],
    requested: &'a [String],
) -> Result<Vec<usize>, &'a str> {
    let mut indices = Vec::new();
    for name in requested {
        let trimmed = name.trim();
        let index = header
            .iter()
            .position(|column| column == trimmed)
            .or_else(|| {
                header
                    .iter()
                    .position(|column| column.eq_ignore_ascii_case(trimmed))
            })
            .ok_or(name.as_str())?;
        if !indices.contains(&index) {
            indices.push(index);
        }
    }
    Ok(indices)
}

/// Chooses every column in which more than half of the non-blank sampled values parse as an
/// address (private or not). `rows` contains the cleaned cells of the sampled records.
pub fn detect_address_columns(column_count: usize, rows: &[Vec<String>]) -> Vec<usize> {
    (0..column_count)
        .filter(|&index| {
            let values: Vec<&str> = rows
                .iter()
                .filter_map(|row| row.get(index))
                .map(String::as_str)
                .filter(|value| !value.is_empty())
                .collect();
            let addresses = values
                .iter()
                .filter(|value| parse_address(value).is_ok())
                .count();
            addresses > 0 && addresses * 2 > values.len()
        })
        .collect()
}
