//! The writer of the relationship tables: a dedicated thread, like the main table's, that
//! collects each relationship's rows into Arrow batches and writes one file per relationship.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::flatten::related::{RelatedRow, RelatedTableBuilder, related_columns, related_schema};
use crate::model::Relationship;
use crate::output::{self, OutputError, OutputTarget, TableWriter};

use super::RelationshipSettings;

/// Rows per relationship held before they are written as one batch. A row with a full file
/// object in `extra_attributes` can hold tens of kB, so batches stay smaller than the main
/// table's.
const BATCH_ROWS: usize = 512;

/// Addresses' rows waiting in front of the writer thread.
const CHANNEL_BATCHES: usize = 64;

/// Handle to the writer thread.
pub struct TableSink {
    tx: mpsc::Sender<Vec<RelatedRow>>,
    commit: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), OutputError>>,
}

/// One relationship's table in progress.
struct Table {
    builder: RelatedTableBuilder,
    writer: Box<dyn TableWriter>,
}

impl TableSink {
    /// Opens every table (as a temporary file) and starts the writer thread, so an unwritable
    /// directory fails before any request is sent.
    pub fn open(settings: &RelationshipSettings) -> anyhow::Result<TableSink> {
        let mut tables = HashMap::new();
        for (relationship, path) in &settings.tables {
            let writer = output::create_writer(
                &OutputTarget::File(path.clone()),
                settings.format,
                related_schema(*relationship),
                &related_columns(*relationship),
                &settings.csv,
            )
            .with_context(|| format!("cannot open the {relationship} table"))?;
            let table = Table {
                builder: RelatedTableBuilder::new(*relationship),
                writer,
            };
            tables.insert(*relationship, table);
        }

        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let commit = Arc::new(AtomicBool::new(false));
        let thread = {
            let commit = commit.clone();
            std::thread::Builder::new()
                .name("vt-enrich-relationship-writer".into())
                .spawn(move || write_tables(rx, tables, &commit))
                .context("cannot start the relationship writer thread")?
        };
        Ok(TableSink { tx, commit, thread })
    }

    /// Returns a sender for the rows of one address. Sending fails only once the writer thread
    /// has stopped on an error, which [`TableSink::close`] then returns.
    pub fn sender(&self) -> mpsc::Sender<Vec<RelatedRow>> {
        self.tx.clone()
    }

    /// Stops the writer thread once every other sender is dropped. With `commit`, the rest of
    /// the rows are written and the files moved to their final names; without it, the
    /// temporary files are removed.
    pub async fn close(self, commit: bool) -> Result<(), OutputError> {
        self.commit.store(commit, Ordering::Release);
        drop(self.tx);
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(OutputError::WriterPanicked),
        }
    }
}

fn write_tables(
    mut rx: mpsc::Receiver<Vec<RelatedRow>>,
    mut tables: HashMap<Relationship, Table>,
    commit: &AtomicBool,
) -> Result<(), OutputError> {
    while let Some(rows) = rx.blocking_recv() {
        for row in rows {
            // Rows of a relationship without a table cannot occur: the pager reads only the
            // relationships that the tables were opened for.
            let Some(table) = tables.get_mut(&row.relationship) else {
                continue;
            };
            table.builder.push(row);
            if table.builder.len() >= BATCH_ROWS {
                table.writer.write(&table.builder.finish())?;
            }
        }
    }

    if !commit.load(Ordering::Acquire) {
        // Dropping the writers removes their temporary files.
        return Ok(());
    }
    // A table without rows is still written, with its header or schema.
    for (_, mut table) in tables {
        if !table.builder.is_empty() {
            table.writer.write(&table.builder.finish())?;
        }
        table.writer.finish()?;
    }
    Ok(())
}
