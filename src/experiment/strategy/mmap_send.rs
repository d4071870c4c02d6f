//! `mmap-send`: map the file, send() from the mapping: one copy, from the page cache into the socket buffer,
//! made by the kernel reading user-space addresses (page faults count against the transfer).

use super::{Io, SendError, Transfer};
use memmap2::{Mmap, MmapOptions, UncheckedAdvice};
use nix::sys::socket::{MsgFlags, send};
use std::fs::File;
use std::os::fd::AsRawFd;

pub struct MmapSend {
    map: Mapping,
}

impl MmapSend {
    pub fn new(file: &File) -> anyhow::Result<MmapSend> {
        Ok(MmapSend {
            map: Mapping::new(file)?,
        })
    }
}

impl Transfer for MmapSend {
    fn user_copies(&self) -> u64 {
        // The kernel copies from the mapping into the socket buffer.
        1
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let data = self.map.range(offset, len)?;
        let fd = io.sock.as_raw_fd();
        io.call("send", || send(fd, data, MsgFlags::MSG_NOSIGNAL))
            .map_err(|e| self.map.explain(e))
    }

    fn release_pages(&mut self) {
        self.map.release_pages();
    }
}

/// A whole file mapped read-only (shared with `msg-zerocopy`). Its bytes are only ever handed to system calls,
/// never read here: a read of a page past the end of a file truncated under the mapping would be a SIGBUS from
/// user space, while the kernel's own read of it fails the call with EFAULT (see `explain`).
pub(super) struct Mapping {
    map: Mmap,
    file: File,
}

impl Mapping {
    pub fn new(file: &File) -> anyhow::Result<Mapping> {
        anyhow::ensure!(file.metadata()?.len() > 0, "cannot map an empty file");
        // SAFETY: memmap2 marks mapping unsafe because the file may change under it. Only the kernel reads these
        // bytes (send copies or pins them), so a change cannot be seen as a torn Rust value, and a truncation
        // fails the send with EFAULT instead of raising SIGBUS.
        let map = unsafe { MmapOptions::new().map(file)? };
        Ok(Mapping {
            map,
            file: file.try_clone()?,
        })
    }

    /// The mapped bytes `offset..offset + len`, for a system call; past the end of the mapping the file has
    /// shrunk since it was mapped.
    pub fn range(&self, offset: u64, len: usize) -> Result<&[u8], SendError> {
        let end = offset as usize + len;
        if end > self.map.len() {
            return Err(SendError::FileShrank(self.map.len() as u64));
        }
        Ok(&self.map[offset as usize..end])
    }

    /// A send from the mapping fails with EFAULT when the file was truncated under it (the kernel's read of a
    /// page past the new end faults): report that as the file having changed, with its size now.
    pub fn explain(&self, e: SendError) -> SendError {
        match e {
            SendError::Io {
                errno: nix::errno::Errno::EFAULT,
                ..
            } => SendError::FileShrank(self.file.metadata().map_or(0, |m| m.len())),
            e => e,
        }
    }

    /// Drops the mapping's page-table entries, which otherwise keep every page it touched from being evicted.
    /// Nothing is lost: on a shared file mapping the next access faults the page in again from the page cache or
    /// the file.
    pub fn release_pages(&self) {
        // SAFETY: MADV_DONTNEED on a shared, read-only file mapping discards no data (see above), and no
        // reference into the mapping is held across this call (only system calls read it, and none is running).
        let _ = unsafe { self.map.unchecked_advise(UncheckedAdvice::DontNeed) };
    }
}
