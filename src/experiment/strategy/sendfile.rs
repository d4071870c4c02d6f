//! `sendfile`: the kernel moves page-cache pages to the socket; nothing crosses into user space.

use super::{Io, SendError, Transfer};
use std::fs::File;
use std::os::fd::AsFd;

/// Needs nothing but the file (`ktls-sendfile` uses it on a socket that encrypts).
pub struct Sendfile {
    file: File,
}

impl Sendfile {
    pub fn new(file: File) -> Sendfile {
        Sendfile { file }
    }
}

impl Transfer for Sendfile {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let mut at = offset as libc::off64_t;
        let (sock, file) = (io.sock, &self.file);
        io.call("sendfile", || {
            nix::sys::sendfile::sendfile64(sock.as_fd(), file.as_fd(), Some(&mut at), len)
        })
    }
}
