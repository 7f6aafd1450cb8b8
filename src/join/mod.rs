//! Join mode (`--join`): every input row comes back, in order, with the enrichment of each of
//! its IP columns beside it.
//!
//! ```text
//! pass 1: input ─► lookups, flattened (each distinct value once) ─► Spool ─► AnswerStore
//!                                                                      └─► engines table
//! pass 2: input again, row by row ─► rows by key ─► joined batches ─► Parquet / CSV
//! ```
//!
//! Reading the input twice keeps memory flat in its size: only the answers, compressed on disk,
//! and one batch of rows are held. Stdin is copied to a temporary file first, because it can be
//! read only once.

mod schema;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringBuilder, UInt32Array};
use arrow::compute::take;
use csv::ByteRecord;
use tokio::sync::mpsc;

use crate::config::OutputSettings;
use crate::flatten::{self, EnginesMode, FlatRecord, TableBuilder};
use crate::input::{self, Flow, InputOptions, TableLayout};
use crate::output::{self, TableWriter};

pub use schema::{JoinedSchema, joined_schema};
pub use store::{AnswerStore, StoreError};

/// Input rows per joined batch, as in the main pipeline's writer.
const BATCH_ROWS: usize = 1024;

/// Answers stored per transaction in the first pass.
const STORE_BATCH: usize = 512;

/// Answers waiting in front of the spool thread.
const SPOOL_CHANNEL: usize = 256;

/// The receiving end of the first pass: a thread that writes each value's engine rows to the
/// engines table and stores the rest of its row by key.
pub struct Spool {
    tx: mpsc::Sender<FlatRecord>,
    thread: JoinHandle<Result<Spooled, anyhow::Error>>,
}

/// Output of the first pass, read by the second.
pub struct Spooled {
    pub store: AnswerStore,
    /// The engines table, complete but not yet moved into place.
    pub engines: Option<Box<dyn TableWriter>>,
}

impl Spool {
    /// Creates the store, opens the engines table when `output` has one, and starts the thread.
    pub fn open(output: &OutputSettings) -> anyhow::Result<Spool> {
        let store = AnswerStore::create()?;
        let engines = open_engines(output)?;
        // Wide mode needs the engine results in the joined rows themselves.
        let keep_engines = output.engines == EnginesMode::Wide;
        let (tx, rx) = mpsc::channel(SPOOL_CHANNEL);
        let thread = std::thread::Builder::new()
            .name("vt-enrich-spool".into())
            .spawn(move || store_answers(rx, store, engines, keep_engines))
            .context("cannot start the answer spool thread")?;
        Ok(Spool { tx, thread })
    }

    /// Returns a sender for rows. Sending fails only once the thread has stopped on an error,
    /// which [`Spool::close`] then returns.
    pub fn sender(&self) -> mpsc::Sender<FlatRecord> {
        self.tx.clone()
    }

    /// Stores what is still queued and returns the store and the engines table.
    pub async fn close(self) -> anyhow::Result<Spooled> {
        drop(self.tx);
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("the answer spool thread did not finish")?;
        joined.map_err(|_| anyhow::anyhow!("the answer spool thread panicked"))?
    }
}

fn open_engines(output: &OutputSettings) -> anyhow::Result<Option<Box<dyn TableWriter>>> {
    let Some(target) = &output.engines_target else {
        return Ok(None);
    };
    let writer = output::create_writer(
        target,
        output.format,
        flatten::engines_schema(),
        &flatten::engine_columns(),
        &output.csv,
    )
    .context("cannot open the engines output")?;
    Ok(Some(writer))
}

