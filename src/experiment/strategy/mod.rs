//! Transfer strategies: how the file's bytes get from the page cache into a socket.
//!
//! A strategy is a method (`read-send`, `mmap-send`, `sendfile`, ...) on one connection or on N
//! (`parallel-<method>`: N threads, each with its own connection and file descriptor, dividing the file by a
//! `Layout`). A method is one `Transfer`: its set-up (buffers, mappings, pipes, rings, socket options) is done by
//! `prepare` outside the timed section, and its one job is to move a run of file bytes towards the socket.
//! Everything else is `send_pass`'s, the one piece loop: the stream's ranges, chunking, stop checks, short writes,
//! and the byte and copy accounting. `streams` runs it on every connection of a case, one thread each.
//!
//! Each method counts its system calls and times every one into an hdrhistogram (`Io::call`, which also retries
//! EINTR and EAGAIN); a method that cannot run as asked runs another path and says which (`Transfer::fallback`).

mod direct_read_send;
mod io_uring;
mod io_uring_zc;
mod mmap_send;
mod msg_zerocopy;
pub(crate) mod pipe;
mod read_send;
mod sendfile;
mod splice;
pub mod streams;
mod tls_send;

use crate::base::model::{Method, Status};
use crate::experiment::wire::StreamPlan;
use hdrhistogram::Histogram;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a method needs beyond the file and the socket, for its set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Bytes asked of each transfer call (buffers and pipes are sized by it).
    pub chunk_bytes: u64,
    /// Submission queue depth of the io-uring methods (ignored by the others).
    pub queue_depth: u32,
}

/// A method that runs another path than the one asked for, and why (the kernel's or the library's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The method that really runs.
    pub method: Method,
    pub reason: String,
}

impl Fallback {
    pub fn to(method: Method, reason: impl Into<String>) -> Option<Fallback> {
        Some(Fallback {
            method,
            reason: reason.into(),
        })
    }
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
    pub fallback: Option<Fallback>,
    /// Zero-copy sends completed, and how many of them the kernel reported it copied anyway.
    pub zerocopy_sends: u64,
    pub zerocopy_copied: u64,
    /// The TLS cipher suite of a TLS path.
    pub tls_cipher: Option<String>,
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
            tls_cipher: None,
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
        if self.tls_cipher.is_none() {
            self.tls_cipher.clone_from(&other.tls_cipher);
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
}

/// Limits every stream of a case obeys: a deadline and the run's stop flag (SIGINT, SIGTERM, --fail-fast).
#[derive(Debug, Clone, Copy)]
pub struct Control<'a> {
    pub deadline: Instant,
    /// The run's stop flag (SIGINT, SIGTERM).
    pub stop: &'a AtomicBool,
    /// Set when a sibling stream of the same case failed.
    pub abort: &'a AtomicBool,
    /// Bytes sent so far by every stream of the case, for the progress line (None: nobody watches).
    pub sent: Option<&'a std::sync::atomic::AtomicU64>,
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
    #[error("{0}")]
    Peer(String),
    /// A sending process of its own (a JVM) failed, in its words.
    #[error("{0}")]
    Sender(String),
    /// A sending process of its own (a JVM) exited before the pass was sent.
    #[error("{0}")]
    SenderExited(String),
}

impl SendError {
    /// The row's `status` for this failure.
    pub fn status(&self) -> Status {
        use nix::errno::Errno;
        match self {
            SendError::Interrupted => Status::Interrupted,
            SendError::TimedOut => Status::Timeout,
            SendError::Io {
                errno: Errno::ECONNRESET,
                ..
            } => Status::ConnectionReset,
            SendError::Io {
                errno: Errno::EPIPE, ..
            } => Status::BrokenPipe,
            SendError::Io { .. } => Status::IoError,
            SendError::FileShrank(_) => Status::FileChanged,
            SendError::Setup(_) => Status::SetupFailed,
            SendError::Peer(_) => Status::SinkError,
            SendError::Sender(_) => Status::IoError,
            SendError::SenderExited(_) => Status::SenderExited,
        }
    }
}

/// What a method's call works with: the connection, the stream's counts, and the case's limits.
pub struct Io<'a> {
    pub sock: &'a TcpStream,
    pub stats: &'a mut CallStats,
    pub ctl: &'a Control<'a>,
}

