//! iproute2, run as a command: `ip` makes the namespaces, veth pairs, addresses and routes, `tc` the qdiscs. They
//! are found on PATH or in the sbin folders (a user's PATH often lacks them); a machine without them gets one line
//! naming the package.

use crate::base::error::UsageError;
use std::path::PathBuf;
use std::process::Command;

/// A command of iproute2 that failed: the command line and what it said.
#[derive(Debug)]
pub struct Failed {
    pub line: String,
    pub said: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` failed: {}", self.line, self.said)
    }
}

impl std::error::Error for Failed {}

/// Where a program of iproute2 is.
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Refuses a machine without `ip` or `tc`, naming the package.
pub fn check() -> Result<(), UsageError> {
    match ["ip", "tc"].into_iter().find(|p| find(p).is_none()) {
        None => Ok(()),
        Some(p) => Err(UsageError::msg(format!(
            "--link veth makes its path with iproute2's `ip` and `tc`, and `{p}` is not installed: apt-get install \
             iproute2"
        ))),
    }
}

/// Runs `program args`; its first line of complaint is the error.
pub fn run(program: &str, args: &[&str]) -> Result<(), Failed> {
    let line = format!("{program} {}", args.join(" "));
    let Some(exe) = find(program) else {
        return Err(Failed {
            line,
            said: format!("{program} is not installed (apt-get install iproute2)"),
        });
    };
    let out = Command::new(exe).args(args).output().map_err(|e| Failed {
        line: line.clone(),
        said: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    // tc warns before it fails: the last line is the reason.
    let said = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .to_string();
    Err(Failed { line, said })
}

pub fn ip(args: &[&str]) -> Result<(), Failed> {
    run("ip", args)
}

pub fn tc(args: &[&str]) -> Result<(), Failed> {
    run("tc", args)
}
