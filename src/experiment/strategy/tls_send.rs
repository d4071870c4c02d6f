//! The TLS paths, each stream one TLS 1.3 session (its handshake done outside the timed section).
//!
//! `tls-read-send` is what Kafka does once TLS is on: read the log segment through a buffer, encrypt in user
//! space (rustls; SSLEngine in Kafka), send the records. Every byte crosses user space twice (into the buffer,
//! out as ciphertext) and is encrypted on the sender's CPU. `ktls-sendfile` hands the session's transmit keys to
//! the kernel (kTLS, `TCP_ULP "tls"` + `TLS_TX`) and sends the file with sendfile(): no copy through user space,
//! the kernel encrypts. Where the kernel has no TLS ULP or refuses the keys, it runs `tls-read-send` on the same
//! session and the row's path says why.

use super::read_send::read_at;
use super::sendfile::Sendfile;
use super::{Fallback, Io, SendError, SendOptions, Transfer};
use crate::base::model::Method;
use crate::experiment::buffer::AlignedBuf;
use crate::experiment::tls::{self, Ktls, Sealer};
use std::fs::File;
use std::net::TcpStream;

/// Builds the transfer of a TLS method on an established session.
pub fn prepare(
    method: Method,
    file: File,
    sock: &TcpStream,
    opts: &SendOptions,
    session: rustls::ClientConnection,
) -> anyhow::Result<Box<dyn Transfer>> {
    if method == Method::TlsReadSend {
        return Ok(Box::new(TlsReadSend::new(file, opts, Sealer::new(session), None)?));
    }
    Ok(match tls::ktls_tx(sock, session)? {
        Ok(ktls) => Box::new(KtlsSendfile {
            sendfile: Sendfile::new(file),
            ktls,
        }),
        Err(refused) => Box::new(TlsReadSend::new(file, opts, refused.fallback, Some(refused.reason))?),
    })
}

/// pread() into a buffer, seal it into TLS records, send them.
pub struct TlsReadSend {
    file: File,
    /// Plaintext, page-aligned and touched at set-up (see `buffer`).
    buf: AlignedBuf,
    /// Ciphertext of one piece: its records, each up to 16 KiB of plaintext and 22 bytes of header and tag.
    records: Vec<u8>,
    sealer: Sealer,
    /// Why `ktls-sendfile` runs this path instead, when it does.
    ktls_refused: Option<String>,
}

impl TlsReadSend {
    fn new(
        file: File,
        opts: &SendOptions,
        sealer: Sealer,
        ktls_refused: Option<String>,
    ) -> anyhow::Result<TlsReadSend> {
        let len = usize::try_from(opts.chunk_bytes)?;
        // Touched now, like the plaintext buffer, so its first-use faults are not charged to the transfer.
        let mut records = vec![0u8; len + len.div_ceil(16 << 10) * 64 + 64];
        records.clear();
        Ok(TlsReadSend {
            file,
            buf: AlignedBuf::new(len)?,
            records,
            sealer,
            ktls_refused,
        })
    }
}

impl Transfer for TlsReadSend {
    fn user_copies(&self) -> u64 {
        // Into the buffer by read; out of user space as ciphertext by send (the encryption in between is the
        // sender's user CPU).
        2
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        let got = read_at(&self.file, &mut self.buf.as_mut_slice()[..len], offset, len, io)?;
        self.records.clear();
        self.sealer
            .seal(&self.buf.as_slice()[..got], &mut self.records)
            .map_err(|e| SendError::Setup(format!("{e:#}")))?;
        io.send_all(&self.records)?;
        Ok(got)
    }

    /// close_notify, so that the sink knows the stream ended whole.
    fn end(&mut self, io: &mut Io) -> Result<(), SendError> {
        self.records.clear();
        self.sealer
            .close(&mut self.records)
            .map_err(|e| SendError::Setup(format!("{e:#}")))?;
        let records = std::mem::take(&mut self.records);
        let sent = io.send_all(&records);
        self.records = records;
        sent
    }

    fn fallback(&self) -> Option<Fallback> {
        Fallback::to(Method::TlsReadSend, self.ktls_refused.clone()?)
    }

    fn tls_cipher(&self) -> Option<String> {
        Some(self.sealer.cipher_suite())
    }
}

/// sendfile() on a socket whose transmit side the kernel encrypts.
pub struct KtlsSendfile {
    sendfile: Sendfile,
    ktls: Ktls,
}

impl Transfer for KtlsSendfile {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        self.sendfile.send(io, offset, len)
    }

    /// close_notify through the kernel (an alert record).
    fn end(&mut self, io: &mut Io) -> Result<(), SendError> {
        let (ktls, sock) = (&self.ktls, io.sock);
        io.call("sendmsg(close_notify)", || {
            ktls.close_notify(sock)
                .map(|()| 2)
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        })
        .map(drop)
    }

    fn tls_cipher(&self) -> Option<String> {
        Some(self.ktls.cipher_suite())
    }
}
