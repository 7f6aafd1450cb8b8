//! The cache in front of the API: answers younger than `--max-age` are served from the SQLite
//! file, and every final answer from the API is committed to it before its row is written.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, error};

use super::group_commit::GroupCommit;
use crate::cache::{BodyCheck, Cache, CachedAnswer, CachedStatus};
use crate::clock;
use crate::model::{AnswerSource, Lookup, Status};

/// The answer cache of one API root.
pub struct CacheLayer {
    cache: Arc<Cache>,
    /// Entries are keyed by API root too, so answers of a fake or a proxy never mix with the
    /// real API's.
    api_url: String,
    max_age: Duration,
    /// Commits answers in batches; `None` when its thread could not start, and then each
    /// answer is committed in its own transaction.
    committer: Option<GroupCommit>,
}

impl CacheLayer {
    /// Wraps an open cache for the API at `api_url`.
    pub fn new(cache: Arc<Cache>, api_url: String, max_age: Duration) -> CacheLayer {
        let committer = match GroupCommit::start(cache.clone(), api_url.clone()) {
            Ok(committer) => Some(committer),
            Err(err) => {
                error!(error = %err, "cannot start the cache committer thread; committing each answer alone");
                None
            }
        };
        CacheLayer {
            cache,
            api_url,
            max_age,
            committer,
        }
    }

    /// Returns the shared cache handle, for the request ledger.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// Returns the API root that entries are stored under.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Returns the age past which entries are not reused (`--max-age`).
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Returns the cached answer for `ip`, if there is one young enough. A cache that cannot be
    /// read is logged and treated as a miss, so the run goes on against the API.
    pub async fn get(&self, ip: &IpAddr) -> Option<Lookup> {
        let (cache, api_url, max_age, address) =
            (self.cache.clone(), self.api_url.clone(), self.max_age, *ip);
        let found = tokio::task::spawn_blocking(move || {
            cache.get(&api_url, &address, max_age, clock::now())
        })
        .await;

        let answer = match found {
            Ok(Ok(answer)) => answer?,
            Ok(Err(err)) => {
                error!(%ip, error = %err, "cache read failed; asking the API instead");
                return None;
            }
            Err(err) => {
                error!(%ip, error = %err, "cache read task failed; asking the API instead");
                return None;
            }
        };

        debug!(%ip, "answered from the cache");
        Some(lookup_from(ip, answer))
    }

    /// Commits a final answer (`ok` or `not_found`) to the cache, and returns once it is
    /// committed. Other statuses are not final and are never stored, so the next run asks again.
    ///
    /// `lookup` comes from the fetch stage, which accepts a 200 body only after
    /// [`check_json`](crate::json_check::check_json), so the body is not parsed again here.
    pub async fn put(&self, lookup: &Lookup, ip: &IpAddr) {
        let Some(answer) = answer_from(lookup) else {
            return;
        };

        // Compression runs on the blocking pool, in parallel; only the commit is serialized.
        let (cache, address) = (self.cache.clone(), *ip);
        let prepared = tokio::task::spawn_blocking(move || {
            cache.prepare_answer(&address, &answer, BodyCheck::AlreadyChecked)
        })
        .await;
        let prepared = match prepared {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(err)) => return log_put_failure(ip, &err.to_string()),
            Err(err) => return log_put_failure(ip, &err.to_string()),
        };

        let stored = match &self.committer {
            Some(committer) => committer.commit(prepared).await,
            None => {
                let (cache, api_url) = (self.cache.clone(), self.api_url.clone());
                tokio::task::spawn_blocking(move || {
                    cache.put_prepared(&api_url, std::slice::from_ref(&prepared))
                })
                .await
                .map_err(|err| err.to_string())
                .and_then(|stored| stored.map_err(|err| err.to_string()))
            }
        };
        if let Err(err) = stored {
            log_put_failure(ip, &err);
        }
    }

    /// Returns the row of an address that `--offline` cannot answer.
    pub fn offline_miss(&self, ip: &IpAddr) -> Lookup {
        let mut lookup = Lookup::without_body(ip, Status::Failed);
        lookup.error_code = Some("NotCached".to_string());
        lookup.error_message = Some(format!(
            "no answer younger than {} in the cache at `{}`, and --offline forbids asking the API",
            describe_age(self.max_age),
            self.cache.path().display()
        ));
        lookup
    }
}

fn log_put_failure(ip: &IpAddr, error: &str) {
    error!(%ip, %error, "cache write failed; the answer is written to the output but will be fetched again next run");
}

fn lookup_from(ip: &IpAddr, answer: CachedAnswer) -> Lookup {
    let status = match answer.status {
        CachedStatus::Ok => Status::Ok,
        CachedStatus::NotFound => Status::NotFound,
    };
    let mut lookup = Lookup::without_body(ip, status);
    lookup.source = Some(AnswerSource::Cache);
    lookup.fetched_at = Some(answer.fetched_at);
    lookup.error_code = answer.error_code;
    lookup.error_message = answer.error_message;
    lookup.body = answer.body;
    lookup
}

fn answer_from(lookup: &Lookup) -> Option<CachedAnswer> {
    let fetched_at = lookup.fetched_at.unwrap_or_else(clock::now);
    match lookup.status {
        Status::Ok => Some(CachedAnswer::ok(lookup.body.clone()?, fetched_at)),
        Status::NotFound => Some(CachedAnswer::not_found(
            lookup
                .error_code
                .clone()
                .unwrap_or_else(|| "NotFoundError".to_string()),
            lookup.error_message.clone().unwrap_or_default(),
            fetched_at,
        )),
        _ => None,
    }
}

pub(crate) fn describe_age(age: Duration) -> String {
    let seconds = age.as_secs();
    if seconds.is_multiple_of(86_400) {
        format!("{} days", seconds / 86_400)
    } else if seconds.is_multiple_of(3600) {
        format!("{} hours", seconds / 3600)
    } else {
        format!("{seconds} s")
    }
}
