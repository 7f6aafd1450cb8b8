//! Accept loop, per-connection request loop, routing and fault delivery.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::FakeVtConfig;
use super::document::expected_document_bytes;
use super::fault::{Fault, RequestInfo};
use super::http::{self, ReadError, Request, Response};
use super::relationships::{self, PageQuery};
use super::state::{QuotaState, QuotaWindow, RequestRecord, Stats};

/// Allowances reported for a window without a limit: the values that
/// VirusTotal's example responses show for keys without a practical cap.
const UNLIMITED_DAILY_OR_MONTHLY: u64 = 1_000_000_000;
const UNLIMITED_HOURLY: u64 = 60_000_000_000;

/// State shared by every connection of one server.
pub(super) struct Shared {
    config: FakeVtConfig,
    quotas: Mutex<HashMap<String, QuotaState>>,
    stats: Mutex<Stats>,
    next_seq: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Shared {
    pub(super) fn new(config: FakeVtConfig) -> Self {
        let quotas = config
            .keys
            .iter()
            .map(|(key, quota)| (key.clone(), QuotaState::new(*quota, config.quota_minute)))
            .collect();
        Shared {
            config,
            quotas: Mutex::new(quotas),
            stats: Mutex::new(Stats::default()),
            next_seq: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    pub(super) fn stats(&self) -> Stats {
        let mut stats = lock(&self.stats).clone();
        stats.max_in_flight = self.max_in_flight.load(Ordering::SeqCst);
        stats
    }

    pub(super) fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub(super) fn reset_quotas(&self) {
        let mut quotas = lock(&self.quotas);
        for state in quotas.values_mut() {
            *state = QuotaState::new(state.quota, self.config.quota_minute);
        }
    }
}

/// Locks `mutex`, ignoring poisoning: a panicking test thread must not hide
/// the counters from the test's own assertions.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Accepts connections until `shutdown` turns true.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                lock(&shared.stats).connections += 1;
                // Heads and bodies go out in separate writes during stalls, so
                // Nagle's algorithm would add delays the test did not ask for.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    Arc::clone(&shared),
                    shutdown.clone(),
                ));
            }
            Err(error) => {
                eprintln!("fake_vt: accept failed: {error}");
                // Out of file descriptors and similar errors persist for a
                // moment: retrying at once would spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Counts a request as in flight until dropped, even when the connection
/// task is cancelled at shutdown. `deliver` drops it just before the write
/// that completes the response, so a client that has its response never
/// finds its request still counted.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Delivery mode of a prepared response.
enum Delivery {
    Normal,
    Reset,
    Truncated,
    Stall(Duration),
}

/// A response decided for one request, with what the counters need.
struct Prepared {
    response: Response,
    delivery: Delivery,
    extra_latency: Duration,
    /// Address whose genuine document `response` carries.
    document_ip: Option<String>,
    slot: RecordSlot,
}

async fn serve_connection(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buffer = Vec::new();
    loop {
        let request = match http::read_request(&mut stream, &mut buffer, &mut shutdown).await {
            Ok(request) => request,
            Err(ReadError::Closed | ReadError::Io(_)) => return,
            Err(ReadError::Invalid(reason)) => {
                // A malformed request is a client bug worth seeing in the
                // test output, and it is not counted in the stats.
                eprintln!("fake_vt: rejected a malformed request with 400: {reason}");
                let response = Response::error(400, "BadRequestError", reason);
                let mut bytes = response.head(true);
                bytes.extend_from_slice(&response.body);
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
        };
        let arrived = Instant::now();
        let in_flight = InFlight::enter(&shared);
        let keep_alive = request.keep_alive();

        let prepared = prepare(&shared, &request, arrived);
        let latency = shared.config.latency + prepared.extra_latency;
        if !latency.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(latency) => {}
                _ = shutdown.changed() => return,
            }
        }

        let open = deliver(
            &mut stream,
            &shared,
            prepared,
            in_flight,
            keep_alive,
            &mut shutdown,
        )
        .await;
        if !open || !keep_alive {
            return;
        }
    }
}

