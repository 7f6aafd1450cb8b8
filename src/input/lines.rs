//! Reading lines with a bound on the bytes held, so that one huge line (binary data, a file
//! without newlines, an unclosed quote) cannot grow memory.
//!
//! Plain lists read each line with [`read_line_capped`]. CSV input goes through [`LineLimit`],
//! which drops every physical line longer than [`MAX_CSV_LINE_BYTES`] before the CSV parser
//! reads it. The line is recorded in an [`OverlongLog`], so the table reader can report it as
//! an invalid value at its place in the input.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// Maximum length of a physical line of a CSV input, in bytes without the line terminator.
/// Rows of real firewall exports are a few hundred bytes, so a longer line is binary data or an
/// unclosed quote, and the CSV parser would otherwise hold all of it in memory.
pub const MAX_CSV_LINE_BYTES: usize = 1024 * 1024;

/// Characters of an over-long line kept for the report.
const KEPT_START_CHARS: usize = 200;

/// Reads one line including its `\n`, keeping at most `max` bytes of it in `buffer`.
/// Returns the number of bytes consumed from `reader`, 0 at the end of the input.
pub fn read_line_capped(
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

        let (chunk, found_newline) = match memchr::memchr(b'\n', available) {
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

/// A line dropped by [`LineLimit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlongLine {
    /// 1-based line number in the stream that `LineLimit` wraps.
    pub line: u64,
    /// Length in bytes, without the line terminator.
    pub length: u64,
    /// The first characters of the line, decoded lossily, for the report.
    pub start: String,
}

/// Lines dropped so far and not yet reported, oldest first. Shared between the [`LineLimit`]
/// inside the CSV parser and the table reader, on the input thread only.
pub type OverlongLog = Rc<RefCell<VecDeque<OverlongLine>>>;

/// Passes a byte stream through line by line, replacing each line longer than the limit with
/// its bare terminator.
///
/// Lines end at `\n` or `\r`, so a file with old Mac line endings is not one long line. Line
/// numbers count `\n` only, as the table reader's own line counter does.
pub struct LineLimit<R> {
    inner: R,
    limit: usize,
    /// The current segment (a line or a part of a CRLF pair), with its terminator.
    segment: Vec<u8>,
    /// Bytes of `segment` already handed to the reader.
    handed: usize,
    /// Number of `\n` bytes before `segment`.
    newlines: u64,
    log: OverlongLog,
}

impl<R: BufRead> LineLimit<R> {
    /// Wraps `inner`, dropping lines longer than `limit` bytes and recording them in `log`.
    pub fn new(inner: R, limit: usize, log: OverlongLog) -> Self {
        LineLimit {
            inner,
            limit,
            segment: Vec::new(),
            handed: 0,
            newlines: 0,
            log,
        }
    }

    /// Reads the next segment into `self.segment`. Returns `false` at the end of the input,
    /// when nothing was left to read.
    fn next_segment(&mut self) -> io::Result<bool> {
        if self.segment.last() == Some(&b'\n') {
            self.newlines += 1;
        }
        self.segment.clear();
        self.handed = 0;

        let mut length = 0u64;
        let mut start = Vec::new();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                if length == 0 {
                    return Ok(false);
                }
                self.finish_segment(length, &start, None);
                return Ok(true);
            }
            let end = memchr::memchr2(b'\n', b'\r', available);
            let content = &available[..end.unwrap_or(available.len())];

            // One byte past the limit is enough to know the line is too long.
            let room = (self.limit + 1).saturating_sub(self.segment.len());
            self.segment
                .extend_from_slice(&content[..content.len().min(room)]);
            let room = (KEPT_START_CHARS * 4).saturating_sub(start.len());
            start.extend_from_slice(&content[..content.len().min(room)]);
            length += content.len() as u64;

            if let Some(index) = end {
                let terminator = available[index];
                self.inner.consume(index + 1);
                self.finish_segment(length, &start, Some(terminator));
                return Ok(true);
            }
            let consumed = available.len();
            self.inner.consume(consumed);
        }
    }

    /// Keeps the segment if it is within the limit, or records it and keeps only its
    /// terminator.
    fn finish_segment(&mut self, length: u64, start: &[u8], terminator: Option<u8>) {
        if length > self.limit as u64 {
            let text: String = String::from_utf8_lossy(start)
                .chars()
                .take(KEPT_START_CHARS)
                .collect();
            self.log.borrow_mut().push_back(OverlongLine {
                line: self.newlines + 1,
                length,
                start: text,
            });
            self.segment.clear();
        }
        self.segment.extend(terminator);
    }
}

impl<R: BufRead> Read for LineLimit<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(buffer.len());
        buffer[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: BufRead> BufRead for LineLimit<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // A dropped line without a terminator leaves an empty segment, so loop until there
        // are bytes or the input ends.
        while self.handed >= self.segment.len() {
            if !self.next_segment()? {
                return Ok(&[]);
            }
        }
        Ok(&self.segment[self.handed..])
    }

    fn consume(&mut self, amount: usize) {
        self.handed = (self.handed + amount).min(self.segment.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(input: &[u8], limit: usize) -> (Vec<u8>, Vec<OverlongLine>) {
        let log = OverlongLog::default();
        let mut limited = LineLimit::new(input, limit, log.clone());
        let mut output = Vec::new();
        limited.read_to_end(&mut output).unwrap();
        let dropped = log.borrow().iter().cloned().collect();
        (output, dropped)
    }

    #[test]
    fn short_lines_pass_unchanged() {
        let input = b"ip,port\r\n8.8.8.8,53\n\n1.1.1.1,443";
        let (output, dropped) = pass(input, 16);
        assert_eq!(output, input);
        assert!(dropped.is_empty());
    }

    #[test]
    fn long_line_becomes_its_terminator() {
        let input = b"ip\nxxxxxxxxxxxxxxxxxxxxxxxx\r\n8.8.8.8\n";
        let (output, dropped) = pass(input, 10);
        assert_eq!(output, b"ip\n\r\n8.8.8.8\n");
        assert_eq!(
            dropped,
            [OverlongLine {
                line: 2,
                length: 24,
                start: "x".repeat(24),
            }]
        );
    }

    #[test]
    fn line_at_the_limit_is_kept() {
        let (output, dropped) = pass(b"0123456789\n", 10);
        assert_eq!(output, b"0123456789\n");
        assert!(dropped.is_empty());
    }

    #[test]
    fn unterminated_long_last_line_is_dropped() {
        let (output, dropped) = pass(b"a\nbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 4);
        assert_eq!(output, b"a\n");
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].line, 2);
        assert_eq!(dropped[0].length, 28);
    }

    #[test]
    fn report_keeps_only_the_start() {
        let long = "é".repeat(5_000);
        let (_, dropped) = pass(long.as_bytes(), 100);
        assert_eq!(dropped[0].start.chars().count(), KEPT_START_CHARS);
        assert_eq!(dropped[0].length, 10_000);
    }

    #[test]
    fn capped_read_keeps_max_bytes() {
        let mut reader: &[u8] = b"abcdefgh\nij";
        let mut buffer = Vec::new();
        assert_eq!(read_line_capped(&mut reader, &mut buffer, 4).unwrap(), 9);
        assert_eq!(buffer, b"abcd");
        buffer.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buffer, 4).unwrap(), 2);
        assert_eq!(buffer, b"ij");
        buffer.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buffer, 4).unwrap(), 0);
    }
}
