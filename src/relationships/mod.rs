//! Relationships of the IP address object (`--relationships`), one long table per
//! relationship next to the main output.
//!
//! ```text
//! lookup rows ──► tee ──► main writer
//!                  │ addresses with status ok
//!                  ▼
//!        ordered window of addresses ──► pager (cache, then fetch stage) ──► table writer
//! ```
//!
//! The stage taps the main rows on their way to the writer and queues every address whose
//! lookup is `ok` (from the API or the cache). Its relationships are then read page by page, in
//! input order, through the same fetch stage as the lookups. The bounded queue carries
//! back-pressure from the relationship requests to the lookups, so memory stays flat.

mod pager;
mod report;
mod settings;
mod sink;

use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cache::PageForm;
use crate::fetch::Resolver;
use crate::flatten::FlatRecord;
use crate::model::{Relationship, Status};
use crate::output::OutputError;
use pager::{End, Pager};
use sink::TableSink;

pub use pager::API_MAX_PAGE_SIZE;
pub use report::{RelationshipsSummary, TableSummary};
pub use settings::{DEFAULT_LIMIT, MAX_LIMIT, RelationshipSettings, resolve, table_path};

/// Addresses waiting for their relationships. Each one can cost several requests, so a short
/// queue is enough to keep the window busy.
const ADDRESS_QUEUE: usize = 64;

/// The running relationship stage of an `enrich` run.
pub struct Stage {
    /// Sender of addresses to fetch; handed to the tee by [`Stage::tee`].
    addresses: Option<mpsc::Sender<IpAddr>>,
    driver: JoinHandle<RelationshipsSummary>,
    sink: TableSink,
}

impl Stage {
    /// Opens the relationship tables and starts the stage, with up to `window` addresses in
    /// flight. Returns `None` when no relationship is requested, or when lookups read saved
    /// documents (`--from`), which contain no relationship pages.
    pub fn start(
        settings: Option<&RelationshipSettings>,
        resolver: &Arc<Resolver>,
        window: usize,
    ) -> anyhow::Result<Option<Stage>> {
        let Some(settings) = settings else {
            return Ok(None);
        };
        if matches!(resolver.as_ref(), Resolver::Saved(_)) {
            // TODO: saved objects fetched with `?relationships=` embed descriptor pages in a
            // `relationships` map; those could fill the tables, but they are ignored for now.
            warn!(
                "relationships are not fetched with --from: saved documents hold no relationship pages; no relationship table is written"
            );
            return Ok(None);
        }

        let sink = TableSink::open(settings)?;
        let pager = Arc::new(Pager::new(
            resolver.clone(),
            &settings.relationships,
            settings.form,
            settings.limit,
        ));
        let form = match settings.form {
            PageForm::Objects => "objects",
            PageForm::Descriptors => "descriptors",
        };
        let outputs: Vec<(Relationship, String)> = settings
            .tables
            .iter()
            .map(|(relationship, path)| (*relationship, path.display().to_string()))
            .collect();
        let summary = report::new_summary(settings.limit, form, &outputs);

        info!(
            relationships = %settings.relationships.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
            limit = settings.limit,
            form,
            "fetching relationships of every address found"
        );
        let (addresses, queue) = mpsc::channel(ADDRESS_QUEUE);
        let driver = tokio::spawn(drive(
            queue,
            pager,
            settings.relationships.clone(),
            sink.sender(),
            summary,
            window,
        ));
        Ok(Some(Stage {
            addresses: Some(addresses),
            driver,
            sink,
        }))
    }

