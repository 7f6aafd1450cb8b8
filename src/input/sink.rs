//! The end of the input stage: classifies each value, drops repeats and hands items to `emit`.

use std::collections::HashSet;
use std::net::IpAddr;

use foldhash::fast::RandomState;

use super::InputStats;
use super::address::{clean_value, parse_address};
use super::special::non_global_reason;
use crate::model::{InputItem, Location};

/// Maximum number of characters of an invalid value kept in an item. Longer values are cut, because a line of binary
/// garbage would otherwise be copied into every status row and into the dedupe set.
pub(super) const MAX_RAW_CHARS: usize = 200;

/// Whether the caller wants more items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Receives every value of every input, keeps the dedupe sets and the counters.
pub struct Sink<'a> {
    emit: &'a mut dyn FnMut(InputItem) -> bool,
    include_private: bool,
    // Addresses are stored as integers: about 5 bytes per IPv4 entry and 17 per IPv6 entry
    // plus hash table slack, against 17 for every `IpAddr` and far more for strings. The
    // randomly seeded foldhash is used because SipHash took about 10 % of the `extract`
    // bench's time: `--extract` checks every repeat of an address in a log.
    seen_v4: HashSet<u32, RandomState>,
    seen_v6: HashSet<u128, RandomState>,
    seen_invalid: HashSet<String>,
    pub stats: InputStats,
}

impl<'a> Sink<'a> {
    pub fn new(include_private: bool, emit: &'a mut dyn FnMut(InputItem) -> bool) -> Self {
        Sink {
            emit,
            include_private,
            seen_v4: HashSet::default(),
            seen_v6: HashSet::default(),
            seen_invalid: HashSet::new(),
            stats: InputStats::default(),
        }
    }

    /// Classifies one raw value found at `file:line` and emits it unless it is blank or a repeat.
    pub fn offer(&mut self, raw: &str, file: &str, line: u64) -> Flow {
        self.stats.values_read += 1;

        let value = clean_value(raw);
        if value.is_empty() {
            self.stats.blank_values += 1;
            return Flow::Continue;
        }

        match parse_address(value) {
            Ok(ip) => self.offer_address(ip, file, line),
            Err(error) => self.offer_invalid(value, error.to_string(), file, line),
        }
    }

    /// Reports a line too long to read as a value. `line_start` is the part that was kept, of
    /// which at most the first characters are shown, and `reason` gives the line's length.
    pub fn offer_overlong_line(
        &mut self,
        line_start: &str,
        reason: String,
        file: &str,
        line: u64,
    ) -> Flow {
        self.stats.values_read += 1;
        self.offer_invalid(line_start.trim(), reason, file, line)
    }

    /// Offers one address found in free text at `file:line`; it was parsed by the extractor.
    pub fn offer_found(&mut self, ip: IpAddr, file: &str, line: u64) -> Flow {
        self.stats.values_read += 1;
        self.offer_address(ip, file, line)
    }

    /// Reports a whole line that could not be read (a JSON Lines input's line that is not
    /// JSON) as one `Invalid` item, so that it shows in the status output and the counts.
    pub fn offer_bad_line(&mut self, raw: &str, reason: String, file: &str, line: u64) -> Flow {
        self.stats.values_read += 1;
        self.offer_invalid(raw, reason, file, line)
    }

    fn offer_address(&mut self, ip: IpAddr, file: &str, line: u64) -> Flow {
        let first_time = match ip {
            IpAddr::V4(v4) => self.seen_v4.insert(u32::from(v4)),
            IpAddr::V6(v6) => self.seen_v6.insert(u128::from(v6)),
        };
        if !first_time {
            self.stats.duplicate_values += 1;
            return Flow::Continue;
        }

        let location = location(file, line);
        let item = match non_global_reason(&ip) {
            Some(reason) if !self.include_private => {
                self.stats.skipped_addresses += 1;
                InputItem::Skipped {
                    ip,
                    location,
                    reason: reason.to_string(),
                }
            }
            _ => {
                self.stats.lookup_addresses += 1;
                InputItem::Lookup { ip, location }
            }
        };
        self.send(item)
    }

    fn offer_invalid(&mut self, value: &str, reason: String, file: &str, line: u64) -> Flow {
        self.stats.invalid_values += 1;

        let raw = truncate_chars(value, MAX_RAW_CHARS);
        if self.seen_invalid.contains(&raw) {
            return Flow::Continue;
        }
        self.seen_invalid.insert(raw.clone());
        self.stats.distinct_invalid_values += 1;

        tracing::debug!(%file, line, value = %raw, %reason, "invalid input value");
        let item = InputItem::Invalid {
            raw,
            location: location(file, line),
            reason,
        };
        self.send(item)
    }

    fn send(&mut self, item: InputItem) -> Flow {
        if (self.emit)(item) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

fn location(file: &str, line: u64) -> Location {
    Location {
        file: file.to_string(),
        line,
    }
}

/// Cuts `value` to at most `max` characters, marking the cut with `…`.
pub(super) fn truncate_chars(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}
