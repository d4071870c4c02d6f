//! `io-uring`: the splice path (file → pipe → socket) driven through io_uring. Each submission is one linked
//! chain of up to `queue_depth / 2` pairs (IORING_OP_SPLICE file→pipe, then pipe→socket, each one pipe-full),
//! so one io_uring_enter moves `queue_depth / 2` pipe-fulls in order, and nothing crosses into user space.
//!
//! A short splice breaks the chain (the kernel cancels the links after it); the bytes left in the pipe are then
//! drained with single pipe→socket operations and the next chain starts where the file reads stopped. When the
//! kernel refuses io_uring (io_uring_setup: EPERM in many containers, ENOSYS on old kernels) or lacks
//! IORING_OP_SPLICE or timed waits (IORING_FEAT_EXT_ARG), the stream runs the plain `splice` path instead, recorded as the row's `path`.

use super::pipe::Pipe;
use super::splice::Splice;
use super::{Fallback, Io, SendError, SendOptions, Transfer};
use crate::base::model::Method;
use io_uring::{IoUring, Probe, opcode, squeue, types};
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// How long one io_uring_enter waits before checking the deadline and the stop flag.
const WAIT: std::time::Duration = super::SEND_WAKEUP;

pub enum IoUringSend {
    Ring(Box<Ring>),
    /// io_uring was not usable: the plain splice path runs, and `why` goes into the row's `path`.
    Fallback {
        splice: Splice,
        why: String,
    },
}

pub struct Ring {
    ring: IoUring,
    file: File,
    pipe: Pipe,
    /// Splice pairs per chain.
    pairs: usize,
}

impl IoUringSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<IoUringSend> {
        let depth = opts.queue_depth.max(2);
        let ring = usable(IoUring::new(depth), opcode::Splice::CODE, "IORING_OP_SPLICE");
        Ok(match ring {
            Ok(ring) => IoUringSend::Ring(Box::new(Ring {
                ring,
                file,
                pipe: Pipe::new(opts.chunk_bytes)?,
                pairs: (depth / 2) as usize,
            })),
            Err(why) => IoUringSend::Fallback {
                splice: Splice::new(file, opts)?,
                why,
            },
        })
    }
}

/// The ring `setup` made, when it can run opcode `code` (named `name` in the reason) with timed waits; else why
/// not, for the row's `path`.
pub(super) fn usable(setup: std::io::Result<IoUring>, code: u8, name: &str) -> Result<IoUring, String> {
    let ring = setup.map_err(|e| format!("io_uring_setup: {}", errno_of(&e)))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("no IORING_FEAT_EXT_ARG (timed waits, kernel 5.11)".to_string());
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe: {}", errno_of(&e)))?;
    if !probe.is_supported(code) {
        return Err(format!("{name} not supported"));
    }
    Ok(ring)
}

pub(super) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Transfer for IoUringSend {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        match self {
            IoUringSend::Ring(r) => Ok((r.chain(io, offset, offset + len as u64)? - offset) as usize),
            IoUringSend::Fallback { splice, .. } => splice.send(io, offset, len),
        }
    }

    fn fallback(&self) -> Option<Fallback> {
        match self {
            IoUringSend::Ring(_) => None,
            IoUringSend::Fallback { why, .. } => Fallback::to(Method::Splice, why.to_string()),
        }
    }
}

