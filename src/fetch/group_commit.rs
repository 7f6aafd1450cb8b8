//! Group commit of answers to the cache: answers that arrive while a transaction runs are
//! committed together in the next one, and each caller is told when its own answer is durable.
//!
//! A transaction per answer capped a run at what one SQLite connection commits per second, with
//! every lookup slot waiting its turn for the connection. With group commit, the number of
//! transactions falls to about one per commit time under load, and a caller still returns only
//! after its answer is committed. So a kill loses at most the answers still waiting, which are
//! at most one per concurrency slot.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::cache::{Cache, PreparedAnswer};

/// Answers committed in one transaction at most. A transaction of 256 answers of about 3 kB
/// compressed holds the write lock for a few milliseconds, so other processes sharing the file
/// are not held up for long.
const MAX_BATCH: usize = 256;

/// One answer waiting for the committer, and where to report its outcome.
struct Pending {
    answer: PreparedAnswer,
    done: oneshot::Sender<Result<(), String>>,
}

/// The committer thread of one cache and API root.
pub struct GroupCommit {
    queue: Option<mpsc::Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the committer thread for answers from the API at `api_url`.
    pub fn start(cache: Arc<Cache>, api_url: String) -> std::io::Result<GroupCommit> {
        let (queue, pending) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cache-commit".to_string())
            .spawn(move || run_committer(&cache, &api_url, &pending))?;
        Ok(GroupCommit {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Commits `answer` with whatever else is waiting, and returns once it is committed.
    /// The error is the cache's message when the transaction failed.
    pub async fn commit(&self, answer: PreparedAnswer) -> Result<(), String> {
        let (done, outcome) = oneshot::channel();
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| "the cache committer has stopped".to_string())?;
        queue
            .send(Pending { answer, done })
            .map_err(|_| "the cache committer has stopped".to_string())?;
        outcome
            .await
            .map_err(|_| "the cache committer stopped before the commit".to_string())?
    }
}

impl Drop for GroupCommit {
    /// Closes the queue and waits for the committer to finish what it holds.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the cache committer thread panicked; answers it held were not stored");
        }
    }
}

/// Commits batches until every sender is gone: waits for one answer, takes whatever else has
/// arrived up to [`MAX_BATCH`], commits them in one transaction and reports to each caller.
fn run_committer(cache: &Cache, api_url: &str, pending: &mpsc::Receiver<Pending>) {
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }

        let (answers, waiters): (Vec<PreparedAnswer>, Vec<_>) = batch
            .into_iter()
            .map(|item| (item.answer, item.done))
            .unzip();
        let outcome = cache
            .put_prepared(api_url, &answers)
            .map_err(|err| err.to_string());
        for waiter in waiters {
            // A caller that went away (an interrupted lookup) needs no report.
            let _ = waiter.send(outcome.clone());
        }
    }
}
