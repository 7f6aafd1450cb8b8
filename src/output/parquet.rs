//! Parquet writer: zstd compression, bounded row groups, documented columns.
//!
//! `ArrowWriter` embeds the Arrow schema (with each field's `doc` metadata) in the file, so
//! readers get the timestamp timezone and list types back. The column documentation is also
//! stored as JSON under [`COLUMNS_METADATA_KEY`] for tools that only read Parquet metadata.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::atomic::AtomicFile;
use super::{OutputError, TableWriter, check_schema};
use crate::flatten::{ColumnDoc, SCHEMA_VERSION};

/// Key-value metadata entry with the JSON array of `{name, data_type, doc}` column docs.
pub const COLUMNS_METADATA_KEY: &str = "vt_enrich.columns";

/// Key-value metadata entry with [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_METADATA_KEY: &str = "vt_enrich.schema_version";

/// Maximum rows per row group, so that readers can load a large file one row group at a time
/// and the writer holds at most this many encoded rows in memory.
pub const MAX_ROW_GROUP_ROWS: usize = 8 * 1024;

/// Maximum estimated encoded size of a row group in bytes. A row group is flushed at whichever
/// limit comes first, so rows with long whois texts cannot make a row group grow unbounded.
pub const MAX_ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

/// zstd level 3 is zstd's own default: a good ratio at several hundred MB/s.
const ZSTD_LEVEL: i32 = 3;

pub(crate) struct ParquetTableWriter {
    writer: ArrowWriter<File>,
    file: AtomicFile,
    schema: SchemaRef,
}

fn properties(columns: &[ColumnDoc]) -> Result<WriterProperties, String> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|error| error.to_string())?;
    let columns_json = serde_json::to_string(columns).map_err(|error| error.to_string())?;
    let metadata = vec![
        KeyValue::new(
            SCHEMA_VERSION_METADATA_KEY.to_string(),
            SCHEMA_VERSION.to_string(),
        ),
        KeyValue::new(COLUMNS_METADATA_KEY.to_string(), columns_json),
    ];
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_created_by(format!("vt-enrich {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build())
}

impl ParquetTableWriter {
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        columns: &[ColumnDoc],
    ) -> Result<Self, OutputError> {
        let file = AtomicFile::create(path)?;
        let props = properties(columns).map_err(|detail| OutputError::Parquet {
            path: file.describe(),
            source: parquet::errors::ParquetError::General(detail),
        })?;
        let writer = ArrowWriter::try_new(file.handle()?, schema.clone(), Some(props)).map_err(
            |source| OutputError::Parquet {
                path: file.describe(),
                source,
            },
        )?;
        Ok(ParquetTableWriter {
            writer,
            file,
            schema,
        })
    }

    fn error(&self, source: parquet::errors::ParquetError) -> OutputError {
        OutputError::Parquet {
            path: self.file.describe(),
            source,
        }
    }
}

impl TableWriter for ParquetTableWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        check_schema(&self.file.describe(), &self.schema, batch)?;
        self.writer
            .write(batch)
            .map_err(|source| self.error(source))
    }

    fn finish(self: Box<Self>) -> Result<(), OutputError> {
        let ParquetTableWriter { writer, file, .. } = *self;
        // `into_inner` writes the footer and flushes the buffered bytes to the file. In parquet
        // 60.1 it writes the footer even after `finish`, so only one of the two may be called.
        if let Err(source) = writer.into_inner() {
            return Err(OutputError::Parquet {
                path: file.describe(),
                source,
            });
        }
        file.commit()
    }
}
