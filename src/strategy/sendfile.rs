//! `sendfile`: the kernel moves page-cache pages to the socket; nothing crosses into user space.

use super::{CallStats, Control, SendError, StreamSender, pieces};
use crate::wire::StreamPlan;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsFd;

/// Needs nothing but the file: the chunk of each call comes from the stream's plan.
pub struct Sendfile {
    file: File,
}

impl Sendfile {
    pub fn new(file: File) -> Sendfile {
        Sendfile { file }
    }
}

impl StreamSender for Sendfile {
    fn send(
        &mut self,
        sock: &TcpStream,
        plan: &StreamPlan,
        stats: &mut CallStats,
        ctl: &Control,
    ) -> Result<(), SendError> {
        for range in plan.ranges() {
            for piece in pieces(range, plan.chunk_bytes) {
                ctl.check()?;
                let mut offset = piece.start as libc::off64_t;
                let end = piece.end as libc::off64_t;
                while offset < end {
                    let count = (end - offset) as usize;
                    let n = stats.call(ctl, "sendfile", || {
                        nix::sys::sendfile::sendfile64(sock.as_fd(), self.file.as_fd(), Some(&mut offset), count)
                    })?;
                    if n == 0 {
                        return Err(SendError::FileShrank(offset as u64));
                    }
                    stats.bytes += n as u64;
                }
            }
        }
        Ok(())
    }
}
