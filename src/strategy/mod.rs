//! Transfer strategies: how the file's bytes get from the page cache into a socket.
//!
//! A strategy is a method (`read-send`, `mmap-send`, `sendfile`, ...) and whether it runs on one connection or on
//! N (`parallel-<method>`: N threads, each with its own connection and its own file descriptor, dividing the file
//! by a `Layout`). Every method is one `StreamSender`, built outside the timed section by `prepare` (buffers,
//! mappings, pipes) and then driven over one connection by `streams::run`, which does the threads, the start
//! barrier and the timing. Each method handles short writes, EINTR and EAGAIN, counts its system calls and the
//! bytes it copies through user space, and times every call into an hdrhistogram.

mod direct_read_send;
mod io_uring;
mod mmap_send;
mod msg_zerocopy;
pub mod pipe;
mod read_send;
mod sendfile;
mod splice;
pub mod streams;

use crate::error::UsageError;
use crate::wire::StreamPlan;
use hdrhistogram::Histogram;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The transfer path of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// read() into a user buffer of `chunk` bytes, send() it: two copies through user space.
    ReadSend,
    /// mmap() the file, send() from the mapping: one copy.
    MmapSend,
    /// sendfile() in `chunk`-sized calls: no copy through user space.
    Sendfile,
    /// splice() file -> pipe -> socket: no copy through user space.
    Splice,
    /// The splice path as linked io_uring operations, `queue_depth / 2` pipe-fulls per submission.
    IoUring,
    /// send() from a mapping with MSG_ZEROCOPY: no copy unless the kernel reports it copied anyway.
    MsgZerocopy,
    /// pread() with O_DIRECT into an aligned buffer, then send(): the disk path for cold runs.
    DirectReadSend,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::ReadSend,
        Method::MmapSend,
        Method::Sendfile,
        Method::Splice,
        Method::IoUring,
        Method::MsgZerocopy,
        Method::DirectReadSend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::ReadSend => "read-send",
            Method::MmapSend => "mmap-send",
            Method::Sendfile => "sendfile",
            Method::Splice => "splice",
            Method::IoUring => "io-uring",
            Method::MsgZerocopy => "msg-zerocopy",
            Method::DirectReadSend => "direct-read-send",
        }
    }

    /// Bytes copied through user space per byte sent (msg-zerocopy: when the kernel really avoids the copy).
    pub fn user_copies(self) -> u64 {
        match self {
            Method::ReadSend | Method::DirectReadSend => 2,
            Method::MmapSend => 1,
            Method::Sendfile | Method::Splice | Method::IoUring | Method::MsgZerocopy => 0,
        }
    }
}

/// A method on one connection, or on N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Strategy {
    pub method: Method,
    pub parallel: bool,
}

impl Strategy {
    /// Parses `sendfile`, `parallel-sendfile`, `read-send`, `parallel-read-send`, ...
    pub fn parse(name: &str) -> Result<Strategy, UsageError> {
        let trimmed = name.trim();
        let (parallel, base) = match trimmed.strip_prefix("parallel-") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        Method::ALL
            .iter()
            .find(|m| m.name() == base)
            .map(|&method| Strategy { method, parallel })
            .ok_or_else(|| {
                let known: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                UsageError::new(
                    "--strategies",
                    name,
                    format!(
                        "unknown strategy; known: {} (each also as parallel-<name>)",
                        known.join(", ")
                    ),
                )
            })
    }

    pub fn name(&self) -> String {
        if self.parallel {
            format!("parallel-{}", self.method.name())
        } else {
            self.method.name().to_string()
        }
    }
}

/// What a method needs beyond the file and the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Bytes asked of each transfer call.
    pub chunk_bytes: u64,
    /// Submission queue depth of `io-uring` (ignored by the others).
    pub queue_depth: u32,
}

/// Counts and call latencies of one stream (or, merged, of a case).
#[derive(Debug, Clone)]
pub struct CallStats {
    /// Every system call in the transfer path, retries included.
    pub syscalls: u64,
    /// Bytes the socket accepted.
    pub bytes: u64,
    /// Bytes copied between kernel and user space by the sender.
    pub user_copy_bytes: u64,
    /// Latency of each call, nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// When the path that ran differs from the one asked for: which ran, and why.
    pub fallback: Option<String>,
    /// MSG_ZEROCOPY sends completed, and how many of them the kernel reported it copied anyway.
    pub zerocopy_sends: u64,
    pub zerocopy_copied: u64,
    pub first_call: Option<Instant>,
    pub last_return: Option<Instant>,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            syscalls: 0,
            bytes: 0,
            user_copy_bytes: 0,
            // One nanosecond to an hour at three significant figures.
            latency_ns: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            fallback: None,
            zerocopy_sends: 0,
            zerocopy_copied: 0,
            first_call: None,
            last_return: None,
        }
    }
}

