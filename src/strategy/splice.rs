//! `splice`: file → pipe → socket with splice(2). The pipe holds references to page-cache pages, so nothing
//! crosses into user space; it costs two calls per pipe-full where sendfile costs one per chunk.

use super::pipe::Pipe;
use super::{CallStats, Control, SendError, SendOptions, StreamSender, pieces};
use crate::wire::StreamPlan;
use nix::fcntl::{SpliceFFlags, splice};
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsFd;

pub struct Splice {
    file: File,
    pipe: Pipe,
    chunk: u64,
}

impl Splice {
    /// The pipe is asked for one chunk of capacity (capped by pipe-max-size, see `Pipe::new`).
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<Splice> {
        Ok(Splice {
            file,
            pipe: Pipe::new(opts.chunk_bytes)?,
            chunk: opts.chunk_bytes,
        })
    }
}

/// Moves `len` bytes from the file at `offset` through the pipe into the socket; returns bytes moved in.
pub(super) fn pump(
    file: &File,
    pipe: &Pipe,
    sock: &TcpStream,
    mut offset: i64,
    end: i64,
    stats: &mut CallStats,
    ctl: &Control,
) -> Result<(), SendError> {
    while offset < end {
        let want = ((end - offset) as usize).min(pipe.capacity);
        let at = offset;
        let filled = stats.call(ctl, "splice(file->pipe)", || {
            splice(
                file.as_fd(),
                Some(&mut offset),
                pipe.write.as_fd(),
                None,
                want,
                SpliceFFlags::SPLICE_F_MOVE,
            )
        })?;
        if filled == 0 {
            return Err(SendError::FileShrank(at as u64));
        }
        offset = at + filled as i64;
        let mut left = filled;
        while left > 0 {
            let n = stats.call(ctl, "splice(pipe->socket)", || {
                splice(
                    pipe.read.as_fd(),
                    None,
                    sock.as_fd(),
                    None,
                    left,
                    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE,
                )
            })?;
            left -= n;
            stats.bytes += n as u64;
        }
    }
    Ok(())
}

impl StreamSender for Splice {
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
                pump(
                    &self.file,
                    &self.pipe,
                    sock,
                    piece.start as i64,
                    piece.end as i64,
                    stats,
                    ctl,
                )?;
            }
        }
        Ok(())
    }
}
