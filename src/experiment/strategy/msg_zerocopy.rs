//! `msg-zerocopy`: send() from an mmap of the file with SO_ZEROCOPY and MSG_ZEROCOPY. The kernel pins the
//! mapped pages instead of copying them, and later reports on the socket's error queue which sends it is done
//! with, as ranges of send ids; a range flagged SO_EE_CODE_ZEROCOPY_COPIED was copied after all (always so on
//! loopback, where the receiving socket must own its bytes). Every completion is reaped before the stream ends,
//! so no send is in flight over the mapping when it goes away.
//!
//! Counts: `zerocopy_sends` are send ids completed, `zerocopy_copied` those the kernel copied, and
//! `user_copy_bytes` the bytes of the copied sends (0 when the kernel really sent from the pages).
//! A kernel without SO_ZEROCOPY (before 4.14) runs the mmap-send path, recorded as the row's `path`.
//! Send ids run on across the passes of a repetition; every pass ends with all of its completions reaped.

use super::mmap_send::Mapping;
use super::{Fallback, Io, SendError, Transfer};
use crate::base::model::Method;
use nix::errno::Errno;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

/// From <asm-generic/socket.h> and <linux/errqueue.h>; not all are in the libc crate.
const SO_ZEROCOPY: libc::c_int = 60;
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;
/// Reap the error queue (without waiting) after this many sends, so notifications do not pile up.
const REAP_EVERY: usize = 32;
/// The smallest send tried when the kernel refuses to pin a larger one.
const PAGE: usize = 4096;

pub struct MsgZerocopy {
    map: Mapping,
    /// Why SO_ZEROCOPY was refused, when it was: the stream then runs the mmap-send path.
    refused: Option<Errno>,
    ledger: Ledger,
}

/// Sends made and completions reaped on one socket, across passes.
#[derive(Default)]
struct Ledger {
    /// Bytes of each send, by send id (ids count from 0 on a fresh socket).
    sends: Vec<u64>,
    completed: usize,
}

impl MsgZerocopy {
    /// Maps the file and turns SO_ZEROCOPY on for the socket (set-up, outside the timed section).
    pub fn new(file: &File, sock: &TcpStream) -> anyhow::Result<MsgZerocopy> {
        Ok(MsgZerocopy {
            map: Mapping::new(file)?,
            refused: nix::sys::socket::setsockopt(sock, ZeroCopy, &true).err(),
            ledger: Ledger::default(),
        })
    }
}

impl MsgZerocopy {
    /// Why SO_ZEROCOPY was refused, when it was (the mmap-send path then runs).
    pub(super) fn refused(&self) -> Option<Errno> {
        self.refused
    }
}

impl Transfer for MsgZerocopy {
    fn user_copies(&self) -> u64 {
        // Zero unless the kernel reports a send copied (counted as its completion is reaped); the fallback copies.
        u64::from(self.refused.is_some())
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        use nix::sys::socket::{MsgFlags, send};
        let data = self.map.range(offset, len)?;
        let fd = io.sock.as_raw_fd();
        if self.refused.is_some() {
            return io
                .call("send", || send(fd, data, MsgFlags::MSG_NOSIGNAL))
                .map_err(|e| self.map.explain(e));
        }
        let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::from_bits_retain(libc::MSG_ZEROCOPY);
        let mut data = data;
        loop {
            let n = io
                .call("send(MSG_ZEROCOPY)", || match send(fd, data, flags) {
                    // The kernel holds too much for this socket (optmem, or locked memory): see below.
                    Err(Errno::ENOBUFS) => Ok(0),
                    r => r,
                })
                .map_err(|e| self.map.explain(e))?;
            if n == 0 {
                if self.ledger.completed < self.ledger.sends.len() {
                    // Earlier sends still pin pages: wait for some to complete, then send again.
                    self.ledger.reap(fd, io, true)?;
                } else if data.len() > PAGE {
                    // Nothing is outstanding, so this send alone is too large for what the kernel lets this
                    // process pin (RLIMIT_MEMLOCK without CAP_IPC_LOCK): try half of it.
                    data = &data[..(data.len() / 2).next_multiple_of(PAGE).min(data.len() - 1)];
                } else {
                    return Err(SendError::Io {
                        call: "send(MSG_ZEROCOPY)",
                        errno: Errno::ENOBUFS,
                    });
                }
                io.ctl.check()?;
                continue;
            }
            self.ledger.sends.push(n as u64);
            if self.ledger.sends.len() % REAP_EVERY == 0 {
                self.ledger.reap(fd, io, false)?;
            }
            return Ok(n);
        }
    }

