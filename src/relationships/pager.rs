//! Page by page through one relationship of one address, from the cache or the API.
//!
//! A relationship list is read with `GET /ip_addresses/{ip}/{relationship}?limit=N`, then with
//! `&cursor=C`, where C is the `meta.cursor` of the page before. The last page has no cursor
//! (docs.virustotal.com/reference/collections). `…/relationships/{relationship}` returns the
//! same list as descriptors (type and id only; docs.virustotal.com/reference/relationships).
//! Each page is one request through the fetch stage, so it takes the same concurrency slot,
//! pacer, budgets, ledger and retries as a lookup, and it is stored in the cache before its
//! slot is freed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, MutexGuard};
use tracing::{debug, error, warn};

use crate::cache::{CachedPage, PageForm, PageKey};
use crate::clock;
use crate::fetch::cached::{CacheLayer, describe_age};
use crate::fetch::client::Attempt;
use crate::fetch::pacing::Stop;
use crate::fetch::retry::Class;
use crate::fetch::{Fetcher, Resolver, Settled, describe, error_parts};
use crate::flatten::related::{PageOrigin, RelatedRow, flatten_page};
use crate::model::{AnswerSource, Relationship};

/// Largest `limit` sent in one request. VirusTotal's reference gives the parameter a default
/// of 10 and no maximum; 40 is the maximum that clients enforce, for example Kibana's
/// VirusTotal connector (elastic/kibana, `GetIpRelationshipInputSchema`: "Minimum 0, maximum
/// 40").
// NOTE: the API may cap some relationships lower and return fewer items than requested. Paging
// goes on while a cursor comes back, so that only costs more requests.
pub const API_MAX_PAGE_SIZE: u32 = 40;

/// Whether the key may read a relationship, as the first response of the run showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No response yet, so the next request goes out alone.
    Unknown,
    Allowed,
    /// The API returned 403, so the relationship is not requested again in this run.
    Forbidden,
}

/// Outcome of one relationship list of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The list ended, or the limit was reached.
    Complete,
    /// The API returned 403. `first` is set on the response that showed it. Later addresses
    /// are not requested and get no row.
    Forbidden {
        first: bool,
        code: String,
        message: String,
    },
    /// Not requested, because the API returned 403 for this relationship earlier in the run.
    NotRequested,
    /// The API returned 404 `NotFoundError` for the list.
    NotFound,
    /// Retries ran out, the request was rejected, or a page could not be read. A row gives the
    /// reason.
    Failed,
    /// `--offline` and a page is not in the cache.
    NotCached,
    /// The daily or monthly budget ran out, or the API kept answering 429.
    QuotaExhausted,
    /// The run was interrupted or the key rejected before the list was complete.
    Interrupted,
}

/// The rows of one relationship of one address, and how they were obtained.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub relationship: Relationship,
    pub rows: Vec<RelatedRow>,
    pub pages_from_api: u64,
    pub pages_from_cache: u64,
    pub end: End,
}

/// One page to read: the cache key, and with the API root, the request URL.
#[derive(Clone)]
struct PageRequest {
    ip: IpAddr,
    relationship: Relationship,
    form: PageForm,
    /// Empty for the first page.
    cursor: String,
    page_size: u32,
}

impl PageRequest {
    fn key(&self) -> PageKey<'_> {
        PageKey {
            ip: &self.ip,
            relationship: self.relationship.as_str(),
            form: self.form,
            cursor: &self.cursor,
            page_size: self.page_size,
        }
    }

    /// Returns the request URL under `api_url`, with the query encoded as a form
    /// (`application/x-www-form-urlencoded`), so cursors with `+`, `/` and `=` survive.
    fn url(&self, api_url: &str) -> Result<String, String> {
        let path = match self.form {
            PageForm::Objects => {
                format!("{api_url}/ip_addresses/{}/{}", self.ip, self.relationship)
            }
            PageForm::Descriptors => format!(
                "{api_url}/ip_addresses/{}/relationships/{}",
                self.ip, self.relationship
            ),
        };
        let page_size = self.page_size.to_string();
        let mut query = vec![("limit", page_size.as_str())];
        if !self.cursor.is_empty() {
            query.push(("cursor", self.cursor.as_str()));
        }
        reqwest::Url::parse_with_params(&path, &query)
            .map(String::from)
            .map_err(|err| format!("`{path}` is not a URL: {err}"))
    }
}

