//! The writer end of the pipeline: a dedicated thread that collects flattened rows into Arrow
//! batches and hands them to the Parquet or CSV writers.
//!
//! Encoding and compression are CPU-bound and blocking, so they run off the async runtime. The
//! bounded channel in front of the thread carries back-pressure from the disk to the fetchers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::config::OutputSettings;
use crate::flatten::{self, FlatRecord, TableBuilder};
use crate::output::{self, OutputError, TableWriter};

/// Rows per Arrow batch handed to the writers. The builders of a batch hold every row's text
/// and engine rows: with realistic documents (94 engines, long whois), 4,096 rows made a
/// 20,000-address run peak at 207 MB of RSS and 1,024 rows at 93 MB (`/usr/bin/time -v`,
/// `--from` JSON Lines, 2-core test machine), at no measurable cost in speed.
const BATCH_ROWS: usize = 1024;

/// Rows waiting in front of the writer thread: enough to ride out one batch being encoded.
const CHANNEL_ROWS: usize = 256;

/// Handle to the writer thread.
pub struct Sink {
    tx: mpsc::Sender<FlatRecord>,
    commit: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), OutputError>>,
}

impl Sink {
    /// Opens the output files (as temporary files) and starts the writer thread. Opening first
    /// means an unwritable output directory fails before any request is sent.
    pub fn open(settings: &OutputSettings) -> anyhow::Result<Sink> {
        let mode = settings.engines;
        let main_schema = flatten::main_schema(mode);
        let main = output::create_writer(
            &settings.target,
            settings.format,
            main_schema,
            &flatten::main_columns(mode),
            &settings.csv,
        )
        .context("cannot open the output")?;

        let engines = match &settings.engines_target {
            Some(target) => Some(
                output::create_writer(
                    target,
                    settings.format,
                    flatten::engines_schema(),
                    &flatten::engine_columns(),
                    &settings.csv,
                )
                .context("cannot open the engines output")?,
            ),
            None => None,
        };

        let (tx, rx) = mpsc::channel(CHANNEL_ROWS);
        let commit = Arc::new(AtomicBool::new(false));
        let thread = {
            let commit = commit.clone();
            std::thread::Builder::new()
                .name("vt-enrich-writer".into())
                .spawn(move || write_rows(rx, TableBuilder::new(mode), main, engines, &commit))
                .context("cannot start the writer thread")?
        };

        Ok(Sink { tx, commit, thread })
    }

    /// Returns a sender for rows. Sending fails only once the writer thread has stopped on an
    /// error, which [`Sink::close`] then returns.
    pub fn sender(&self) -> mpsc::Sender<FlatRecord> {
        self.tx.clone()
    }

    /// Stops the writer thread. With `commit`, the remaining rows are written and the files
    /// are moved to their final names; without it, the temporary files are removed.
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

fn write_rows(
    mut rx: mpsc::Receiver<FlatRecord>,
    mut builder: TableBuilder,
    mut main: Box<dyn TableWriter>,
    mut engines: Option<Box<dyn TableWriter>>,
    commit: &AtomicBool,
) -> Result<(), OutputError> {
    while let Some(record) = rx.blocking_recv() {
        builder.push(record);
        if builder.len() >= BATCH_ROWS {
            write_batch(&mut builder, main.as_mut(), engines.as_deref_mut())?;
        }
    }

    if !commit.load(Ordering::Acquire) {
        // Dropping the writers removes their temporary files.
        return Ok(());
    }
    // The last batch is written even when empty, so an empty run still yields files with the
    // full schema.
    write_batch(&mut builder, main.as_mut(), engines.as_deref_mut())?;
    main.finish()?;
    if let Some(engines) = engines {
        engines.finish()?;
    }
    Ok(())
}

fn write_batch(
    builder: &mut TableBuilder,
    main: &mut dyn TableWriter,
    engines: Option<&mut (dyn TableWriter + 'static)>,
) -> Result<(), OutputError> {
    let batches = builder.finish();
    if batches.main.num_rows() > 0 {
        main.write(&batches.main)?;
    }
    if let (Some(writer), Some(batch)) = (engines, batches.engines.as_ref())
        && batch.num_rows() > 0
    {
        writer.write(batch)?;
    }
    Ok(())
}
