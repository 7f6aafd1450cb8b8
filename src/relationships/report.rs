//! Counts of the relationship stage, for the summary on stderr and in `--summary-json`.

use serde::Serialize;

use crate::model::Relationship;

use super::pager::{End, Fetched};

/// Counts of one relationship table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableSummary {
    pub relationship: String,
    /// Path of the table.
    pub output: String,
    /// Rows written: items, item errors and relationship errors.
    pub rows: u64,
    /// Addresses whose list was read to its end or to the limit.
    pub complete: u64,
    /// Items that came back as an error inside the list.
    pub item_errors: u64,
    /// Pages requested from the API (a page retried counts once) and read from the cache.
    pub pages_from_api: u64,
    pub pages_from_cache: u64,
    /// Addresses whose list could not be read to its end: retries ran out, the request was
    /// rejected, a page was unreadable, or `--offline` found it missing.
    pub failed: u64,
    /// Addresses for which the API returned 404 `NotFoundError` for the list.
    pub not_found: u64,
    /// Addresses not requested because the budget or the quota ran out.
    pub quota_exhausted: u64,
    /// The 403 message when the API refused the relationship to the key; it was then not
    /// requested again in the run.
    pub forbidden: Option<String>,
}

/// Counts of every relationship table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelationshipsSummary {
    /// Items per address and relationship.
    pub limit: u32,
    /// `objects` or `descriptors`.
    pub form: &'static str,
    pub tables: Vec<TableSummary>,
}

impl RelationshipsSummary {
    /// Returns whether a list was left unfinished for a reason that a rerun can fix, which
    /// makes the run partial. A 403 or a 404 is a final response and does not.
    pub fn incomplete(&self) -> bool {
        self.tables
            .iter()
            .any(|table| table.failed > 0 || table.quota_exhausted > 0)
    }

    /// Counts one address's list of one relationship.
    pub(super) fn record(&mut self, fetched: &Fetched) {
        let Some(table) = self
            .tables
            .iter_mut()
            .find(|table| table.relationship == fetched.relationship.as_str())
        else {
            return;
        };
        table.rows += fetched.rows.len() as u64;
        table.item_errors += fetched
            .rows
            .iter()
            .filter(|row| row.position.is_some() && row.error_code.is_some())
            .count() as u64;
        table.pages_from_api += fetched.pages_from_api;
        table.pages_from_cache += fetched.pages_from_cache;
        match &fetched.end {
            End::Complete => table.complete += 1,
            End::Failed | End::NotCached => table.failed += 1,
            End::NotFound => table.not_found += 1,
            End::QuotaExhausted => table.quota_exhausted += 1,
            End::Forbidden { message, .. } => {
                table.forbidden.get_or_insert_with(|| message.clone());
            }
            End::NotRequested | End::Interrupted => {}
        }
    }

    /// Renders the lines added to the stderr summary, one per relationship.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for table in &self.tables {
            text.push_str(&format!(
                "\n  {}: {} rows to {} ({} pages from the API, {} from the cache)",
                table.relationship,
                table.rows,
                table.output,
                table.pages_from_api,
                table.pages_from_cache
            ));
            let mut problems = Vec::new();
            if table.item_errors > 0 {
                problems.push(format!("{} item errors", table.item_errors));
            }
            if table.failed > 0 {
                problems.push(format!("{} addresses failed", table.failed));
            }
            if table.not_found > 0 {
                problems.push(format!("{} addresses not found", table.not_found));
            }
            if table.quota_exhausted > 0 {
                problems.push(format!(
                    "{} addresses not requested, quota exhausted",
                    table.quota_exhausted
                ));
            }
            if !problems.is_empty() {
                text.push_str(&format!("; {}", problems.join(" · ")));
            }
            if let Some(message) = &table.forbidden {
                text.push_str(&format!("\n    refused: {message}"));
            }
        }
        text
    }
}

/// Returns an empty summary with one table per relationship.
pub(super) fn new_summary(
    limit: u32,
    form: &'static str,
    tables: &[(Relationship, String)],
) -> RelationshipsSummary {
    RelationshipsSummary {
        limit,
        form,
        tables: tables
            .iter()
            .map(|(relationship, output)| TableSummary {
                relationship: relationship.as_str().to_string(),
                output: output.clone(),
                ..TableSummary::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::related::RelatedRow;

    fn fetched(relationship: Relationship, end: End, rows: Vec<RelatedRow>) -> Fetched {
        Fetched {
            relationship,
            rows,
            pages_from_api: 2,
            pages_from_cache: 1,
            end,
        }
    }

    fn error_row(relationship: Relationship) -> RelatedRow {
        RelatedRow::relationship_error("8.8.8.8", relationship, "Code".into(), "message".into())
    }

    fn summary() -> RelationshipsSummary {
        new_summary(
            10,
            "objects",
            &[
                (Relationship::Resolutions, "o.resolutions.parquet".into()),
                (Relationship::Urls, "o.urls.parquet".into()),
            ],
        )
    }

    #[test]
    fn forbidden_is_reported_but_not_incomplete() {
        let mut summary = summary();
        let forbidden = End::Forbidden {
            first: true,
            code: "ForbiddenError".into(),
            message: "HTTP 403: no".into(),
        };
        summary.record(&fetched(
            Relationship::Urls,
            forbidden,
            vec![error_row(Relationship::Urls)],
        ));
        summary.record(&fetched(Relationship::Urls, End::NotRequested, Vec::new()));

        assert!(!summary.incomplete());
        let urls = &summary.tables[1];
        assert_eq!(urls.forbidden.as_deref(), Some("HTTP 403: no"));
        assert_eq!(urls.rows, 1);
        assert_eq!(urls.item_errors, 0);
        assert!(summary.render().contains("refused: HTTP 403: no"));
    }

    #[test]
    fn failures_and_spent_quota_make_it_incomplete() {
        for end in [End::Failed, End::NotCached, End::QuotaExhausted] {
            let mut summary = summary();
            summary.record(&fetched(Relationship::Resolutions, end.clone(), Vec::new()));
            assert!(summary.incomplete(), "{end:?}");
        }
        let mut summary = summary();
        summary.record(&fetched(
            Relationship::Resolutions,
            End::NotFound,
            Vec::new(),
        ));
        summary.record(&fetched(
            Relationship::Resolutions,
            End::Interrupted,
            Vec::new(),
        ));
        assert!(!summary.incomplete());
    }

    #[test]
    fn counts_rows_pages_and_item_errors() {
        let mut summary = summary();
        let mut item_error = error_row(Relationship::Resolutions);
        item_error.position = Some(3);
        let rows = vec![error_row(Relationship::Resolutions), item_error];
        summary.record(&fetched(Relationship::Resolutions, End::Complete, rows));

        let resolutions = &summary.tables[0];
        assert_eq!(resolutions.rows, 2);
        assert_eq!(resolutions.item_errors, 1);
        assert_eq!(resolutions.complete, 1);
        assert_eq!(resolutions.pages_from_api, 2);
        assert_eq!(resolutions.pages_from_cache, 1);
        let text = summary.render();
        assert!(
            text.contains(
                "resolutions: 2 rows to o.resolutions.parquet (2 pages from the API, 1 from the cache); 1 item errors"
            ),
            "{text}"
        );
    }
}
