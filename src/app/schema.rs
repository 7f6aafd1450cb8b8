//! `vt-enrich schema`: the output columns with their types and meanings.

use std::io::Write;

use crate::cli::{SchemaArgs, SchemaFormatArg};
use crate::config;
use crate::exit::ExitStatus;
use crate::flatten;
use crate::flatten::related::related_columns;

/// Prints the columns of the main table, of the engines table in `long` mode, and of the
/// relationship tables named by `--relationships`.
pub fn print_schema(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    let mode = config::schema_engines(args.engines);
    let main = flatten::main_columns(mode);
    let engines = flatten::engine_columns();
    let mut out = std::io::stdout().lock();

    match args.format {
        SchemaFormatArg::Json => {
            let mut tables =
                vec![serde_json::json!({"table": "main", "columns": columns_json(&main)})];
            if mode == flatten::EnginesMode::Long {
                tables.push(
                    serde_json::json!({"table": "engines", "columns": columns_json(&engines)}),
                );
            }
            for relationship in &args.relationships {
                let columns = related_columns(*relationship);
                tables.push(serde_json::json!({
                    "table": relationship.as_str(),
                    "columns": columns_json(&columns),
                }));
            }
            serde_json::to_writer_pretty(&mut out, &tables)?;
            writeln!(out)?;
        }
        SchemaFormatArg::Text => {
            write_columns(&mut out, "main table (-o PATH)", &main)?;
            if mode == flatten::EnginesMode::Long {
                writeln!(out)?;
                write_columns(&mut out, "engines table (<stem>.engines.<ext>)", &engines)?;
            }
            for relationship in &args.relationships {
                writeln!(out)?;
                let title = format!("{relationship} table (<stem>.{relationship}.<ext>)");
                write_columns(&mut out, &title, &related_columns(*relationship))?;
            }
        }
    }
    Ok(ExitStatus::Done)
}

fn columns_json(columns: &[flatten::ColumnDoc]) -> Vec<serde_json::Value> {
    columns
        .iter()
        .map(|column| serde_json::json!({"name": column.name, "type": column.data_type, "doc": column.doc}))
        .collect()
}

fn write_columns(
    out: &mut impl Write,
    title: &str,
    columns: &[flatten::ColumnDoc],
) -> std::io::Result<()> {
    writeln!(out, "{title}")?;
    let name_width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let type_width = columns.iter().map(|c| c.data_type.len()).max().unwrap_or(0);
    for column in columns {
        writeln!(
            out,
            "  {:name_width$}  {:type_width$}  {}",
            column.name, column.data_type, column.doc
        )?;
    }
    Ok(())
}
