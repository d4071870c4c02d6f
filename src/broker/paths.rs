//! How a broker's network thread moves file bytes to one consumer's non-blocking socket: one `Path` per method,
//! each taking at most what it is asked (the rest of a fetch) and stopping at the first EAGAIN, keeping whatever
//! it read or sealed and could not send for the next visit, as Kafka's transport layers do.
//!
//! - `sendfile`: one sendfile() for the rest of the fetch (Kafka's `PlaintextTransportLayer.transferFrom` is one
//!   `FileChannel.transferTo`); the kernel takes what the socket buffer holds.
//! - `read-send`: pread() of up to 32 KiB into a user buffer, send() it: the copy path at Kafka's read size.
//! - `tls-read-send`: the same 32 KiB reads sealed into TLS records of at most 16 KiB (rustls, as SSLEngine),
//!   sent as ciphertext (`SslTransportLayer.transferFrom`).
//! - `ktls-sendfile`: the session's keys in the kernel, then sendfile(); where the kernel refuses, the
//!   `tls-read-send` path on the same session, with the reason.

use crate::base::model::Method;
use crate::experiment::buffer::AlignedBuf;
use crate::experiment::strategy::{CallStats, Fallback, SendError};
use crate::experiment::tls::{self, Ktls, Sealer};
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

/// What one call of a path came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// This many bytes of the file are wholly gone into the socket (more than 0).
    Sent(u64),
    /// The socket is full: come back when it is writable, and ask for the same offset again.
    Blocked,
}

/// Counts and times the system calls of one network thread (into its `CallStats`).
pub struct Calls<'a> {
    pub stats: &'a mut CallStats,
}

impl Calls<'_> {
    /// Runs one system call, timing and counting it; retries EINTR; EAGAIN is `None` (the socket is full).
    pub fn call(
        &mut self,
        what: &'static str,
        mut f: impl FnMut() -> nix::Result<usize>,
    ) -> Result<Option<usize>, SendError> {
        loop {
            let start = Instant::now();
            let result = f();
            let end = Instant::now();
            let s = &mut *self.stats;
            s.syscalls += 1;
            s.first_call.get_or_insert(start);
            s.last_return = Some(end);
            let _ = s.latency_ns.record((end - start).as_nanos().max(1) as u64);
            match result {
                Ok(n) => return Ok(Some(n)),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(errno) => return Err(SendError::Io { call: what, errno }),
            }
        }
    }

    /// Runs one system call that waits rather than moves bytes (epoll_wait): counted in `syscalls`, left out of the
    /// call latencies (its time is the wait for a writable socket); EINTR is retried.
    pub fn count(
        &mut self,
        what: &'static str,
        mut f: impl FnMut() -> nix::Result<usize>,
    ) -> Result<Option<usize>, SendError> {
        loop {
            self.stats.syscalls += 1;
            match f() {
                Ok(n) => return Ok(Some(n)),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(SendError::Io { call: what, errno }),
            }
        }
    }

    /// send() of as much of `data` as the socket takes; returns how much went (0 when it was full at once).
    fn send_some(&mut self, sock: &TcpStream, mut data: &[u8]) -> Result<usize, SendError> {
        use nix::sys::socket::{MsgFlags, send};
        let mut sent = 0;
        while !data.is_empty() {
            match self.call("send", || send(sock.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL))? {
                Some(n) => {
                    sent += n;
                    data = &data[n..];
                }
                None => break,
            }
        }
        Ok(sent)
    }
}

/// One consumer's path from the page cache to its socket.
pub trait Path: Send {
    /// Bytes this path copies through user space per byte it sends.
    fn user_copies(&self) -> u64;

    /// Moves file bytes from `offset`, at most `len` (more than 0), towards the socket.
    fn send(&mut self, calls: &mut Calls, sock: &TcpStream, offset: u64, len: u64) -> Result<Progress, SendError>;

    /// After the stream's last pass: what ends it besides shutting the socket (a TLS close_notify). `Sent(_)`
    /// when it is done, `Blocked` to be called again once the socket is writable.
    fn end(&mut self, _calls: &mut Calls, _sock: &TcpStream) -> Result<Progress, SendError> {
        Ok(Progress::Sent(0))
    }

