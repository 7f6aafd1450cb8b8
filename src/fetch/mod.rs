//! Fetch stage: turns each address to look up into a [`Lookup`] with a final status.
//!
//! It consumes addresses from the input stage and produces one `Lookup` per address, from the
//! API ([`Fetcher`]) or from saved documents ([`saved::SavedIndex`]). It paces and retries
//! requests itself; parsing the document into columns is left to the flattener, and the order
//! of rows to the pipeline.

pub mod cached;
pub mod client;
pub mod group_commit;
pub mod lease;
pub mod pacing;
pub mod quota;
pub mod retry;
pub mod saved;
pub mod tls;
mod validate;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::cache::KeyHash;
use crate::model::{AnswerSource, Lookup, Status};
use cached::CacheLayer;
use client::{ApiClient, Attempt, ClientSettings};
use pacing::{Pacer, QuotaSettings, Stop};
use retry::{Class, RetryPolicy, classify};

/// The API key. It is only ever written into the `x-apikey` header: `Debug` hides it and there
/// is no `Display`.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment, a key file or the config file.
    pub fn new(key: String) -> ApiKey {
        ApiKey(key)
    }

    /// Returns the key for the request header, the only place it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Settings of the API fetch stage.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub client: ClientSettings,
    pub quota: QuotaSettings,
    pub retry: RetryPolicy,
    /// Requests in flight at most.
    pub concurrency: usize,
}

/// Failure that leaves an address without a row.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The API rejected the key: nothing more can be fetched in this run.
    #[error("{}", .0.describe())]
    Unauthorized(Stop),
    /// The API server's TLS certificate was rejected: nothing more can be fetched in this run.
    #[error("{}", .0.describe())]
    TlsCertificate(Stop),
    /// A proxy rejected its credentials: nothing more can be fetched in this run.
    #[error("{}", .0.describe())]
    ProxyAuth(Stop),
    /// The run was interrupted before this address was looked up.
    #[error("interrupted before the lookup finished")]
    Interrupted,
}

/// Request counters for the progress display and the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchCounters {
    pub requests: u64,
    pub throttled: u64,
}

/// Looks addresses up in the API with pacing and retries.
pub struct Fetcher {
    client: ApiClient,
    pacer: Pacer,
    retry: RetryPolicy,
    slots: Semaphore,
    /// Where final answers are committed before their slot is freed.
    cache: Option<Arc<CacheLayer>>,
    /// The user's interrupt: it alone cancels requests already sent.
    interrupt: CancellationToken,
}

impl Fetcher {
    /// Builds the fetch stage. Cancelling `interrupt` stops it: pending lookups end with
    /// [`FetchError::Interrupted`]. With `cache`, final answers are committed to it and
    /// requests are counted in its ledger, so that budgets hold across runs and processes.
    pub fn new(
        settings: FetchSettings,
        key: &ApiKey,
        cache: Option<Arc<CacheLayer>>,
        interrupt: CancellationToken,
    ) -> anyhow::Result<Fetcher> {
        let client = ApiClient::new(settings.client, key)?;
        let shared = cache
            .as_ref()
            .map(|layer| (layer.cache().clone(), KeyHash::of(key.expose())));
        Ok(Fetcher {
            client,
            pacer: Pacer::new(settings.quota, shared, &interrupt),
            retry: settings.retry,
            slots: Semaphore::new(settings.concurrency.max(1)),
            cache,
            interrupt,
        })
    }

    /// Returns the request counters so far.
    pub fn counters(&self) -> FetchCounters {
        FetchCounters {
            requests: self.pacer.requests_sent(),
            throttled: self.pacer.throttled(),
        }
    }

