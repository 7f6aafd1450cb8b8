//! Retry policy: which attempts are worth repeating, and how long to wait before the next one.
//!
//! The classes follow VirusTotal's error table (docs.virustotal.com/reference/errors). 429
//! `QuotaExceededError`/`TooManyRequestsError`, 503 `TransientError` and 504
//! `DeadlineExceededError` are temporary; 400 `InvalidArgumentError`, 403 `ForbiddenError`,
//! 404 `NotFoundError` and a body over the size cap will not change on a retry;
//! 401 `WrongCredentialsError` and `AuthenticationRequiredError` mean the key itself is wrong.

use std::time::Duration;

use super::client::{Attempt, TransportKind};

/// What to do with the result of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 200 with a valid body: the address is done.
    Success,
    /// 404: VirusTotal has no object for the address; a normal, final outcome.
    NotFound,
    /// 429: the quota is spent for now. Paced by the shared quota probe, not per address.
    Throttled,
    /// 5xx, timeouts, resets, truncated or unparsable bodies: try again after a backoff.
    Retryable,
    /// Other 4xx: the request itself is refused and would be refused again.
    Rejected,
    /// 401: the key is wrong or missing; the whole run stops.
    Unauthorized,
    /// The server's TLS certificate failed verification. Every later request would fail the
    /// same way until the trust roots change, so the whole run stops.
    TlsCertificate,
    /// 407 from a proxy: its credentials are missing or wrong, so the whole run stops.
    ProxyAuth,
}

/// Classifies one attempt. This is the only place that maps statuses to retry decisions.
pub fn classify(attempt: &Attempt) -> Class {
    match attempt {
        Attempt::Success { .. } => Class::Success,
        Attempt::Transport {
            kind: TransportKind::TlsCertificate,
            ..
        } => Class::TlsCertificate,
        Attempt::Transport {
            kind: TransportKind::ProxyAuth,
            ..
        } => Class::ProxyAuth,
        // A body over the cap would be as large on the next attempt, and each retry would spend
        // a request and download up to the cap again.
        Attempt::Transport {
            kind: TransportKind::BodyTooLarge,
            ..
        } => Class::Rejected,
        Attempt::Transport { .. } => Class::Retryable,
        Attempt::ApiError { status, code, .. } => match *status {
            // Only VirusTotal's own 404 says the address is unknown; a bare 404 (a wrong
            // --api-url, a proxy's page) says nothing about the address.
            // TODO: a wrong path under the real API root may also answer `NotFoundError`
            // ("Resource not found"); those rows become `not_found` and are cached.
            404 if code.as_deref() == Some("NotFoundError") => Class::NotFound,
            401 => Class::Unauthorized,
            407 => Class::ProxyAuth,
            429 => Class::Throttled,
            // 408 is a server-side timeout of the request, as temporary as a 504.
            408 | 500..=599 => Class::Retryable,
            _ => Class::Rejected,
        },
    }
}

/// Exponential backoff with full jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; the attempts for one address are `max_retries + 1`.
    pub max_retries: u32,
    /// Upper bound of the first backoff; doubled at each further retry.
    pub base: Duration,
    /// Largest backoff upper bound.
    pub cap: Duration,
}

impl RetryPolicy {
    /// Returns the upper bound of the wait before retry number `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exponent);
        ceiling.min(self.cap)
    }

    /// Returns a random wait in `[0, ceiling(retry)]` ("full jitter"), which spreads retries of
    /// many addresses that failed together instead of sending them back in one wave.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_secs_f64();
        if ceiling <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(rand::random_range(0.0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Attempt {
        Attempt::ApiError {
            status,
            code: (status == 404).then(|| "NotFoundError".to_string()),
            message: None,
        }
    }

    #[test]
    fn statuses_map_to_their_class() {
        let cases = [
            (200, None),
            (400, Some(Class::Rejected)),
            (401, Some(Class::Unauthorized)),
            (403, Some(Class::Rejected)),
            (404, Some(Class::NotFound)),
            (407, Some(Class::ProxyAuth)),
            (408, Some(Class::Retryable)),
            (429, Some(Class::Throttled)),
            (500, Some(Class::Retryable)),
            (502, Some(Class::Retryable)),
            (503, Some(Class::Retryable)),
            (504, Some(Class::Retryable)),
        ];
        for (status, expected) in cases {
            if let Some(expected) = expected {
                assert_eq!(classify(&api(status)), expected, "status {status}");
            }
        }
    }

    #[test]
    fn bare_404_is_not_an_unknown_address() {
        let bare = Attempt::ApiError {
            status: 404,
            code: None,
            message: Some("error body: <html>".into()),
        };
        assert_eq!(classify(&bare), Class::Rejected);
    }

    #[test]
    fn success_and_transport_failures() {
        assert_eq!(
            classify(&Attempt::Success {
                body: b"{}".to_vec()
            }),
            Class::Success
        );
        for kind in [
            TransportKind::Connect,
            TransportKind::Timeout,
            TransportKind::Connection,
            TransportKind::InvalidBody,
        ] {
            let attempt = Attempt::Transport {
                kind,
                status: None,
                detail: String::new(),
            };
            assert_eq!(classify(&attempt), Class::Retryable, "{kind:?}");
        }
    }

    #[test]
    fn rejected_certificate_stops_instead_of_retrying() {
        let attempt = Attempt::Transport {
            kind: TransportKind::TlsCertificate,
            status: None,
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(classify(&attempt), Class::TlsCertificate);
    }

    #[test]
    fn oversized_body_is_not_retried() {
        let attempt = Attempt::Transport {
            kind: TransportKind::BodyTooLarge,
            status: Some(200),
            detail: String::new(),
        };
        assert_eq!(classify(&attempt), Class::Rejected);
    }

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let policy = RetryPolicy {
            max_retries: 6,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let ceilings: Vec<u64> = (1..=8).map(|n| policy.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn backoff_stays_within_the_ceiling() {
        let policy = RetryPolicy {
            max_retries: 6,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for retry in 1..=10 {
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= policy.ceiling(retry));
            }
        }
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let policy = RetryPolicy {
            max_retries: u32::MAX,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(60));
    }
}