/// Reads relationship lists for the stage. Shared by every address in flight.
pub struct Pager {
    resolver: Arc<Resolver>,
    form: PageForm,
    limit: u32,
    access: HashMap<Relationship, Mutex<Access>>,
}

impl Pager {
    /// Builds a pager that reads `relationships` through `resolver`, up to `limit` items each.
    pub fn new(
        resolver: Arc<Resolver>,
        relationships: &[Relationship],
        form: PageForm,
        limit: u32,
    ) -> Pager {
        let access = relationships
            .iter()
            .map(|relationship| (*relationship, Mutex::new(Access::Unknown)))
            .collect();
        Pager {
            resolver,
            form,
            limit,
            access,
        }
    }

    /// Reads up to the limit of `relationship`'s items for `ip`, page by page.
    pub async fn collect(&self, ip: IpAddr, relationship: Relationship) -> Fetched {
        let mut fetched = Fetched {
            relationship,
            rows: Vec::new(),
            pages_from_api: 0,
            pages_from_cache: 0,
            end: End::Complete,
        };
        let ip_text = ip.to_string();
        let mut position: u32 = 0;
        let mut cursor = String::new();
        let mut cursors_seen = HashSet::new();

        while position < self.limit {
            let remaining = self.limit - position;
            let request = PageRequest {
                ip,
                relationship,
                form: self.form,
                cursor: cursor.clone(),
                page_size: remaining.min(API_MAX_PAGE_SIZE),
            };
            let (body, origin) = match self.page(&request, &mut fetched).await {
                Ok(page) => page,
                Err(end) => {
                    fetched.end = end;
                    return fetched;
                }
            };

            let page = match flatten_page(
                &body,
                &ip_text,
                relationship,
                position,
                remaining as usize,
                origin,
            ) {
                Ok(page) => page,
                Err(err) => {
                    warn!(%ip, %relationship, error = %err, "page is not a relationship list; keeping the rows read so far");
                    fetched.rows.push(RelatedRow::relationship_error(
                        &ip_text,
                        relationship,
                        crate::flatten::INVALID_RESPONSE_CODE.to_string(),
                        format!("page {} of the list: {err}", cursors_seen.len() + 1),
                    ));
                    fetched.end = End::Failed;
                    return fetched;
                }
            };
            position += page.rows.len() as u32;
            fetched.rows.extend(page.rows);

            // An empty page or a cursor seen before would repeat the same request forever.
            let next = match page.next_cursor {
                Some(next) if page.items_on_page > 0 => next,
                _ => break,
            };
            if !cursors_seen.insert(next.clone()) {
                debug!(%ip, %relationship, "the API returned a cursor twice; stopping this list");
                break;
            }
            cursor = next;
        }
        fetched
    }

    /// Returns one page, from the cache when it has a young enough copy, else from the
    /// API. An `Err` ends the list; its row, if any, is already in `fetched`.
    async fn page(
        &self,
        request: &PageRequest,
        fetched: &mut Fetched,
    ) -> Result<(Vec<u8>, PageOrigin), End> {
        let (fetcher, cache) = match self.resolver.as_ref() {
            Resolver::Api { fetcher, cache } => (Some(fetcher.as_ref()), cache.as_deref()),
            Resolver::Offline(cache) => (None, Some(cache)),
            // The stage is not started for saved documents.
            Resolver::Saved(_) => return Err(End::Interrupted),
        };

        if let Some(cache) = cache
            && let Some(page) = read_cache(cache, request).await
        {
            fetched.pages_from_cache += 1;
            let origin = PageOrigin {
                fetched_at: page.fetched_at,
                source: AnswerSource::Cache,
            };
            return Ok((page.body, origin));
        }

        match fetcher {
            Some(fetcher) => self.fetch(fetcher, cache, request, fetched).await,
            None => {
                let cache = cache.expect("offline runs have a cache");
                fetched.rows.push(RelatedRow::relationship_error(
                    &request.ip.to_string(),
                    request.relationship,
                    "NotCached".to_string(),
                    format!(
                        "no page younger than {} in the cache at `{}`, and --offline forbids asking the API",
                        describe_age(cache.max_age()),
                        cache.cache().path().display()
                    ),
                ));
                Err(End::NotCached)
            }
        }
    }