    /// Returns why the stage stopped sending, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.pacer.stopped()
    }

    /// Returns the API root that request URLs start with.
    pub fn api_url(&self) -> &str {
        self.client.api_url()
    }

    /// Looks up one address until it reaches a final status.
    pub async fn lookup(&self, ip: IpAddr) -> Result<Lookup, FetchError> {
        let url = self.client.ip_url(&ip);
        match self.request(&ip, OBJECT_REQUEST, &url).await {
            Settled::Final {
                attempt,
                class: Class::Success,
                slot,
            } => {
                // A document for another address or of another type is not cached: a later
                // run asks again.
                if let Attempt::Success { body } = &attempt
                    && let Some(failed) = validate::reject_wrong_document(&ip, body)
                {
                    return Ok(failed);
                }
                Ok(self.commit(ok_lookup(&ip, attempt), &ip, slot).await)
            }
            Settled::Final {
                attempt,
                class: Class::NotFound,
                slot,
            } => {
                let lookup = error_lookup(&ip, Status::NotFound, &attempt, None);
                Ok(self.commit(lookup, &ip, slot).await)
            }
            Settled::Final { attempt, .. } => {
                warn!(%ip, reason = %describe(&attempt), "request rejected; not retrying");
                Ok(error_lookup(&ip, Status::Failed, &attempt, None))
            }
            Settled::Exhausted { attempt, attempts } => {
                Ok(error_lookup(&ip, Status::Failed, &attempt, Some(attempts)))
            }
            Settled::Unauthorized(stop) => Err(FetchError::Unauthorized(stop)),
            Settled::Stopped(stop) => stopped_lookup(&ip, stop),
        }
    }

    /// Sends `GET url` for `ip`, retrying until the response is final, with the same pacing,
    /// quotas, budgets, ledger and retries for every kind of request. `request` names what is
    /// fetched (`ip_address`, or a relationship) in the log lines.
    ///
    /// A final response comes back with its concurrency slot still held, so the caller can
    /// commit it to the cache before another request starts.
    pub async fn request(&self, ip: &IpAddr, request: &str, url: &str) -> Settled<'_> {
        let mut retries = 0u32;
        let mut throttled = 0u32;

        loop {
            let (attempt, slot) = match self.attempt(ip, request, url).await {
                Ok(attempt) => attempt,
                Err(stop) => return Settled::Stopped(stop),
            };

            let class = classify(&attempt);
            match class {
                Class::Success | Class::NotFound | Class::Rejected => {
                    return Settled::Final {
                        attempt,
                        class,
                        slot,
                    };
                }
                Class::Unauthorized => {
                    return Settled::Unauthorized(self.stopped().unwrap_or(Stop::Cancelled));
                }
                // The whole run stops; `stopped_lookup` turns the stop into the run's error.
                Class::TlsCertificate | Class::ProxyAuth => {
                    return Settled::Stopped(self.stopped().unwrap_or(Stop::Cancelled));
                }
                Class::Throttled => {
                    throttled += 1;
                    // The shared probe paces and ends a run of 429s. This cap only bounds a
                    // request that keeps meeting short bursts of 429 between successes.
                    if throttled > self.retry.max_retries.saturating_mul(4).max(8) {
                        error!(%ip, request, attempts = retries + throttled, "request failed after repeated 429 responses; not retrying");
                        return Settled::Exhausted {
                            attempt,
                            attempts: retries + throttled,
                        };
                    }
                    warn!(%ip, request, reason = %describe(&attempt), "429 response; waiting for the shared quota probe");
                }
                Class::Retryable => {
                    retries += 1;
                    if retries > self.retry.max_retries {
                        error!(%ip, request, attempts = retries + throttled, reason = %describe(&attempt), "request failed; retries exhausted");
                        return Settled::Exhausted {
                            attempt,
                            attempts: retries + throttled,
                        };
                    }
                    let wait = self.retry.backoff(retries);
                    warn!(%ip, request, retry = retries, wait_ms = wait.as_millis() as u64, reason = %describe(&attempt), "retrying");
                    // A stop during the wait ends it; the next admission then reports the stop.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.pacer.halt_token().cancelled() => {}
                    }
                }
            }
        }
    }

    /// Stores a final answer in the cache, then frees its concurrency slot. Holding the slot
    /// until the answer is committed bounds the answers that a kill can lose to `concurrency`.
    async fn commit(&self, lookup: Lookup, ip: &IpAddr, slot: SemaphorePermit<'_>) -> Lookup {
        if let Some(cache) = &self.cache {
            cache.put(&lookup, ip).await;
        }
        drop(slot);
        lookup
    }

    /// Sends one request once a concurrency slot and the pacer allow it, and returns the
    /// answer with the slot still held.
    async fn attempt(
        &self,
        ip: &IpAddr,
        request: &str,
        url: &str,
    ) -> Result<(Attempt, SemaphorePermit<'_>), Stop> {
        // `acquire` fails only on a closed semaphore, and this one is never closed.
        let slot = self.slots.acquire().await.map_err(|_| Stop::Cancelled)?;
        let admission = self.pacer.admit().await?;

        debug!(%ip, request, "sending request");
        let attempt = tokio::select! {
            attempt = self.client.get(url) => attempt,
            _ = self.interrupt.cancelled() => {
                self.pacer.record(admission, Class::Retryable, None);
                return Err(self.stopped().unwrap_or(Stop::Cancelled));
            }
        };

        let class = classify(&attempt);
        if class == Class::Unauthorized
            && let Attempt::ApiError { code, message, .. } = &attempt
        {
            error!(%ip, request, code = code.as_deref().unwrap_or(""), "the API rejected the key; stopping the run");
            self.pacer.halt_with(Stop::Unauthorized {
                code: code.clone(),
                message: message.clone(),
            });
        }
        if class == Class::TlsCertificate
            && let Attempt::Transport { detail, .. } = &attempt
        {
            error!(%ip, error = %detail, "the API server's TLS certificate was rejected; stopping the run");
            self.pacer.halt_with(Stop::TlsCertificate {
                detail: detail.clone(),
            });
        }
        if class == Class::ProxyAuth {
            let detail = describe(&attempt);
            error!(%ip, error = %detail, "the proxy requires authentication; stopping the run");
            self.pacer.halt_with(Stop::ProxyAuth { detail });
        }
        let code = match &attempt {
            Attempt::ApiError { code, .. } => code.as_deref(),
            _ => None,
        };
        self.pacer.record(admission, class, code);
        Ok((attempt, slot))
    }
}

