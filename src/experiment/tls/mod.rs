//! TLS 1.3 for the `tls-read-send` and `ktls-sendfile` strategies (issue 14), built on rustls with the `ring`
//! provider and nothing else: no certificate files, no session resumption, no post-handshake messages.
//!
//! The connection's life, as the strategies and the sink use it:
//!
//! ```text
//! sender                                   sink
//! header (plaintext)                ->
//!                                   <-     ack (plaintext, carries SinkIdentity::fingerprint())
//! connect(): ClientHello ...        <->    accept(): ... (TLS 1.3 handshake, outside the timed section)
//! Sealer::seal() + own send() calls ->     Opener::read(): own recv() calls, plaintext out
//! Sealer::close(), shutdown(SHUT_WR) ->    Opener::read() == 0 at close_notify
//!                                   <-     report line, plaintext, written straight on the socket
//! ```
//!
//! The sender pins the sink's certificate by the SHA-256 of its DER encoding, which the sink announced in the
//! ack: the pin is the whole trust, so names and dates are not looked at (the certificate is made when the sink
//! starts and lives as long as it). The server is configured to send no session tickets, so after the handshake
//! the sink sends nothing through TLS and the sender can read the plaintext report straight from the socket.
//!
//! Neither side writes to the socket once the handshake is over: [`Sealer`] appends records to a buffer the
//! caller sends with its own (counted) calls, and [`Opener`] makes its own counted `recv` calls. For kernel TLS
//! see [`ktls`].

pub mod ktls;

use anyhow::{Context, anyhow, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, ConnectionCommon, DigitallySignedStruct, OtherError,
    ServerConfig, ServerConnection, SignatureScheme, SupportedCipherSuite,
};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;

pub use ktls::{Ktls, KtlsRefused, ktls_tx, ulp_available};

/// The name in the sink's certificate and the client's `ServerName` (the pin, not the name, is checked).
pub const SERVER_NAME: &str = "xferbench-sink";

/// Ciphertext taken by one `recv` call of the [`Opener`]: four full 16 KiB records and their overhead.
pub const OPENER_RECV_SIZE: usize = 64 * 1024;

/// The provider every config here is built on: rustls' `ring` backend (see Cargo.toml for why ring).
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Lowercase hex of the SHA-256 of `der`.
fn sha256_hex(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a fingerprint as `fingerprint()` writes it; upper case and `:` between bytes are accepted too.
fn parse_fingerprint(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
    let bad = || anyhow!("a certificate fingerprint is 64 hex digits (SHA-256), not {text:?}");
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The sink's TLS identity: a self-signed certificate and its key, made once when the sink starts.
///
/// Make one per sink process and keep it for the process's life: every connection's [`accept`] uses the same
/// [`server_config`](Self::server_config), and every ack announces the same [`fingerprint`](Self::fingerprint).
pub struct SinkIdentity {
    fingerprint: String,
    config: Arc<ServerConfig>,
}

impl SinkIdentity {
    /// A fresh ECDSA P-256 key and a self-signed certificate for [`SERVER_NAME`] (rcgen), and the server config.
    pub fn generate() -> anyhow::Result<SinkIdentity> {
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec![SERVER_NAME.into()])
            .context("making the sink's self-signed certificate")?;
        let cert_der: CertificateDer<'static> = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("a TLS 1.3 server config")?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key)
            .context("loading the sink's certificate into rustls")?;
        // Nothing may follow the handshake from the server: the sender reads the report line in plaintext.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(SinkIdentity {
            fingerprint: sha256_hex(&cert_der),
            config: Arc::new(config),
        })
    }

    /// SHA-256 of the DER certificate, 64 lowercase hex digits: what the ack carries and the sender pins.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// TLS 1.3 only, no client authentication, no session tickets. Cheap to call (an `Arc` clone).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

/// The handshake failed because the sink's certificate is not the one its ack announced.
#[derive(Debug)]
struct FingerprintMismatch {
    presented: String,
    announced: String,
}

impl std::fmt::Display for FingerprintMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sink's certificate has fingerprint {} but its ack announced {}",
            self.presented, self.announced
        )
    }
}

impl std::error::Error for FingerprintMismatch {}

