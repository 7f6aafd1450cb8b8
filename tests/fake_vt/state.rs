//! Per-key quota accounting and the counters tests read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::fault::Fault;

const HOUR: Duration = Duration::from_secs(3600);

/// Allowances of one API key. `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyQuota {
    /// Accepted requests in any sliding 60-second window (see
    /// `FakeVtConfig::quota_minute`).
    pub per_minute: Option<u32>,
    /// Accepted requests over the server's lifetime, plus `used_today`.
    pub per_day: Option<u64>,
    /// Accepted requests over the server's lifetime, plus `used_this_month`.
    pub per_month: Option<u64>,
    /// Requests counted against `per_day` before the server starts.
    pub used_today: u64,
    /// Requests counted against `per_month` before the server starts.
    pub used_this_month: u64,
}

impl KeyQuota {
    /// No limit at all.
    pub fn unlimited() -> Self {
        KeyQuota::default()
    }

    /// Returns the public API's allowances: 4 per minute, 500 per day, 15,500
    /// per month.
    pub fn public_api() -> Self {
        KeyQuota {
            per_minute: Some(4),
            per_day: Some(500),
            per_month: Some(15_500),
            ..KeyQuota::default()
        }
    }

    /// Only a per-minute limit.
    pub fn per_minute(limit: u32) -> Self {
        KeyQuota {
            per_minute: Some(limit),
            ..KeyQuota::default()
        }
    }
}

/// The window whose allowance a rejected request would have exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaWindow {
    Minute,
    Day,
    Month,
}

/// Usage of one key since the server started.
#[derive(Debug)]
pub(super) struct QuotaState {
    pub(super) quota: KeyQuota,
    /// Length of the per-minute window: 60 s except in tests of the server.
    minute: Duration,
    /// Arrival of each accepted request in the last hour, oldest first.
    accepted: VecDeque<Instant>,
    day_used: u64,
    month_used: u64,
}

impl QuotaState {
    pub(super) fn new(quota: KeyQuota, minute: Duration) -> Self {
        QuotaState {
            quota,
            minute,
            accepted: VecDeque::new(),
            day_used: quota.used_today,
            month_used: quota.used_this_month,
        }
    }

    /// Counts the request against every window, or returns the exhausted
    /// window without counting it. The longest exhausted window is reported.
    pub(super) fn try_accept(&mut self, now: Instant) -> Result<(), QuotaWindow> {
        self.forget_before(now);

        if self
            .quota
            .per_month
            .is_some_and(|limit| self.month_used >= limit)
        {
            return Err(QuotaWindow::Month);
        }
        if self
            .quota
            .per_day
            .is_some_and(|limit| self.day_used >= limit)
        {
            return Err(QuotaWindow::Day);
        }
        if let Some(limit) = self.quota.per_minute
            && self.in_last(now, self.minute) >= limit as usize
        {
            return Err(QuotaWindow::Minute);
        }

        self.accepted.push_back(now);
        self.day_used += 1;
        self.month_used += 1;
        Ok(())
    }

    /// Requests used in the last hour, today and this month.
    pub(super) fn usage(&mut self, now: Instant) -> (u64, u64, u64) {
        self.forget_before(now);
        (self.accepted.len() as u64, self.day_used, self.month_used)
    }

    /// Counts accepted requests no older than `window`. The bound is
    /// inclusive, so a request exactly one window old still counts.
    fn in_last(&self, now: Instant, window: Duration) -> usize {
        self.accepted
            .iter()
            .rev()
            .take_while(|&&at| now.duration_since(at) <= window)
            .count()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.accepted.front() {
            if now.duration_since(oldest) <= HOUR {
                break;
            }
            self.accepted.pop_front();
        }
    }
}

/// One request as the server read it and replied to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub seq: u64,
    pub arrived: Instant,
    pub method: String,
    /// Request target as sent, query string included.
    pub path: String,
    /// Canonical address of an address lookup.
    pub ip: Option<String>,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Status line sent, `None` when the connection was reset or dropped
    /// before one went out.
    pub status: Option<u16>,
    pub fault: Fault,
    /// True when the whole response reached the socket.
    pub delivered: bool,
}

impl RequestRecord {
    /// Returns the first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Requests rejected by quota enforcement, by exhausted window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaRejections {
    pub minute: u64,
    pub day: u64,
    pub month: u64,
}

impl QuotaRejections {
    pub fn total(&self) -> u64 {
        self.minute + self.day + self.month
    }
}

/// Counters since the server started or since the last `reset_stats`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Requests read, whatever their outcome.
    pub total_requests: u64,
    /// Address lookups per canonical address, whatever their outcome.
    pub requests_per_ip: HashMap<String, u32>,
    /// Address lookups that got 200 with the genuine document fully written.
    pub successes_per_ip: HashMap<String, u32>,
    /// Relationship page requests per (canonical address, relationship name),
    /// whatever their outcome, both forms together. They are not counted in
    /// `requests_per_ip`.
    pub relationship_requests: HashMap<(String, String), u32>,
    /// Responses per status line sent, faults included.
    pub status_counts: BTreeMap<u16, u64>,
    /// 429 responses from quota enforcement (not from injected faults).
    pub quota_rejections: QuotaRejections,
    /// Injected faults per [`Fault::kind`], `none` excluded.
    pub faults: BTreeMap<&'static str, u64>,
    /// Maximum number of requests being handled at the same time.
    pub max_in_flight: usize,
    /// Arrival of every request, in order.
    pub arrivals: Vec<Instant>,
    /// Details of the first `max_recorded_requests` requests, in arrival
    /// order. `status` and `delivered` are filled in as the response goes out.
    pub requests: Vec<RequestRecord>,
    /// Requests left out of `requests` because the cap was reached.
    pub unrecorded_requests: u64,
}

impl Stats {
    /// Returns the number of lookups of `ip` that got its document.
    pub fn successes(&self, ip: &str) -> u32 {
        self.successes_per_ip.get(ip).copied().unwrap_or(0)
    }

    /// Returns the number of lookups of `ip`.
    pub fn requests_for(&self, ip: &str) -> u32 {
        self.requests_per_ip.get(ip).copied().unwrap_or(0)
    }

    /// Returns the number of page requests for `relationship` of `ip`.
    pub fn relationship_requests_for(&self, ip: &str, relationship: &str) -> u32 {
        self.relationship_requests
            .get(&(ip.to_string(), relationship.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Returns the number of relationship page requests of every address.
    pub fn relationship_requests_total(&self) -> u32 {
        self.relationship_requests.values().sum()
    }

    /// Returns the number of responses sent with `status`.
    pub fn status_count(&self, status: u16) -> u64 {
        self.status_counts.get(&status).copied().unwrap_or(0)
    }

    /// Computes the maximum number of arrivals within any window of length
    /// `window`, both ends included, over every request the server read.
    pub fn max_in_window(&self, window: Duration) -> usize {
        let mut sorted = self.arrivals.clone();
        sorted.sort();
        let mut start = 0;
        let mut max = 0;
        for end in 0..sorted.len() {
            while sorted[end].duration_since(sorted[start]) > window {
                start += 1;
            }
            max = max.max(end - start + 1);
        }
        max
    }
}
