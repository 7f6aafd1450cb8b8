//! Measures flattening throughput on the real documents in `tests/data/responses`.
//!
//! Run with `cargo run --release --example flatten_throughput`. The figure covers `flatten`
//! plus `TableBuilder::push` and `finish` on one thread, not the writers.

use std::time::Instant;

use vt_enrich::flatten::{EnginesMode, TableBuilder, document_id, flatten};
use vt_enrich::model::{Lookup, Status};

fn main() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/responses");
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(directory).expect("responses directory") {
        let body = std::fs::read(entry.expect("directory entry").path()).expect("readable file");
        if document_id(&body).is_ok() {
            bodies.push(body);
        }
    }
    let bytes_per_round: usize = bodies.iter().map(Vec::len).sum();

    for mode in [EnginesMode::Long, EnginesMode::Wide, EnginesMode::None] {
        let mut builder = TableBuilder::new(mode);
        let rounds = 2_000;
        let start = Instant::now();
        for _ in 0..rounds {
            for body in &bodies {
                builder.push(flatten(Lookup {
                    ip: String::new(),
                    ip_version: None,
                    status: Status::Ok,
                    error_code: None,
                    error_message: None,
                    fetched_at: None,
                    source: None,
                    body: Some(body.clone()),
                }));
            }
            if builder.len() >= 8_192 {
                builder.finish();
            }
        }
        builder.finish();
        let seconds = start.elapsed().as_secs_f64();
        let megabytes = (bytes_per_round * rounds) as f64 / 1e6;
        println!(
            "{mode:?}: {:.0} MB/s of JSON ({megabytes:.0} MB in {seconds:.2} s)",
            megabytes / seconds
        );
    }
}
