//! `read-send`: pread() into a user buffer of `chunk` bytes, then send() it, the "four copies" path.

use super::{Io, SendError, SendOptions, Transfer};
use crate::experiment::buffer::AlignedBuf;
use std::fs::File;
use std::os::fd::AsFd;

pub struct ReadSend {
    file: File,
    /// Page-aligned (see `buffer`) and touched at set-up, so its first-use faults are not charged to the transfer.
    buf: AlignedBuf,
}

impl ReadSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<ReadSend> {
        Ok(ReadSend {
            file,
            buf: AlignedBuf::new(usize::try_from(opts.chunk_bytes)?)?,
        })
    }
}

impl Transfer for ReadSend {
    fn user_copies(&self) -> u64 {
        // Into the buffer by read, out of it by send.
        2
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let got = read_at(&self.file, &mut self.buf.as_mut_slice()[..len], offset, len, io)?;
        io.send_all(&self.buf.as_slice()[..got])?;
        Ok(got)
    }
}

/// pread() into `buf` from `offset` until at least `need` bytes are in or the file ends; returns the bytes read.
/// (O_DIRECT reads ask for all of an aligned `buf` but need only part of it: at the file's end the kernel returns
/// what exists, and asking again from that unaligned offset would be refused.)
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64, need: usize, io: &mut Io) -> Result<usize, SendError> {
    let mut got = 0;
    while got < need {
        let at = (offset + got as u64) as i64;
        let rest = &mut buf[got..];
        let n = io.call("pread", || nix::sys::uio::pread(file.as_fd(), rest, at))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}
