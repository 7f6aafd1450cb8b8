//! Flattening and writing of real VirusTotal IP address objects.
//!
//! The documents are the `ip_*.json` responses in `tests/data/responses`, the largest being
//! `ip_8.8.8.8_2025_rich.json` (94 engines, whois, a certificate and extra attributes). Every
//! group uses `EnginesMode::Long`, the command-line default.
//!
//! Run with `cargo bench --bench flatten`. Figures are in `benches/README.md`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vt_enrich::flatten::{
    EnginesMode, FlatRecord, TableBatches, TableBuilder, engine_columns, engines_schema, flatten,
    main_columns, main_schema,
};
use vt_enrich::model::{Lookup, Status};
use vt_enrich::output::{CsvOptions, OutputFormat, OutputTarget, create_writer};

const RICH_DOCUMENT: &[u8] = include_bytes!("../tests/data/responses/ip_8.8.8.8_2025_rich.json");

/// Rows per batch, the same as the pipeline's batch size (`BATCH_ROWS` in `src/pipeline/sink.rs`).
const BATCH_ROWS: usize = 1024;

/// Returns the bodies of every `ip_*.json` response, sorted by file name so runs are comparable.
fn ip_documents() -> Vec<(String, Vec<u8>)> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/responses");
    let mut documents = Vec::new();
    let entries = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ip_") && name.ends_with(".json") {
            let body = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            documents.push((name, body));
        }
    }
    documents.sort();
    assert!(
        !documents.is_empty(),
        "no ip_*.json in {}",
        directory.display()
    );
    documents
}

/// Returns an `ok` lookup for `body`. An empty `ip` makes `flatten` take the document's id.
fn ok_lookup(ip: String, body: Vec<u8>) -> Lookup {
    Lookup {
        ip,
        ip_version: None,
        status: Status::Ok,
        error_code: None,
        error_message: None,
        fetched_at: None,
        source: None,
        body: Some(body),
    }
}

/// Returns a distinct public address for row `n`, so the `ip` column does not collapse to the
/// few ids of the sample documents when a writer dictionary-encodes it.
fn row_address(n: usize) -> String {
    format!("45.{}.{}.{}", 10 + n / 62_500, (n / 250) % 250, n % 250 + 1)
}

/// Returns `BATCH_ROWS` flattened records cycling through every sample document.
fn batch_records(documents: &[(String, Vec<u8>)]) -> Vec<FlatRecord> {
    (0..BATCH_ROWS)
        .map(|n| {
            let body = documents[n % documents.len()].1.clone();
            flatten(ok_lookup(row_address(n), body))
        })
        .collect()
}

fn filled_builder(records: &[FlatRecord]) -> TableBuilder {
    let mut builder = TableBuilder::new(EnginesMode::Long);
    for record in records {
        builder.push(record.clone());
    }
    builder
}

