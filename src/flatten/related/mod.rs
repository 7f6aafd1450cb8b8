//! Flattening of relationship pages into one long table per relationship.
//!
//! A page of `GET /ip_addresses/{ip}/{relationship}` (or of `…/relationships/{relationship}`,
//! which returns descriptors only) is `{"data": [items], "meta": {"cursor": …},
//! "links": {"next": …}}`, where `meta` and `links.next` are absent on the last page
//! (docs.virustotal.com/reference/collections). [`flatten_page`] turns each item into a
//! [`RelatedRow`]: the address, the relationship, the item's position, the related object's id
//! and type, its key attributes as typed columns (see `columns.rs`), and JSON columns with the
//! rest, so no value is lost. An item that comes back as an error becomes a row with that error.
//! [`RelatedTableBuilder`] collects rows into Arrow batches with [`related_schema`].

mod columns;
mod item;
mod table;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::json::{RawObject, object_entries, string};
use crate::model::{AnswerSource, Relationship};

pub use table::{RelatedTableBuilder, related_columns, related_schema};

/// Error code of a list item that is not a JSON object.
pub const INVALID_ITEM_CODE: &str = "InvalidItem";

/// One typed value of a relationship row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Integer(i64),
    /// Microseconds since the Unix epoch, UTC.
    Micros(i64),
    TextList(Vec<String>),
}

/// One row of a relationship table: one related object, one item error, or one error that
/// stands for the whole relationship of an address.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedRow {
    pub ip: String,
    pub relationship: Relationship,
    /// 0-based position of the item in the address's list; `None` for a relationship error.
    pub position: Option<u32>,
    pub id: Option<String>,
    pub object_type: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// When the page was fetched from the API.
    pub fetched_at: Option<DateTime<Utc>>,
    pub source: Option<AnswerSource>,
    /// One value per typed column of the relationship, in column order.
    pub cells: Vec<Cell>,
    /// JSON object text of the context attributes without a column.
    pub context_attributes: Option<String>,
    /// JSON object text of the attributes without a column.
    pub extra_attributes: Option<String>,
}

impl RelatedRow {
    /// Builds the row that stands for the whole relationship of `ip` when it could not be
    /// fetched (403, retries exhausted, quota spent).
    pub fn relationship_error(
        ip: &str,
        relationship: Relationship,
        code: String,
        message: String,
    ) -> RelatedRow {
        RelatedRow {
            ip: ip.to_string(),
            relationship,
            position: None,
            id: None,
            object_type: None,
            error_code: Some(code),
            error_message: Some(message),
            fetched_at: None,
            source: None,
            cells: vec![Cell::Null; columns::columns(relationship).len()],
            context_attributes: None,
            extra_attributes: None,
        }
    }

    /// Returns the value of the typed column `name`, `None` when the table has no such column.
    pub fn cell(&self, name: &str) -> Option<&Cell> {
        let index = columns::columns(self.relationship)
            .iter()
            .position(|column| column.name == name)?;
        self.cells.get(index)
    }
}

/// Where and when a page was fetched, copied to each of its rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PageOrigin {
    pub fetched_at: DateTime<Utc>,
    pub source: AnswerSource,
}

/// The rows of one page and where the list continues.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedPage {
    /// At most the number of items asked for, in the page's order.
    pub rows: Vec<RelatedRow>,
    /// Items on the page, including those past the number asked for.
    pub items_on_page: usize,
    /// Cursor of the next page: `meta.cursor`, else the `cursor` parameter of `links.next`.
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Reason a page cannot be read as a relationship list.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("invalid JSON page: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the page is a VirusTotal error response ({code}: {message}), not a list")]
    ErrorDocument { code: String, message: String },
    #[error("the page has no \"data\" list")]
    MissingData,
}

/// The members of a page that matter here.
#[derive(Default)]
struct PageParts<'a> {
    data: Option<&'a RawValue>,
    meta: Option<&'a RawValue>,
    links: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