/// Sends `prepared` and records the outcome. Returns whether the connection
/// can carry another request.
///
/// Counters are updated just before the write that makes an outcome visible
/// to the client, and reverted if that write fails, so a client that has read
/// a response always finds it counted.
async fn deliver(
    stream: &mut TcpStream,
    shared: &Shared,
    prepared: Prepared,
    in_flight: InFlight<'_>,
    keep_alive: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Prepared {
        response,
        delivery,
        document_ip,
        slot,
        ..
    } = prepared;
    let head = response.head(!keep_alive);
    let success_ip = document_ip.as_deref();

    match delivery {
        Delivery::Reset => {
            // SO_LINGER 0 turns the close into a RST instead of a FIN.
            let _ = stream.set_zero_linger();
            drop(in_flight);
            false
        }
        Delivery::Truncated => {
            let mut bytes = head;
            bytes.extend_from_slice(&response.body[..response.body.len() / 2]);
            count_status(shared, slot, response.status, Change::Add);
            drop(in_flight);
            if stream.write_all(&bytes).await.is_err() {
                count_status(shared, slot, response.status, Change::Revert);
            }
            let _ = stream.shutdown().await;
            false
        }
        Delivery::Stall(pause) => {
            count_status(shared, slot, response.status, Change::Add);
            if stream.write_all(&head).await.is_err() {
                count_status(shared, slot, response.status, Change::Revert);
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return false,
            }
            if !peer_still_open(stream) {
                return false;
            }
            count_delivery(shared, slot, success_ip, Change::Add);
            drop(in_flight);
            if stream.write_all(&response.body).await.is_err() {
                count_delivery(shared, slot, success_ip, Change::Revert);
                return false;
            }
            finish_connection(stream, keep_alive).await
        }
        Delivery::Normal => {
            let mut bytes = head;
            bytes.extend_from_slice(&response.body);
            count_status(shared, slot, response.status, Change::Add);
            count_delivery(shared, slot, success_ip, Change::Add);
            drop(in_flight);
            if stream.write_all(&bytes).await.is_err() {
                count_status(shared, slot, response.status, Change::Revert);
                count_delivery(shared, slot, success_ip, Change::Revert);
                return false;
            }
            finish_connection(stream, keep_alive).await
        }
    }
}

/// Closes the connection gracefully unless it is kept alive. Returns whether
/// it stays open.
async fn finish_connection(stream: &mut TcpStream, keep_alive: bool) -> bool {
    if !keep_alive {
        let _ = stream.shutdown().await;
    }
    keep_alive
}

/// Checks without blocking whether the client has closed its end, as a
/// client that timed out during a stall does.
fn peer_still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match stream.try_read(&mut probe) {
        Ok(0) => false,
        // A byte of the next pipelined request: the client is still there.
        // NOTE: that byte is lost, so the next request on this connection
        // fails to parse. Clients do not pipeline behind a stalled response.
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// Position of a request's record in [`Stats::requests`], checked against its
/// sequence number because `reset_stats` may have cleared the list since.
#[derive(Clone, Copy)]
struct RecordSlot {
    index: Option<usize>,
    seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Revert,
}

fn record_at(stats: &mut Stats, slot: RecordSlot) -> Option<&mut RequestRecord> {
    let record = stats.requests.get_mut(slot.index?)?;
    (record.seq == slot.seq).then_some(record)
}

fn count_status(shared: &Shared, slot: RecordSlot, status: u16, change: Change) {
    let mut stats = lock(&shared.stats);
    let count = stats.status_counts.entry(status).or_default();
    match change {
        Change::Add => *count += 1,
        Change::Revert => *count = count.saturating_sub(1),
    }
    if let Some(record) = record_at(&mut stats, slot) {
        record.status = (change == Change::Add).then_some(status);
    }
}

fn count_delivery(shared: &Shared, slot: RecordSlot, success_ip: Option<&str>, change: Change) {
    let mut stats = lock(&shared.stats);
    if let Some(ip) = success_ip {
        let count = stats.successes_per_ip.entry(ip.to_string()).or_default();
        match change {
            Change::Add => *count += 1,
            Change::Revert => *count = count.saturating_sub(1),
        }
    }
    if let Some(record) = record_at(&mut stats, slot) {
        record.delivered = change == Change::Add;
    }
}

/// Endpoints this server implements, after the `/api/v3` prefix.
enum Route {
    IpAddress { text: String },
    Relationship { text: String, query: PageQuery },
    OverallQuotas,
    Unknown,
}

fn route(target: &str) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some(rest) = path.strip_prefix("/api/v3/") else {
        return Route::Unknown;
    };
    let decode = |text: &str| http::percent_decode(text).unwrap_or_else(|| text.to_string());
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["ip_addresses", ip] => Route::IpAddress { text: decode(ip) },
        ["ip_addresses", ip, relationship] => Route::Relationship {
            text: decode(ip),
            query: page_query(relationship, false, query),
        },
        ["ip_addresses", ip, "relationships", relationship] => Route::Relationship {
            text: decode(ip),
            query: page_query(relationship, true, query),
        },
        ["users", _id, "overall_quotas"] => Route::OverallQuotas,
        _ => Route::Unknown,
    }
}

