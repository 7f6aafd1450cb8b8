//! What the user sees about a run while it goes and when it ends: live counters, the progress
//! display, and the final summary (stderr, and JSON for schedulers).

pub mod progress;
pub mod summary;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::model::{AnswerSource, Status};

/// Live counters of rows written, shared by the pipeline and the progress display.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub not_found: AtomicU64,
    pub invalid: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub quota_exhausted: AtomicU64,
    /// Rows answered from the cache.
    pub cached: AtomicU64,
    /// Distinct values the input stage has handed over so far.
    pub queued: AtomicU64,
    /// Set once the input stage has read everything, so `queued` is the final total.
    pub input_done: AtomicBool,
}

/// A consistent-enough copy of the counters for display.
#[derive(Debug, Default, Clone, Copy)]
pub struct TallySnapshot {
    pub ok: u64,
    pub not_found: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub failed: u64,
    pub quota_exhausted: u64,
    pub cached: u64,
    pub queued: u64,
    pub input_done: bool,
}

impl TallySnapshot {
    /// Rows written so far.
    pub fn done(&self) -> u64 {
        self.ok + self.not_found + self.invalid + self.skipped + self.failed + self.quota_exhausted
    }
}

impl Tally {
    /// Counts one written row.
    pub fn record(&self, status: Status, source: Option<AnswerSource>) {
        let counter = match status {
            Status::Ok => &self.ok,
            Status::NotFound => &self.not_found,
            Status::Invalid => &self.invalid,
            Status::Skipped => &self.skipped,
            Status::Failed => &self.failed,
            Status::QuotaExhausted => &self.quota_exhausted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if source == Some(AnswerSource::Cache) {
            self.cached.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Returns a copy of the counters.
    pub fn snapshot(&self) -> TallySnapshot {
        TallySnapshot {
            ok: self.ok.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            quota_exhausted: self.quota_exhausted.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            input_done: self.input_done.load(Ordering::Relaxed),
        }
    }
}

/// Escapes control characters in text that came from outside (file names, API messages)
/// before it reaches a terminal, so it cannot move the cursor or change colours.
pub fn sanitize_for_terminal(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Like [`sanitize_for_terminal`], but keeps line breaks of multi-line messages.
pub fn sanitize_for_terminal_keep_newlines(text: &str) -> String {
    text.split('\n')
        .map(sanitize_for_terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_status_once() {
        let tally = Tally::default();
        tally.record(Status::Ok, Some(AnswerSource::Api));
        tally.record(Status::Ok, Some(AnswerSource::Cache));
        tally.record(Status::Invalid, None);
        let snapshot = tally.snapshot();
        assert_eq!(snapshot.ok, 2);
        assert_eq!(snapshot.invalid, 1);
        assert_eq!(snapshot.cached, 1);
        assert_eq!(snapshot.done(), 3);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize_for_terminal("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }
}
