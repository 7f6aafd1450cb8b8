//! The end-of-run summary: one block on stderr and, with `--summary-json`, a JSON file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::TallySnapshot;
use crate::exit::ExitStatus;

/// Everything a scheduler needs to know about a finished run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `done`, `partial` or `failed`.
    pub outcome: &'static str,
    pub exit_code: u8,
    /// Main output path, or `-` for stdout.
    pub output: String,
    pub engines_output: Option<String>,
    pub elapsed_secs: f64,
    pub rows_written: u64,
    pub ok: u64,
    pub not_found: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub failed: u64,
    pub quota_exhausted: u64,
    pub cache_hits: u64,
    /// Requests sent to the API, retries included.
    pub requests: u64,
    /// 429 answers received.
    pub throttled: u64,
    pub input: InputSummary,
    /// Why fetching stopped early, if it did.
    pub stop_reason: Option<String>,
    pub interrupted: bool,
    /// The relationship tables, with `--relationships`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationships: Option<crate::relationships::RelationshipsSummary>,
}

/// Counts from the input stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    pub lines_read: u64,
    pub values_read: u64,
    pub blank_values: u64,
    pub duplicate_values: u64,
    pub ragged_rows: u64,
    pub columns_used: Vec<String>,
}

impl RunSummary {
    /// Builds the summary from the final counters.
    pub fn new(status: ExitStatus, tally: &TallySnapshot, elapsed: Duration) -> RunSummary {
        RunSummary {
            outcome: match status {
                ExitStatus::Done => "done",
                ExitStatus::Partial => "partial",
                ExitStatus::Failed | ExitStatus::Usage => "failed",
            },
            exit_code: status.code(),
            output: String::new(),
            engines_output: None,
            elapsed_secs: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            rows_written: tally.done(),
            ok: tally.ok,
            not_found: tally.not_found,
            invalid: tally.invalid,
            skipped: tally.skipped,
            failed: tally.failed,
            quota_exhausted: tally.quota_exhausted,
            cache_hits: tally.cached,
            requests: 0,
            throttled: 0,
            input: InputSummary::default(),
            stop_reason: None,
            interrupted: false,
            relationships: None,
        }
    }

    /// Renders the stderr block.
    pub fn render(&self) -> String {
        let mut text = format!(
            "vt-enrich: {outcome}: {rows} rows written to {output}{engines} in {secs:.1}s\n  \
             ok {ok} · not_found {nf} · invalid {inv} · skipped {sk} · failed {fail} · quota_exhausted {qe}\n  \
             requests {req} (429 answers {thr}) · cache hits {hits} · input values {vals} ({dup} duplicates, {blank} blank)",
            outcome = self.outcome,
            rows = self.rows_written,
            output = self.output,
            engines = self
                .engines_output
                .as_ref()
                .map(|path| format!(" (engines: {path})"))
                .unwrap_or_default(),
            secs = self.elapsed_secs,
            ok = self.ok,
            nf = self.not_found,
            inv = self.invalid,
            sk = self.skipped,
            fail = self.failed,
            qe = self.quota_exhausted,
            req = self.requests,
            thr = self.throttled,
            hits = self.cache_hits,
            vals = self.input.values_read,
            dup = self.input.duplicate_values,
            blank = self.input.blank_values,
        );
        if let Some(relationships) = &self.relationships {
            text.push_str(&relationships.render());
        }
        if let Some(reason) = &self.stop_reason {
            text.push_str(&format!("\n  stopped sending: {reason}"));
        }
        if self.interrupted {
            text.push_str("\n  interrupted: rows not yet looked up are missing; rerun the same command to finish");
        }
        if self.invalid > 0 {
            text.push_str("\n  invalid values are listed with their line and reason in the `error_message` column");
        }
        text
    }

    /// Writes the summary as JSON to `path` (through a temporary file, so a scheduler never
    /// reads half a summary).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<PathBuf> {
        use anyhow::Context;
        use std::io::Write;

        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create the summary file in `{}`", dir.display()))?;
        serde_json::to_writer_pretty(&mut file, self)?;
        file.write_all(b"\n")?;
        file.persist(path)
            .with_context(|| format!("cannot write the summary file `{}`", path.display()))?;
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_renders_counts_and_stop_reason() {
        let tally = TallySnapshot {
            ok: 5,
            quota_exhausted: 2,
            ..TallySnapshot::default()
        };
        let mut summary = RunSummary::new(ExitStatus::Partial, &tally, Duration::from_millis(1500));
        summary.output = "out.parquet".into();
        summary.stop_reason = Some("the daily budget of 5 requests is spent".into());

        let text = summary.render();
        assert!(
            text.starts_with("vt-enrich: partial: 7 rows written to out.parquet in 1.5s"),
            "{text}"
        );
        assert!(text.contains("quota_exhausted 2"), "{text}");
        assert!(text.contains("stopped sending: the daily budget"), "{text}");
    }

    #[test]
    fn summary_json_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        let summary = RunSummary::new(ExitStatus::Done, &TallySnapshot::default(), Duration::ZERO);
        summary.write_json(&path).unwrap();

        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(value["outcome"], "done");
        assert_eq!(value["exit_code"], 0);
    }
}
