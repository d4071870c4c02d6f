//! Which JDK path really ran, seen rather than assumed: the case's check pass runs under `strace -f` attached to
//! the JVM, and the system calls that touched the stream's socket and file say which path carried the bytes:
//! `sendfile` (transferTo's direct path), `mmap+write` (its mapped fallback, 8 MiB mappings written to the socket),
//! `read+write` (a copy through a buffer: the JDK's 8 KiB fallback loop, or the read-write and NIO paths). A JDK
//! that tries `copy_file_range` first (20 and later) shows it as a failed call beside the path that then ran.
//!
//! The check pass is not a repetition: it runs once per JVM, before the case's warm-ups, over one connection and at
//! most `CHECK_BYTES` of the file, and ptrace's stops slow every call it makes, so its time is never used.

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The most bytes the check pass sends: enough for several of the mapped fallback's 8 MiB pieces.
pub const CHECK_BYTES: u64 = 64 << 20;
/// What to install where strace is missing.
pub const INSTALL: &str = "apt-get install strace";
/// The calls traced: those that can carry a file's bytes to a socket, or read them on the way.
const TRACED: &str = "trace=sendfile,sendfile64,copy_file_range,splice,write,writev,pwrite64,sendto,sendmsg,read,readv,\
                      pread64,preadv,mmap";
/// How long strace may take to attach to every thread of the JVM.
const ATTACH_LIMIT: Duration = Duration::from_secs(20);

/// One system call as strace printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub args: Vec<String>,
    /// The bytes it returned, or the errno's name.
    pub ret: Result<u64, String>,
}

/// Parses one line of `strace -ff` output (no pid prefix); None for what is not a finished call.
pub fn parse(line: &str) -> Option<Call> {
    let (call, ret) = line.rsplit_once(" = ")?;
    let (name, args) = call.trim_end().split_once('(')?;
    let args = args.strip_suffix(')')?;
    let ret = ret.trim();
    let ret = match ret.strip_prefix("-1 ") {
        Some(err) => Err(err.split_whitespace().next().unwrap_or("?").to_string()),
        None => Ok(match ret.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => ret.split_whitespace().next()?.parse().ok()?,
        }),
    };
    Some(Call {
        name: name.trim().to_string(),
        args: args.split(", ").map(str::to_string).collect(),
        ret,
    })
}

/// strace attached to a JVM, writing one file per thread.
pub struct Tracer {
    child: Child,
    /// A folder of its own for strace's files, removed with the tracer.
    dir: PathBuf,
}

impl Tracer {
    /// Attaches `strace` to every thread of `pid` (and those it starts), and returns once it is attached.
    pub fn attach(strace: &Path, pid: i32) -> anyhow::Result<Tracer> {
        let dir = std::env::temp_dir().join(format!("xferbench-strace-{}-{pid}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("cannot make '{}' for strace's output", dir.display()))?;
        let mut child = Command::new(strace)
            .args(["-f", "-ff", "-s", "0", "-e", TRACED, "-e", "signal=none", "-o"])
            .arg(dir.join("t"))
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start '{}'", strace.display()))?;
        let stderr = child.stderr.take().context("strace's stderr was not piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let until = Instant::now() + ATTACH_LIMIT;
        let mut said = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) if line.contains("attached") => return Ok(Tracer { child, dir }),
                Ok(line) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!(
                        "strace could not attach to the JVM (pid {pid}): {}",
                        if said.is_empty() {
                            "no word from it".to_string()
                        } else {
                            said.join(" | ")
                        }
                    );
                }
            }
        }
    }

    /// Detaches (SIGINT, as a user's ^C) and returns every call traced.
    pub fn finish(mut self) -> anyhow::Result<Vec<Call>> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
        let mut calls = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let text = std::fs::read_to_string(entry?.path())?;
            calls.extend(text.lines().filter_map(parse));
        }
        Ok(calls)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// strace on PATH, if any.
pub fn strace() -> Option<PathBuf> {
    super::jdk::on_path("strace")
}

/// What the check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The calls that carried the bytes to the socket, and where they got them: `sendfile`, `mmap+write`,
    /// `read+write`; several joined with `, ` when the bytes went by more than one.
    pub path: String,
    /// Every traced call on the stream's socket or file, counted: `sendfile 64 calls 67108864 bytes; ...`.
    pub calls: String,
    /// Bytes copied between kernel and user space per byte sent (file reads plus socket writes over the bytes).
    pub copies: u64,
}