/// Parses one page of `relationship` for `ip` and returns at most `max_items` rows, numbered
/// from `first_position`, with the cursor of the next page.
pub fn flatten_page(
    body: &[u8],
    ip: &str,
    relationship: Relationship,
    first_position: u32,
    max_items: usize,
    origin: PageOrigin,
) -> Result<RelatedPage, PageError> {
    let page: RawObject = serde_json::from_slice(body)?;
    let mut parts = PageParts::default();
    for (key, value) in page.0 {
        match key.as_str() {
            "data" => parts.data = Some(value),
            "meta" => parts.meta = Some(value),
            "links" => parts.links = Some(value),
            "error" => parts.error = Some(value),
            _ => {}
        }
    }

    if let (Some(error), None) = (parts.error, parts.data) {
        let (code, message) = error_members(error);
        return Err(PageError::ErrorDocument { code, message });
    }
    let items = list_items(parts.data.ok_or(PageError::MissingData)?)?;

    let columns = columns::columns(relationship);
    let rows = items
        .iter()
        .take(max_items)
        .zip(first_position..)
        .map(|(raw, position)| item_row(raw, ip, relationship, position, columns, origin))
        .collect();

    Ok(RelatedPage {
        rows,
        items_on_page: items.len(),
        next_cursor: next_cursor(parts.meta, parts.links),
    })
}

/// Reads `data`: a list of items, or one item for a relationship that returns one object.
fn list_items(data: &RawValue) -> Result<Vec<&RawValue>, PageError> {
    match data.get().as_bytes().first() {
        Some(b'[') => Ok(serde_json::from_str::<Vec<&RawValue>>(data.get())?),
        Some(b'{') => Ok(vec![data]),
        Some(b'n') => Ok(Vec::new()),
        _ => Err(PageError::MissingData),
    }
}

/// Turns one item into its row.
fn item_row(
    raw: &RawValue,
    ip: &str,
    relationship: Relationship,
    position: u32,
    columns: &[columns::Column],
    origin: PageOrigin,
) -> RelatedRow {
    let mut row = RelatedRow::relationship_error(ip, relationship, String::new(), String::new());
    row.position = Some(position);
    row.fetched_at = Some(origin.fetched_at);
    row.source = Some(origin.source);
    row.error_code = None;
    row.error_message = None;

    match item::split_item(raw, columns) {
        Some(parts) => {
            row.id = parts.id;
            row.object_type = parts.object_type;
            if let Some((code, message)) = parts.error {
                row.error_code = Some(code);
                row.error_message = Some(message);
            }
            row.cells = parts.cells;
            row.context_attributes = parts.context_attributes;
            row.extra_attributes = parts.extra_attributes;
        }
        None => {
            row.error_code = Some(INVALID_ITEM_CODE.to_string());
            row.error_message = Some(format!(
                "the list item is not a JSON object: {}",
                excerpt(raw.get())
            ));
        }
    }
    row
}

/// Returns the cursor of the next page. `meta.cursor` is the documented place; `links.next`
/// carries the same cursor URL-encoded in its query, and is read when `meta` is absent.
fn next_cursor(meta: Option<&RawValue>, links: Option<&RawValue>) -> Option<String> {
    let from_meta = meta
        .and_then(object_entries)
        .and_then(|entries| member_text(&entries, "cursor"));
    if let Some(cursor) = from_meta.filter(|cursor| !cursor.is_empty()) {
        return Some(cursor);
    }

    let next = links
        .and_then(object_entries)
        .and_then(|entries| member_text(&entries, "next"))?;
    let url = reqwest::Url::parse(&next).ok()?;
    url.query_pairs()
        .find(|(name, _)| name == "cursor")
        .map(|(_, value)| value.into_owned())
        .filter(|cursor| !cursor.is_empty())
}

/// Returns the string value of member `name`.
fn member_text(entries: &super::json::Entries<'_>, name: &str) -> Option<String> {
    entries
        .iter()
        .find(|(key, _)| key.as_str() == name)
        .and_then(|(_, value)| match string(value) {
            super::json::Typed::Value(text) => Some(text),
            _ => None,
        })
}

/// Reads `{"code": …, "message": …}` of an error document.
fn error_members(error: &RawValue) -> (String, String) {
    let entries = object_entries(error).unwrap_or_default();
    (
        member_text(&entries, "code").unwrap_or_else(|| "UnknownError".to_string()),
        member_text(&entries, "message").unwrap_or_default(),
    )
}

/// Cuts JSON text to 200 characters for a message.
fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}
