//! `vt-enrich cache stats|export|prune`.

use std::io::Write;

use anyhow::Context;

use crate::cache::Cache;
use crate::cli::{CacheAction, CacheCommand};
use crate::clock;
use crate::config::{self, ConfigFile};
use crate::exit::ExitStatus;

/// Runs one cache action.
pub fn run(command: &CacheCommand, file: &ConfigFile) -> anyhow::Result<ExitStatus> {
    let path = config::cache_path(command.cache.as_deref(), file)?;
    // Opening creates a missing file, which would hide a mistyped path behind an empty cache.
    if !path.exists() {
        return Err(config::ConfigError::Invalid {
            setting: "--cache",
            message: format!("no cache file at `{}`; check the path", path.display()),
        }
        .into());
    }
    let cache = Cache::open(&path)?;

    match &command.action {
        CacheAction::Stats { json } => print_stats(&cache, *json)?,
        CacheAction::Export { output } => export(&cache, output)?,
        CacheAction::Prune { older_than } => {
            let age =
                config::parse_age(older_than).map_err(|message| config::ConfigError::Invalid {
                    setting: "--older-than",
                    message,
                })?;
            let removed = cache.prune(age, clock::now())?;
            eprintln!(
                "vt-enrich: removed {removed} entries older than {older_than} from {}",
                path.display()
            );
        }
    }
    Ok(ExitStatus::Done)
}

fn print_stats(cache: &Cache, json: bool) -> anyhow::Result<()> {
    let stats = cache.stats()?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &stats)?;
        writeln!(out)?;
        return Ok(());
    }

    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "-".to_string())
    };
    writeln!(out, "cache file       {}", stats.path.display())?;
    writeln!(
        out,
        "entries          {} ({} ok, {} not_found)",
        stats.entries, stats.ok, stats.not_found
    )?;
    writeln!(
        out,
        "pages            {} of relationship lists",
        stats.relationship_pages
    )?;
    writeln!(
        out,
        "fetched          {} .. {}",
        time(stats.oldest_fetched_at),
        time(stats.newest_fetched_at)
    )?;
    writeln!(
        out,
        "bodies           {} bytes compressed from {} bytes",
        stats.compressed_bytes, stats.raw_bytes
    )?;
    writeln!(
        out,
        "file             {} bytes (+ {} bytes WAL, {} bytes free)",
        stats.file_bytes, stats.wal_bytes, stats.free_bytes
    )?;
    for usage in &stats.ledger {
        writeln!(
            out,
            "requests by key  {}: {} today, {} this month (UTC)",
            usage.key, usage.today, usage.this_month
        )?;
    }
    Ok(())
}

fn export(cache: &Cache, output: &std::path::Path) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = cache.export(&mut out)?;
        out.flush()?;
        eprintln!("vt-enrich: exported {written} documents");
        return Ok(());
    }

    // Written to a temporary file and renamed, like every other output.
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let written = cache.export(&mut writer)?;
    let file = writer
        .into_inner()
        .map_err(|err| err.into_error())
        .with_context(|| format!("cannot write `{}`", output.display()))?;
    file.persist(output)
        .with_context(|| format!("cannot write `{}`", output.display()))?;
    eprintln!(
        "vt-enrich: exported {written} documents to {}",
        output.display()
    );
    Ok(())
}
