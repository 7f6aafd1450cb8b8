//! The Arrow schema of each relationship table and the builder that turns rows into batches.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Int8Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::model::Relationship;

use super::super::schema::{ColumnDoc, Kind, TIMESTAMP_TIMEZONE, column_doc, field};
use super::columns::{LEADING, TRAILING, columns};
use super::{Cell, RelatedRow};

/// Lists every column of a relationship's table with its kind and documentation, in output
/// order.
fn specs(relationship: Relationship) -> Vec<(&'static str, Kind, &'static str)> {
    LEADING
        .iter()
        .copied()
        .chain(
            columns(relationship)
                .iter()
                .map(|column| (column.name, column.read.kind(), column.doc)),
        )
        .chain(TRAILING.iter().copied())
        .collect()
}

/// Lists the columns of a relationship's table with their types and documentation.
pub fn related_columns(relationship: Relationship) -> Vec<ColumnDoc> {
    specs(relationship)
        .into_iter()
        .map(|(name, kind, doc)| column_doc(name, kind, doc))
        .collect()
}

/// Returns the Arrow schema of a relationship's table, built once per relationship. It
/// depends only on the relationship, never on the pages.
pub fn related_schema(relationship: Relationship) -> SchemaRef {
    static SCHEMAS: [OnceLock<SchemaRef>; Relationship::ALL.len()] =
        [const { OnceLock::new() }; Relationship::ALL.len()];
    let index = Relationship::ALL
        .iter()
        .position(|candidate| *candidate == relationship)
        .unwrap_or(0);
    SCHEMAS[index]
        .get_or_init(|| {
            let fields: Vec<_> = specs(relationship)
                .into_iter()
                .map(|(name, kind, doc)| field(name, kind, doc))
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Builder of one column.
enum ColumnBuilder {
    Text(StringBuilder),
    Int8(Int8Builder),
    Integer(Int64Builder),
    Micros(TimestampMicrosecondBuilder),
    TextList(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> ColumnBuilder {
        match kind {
            Kind::Utf8 => ColumnBuilder::Text(StringBuilder::new()),
            Kind::Int8 => ColumnBuilder::Int8(Int8Builder::new()),
            Kind::Int64 => ColumnBuilder::Integer(Int64Builder::new()),
            Kind::Timestamp => ColumnBuilder::Micros(
                TimestampMicrosecondBuilder::new().with_timezone(TIMESTAMP_TIMEZONE),
            ),
            Kind::Utf8List => ColumnBuilder::TextList(ListBuilder::new(StringBuilder::new())),
        }
    }

    /// Appends `cell`, or a null when the cell does not fit the column. Rows are built by
    /// [`super::flatten_page`] from the same column list, so a mismatch is never expected.
    fn append(&mut self, cell: Cell) {
        match (self, cell) {
            (ColumnBuilder::Text(builder), Cell::Text(text)) => builder.append_value(text),
            (ColumnBuilder::Text(builder), _) => builder.append_null(),
            (ColumnBuilder::Int8(builder), Cell::Integer(value)) => {
                builder.append_option(i8::try_from(value).ok())
            }
            (ColumnBuilder::Int8(builder), _) => builder.append_null(),
            (ColumnBuilder::Integer(builder), Cell::Integer(value)) => builder.append_value(value),
            (ColumnBuilder::Integer(builder), _) => builder.append_null(),
            (ColumnBuilder::Micros(builder), Cell::Micros(micros)) => builder.append_value(micros),
            (ColumnBuilder::Micros(builder), _) => builder.append_null(),
            (ColumnBuilder::TextList(builder), Cell::TextList(items)) => {
                for item in items {
                    builder.values().append_value(item);
                }
                builder.append(true);
            }
            (ColumnBuilder::TextList(builder), _) => builder.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int8(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Integer(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Micros(builder) => Arc::new(builder.finish()),
            ColumnBuilder::TextList(builder) => Arc::new(builder.finish()),
        }
    }
}

fn text(value: Option<String>) -> Cell {
    value.map_or(Cell::Null, Cell::Text)
}

/// Collects the rows of one relationship into record batches with [`related_schema`].
pub struct RelatedTableBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    /// Typed columns of the relationship, between the leading and trailing ones.
    typed: usize,
    rows: usize,
}

impl RelatedTableBuilder {
    /// Creates an empty builder for `relationship`'s table.
    pub fn new(relationship: Relationship) -> RelatedTableBuilder {
        let columns = specs(relationship)
            .into_iter()
            .map(|(_, kind, _)| ColumnBuilder::new(kind))
            .collect();
        RelatedTableBuilder {
            schema: related_schema(relationship),
            columns,
            typed: super::columns::columns(relationship).len(),
            rows: 0,
        }
    }

    /// Rows pushed since the last [`RelatedTableBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Returns whether no row was pushed since the last [`RelatedTableBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row. Its typed cells must be in the order of the relationship's columns;
    /// missing cells are written as nulls.
    pub fn push(&mut self, row: RelatedRow) {
        let RelatedRow {
            ip,
            relationship,
            position,
            id,
            object_type,
            error_code,
            error_message,
            fetched_at,
            source,
            cells,
            context_attributes,
            extra_attributes,
        } = row;

        let leading = [
            Cell::Text(ip),
            Cell::Text(relationship.as_str().to_string()),
            position.map_or(Cell::Null, |position| Cell::Integer(i64::from(position))),
            text(id),
            text(object_type),
            text(error_code),
            text(error_message),
            fetched_at.map_or(Cell::Null, |at| Cell::Micros(at.timestamp_micros())),
            text(source.map(|source| source.as_str().to_string())),
        ];
        let typed = cells
            .into_iter()
            .chain(std::iter::repeat(Cell::Null))
            .take(self.typed);
        let trailing = [text(context_attributes), text(extra_attributes)];

        for (builder, cell) in self
            .columns
            .iter_mut()
            .zip(leading.into_iter().chain(typed).chain(trailing))
        {
            builder.append(cell);
        }
        self.rows += 1;
    }

    /// Returns the rows pushed so far as one batch and leaves the builder empty.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .expect("relationship builders match related_schema()")
    }
}
