//! One JVM running the sender, and its command channel: a command is one line on the JVM's stdin, its answer one
//! line of JSON on its stdout, waited for in slices so that the run's stop flag, a deadline and the JVM's death
//! are each noticed within a fraction of a second. The JVM dies with this process (PR_SET_PDEATHSIG) and is asked
//! to quit, then killed, when it is dropped.

use super::jdk::{Compiled, Jdk, MAIN_CLASS};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The JVM's options: Kafka's start script gives its brokers a 1 GiB heap; nothing else is set, so the collector,
/// the JIT and the rest are the JDK's defaults for this machine (recorded with the version in every row).
pub const OPTIONS: &[&str] = &["-Xmx1g"];
/// How long a JVM may take to start and answer its first command (a loaded machine is slow to start one).
const START_LIMIT: Duration = Duration::from_secs(60);
/// Longest the stop flag and the JVM's death go unnoticed while waiting for an answer.
const SLICE_MS: i32 = 200;
/// How much of the JVM's stderr is kept for an error message.
const STDERR_KEPT: usize = 2048;

/// What the JVM said of itself.
#[derive(Debug, Clone, Deserialize)]
pub struct About {
    now_ns: u64,
    pub version: String,
    pub vendor: String,
    pub vm: String,
    pub options: String,
}

impl About {
    /// `17.0.15+6-Debian-1deb12u1 (Debian, OpenJDK 64-Bit Server VM; -Xmx1g)`, the row's `jvm_version`.
    pub fn text(&self) -> String {
        format!("{} ({}, {}; {})", self.version, self.vendor, self.vm, self.options)
    }
}

/// Why a command got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The JVM is gone: how it ended, and the last of its stderr.
    #[error("{0}")]
    Exited(String),
    /// The sender answered that the command failed (a Java exception, in its words).
    #[error("the JVM sender: {0}")]
    Refused(String),
    #[error("no answer from the JVM to '{0}' in time")]
    TimedOut(String),
    #[error("stopped by a signal")]
    Stopped,
}

/// A running JVM with the sender loaded.
pub struct Jvm {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Bytes read from stdout past the last whole line.
    pending: Vec<u8>,
    stderr: Arc<Mutex<Vec<u8>>>,
    pub pid: i32,
    pub about: About,
    /// How it ended, once it has.
    ended: Option<String>,
}

