//! `--rx-mode zerocopy`: TCP_ZEROCOPY_RECEIVE. The sink maps a stretch of its address space on the socket
//! (mmap of a TCP socket reserves it, read-only) and asks the kernel to put the received pages there instead of
//! copying them out; the kernel maps only whole pages of payload, and says how many bytes before the next mappable
//! page must be read as usual (`recv_skip_hint`). Mapped bytes are checked in place (`--verify`), then the pages are
//! let go (MADV_DONTNEED) before the stretch is used again.
//!
//! Segments whose payload fills whole pages are the first condition: on a loopback with a 65,536-byte MTU none does;
//! with `--netns-mtu 61492` (IPv4) every full segment carries 15 pages. The second, since the 2024 check in
//! `can_map_frag()`: no compound page and no page with an owner (page cache, a process's memory). Loopback and veth
//! hand over the sender's own pages (page cache for sendfile, the socket's compound fragments for a copying send),
//! which never qualify, so the copy beside the mapping receives them; the exceptions are MSG_ZEROCOPY and SEND_ZC
//! sends, whose pinned pages loopback copies into fresh pages of its own before delivery, and those it maps. Pages
//! a NIC received into are what it maps on a real network.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// `TCP_ZEROCOPY_RECEIVE` (<linux/tcp.h>).
const TCP_ZEROCOPY_RECEIVE: libc::c_int = 35;

/// `TCP_RECEIVE_ZEROCOPY_FLAG_TLB_CLEAN_HINT`: the range holds no mapped pages, no need to zap it.
const TLB_CLEAN_HINT: u32 = 1;

/// Where `copybuf_len` ends in the struct: a kernel that wrote back less knows nothing of the copy buffer.
const COPYBUF_END: usize = std::mem::offset_of!(ZcReceive, copybuf_len) + std::mem::size_of::<i32>();

/// What one TCP_ZEROCOPY_RECEIVE did, in stream order: pages mapped at the start of the range, then bytes copied
/// into the copy buffer; `skip` bytes still to be read as usual before the next mappable page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Received {
    pub mapped: usize,
    pub copied: usize,
    pub skip: usize,
}

/// `struct tcp_zerocopy_receive` as of 5.11 (older kernels read and fill only its head).
#[repr(C)]
#[derive(Debug, Default)]
struct ZcReceive {
    address: u64,
    length: u32,
    recv_skip_hint: u32,
    inq: u32,
    err: i32,
    copybuf_address: u64,
    copybuf_len: i32,
    flags: u32,
    msg_control: u64,
    msg_controllen: u64,
    msg_flags: u32,
    reserved: u32,
}

/// The stretch of address space mapped on the socket; unmapped when dropped.
pub struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by one stream's thread at a time and only read through `bytes`.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes (rounded up to whole pages) on `sock`.
    pub fn new(sock: &TcpStream, len: usize) -> io::Result<Mapping> {
        let page = 4096;
        let len = len.div_ceil(page).max(1) * page;
        // SAFETY: a fresh read-only shared mapping of the socket; the kernel only reserves the range here, and it is
        // unmapped once, in Drop.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                sock.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// Asks the kernel to map received pages into the stretch, and to copy into `copybuf` what it cannot map
    /// (5.11 and later: the bytes before the next mappable page, or the whole queue when it fits), all in one call.
    ///
    /// The range is always clean when asked (`release` lets go of what was mapped), which the call is told
    /// (TCP_RECEIVE_ZEROCOPY_FLAG_TLB_CLEAN_HINT), so the kernel does not zap it first.
    pub fn receive(&self, sock: &TcpStream, copybuf: &mut [u8]) -> io::Result<Received> {
        let mut zc = ZcReceive {
            address: self.addr as u64,
            length: self.len as u32,
            copybuf_address: copybuf.as_mut_ptr() as u64,
            copybuf_len: copybuf.len().min(i32::MAX as usize) as i32,
            flags: TLB_CLEAN_HINT,
            ..ZcReceive::default()
        };
        let mut len = std::mem::size_of::<ZcReceive>() as libc::socklen_t;
        // SAFETY: `zc` is a valid struct of the length given and outlives the call, which reads and writes only
        // within it; the kernel maps pages only into the range this Mapping reserved, and copies at most
        // `copybuf.len()` bytes into `copybuf`, which is borrowed mutably for the call.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_TCP,
                TCP_ZEROCOPY_RECEIVE,
                (&mut zc as *mut ZcReceive).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if zc.err != 0 {
            return Err(io::Error::from_raw_os_error(-zc.err.clamp(-4095, -1)));
        }
        // A kernel older than the copy buffer reads and writes only the head of the struct: nothing was copied.
        let copied = match (len as usize) < COPYBUF_END {
            true => 0,
            false if zc.copybuf_len < 0 => return Err(io::Error::from_raw_os_error(-zc.copybuf_len.max(-4095))),
            false => (zc.copybuf_len as usize).min(copybuf.len()),
        };
        Ok(Received {
            mapped: zc.length as usize,
            copied,
            skip: zc.recv_skip_hint as usize,
        })
    }

    /// The first `n` bytes the last `receive` mapped.
    pub fn bytes(&self, n: usize) -> &[u8] {
        // SAFETY: `receive` mapped at least `n` readable bytes at the start of the range, which lives as long as
        // self; they are let go only by `release`, which takes &mut self.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, n.min(self.len)) }
    }

    /// Lets go of the pages mapped by the last `receive`, so that the kernel can reuse them.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.len).div_ceil(4096) * 4096;
        // SAFETY: the range is this mapping's own.
        unsafe { libc::madvise(self.addr, n, libc::MADV_DONTNEED) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range this Mapping mapped, unmapped once.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

/// Whether an error of the first `receive` means the kernel offers no receive zero-copy here (then the stream
/// falls back to copy, and says why).
pub fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::ENODEV | libc::EPERM)
    )
}