fn store_answers(
    mut rx: mpsc::Receiver<FlatRecord>,
    mut store: AnswerStore,
    mut engines: Option<Box<dyn TableWriter>>,
    keep_engines: bool,
) -> anyhow::Result<Spooled> {
    let mut pending = Vec::with_capacity(STORE_BATCH);
    let mut engine_rows = TableBuilder::new(EnginesMode::Long);
    while let Some(mut record) = rx.blocking_recv() {
        if !keep_engines {
            let results = std::mem::take(&mut record.engines);
            if engines.is_some() && !results.is_empty() {
                engine_rows.push(engines_only(&record, results));
            }
        }
        pending.push(record);
        if pending.len() >= STORE_BATCH {
            flush(
                &mut store,
                &mut pending,
                &mut engine_rows,
                engines.as_deref_mut(),
            )?;
        }
    }
    flush(
        &mut store,
        &mut pending,
        &mut engine_rows,
        engines.as_deref_mut(),
    )?;
    Ok(Spooled { store, engines })
}

fn flush(
    store: &mut AnswerStore,
    pending: &mut Vec<FlatRecord>,
    engine_rows: &mut TableBuilder,
    engines: Option<&mut (dyn TableWriter + 'static)>,
) -> anyhow::Result<()> {
    store.put_all(pending)?;
    pending.clear();

    let batches = engine_rows.finish();
    if let (Some(writer), Some(batch)) = (engines, batches.engines)
        && batch.num_rows() > 0
    {
        writer
            .write(&batch)
            .context("cannot write the engines output")?;
    }
    Ok(())
}

/// Returns a row that carries only `record`'s address and engine results, for the engines table.
fn engines_only(record: &FlatRecord, engines: Vec<flatten::EngineResult>) -> FlatRecord {
    FlatRecord {
        ip: record.ip.clone(),
        ip_version: record.ip_version,
        status: record.status,
        error_code: None,
        error_message: None,
        fetched_at: None,
        source: None,
        attributes: Default::default(),
        engines,
        extra_attributes: None,
    }
}

/// Counts of the second pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct JoinStats {
    /// Input rows written, each with its enrichment.
    pub rows: u64,
    /// Cells of the IP columns whose value had no stored answer (the input changed between
    /// the passes); their enrichment is null.
    pub unanswered_cells: u64,
}

/// Reads the input at `path` again with the first pass's `layout` and writes every row with
/// the enrichment of its IP columns, plus the engines table when `output` has one.
///
/// Blocking: run it off the async runtime. The files appear under their final names only
/// when everything was written.
pub fn write_joined(
    path: &Path,
    input: &InputOptions,
    layout: &TableLayout,
    spooled: Spooled,
    output: &OutputSettings,
) -> anyhow::Result<JoinStats> {
    let joined = joined_schema(layout, output.engines);
    let store = &spooled.store;
    let mut writers = JoinWriters::create(&joined, output, spooled.engines)?;
    let mut batch = JoinBatch::new(layout, &joined, output.engines);

    let mut failure = None;
    let mut visit = |record: &ByteRecord| {
        batch.rows.push(record.clone());
        if batch.rows.len() < BATCH_ROWS {
            return Flow::Continue;
        }
        match batch.write(store, &mut writers) {
            Ok(()) => Flow::Continue,
            Err(error) => {
                failure = Some(error);
                Flow::Stop
            }
        }
    };
    input::read_rows(path, input, layout, &mut visit)?;
    if let Some(error) = failure {
        return Err(error);
    }

    batch.write(store, &mut writers)?;
    writers.finish()?;
    Ok(batch.stats)
}

/// The joined table's writer and the engines table's.
struct JoinWriters {
    main: Box<dyn TableWriter>,
    engines: Option<Box<dyn TableWriter>>,
}

impl JoinWriters {
    fn create(
        joined: &JoinedSchema,
        output: &OutputSettings,
        engines: Option<Box<dyn TableWriter>>,
    ) -> anyhow::Result<JoinWriters> {
        let main = output::create_writer(
            &output.target,
            output.format,
            joined.schema.clone(),
            &joined.docs,
            &output.csv,
        )
        .context("cannot open the output")?;
        Ok(JoinWriters { main, engines })
    }

