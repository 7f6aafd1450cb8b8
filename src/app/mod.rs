//! The application layer: turns parsed arguments into settings, runs a subcommand, prints the
//! summary or the error, and picks the exit status.

mod cache;
mod join_mode;
mod quota;
mod schema;

use std::sync::Arc;

use anyhow::Context;
use clap::CommandFactory;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cache::{Cache, CacheError};
use crate::cli::{Cli, Command, EnrichArgs, FlattenArgs};
use crate::config::{self, ConfigError, ConfigFile};
use crate::exit::ExitStatus;
use crate::fetch::cached::CacheLayer;
use crate::fetch::saved::SavedIndex;
use crate::fetch::{Fetcher, Resolver};
use crate::input::InputOptions;
use crate::pipeline::{self, EnrichRun, RunError};
use crate::report::progress;
use crate::report::summary::RunSummary;

/// Runs the parsed command line and returns the exit status.
pub fn run(cli: Cli) -> ExitStatus {
    let quiet = cli.global.quiet > 0;
    let verbosity = cli.global.verbose as i8 - cli.global.quiet as i8;
    let color = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    crate::logging::init(verbosity, color);

    match dispatch(cli, quiet) {
        Ok(status) => status,
        Err(err) => report_error(&err),
    }
}

fn dispatch(cli: Cli, quiet: bool) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Schema(args) => schema::print_schema(&args),
        Command::Quota(args) => {
            let file = config::load(cli.global.config.as_deref())?;
            run_async(quota::run(&args, &file))
        }
        Command::Cache(command) => {
            let file = config::load(cli.global.config.as_deref())?;
            cache::run(&command, &file)
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "vt-enrich", &mut std::io::stdout());
            Ok(ExitStatus::Done)
        }
        Command::Manpage => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitStatus::Done)
        }
        Command::Enrich(args) => {
            let file = config::load(cli.global.config.as_deref())?;
            run_async(enrich(*args, file, quiet))
        }
        Command::Flatten(args) => {
            let file = config::load(cli.global.config.as_deref())?;
            run_async(flatten_command(args, file, quiet))
        }
    }
}

fn run_async<F: std::future::Future<Output = anyhow::Result<ExitStatus>>>(
    future: F,
) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vt-enrich-worker")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(future);
    // A blocking task may still wait on a read that never ends (stdin left open after an
    // interrupt); the process is about to exit, so it is not waited for.
    runtime.shutdown_background();
    result
}

async fn enrich(args: EnrichArgs, file: ConfigFile, quiet: bool) -> anyhow::Result<ExitStatus> {
    let output = config::output_settings(&args.output, &file)?;
    config::check_paths(&args.inputs, &output)?;
    let relationships =
        crate::relationships::resolve(&args.relationships, &file, &output, &args.inputs)?;
    let mut input = InputOptions {
        paths: args.inputs.clone(),
        columns: args.columns.clone(),
        format: config::input_format(args.input_format),
        delimiter: config::delimiter(args.delimiter)?,
        include_private: args.include_private || file.include_private.unwrap_or(false),
        extract: config::extract_options(&args.extract, args.input_format, &file)?,
        stdin_copy: None,
    };
    let join = args.join || file.join.unwrap_or(false);
    // Held until the run ends: dropping it deletes the copy of stdin.
    let _stdin_copy = if join {
        join_mode::prepare(&mut input, &output)?
    } else {
        None
    };

    let halt = CancellationToken::new();
    let cache_settings = config::cache_settings(&args.cache, &file)?;
    let open_cache = || -> anyhow::Result<Option<Arc<Cache>>> {
        match &cache_settings.path {
            Some(path) => Ok(Some(Arc::new(Cache::open(path)?))),
            None => Ok(None),
        }
    };

    let (resolver, per_minute, window) = if let Some(path) = &args.from {
        let index = SavedIndex::open(path)?;
        (Resolver::Saved(index), None, pipeline::window_for(64))
    } else if cache_settings.offline {
        let cache = open_cache()?.context("--offline needs the cache")?;
        let api_url = config::api_url(&args.api, &file)?;
        let layer = CacheLayer::new(cache, api_url, cache_settings.max_age);
        (Resolver::Offline(layer), None, pipeline::window_for(64))
    } else {
        let (mut settings, key) = config::fetch_settings(&args.api, &file)?;
        let cache = open_cache()?;
        if args.api.quota_from_api {
            let counted = match &cache {
                Some(cache) => Some(cache.usage(
                    &crate::cache::KeyHash::of(key.expose()),
                    crate::clock::now(),
                )?),
                None => None,
            };
            quota::size_budgets(&mut settings, &key, counted).await?;
        }
        let layer = cache.map(|cache| {
            Arc::new(CacheLayer::new(
                cache,
                settings.client.api_url.clone(),
                cache_settings.max_age,
            ))
        });
        let per_minute = settings.quota.per_minute;
        let window = pipeline::window_for(settings.concurrency);
        let fetcher = Fetcher::new(settings, &key, layer.clone(), halt.clone())?;
        let resolver = Resolver::Api {
            fetcher: Box::new(fetcher),
            cache: layer,
        };
        (resolver, per_minute, window)
    };

    let summary_path = output.summary_json.clone();
    let run = EnrichRun {
        input,
        progress: progress::choose_mode(output.progress, quiet),
        output,
        resolver,
        window,
        per_minute,
        join,
        relationships,
    };

    watch_signals(halt.clone());
    let summary = pipeline::enrich(run, halt).await?;
    finish(summary, summary_path.as_deref(), quiet)
}

