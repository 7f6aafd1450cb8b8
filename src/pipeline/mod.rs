//! The pipeline: wires the stages together with bounded channels and decides how the run ends.
//!
//! ```text
//! input thread ──(InputItem, bounded)──► ordered window of lookup tasks ──► writer thread
//!  read, normalise,                      fetch or saved answer, then           Arrow batches,
//!  validate, dedupe                      flatten on the runtime's workers      Parquet / CSV
//! ```
//!
//! Rows come out in input order: the lookup window runs up to `window` lookups at once but
//! yields them in the order they went in, so two runs over the same input write the same file.

mod saved_flatten;
pub mod sink;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::OutputSettings;
use crate::exit::ExitStatus;
use crate::fetch::pacing::Stop;
use crate::fetch::saved::SavedIndex;
use crate::fetch::{FetchError, Resolver};
use crate::flatten::{self, FlatRecord};
use crate::input::{self, InputOptions, InputStats};
use crate::join;
use crate::model::{InputItem, Lookup, Status};
use crate::output::OutputTarget;
use crate::relationships;
use crate::report::Tally;
use crate::report::progress::{self, ProgressMode};
use crate::report::summary::{InputSummary, RunSummary};
use sink::Sink;

/// Distinct input values waiting between the input thread and the lookups.
const INPUT_CHANNEL: usize = 1024;

/// Everything an `enrich` run needs, already validated.
pub struct EnrichRun {
    pub input: InputOptions,
    pub output: OutputSettings,
    pub resolver: Resolver,
    /// Lookups started ahead of the oldest unfinished one. Larger than the concurrency so a
    /// slow retry does not stall the requests behind it.
    pub window: usize,
    pub progress: ProgressMode,
    pub per_minute: Option<std::num::NonZeroU32>,
    /// Write every input row with its answers (`--join`) instead of one row per address.
    pub join: bool,
    /// Relationship tables to write next to the output, with `--relationships`.
    pub relationships: Option<crate::relationships::RelationshipSettings>,
}

/// The output side of a run: the writer thread, or the join spool.
enum Outlet {
    Rows(Sink),
    Spool(join::Spool),
}

/// A run that stopped before producing its output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input could not be read: exit code 2. The rows looked up before the error are in
    /// the output.
    #[error("{source}")]
    Input {
        source: input::InputError,
        rows_written: u64,
        output: String,
    },
    /// The API rejected the key: exit code 1.
    #[error("{0}")]
    Unauthorized(String),
    /// The API server's TLS certificate was rejected: exit code 1.
    #[error("{0}")]
    TlsCertificate(String),
    /// A proxy rejected its credentials (407): exit code 1.
    #[error("{0}")]
    ProxyAuth(String),
}

