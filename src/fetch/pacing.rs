//! Pacing of requests: the per-minute quota, the daily and monthly budgets, the shared probe
//! that takes over while the API answers 429, and the rule that the first request of a run
//! goes out alone.
//!
//! Every attempt, retries included, passes [`Pacer::admit`] exactly once, so every request sent
//! is counted against every quota. Nothing else in the fetch stage waits to pace requests.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, OwnedMutexGuard};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{LEASE_REQUESTS, LeaseBook};
use super::retry::Class;
use crate::cache::{Budgets, Cache, KeyHash, Reservation};
use crate::clock;

/// Quota settings of a run. `None` means no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSettings {
    pub per_minute: Option<NonZeroU32>,
    pub per_day: Option<NonZeroU32>,
    pub per_month: Option<NonZeroU32>,
    /// How long 429 answers must persist before the daily or monthly quota is taken as spent.
    pub probe_window: Duration,
    /// First wait between two quota probes; doubled after each 429, never past the window.
    pub probe_base: Duration,
    /// The budget window the account had already spent before the run (`--quota-from-api`).
    pub spent_at_start: Option<BudgetWindow>,
}

/// Budget window that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetWindow {
    Day,
    Month,
}

/// Reason the fetch stage stopped sending.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The configured daily or monthly budget is spent.
    BudgetSpent {
        window: BudgetWindow,
        limit: u32,
        resets_at: DateTime<Utc>,
    },
    /// The API kept answering 429 for the whole probe window. `code` is VirusTotal's error
    /// code of the last 429 (`QuotaExceededError` or `TooManyRequestsError`).
    QuotaExceeded {
        probes: u32,
        window: Duration,
        code: String,
    },
    /// The API rejected the key (401); `code` and `message` are VirusTotal's.
    Unauthorized {
        code: Option<String>,
        message: Option<String>,
    },
    /// The server's TLS certificate failed verification. `detail` is the error's cause chain.
    TlsCertificate { detail: String },
    /// A proxy returned 407 because its credentials are missing or wrong.
    ProxyAuth { detail: String },
    /// The request ledger in the cache file could not be read or written.
    LedgerFailed(String),
    /// The user interrupted the run.
    Cancelled,
}

impl Stop {
    /// Returns a one-line explanation for logs, the status column and the summary.
    pub fn describe(&self) -> String {
        match self {
            Stop::BudgetSpent {
                window,
                limit,
                resets_at,
            } => {
                let name = match window {
                    BudgetWindow::Day => "daily",
                    BudgetWindow::Month => "monthly",
                };
                format!(
                    "the {name} budget of {limit} requests is spent; it resets at {}",
                    resets_at.format("%Y-%m-%dT%H:%M:%SZ")
                )
            }
            Stop::QuotaExceeded {
                probes,
                window,
                code,
            } => format!(
                "the API answered 429 {code} to {probes} requests over {}s, so the daily or \
                 monthly quota of the key is taken as spent; daily quotas reset at 00:00 UTC, \
                 monthly ones on the 1st",
                window.as_secs()
            ),
            Stop::Unauthorized { code, message } => format!(
                "the API rejected the key (401 {}: {})",
                code.as_deref().unwrap_or("Unauthorized"),
                message.as_deref().unwrap_or("no message")
            ),
            Stop::TlsCertificate { detail } => {
                format!("the API server's TLS certificate was rejected: {detail}")
            }
            Stop::ProxyAuth { detail } => {
                format!("the proxy requires authentication (407): {detail}")
            }
            Stop::LedgerFailed(message) => format!("the request ledger failed: {message}"),
            Stop::Cancelled => "interrupted".to_string(),
        }
    }
}

/// Requests counted against the daily and monthly budgets, per UTC day and month.
#[derive(Debug)]
struct Budget {
    per_day: Option<NonZeroU32>,
    per_month: Option<NonZeroU32>,
    day: NaiveDate,
    used_day: u32,
    used_month: u32,
}