    /// Requests one page from the API and stores it in the cache before freeing its slot.
    async fn fetch(
        &self,
        fetcher: &Fetcher,
        cache: Option<&CacheLayer>,
        request: &PageRequest,
        fetched: &mut Fetched,
    ) -> Result<(Vec<u8>, PageOrigin), End> {
        let ip = &request.ip;
        let relationship = request.relationship;
        let ip_text = ip.to_string();
        let url = match request.url(fetcher.api_url()) {
            Ok(url) => url,
            Err(message) => {
                error!(%ip, %relationship, %message, "cannot build the request URL");
                fetched.rows.push(RelatedRow::relationship_error(
                    &ip_text,
                    relationship,
                    "InvalidUrl".to_string(),
                    message,
                ));
                return Err(End::Failed);
            }
        };

        // Until the first response shows whether the key may read this relationship, one
        // request at a time goes out, so a 403 is met once per run and not once per address in
        // flight.
        let mut gate = Some(self.gate(relationship).await);
        match gate.as_deref() {
            Some(Access::Forbidden) => return Err(End::NotRequested),
            Some(Access::Allowed) => gate = None,
            _ => {}
        }

        let settled = fetcher.request(ip, relationship.as_str(), &url).await;
        let (attempt, class, slot) = match settled {
            Settled::Final {
                attempt,
                class,
                slot,
            } => (attempt, class, slot),
            Settled::Exhausted { attempt, attempts } => {
                let (code, message) = error_parts(&attempt, Some(attempts));
                fetched.rows.push(RelatedRow::relationship_error(
                    &ip_text,
                    relationship,
                    code,
                    message,
                ));
                return Err(End::Failed);
            }
            Settled::Unauthorized(_) => return Err(End::Interrupted),
            Settled::Stopped(stop) => return Err(stopped(&ip_text, relationship, stop, fetched)),
        };
        fetched.pages_from_api += 1;

        match (class, attempt) {
            (Class::Success, Attempt::Success { body }) => {
                let fetched_at = Utc::now();
                let body = match cache {
                    Some(cache) => write_cache(cache, request, body, fetched_at).await,
                    None => body,
                };
                drop(slot);
                self.settle_access(relationship, &mut gate, Access::Allowed)
                    .await;
                let origin = PageOrigin {
                    fetched_at,
                    source: AnswerSource::Api,
                };
                Ok((body, origin))
            }
            (Class::Rejected, attempt @ Attempt::ApiError { status: 403, .. }) => {
                drop(slot);
                let previous = self
                    .settle_access(relationship, &mut gate, Access::Forbidden)
                    .await;
                let first = previous != Access::Forbidden;
                let (code, reason) = error_parts(&attempt, None);
                let message = forbidden_message(relationship, &reason);
                if first {
                    fetched.rows.push(RelatedRow::relationship_error(
                        &ip_text,
                        relationship,
                        code.clone(),
                        message.clone(),
                    ));
                }
                Err(End::Forbidden {
                    first,
                    code,
                    message,
                })
            }
            (Class::NotFound, attempt) => {
                drop(slot);
                let (code, message) = error_parts(&attempt, None);
                fetched.rows.push(RelatedRow::relationship_error(
                    &ip_text,
                    relationship,
                    code,
                    message,
                ));
                Err(End::NotFound)
            }
            (_, attempt) => {
                drop(slot);
                warn!(%ip, %relationship, reason = %describe(&attempt), "relationship request rejected; not retrying");
                let (code, message) = error_parts(&attempt, None);
                fetched.rows.push(RelatedRow::relationship_error(
                    &ip_text,
                    relationship,
                    code,
                    message,
                ));
                Err(End::Failed)
            }
        }
    }

