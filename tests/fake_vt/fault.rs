//! Faults the server injects, and the policies that choose them per request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::document::{fnv1a64, mix64};

/// Details of a request that passed authentication and quota, given to the
/// fault policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// Canonical address for `GET /ip_addresses/{ip}` (the raw text when it is
    /// not an address), `None` for other endpoints.
    pub ip: Option<String>,
    /// Request target as sent, query string included.
    pub path: String,
    /// 1-based number of requests seen for `ip` so far, this one included.
    /// Every request naming the address counts, rejected ones too. It is 0
    /// when `ip` is `None`.
    pub attempt: u32,
    /// 1-based number of this request among all requests the server read.
    pub seq: u64,
}

/// A failure to inject in place of, or into, the normal response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The normal response.
    None,
    /// This status with a VirusTotal error body carrying this code.
    Status(u16, &'static str),
    /// Close the socket with `SO_LINGER` 0 without sending anything, so the
    /// client sees a connection reset.
    Reset,
    /// Send the headers with the full `Content-Length`, half the body, then
    /// close the connection.
    Truncated,
    /// Status 200 with a body that is not JSON (compressed when the request
    /// negotiated gzip, so only the JSON parse fails).
    Garbage,
    /// Status 200 with `Content-Encoding: gzip` and a body that is not gzip.
    BadGzip,
    /// Send the status line and headers, wait this long, then send the body
    /// unless the client has closed the connection meanwhile.
    Stall(Duration),
    /// Wait this long, then send the normal response.
    Latency(Duration),
}

impl Fault {
    /// 503 `TransientError` (VirusTotal errors reference).
    pub const TRANSIENT: Fault = Fault::Status(503, "TransientError");
    /// 504 `DeadlineExceededError` (VirusTotal errors reference).
    pub const DEADLINE_EXCEEDED: Fault = Fault::Status(504, "DeadlineExceededError");
    /// 429 `QuotaExceededError` (VirusTotal errors reference).
    pub const QUOTA_EXCEEDED: Fault = Fault::Status(429, "QuotaExceededError");
    /// 429 `TooManyRequestsError` (VirusTotal errors reference).
    pub const TOO_MANY_REQUESTS: Fault = Fault::Status(429, "TooManyRequestsError");
    /// 500 from the server. NOTE: the code string is a placeholder, not one
    /// taken from VirusTotal, so clients should act on the status alone.
    pub const INTERNAL: Fault = Fault::Status(500, "InternalError");
    /// 502 from a proxy in front of the API. NOTE: the code string is a
    /// placeholder, as for [`Fault::INTERNAL`].
    pub const BAD_GATEWAY: Fault = Fault::Status(502, "BadGatewayError");

    /// Short name used as the key of [`super::Stats::faults`].
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Status(..) => "status",
            Fault::Reset => "reset",
            Fault::Truncated => "truncated",
            Fault::Garbage => "garbage",
            Fault::BadGzip => "bad_gzip",
            Fault::Stall(_) => "stall",
            Fault::Latency(_) => "latency",
        }
    }
}

/// Probabilities of each fault on one attempt, for [`FaultPolicy::rates`].
///
/// The probabilities are summed in field order, so their total should not
/// exceed 1. The remainder is the chance of a normal response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRates {
    /// 500, 502, 503 or 504, chosen evenly.
    pub server_error: f64,
    /// 429 `TooManyRequestsError`.
    pub too_many_requests: f64,
    pub reset: f64,
    pub truncated: f64,
    pub garbage: f64,
    pub bad_gzip: f64,
    pub stall: f64,
    /// How long a stall lasts.
    pub stall_for: Duration,
    pub latency: f64,
    /// Extra delay of a `Latency` fault.
    pub latency_for: Duration,
    /// Attempts after this number never get a fault, `None` for no limit.
    pub faulty_attempts: Option<u32>,
}

impl Default for FaultRates {
    /// No faults.
    fn default() -> Self {
        FaultRates {
            server_error: 0.0,
            too_many_requests: 0.0,
            reset: 0.0,
            truncated: 0.0,
            garbage: 0.0,
            bad_gzip: 0.0,
            stall: 0.0,
            stall_for: Duration::from_secs(2),
            latency: 0.0,
            latency_for: Duration::from_millis(100),
            faulty_attempts: None,
        }
    }
}

type DecideFn = dyn Fn(&RequestInfo) -> Fault + Send + Sync;