/// Reads `limit` and `cursor` from a query string in form encoding, where
/// `+` stands for a space and `%XX` for a byte.
fn page_query(relationship: &str, descriptors: bool, query: &str) -> PageQuery {
    let mut page = PageQuery {
        relationship: relationship.to_string(),
        descriptors,
        limit: None,
        cursor: None,
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            http::percent_decode(&value.replace('+', " ")).unwrap_or_else(|| value.to_string());
        match name {
            "limit" => page.limit = Some(value),
            "cursor" => page.cursor = Some(value),
            _ => {}
        }
    }
    page
}

/// Decides the response to `request` and updates the counters that do not
/// depend on delivery.
fn prepare(shared: &Shared, request: &Request, arrived: Instant) -> Prepared {
    let config = &shared.config;
    let seq = shared.next_seq.fetch_add(1, Ordering::SeqCst);
    let route = route(&request.target);

    let parsed_ip = match &route {
        Route::IpAddress { text } | Route::Relationship { text, .. } => {
            Some(text.parse::<IpAddr>().map_err(|_| text.clone()))
        }
        _ => None,
    };
    // Requests are counted under the canonical address, or under the raw text
    // when it is not an address.
    let named = parsed_ip.as_ref().map(|parsed| match parsed {
        Ok(addr) => addr.to_string(),
        Err(text) => text.clone(),
    });
    // Only address lookups count as lookups of the address, in the counters
    // and for the fault policies.
    let ip = match &route {
        Route::IpAddress { .. } => named.clone(),
        _ => None,
    };

    let (attempt, slot) = {
        let mut stats = lock(&shared.stats);
        stats.total_requests += 1;
        stats.arrivals.push(arrived);
        let attempt = match &ip {
            Some(ip) => {
                let count = stats.requests_per_ip.entry(ip.clone()).or_default();
                *count += 1;
                *count
            }
            None => 0,
        };
        if let (Route::Relationship { query, .. }, Some(named)) = (&route, &named) {
            *stats
                .relationship_requests
                .entry((named.clone(), query.relationship.clone()))
                .or_default() += 1;
        }
        let index = if stats.requests.len() < config.max_recorded_requests {
            stats.requests.push(RequestRecord {
                seq,
                arrived,
                method: request.method.clone(),
                path: request.target.clone(),
                ip: ip.clone(),
                headers: request.headers.clone(),
                status: None,
                fault: Fault::None,
                delivered: false,
            });
            Some(stats.requests.len() - 1)
        } else {
            stats.unrecorded_requests += 1;
            None
        };
        (attempt, RecordSlot { index, seq })
    };

    let mut prepared = Prepared {
        response: Response::error(500, "InternalError", "unset"),
        delivery: Delivery::Normal,
        extra_latency: Duration::ZERO,
        document_ip: None,
        slot,
    };

    // Authentication comes first, for every path, as on the real API.
    // Error codes and statuses: https://docs.virustotal.com/reference/errors
    let key = match request.header("x-apikey") {
        None | Some("") => {
            prepared.response = Response::error(
                401,
                "AuthenticationRequiredError",
                "X-Apikey header is missing",
            );
            return prepared;
        }
        Some(key) => key,
    };
    let is_quota_summary = matches!(route, Route::OverallQuotas);
    {
        let mut quotas = lock(&shared.quotas);
        let Some(state) = quotas.get_mut(key) else {
            drop(quotas);
            prepared.response = Response::error(401, "WrongCredentialsError", "Wrong API key");
            return prepared;
        };
        // NOTE: whether the real quota summary endpoint consumes quota is not
        // documented. Here it neither counts nor gets rejected, so reading the
        // allowances never changes them.
        if !is_quota_summary && let Err(window) = state.try_accept(arrived) {
            drop(quotas);
            record_quota_rejection(shared, window);
            // The message does not name the window, like the real API's.
            prepared.response = Response::error(429, "QuotaExceededError", "Quota exceeded");
            return prepared;
        }
    }

    let info = RequestInfo {
        ip: ip.clone(),
        path: request.target.clone(),
        attempt,
        seq,
    };
    let fault = config.faults.decide(&info);
    if fault != Fault::None {
        let mut stats = lock(&shared.stats);
        *stats.faults.entry(fault.kind()).or_default() += 1;
        if let Some(record) = record_at(&mut stats, slot) {
            record.fault = fault;
        }
    }

    let gzip = request.negotiates_gzip();
    match fault {
        Fault::Status(status, code) => {
            prepared.response = Response::error(status, code, "Injected fault");
            return prepared;
        }
        Fault::Garbage => {
            let body = b"<html><body>502 Server Error</body></html>".to_vec();
            prepared.response = Response::json(200, body, gzip);
            return prepared;
        }
        Fault::BadGzip => {
            prepared.response = Response {
                status: 200,
                body: b"this body is not gzip data".to_vec(),
                gzip: true,
            };
            return prepared;
        }
        Fault::Reset => prepared.delivery = Delivery::Reset,
        Fault::Truncated => prepared.delivery = Delivery::Truncated,
        Fault::Stall(pause) => prepared.delivery = Delivery::Stall(pause),
        Fault::Latency(pause) => prepared.extra_latency = pause,
        Fault::None => {}
    }

    if request.method != "GET" {
        prepared.response = Response::error(
            400,
            "BadRequestError",
            &format!("Method {} is not supported", request.method),
        );
        return prepared;
    }

    prepared.response = match (route, parsed_ip) {
        (Route::IpAddress { .. }, Some(Ok(addr))) => {
            let canonical = addr.to_string();
            if config.not_found.contains(&canonical) || (config.not_found_when)(&addr) {
                Response::error(
                    404,
                    "NotFoundError",
                    &format!("IP address \"{canonical}\" not found"),
                )
            } else {
                let body = match config.documents.get(&canonical) {
                    Some(bytes) => bytes.clone(),
                    None => expected_document_bytes(&canonical),
                };
                prepared.document_ip = Some(canonical);
                Response::json(200, body, gzip)
            }
        }
        (Route::Relationship { query, .. }, Some(Ok(addr))) => {
            let canonical = addr.to_string();
            if config.not_found.contains(&canonical) || (config.not_found_when)(&addr) {
                Response::error(
                    404,
                    "NotFoundError",
                    &format!("IP address \"{canonical}\" not found"),
                )
            } else {
                let host = request.header("host").unwrap_or("127.0.0.1");
                match relationships::page(config, key, host, &canonical, &query) {
                    Ok(page) => Response::json(200, page.to_string().into_bytes(), gzip),
                    Err((status, code, message)) => Response::error(status, code, &message),
                }
            }
        }
        (Route::IpAddress { text } | Route::Relationship { text, .. }, _) => Response::error(
            400,
            "InvalidArgumentError",
            &format!("\"{text}\" is not a valid IP address"),
        ),
        (Route::OverallQuotas, _) => {
            let body = quota_summary(shared, key, arrived);
            Response::json(200, body, gzip)
        }
        (Route::Unknown, _) => Response::error(404, "NotFoundError", "Resource not found"),
    };
    prepared
}