/// Name of the IP address object request in log lines.
const OBJECT_REQUEST: &str = "ip_address";

/// Outcome of one request, once its retries are over.
pub enum Settled<'a> {
    /// A final HTTP response: 200 with a JSON body, VirusTotal's 404 `NotFoundError`, or a
    /// status that a retry would not change (400, 403). The concurrency slot is held until
    /// `slot` is dropped.
    Final {
        attempt: Attempt,
        class: Class,
        slot: SemaphorePermit<'a>,
    },
    /// Every attempt failed; `attempts` counts them all, and `attempt` is the last one.
    Exhausted { attempt: Attempt, attempts: u32 },
    /// The API rejected the key; the whole run stops.
    Unauthorized(Stop),
    /// The stage stopped sending before a final response: a spent budget, a persistent 429,
    /// a failed ledger, or an interrupt.
    Stopped(Stop),
}

/// Returns the row of an address that the stage stopped before looking up.
fn stopped_lookup(ip: &IpAddr, stop: Stop) -> Result<Lookup, FetchError> {
    match stop {
        Stop::BudgetSpent { .. } | Stop::QuotaExceeded { .. } => {
            let mut lookup = Lookup::without_body(ip, Status::QuotaExhausted);
            lookup.error_code = Some(match &stop {
                Stop::QuotaExceeded { code, .. } => code.clone(),
                _ => "BudgetSpent".to_string(),
            });
            lookup.error_message = Some(stop.describe());
            Ok(lookup)
        }
        Stop::LedgerFailed(message) => {
            let mut lookup = Lookup::without_body(ip, Status::Failed);
            lookup.error_code = Some("LedgerFailed".to_string());
            lookup.error_message = Some(format!(
                "not sent: the request ledger in the cache failed: {message}"
            ));
            Ok(lookup)
        }
        Stop::Unauthorized { .. } => Err(FetchError::Unauthorized(stop)),
        Stop::TlsCertificate { .. } => Err(FetchError::TlsCertificate(stop)),
        Stop::ProxyAuth { .. } => Err(FetchError::ProxyAuth(stop)),
        Stop::Cancelled => Err(FetchError::Interrupted),
    }
}

