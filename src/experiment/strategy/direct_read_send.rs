//! `direct-read-send`: pread() with O_DIRECT into an aligned buffer, then send(). The read bypasses the page
//! cache (the device writes into the user buffer), so a cold run reads the disk every time and leaves the cache
//! as it found it. Reads start and end on `ALIGN` boundaries: a piece that does not is read from the boundary
//! below its start to the one above its end (at the file's end the kernel returns only what exists) and only
//! the piece's own bytes are sent.
//!
//! When the file system refuses O_DIRECT (EINVAL, e.g. some tmpfs or FUSE mounts), the stream reads through the
//! page cache like `read-send` and the row's `path` says so. Counts as `read-send`: the bytes enter the user
//! buffer (by DMA here, by the CPU in the fallback) and leave it by send(), 2 x the bytes sent.

use super::{Fallback, Io, SendError, SendOptions, Transfer};
use crate::base::model::Method;
use crate::experiment::buffer::AlignedBuf;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::fs::File;
use std::os::fd::AsFd;

/// Alignment of buffer, offsets and lengths: the largest logical block size in common use.
const ALIGN: u64 = 4096;

pub struct DirectReadSend {
    file: File,
    buf: AlignedBuf,
    /// Why O_DIRECT is not in use, when it is not.
    refused: Option<String>,
}

impl DirectReadSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<DirectReadSend> {
        // A piece plus the alignment slack on both of its ends.
        let len = usize::try_from(opts.chunk_bytes.div_ceil(ALIGN) * ALIGN + 2 * ALIGN)?;
        let mut buf = AlignedBuf::new(len)?;
        let refused = enable_direct(&file, &mut buf)
            .err()
            .map(|errno| format!("O_DIRECT refused: {errno}"));
        Ok(DirectReadSend { file, buf, refused })
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

impl Transfer for DirectReadSend {
    fn user_copies(&self) -> u64 {
        2
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let align = if self.refused.is_some() { 1 } else { ALIGN };
        let start = offset / align * align;
        let skip = (offset - start) as usize;
        let end = offset + len as u64;
        let want = (end - start).div_ceil(align) * align;
        let buf = &mut self.buf.as_mut_slice()[..want as usize];
        let got = super::read_send::read_at(&self.file, buf, start, (end - start) as usize, io)?;
        // At the file's end an aligned read returns only what exists.
        let have = got.min((end - start) as usize);
        if have <= skip {
            return Ok(0);
        }
        io.send_all(&self.buf.as_slice()[skip..have])?;
        Ok(have - skip)
    }

    fn fallback(&self) -> Option<Fallback> {
        Fallback::to(Method::ReadSend, self.refused.clone()?)
    }
}
