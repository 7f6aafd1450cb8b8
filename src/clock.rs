//! The wall clock used for budgets and the cache.
//!
//! `VT_ENRICH_TEST_NOW` (an RFC 3339 time), when set, makes the process start at that instant
//! and run forward from there. Tests use it to cross a UTC day or month boundary without
//! waiting for one; nothing else should set it.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Utc};

static TEST_START: OnceLock<Option<(DateTime<Utc>, Instant)>> = OnceLock::new();

/// Returns the current UTC time.
pub fn now() -> DateTime<Utc> {
    let start = TEST_START.get_or_init(|| {
        let text = std::env::var("VT_ENRICH_TEST_NOW").ok()?;
        let start = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        Some((start.with_timezone(&Utc), Instant::now()))
    });

    match start {
        Some((at, since)) => {
            let elapsed = chrono::Duration::from_std(since.elapsed()).unwrap_or_default();
            *at + elapsed
        }
        None => Utc::now(),
    }
}
