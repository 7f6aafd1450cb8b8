//! Reading a plain list: one value per line, with blank lines and `#` comments ignored.

use std::io::{self, BufRead};

use super::detect::decode_line;
use super::sink::{Flow, Sink};

/// Maximum number of bytes of one line kept in memory. The rest of a longer line is read and dropped, so a file with
/// no newlines (binary data, a wrong file) cannot grow memory.
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
        let consumed = read_line_capped(reader, &mut buffer, MAX_LINE_BYTES)?;
        if consumed == 0 {
            return Ok(Flow::Continue);
        }
        line_number += 1;
        sink.stats.lines_read += 1;

        let line = decode_line(&buffer);
        if is_ignored_line(&line) {
            sink.stats.ignored_lines += 1;
            continue;
        }

        if sink.offer(strip_comment(&line), file, line_number) == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
}

/// Reads one line including its `\n`, keeping at most `max` bytes of it in `buffer`.
/// Returns the number of bytes consumed from `reader`, 0 at the end of the input.
fn read_line_capped(
    reader: &mut dyn BufRead,
    buffer: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(consumed);
        }

        let (chunk, found_newline) = match available.iter().position(|&byte| byte == b'\n') {
            Some(index) => (&available[..=index], true),
            None => (available, false),
        };
        let room = max.saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);

        let length = chunk.len();
        reader.consume(length);
        consumed += length;
        if found_newline {
            return Ok(consumed);
        }
    }
}
