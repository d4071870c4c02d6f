//! `splice`: file → pipe → socket with splice(2). The pipe holds references to page-cache pages, so nothing
//! crosses into user space; it costs two calls per pipe-full where sendfile costs one per chunk.

use super::pipe::Pipe;
use super::{Io, SendError, SendOptions, Transfer};
use nix::fcntl::{SpliceFFlags, splice};
use std::fs::File;
use std::os::fd::AsFd;

pub struct Splice {
    file: File,
    pipe: Pipe,
}

impl Splice {
    /// The pipe is asked for one chunk of capacity (capped by pipe-max-size, see `Pipe::new`).
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<Splice> {
        Ok(Splice {
            file,
            pipe: Pipe::new(opts.chunk_bytes)?,
        })
    }
}

impl Transfer for Splice {
    fn user_copies(&self) -> u64 {
        0
    }

    /// One pipe-full: file into the pipe, then the pipe into the socket until it is empty.
    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let (file, pipe, sock) = (&self.file, &self.pipe, io.sock);
        let mut at = offset as i64;
        let want = len.min(pipe.capacity);
        let filled = io.call("splice(file->pipe)", || {
            splice(
                file.as_fd(),
                Some(&mut at),
                pipe.write.as_fd(),
                None,
                want,
                SpliceFFlags::SPLICE_F_MOVE,
            )
        })?;
        let mut left = filled;
        while left > 0 {
            let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
            left -= io.call("splice(pipe->socket)", || {
                splice(pipe.read.as_fd(), None, sock.as_fd(), None, left, flags)
            })?;
        }
        Ok(filled)
    }
}