impl Io<'_> {
    /// Runs one system call, timing and counting it; retries on EINTR and EAGAIN (the socket's send timeout
    /// expiring) after checking that the case may go on.
    #[inline]
    pub fn call(&mut self, what: &'static str, mut f: impl FnMut() -> nix::Result<usize>) -> Result<usize, SendError> {
        loop {
            let start = Instant::now();
            let result = f();
            let end = Instant::now();
            let stats = &mut *self.stats;
            stats.syscalls += 1;
            stats.first_call.get_or_insert(start);
            stats.last_return = Some(end);
            let _ = stats.latency_ns.record((end - start).as_nanos().max(1) as u64);
            match result {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => self.ctl.check()?,
                Err(errno) => return Err(SendError::Io { call: what, errno }),
            }
        }
    }

    /// send(2) of a whole buffer, short writes handled, SIGPIPE suppressed.
    pub fn send_all(&mut self, mut data: &[u8]) -> Result<(), SendError> {
        use nix::sys::socket::{MsgFlags, send};
        let fd = self.sock.as_raw_fd();
        while !data.is_empty() {
            let n = self.call("send", || send(fd, data, MsgFlags::MSG_NOSIGNAL))?;
            data = &data[n..];
        }
        Ok(())
    }
}

/// One connection's transfer path, set up and ready; `send_pass` drives it.
pub trait Transfer: Send {
    /// Bytes this path copies through user space per byte it sends (read-send 2, mmap-send 1, sendfile 0).
    fn user_copies(&self) -> u64;

    /// Moves file bytes `offset..offset + len` (`len` at most one chunk) towards the socket and returns how many
    /// went: fewer is a short write (`send_pass` asks again for the rest), 0 means the file ended at `offset`.
    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError>;

    /// After the last piece of a pass: waits for whatever the kernel still holds of this path's memory
    /// (zero-copy completions), so that the pass is whole when this returns.
    fn finish(&mut self, _io: &mut Io) -> Result<(), SendError> {
        Ok(())
    }

    /// Before a pass that must find the file cold: lets go of what would keep its pages resident (a mapping's
    /// page-table entries pin the pages it touched; eviction skips mapped pages).
    fn release_pages(&mut self) {}

    /// After the stream's last pass: what ends the stream besides shutting the socket (a TLS close_notify).
    fn end(&mut self, _io: &mut Io) -> Result<(), SendError> {
        Ok(())
    }

    /// The path that really runs, when it is not the one asked for, and why. Decided at set-up, and read there
    /// (outside the timed section).
    fn fallback(&self) -> Option<Fallback> {
        None
    }

    /// The TLS cipher suite, for a TLS path.
    fn tls_cipher(&self) -> Option<String> {
        None
    }
}

/// Sends one pass of `plan` through `t`: every range in order, cut into chunk-sized pieces, each piece until it
/// has all gone.
pub fn send_pass(t: &mut dyn Transfer, io: &mut Io, plan: &StreamPlan) -> Result<(), SendError> {
    let copies = t.user_copies();
    for range in plan.ranges() {
        for piece in pieces(range, plan.chunk_bytes) {
            io.ctl.check()?;
            let mut at = piece.start;
            while at < piece.end {
                let n = t.send(io, at, (piece.end - at) as usize)? as u64;
                if n == 0 {
                    return Err(SendError::FileShrank(at));
                }
                at += n;
                io.stats.bytes += n;
                io.stats.user_copy_bytes += n * copies;
            }
            if let Some(sent) = io.ctl.sent {
                sent.fetch_add(piece.end - piece.start, Ordering::Relaxed);
            }
        }
    }
    t.finish(io)
}