/// `flatten` plus `TableBuilder::push`, per document and over the whole sample set.
///
/// The cloned body of each lookup is made in the untimed setup, because in the product the
/// fetch stage hands over an owned body. Each timed routine starts from an empty builder, as
/// after every `finish` in the product.
fn flatten_and_push(c: &mut Criterion) {
    let documents = ip_documents();
    let mut group = c.benchmark_group("flatten_push");

    group.throughput(Throughput::Bytes(RICH_DOCUMENT.len() as u64));
    group.bench_function("rich_8.8.8.8", |b| {
        b.iter_batched(
            || {
                let lookup = ok_lookup(String::new(), RICH_DOCUMENT.to_vec());
                (TableBuilder::new(EnginesMode::Long), lookup)
            },
            |(mut builder, lookup)| {
                builder.push(flatten(lookup));
                builder
            },
            BatchSize::SmallInput,
        );
    });

    let total_bytes: usize = documents.iter().map(|(_, body)| body.len()).sum();
    group.throughput(Throughput::Bytes(total_bytes as u64));
    group.bench_function(format!("all_{}_ip_documents", documents.len()), |b| {
        b.iter_batched(
            || {
                let lookups: Vec<Lookup> = documents
                    .iter()
                    .map(|(_, body)| ok_lookup(String::new(), body.clone()))
                    .collect();
                (TableBuilder::new(EnginesMode::Long), lookups)
            },
            |(mut builder, lookups)| {
                for lookup in lookups {
                    builder.push(flatten(lookup));
                }
                builder
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// `TableBuilder::finish` on a builder holding one pipeline batch of records.
fn finish_batch(c: &mut Criterion) {
    let records = batch_records(&ip_documents());
    let mut group = c.benchmark_group("finish");
    // Flat sampling runs the untimed setup (1,024 pushes) once per timed call instead of
    // the 55 calls of linear sampling.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.bench_function(format!("{BATCH_ROWS}_rows"), |b| {
        // One builder per iteration: a full builder contains tens of megabytes, so criterion must
        // not set up many of them ahead of the timed calls.
        b.iter_batched(
            || filled_builder(&records),
            |mut builder| black_box(builder.finish()),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// Writes the main and the engines table of one batch to a new file in `directory`.
fn write_table(directory: &Path, format: OutputFormat, batches: &TableBatches, engines: bool) {
    let (schema, columns, batch, name) = if engines {
        let batch = batches
            .engines
            .as_ref()
            .expect("long mode has an engines table");
        (engines_schema(), engine_columns(), batch, "out.engines")
    } else {
        (
            main_schema(EnginesMode::Long),
            main_columns(EnginesMode::Long),
            &batches.main,
            "out",
        )
    };
    let path = directory.join(format!("{name}.{}", format.extension()));
    let target = OutputTarget::File(path);
    let mut writer = create_writer(&target, format, schema, &columns, &CsvOptions::default())
        .expect("writer created");
    writer.write(batch).expect("batch written");
    writer.finish().expect("file finished");
}

/// `create_writer`, `write` and `finish` for one batch, per format and table, in rows per second.
fn write_batches(c: &mut Criterion) {
    let records = batch_records(&ip_documents());
    let batches = filled_builder(&records).finish();
    let engine_rows = batches.engines.as_ref().map_or(0, |batch| batch.num_rows());
    let directory = tempfile::tempdir().expect("temporary directory");

    let mut group = c.benchmark_group("write");
    // A call takes tens of milliseconds, too long for criterion's linear sampling in 3 s.
    group.sampling_mode(SamplingMode::Flat);
    for format in [OutputFormat::Parquet, OutputFormat::Csv] {
        let extension = format.extension();
        group.throughput(Throughput::Elements(batches.main.num_rows() as u64));
        group.bench_function(
            format!("{extension}/main_{}_rows", batches.main.num_rows()),
            |b| {
                b.iter(|| write_table(directory.path(), format, &batches, false));
            },
        );
        group.throughput(Throughput::Elements(engine_rows as u64));
        group.bench_function(format!("{extension}/engines_{engine_rows}_rows"), |b| {
            b.iter(|| write_table(directory.path(), format, &batches, true));
        });
    }
    group.finish();
}

/// The check of every 200 body in the fetch stage (`IgnoredAny`), which the cache no longer
/// repeats, beside a `&RawValue` parse that also checks the UTF-8 of the whole body.
fn check_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_check");
    group.throughput(Throughput::Bytes(RICH_DOCUMENT.len() as u64));
    group.bench_function("ignored_any/rich_8.8.8.8", |b| {
        b.iter(|| vt_enrich::json_check::check_json(black_box(RICH_DOCUMENT)).unwrap());
    });
    group.bench_function("raw_value/rich_8.8.8.8", |b| {
        b.iter(|| {
            serde_json::from_slice::<&serde_json::value::RawValue>(black_box(RICH_DOCUMENT))
                .unwrap()
        });
    });
    group.finish();
}

/// Few, short samples keep `cargo bench` to a few minutes on a two-core machine.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = check_json, flatten_and_push, finish_batch, write_batches
}
criterion_main!(benches);
