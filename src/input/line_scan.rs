//! Splitting a byte stream into lines without copying them, for `--extract`.
//!
//! Lines are handed out as slices of the reader's own buffer, so a line costs no allocation
//! and no copy unless it straddles two buffer fills. Only that tail is copied, into one
//! reused buffer.

use std::io::{self, BufRead};

use super::sink::Flow;

/// One line of an input.
pub struct Line<'a> {
    /// 1-based physical line number.
    pub number: u64,
    /// The line without its `\n` or `\r\n`, cut to the scanner's maximum length.
    pub text: &'a [u8],
    /// Whether bytes past the maximum length were dropped.
    pub truncated: bool,
}

/// Calls `visit` with every line of `reader` in order, and stops early when it returns
/// [`Flow::Stop`]. A last line without a terminator counts as a line.
///
/// At most `max_bytes` of one line are kept. The rest is read and dropped, so a stream with
/// no newline (binary data, a wrong file) cannot grow memory.
pub fn for_each_line(
    reader: &mut dyn BufRead,
    max_bytes: usize,
    visit: &mut dyn FnMut(Line<'_>) -> Flow,
) -> io::Result<Flow> {
    let mut pending = Pending::default();
    let mut number = 0u64;

    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            if pending.is_empty() {
                return Ok(Flow::Continue);
            }
            number += 1;
            return Ok(visit(pending.line(&[], number, max_bytes)));
        }

        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', available) {
            number += 1;
            let piece = &available[start..newline];
            let line = if pending.is_empty() {
                Line {
                    number,
                    text: trim_carriage_return(&piece[..piece.len().min(max_bytes)]),
                    truncated: piece.len() > max_bytes,
                }
            } else {
                pending.line(piece, number, max_bytes)
            };
            let flow = visit(line);
            pending.clear();
            start = newline + 1;
            if flow == Flow::Stop {
                reader.consume(start);
                return Ok(Flow::Stop);
            }
        }

        pending.push(&available[start..], max_bytes);
        let length = available.len();
        reader.consume(length);
    }
}

/// The start of a line that continues in the next buffer fill.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.truncated
    }

    fn push(&mut self, piece: &[u8], max_bytes: usize) {
        let room = max_bytes.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&piece[..piece.len().min(room)]);
        self.truncated |= piece.len() > room;
    }

    /// Completes the line with its last `piece` and returns it.
    fn line(&mut self, piece: &[u8], number: u64, max_bytes: usize) -> Line<'_> {
        self.push(piece, max_bytes);
        Line {
            number,
            text: trim_carriage_return(&self.bytes),
            truncated: self.truncated,
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.truncated = false;
    }
}

fn trim_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