/// Runs `vt-enrich enrich` and returns its summary.
pub async fn enrich(run: EnrichRun, halt: CancellationToken) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let resolver = Arc::new(run.resolver);
    let outlet = if run.join {
        Outlet::Spool(join::Spool::open(&run.output)?)
    } else {
        Outlet::Rows(Sink::open(&run.output)?)
    };
    let mut related =
        relationships::Stage::start(run.relationships.as_ref(), &resolver, run.window)?;

    let progress_stop = CancellationToken::new();
    let progress_task = {
        let resolver = resolver.clone();
        tokio::spawn(progress::run(
            run.progress,
            tally.clone(),
            Arc::new(move || resolver.counters().requests),
            run.per_minute,
            progress_stop.clone(),
        ))
    };

    // Steps: start the input thread, run the lookups in an ordered window, hand each answer to
    // the writer (or to the join spool), then finish the output.
    let (input_tx, input_rx) = tokio::sync::mpsc::channel(INPUT_CHANNEL);
    let reader = input::spawn_reader(run.input.clone(), input_tx);
    let rows = match &outlet {
        Outlet::Rows(sink) => sink.sender(),
        Outlet::Spool(spool) => spool.sender(),
    };
    let flow = drive(
        input_rx,
        resolver.clone(),
        relationships::tee(related.as_mut(), rows),
        tally.clone(),
        run.window,
        &halt,
    )
    .await;

    let input_result = join_reader(reader, matches!(flow, Flow::Interrupted)).await?;
    tally.input_done.store(true, Ordering::Relaxed);

    // Rows already looked up are written even when the input fails part-way: their requests
    // are spent, and the error is reported after the output is safe. An input that fails
    // before any row is done leaves an existing file at the target alone.
    let nothing_done = input_result.is_err() && tally.snapshot().done() == 0;
    let commit = matches!(flow, Flow::Finished | Flow::Interrupted) && !nothing_done;
    let closed = match outlet {
        Outlet::Rows(sink) => sink
            .close(commit)
            .await
            .map(|()| None)
            .context("cannot write the output"),
        Outlet::Spool(spool) => spool.close().await.map(Some),
    };
    let related = relationships::close(related, commit).await;
    progress_stop.cancel();
    let _ = progress_task.await;

    match &flow {
        Flow::Unauthorized(message) => return Err(RunError::Unauthorized(message.clone()).into()),
        Flow::TlsCertificate(message) => {
            return Err(RunError::TlsCertificate(message.clone()).into());
        }
        Flow::ProxyAuth(message) => return Err(RunError::ProxyAuth(message.clone()).into()),
        Flow::SinkFailed | Flow::Finished | Flow::Interrupted => {}
    }
    let store = closed?;
    let related = related.context("cannot write the relationship tables")?;
    let input_stats = match input_result {
        Ok(stats) => stats,
        Err(source) => {
            return Err(RunError::Input {
                source,
                rows_written: tally.snapshot().done(),
                output: describe_target(&run.output.target),
            }
            .into());
        }
    };

    warn_if_empty(&input_stats, &run.output.target);

    let mut rows_written = tally.snapshot().done();
    let mut output_written = true;
    if let Some(store) = store {
        if matches!(flow, Flow::Finished) {
            rows_written = write_joined(&run.input, &input_stats, store, &run.output).await?;
        } else {
            warn!(
                "the joined output is written only after every row was looked up, so it was not written; \
                 rerun the same command to finish (answers already fetched are in the cache)"
            );
            output_written = false;
            rows_written = 0;
        }
    }

    let mut status = exit_status(&tally, &flow, resolver.stopped());
    if related.as_ref().is_some_and(|related| related.incomplete()) {
        status = ExitStatus::Partial;
    }
    let mut summary = RunSummary::new(status, &tally.snapshot(), started.elapsed());
    summary.relationships = related;
    summary.rows_written = rows_written;
    if output_written {
        summary.output = describe_target(&run.output.target);
        summary.engines_output = run.output.engines_target.as_ref().map(describe_target);
    }
    summary.requests = resolver.counters().requests;
    summary.throttled = resolver.counters().throttled;
    summary.input = input_summary(&input_stats);
    summary.stop_reason = resolver
        .stopped()
        .filter(|stop| !matches!(stop, Stop::Cancelled))
        .map(|stop| stop.describe());
    summary.interrupted = matches!(flow, Flow::Interrupted);
    Ok(summary)
}

/// Runs the second pass of join mode off the runtime and returns the number of rows written.
async fn write_joined(
    input: &InputOptions,
    stats: &InputStats,
    spooled: join::Spooled,
    output: &OutputSettings,
) -> anyhow::Result<u64> {
    let Some(layout) = stats.tables.first().cloned() else {
        anyhow::bail!("--join found no CSV table in the input, so there is nothing to join");
    };
    if layout.columns.is_empty() {
        warn!(
            "no IP column could be chosen in an input without data rows, so the joined output has only the input's columns; \
             pass --column NAME so that it has the same columns on every run"
        );
    }
    let path = input
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| std::path::PathBuf::from("-"));
    let input = input.clone();
    let output = output.clone();

    info!(input = %path.display(), "writing every input row with its answers");
    let joined = tokio::task::spawn_blocking(move || {
        join::write_joined(&path, &input, &layout, spooled, &output)
    })
    .await
    .context("the join pass did not finish")??;
    if joined.unanswered_cells > 0 {
        warn!(
            cells = joined.unanswered_cells,
            "some values had no answer because the input changed while it was read; their enrichment is empty"
        );
    }
    Ok(joined.rows)
}

