//! `direct-read-send`: pread() with O_DIRECT into an aligned buffer, then send(). The read bypasses the page
//! cache (the device writes into the user buffer), so a cold run reads the disk every time and leaves the cache
//! as it found it. Reads start and end on `ALIGN` boundaries: a piece that does not is read from the boundary
//! below its start to the one above its end (at the file's end the kernel returns only what exists) and only
//! the piece's own bytes are sent.
//!
//! When the file system refuses O_DIRECT (EINVAL, e.g. some tmpfs or FUSE mounts), the stream reads through the
//! page cache like `read-send` and the row's `path` says so. Counts as `read-send`: the bytes enter the user
//! buffer (by DMA here, by the CPU in the fallback) and leave it by send(), 2 x the bytes sent.

use super::{CallStats, Control, SendError, SendOptions, StreamSender, pieces, send_all};
use crate::buffer::AlignedBuf;
use crate::wire::StreamPlan;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsFd;

/// Alignment of buffer, offsets and lengths: the largest logical block size in common use.
const ALIGN: u64 = 4096;

pub struct DirectReadSend {
    file: File,
    buf: AlignedBuf,
    chunk: u64,
    /// Why O_DIRECT is not in use, when it is not.
    refused: Option<String>,
}

impl DirectReadSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<DirectReadSend> {
        // A piece plus the alignment slack on both of its ends.
        let len = usize::try_from(opts.chunk_bytes.div_ceil(ALIGN) * ALIGN + 2 * ALIGN)?;
        let mut buf = AlignedBuf::new(len)?;
        let refused = match enable_direct(&file, &mut buf) {
            Ok(()) => None,
            Err(errno) => Some(format!("O_DIRECT refused: {errno}")),
        };
        Ok(DirectReadSend {
            file,
            buf,
            chunk: opts.chunk_bytes,
            refused,
        })
    }
}

/// Turns O_DIRECT on for `file` and proves it with one aligned read (some file systems accept the flag and
/// refuse the reads); the read skips the page cache, so it leaves a cold file cold.
fn enable_direct(file: &File, buf: &mut AlignedBuf) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(file.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(file.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_DIRECT))?;
    let probe = nix::sys::uio::pread(file.as_fd(), &mut buf.as_mut_slice()[..ALIGN as usize], 0);
    if let Err(e) = probe {
        let _ = fcntl(file.as_fd(), FcntlArg::F_SETFL(flags));
        return Err(e);
    }
    Ok(())
}

impl StreamSender for DirectReadSend {
    fn send(
        &mut self,
        sock: &TcpStream,
        plan: &StreamPlan,
        stats: &mut CallStats,
        ctl: &Control,
    ) -> Result<(), SendError> {
        if let Some(why) = &self.refused {
            stats.fallback = Some(format!("direct-read-send(fallback:read-send: {why})"));
        }
        let align = if self.refused.is_some() { 1 } else { ALIGN };
        for range in plan.ranges() {
            for piece in pieces(range, self.chunk) {
                ctl.check()?;
                let start = piece.start / align * align;
                let skip = (piece.start - start) as usize;
                let need = (piece.end - start) as usize;
                let want = (piece.end - start).div_ceil(align) * align;
                let mut got = 0usize;
                while got < need {
                    let at = start + got as u64;
                    let buf = &mut self.buf.as_mut_slice()[got..want as usize];
                    let n = stats.call(ctl, "pread", || nix::sys::uio::pread(self.file.as_fd(), buf, at as i64))?;
                    if n == 0 {
                        return Err(SendError::FileShrank(at));
                    }
                    got += n;
                }
                let data = &self.buf.as_mut_slice()[skip..need];
                stats.user_copy_bytes += data.len() as u64;
                send_all(sock, data, stats, ctl)?;
                stats.user_copy_bytes += data.len() as u64;
                stats.bytes += data.len() as u64;
            }
        }
        Ok(())
    }
}