    /// The path that really runs, when it is not the one asked for, and why (decided at set-up).
    fn fallback(&self) -> Option<Fallback> {
        None
    }

    fn tls_cipher(&self) -> Option<String> {
        None
    }
}

/// Builds one consumer's path: everything that is set-up (buffers, kTLS keys), outside the timed section.
pub fn prepare(
    method: Method,
    file: File,
    sock: &TcpStream,
    read_bytes: usize,
    session: Option<rustls::ClientConnection>,
) -> anyhow::Result<Box<dyn Path>> {
    Ok(match (method, session) {
        (Method::Sendfile, _) => Box::new(Sendfile { file }),
        (Method::ReadSend, _) => Box::new(Buffered::new(file, read_bytes, None, None)?),
        (Method::TlsReadSend, Some(session)) => {
            Box::new(Buffered::new(file, read_bytes, Some(Sealer::new(session)), None)?)
        }
        (Method::KtlsSendfile, Some(session)) => match tls::ktls_tx(sock, session)? {
            Ok(ktls) => Box::new(KtlsSendfile {
                file,
                ktls,
                closed: false,
            }),
            Err(refused) => Box::new(Buffered::new(
                file,
                read_bytes,
                Some(refused.fallback),
                Some(refused.reason),
            )?),
        },
        (m, _) if m.tls() => anyhow::bail!("broker-{m} needs a TLS session"),
        (m, _) => anyhow::bail!("a broker's network threads do not serve {m}"),
    })
}

/// One sendfile() of what is asked, non-blocking.
fn sendfile(calls: &mut Calls, sock: &TcpStream, file: &File, offset: u64, len: u64) -> Result<Progress, SendError> {
    let mut at = offset as libc::off64_t;
    match calls.call("sendfile", || {
        nix::sys::sendfile::sendfile64(sock.as_fd(), file.as_fd(), Some(&mut at), len as usize)
    })? {
        None => Ok(Progress::Blocked),
        Some(0) => Err(SendError::FileShrank(offset)),
        Some(n) => Ok(Progress::Sent(n as u64)),
    }
}

/// `sendfile`: the kernel moves page-cache pages to the socket.
struct Sendfile {
    file: File,
}

impl Path for Sendfile {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, calls: &mut Calls, sock: &TcpStream, offset: u64, len: u64) -> Result<Progress, SendError> {
        sendfile(calls, sock, &self.file, offset, len)
    }
}

/// `read-send` and `tls-read-send`: a read into a buffer (sealed into records with TLS), sent as the socket takes
/// it; what it does not take waits for the next visit.
struct Buffered {
    file: File,
    /// Plaintext, page-aligned and touched at set-up.
    buf: AlignedBuf,
    read_bytes: usize,
    /// With TLS: the records of the last read.
    sealer: Option<Sealer>,
    records: Vec<u8>,
    /// The bytes still to send (of `buf` or of `records`), and the file bytes they carry.
    pending: std::ops::Range<usize>,
    pending_file: Option<(u64, u64)>,
    /// Why `ktls-sendfile` runs this path instead, when it does.
    ktls_refused: Option<String>,
}

impl Buffered {
    fn new(
        file: File,
        read_bytes: usize,
        sealer: Option<Sealer>,
        ktls_refused: Option<String>,
    ) -> anyhow::Result<Buffered> {
        // Touched now, like the plaintext buffer, so that first-use faults are not charged to the transfer.
        let mut records = vec![0u8; read_bytes + read_bytes.div_ceil(16 << 10) * 64 + 64];
        records.clear();
        Ok(Buffered {
            file,
            buf: AlignedBuf::new(read_bytes)?,
            read_bytes,
            sealer,
            records,
            pending: 0..0,
            pending_file: None,
            ktls_refused,
        })
    }

    /// Sends what is pending; true once it has all gone.
    fn drain(&mut self, calls: &mut Calls, sock: &TcpStream) -> Result<bool, SendError> {
        let data = match self.sealer {
            Some(_) => &self.records[self.pending.clone()],
            None => &self.buf.as_slice()[self.pending.clone()],
        };
        let n = calls.send_some(sock, data)?;
        self.pending.start += n;
        Ok(self.pending.is_empty())
    }

