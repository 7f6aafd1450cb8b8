//! `vt-enrich quota`, and `--quota-from-api`: the account's allowances from the API next to the
//! requests this machine's ledger counted.

use std::io::Write;
use std::num::NonZeroU32;

use crate::cache::{Cache, KeyHash, Usage};
use crate::cli::QuotaArgs;
use crate::clock;
use crate::config::{self, ConfigFile};
use crate::exit::ExitStatus;
use crate::fetch::pacing::BudgetWindow;
use crate::fetch::quota::{Allowance, fetch_account_quotas};
use crate::fetch::{ApiKey, FetchSettings};

/// Prints the allowances and the local ledger.
pub async fn run(args: &QuotaArgs, file: &ConfigFile) -> anyhow::Result<ExitStatus> {
    let (settings, key) = config::fetch_settings(&args.api, file)?;
    let quotas = fetch_account_quotas(&settings.client, &key).await?;
    let ledger = local_usage(&args.cache, file, &key)?;

    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({"api": quotas, "ledger": ledger.map(|usage| serde_json::json!({
            "today": usage.today, "this_month": usage.this_month, "last_minute": usage.last_minute,
        }))});
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(ExitStatus::Done);
    }

    writeln!(
        out,
        "period   user used/allowed     group used/allowed    this machine's ledger"
    )?;
    let rows = [
        ("hourly", &quotas.api_requests_hourly, None),
        ("daily", &quotas.api_requests_daily, ledger.map(|u| u.today)),
        (
            "monthly",
            &quotas.api_requests_monthly,
            ledger.map(|u| u.this_month),
        ),
    ];
    for (period, quota, local) in rows {
        writeln!(
            out,
            "{period:<8} {:<21} {:<21} {}",
            describe(quota.user),
            describe(quota.group),
            local
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".to_string())
        )?;
    }
    writeln!(
        out,
        "Daily quotas reset at 00:00 UTC, monthly ones at 00:00 UTC on the 1st."
    )?;
    Ok(ExitStatus::Done)
}

/// Lowers the daily and monthly budgets of `settings` to what the API says is left, plus what
/// the ledger already counted in the same periods (the ledger compares its own counts with
/// the budget).
pub async fn size_budgets(
    settings: &mut FetchSettings,
    key: &ApiKey,
    ledger: Option<Usage>,
) -> anyhow::Result<()> {
    let quotas = fetch_account_quotas(&settings.client, key).await?;
    let counted = ledger.unwrap_or_default();

    let day = remaining(&quotas.api_requests_daily.user).map(|left| left + counted.today);
    let month = remaining(&quotas.api_requests_monthly.user).map(|left| left + counted.this_month);
    settings.quota.per_day = lower(settings.quota.per_day, day);
    settings.quota.per_month = lower(settings.quota.per_month, month);
    // The month is reported first when both are spent, because it resets later.
    settings.quota.spent_at_start = if month == Some(0) {
        Some(BudgetWindow::Month)
    } else if day == Some(0) {
        Some(BudgetWindow::Day)
    } else {
        None
    };

    tracing::info!(
        per_day = ?settings.quota.per_day,
        per_month = ?settings.quota.per_month,
        "budgets sized from the account's quotas"
    );
    Ok(())
}

/// Returns the ledger's counts for this key, when the cache is on.
pub fn local_usage(
    cache: &crate::cli::CacheArgs,
    file: &ConfigFile,
    key: &ApiKey,
) -> anyhow::Result<Option<Usage>> {
    let settings = config::cache_settings(cache, file)?;
    let Some(path) = settings.path else {
        return Ok(None);
    };
    let cache = Cache::open(&path)?;
    Ok(Some(cache.usage(&KeyHash::of(key.expose()), clock::now())?))
}

fn remaining(allowance: &Option<Allowance>) -> Option<u64> {
    allowance.as_ref()?.remaining()
}

/// Returns the smaller of a configured budget and what the API allows. 0 from the API is
/// reported through `spent_at_start`, because a `NonZeroU32` budget of `None` means no limit.
fn lower(configured: Option<NonZeroU32>, from_api: Option<u64>) -> Option<NonZeroU32> {
    let from_api = from_api.and_then(|n| NonZeroU32::new(n.min(u64::from(u32::MAX)) as u32));
    match (configured, from_api) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn describe(allowance: Option<Allowance>) -> String {
    match allowance {
        Some(Allowance {
            allowed: Some(allowed),
            used: Some(used),
        }) => format!("{used}/{allowed}"),
        Some(_) | None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_allowance_lowers_but_never_raises_the_budget() {
        let five = NonZeroU32::new(5);
        assert_eq!(lower(five, Some(3)), NonZeroU32::new(3));
        assert_eq!(lower(five, Some(10)), five);
        assert_eq!(lower(None, Some(10)), NonZeroU32::new(10));
        assert_eq!(lower(five, None), five);
    }
}