/// Accepts exactly the end-entity certificate whose SHA-256 is the pin; checks the handshake signature with it.
#[derive(Debug)]
struct PinnedCert {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity);
        // Constant time for form's sake: neither value is secret.
        let differ = digest
            .as_ref()
            .iter()
            .zip(&self.pin)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ == 0 {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = FingerprintMismatch {
            presented: hex(digest.as_ref()),
            announced: hex(&self.pin),
        };
        Err(CertificateError::Other(OtherError(Arc::new(mismatch))).into())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable (TLS 1.3 only), kept correct all the same.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The sender's config: TLS 1.3 only, the sink's certificate pinned by `fingerprint` (as the ack carried it),
/// secret extraction on (for [`ktls_tx`]), no SNI, no resumption.
pub fn client_config(fingerprint: &str) -> anyhow::Result<Arc<ClientConfig>> {
    client_config_with(fingerprint, provider())
}

/// [`client_config`] on a given provider (the tests narrow its cipher suites to one).
fn client_config_with(fingerprint: &str, provider: CryptoProvider) -> anyhow::Result<Arc<ClientConfig>> {
    let verifier = PinnedCert {
        pin: parse_fingerprint(fingerprint)?,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("a TLS 1.3 client config")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.enable_secret_extraction = true;
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Why a blocking handshake stopped.
enum HandshakeError {
    Tls(rustls::Error),
    Io(io::Error),
    Eof,
}

impl HandshakeError {
    /// One line for the run's error column; a pin mismatch is told as just that.
    fn into_anyhow(self, side: &str) -> anyhow::Error {
        match self {
            HandshakeError::Tls(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(e))))
                if e.downcast_ref::<FingerprintMismatch>().is_some() =>
            {
                anyhow!("{e}")
            }
            HandshakeError::Tls(e) => anyhow!("TLS handshake ({side}) failed: {e}"),
            HandshakeError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                anyhow!("TLS handshake ({side}) timed out (the socket's timeout)")
            }
            HandshakeError::Io(e) => anyhow!("TLS handshake ({side}) failed on the socket: {e}"),
            HandshakeError::Eof => anyhow!("TLS handshake ({side}): the peer closed the connection mid-handshake"),
        }
    }
}

/// Drives a handshake to its end over a blocking socket, with the socket's own timeouts. On a TLS error the
/// alert rustls queued is written (best effort) so the peer learns why. Every record written is flushed.
fn handshake<D>(conn: &mut ConnectionCommon<D>, sock: &TcpStream) -> Result<(), HandshakeError> {
    let mut io = sock;
    let flush = |conn: &mut ConnectionCommon<D>, io: &mut &TcpStream| -> Result<(), HandshakeError> {
        while conn.wants_write() {
            conn.write_tls(io).map_err(HandshakeError::Io)?;
        }
        Ok(())
    };
    while conn.is_handshaking() {
        flush(conn, &mut io)?;
        if !conn.is_handshaking() {
            break;
        }
        match conn.read_tls(&mut io) {
            Ok(0) => return Err(HandshakeError::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        if let Err(e) = conn.process_new_packets() {
            let _ = flush(conn, &mut io);
            return Err(HandshakeError::Tls(e));
        }
    }
    flush(conn, &mut io)
}

/// The sender's side of the handshake, blocking on `sock` (its read/write timeouts apply). Returns once the
/// client's Finished is on the wire; nothing read from the socket is left unprocessed (the server sends nothing
/// after its Finished). A certificate that is not the pinned one fails with the one line
/// "the sink's certificate has fingerprint … but its ack announced …".
pub fn connect(sock: &TcpStream, config: Arc<ClientConfig>) -> anyhow::Result<ClientConnection> {
    let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
    let mut conn = ClientConnection::new(config, name).context("starting a TLS client")?;
    handshake(&mut conn, sock).map_err(|e| e.into_anyhow("sender"))?;
    Ok(conn)
}

/// The sink's side of the handshake, blocking on `sock` (its read/write timeouts apply: a peer that sends
/// garbage fails at once, one that stalls fails at the timeout). Application data that arrived with the
/// client's Finished stays in the connection, for the [`Opener`].
pub fn accept(sock: &TcpStream, config: Arc<ServerConfig>) -> anyhow::Result<ServerConnection> {
    let mut conn = ServerConnection::new(config).context("starting a TLS server")?;
    handshake(&mut conn, sock).map_err(|e| e.into_anyhow("sink"))?;
    Ok(conn)
}

/// The name of a negotiated suite, as IANA writes it ("TLS13_AES_256_GCM_SHA384").
fn suite_name(suite: Option<SupportedCipherSuite>) -> String {
    match suite {
        Some(s) => s
            .suite()
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:?}", s.suite())),
        None => "none".to_owned(),
    }
}

/// The sender's user-space TLS: plaintext in, TLS records out into the caller's buffer, which the caller sends
/// with its own calls. Records carry at most 16 KiB of plaintext (rustls' default, as Kafka's SSLEngine).
pub struct Sealer {
    inner: SealerInner,
}

enum SealerInner {
    /// The normal case: rustls' own record layer.
    Rustls(Box<ClientConnection>),
    /// After `ktls_tx` took the keys out of rustls and the kernel refused them: the same records, sealed here.
    Records(Box<ktls::RecordSealer>),
}

impl Sealer {
    /// Takes over a connection from [`connect`].
    pub fn new(mut conn: ClientConnection) -> Sealer {
        // `seal` drains rustls' buffer after each write, so no limit is needed (the default 64 KiB would only
        // make a large chunk take several rounds).
        conn.set_buffer_limit(None);
        Sealer {
            inner: SealerInner::Rustls(Box::new(conn)),
        }
    }

    pub(crate) fn from_records(records: ktls::RecordSealer) -> Sealer {
        Sealer {
            inner: SealerInner::Records(Box::new(records)),
        }
    }

    /// Appends the TLS records that carry `plaintext` to `out` (16 KiB of plaintext a record, the last one
    /// shorter). Writes nothing to any socket.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        match &mut self.inner {
            SealerInner::Rustls(conn) => {
                let mut rest = plaintext;
                while !rest.is_empty() {
                    let n = conn.writer().write(rest).context("TLS: sealing")?;
                    if n == 0 {
                        bail!("TLS: the session takes no more data (closed)");
                    }
                    rest = &rest[n..];
                    while conn.wants_write() {
                        conn.write_tls(out).context("TLS: collecting records")?;
                    }
                }
                Ok(())
            }
            SealerInner::Records(records) => records.seal(plaintext, out),
        }
    }

    /// Appends the close_notify alert to `out`; send it, then shut the socket down for writing.
    pub fn close(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        match &mut self.inner {
            SealerInner::Rustls(conn) => {
                conn.send_close_notify();
                while conn.wants_write() {
                    conn.write_tls(out).context("TLS: collecting close_notify")?;
                }
                Ok(())
            }
            SealerInner::Records(records) => records.close(out),
        }
    }

    /// The negotiated suite ("TLS13_AES_256_GCM_SHA384"), for the `tls_cipher` column.
    pub fn cipher_suite(&self) -> String {
        match &self.inner {
            SealerInner::Rustls(conn) => suite_name(conn.negotiated_cipher_suite()),
            SealerInner::Records(records) => records.cipher_suite(),
        }
    }
}