impl Budget {
    /// Counts one request at `now`, or returns the window that has no request left.
    fn reserve(&mut self, now: DateTime<Utc>) -> Result<(), Stop> {
        let today = now.date_naive();
        if today != self.day {
            if (today.year(), today.month()) != (self.day.year(), self.day.month()) {
                self.used_month = 0;
            }
            self.used_day = 0;
            self.day = today;
        }

        if let Some(limit) = self.per_day
            && self.used_day >= limit.get()
        {
            return Err(Stop::BudgetSpent {
                window: BudgetWindow::Day,
                limit: limit.get(),
                resets_at: next_day(today),
            });
        }
        if let Some(limit) = self.per_month
            && self.used_month >= limit.get()
        {
            return Err(Stop::BudgetSpent {
                window: BudgetWindow::Month,
                limit: limit.get(),
                resets_at: next_month(today),
            });
        }

        self.used_day += 1;
        self.used_month += 1;
        Ok(())
    }
}

fn next_day(day: NaiveDate) -> DateTime<Utc> {
    let next = day.succ_opt().unwrap_or(day);
    Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn next_month(day: NaiveDate) -> DateTime<Utc> {
    let (year, month) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(day);
    Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Store of the request counts checked against the daily and monthly budgets.
enum Ledger {
    /// In memory: the budgets hold within this run only.
    Local(Mutex<Budget>),
    /// In the cache file: the budgets, and the per-minute quota, hold across runs and across
    /// processes that share the file and the key.
    Shared {
        cache: std::sync::Arc<Cache>,
        key: KeyHash,
        budgets: Budgets,
    },
}

/// State of the shared quota probe while the API answers 429.
#[derive(Debug, Default)]
struct Probe {
    /// When the current run of 429 answers began; `None` while requests succeed.
    since: Option<Instant>,
    /// 429 answers received since `since`.
    throttled: u32,
    /// VirusTotal's error code of the last 429 answer.
    last_code: Option<String>,
    /// Whether the one request allowed during a run of 429s is out.
    in_flight: bool,
    next_at: Option<Instant>,
}

/// Permission to send one request, returned by [`Pacer::admit`] and handed back to
/// [`Pacer::record`] with the result.
pub struct Admission {
    /// Held by the first request of the run until its answer is known.
    first: Option<OwnedMutexGuard<bool>>,
    /// Whether this request is the quota probe of a run of 429 answers.
    probe: bool,
}

/// Shared pacing state of the fetch stage.
pub struct Pacer {
    per_minute: Option<DefaultDirectRateLimiter>,
    settings: QuotaSettings,
    ledger: Ledger,
    probe: Mutex<Probe>,
    probe_changed: Notify,
    /// Queues tasks for the per-minute limiter in arrival order. The limiter alone wakes
    /// waiters in no particular order, so a lookup could wait minutes at a small quota while
    /// later ones go first, and the ordered output would stall behind it.
    turn: tokio::sync::Mutex<()>,
    first_gate: std::sync::Arc<tokio::sync::Mutex<bool>>,
    first_done: AtomicBool,
    stop: Mutex<Option<Stop>>,
    /// Cancelled when the stage stops for any reason, to wake every waiting task. A child of
    /// the user's interrupt token: an interrupt stops the pacer, but a spent quota does not
    /// cancel requests already on the wire.
    halt: CancellationToken,
    requests_sent: AtomicU64,
    throttled: AtomicU64,
    /// Requests reserved in the shared ledger and not yet sent.
    lease: LeaseBook,
    /// Requests reserved per ledger transaction: 1 under a per-minute quota, whose pacing
    /// spaces requests anyway, else [`LEASE_REQUESTS`].
    lease_size: u32,
}

impl Pacer {
    /// Creates the pacer. It stops when `interrupt` is cancelled (Ctrl-C), and by itself when a
    /// quota runs out or the key is rejected. With `shared`, requests are counted in the cache
    /// file's ledger for that key hash instead of in memory.
    pub fn new(
        settings: QuotaSettings,
        shared: Option<(std::sync::Arc<Cache>, KeyHash)>,
        interrupt: &CancellationToken,
    ) -> Pacer {
        let halt = interrupt.child_token();
        let per_minute = settings
            .per_minute
            .map(|quota| RateLimiter::direct(minute_quota(quota)));
        let ledger = match shared {
            Some((cache, key)) => Ledger::Shared {
                cache,
                key,
                budgets: Budgets {
                    per_minute: settings.per_minute.map(NonZeroU32::get),
                    per_day: settings.per_day.map(NonZeroU32::get),
                    per_month: settings.per_month.map(NonZeroU32::get),
                },
            },
            None => Ledger::Local(Mutex::new(Budget {
                per_day: settings.per_day,
                per_month: settings.per_month,
                day: clock::now().date_naive(),
                used_day: 0,
                used_month: 0,
            })),
        };
        let spent_at_start = settings.spent_at_start;
        let lease_size = if settings.per_minute.is_some() {
            1
        } else {
            LEASE_REQUESTS
        };
        let pacer = Pacer {
            per_minute,
            settings,
            ledger,
            probe: Mutex::new(Probe::default()),
            probe_changed: Notify::new(),
            turn: tokio::sync::Mutex::new(()),
            first_gate: std::sync::Arc::new(tokio::sync::Mutex::new(false)),
            first_done: AtomicBool::new(false),
            stop: Mutex::new(None),
            halt,
            requests_sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            lease: LeaseBook::default(),
            lease_size,
        };
        if let Some(window) = spent_at_start {
            let today = clock::now().date_naive();
            let resets_at = match window {
                BudgetWindow::Day => next_day(today),
                BudgetWindow::Month => next_month(today),
            };
            pacer.halt_with(Stop::BudgetSpent {
                window,
                limit: 0,
                resets_at,
            });
        }
        pacer
    }

    /// Returns the reason the stage stopped, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        if let Some(stop) = lock(&self.stop).clone() {
            return Some(stop);
        }
        self.halt.is_cancelled().then_some(Stop::Cancelled)
    }

    /// Returns the token cancelled when the pacer stops, for tasks that wait between attempts.
    pub fn halt_token(&self) -> &CancellationToken {
        &self.halt
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }

    /// 429 answers received so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Waits until one more request may be sent, and counts it.
    pub async fn admit(&self) -> Result<Admission, Stop> {
        self.check_stopped()?;
        let first = self.wait_for_first_request().await?;
        let probe = self.wait_for_probe_slot().await?;

        // tokio's mutex is fair, so waiting tasks take their turn first come, first served.
        let turn = tokio::select! {
            turn = self.turn.lock() => turn,
            _ = self.halt.cancelled() => {
                self.release_probe(probe);
                return Err(self.stopped().unwrap_or(Stop::Cancelled));
            }
        };
        if let Some(limiter) = &self.per_minute {
            tokio::select! {
                _ = limiter.until_ready() => {}
                _ = self.halt.cancelled() => {
                    self.release_probe(probe);
                    return Err(self.stopped().unwrap_or(Stop::Cancelled));
                }
            }
        }

        let reserved = self.reserve().await;
        drop(turn);
        if let Err(stop) = reserved {
            self.release_probe(probe);
            self.halt_with(stop.clone());
            return Err(stop);
        }

        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        Ok(Admission { first, probe })
    }

    /// Records the class of the answer to an admitted request. `code` is VirusTotal's error
    /// code of the answer, if it had one.
    pub fn record(&self, admission: Admission, class: Class, code: Option<&str>) {
        match class {
            Class::Throttled => self.record_throttled(code),
            Class::Success | Class::NotFound | Class::Rejected => self.clear_probe(),
            Class::Retryable | Class::Unauthorized | Class::TlsCertificate | Class::ProxyAuth => {}
        }
        self.release_probe(admission.probe);

        // The first request's guard is released last, so that tasks waiting for it see a
        // rejected key (recorded by the caller through `halt_with`) before they send anything.
        if let Some(mut guard) = admission.first {
            *guard = true;
            self.first_done.store(true, Ordering::Release);
        }
    }

    /// Stops the stage for `stop` and wakes every waiting task. The first reason wins.
    pub fn halt_with(&self, stop: Stop) {
        {
            let mut current = lock(&self.stop);
            if current.is_none() {
                *current = Some(stop);
            }
        }
        self.halt.cancel();
        self.probe_changed.notify_waiters();
    }

    /// Counts one request against the budgets, waiting while the shared per-minute window of
    /// the ledger is full (another process sharing the key may have filled it).
    async fn reserve(&self) -> Result<(), Stop> {
        let (cache, key, budgets) = match &self.ledger {
            Ledger::Local(budget) => return lock(budget).reserve(clock::now()),
            Ledger::Shared {
                cache,
                key,
                budgets,
            } => (cache, key, budgets),
        };

        loop {
            let now = clock::now();
            if self.lease.take_one(now) {
                return Ok(());
            }
            let reservation = {
                let (cache, key, budgets) = (cache.clone(), key.clone(), *budgets);
                let (leftover, wanted) = (self.lease.take_leftover(), self.lease_size);
                tokio::task::spawn_blocking(move || {
                    if let Some(leftover) = leftover {
                        cache.release_requests(&key, leftover.reserved_at, leftover.remaining)?;
                    }
                    cache.reserve_requests(&key, now, &budgets, wanted)
                })
                .await
                .map_err(|err| Stop::LedgerFailed(err.to_string()))?
                .map_err(|err| Stop::LedgerFailed(err.to_string()))?
            };
            let reservation = match reservation {
                (0, outcome) => outcome,
                (granted, _) => {
                    self.lease.store(granted - 1, now);
                    Reservation::Granted
                }
            };

            let retry_at = match reservation {
                Reservation::Granted => return Ok(()),
                Reservation::DaySpent { limit, resets_at } => {
                    return Err(Stop::BudgetSpent {
                        window: BudgetWindow::Day,
                        limit,
                        resets_at,
                    });
                }
                Reservation::MonthSpent { limit, resets_at } => {
                    return Err(Stop::BudgetSpent {
                        window: BudgetWindow::Month,
                        limit,
                        resets_at,
                    });
                }
                Reservation::RetryAt(at) => at,
            };

            let wait = (retry_at - clock::now()).to_std().unwrap_or_default();
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "per-minute window of the shared ledger is full; waiting"
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.halt.cancelled() => return Err(self.stopped().unwrap_or(Stop::Cancelled)),
            }
        }
    }

    fn check_stopped(&self) -> Result<(), Stop> {
        match self.stopped() {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    async fn wait_for_first_request(&self) -> Result<Option<OwnedMutexGuard<bool>>, Stop> {
        if self.first_done.load(Ordering::Acquire) {
            return Ok(None);
        }
        let guard = tokio::select! {
            guard = self.first_gate.clone().lock_owned() => guard,
            _ = self.halt.cancelled() => return Err(self.stopped().unwrap_or(Stop::Cancelled)),
        };
        self.check_stopped()?;
        if *guard { Ok(None) } else { Ok(Some(guard)) }
    }

    /// While the API answers 429, lets one request at a time through, spaced by a doubling
    /// wait, instead of letting every waiting address spend a request.
    async fn wait_for_probe_slot(&self) -> Result<bool, Stop> {
        loop {
            let notified = self.probe_changed.notified();
            let wait_until = {
                let mut probe = lock(&self.probe);
                if probe.since.is_none() {
                    return Ok(false);
                }
                let now = Instant::now();
                match probe.next_at {
                    // The probe's answer, or a halt, will wake this task.
                    _ if probe.in_flight => None,
                    Some(at) if at > now => Some(at),
                    _ => {
                        probe.in_flight = true;
                        return Ok(true);
                    }
                }
            };

            tokio::select! {
                _ = notified => {}
                _ = sleep_until_or_forever(wait_until) => {}
                _ = self.halt.cancelled() => return Err(self.stopped().unwrap_or(Stop::Cancelled)),
            }
            self.check_stopped()?;
        }
    }

    fn record_throttled(&self, code: Option<&str>) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut probe = lock(&self.probe);
        let since = *probe.since.get_or_insert(now);
        probe.throttled += 1;
        if let Some(code) = code {
            probe.last_code = Some(code.to_string());
        }

        let window = self.settings.probe_window;
        if now.duration_since(since) >= window {
            let stop = Stop::QuotaExceeded {
                probes: probe.throttled,
                window,
                code: probe
                    .last_code
                    .clone()
                    .unwrap_or_else(|| "QuotaExceededError".to_string()),
            };
            drop(probe);
            self.halt_with(stop);
            return;
        }

        // Probes double their spacing but the last one lands at the end of the window, so the
        // decision never comes later than one window after the first 429.
        let exponent = probe.throttled.saturating_sub(1).min(20);
        let wait = self.settings.probe_base.saturating_mul(1u32 << exponent);
        let window_end = since + window;
        probe.next_at = Some((now + wait).min(window_end));
        drop(probe);
        self.probe_changed.notify_waiters();
    }

    fn clear_probe(&self) {
        let mut probe = lock(&self.probe);
        if probe.since.is_some() {
            *probe = Probe::default();
            drop(probe);
            self.probe_changed.notify_waiters();
        }
    }

    fn release_probe(&self, was_probe: bool) {
        if was_probe {
            lock(&self.probe).in_flight = false;
            self.probe_changed.notify_waiters();
        }
    }
}