    /// Returns a sender of main rows that passes every row on to `rows` and queues the
    /// address of each `ok` row for its relationships.
    pub fn tee(&mut self, rows: mpsc::Sender<FlatRecord>) -> mpsc::Sender<FlatRecord> {
        let Some(addresses) = self.addresses.take() else {
            return rows;
        };
        let (tx, mut rx) = mpsc::channel::<FlatRecord>(ADDRESS_QUEUE);
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                let found = (record.status == Status::Ok)
                    .then(|| record.ip.parse::<IpAddr>().ok())
                    .flatten();
                if rows.send(record).await.is_err() {
                    // The main writer stopped on an error, which its close reports.
                    break;
                }
                if let Some(ip) = found
                    && addresses.send(ip).await.is_err()
                {
                    break;
                }
            }
        });
        tx
    }

    /// Waits for the addresses already queued, then closes the tables: with `commit` they are
    /// written, without it they are discarded. Call it once the sender from [`Stage::tee`]
    /// and every clone of it are dropped.
    pub async fn close(mut self, commit: bool) -> Result<RelationshipsSummary, OutputError> {
        drop(self.addresses.take());
        let summary = match self.driver.await {
            Ok(summary) => Some(summary),
            Err(err) => {
                tracing::error!(error = %err, "the relationship stage panicked; its tables are not written");
                None
            }
        };
        let closed = self.sink.close(commit && summary.is_some()).await;
        match (closed, summary) {
            (Ok(()), Some(summary)) => Ok(summary),
            (Err(err), _) => Err(err),
            (Ok(()), None) => Err(OutputError::WriterPanicked),
        }
    }
}

/// Passes `rows` through `stage` when there is one, for the pipeline's single hook.
pub fn tee(stage: Option<&mut Stage>, rows: mpsc::Sender<FlatRecord>) -> mpsc::Sender<FlatRecord> {
    match stage {
        Some(stage) => stage.tee(rows),
        None => rows,
    }
}

/// Closes `stage` when there is one; see [`Stage::close`].
pub async fn close(
    stage: Option<Stage>,
    commit: bool,
) -> Result<Option<RelationshipsSummary>, OutputError> {
    match stage {
        Some(stage) => stage.close(commit).await.map(Some),
        None => Ok(None),
    }
}

/// Reads the relationships of each queued address, up to `window` addresses at once, and
/// hands each address's rows to the writer in queue order.
async fn drive(
    mut queue: mpsc::Receiver<IpAddr>,
    pager: Arc<Pager>,
    relationships: Vec<Relationship>,
    rows: mpsc::Sender<Vec<crate::flatten::related::RelatedRow>>,
    mut summary: RelationshipsSummary,
    window: usize,
) -> RelationshipsSummary {
    let relationships = Arc::new(relationships);
    let lists = futures::stream::poll_fn(move |cx| queue.poll_recv(cx))
        .map(|ip| {
            let (pager, relationships) = (pager.clone(), relationships.clone());
            // Spawning puts each address on the runtime's worker threads; its relationships
            // are read one after the other.
            tokio::spawn(async move {
                let mut lists = Vec::with_capacity(relationships.len());
                for relationship in relationships.iter() {
                    lists.push(pager.collect(ip, *relationship).await);
                }
                (ip, lists)
            })
        })
        .buffered(window.max(1));
    futures::pin_mut!(lists);

    while let Some(joined) = lists.next().await {
        let (ip, lists) = match joined {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(error = %err, "a relationship task panicked; its rows are missing");
                continue;
            }
        };

        let mut address_rows = Vec::new();
        for fetched in lists {
            if let End::Forbidden {
                first: true,
                code,
                message,
            } = &fetched.end
            {
                warn!(%ip, relationship = %fetched.relationship, code, %message, "the API rejected the relationship with 403; not requesting it for other addresses");
            }
            summary.record(&fetched);
            address_rows.extend(fetched.rows);
        }
        if !address_rows.is_empty() && rows.send(address_rows).await.is_err() {
            // The writer stopped on an error, which its close reports.
            break;
        }
    }

    for table in &summary.tables {
        info!(
            relationship = %table.relationship,
            rows = table.rows,
            pages_from_api = table.pages_from_api,
            pages_from_cache = table.pages_from_cache,
            output = %table.output,
            "relationship table done"
        );
    }
    summary
}
