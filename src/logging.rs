//! Logging setup: `tracing` to stderr, so stdout carries data only.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags minus `-q` flags:
/// -1 or less logs errors only, 0 warnings (the default), 1 info, 2 debug, 3 and more trace.
/// `RUST_LOG`, when set, overrides the level.
pub fn init(verbosity: i8, color: bool) {
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };

    // Dependencies (hyper, rustls) are kept at warn unless RUST_LOG asks for more: their debug
    // output would bury ours and could carry request details.
    let default_filter = format!("warn,vt_enrich={level}");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));

    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| StderrAroundBar)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

static PROGRESS_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Routes log lines around the progress bar, so a warning never lands inside the bar's line.
pub fn attach_progress_bar(bar: ProgressBar) {
    *PROGRESS_BAR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(bar);
}

/// Stops routing log lines around the progress bar.
pub fn detach_progress_bar() {
    *PROGRESS_BAR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// Writer for log lines: stderr, with the progress bar hidden while a line is written.
struct StderrAroundBar;

impl Write for StderrAroundBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = PROGRESS_BAR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