/// Says so when the input held no value at all, which an exit code of 0 and an empty file
/// would otherwise hide.
fn warn_if_empty(stats: &InputStats, target: &OutputTarget) {
    if stats.values_read == 0 {
        warn!(
            lines = stats.lines_read,
            output = %target.describe(),
            "the input contains no values to look up; the output has the full schema and no rows"
        );
    }
}

/// Outcome of the lookup loop.
#[derive(Debug)]
enum Flow {
    Finished,
    Interrupted,
    Unauthorized(String),
    TlsCertificate(String),
    ProxyAuth(String),
    /// The writer thread stopped on an error; `Sink::close` returns it.
    SinkFailed,
}

/// Runs every input item through its lookup and hands the rows, in input order, to the writer.
async fn drive(
    input_rx: tokio::sync::mpsc::Receiver<InputItem>,
    resolver: Arc<Resolver>,
    rows: mpsc::Sender<FlatRecord>,
    tally: Arc<Tally>,
    window: usize,
    halt: &CancellationToken,
) -> Flow {
    let counted = tally.clone();
    // After an interrupt no new value is taken from the input, but the lookups already started
    // are drained: those that finished are written, those cut short are left out.
    let lookups = tokio_stream_from(input_rx)
        .take_until(halt.clone().cancelled_owned())
        .map(move |item| {
            counted.queued.fetch_add(1, Ordering::Relaxed);
            let resolver = resolver.clone();
            // Spawning puts the flattening of each document on the runtime's worker threads.
            tokio::spawn(async move { resolve_item(item, &resolver).await })
        })
        .buffered(window.max(1));
    futures::pin_mut!(lookups);

    while let Some(joined) = lookups.next().await {
        let result = match joined {
            Ok(result) => result,
            Err(err) => {
                // A panic in one lookup is a bug, and its row is lost, so it is logged as an error.
                tracing::error!(error = %err, "a lookup task panicked; its row is missing");
                continue;
            }
        };

        let record = match result {
            Ok(record) => record,
            Err(FetchError::Interrupted) => continue,
            Err(FetchError::Unauthorized(stop)) => return Flow::Unauthorized(stop.describe()),
            Err(FetchError::TlsCertificate(stop)) => return Flow::TlsCertificate(stop.describe()),
            Err(FetchError::ProxyAuth(stop)) => return Flow::ProxyAuth(stop.describe()),
        };

        tally.record(record.status, record.source);
        if rows.send(record).await.is_err() {
            return Flow::SinkFailed;
        }
    }

    if halt.is_cancelled() {
        Flow::Interrupted
    } else {
        Flow::Finished
    }
}

/// Waits for the input thread and returns what it read. After an interrupt the thread may be
/// blocked reading a pipe that stays open, so the wait is bounded and the thread is left to
/// end with the process.
async fn join_reader(
    reader: std::thread::JoinHandle<Result<InputStats, input::InputError>>,
    interrupted: bool,
) -> anyhow::Result<Result<InputStats, input::InputError>> {
    let joined = tokio::task::spawn_blocking(move || reader.join());
    let joined = if interrupted {
        match tokio::time::timeout(std::time::Duration::from_secs(1), joined).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::debug!(
                    "the input thread is still reading; not waiting for it after the interrupt"
                );
                return Ok(Ok(InputStats::default()));
            }
        }
    } else {
        joined.await
    };
    joined
        .context("input thread did not finish")?
        .map_err(|_| anyhow::anyhow!("the input thread panicked"))
}

