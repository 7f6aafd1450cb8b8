//! Checks and preparation for `--join`, done before any request is sent.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::TempPath;

use crate::config::{ConfigError, OutputSettings};
use crate::input::{self, InputOptions, InputShape};
use crate::output::OutputTarget;

/// Makes sure a join run can finish, and copies stdin to a temporary file when it is the input.
/// Returns the copy, which is deleted when dropped.
///
/// Every check here fails before the first request, so a run that cannot write its joined
/// output spends no quota.
pub fn prepare(
    input: &mut InputOptions,
    output: &OutputSettings,
) -> anyhow::Result<Option<TempPath>> {
    if input.extract.is_some() {
        return Err(ConfigError::Invalid {
            setting: "--join",
            message:
                "--join keeps the rows of a CSV or TSV table, and --extract reads logs that have \
                      none; use one or the other"
                    .to_string(),
        }
        .into());
    }
    let path = single_input(input)?;
    check_output_writable(output)?;

    let copy = if path.as_os_str() == "-" {
        let copy = copy_stdin()?;
        input.stdin_copy = Some(copy.to_path_buf());
        Some(copy)
    } else {
        None
    };

    let problem = match input::input_shape(&path, input)? {
        InputShape::Table => return Ok(copy),
        InputShape::PlainList => "reads as a plain list of addresses",
        InputShape::Empty => "is empty",
    };
    Err(ConfigError::Invalid {
        setting: "--join",
        message: format!(
            "{} {problem}, and --join needs a CSV or TSV table with a header row; \
             add a header line (for example `ip`), pass --input-format csv, or run without --join",
            shown(&path)
        ),
    }
    .into())
}

fn single_input(input: &InputOptions) -> Result<PathBuf, ConfigError> {
    match input.paths.as_slice() {
        [] => Ok(PathBuf::from("-")),
        [path] => Ok(path.clone()),
        _ => Err(ConfigError::Invalid {
            setting: "--join",
            message: format!(
                "--join writes one joined table per input and takes one input, but {} were given; \
                 run once per file, or concatenate files that share a header",
                input.paths.len()
            ),
        }),
    }
}

/// Creates and removes a file in the output's directory: the joined output is opened only
/// after every lookup, so an unwritable directory must be found now.
fn check_output_writable(output: &OutputSettings) -> anyhow::Result<()> {
    let targets = [Some(&output.target), output.engines_target.as_ref()];
    for target in targets.into_iter().flatten() {
        let OutputTarget::File(path) = target else {
            continue;
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        tempfile::Builder::new()
            .prefix(".vt-enrich-check.")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot write to `{}`, where the output `{}` goes",
                    dir.display(),
                    path.display()
                )
            })?;
    }
    Ok(())
}

/// Copies all of stdin to a temporary file, because join mode reads its input twice.
fn copy_stdin() -> anyhow::Result<TempPath> {
    let mut file = tempfile::Builder::new()
        .prefix("vt-enrich-stdin.")
        .tempfile()
        .context("cannot create a temporary file for a copy of standard input")?;
    let copied = io::copy(&mut io::stdin().lock(), file.as_file_mut())
        .context("cannot copy standard input to a temporary file")?;
    tracing::debug!(bytes = copied, path = %file.path().display(), "copied standard input for the join pass");
    Ok(file.into_temp_path())
}

fn shown(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        format!("`{}`", path.display())
    }
}