    /// The mapping must not go away, nor the pass end, under sends the kernel still holds.
    fn finish(&mut self, io: &mut Io) -> Result<(), SendError> {
        let fd = io.sock.as_raw_fd();
        while self.ledger.completed < self.ledger.sends.len() {
            self.ledger.reap(fd, io, true)?;
        }
        Ok(())
    }

    fn release_pages(&mut self) {
        self.map.release_pages();
    }

    fn fallback(&self) -> Option<Fallback> {
        Fallback::to(Method::MmapSend, format!("SO_ZEROCOPY: {}", self.refused?))
    }
}

impl Ledger {
    /// Reads every completion waiting on the error queue; with `wait`, first waits for at least one.
    fn reap(&mut self, fd: RawFd, io: &mut Io, wait: bool) -> Result<(), SendError> {
        let mut got_any = false;
        loop {
            let mut found = None;
            io.call("recvmsg(MSG_ERRQUEUE)", || match read_completion(fd) {
                Ok(c) => {
                    found = c;
                    Ok(1)
                }
                // Nothing queued: not an error, and not worth a retry here.
                Err(Errno::EAGAIN) => Ok(0),
                Err(e) => Err(e),
            })?;
            match found {
                Some(Completion { lo, hi, copied }) => {
                    got_any = true;
                    let count = hi.wrapping_sub(lo) as usize + 1;
                    io.stats.zerocopy_sends += count as u64;
                    if copied {
                        io.stats.zerocopy_copied += count as u64;
                        let bytes: u64 = (0..count)
                            .filter_map(|k| self.sends.get(lo.wrapping_add(k as u32) as usize))
                            .sum();
                        io.stats.user_copy_bytes += bytes;
                    }
                    self.completed += count;
                }
                None if wait && !got_any && self.completed < self.sends.len() => {
                    // POLLERR is raised while the error queue holds something; it needs no events asked.
                    let mut pfd = libc::pollfd {
                        fd,
                        events: 0,
                        revents: 0,
                    };
                    let ms = super::SEND_WAKEUP.as_millis() as libc::c_int;
                    io.call("poll", || {
                        // SAFETY: one valid pollfd, for the duration of the call.
                        Errno::result(unsafe { libc::poll(&mut pfd, 1, ms) }).map(|n| n as usize)
                    })?;
                    io.ctl.check()?;
                }
                None => return Ok(()),
            }
        }
    }
}

/// One notification: send ids `lo..=hi` are done; `copied` when the kernel copied their bytes anyway.
struct Completion {
    lo: u32,
    hi: u32,
    copied: bool,
}

/// One recvmsg(MSG_ERRQUEUE) without waiting: a zerocopy completion, None for another kind of message.
fn read_completion(fd: RawFd) -> nix::Result<Option<Completion>> {
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid (no name, no data); the control pointer and length describe `control`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points only into `control`, which outlives the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    Errno::result(n)?;
    // SAFETY: the kernel filled `msg` and `control`; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and within `control` (checked by the CMSG macros).
        let hdr = unsafe { &*cmsg };
        let is_err = (hdr.cmsg_level == libc::SOL_IP && hdr.cmsg_type == libc::IP_RECVERR)
            || (hdr.cmsg_level == libc::SOL_IPV6 && hdr.cmsg_type == libc::IPV6_RECVERR);
        if is_err {
            // SAFETY: an IP(V6)_RECVERR message carries a sock_extended_err; read unaligned to be safe.
            let ee: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>()) };
            if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_errno == 0 {
                return Ok(Some(Completion {
                    lo: ee.ee_info,
                    hi: ee.ee_data,
                    copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                }));
            }
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(None)
}

/// SO_ZEROCOPY as a nix socket option.
#[derive(Clone, Copy, Debug)]
struct ZeroCopy;

impl nix::sys::socket::SetSockOpt for ZeroCopy {
    type Val = bool;

    fn set<F: std::os::fd::AsFd>(&self, fd: &F, val: &bool) -> nix::Result<()> {
        let one: libc::c_int = (*val).into();
        // SAFETY: passes a pointer to a live c_int and its exact size.
        let r = unsafe {
            libc::setsockopt(
                fd.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ZEROCOPY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        Errno::result(r).map(drop)
    }
}