    fn finish(self) -> anyhow::Result<()> {
        self.main.finish().context("cannot write the output")?;
        if let Some(engines) = self.engines {
            engines
                .finish()
                .context("cannot write the engines output")?;
        }
        Ok(())
    }
}

/// One batch of input rows on its way to the joined table.
struct JoinBatch<'a> {
    layout: &'a TableLayout,
    joined: &'a JoinedSchema,
    mode: EnginesMode,
    rows: Vec<ByteRecord>,
    stats: JoinStats,
}

impl<'a> JoinBatch<'a> {
    fn new(layout: &'a TableLayout, joined: &'a JoinedSchema, mode: EnginesMode) -> Self {
        JoinBatch {
            layout,
            joined,
            mode,
            rows: Vec::with_capacity(BATCH_ROWS),
            stats: JoinStats::default(),
        }
    }

    /// Writes the rows collected so far and empties the batch.
    fn write(&mut self, store: &AnswerStore, writers: &mut JoinWriters) -> anyhow::Result<()> {
        // Taken out for the duration, and put back empty to reuse its allocation.
        let mut rows = std::mem::take(&mut self.rows);
        let mut arrays = self.input_arrays(&rows);
        for &column in &self.layout.columns {
            let enrichment = self.enrichment(&rows, column, store)?;
            arrays.extend(enrichment);
        }

        let batch = RecordBatch::try_new(self.joined.schema.clone(), arrays)
            .context("joined columns do not match the joined schema")?;
        // The writers put the schema in the file even when no batch was written.
        if batch.num_rows() > 0 {
            writers
                .main
                .write(&batch)
                .context("cannot write the output")?;
        }
        self.stats.rows += rows.len() as u64;
        rows.clear();
        self.rows = rows;
        Ok(())
    }

    /// Returns one text array per input column. A cell missing from a short row is null;
    /// cells beyond the header of a long row have no column and are left out.
    fn input_arrays(&self, rows: &[ByteRecord]) -> Vec<ArrayRef> {
        (0..self.joined.input_columns)
            .map(|index| {
                let mut builder = StringBuilder::new();
                for row in rows {
                    match row.get(index) {
                        Some(cell) => builder.append_value(String::from_utf8_lossy(cell)),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish()) as ArrayRef
            })
            .collect()
    }

    /// Returns the enrichment arrays of IP column `column` for every row of the batch.
    ///
    /// Each distinct value of the batch is read once into a small table. Every row then takes
    /// its value's row of that table, and a blank cell takes nulls.
    fn enrichment(
        &mut self,
        rows: &[ByteRecord],
        column: usize,
        store: &AnswerStore,
    ) -> anyhow::Result<Vec<ArrayRef>> {
        let mut builder = TableBuilder::new(self.mode);
        let mut positions: HashMap<String, Option<u32>> = HashMap::new();
        let mut indices = Vec::with_capacity(rows.len());

        for row in rows {
            let key = row
                .get(column)
                .and_then(|cell| input::lookup_key(&String::from_utf8_lossy(cell)));
            let Some(key) = key else {
                indices.push(None);
                continue;
            };
            if let Some(position) = positions.get(&key) {
                indices.push(*position);
                continue;
            }

            let position = match store.get(&key)? {
                Some(record) => {
                    let position = builder.len() as u32;
                    builder.push(record);
                    Some(position)
                }
                None => {
                    self.stats.unanswered_cells += 1;
                    tracing::warn!(value = %key, "no answer was stored for this value; its enrichment is left empty");
                    None
                }
            };
            positions.insert(key, position);
            indices.push(position);
        }

        // Engine rows were written in the first pass; only Wide mode keeps them in the rows.
        let distinct = builder.finish();
        let indices = UInt32Array::from(indices);
        distinct
            .main
            .columns()
            .iter()
            .map(|array| {
                take(array.as_ref(), &indices, None).context("cannot join enrichment rows")
            })
            .collect()
    }
}
