//! `read-send`: pread() into a user buffer of `chunk` bytes, then send() it, the "four copies" path.

use super::{CallStats, Control, SendError, SendOptions, StreamSender, pieces, send_all};
use crate::buffer::AlignedBuf;
use crate::wire::StreamPlan;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsFd;

pub struct ReadSend {
    file: File,
    /// Page-aligned (see `buffer`): `chunk` bytes of it are used.
    buf: AlignedBuf,
    chunk: u64,
}

impl ReadSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<ReadSend> {
        let len = usize::try_from(opts.chunk_bytes)?;
        // Touch the buffer now so that its first-use page faults are not charged to the transfer.
        Ok(ReadSend {
            file,
            buf: AlignedBuf::new(len)?,
            chunk: opts.chunk_bytes,
        })
    }
}

impl StreamSender for ReadSend {
    fn send(
        &mut self,
        sock: &TcpStream,
        plan: &StreamPlan,
        stats: &mut CallStats,
        ctl: &Control,
    ) -> Result<(), SendError> {
        for range in plan.ranges() {
            for piece in pieces(range, self.chunk) {
                ctl.check()?;
                let want = (piece.end - piece.start) as usize;
                let mut got = 0usize;
                while got < want {
                    let at = piece.start + got as u64;
                    let buf = &mut self.buf.as_mut_slice()[got..want];
                    let n = stats.call(ctl, "pread", || nix::sys::uio::pread(self.file.as_fd(), buf, at as i64))?;
                    if n == 0 {
                        return Err(SendError::FileShrank(at));
                    }
                    got += n;
                }
                stats.user_copy_bytes += want as u64;
                send_all(sock, &self.buf.as_slice()[..want], stats, ctl)?;
                stats.user_copy_bytes += want as u64;
                stats.bytes += want as u64;
            }
        }
        Ok(())
    }
}