/// Turns one input item into its flattened row. Flattening runs here, inside the lookup's task,
/// so it uses the runtime's worker threads.
async fn resolve_item(item: InputItem, resolver: &Arc<Resolver>) -> Result<FlatRecord, FetchError> {
    let lookup = match item {
        InputItem::Lookup { ip, .. } => resolver.resolve(ip).await?,
        InputItem::Skipped {
            ip,
            location,
            reason,
        } => skipped(&ip, &location.to_string(), &reason),
        InputItem::Invalid {
            raw,
            location,
            reason,
        } => invalid(raw, &location.to_string(), &reason),
    };
    Ok(flatten::flatten(lookup))
}

fn skipped(ip: &IpAddr, location: &str, reason: &str) -> Lookup {
    let mut lookup = Lookup::without_body(ip, Status::Skipped);
    lookup.error_code = Some("NotGloballyRoutable".to_string());
    lookup.error_message = Some(format!(
        "{reason}; first seen at {location}; not sent (use --include-private to send it)"
    ));
    lookup
}

fn invalid(raw: String, location: &str, reason: &str) -> Lookup {
    Lookup {
        ip: raw,
        ip_version: None,
        status: Status::Invalid,
        error_code: Some("InvalidAddress".to_string()),
        error_message: Some(format!("{location}: {reason}")),
        fetched_at: None,
        source: None,
        body: None,
    }
}

/// Chooses the exit status from the final counters: anything short of a final answer for
/// every value is partial.
fn exit_status(tally: &Tally, flow: &Flow, stopped: Option<Stop>) -> ExitStatus {
    let snapshot = tally.snapshot();
    if matches!(flow, Flow::Interrupted) || stopped.is_some() {
        return ExitStatus::Partial;
    }
    if snapshot.failed > 0 || snapshot.quota_exhausted > 0 {
        return ExitStatus::Partial;
    }
    ExitStatus::Done
}

fn input_summary(stats: &InputStats) -> InputSummary {
    InputSummary {
        lines_read: stats.lines_read,
        values_read: stats.values_read,
        blank_values: stats.blank_values,
        duplicate_values: stats.duplicate_values,
        ragged_rows: stats.ragged_rows,
        columns_used: stats.columns_used.clone(),
    }
}

fn describe_target(target: &OutputTarget) -> String {
    match target {
        OutputTarget::Stdout => "-".to_string(),
        OutputTarget::File(path) => path.display().to_string(),
    }
}

/// Adapts a tokio receiver to a `Stream`.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Runs `vt-enrich flatten`: every saved document under `paths`, one row per distinct address,
/// in the order the documents were found.
pub async fn flatten_saved(
    paths: &[std::path::PathBuf],
    output: OutputSettings,
) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let tally = Tally::default();
    let sink = Sink::open(&output)?;
    let rows = sink.sender();
    let mut ignored = 0;

    for path in paths {
        let index =
            SavedIndex::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        ignored += index.stats.ignored;
        saved_flatten::flatten_index(index, &rows, &tally).await?;
    }
    drop(rows);
    sink.close(true).await.context("cannot write the output")?;

    if ignored > 0 {
        warn!(
            ignored,
            "some documents were not IP address objects and were left out"
        );
    }
    info!(rows = tally.snapshot().done(), "flattened saved documents");

    let status = if tally.snapshot().failed > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::Done
    };
    let mut summary = RunSummary::new(status, &tally.snapshot(), started.elapsed());
    summary.output = describe_target(&output.target);
    summary.engines_output = output.engines_target.as_ref().map(describe_target);
    Ok(summary)
}

/// Default lookup window for a concurrency: enough rows in flight that one slow retry does not
/// idle the other slots, bounded so memory stays flat.
pub fn window_for(concurrency: usize) -> usize {
    (concurrency * 8).clamp(64, 4096)
}
