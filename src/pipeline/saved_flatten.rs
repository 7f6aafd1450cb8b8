//! Flattening of saved documents for `vt-enrich flatten`, spread over the cores.

use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::fetch::saved::SavedIndex;
use crate::flatten::{self, FlatRecord};
use crate::report::Tally;

/// Documents flattened per blocking task. A document of about 22 kB takes about 0.1 ms to
/// flatten, so a chunk is a few milliseconds of work: long enough to amortise the task hand-off,
/// short enough to keep the rows in flight (chunks times this) to a few megabytes.
const CHUNK_DOCUMENTS: usize = 64;

/// Flattens the document of every address of `index` on the blocking pool, one chunk per task
/// with one task per core at once, and sends the rows to `rows` in index order. Returns early
/// when the writer has stopped; the writer reports its error when it is closed.
pub(super) async fn flatten_index(
    index: SavedIndex,
    rows: &mpsc::Sender<FlatRecord>,
    tally: &Tally,
) -> anyhow::Result<()> {
    let index = Arc::new(index);
    let addresses: Vec<IpAddr> = index.addresses().copied().collect();
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());

    let chunks = futures::stream::iter(addresses.chunks(CHUNK_DOCUMENTS))
        .map(|chunk| {
            let (index, chunk) = (index.clone(), chunk.to_vec());
            tokio::task::spawn_blocking(move || {
                chunk
                    .iter()
                    .map(|ip| flatten::flatten(index.lookup(ip)))
                    .collect::<Vec<FlatRecord>>()
            })
        })
        // Twice the cores, so that a core starts the next chunk while the rows of the last one
        // are being sent.
        .buffered(cores * 2);
    futures::pin_mut!(chunks);

    while let Some(joined) = chunks.next().await {
        let records = joined.map_err(|err| anyhow::anyhow!("a flatten task failed: {err}"))?;
        for record in records {
            tally.record(record.status, record.source);
            if rows.send(record).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}