impl Ring {
    /// Submits one linked chain from file offset `at`, waits for it, drains what a broken chain left in the pipe,
    /// and returns the offset the next chain starts from.
    fn chain(&mut self, io: &mut Io, at: u64, end: u64) -> Result<u64, SendError> {
        let sock = io.sock;
        let cap = self.pipe.capacity as u64;
        let lens: Vec<u32> = (0..self.pairs)
            .map(|i| at + i as u64 * cap)
            .take_while(|&s| s < end)
            .map(|s| (end - s).min(cap) as u32)
            .collect();
        let (file, pipe_w, pipe_r, sock_fd) = (
            types::Fd(self.file.as_raw_fd()),
            types::Fd(self.pipe.write.as_raw_fd()),
            types::Fd(self.pipe.read.as_raw_fd()),
            types::Fd(sock.as_raw_fd()),
        );
        let mut offset = at;
        let mut entries = Vec::with_capacity(lens.len() * 2);
        for (i, &len) in lens.iter().enumerate() {
            let last = i + 1 == lens.len();
            entries.push(
                opcode::Splice::new(file, offset as i64, pipe_w, -1, len)
                    .flags(libc::SPLICE_F_MOVE)
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data((2 * i) as u64),
            );
            let out = opcode::Splice::new(pipe_r, -1, sock_fd, -1, len)
                .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
                .build()
                .user_data((2 * i + 1) as u64);
            entries.push(if last { out } else { out.flags(squeue::Flags::IO_LINK) });
            offset += u64::from(len);
        }
        let results = self.run(&entries, io)?;
        // The chain is in order: file reads form a prefix of full reads, then at most one short one.
        let mut filled = 0u64;
        let mut sent = 0u64;
        let mut broken = false;
        for (i, &len) in lens.iter().enumerate() {
            let (r_in, r_out) = (results[2 * i], results[2 * i + 1]);
            for r in [r_in, r_out] {
                if r < 0 && r != -libc::ECANCELED && r != -libc::EINTR && r != -libc::EAGAIN {
                    return Err(SendError::Io {
                        call: "io_uring splice",
                        errno: Errno::from_raw(-r),
                    });
                }
            }
            if r_in > 0 {
                if broken {
                    return Err(SendError::Setup(
                        "io_uring ran a splice past a broken link: the stream would be out of order".into(),
                    ));
                }
                filled += r_in as u64;
            } else if r_in == 0 && filled == 0 && !broken {
                return Err(SendError::FileShrank(at));
            }
            sent += r_out.max(0) as u64;
            broken |= r_in != len as i32 || r_out != len as i32;
        }
        // What a broken chain left in the pipe goes out before the next file read.
        let mut left = filled - sent;
        while left > 0 {
            let len = left.min(cap) as u32;
            let out = opcode::Splice::new(pipe_r, -1, sock_fd, -1, len)
                .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
                .build()
                .user_data(0);
            let r = self.run(&[out], io)?[0];
            if r < 0 && r != -libc::EINTR && r != -libc::EAGAIN {
                return Err(SendError::Io {
                    call: "io_uring splice",
                    errno: Errno::from_raw(-r),
                });
            }
            left -= r.max(0) as u64;
        }
        Ok(at + filled)
    }

    /// Submits `entries` and waits for all of their completions; returns each one's result by user_data.
    fn run(&mut self, entries: &[squeue::Entry], io: &mut Io) -> Result<Vec<i32>, SendError> {
        // SAFETY: every entry names only file descriptors (the file, the pipe, the socket) and no user memory;
        // the kernel takes its own reference to each file when it prepares the request, so a request still in
        // flight when this returns early can outlive any of them safely.
        unsafe {
            self.ring
                .submission()
                .push_multiple(entries)
                .map_err(|_| SendError::Setup("io_uring submission queue smaller than the chain".into()))?;
        }
        let mut results = vec![-libc::ECANCELED; entries.len()];
        let mut seen = 0usize;
        let ts = types::Timespec::from(WAIT);
        let args = types::SubmitArgs::new().timespec(&ts);
        while seen < entries.len() {
            let want = entries.len() - seen;
            let submitter = self.ring.submitter();
            io.call("io_uring_enter", || {
                match submitter.submit_with_args(want, &args) {
                    Ok(n) => Ok(n),
                    // The wait expired: let the caller check the deadline and the stop flag, then wait again.
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => Err(Errno::EAGAIN),
                    Err(e) => Err(errno_of(&e)),
                }
            })?;
            for cqe in self.ring.completion() {
                if let Some(slot) = results.get_mut(cqe.user_data() as usize) {
                    *slot = cqe.result();
                    seen += 1;
                }
            }
        }
        Ok(results)
    }
}