async fn flatten_command(
    args: FlattenArgs,
    file: ConfigFile,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    let output = config::output_settings(&args.output, &file)?;
    config::check_paths(&args.paths, &output)?;
    let summary_path = output.summary_json.clone();
    let summary = pipeline::flatten_saved(&args.paths, output).await?;
    finish(summary, summary_path.as_deref(), quiet)
}

/// Prints the summary, writes its JSON copy, and returns the exit status it records.
fn finish(
    summary: RunSummary,
    json_path: Option<&std::path::Path>,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    if !quiet {
        eprintln!("{}", summary.render());
    }
    if let Some(path) = json_path {
        summary.write_json(path)?;
    }
    Ok(match summary.exit_code {
        0 => ExitStatus::Done,
        3 => ExitStatus::Partial,
        2 => ExitStatus::Usage,
        _ => ExitStatus::Failed,
    })
}

/// On the first Ctrl-C or SIGTERM, stops sending and lets the pipeline write what is done; on
/// a second one, exits at once.
fn watch_signals(halt: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!(
            "vt-enrich: interrupted; writing the rows done so far (press Ctrl-C again to exit at once)"
        );
        halt.cancel();
        wait_for_signal().await;
        crate::output::remove_unfinished_files();
        eprintln!(
            "vt-enrich: exiting at once; the output file was not written, and answers already cached stay cached"
        );
        std::process::exit(i32::from(ExitStatus::Partial.code()));
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                warn!(error = %err, "cannot watch SIGTERM; only Ctrl-C stops the run cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints a fatal error as `error: …`, its causes, and a hint, and picks the exit status.
fn report_error(err: &anyhow::Error) -> ExitStatus {
    if is_broken_pipe(err) {
        // The reader of stdout went away (`| head`): what it wanted was delivered.
        return ExitStatus::Done;
    }

    let status = classify_error(err);
    let mut text = format!("error: {err}");
    let mut previous = err.to_string();
    for cause in err.chain().skip(1) {
        // Many errors repeat their source in their own message; print each text once.
        let cause = cause.to_string();
        if !previous.contains(&cause) {
            text.push_str(&format!("\n  Caused by: {cause}"));
        }
        previous = cause;
    }
    if let Some(hint) = hint_for(err) {
        text.push_str(&format!("\n\nhint: {hint}"));
    }
    eprintln!(
        "{}",
        crate::report::sanitize_for_terminal_keep_newlines(&text)
    );
    status
}

fn classify_error(err: &anyhow::Error) -> ExitStatus {
    if err.downcast_ref::<ConfigError>().is_some()
        || err.downcast_ref::<crate::input::InputError>().is_some()
    {
        return ExitStatus::Usage;
    }
    if let Some(run) = err.downcast_ref::<RunError>() {
        return match run {
            RunError::Input { .. } => ExitStatus::Usage,
            RunError::Unauthorized(_) | RunError::TlsCertificate(_) | RunError::ProxyAuth(_) => {
                ExitStatus::Failed
            }
        };
    }
    if err
        .downcast_ref::<crate::fetch::saved::SavedError>()
        .is_some()
    {
        return ExitStatus::Usage;
    }
    // A cache that cannot be opened is fixed by --cache PATH or --no-cache, like a bad option.
    if err.downcast_ref::<CacheError>().is_some() {
        return ExitStatus::Usage;
    }
    ExitStatus::Failed
}

fn hint_for(err: &anyhow::Error) -> Option<String> {
    if is_out_of_space(err) {
        return Some(
            "the file system is full or a file size limit was reached; free space and run the \
             same command again (answers already in the cache cost no request)"
                .to_string(),
        );
    }
    match err.downcast_ref::<RunError>() {
        Some(RunError::Unauthorized(_)) => Some(
            "check the key in VT_API_KEY, --api-key-file or the config file; \
             one request was spent finding this out and no output was written"
                .to_string(),
        ),
        Some(RunError::TlsCertificate(_)) => Some(
            "check that --api-url names the host the certificate was issued for; if a \
             TLS-inspecting proxy re-signs traffic on this network, pass its root certificate \
             with --ca-cert FILE (PEM). Certificate checks cannot be turned off"
                .to_string(),
        ),
        Some(RunError::ProxyAuth(_)) => Some(
            "put the proxy's user name and password in the proxy variable, such as \
             HTTPS_PROXY=http://USER:PASSWORD@proxy.example:3128, or list the API host in NO_PROXY"
                .to_string(),
        ),
        Some(RunError::Input {
            rows_written,
            output,
            ..
        }) if *rows_written > 0 => Some(format!(
            "the {rows_written} rows looked up before the error were written to {output}; \
             fix the input and run the same command again (cached answers cost no request)"
        )),
        _ => None,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    io_error_kinds(err).any(|kind| kind == std::io::ErrorKind::BrokenPipe)
}

/// Checks for ENOSPC, EDQUOT or EFBIG anywhere in the chain.
fn is_out_of_space(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind;
    io_error_kinds(err).any(|kind| {
        matches!(
            kind,
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
        )
    })
}

/// Returns the kinds of the I/O errors in the chain of `err`.
fn io_error_kinds(err: &anyhow::Error) -> impl Iterator<Item = std::io::ErrorKind> + '_ {
    err.chain().filter_map(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            // The csv crate keeps its I/O error inside its own kind, not as a source.
            match cause.downcast_ref::<csv::Error>()?.kind() {
                csv::ErrorKind::Io(io) => Some(io),
                _ => None,
            }
        });
        io.map(std::io::Error::kind)
    })
}