/// Builds a method's transfer for one connection: everything that is set-up, not transfer. A TLS method gets the
/// connection's session, its handshake done.
pub fn prepare(
    method: Method,
    file: File,
    sock: &TcpStream,
    opts: &SendOptions,
    session: Option<rustls::ClientConnection>,
) -> anyhow::Result<Box<dyn Transfer>> {
    if method.jvm() {
        anyhow::bail!("{method} sends from a JVM (jvm::sender), not from this process");
    }
    if method.tls() {
        let session = session.ok_or_else(|| anyhow::anyhow!("{method} needs a TLS session"))?;
        return tls_send::prepare(method, file, sock, opts, session);
    }
    Ok(match method {
        Method::ReadSend => Box::new(read_send::ReadSend::new(file, opts)?),
        Method::MmapSend => Box::new(mmap_send::MmapSend::new(&file)?),
        Method::Sendfile => Box::new(sendfile::Sendfile::new(file)),
        Method::Splice => Box::new(splice::Splice::new(file, opts)?),
        Method::IoUring => Box::new(io_uring::IoUringSend::new(file, opts)?),
        Method::IoUringFixed => Box::new(io_uring::IoUringSend::fixed(file, sock, opts)?),
        Method::MsgZerocopy => Box::new(msg_zerocopy::MsgZerocopy::new(&file, sock)?),
        Method::IoUringSendZc => Box::new(io_uring_zc::IoUringSendZc::new(&file, sock, opts)?),
        Method::IoUringSendZcFixed => Box::new(io_uring_zc::IoUringSendZc::fixed(&file, sock, opts)?),
        Method::DirectReadSend => Box::new(direct_read_send::DirectReadSend::new(file, opts)?),
        Method::TlsReadSend | Method::KtlsSendfile => unreachable!("TLS methods are prepared above"),
        Method::JvmTransferto | Method::JvmReadWrite | Method::JvmNio | Method::JvmTls => {
            unreachable!("JVM methods are refused above")
        }
    })
}

/// Cuts `range` into calls of at most `chunk` bytes.
fn pieces(range: std::ops::Range<u64>, chunk: u64) -> impl Iterator<Item = std::ops::Range<u64>> {
    let chunk = chunk.max(1);
    (range.start..range.end)
        .step_by(chunk as usize)
        .map(move |s| s..(s + chunk).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::Layout;

    #[test]
    fn pieces_cover_the_range() {
        let p: Vec<_> = pieces(10..35, 10).collect();
        assert_eq!(p, vec![10..20, 20..30, 30..35]);
    }

    /// A transfer that accepts at most `most` bytes per call and records what it was asked.
    struct Short {
        most: usize,
        asked: Vec<(u64, usize)>,
        file_len: u64,
    }

    impl Transfer for Short {
        fn user_copies(&self) -> u64 {
            2
        }
        fn send(&mut self, _io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
            self.asked.push((offset, len));
            Ok(len.min(self.most).min(self.file_len.saturating_sub(offset) as usize))
        }
    }

    fn with_io<T>(f: impl FnOnce(&mut Io) -> T) -> (T, CallStats) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        io_on(&sock, Duration::from_secs(60), f)
    }

    /// Runs `f` with the `Io` of `sock`: no stop asked, a deadline `within` from now; returns what `f` did and
    /// the counts.
    pub(in crate::experiment::strategy) fn io_on<T>(
        sock: &TcpStream,
        within: Duration,
        f: impl FnOnce(&mut Io) -> T,
    ) -> (T, CallStats) {
        let (stop, abort) = (AtomicBool::new(false), AtomicBool::new(false));
        let ctl = Control {
            deadline: Instant::now() + within,
            stop: &stop,
            abort: &abort,
            sent: None,
        };
        let mut stats = CallStats::default();
        let out = f(&mut Io {
            sock,
            stats: &mut stats,
            ctl: &ctl,
        });
        (out, stats)
    }

    fn plan(file_bytes: u64, chunk_bytes: u64) -> StreamPlan {
        StreamPlan {
            file_bytes,
            chunk_bytes,
            layout: Layout::Striped,
            streams: 2,
            index: 1,
        }
    }

    #[test]
    fn the_piece_loop_finishes_short_writes_and_counts_copies() {
        let mut t = Short {
            most: 3,
            asked: Vec::new(),
            file_len: 100,
        };
        // Stream 1 of 2, chunks of 10: ranges 10..20, 30..40, ..., 90..100.
        let (result, stats) = with_io(|io| send_pass(&mut t, io, &plan(100, 10)));
        result.unwrap();
        assert_eq!(stats.bytes, 50);
        assert_eq!(stats.user_copy_bytes, 100);
        assert_eq!(&t.asked[..4], &[(10, 10), (13, 7), (16, 4), (19, 1)]);
        assert!(
            t.asked.iter().all(|&(o, l)| o / 10 % 2 == 1 && l <= 10),
            "{:?}",
            t.asked
        );
    }

    #[test]
    fn a_file_that_ends_early_is_file_changed() {
        let mut t = Short {
            most: 100,
            asked: Vec::new(),
            file_len: 35,
        };
        let (result, _) = with_io(|io| send_pass(&mut t, io, &plan(100, 10)));
        assert_eq!(result, Err(SendError::FileShrank(35)));
        assert_eq!(result.unwrap_err().status(), Status::FileChanged);
    }
}
