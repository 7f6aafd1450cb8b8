//! Reading a plain list: one value per line, with blank lines and `#` comments ignored.

use std::io::{self, BufRead};

use super::detect::decode_line;
use super::lines::read_line_capped;
use super::sink::{Flow, Sink};

/// Maximum length of a line of a plain list, in bytes without the line terminator. A longer line is read
/// and dropped, and becomes one `invalid` value, so a file with no newlines (binary data, a
/// wrong file) cannot grow memory.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Returns whether a line carries no value: blank, or a comment starting with `#`.
pub fn is_ignored_line(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Removes a trailing comment: a `#` at the start of the line or after whitespace.
///
/// A `#` glued to a value (`1.2.3.4#x`) is kept, so that the value is reported as invalid
/// instead of silently shortened.
pub fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let comment_start = bytes
        .iter()
        .enumerate()
        .find(|&(index, &byte)| {
            byte == b'#' && (index == 0 || bytes[index - 1].is_ascii_whitespace())
        })
        .map(|(index, _)| index);

    match comment_start {
        Some(index) => &line[..index],
        None => line,
    }
}

/// Reads a plain list from `reader` and offers each value to `sink`.
pub fn read_text(reader: &mut dyn BufRead, file: &str, sink: &mut Sink<'_>) -> io::Result<Flow> {
    let mut buffer = Vec::new();
    let mut line_number = 0u64;

    loop {
        buffer.clear();
        // Two bytes of room for `\r\n`, so a line exactly at the limit is kept whole.
        let consumed = read_line_capped(reader, &mut buffer, MAX_LINE_BYTES + 2)?;
        if consumed == 0 {
            return Ok(Flow::Continue);
        }
        line_number += 1;
        sink.stats.lines_read += 1;

        let line = decode_line(&buffer);
        if consumed > buffer.len() || line.len() > MAX_LINE_BYTES {
            let reason = format!(
                "line of {consumed} bytes with its line end, longer than the \
                 {MAX_LINE_BYTES}-byte limit of one value; skipped"
            );
            if sink.offer_overlong_line(&line, reason, file, line_number) == Flow::Stop {
                return Ok(Flow::Stop);
            }
            continue;
        }
        if is_ignored_line(&line) {
            sink.stats.ignored_lines += 1;
            continue;
        }

        if sink.offer(strip_comment(&line), file, line_number) == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
}