impl Jvm {
    /// Starts a JVM on the compiled sender, pinned to `cpus` when given (every thread of it, JIT and collector
    /// included), and checks that its System.nanoTime reads this kernel's CLOCK_MONOTONIC: its first-call and
    /// last-return times are set against the sink's byte times.
    pub fn start(jdk: &Jdk, sender: &Compiled, cpus: Option<&[usize]>, stop: &AtomicBool) -> anyhow::Result<Jvm> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&jdk.java);
        cmd.args(OPTIONS)
            .arg("-cp")
            .arg(&sender.classes)
            .arg(MAIN_CLASS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let cpus: Option<Vec<usize>> = cpus.map(<[usize]>::to_vec);
        // SAFETY: the closure runs in the child between fork and exec and calls only prctl and sched_setaffinity,
        // both async-signal-safe system calls; it allocates nothing (the CPU set is built on the stack).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(cpus) = &cpus {
                    let mut set = nix::sched::CpuSet::new();
                    for &c in cpus {
                        let _ = set.set(c);
                    }
                    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start '{}': {e}", jdk.java.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let kept = Arc::clone(&stderr);
            std::thread::spawn(move || keep_tail(&mut err, &kept));
        }
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            anyhow::bail!("the JVM's stdin and stdout were not piped");
        };
        let mut jvm = Jvm {
            pid: child.id() as i32,
            child,
            stdin,
            stdout,
            pending: Vec::new(),
            stderr,
            about: About {
                now_ns: 0,
                version: String::new(),
                vendor: String::new(),
                vm: String::new(),
                options: String::new(),
            },
            ended: None,
        };
        let before = crate::base::env::monotonic_ns();
        jvm.about = jvm.call("hello", START_LIMIT, stop)?;
        let after = crate::base::env::monotonic_ns();
        anyhow::ensure!(
            (before..=after).contains(&jvm.about.now_ns),
            "the JVM's System.nanoTime ({} ns) is not this kernel's CLOCK_MONOTONIC (between {before} and {after} \
             ns): its send times could not be set against the sink's",
            jvm.about.now_ns
        );
        Ok(jvm)
    }

    /// Sends one command and waits up to `within` for its answer, which must parse as `T`.
    pub fn call<T: DeserializeOwned>(
        &mut self,
        command: &str,
        within: Duration,
        stop: &AtomicBool,
    ) -> Result<T, CallError> {
        if let Some(how) = &self.ended {
            return Err(CallError::Exited(how.clone()));
        }
        if self.stdin.write_all(format!("{command}\n").as_bytes()).is_err() || self.stdin.flush().is_err() {
            return Err(self.exited());
        }
        let line = self.line(command, Instant::now() + within, stop)?;
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| CallError::Refused(format!("an answer that does not parse ({e}): {line}")))?;
        if value.get("ok") != Some(&serde_json::Value::Bool(true)) {
            let why = value.get("error").and_then(|e| e.as_str()).unwrap_or("no reason given");
            return Err(CallError::Refused(why.to_string()));
        }
        serde_json::from_value(value)
            .map_err(|e| CallError::Refused(format!("an answer of another shape ({e}): {line}")))
    }

    /// The next line of JSON from the JVM (lines that are not JSON, which a JVM may print, are passed over).
    fn line(&mut self, command: &str, deadline: Instant, stop: &AtomicBool) -> Result<String, CallError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line).trim().to_string();
                if line.starts_with('{') {
                    return Ok(line);
                }
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(CallError::Stopped);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CallError::TimedOut(command.to_string()));
            }
            let mut fds = [libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let slice = (left.as_millis() as i32).clamp(1, SLICE_MS);
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call, and its fd is the open
            // read end of the JVM's stdout pipe, which `self` owns.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, slice) };
            if ready <= 0 {
                continue; // nothing yet, or EINTR: the loop checks the flag and the deadline again
            }
            let mut buf = [0u8; 64 * 1024];
            match self.stdout.read(&mut buf) {
                Ok(0) | Err(_) => return Err(self.exited()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The JVM has gone (or is going): waits for it and says how it ended.
    fn exited(&mut self) -> CallError {
        if self.ended.is_none() {
            let status = wait_a_moment(&mut self.child);
            let tail = String::from_utf8_lossy(&self.stderr.lock().map(|e| e.clone()).unwrap_or_default())
                .trim()
                .replace('\n', " | ");
            let how = match status {
                Some(s) => describe(s),
                None => "stopped answering".to_string(),
            };
            let said = if tail.is_empty() {
                String::new()
            } else {
                format!("; its stderr ended: {tail}")
            };
            self.ended = Some(format!("the JVM (pid {}) {how}{said}", self.pid));
        }
        CallError::Exited(self.ended.clone().unwrap_or_default())
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.ended.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it at once (a send past its deadline, a stop): its sockets close with it, except the copies this
    /// process holds.
    pub fn kill(&mut self, why: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.ended
            .get_or_insert_with(|| format!("the JVM (pid {}) was killed: {why}", self.pid));
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        if self.ended.is_none() {
            let _ = self.stdin.write_all(b"quit\n");
            let _ = self.stdin.flush();
            if wait_a_moment(&mut self.child).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Waits up to two seconds for the child to end; its status, if it did.
fn wait_a_moment(child: &mut Child) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// `exited with status 1`, `was killed by signal 9 (SIGKILL)`.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("?");
            format!("was killed by signal {sig} ({name})")
        }
        _ => format!("ended ({status})"),
    }
}

/// Keeps the last `STDERR_KEPT` bytes the JVM writes on stderr.
fn keep_tail(err: &mut impl Read, kept: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf) {
        if n == 0 {
            return;
        }
        if let Ok(mut k) = kept.lock() {
            k.extend_from_slice(&buf[..n]);
            let extra = k.len().saturating_sub(STDERR_KEPT);
            k.drain(..extra);
        }
    }
}