    async fn gate(&self, relationship: Relationship) -> MutexGuard<'_, Access> {
        self.access
            .get(&relationship)
            .expect("the pager knows every relationship of the run")
            .lock()
            .await
    }

    /// Records whether the key may read `relationship` and returns the previous state.
    /// The gate, when still held, is released only after the update.
    async fn settle_access(
        &self,
        relationship: Relationship,
        gate: &mut Option<MutexGuard<'_, Access>>,
        learned: Access,
    ) -> Access {
        let previous = match gate.as_deref_mut() {
            Some(access) => std::mem::replace(access, learned),
            None => std::mem::replace(&mut *self.gate(relationship).await, learned),
        };
        *gate = None;
        previous
    }
}

/// Returns the message of the row that records a 403 for `relationship`.
fn forbidden_message(relationship: Relationship, reason: &str) -> String {
    if relationship.needs_enterprise() {
        format!(
            "HTTP 403: {reason}; {relationship} needs a VirusTotal Enterprise (premium) key, \
             so it was not requested again in this run"
        )
    } else {
        format!(
            "HTTP 403: {reason}; the API refused {relationship} to this key, so it was not \
             requested again in this run"
        )
    }
}

/// Records why the stage stopped sending before the list was complete, and returns how the
/// list ends.
fn stopped(ip: &str, relationship: Relationship, stop: Stop, fetched: &mut Fetched) -> End {
    let (code, end) = match &stop {
        Stop::BudgetSpent { .. } => ("BudgetSpent".to_string(), End::QuotaExhausted),
        Stop::QuotaExceeded { code, .. } => (code.clone(), End::QuotaExhausted),
        Stop::LedgerFailed(_) => ("LedgerFailed".to_string(), End::Failed),
        Stop::Unauthorized { .. }
        | Stop::TlsCertificate { .. }
        | Stop::ProxyAuth { .. }
        | Stop::Cancelled => return End::Interrupted,
    };
    fetched.rows.push(RelatedRow::relationship_error(
        ip,
        relationship,
        code,
        format!("not requested: {}", stop.describe()),
    ));
    end
}

/// Returns the cached page for `request`, if there is one young enough. A cache that cannot
/// be read is logged and treated as a miss, so the run goes on against the API.
async fn read_cache(cache: &CacheLayer, request: &PageRequest) -> Option<CachedPage> {
    let (store, api_url, max_age) = (
        cache.cache().clone(),
        cache.api_url().to_string(),
        cache.max_age(),
    );
    let (ip, relationship) = (request.ip, request.relationship);
    let request = request.clone();
    let found = tokio::task::spawn_blocking(move || {
        store.get_page(&api_url, &request.key(), max_age, clock::now())
    })
    .await;

    match found {
        Ok(Ok(page)) => {
            if page.is_some() {
                debug!(%ip, %relationship, "relationship page read from the cache");
            }
            page
        }
        Ok(Err(err)) => {
            error!(%ip, %relationship, error = %err, "cache read failed; asking the API instead");
            None
        }
        Err(err) => {
            error!(%ip, %relationship, error = %err, "cache read task failed; asking the API instead");
            None
        }
    }
}

/// Commits a page to the cache. A failed write is logged: the rows are still written, and the
/// page is fetched again by the next run.
async fn write_cache(
    cache: &CacheLayer,
    request: &PageRequest,
    body: Vec<u8>,
    fetched_at: chrono::DateTime<Utc>,
) -> Vec<u8> {
    let (store, api_url) = (cache.cache().clone(), cache.api_url().to_string());
    let (ip, relationship) = (request.ip, request.relationship);
    let request = request.clone();
    // The body moves to the blocking task and back, so a large page is not copied.
    let stored = tokio::task::spawn_blocking(move || {
        let result = store.put_page(&api_url, &request.key(), &body, fetched_at);
        (body, result)
    })
    .await;

    match stored {
        Ok((body, Ok(()))) => body,
        Ok((body, Err(err))) => {
            error!(%ip, %relationship, error = %err, "cache write failed; the rows are written but the page will be fetched again next run");
            body
        }
        Err(err) => {
            // The task panicked with the body; the page cannot be used.
            error!(%ip, %relationship, error = %err, "cache write task failed");
            Vec::new()
        }
    }
}