fn record_quota_rejection(shared: &Shared, window: QuotaWindow) {
    let mut stats = lock(&shared.stats);
    let rejections = &mut stats.quota_rejections;
    match window {
        QuotaWindow::Minute => rejections.minute += 1,
        QuotaWindow::Day => rejections.day += 1,
        QuotaWindow::Month => rejections.month += 1,
    }
}

/// Builds the body of `GET /users/{id}/overall_quotas` for `key`.
///
/// Shape: `data.<quota name>.user.{allowed, used}`, as in the example response
/// of the VirusTotal v3 integration of Cortex XSOAR
/// (github.com/demisto/content, Packs/VirusTotal/Integrations/VirusTotalV3/README.md).
/// Only the user part of the three API request quotas is produced: no group
/// allowances, no Intelligence or Monitor quotas. The hourly allowance is 60
/// times the per-minute one.
fn quota_summary(shared: &Shared, key: &str, now: Instant) -> Vec<u8> {
    let mut quotas = lock(&shared.quotas);
    let Some(state) = quotas.get_mut(key) else {
        return b"{}".to_vec();
    };
    let (hourly_used, daily_used, monthly_used) = state.usage(now);
    let quota = state.quota;
    let hourly = quota
        .per_minute
        .map_or(UNLIMITED_HOURLY, |limit| u64::from(limit) * 60);
    let daily = quota.per_day.unwrap_or(UNLIMITED_DAILY_OR_MONTHLY);
    let monthly = quota.per_month.unwrap_or(UNLIMITED_DAILY_OR_MONTHLY);

    let body = json!({
        "data": {
            "api_requests_hourly": { "user": { "allowed": hourly, "used": hourly_used } },
            "api_requests_daily": { "user": { "allowed": daily, "used": daily_used } },
            "api_requests_monthly": { "user": { "allowed": monthly, "used": monthly_used } },
        }
    });
    body.to_string().into_bytes()
}
