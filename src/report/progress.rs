//! Progress display on stderr: an indicatif bar on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{Tally, TallySnapshot};
use crate::cli::ProgressArg;

/// Returns the request counter of the run; zero when answers come from saved documents.
pub type RequestCounter = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Progress display, chosen from the option, the terminal and `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log,
    None,
}

/// Chooses the display: a bar only when stderr is a terminal and `NO_COLOR` is unset.
pub fn choose_mode(arg: ProgressArg, quiet: bool) -> ProgressMode {
    let terminal = std::io::stderr().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    match arg {
        _ if quiet => ProgressMode::None,
        ProgressArg::None => ProgressMode::None,
        ProgressArg::Log => ProgressMode::Log,
        ProgressArg::Bar => ProgressMode::Bar,
        ProgressArg::Auto if terminal && !no_color => ProgressMode::Bar,
        ProgressArg::Auto => ProgressMode::Log,
    }
}

/// Runs the display until `stop` is cancelled, then draws the last state.
pub async fn run(
    mode: ProgressMode,
    tally: Arc<Tally>,
    requests: RequestCounter,
    per_minute: Option<NonZeroU32>,
    stop: CancellationToken,
) {
    match mode {
        ProgressMode::None => stop.cancelled().await,
        ProgressMode::Bar => run_bar(tally, requests, per_minute, stop).await,
        ProgressMode::Log => run_log(tally, requests, per_minute, stop).await,
    }
}

async fn run_bar(
    tally: Arc<Tally>,
    requests: RequestCounter,
    per_minute: Option<NonZeroU32>,
    stop: CancellationToken,
) {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    crate::logging::attach_progress_bar(bar.clone());

    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        let snapshot = tally.snapshot();
        bar.set_length(snapshot.queued.max(snapshot.done()));
        bar.set_position(snapshot.done());
        bar.set_message(status_line(
            &snapshot,
            requests(),
            started.elapsed(),
            per_minute,
        ));
    }

    crate::logging::detach_progress_bar();
    bar.finish_and_clear();
}

async fn run_log(
    tally: Arc<Tally>,
    requests: RequestCounter,
    per_minute: Option<NonZeroU32>,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    // The first tick fires at once; a progress line at zero says nothing.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let snapshot = tally.snapshot();
        let total = if snapshot.input_done {
            snapshot.queued.to_string()
        } else {
            format!("{}+", snapshot.queued)
        };
        eprintln!(
            "vt-enrich: {}/{} {}",
            snapshot.done(),
            total,
            status_line(&snapshot, requests(), started.elapsed(), per_minute)
        );
    }
}

/// Builds the counters and rate part of a progress line.
fn status_line(
    snapshot: &TallySnapshot,
    requests: u64,
    elapsed: Duration,
    per_minute: Option<NonZeroU32>,
) -> String {
    let rate = requests as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = estimate_remaining(snapshot, elapsed, per_minute)
        .map(format_duration)
        .unwrap_or_else(|| "?".to_string());
    format!(
        "ok {} · not found {} · cached {} · failed {} · {:.1} req/s · ETA {}",
        snapshot.ok, snapshot.not_found, snapshot.cached, snapshot.failed, rate, eta
    )
}

/// Estimates the time left from the observed row rate, and never faster than the per-minute
/// quota allows for the rows still waiting (each needs at least one request).
pub fn estimate_remaining(
    snapshot: &TallySnapshot,
    elapsed: Duration,
    per_minute: Option<NonZeroU32>,
) -> Option<Duration> {
    if !snapshot.input_done {
        return None;
    }
    let remaining = snapshot.queued.saturating_sub(snapshot.done());
    if remaining == 0 {
        return Some(Duration::ZERO);
    }

    let done = snapshot.done();
    let observed = (done > 0).then(|| elapsed.as_secs_f64() / done as f64 * remaining as f64);
    let quota_bound = per_minute.map(|quota| remaining as f64 * 60.0 / f64::from(quota.get()));

    let seconds = match (observed, quota_bound) {
        (Some(observed), Some(bound)) => observed.max(bound),
        (Some(observed), None) => observed,
        (None, Some(bound)) => bound,
        (None, None) => return None,
    };
    Some(Duration::from_secs_f64(seconds.min(1e9)))
}

fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(done: u64, queued: u64) -> TallySnapshot {
        TallySnapshot {
            ok: done,
            queued,
            input_done: true,
            ..TallySnapshot::default()
        }
    }

    #[test]
    fn eta_is_unknown_while_the_input_is_still_read() {
        let mut partial = snapshot(1, 10);
        partial.input_done = false;
        assert_eq!(
            estimate_remaining(&partial, Duration::from_secs(1), None),
            None
        );
    }

    #[test]
    fn eta_follows_the_observed_rate_without_a_quota() {
        let eta = estimate_remaining(&snapshot(10, 30), Duration::from_secs(5), None).unwrap();
        assert_eq!(eta, Duration::from_secs(10));
    }

    #[test]
    fn eta_is_never_faster_than_the_quota_allows() {
        // 20 rows left at 4 a minute take 5 minutes, however fast the first rows went.
        let eta = estimate_remaining(
            &snapshot(10, 30),
            Duration::from_secs(1),
            NonZeroU32::new(4),
        )
        .unwrap();
        assert_eq!(eta, Duration::from_secs(300));
    }

    #[test]
    fn durations_are_short_and_readable() {
        assert_eq!(format_duration(Duration::from_secs(42)), "42s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_duration(Duration::from_secs(7260)), "2h01m");
    }
}