/// The sink's TLS: its own `recv` calls of up to [`OPENER_RECV_SIZE`] bytes of ciphertext, plaintext out.
pub struct Opener {
    conn: ServerConnection,
    ciphertext: Box<[u8]>,
    start: usize,
    end: usize,
    recv_calls: u64,
}

impl Opener {
    /// Takes over a connection from [`accept`] (and whatever application data came with the handshake).
    pub fn new(conn: ServerConnection) -> Opener {
        Opener {
            conn,
            ciphertext: vec![0u8; OPENER_RECV_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            recv_calls: 0,
        }
    }

    /// Fills `buf` with plaintext: `Ok(n > 0)` bytes, `Ok(0)` once the sender's close_notify has come (any TCP
    /// data after it is not read). A TCP end without close_notify is `UnexpectedEof`; a record that does not
    /// decrypt or parse is `InvalidData`; the socket's read timeout is `TimedOut`. Writes nothing to `sock`.
    pub fn read(&mut self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(io::Error::new(
                        e.kind(),
                        "TLS: the sender closed the connection without close_notify",
                    ));
                }
                Err(e) => return Err(e),
            }
            if self.start == self.end {
                let n = self.recv(sock)?;
                self.start = 0;
                self.end = n;
                if n == 0 {
                    // Tells rustls the stream ended: the next `reader().read` then reports an unclean end.
                    self.conn.read_tls(&mut io::empty())?;
                }
            } else {
                // rustls takes at most a few KiB at a time into its own buffer.
                let n = self.conn.read_tls(&mut &self.ciphertext[self.start..self.end])?;
                self.start += n;
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")))?;
        }
    }

    fn recv(&mut self, sock: &TcpStream) -> io::Result<usize> {
        loop {
            self.recv_calls += 1;
            match nix::sys::socket::recv(
                sock.as_raw_fd(),
                &mut self.ciphertext,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS: timed out waiting for the sender",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `recv` calls made so far (those the handshake made in [`accept`] are not counted).
    pub fn recv_calls(&self) -> u64 {
        self.recv_calls
    }

    /// The negotiated suite ("TLS13_AES_256_GCM_SHA384").
    pub fn cipher_suite(&self) -> String {
        suite_name(self.conn.negotiated_cipher_suite())
    }
}

#[cfg(test)]
mod tests;
