//! `mmap-send`: map the file, send() from the mapping: one copy, from the page cache into the socket buffer,
//! made by the kernel reading user-space addresses (page faults count against the transfer).

use super::{CallStats, Control, SendError, StreamSender, pieces, send_all};
use crate::wire::StreamPlan;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use std::fs::File;
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

pub struct MmapSend {
    map: Mapping,
}

impl MmapSend {
    pub fn new(file: File) -> anyhow::Result<MmapSend> {
        Ok(MmapSend {
            map: Mapping::new(file)?,
        })
    }
}

/// A whole file mapped read-only, unmapped on drop (shared with `msg-zerocopy`).
pub(super) struct Mapping {
    addr: NonNull<std::ffi::c_void>,
    len: usize,
    _file: File,
}

// SAFETY: the mapping is read-only and owned by this value alone; moving it to another thread is sound.
unsafe impl Send for Mapping {}

impl Mapping {
    pub fn new(file: File) -> anyhow::Result<Mapping> {
        let len = usize::try_from(file.metadata()?.len())?;
        let nz = NonZeroUsize::new(len).ok_or_else(|| anyhow::anyhow!("cannot map an empty file"))?;
        // SAFETY: a fresh shared read-only mapping of a file we hold open; nobody else sees the address. The file
        // may be truncated under us: only the kernel reads the mapped bytes (send copies or pins them), and a
        // fault there fails the call with EFAULT instead of raising SIGBUS; see `explain`.
        let addr = unsafe { mmap(None, nz, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, &file, 0)? };
        Ok(Mapping { addr, len, _file: file })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// A send from the mapping fails with EFAULT when the file was truncated under it (the kernel's read of a
    /// page past the new end faults): report that as the file having changed, with its size now.
    pub fn explain(&self, e: SendError) -> SendError {
        match e {
            SendError::Io {
                errno: nix::errno::Errno::EFAULT,
                ..
            } => SendError::FileShrank(self._file.metadata().map_or(0, |m| m.len())),
            e => e,
        }
    }

    /// The mapped bytes. Only ever handed to system calls, never read here: a read of a truncated page from user
    /// space would be a SIGBUS.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping spans `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; no slice of it outlives `self`.
        let _ = unsafe { munmap(self.addr, self.len) };
    }
}

impl StreamSender for MmapSend {
    fn send(
        &mut self,
        sock: &TcpStream,
        plan: &StreamPlan,
        stats: &mut CallStats,
        ctl: &Control,
    ) -> Result<(), SendError> {
        for range in plan.ranges() {
            if range.end as usize > self.map.len() {
                return Err(SendError::FileShrank(self.map.len() as u64));
            }
            for piece in pieces(range, plan.chunk_bytes) {
                ctl.check()?;
                let data = &self.map.bytes()[piece.start as usize..piece.end as usize];
                send_all(sock, data, stats, ctl).map_err(|e| self.map.explain(e))?;
                stats.user_copy_bytes += data.len() as u64;
                stats.bytes += data.len() as u64;
            }
        }
        Ok(())
    }
}