/// Reads the calls of a check pass that sent `bytes` over the JVM's descriptors `sockets`, reading `files`.
pub fn judge(calls: &[Call], sockets: &[i32], files: &[i32], bytes: u64) -> Check {
    let fd = |c: &Call, i: usize| c.args.get(i).and_then(|a| a.trim().parse::<i32>().ok());
    let on = |set: &[i32], c: &Call, i: usize| fd(c, i).is_some_and(|f| set.contains(&f));
    // name -> (calls, bytes, failures by errno)
    let mut seen: BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> = BTreeMap::new();
    let (mut by_sendfile, mut by_write, mut read_bytes, mut mapped) = (0u64, 0u64, 0u64, 0u64);
    for c in calls {
        let mine = match c.name.as_str() {
            "sendfile" | "sendfile64" | "splice" => on(sockets, c, 0) || on(files, c, 1),
            "copy_file_range" => on(files, c, 0) || on(sockets, c, 2),
            "mmap" => on(files, c, 4),
            _ => on(sockets, c, 0) || on(files, c, 0),
        };
        if !mine {
            continue;
        }
        let entry = seen.entry(c.name.clone()).or_default();
        entry.0 += 1;
        let n = match &c.ret {
            Ok(n) => *n,
            Err(errno) => {
                *entry.2.entry(errno.clone()).or_default() += 1;
                continue;
            }
        };
        match c.name.as_str() {
            "mmap" => {
                mapped += 1;
                entry.1 += c.args.get(1).and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
            }
            "sendfile" | "sendfile64" | "splice" if on(sockets, c, 0) => {
                (by_sendfile, entry.1) = (by_sendfile + n, entry.1 + n)
            }
            "read" | "readv" | "pread64" | "preadv" => (read_bytes, entry.1) = (read_bytes + n, entry.1 + n),
            "write" | "writev" | "pwrite64" | "sendto" | "sendmsg" if on(sockets, c, 0) => {
                (by_write, entry.1) = (by_write + n, entry.1 + n)
            }
            _ => entry.1 += n,
        }
    }
    let mut paths = Vec::new();
    if by_sendfile > 0 {
        paths.push("sendfile");
    }
    if by_write > 0 {
        paths.push(match (mapped > 0, read_bytes > 0) {
            (true, false) => "mmap+write",
            (false, true) => "read+write",
            (true, true) => "mmap+read+write",
            (false, false) => "write",
        });
    }
    let calls = seen
        .iter()
        .map(|(name, (n, b, failed))| {
            let failed: Vec<String> = failed.iter().map(|(e, k)| format!("{k} failed {e}")).collect();
            let failed = if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            };
            let what = if name == "mmap" { "bytes mapped" } else { "bytes" };
            format!("{name} {n} calls {b} {what}{failed}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check {
        path: if paths.is_empty() {
            "none seen".into()
        } else {
            paths.join(", ")
        },
        calls,
        copies: ((read_bytes + by_write) as f64 / bytes.max(1) as f64).round() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(text: &str) -> Vec<Call> {
        text.lines().filter_map(parse).collect()
    }

    #[test]
    fn strace_lines_parse() {
        let c = parse("sendfile(5, 7, [0] => [1048576], 1048576) = 1048576").unwrap();
        assert_eq!(
            (c.name.as_str(), c.args[0].as_str(), c.ret.clone()),
            ("sendfile", "5", Ok(1048576))
        );
        let c = parse(r#"read(0, ""..., 8192)                    = 3"#).unwrap();
        assert_eq!(c.ret, Ok(3));
        let c = parse("copy_file_range(7, [0], 5, NULL, 1048576, 0) = -1 EXDEV (Invalid cross-device link)").unwrap();
        assert_eq!(c.ret, Err("EXDEV".into()));
        let c = parse("mmap(NULL, 8388608, PROT_READ, MAP_SHARED, 7, 0) = 0x7f3a10000000").unwrap();
        assert_eq!(c.args[4], "7");
        assert!(parse("+++ exited with 0 +++").is_none());
        assert!(parse(r#"write(5, ""..., 8192 <detached ...>"#).is_none());
    }

    #[test]
    fn the_calls_that_carried_the_bytes_name_the_path() {
        let direct = calls(
            "sendfile(5, 7, [0] => [1048576], 1048576) = 1048576\n\
             sendfile(5, 7, [1048576] => [2097152], 1048576) = 1048576\n\
             write(1, \"\"..., 40) = 40\n\
             copy_file_range(7, [0], 5, NULL, 1048576, 0) = -1 EINVAL (Invalid argument)",
        );
        let c = judge(&direct, &[5], &[7], 2 << 20);
        assert_eq!((c.path.as_str(), c.copies), ("sendfile", 0));
        assert_eq!(
            c.calls,
            "copy_file_range 1 calls 0 bytes (1 failed EINVAL); sendfile 2 calls 2097152 bytes"
        );
        let mapped = calls(
            "mmap(NULL, 8388608, PROT_READ, MAP_SHARED, 7, 0) = 0x7f0000000000\n\
             write(5, \"\"..., 8388608) = 8388608",
        );
        assert_eq!(judge(&mapped, &[5], &[7], 8 << 20).path, "mmap+write");
        assert_eq!(judge(&mapped, &[5], &[7], 8 << 20).copies, 1);
        let copied = calls("read(7, \"\"..., 8192) = 8192\nwrite(5, \"\"..., 8192) = 8192");
        let c = judge(&copied, &[5], &[7], 8192);
        assert_eq!((c.path.as_str(), c.copies), ("read+write", 2));
        assert_eq!(judge(&[], &[5], &[7], 1).path, "none seen");
    }
}
