//! One item of a relationship list: an object (`type`, `id`, `attributes`, and sometimes
//! `context_attributes`), a descriptor (`type` and `id` only), or an error in place of the
//! object.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::json::{
    ExtraObject, Leaf, Typed, epoch_seconds, integer, object_entries, split_entries, split_nested,
    store, string, string_list, utc_date_time_text,
};
use super::Cell;
use super::columns::{Column, Path, Read};

/// The parts of one item, before the row's identity is added.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ItemParts {
    pub id: Option<String>,
    pub object_type: Option<String>,
    /// The item's `error.code` and `error.message` when it came back as an error.
    pub error: Option<(String, String)>,
    /// One value per column of the table, in column order.
    pub cells: Vec<Cell>,
    pub context_attributes: Option<String>,
    pub extra_attributes: Option<String>,
}

/// The `error` member of an item, `{"code": ..., "message": ...}` as in VirusTotal's error
/// responses.
#[derive(Deserialize)]
struct ItemError {
    code: Option<String>,
    message: Option<String>,
}

/// Splits one list item into the columns of `columns`. Values without a column, and values of
/// a type their column cannot hold, go to `extra_attributes` or `context_attributes`, so no
/// value is lost. Returns `None` when the item is not a JSON object.
pub(super) fn split_item(raw: &RawValue, columns: &[Column]) -> Option<ItemParts> {
    let entries = object_entries(raw)?;
    let mut slots: Vec<Option<Cell>> = vec![None; columns.len()];
    let mut parts = ItemParts::default();
    let mut extra = ExtraObject::default();

    for (key, value) in entries {
        match key.as_str() {
            "id" => keep_text(&mut parts.id, &mut extra, "id", value),
            "type" => keep_text(&mut parts.object_type, &mut extra, "type", value),
            // The object's own URL adds nothing beyond the id.
            "links" => {}
            "error" => parts.error = Some(item_error(value)),
            "attributes" => match object_entries(value) {
                Some(attributes) => {
                    for (name, value) in attributes {
                        match take_attribute(columns, &mut slots, name.as_str(), value) {
                            Leaf::Taken => {}
                            Leaf::Kept => extra.push_raw(name.as_str(), value),
                            Leaf::Rest(nested) => extra.push_object(name.as_str(), nested),
                        }
                    }
                }
                None => extra.push_raw("attributes", value),
            },
            "context_attributes" => match object_entries(value) {
                Some(context) => {
                    let rest = split_entries(context, |name, value| {
                        take_context(columns, &mut slots, name, value)
                    });
                    parts.context_attributes = rest.finish();
                }
                None => extra.push_raw("context_attributes", value),
            },
            // Members VirusTotal may add to items later are kept under their own key.
            other => extra.push_raw(other, value),
        }
    }

    parts.cells = slots
        .into_iter()
        .map(|slot| slot.unwrap_or(Cell::Null))
        .collect();
    parts.extra_attributes = extra.finish();
    Some(parts)
}

/// Stores a string member such as `id`, or keeps a value of another type in `extra`.
fn keep_text(slot: &mut Option<String>, extra: &mut ExtraObject, key: &str, value: &RawValue) {
    if !store(slot, string(value)) {
        extra.push_raw(key, value);
    }
}

/// Reads the `error` member of an item. A member that is not VirusTotal's error object keeps
/// its JSON text as the message.
fn item_error(value: &RawValue) -> (String, String) {
    match serde_json::from_str::<ItemError>(value.get()) {
        Ok(ItemError { code, message }) => (
            code.unwrap_or_else(|| "ItemError".to_string()),
            message.unwrap_or_default(),
        ),
        Err(_) => ("ItemError".to_string(), value.get().to_string()),
    }
}

/// Stores an attribute that has a column, or a nested object with columns for some members.
fn take_attribute(
    columns: &[Column],
    slots: &mut [Option<Cell>],
    name: &str,
    value: &RawValue,
) -> Leaf {
    if let Some(index) = columns
        .iter()
        .position(|column| matches!(column.path, Path::Attribute(key) if key == name))
    {
        return store(&mut slots[index], read(columns[index].read, value)).into();
    }
    let is_parent = columns
        .iter()
        .any(|column| matches!(column.path, Path::Nested(parent, _) if parent == name));
    if !is_parent {
        return Leaf::Kept;
    }
    split_nested(value, |child, value| {
        let found = columns.iter().position(|column| {
            matches!(column.path, Path::Nested(parent, key) if parent == name && key == child)
        });
        match found {
            Some(index) => store(&mut slots[index], read(columns[index].read, value)).into(),
            None => Leaf::Kept,
        }
    })
}

/// Stores a context attribute that has a column.
fn take_context(
    columns: &[Column],
    slots: &mut [Option<Cell>],
    name: &str,
    value: &RawValue,
) -> Leaf {
    match columns
        .iter()
        .position(|column| matches!(column.path, Path::Context(key) if key == name))
    {
        Some(index) => store(&mut slots[index], read(columns[index].read, value)).into(),
        None => Leaf::Kept,
    }
}

/// Reads a value for a column of kind `read`.
fn read(read: Read, value: &RawValue) -> Typed<Cell> {
    match read {
        Read::Text => map(string(value), Cell::Text),
        Read::Integer => map(integer(value), Cell::Integer),
        Read::EpochSeconds => map(epoch_seconds(value), Cell::Micros),
        Read::DateText => map(utc_date_time_text(value), Cell::Micros),
        Read::TextList => map(string_list(value), Cell::TextList),
    }
}

fn map<T>(typed: Typed<T>, cell: impl FnOnce(T) -> Cell) -> Typed<Cell> {
    match typed {
        Typed::Null => Typed::Null,
        Typed::Value(value) => Typed::Value(cell(value)),
        Typed::Wrong => Typed::Wrong,
    }
}