impl CallStats {
    /// Adds another stream's counts to these.
    pub fn merge(&mut self, other: &CallStats) {
        self.syscalls += other.syscalls;
        self.bytes += other.bytes;
        self.user_copy_bytes += other.user_copy_bytes;
        self.latency_ns.add(&other.latency_ns).expect("histograms share bounds");
        if self.fallback.is_none() {
            self.fallback.clone_from(&other.fallback);
        }
        self.zerocopy_sends += other.zerocopy_sends;
        self.zerocopy_copied += other.zerocopy_copied;
        self.first_call = match (self.first_call, other.first_call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_return = match (self.last_return, other.last_return) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Runs one system call, timing and counting it; retries on EINTR and EAGAIN (the socket's send timeout
    /// expiring) after checking that the case may go on.
    #[inline]
    pub fn call(
        &mut self,
        ctl: &Control,
        what: &'static str,
        mut f: impl FnMut() -> nix::Result<usize>,
    ) -> Result<usize, SendError> {
        loop {
            let start = Instant::now();
            let result = f();
            let end = Instant::now();
            self.syscalls += 1;
            self.first_call.get_or_insert(start);
            self.last_return = Some(end);
            let _ = self.latency_ns.record((end - start).as_nanos().max(1) as u64);
            match result {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => ctl.check()?,
                Err(errno) => return Err(SendError::Io { call: what, errno }),
            }
        }
    }
}

/// Limits every stream of a case obeys: a deadline and the run's stop flag (SIGINT, SIGTERM, --fail-fast).
#[derive(Debug, Clone, Copy)]
pub struct Control<'a> {
    pub deadline: Instant,
    /// The run's stop flag (SIGINT, SIGTERM).
    pub stop: &'a AtomicBool,
    /// Set when a sibling stream of the same case failed.
    pub abort: &'a AtomicBool,
}

impl Control<'_> {
    /// Fails when the case must end now.
    pub fn check(&self) -> Result<(), SendError> {
        if self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed) {
            return Err(SendError::Interrupted);
        }
        if Instant::now() >= self.deadline {
            return Err(SendError::TimedOut);
        }
        Ok(())
    }
}

/// How often a blocked send wakes up to check the deadline and the stop flag (SO_SNDTIMEO).
pub const SEND_WAKEUP: Duration = Duration::from_millis(500);

/// Why a stream stopped before its last byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("interrupted")]
    Interrupted,
    #[error("the case ran past its --timeout")]
    TimedOut,
    #[error("{call}: {errno}")]
    Io {
        call: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("the file ended early at offset {0}: it changed while being sent")]
    FileShrank(u64),
    #[error("{0}")]
    Setup(String),
}

impl SendError {
    /// The row's `status` for this failure.
    pub fn status(&self) -> &'static str {
        use nix::errno::Errno;
        match self {
            SendError::Interrupted => "interrupted",
            SendError::TimedOut => "timeout",
            SendError::Io {
                errno: Errno::ECONNRESET,
                ..
            } => "connection-reset",
            SendError::Io {
                errno: Errno::EPIPE, ..
            } => "broken-pipe",
            SendError::Io { .. } => "io-error",
            SendError::FileShrank(_) => "file-changed",
            SendError::Setup(_) => "setup-failed",
        }
    }
}

/// Sends the ranges of one stream's plan over one connection.
pub trait StreamSender: Send {
    fn send(
        &mut self,
        sock: &TcpStream,
        plan: &StreamPlan,
        stats: &mut CallStats,
        ctl: &Control,
    ) -> Result<(), SendError>;
}

/// Builds a method's sender for one connection: everything that is set-up, not transfer.
pub fn prepare(method: Method, file: File, opts: &SendOptions) -> anyhow::Result<Box<dyn StreamSender>> {
    Ok(match method {
        Method::ReadSend => Box::new(read_send::ReadSend::new(file, opts)?),
        Method::MmapSend => Box::new(mmap_send::MmapSend::new(file)?),
        Method::Sendfile => Box::new(sendfile::Sendfile::new(file)),
        Method::Splice => Box::new(splice::Splice::new(file, opts)?),
        Method::IoUring => Box::new(io_uring::IoUringSend::new(file, opts)?),
        Method::MsgZerocopy => Box::new(msg_zerocopy::MsgZerocopy::new(file)?),
        Method::DirectReadSend => Box::new(direct_read_send::DirectReadSend::new(file, opts)?),
    })
}

/// send(2) of a whole buffer, short writes handled, SIGPIPE suppressed.
pub(crate) fn send_all(
    sock: &TcpStream,
    mut data: &[u8],
    stats: &mut CallStats,
    ctl: &Control,
) -> Result<(), SendError> {
    use nix::sys::socket::{MsgFlags, send};
    let fd = sock.as_raw_fd();
    while !data.is_empty() {
        let n = stats.call(ctl, "send", || send(fd, data, MsgFlags::MSG_NOSIGNAL))?;
        data = &data[n..];
    }
    Ok(())
}

/// Cuts `range` into calls of at most `chunk` bytes.
pub(crate) fn pieces(range: std::ops::Range<u64>, chunk: u64) -> impl Iterator<Item = std::ops::Range<u64>> {
    let chunk = chunk.max(1);
    (range.start..range.end)
        .step_by(chunk as usize)
        .map(move |s| s..(s + chunk).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::ALL {
            for parallel in [false, true] {
                let s = Strategy { method: m, parallel };
                assert_eq!(Strategy::parse(&s.name()).unwrap(), s);
            }
        }
        let e = Strategy::parse("sendfil").unwrap_err().to_string();
        assert!(e.contains("--strategies") && e.contains("known: read-send"), "{e}");
    }

    #[test]
    fn pieces_cover_the_range() {
        let p: Vec<_> = pieces(10..35, 10).collect();
        assert_eq!(p, vec![10..20, 20..30, 30..35]);
    }
}
