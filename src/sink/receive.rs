//! The sink's receive loop, per mode (copy, trunc, splice), and the content check it runs as bytes arrive.

use crate::buffer::AlignedBuf;
use crate::strategy::pipe::Pipe;
pub use crate::wire::RxMode;
use crate::wire::StreamPlan;
use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{SpliceFFlags, splice};
use nix::sys::socket::{MsgFlags, recv};
use std::net::TcpStream;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};

/// Checks arriving bytes against the generator, following the stream's file ranges.
pub struct Check {
    pattern: crate::pattern::Pattern,
    ranges: Box<dyn Iterator<Item = Range<u64>> + Send>,
    current: Range<u64>,
    mismatch: Option<u64>,
    overflow: bool,
}

impl Check {
    pub fn new(seed: u64, plan: StreamPlan) -> Check {
        Check {
            pattern: crate::pattern::Pattern::new(seed),
            ranges: plan.ranges(),
            current: 0..0,
            mismatch: None,
            overflow: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.mismatch.is_none() && !self.overflow {
            if self.current.is_empty() {
                match self.ranges.next() {
                    Some(r) => self.current = r,
                    None => {
                        self.overflow = true;
                        return;
                    }
                }
            }
            let take = ((self.current.end - self.current.start) as usize).min(data.len());
            self.mismatch = self.pattern.first_mismatch(self.current.start, &data[..take]);
            self.current.start += take as u64;
            data = &data[take..];
        }
    }
}

/// What one stream brought.
#[derive(Debug, Default)]
pub struct Received {
    pub bytes: u64,
    pub calls: u64,
    pub verified: bool,
    pub mismatch_offset: Option<u64>,
    pub first_byte_ns: Option<u64>,
    pub last_byte_ns: Option<u64>,
    pub error: Option<String>,
}

/// A receive loop with its buffer (or, for splice, its pipe and /dev/null), made before the stream starts.
pub struct Receiver {
    mode: RxMode,
    /// Page-aligned (see `buffer`); `len` bytes of it are offered to each recv.
    buf: AlignedBuf,
    len: usize,
    splice: Option<SpliceSink>,
}

/// Where splice mode sends the bytes: a pipe of about `rx_buffer` bytes, drained into /dev/null.
struct SpliceSink {
    pipe: Pipe,
    null: std::fs::File,
}

impl Receiver {
    pub fn new(mode: RxMode, rx_buffer: usize) -> anyhow::Result<Receiver> {
        let splice = match mode {
            RxMode::Splice => Some(SpliceSink {
                pipe: Pipe::new(rx_buffer as u64)?,
                null: std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .context("cannot open '/dev/null'")?,
            }),
            _ => None,
        };
        Ok(Receiver {
            mode,
            // Splice mode never touches a user buffer; keep one page so the loop stays uniform.
            buf: AlignedBuf::new(if splice.is_some() { 1 } else { rx_buffer })?,
            len: rx_buffer,
            splice,
        })
    }

    /// One receive call: bytes taken off the socket (0 at EOF).
    fn take(&mut self, sock: &TcpStream) -> nix::Result<usize> {
        match (&self.splice, self.mode) {
            (Some(s), _) => {
                let flags = SpliceFFlags::SPLICE_F_MOVE;
                let n = splice(sock.as_fd(), None, s.pipe.write.as_fd(), None, s.pipe.capacity, flags)?;
                let mut left = n;
                while left > 0 {
                    match splice(s.pipe.read.as_fd(), None, s.null.as_fd(), None, left, flags) {
                        Ok(m) => left -= m,
                        Err(Errno::EINTR) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            }
            (None, RxMode::Trunc) => recv(
                sock.as_raw_fd(),
                &mut self.buf.as_mut_slice()[..self.len],
                MsgFlags::MSG_TRUNC,
            ),
            (None, _) => recv(
                sock.as_raw_fd(),
                &mut self.buf.as_mut_slice()[..self.len],
                MsgFlags::empty(),
            ),
        }
    }

    /// Receives until EOF, an error or the idle timeout.
    pub fn run(&mut self, sock: &TcpStream, mut check: Option<Check>) -> Received {
        let mut got = Received::default();
        loop {
            let n = match self.take(sock) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    got.error = Some("idle: nothing arrived within the idle timeout".into());
                    break;
                }
                Err(e) => {
                    got.error = Some(format!("recv: {e}"));
                    break;
                }
            };
            let now = crate::env::monotonic_ns();
            got.calls += 1;
            got.first_byte_ns.get_or_insert(now);
            got.last_byte_ns = Some(now);
            got.bytes += n as u64;
            if let (Some(c), RxMode::Copy) = (check.as_mut(), self.mode) {
                c.feed(&self.buf.as_slice()[..n.min(self.len)]);
            }
        }
        if let Some(c) = check {
            got.mismatch_offset = c.mismatch;
            got.verified = c.mismatch.is_none() && !c.overflow;
        }
        got
    }
}
