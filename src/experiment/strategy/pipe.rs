//! A pipe sized for splicing: the in-kernel buffer that `splice`, `io-uring` and the sink's splice mode move
//! page references through. Made before the timed section; its capacity is part of what is measured.

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::os::fd::{AsFd, OwnedFd};

/// Where the kernel publishes the largest pipe an unprivileged process may ask for.
const PIPE_MAX_SIZE: &str = "/proc/sys/fs/pipe-max-size";

/// Both ends of a pipe, and the capacity the kernel granted.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// Bytes the pipe holds (F_GETPIPE_SZ after asking for `want`).
    pub capacity: usize,
}

impl Pipe {
    /// Makes a pipe and asks for `want` bytes of capacity, capped at `/proc/sys/fs/pipe-max-size` so that an
    /// unprivileged run gets the same pipe as a root one. A refused resize keeps the default (64 KiB).
    pub fn new(want: u64) -> anyhow::Result<Pipe> {
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| anyhow::anyhow!("cannot make a pipe: {e}"))?;
        let max = std::fs::read_to_string(PIPE_MAX_SIZE)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(1 << 20);
        let ask = want.clamp(4096, max.max(4096)).min(i32::MAX as u64) as i32;
        let _ = fcntl(write.as_fd(), FcntlArg::F_SETPIPE_SZ(ask));
        let capacity = fcntl(write.as_fd(), FcntlArg::F_GETPIPE_SZ)
            .map_err(|e| anyhow::anyhow!("cannot read the pipe's size: {e}"))? as usize;
        Ok(Pipe { read, write, capacity })
    }
}