    /// Reads the next piece at `offset` (and seals it); it is then pending.
    fn fill(&mut self, calls: &mut Calls, offset: u64, len: u64) -> Result<(), SendError> {
        let want = (len as usize).min(self.read_bytes);
        let (file, buf) = (&self.file, &mut self.buf.as_mut_slice()[..want]);
        let got = match calls.call("pread", || nix::sys::uio::pread(file.as_fd(), buf, offset as i64))? {
            Some(0) => return Err(SendError::FileShrank(offset)),
            Some(n) => n,
            None => {
                return Err(SendError::Io {
                    call: "pread",
                    errno: nix::errno::Errno::EAGAIN,
                });
            }
        };
        self.pending = 0..got;
        if let Some(sealer) = &mut self.sealer {
            self.records.clear();
            sealer
                .seal(&self.buf.as_slice()[..got], &mut self.records)
                .map_err(|e| SendError::Setup(format!("{e:#}")))?;
            self.pending = 0..self.records.len();
        }
        self.pending_file = Some((offset, got as u64));
        Ok(())
    }
}

impl Path for Buffered {
    fn user_copies(&self) -> u64 {
        // Into the buffer by read, out of user space by send (as ciphertext with TLS).
        2
    }

    fn send(&mut self, calls: &mut Calls, sock: &TcpStream, offset: u64, len: u64) -> Result<Progress, SendError> {
        match self.pending_file {
            Some((at, _)) if at != offset => {
                return Err(SendError::Setup(format!(
                    "broker path asked for offset {offset} with bytes of offset {at} unsent"
                )));
            }
            Some(_) => {}
            None => self.fill(calls, offset, len)?,
        }
        if !self.drain(calls, sock)? {
            return Ok(Progress::Blocked);
        }
        let (_, bytes) = self.pending_file.take().expect("a piece is pending");
        Ok(Progress::Sent(bytes))
    }

    fn end(&mut self, calls: &mut Calls, sock: &TcpStream) -> Result<Progress, SendError> {
        let Some(sealer) = &mut self.sealer else {
            return Ok(Progress::Sent(0));
        };
        if self.pending.is_empty() && self.pending_file.is_none() {
            // The close_notify, sealed once; then pending until it has gone.
            self.records.clear();
            sealer
                .close(&mut self.records)
                .map_err(|e| SendError::Setup(format!("{e:#}")))?;
            self.pending = 0..self.records.len();
            self.pending_file = Some((u64::MAX, 0));
        }
        if !self.drain(calls, sock)? {
            return Ok(Progress::Blocked);
        }
        self.pending_file = None;
        self.sealer = None;
        Ok(Progress::Sent(0))
    }

    fn fallback(&self) -> Option<Fallback> {
        Fallback::to(Method::TlsReadSend, self.ktls_refused.clone()?)
    }

    fn tls_cipher(&self) -> Option<String> {
        self.sealer.as_ref().map(Sealer::cipher_suite)
    }
}

/// `ktls-sendfile`: sendfile() on a socket whose transmit side the kernel encrypts.
struct KtlsSendfile {
    file: File,
    ktls: Ktls,
    closed: bool,
}

impl Path for KtlsSendfile {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, calls: &mut Calls, sock: &TcpStream, offset: u64, len: u64) -> Result<Progress, SendError> {
        sendfile(calls, sock, &self.file, offset, len)
    }

    /// close_notify through the kernel (an alert record).
    fn end(&mut self, calls: &mut Calls, sock: &TcpStream) -> Result<Progress, SendError> {
        if self.closed {
            return Ok(Progress::Sent(0));
        }
        let ktls = &self.ktls;
        let sent = calls.call("sendmsg(close_notify)", || {
            ktls.close_notify(sock)
                .map(|()| 2)
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        })?;
        self.closed = sent.is_some();
        Ok(if self.closed {
            Progress::Sent(0)
        } else {
            Progress::Blocked
        })
    }

    fn tls_cipher(&self) -> Option<String> {
        Some(self.ktls.cipher_suite())
    }
}
