//! Process exit codes, in one place so the help text, the README and the code agree.

use std::process::ExitCode;

/// How a run ended, mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// 0: every input value reached a final status (ok, not_found, invalid or skipped).
    Done,
    /// 1: the run failed as a whole (rejected API key, unwritable output, internal error).
    Failed,
    /// 2: usage or input error (bad option, missing input file, no IP column).
    Usage,
    /// 3: partial: the quota ran out, some lookups failed, or the run was interrupted.
    Partial,
}

impl ExitStatus {
    /// Returns the numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Done => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Partial => 3,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// Help text listing the exit codes, shared by `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done: every value reached a final status (ok, not_found, invalid, skipped)
  1  the run failed (API key rejected, output not writable, internal error)
  2  usage or input error (bad option, unreadable input, no IP column found)
  3  partial: quota exhausted, some lookups failed, or interrupted (rerun to resume)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_documented_numbers() {
        assert_eq!(ExitStatus::Done.code(), 0);
        assert_eq!(ExitStatus::Failed.code(), 1);
        assert_eq!(ExitStatus::Usage.code(), 2);
        assert_eq!(ExitStatus::Partial.code(), 3);
    }

    #[test]
    fn help_lists_every_code() {
        for status in [
            ExitStatus::Done,
            ExitStatus::Failed,
            ExitStatus::Usage,
            ExitStatus::Partial,
        ] {
            let line = format!("  {}  ", status.code());
            assert!(EXIT_CODES_HELP.contains(&line), "missing {line:?}");
        }
    }
}