fn ok_lookup(ip: &IpAddr, attempt: Attempt) -> Lookup {
    let mut lookup = Lookup::without_body(ip, Status::Ok);
    lookup.fetched_at = Some(Utc::now());
    lookup.source = Some(AnswerSource::Api);
    if let Attempt::Success { body } = attempt {
        lookup.body = Some(body);
    }
    lookup
}

/// Builds a `not_found` or `failed` row that keeps VirusTotal's error code and message, or the
/// local code of a transport failure.
fn error_lookup(ip: &IpAddr, status: Status, attempt: &Attempt, attempts: Option<u32>) -> Lookup {
    let mut lookup = Lookup::without_body(ip, status);
    lookup.source = Some(AnswerSource::Api);
    lookup.fetched_at = Some(Utc::now());

    let (code, message) = error_parts(attempt, attempts);
    lookup.error_code = Some(code);
    lookup.error_message = Some(message);
    lookup
}

/// Returns the error code and message of a failed attempt: VirusTotal's own when the body had
/// them, else `HTTP<status>` or the local code of a transport failure. `attempts`, when given,
/// is appended to the message.
pub(crate) fn error_parts(attempt: &Attempt, attempts: Option<u32>) -> (String, String) {
    let (code, message) = match attempt {
        Attempt::ApiError {
            status,
            code,
            message,
        } => (
            code.clone().unwrap_or_else(|| format!("HTTP{status}")),
            message
                .clone()
                .unwrap_or_else(|| format!("HTTP status {status}")),
        ),
        Attempt::Transport {
            kind,
            detail,
            status,
        } => {
            let detail = match status {
                Some(status) => format!("{detail} (HTTP status {status})"),
                None => detail.clone(),
            };
            (kind.code().to_string(), detail)
        }
        Attempt::Success { .. } => (String::new(), String::new()),
    };
    let message = match attempts {
        Some(attempts) => format!("{message} (after {attempts} attempts)"),
        None => message,
    };
    (code, message)
}

/// Describes an attempt for a log line.
pub(crate) fn describe(attempt: &Attempt) -> String {
    match attempt {
        Attempt::Success { .. } => "ok".to_string(),
        Attempt::ApiError {
            status,
            code,
            message,
        } => format!(
            "HTTP {status} {}: {}",
            code.as_deref().unwrap_or("-"),
            message.as_deref().unwrap_or("-")
        ),
        Attempt::Transport {
            kind,
            status,
            detail,
        } => match status {
            Some(status) => format!("{} after HTTP {status}: {detail}", kind.code()),
            None => format!("{}: {detail}", kind.code()),
        },
    }
}

/// Source of the answers to lookups.
pub enum Resolver {
    /// The API, behind the cache unless `--no-cache`.
    Api {
        fetcher: Box<Fetcher>,
        cache: Option<Arc<CacheLayer>>,
    },
    /// The cache only (`--offline`).
    Offline(CacheLayer),
    /// Saved documents (`--from`).
    Saved(saved::SavedIndex),
}

impl Resolver {
    /// Looks up one address.
    pub async fn resolve(self: &Arc<Self>, ip: IpAddr) -> Result<Lookup, FetchError> {
        match self.as_ref() {
            Resolver::Api { fetcher, cache } => {
                if let Some(cache) = cache
                    && let Some(hit) = cache.get(&ip).await
                {
                    return Ok(hit);
                }
                // The fetcher commits final answers to the cache before returning them, so a
                // kill after this point never costs the request again.
                fetcher.lookup(ip).await
            }
            Resolver::Offline(cache) => Ok(match cache.get(&ip).await {
                Some(hit) => hit,
                None => cache.offline_miss(&ip),
            }),
            Resolver::Saved(index) => Ok(index.lookup(&ip)),
        }
    }

    /// Returns the request counters (zero without the API).
    pub fn counters(&self) -> FetchCounters {
        match self {
            Resolver::Api { fetcher, .. } => fetcher.counters(),
            Resolver::Offline(_) | Resolver::Saved(_) => FetchCounters::default(),
        }
    }

    /// Returns why the stage stopped sending, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        match self {
            Resolver::Api { fetcher, .. } => fetcher.stopped(),
            Resolver::Offline(_) | Resolver::Saved(_) => None,
        }
    }
}