impl Drop for Pacer {
    /// Gives the reserved requests that were never sent back to the shared ledger, so that the
    /// day and month counts match the requests sent. A process killed before this keeps them
    /// counted, at most one lease too many.
    fn drop(&mut self) {
        let (Ledger::Shared { cache, key, .. }, Some(leftover)) =
            (&self.ledger, self.lease.take_leftover())
        else {
            return;
        };
        if let Err(err) = cache.release_requests(key, leftover.reserved_at, leftover.remaining) {
            tracing::error!(error = %err, requests = leftover.remaining, "cannot give unsent requests back to the ledger; today's count stays that much too high");
        }
    }
}

/// Builds the governor quota for `per_minute` requests a minute.
///
/// Whether VirusTotal counts a sliding 60-second window or a calendar minute is not documented,
/// so no 60-second window of either kind may hold more than `per_minute` requests. Requests are
/// spaced evenly, 0.5% further apart than 60 s / quota. A burst of 1 per 500 of the quota (at
/// least 1) lets the run catch up after a late admission (a slow ledger transaction, a busy
/// machine) instead of losing that time for good: 6,000 requests at 6,000 a minute took 62.3 s
/// with a burst of 1 on a loaded 2-core machine. Any 60-second window then holds at most
/// burst + 60 s / spacing = 0.002 + 0.995 = 0.997 of the quota, so 0.3% of margin remains
/// for a server clock that sees requests closer together than they were sent.
pub fn minute_quota(per_minute: NonZeroU32) -> Quota {
    let spacing_nanos = 60_000_000_000u128 * 1005 / 1000 / u128::from(per_minute.get());
    let spacing = Duration::from_nanos(spacing_nanos as u64);
    let burst = NonZeroU32::new(per_minute.get() / 500).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(spacing)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Locks a std mutex, recovering the data if another task panicked while holding it: the
/// counters stay meaningful and a panic is reported elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QuotaSettings {
        QuotaSettings {
            per_minute: None,
            per_day: None,
            per_month: None,
            probe_window: Duration::from_secs(60),
            probe_base: Duration::from_secs(1),
            spent_at_start: None,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn minute_quota_allows_a_burst_of_one_in_500() {
        assert_eq!(
            minute_quota(NonZeroU32::new(6000).unwrap())
                .burst_size()
                .get(),
            12
        );
        assert_eq!(
            minute_quota(NonZeroU32::new(999).unwrap())
                .burst_size()
                .get(),
            1
        );
    }

    #[test]
    fn minute_quota_spaces_requests_evenly() {
        let quota = minute_quota(NonZeroU32::new(4).unwrap());
        assert_eq!(quota.burst_size().get(), 1);
        assert_eq!(quota.replenish_interval(), Duration::from_millis(15_075));
    }

    #[test]
    fn minute_quota_never_fits_more_than_the_quota_in_60_seconds() {
        for per_minute in [1u32, 4, 30, 499, 500, 1000, 6000, 60_000] {
            let quota = minute_quota(NonZeroU32::new(per_minute).unwrap());
            // With a burst of b, request k goes out at (k - b) * spacing at the earliest, so
            // request quota + 1 must fall more than 60 s after the first.
            let burst = quota.burst_size().get();
            let request_after_quota = quota.replenish_interval() * (per_minute + 1 - burst);
            assert!(
                request_after_quota > Duration::from_secs(60),
                "{per_minute}/min"
            );
        }
    }

    #[test]
    fn daily_budget_stops_at_the_limit_and_names_the_reset() {
        let mut budget = Budget {
            per_day: NonZeroU32::new(2),
            per_month: None,
            day: at("2026-12-04T10:00:00Z").date_naive(),
            used_day: 0,
            used_month: 0,
        };
        let now = at("2026-12-04T10:00:00Z");
        assert!(budget.reserve(now).is_ok());
        assert!(budget.reserve(now).is_ok());
        let stop = budget.reserve(now).unwrap_err();
        assert_eq!(
            stop,
            Stop::BudgetSpent {
                window: BudgetWindow::Day,
                limit: 2,
                resets_at: at("2026-12-05T00:00:00Z"),
            }
        );
        assert!(stop.describe().contains("2026-12-05T00:00:00Z"));
    }

    #[test]
    fn daily_budget_starts_again_the_next_utc_day() {
        let mut budget = Budget {
            per_day: NonZeroU32::new(1),
            per_month: NonZeroU32::new(10),
            day: at("2026-12-04T00:00:00Z").date_naive(),
            used_day: 0,
            used_month: 0,
        };
        assert!(budget.reserve(at("2026-12-04T23:59:59Z")).is_ok());
        assert!(budget.reserve(at("2026-12-04T23:59:59Z")).is_err());
        assert!(budget.reserve(at("2026-12-05T00:00:00Z")).is_ok());
        assert_eq!(budget.used_month, 2);
    }

    #[test]
    fn monthly_budget_resets_on_the_first() {
        let mut budget = Budget {
            per_day: None,
            per_month: NonZeroU32::new(1),
            day: at("2026-12-31T12:00:00Z").date_naive(),
            used_day: 0,
            used_month: 0,
        };
        assert!(budget.reserve(at("2026-12-31T12:00:00Z")).is_ok());
        match budget.reserve(at("2026-12-31T13:00:00Z")) {
            Err(Stop::BudgetSpent {
                window, resets_at, ..
            }) => {
                assert_eq!(window, BudgetWindow::Month);
                assert_eq!(resets_at, at("2027-01-01T00:00:00Z"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(budget.reserve(at("2027-01-01T00:00:00Z")).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_429_stops_after_a_bounded_number_of_probes() {
        let pacer = Pacer::new(settings(), None, &CancellationToken::new());
        let mut sent = 0;
        loop {
            match pacer.admit().await {
                Ok(admission) => {
                    sent += 1;
                    pacer.record(admission, Class::Throttled, Some("QuotaExceededError"));
                }
                Err(stop) => {
                    assert!(matches!(stop, Stop::QuotaExceeded { .. }), "{stop:?}");
                    break;
                }
            }
            assert!(sent < 20, "more than 20 probes");
        }
        // Requests at 0, 1, 3, 7, 15, 31 and 60 seconds after the first 429.
        assert_eq!(sent, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_ends_the_probe() {
        let pacer = Pacer::new(settings(), None, &CancellationToken::new());
        let first = pacer.admit().await.unwrap();
        pacer.record(first, Class::Throttled, None);
        let probe = pacer.admit().await.unwrap();
        pacer.record(probe, Class::Success, None);

        let started = Instant::now();
        let next = pacer.admit().await.unwrap();
        assert_eq!(Instant::now(), started, "no wait once the probe succeeded");
        pacer.record(next, Class::Success, None);
        assert!(pacer.stopped().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_key_stops_waiting_tasks() {
        let pacer = std::sync::Arc::new(Pacer::new(settings(), None, &CancellationToken::new()));
        let first = pacer.admit().await.unwrap();

        let waiting = {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.admit().await.map(|_| ()) })
        };
        tokio::task::yield_now().await;

        pacer.halt_with(Stop::Unauthorized {
            code: Some("WrongCredentialsError".into()),
            message: None,
        });
        pacer.record(first, Class::Unauthorized, None);

        let result = waiting.await.unwrap();
        assert!(matches!(result, Err(Stop::Unauthorized { .. })));
        assert_eq!(pacer.requests_sent(), 1);
    }
}