/// Chooses the fault for each request that passed authentication and quota.
#[derive(Clone)]
pub struct FaultPolicy(Arc<DecideFn>);

impl fmt::Debug for FaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultPolicy(..)")
    }
}

impl Default for FaultPolicy {
    fn default() -> Self {
        FaultPolicy::none()
    }
}

impl FaultPolicy {
    /// Wraps any function of the request.
    pub fn from_fn(decide: impl Fn(&RequestInfo) -> Fault + Send + Sync + 'static) -> Self {
        FaultPolicy(Arc::new(decide))
    }

    /// Never injects a fault.
    pub fn none() -> Self {
        FaultPolicy::from_fn(|_| Fault::None)
    }

    /// Injects `fault` into every request that reaches the policy, address
    /// lookups and other endpoints alike (a 429 storm, an outage).
    pub fn always(fault: Fault) -> Self {
        FaultPolicy::from_fn(move |_| fault)
    }

    /// Injects `fault` into the first `attempts` lookups of each address, then
    /// lets them through. Other endpoints are never faulted.
    pub fn first_attempts(attempts: u32, fault: Fault) -> Self {
        FaultPolicy::from_fn(move |info| {
            if info.ip.is_some() && info.attempt <= attempts {
                fault
            } else {
                Fault::None
            }
        })
    }

    /// Injects faults into address lookups at the given rates. The choice is a
    /// hash of `seed`, the address and the attempt number, so it does not
    /// depend on timing or on the order in which requests arrive.
    pub fn rates(seed: u64, rates: FaultRates) -> Self {
        FaultPolicy::from_fn(move |info| choose_by_rates(seed, &rates, info))
    }

    /// Injects the standard mix for retry tests: on attempts 1 to 3 of each address,
    /// 25% 5xx, 10% resets, 10% truncated bodies, 5% garbage, 5% bad gzip,
    /// 5% two-second stalls and 5% 100 ms delays. Attempt 4 and later always
    /// succeed.
    pub fn mixed(seed: u64) -> Self {
        FaultPolicy::mixed_with_stall(seed, Duration::from_secs(2))
    }

    /// Injects the mix of [`FaultPolicy::mixed`] with stalls of `stall_for`,
    /// to match the client's read timeout.
    pub fn mixed_with_stall(seed: u64, stall_for: Duration) -> Self {
        FaultPolicy::rates(
            seed,
            FaultRates {
                server_error: 0.25,
                reset: 0.10,
                truncated: 0.10,
                garbage: 0.05,
                bad_gzip: 0.05,
                stall: 0.05,
                stall_for,
                latency: 0.05,
                faulty_attempts: Some(3),
                ..FaultRates::default()
            },
        )
    }

    /// Returns the fault for this request.
    pub fn decide(&self, info: &RequestInfo) -> Fault {
        (self.0)(info)
    }
}

fn choose_by_rates(seed: u64, rates: &FaultRates, info: &RequestInfo) -> Fault {
    let Some(ip) = &info.ip else {
        return Fault::None;
    };
    if rates
        .faulty_attempts
        .is_some_and(|limit| info.attempt > limit)
    {
        return Fault::None;
    }

    let mut key = Vec::with_capacity(ip.len() + 12);
    key.extend_from_slice(&seed.to_le_bytes());
    key.extend_from_slice(&info.attempt.to_le_bytes());
    key.extend_from_slice(ip.as_bytes());
    let hash = mix64(fnv1a64(&key));
    // The top 53 bits give a uniform float in [0, 1).
    let roll = (hash >> 11) as f64 / (1u64 << 53) as f64;

    let server_errors = [
        Fault::INTERNAL,
        Fault::BAD_GATEWAY,
        Fault::TRANSIENT,
        Fault::DEADLINE_EXCEEDED,
    ];
    let choices = [
        (rates.server_error, server_errors[(hash % 4) as usize]),
        (rates.too_many_requests, Fault::TOO_MANY_REQUESTS),
        (rates.reset, Fault::Reset),
        (rates.truncated, Fault::Truncated),
        (rates.garbage, Fault::Garbage),
        (rates.bad_gzip, Fault::BadGzip),
        (rates.stall, Fault::Stall(rates.stall_for)),
        (rates.latency, Fault::Latency(rates.latency_for)),
    ];
    let mut threshold = 0.0;
    for (rate, fault) in choices {
        threshold += rate;
        if roll < threshold {
            return fault;
        }
    }
    Fault::None
}
