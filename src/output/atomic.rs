//! Output files that appear at their target path only when complete.
//!
//! The data goes to a temporary file in the target's directory (the same file system, so the
//! final rename is atomic on POSIX systems). [`AtomicFile::commit`] flushes the data to disk
//! and renames the file over the target. Dropping an uncommitted [`AtomicFile`] deletes the
//! temporary file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use super::OutputError;

/// Temporary files not yet committed or dropped, so that an exit that skips destructors (a
/// second Ctrl-C) can still remove them. A `kill -9` skips even that; [`sweep_abandoned`]
/// removes such files on the next run that writes the same target.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every temporary output file still in progress. For a process about to exit without
/// running destructors; the writers must not be used afterwards.
pub fn remove_unfinished_files() {
    let mut unfinished = UNFINISHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for path in unfinished.drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

fn forget_unfinished(path: &Path) {
    let mut unfinished = UNFINISHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    unfinished.retain(|pending| pending != path);
}

pub(crate) struct AtomicFile {
    /// `None` only after `commit` took it.
    temp: Option<NamedTempFile>,
    target: PathBuf,
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // NamedTempFile deletes an uncommitted file itself; only the registry needs updating.
        if let Some(temp) = &self.temp {
            forget_unfinished(temp.path());
        }
    }
}

impl AtomicFile {
    /// Creates the temporary file next to `target`.
    pub fn create(target: &Path) -> Result<Self, OutputError> {
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The process id in the name tells a later run whether the writer is still alive.
        let prefix = format!(".{name}.pid{}.", std::process::id());
        sweep_abandoned(directory, &name);

        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile creates files with mode 0600; ask for 0666 so the umask decides, as for any
        // other file the user creates.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp =
            builder
                .tempfile_in(directory)
                .map_err(|source| OutputError::CreateTemporary {
                    path: target.display().to_string(),
                    source,
                })?;
        UNFINISHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(temp.path().to_path_buf());
        Ok(AtomicFile {
            temp: Some(temp),
            target: target.to_path_buf(),
        })
    }

    /// Returns a second handle to the temporary file for the format writer.
    pub fn handle(&self) -> Result<File, OutputError> {
        self.temp()
            .as_file()
            .try_clone()
            .map_err(|source| self.io_error(source))
    }

    fn temp(&self) -> &NamedTempFile {
        self.temp
            .as_ref()
            .expect("the temporary file is only taken by commit, which consumes self")
    }

    /// Returns the target path as messages show it.
    pub fn describe(&self) -> String {
        self.target.display().to_string()
    }

    fn io_error(&self, source: io::Error) -> OutputError {
        OutputError::Io {
            path: self.describe(),
            source,
        }
    }

    /// Flushes the file to disk and renames it over the target. The caller must have flushed
    /// every buffered writer of [`handle`](Self::handle) first.
    pub fn commit(mut self) -> Result<(), OutputError> {
        self.temp()
            .as_file()
            .sync_all()
            .map_err(|source| self.io_error(source))?;
        let path = self.describe();
        let target = self.target.clone();
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        forget_unfinished(temp.path());
        temp.persist(&target)
            .map_err(|error| OutputError::Persist {
                path,
                source: error.error,
            })?;
        sync_directory(&target);
        Ok(())
    }
}

/// Removes temporary files of `target_name` in `directory` left by processes that no longer
/// run, such as one killed with `kill -9`. Files of live processes, including other runs
/// writing the same target, are left alone. Best effort: failures are only logged.
fn sweep_abandoned(directory: &Path, target_name: &str) {
    let prefix = format!(".{target_name}.pid");
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .filter(|rest| rest.ends_with(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest
            .split('.')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if process_is_gone(pid) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), pid, "removed a temporary output file left by a process that no longer runs")
                }
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "cannot remove an abandoned temporary output file")
                }
            }
        }
    }
}

/// Returns whether no process `pid` runs. Only Linux can tell (through `/proc`); elsewhere
/// every process is assumed alive and nothing is removed.
fn process_is_gone(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
    } else {
        false
    }
}

/// Flushes the directory entry of the rename to disk, so the new file survives a power loss.
/// Failure only weakens that guarantee, so it is logged and not returned.
fn sync_directory(target: &Path) {
    #[cfg(unix)]
    {
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if let Err(error) = File::open(directory).and_then(|dir| dir.sync_all()) {
            tracing::debug!(path = %directory.display(), %error, "failed to sync the output directory");
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn commit_replaces_target() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();

        let file = AtomicFile::create(&target).unwrap();
        file.handle().unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        file.commit().unwrap();

        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(directory.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_of_dead_writers_are_swept_and_live_ones_kept() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("out.parquet");
        // Pid 4194304 is above Linux's maximum (2^22), so no process has it.
        let dead = directory.path().join(".out.parquet.pid4194304.AbC123.tmp");
        let live = directory
            .path()
            .join(format!(".out.parquet.pid{}.XyZ789.tmp", std::process::id()));
        let other = directory
            .path()
            .join(".other.parquet.pid4194304.AbC123.tmp");
        for path in [&dead, &live, &other] {
            std::fs::write(path, "partial").unwrap();
        }

        let file = AtomicFile::create(&target).unwrap();

        assert!(!dead.exists(), "a dead writer's file is removed");
        assert!(live.exists(), "a live writer's file is kept");
        assert!(other.exists(), "another target's file is kept");
        drop(file);
    }

    #[test]
    fn drop_leaves_no_file() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("out.parquet");
        let file = AtomicFile::create(&target).unwrap();
        file.handle().unwrap().write_all(b"partial").unwrap();
        drop(file);
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_directory_names_target() {
        let error = AtomicFile::create(Path::new("/nonexistent-dir-for-test/out.csv"))
            .err()
            .unwrap();
        assert!(
            error
                .to_string()
                .contains("/nonexistent-dir-for-test/out.csv"),
            "{error}"
        );
    }
}
