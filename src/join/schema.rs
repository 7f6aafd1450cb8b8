//! Column names, types and docs of a joined table: the input's columns, then the enrichment
//! columns of each IP column under that column's name.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::flatten::{self, ColumnDoc, EnginesMode};
use crate::input::TableLayout;

/// The shape of one joined table.
pub struct JoinedSchema {
    pub schema: SchemaRef,
    pub docs: Vec<ColumnDoc>,
    /// Number of input columns at the start of the schema.
    pub input_columns: usize,
    /// Name prefix of each IP column, in the layout's order.
    pub prefixes: Vec<String>,
}

/// Builds the joined schema for an input read with `layout`.
///
/// Every column is nullable: a ragged row may lack an input cell, and a blank address has no
/// enrichment. A name that is empty, or taken by an earlier column, gets a numbered name, so
/// that pandas, Polars and DuckDB can address every column.
pub fn joined_schema(layout: &TableLayout, mode: EnginesMode) -> JoinedSchema {
    let mut taken = HashSet::new();
    let mut fields = Vec::new();
    let mut docs = Vec::new();

    let input_names = input_column_names(layout);
    for name in &input_names {
        let name = unique_name(name, &mut taken);
        fields.push(Field::new(&name, DataType::Utf8, true));
        docs.push(ColumnDoc {
            doc: format!("The input's column `{name}`, as read (UTF-8; invalid bytes replaced)."),
            name,
            data_type: "utf8".to_string(),
        });
    }

    let main_schema = flatten::main_schema(mode);
    let main_docs = flatten::main_columns(mode);
    let mut prefixes = Vec::new();
    for &column in &layout.columns {
        let prefix = input_names[column].clone();
        for (field, doc) in main_schema.fields().iter().zip(&main_docs) {
            let name = unique_name(&format!("{prefix}_{}", field.name()), &mut taken);
            fields.push(Field::new(&name, field.data_type().clone(), true));
            docs.push(ColumnDoc {
                doc: format!(
                    "`{}` of the address in `{prefix}`: {}",
                    field.name(),
                    doc.doc
                ),
                name,
                data_type: doc.data_type.clone(),
            });
        }
        prefixes.push(prefix);
    }

    JoinedSchema {
        schema: Arc::new(Schema::new(fields)),
        docs,
        input_columns: input_names.len(),
        prefixes,
    }
}

/// Names of the input columns: the header cells, or `column_N` (1-based) for a blank cell and
/// for every column of a file without a header row.
fn input_column_names(layout: &TableLayout) -> Vec<String> {
    layout
        .header
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            if layout.header_is_data || cell.is_empty() {
                format!("column_{}", index + 1)
            } else {
                cell.clone()
            }
        })
        .collect()
}

/// Returns `name`, or `name_2`, `name_3`, … when it is already taken, and marks it taken.
fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut suffix = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{name}_{suffix}");
        suffix += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(header: &[&str], columns: Vec<usize>, header_is_data: bool) -> TableLayout {
        TableLayout {
            delimiter: b',',
            header: header.iter().map(|cell| cell.to_string()).collect(),
            columns,
            header_is_data,
        }
    }

    #[test]
    fn enrichment_columns_follow_the_input_under_each_prefix() {
        let joined = joined_schema(
            &layout(&["ts", "src_ip", "dst_ip"], vec![1, 2], false),
            EnginesMode::Long,
        );
        let names: Vec<&str> = joined
            .schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        let per_column = flatten::main_schema(EnginesMode::Long).fields().len();

        assert_eq!(&names[..3], ["ts", "src_ip", "dst_ip"]);
        assert_eq!(names.len(), 3 + 2 * per_column);
        assert!(names.contains(&"src_ip_country"));
        assert!(names.contains(&"dst_ip_asn"));
        assert!(names.contains(&"dst_ip_status"));
        assert_eq!(joined.prefixes, ["src_ip", "dst_ip"]);
        assert_eq!(joined.docs.len(), names.len());
    }

    #[test]
    fn blank_repeated_and_clashing_names_are_numbered() {
        let joined = joined_schema(
            &layout(&["ip", "", "ip", "ip_status"], vec![0], false),
            EnginesMode::None,
        );
        let names: Vec<&str> = joined
            .schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();

        assert_eq!(&names[..4], ["ip", "column_2", "ip_2", "ip_status"]);
        assert!(names.contains(&"ip_status_2"));
        assert!(names.contains(&"ip_ip"));
    }

    #[test]
    fn a_file_without_header_gets_numbered_columns() {
        let joined = joined_schema(&layout(&["8.8.8.8", "x"], vec![0], true), EnginesMode::None);
        assert_eq!(joined.schema.field(0).name(), "column_1");
        assert_eq!(joined.prefixes, ["column_1"]);
    }
}
