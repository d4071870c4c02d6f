//! Errors that are the user's to fix (exit 2) apart from failures at run time (exit 1).

use std::fmt;

/// A bad flag value or a conflicting combination: the message names the flag and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    message: String,
}

impl UsageError {
    /// A value given to `flag` was wrong: `why` says how.
    pub fn new(flag: &str, value: &str, why: impl fmt::Display) -> Self {
        UsageError {
            message: format!("invalid value '{value}' for '{flag}': {why}"),
        }
    }

    /// A message of its own, for conflicts between flags.
    pub fn msg(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// Exit status for a usage error (as clap uses).
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a failure at run time, or a run in which some case failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status after SIGINT or SIGTERM stopped a run.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit status of `compare --fail-if-slower` when a case is slower beyond the noise: neither a failure to run (1)
/// nor a usage error (2), so that a CI can tell a regression from a broken job.
pub const EXIT_SLOWER: i32 = 3;
