//! Real sockets on 127.0.0.1, a sink thread and a sender, as the strategies will use this module.

use super::*;
use crate::experiment::pattern::Pattern;
use std::net::{Shutdown, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SEED: u64 = 14;
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the sink thread saw.
#[derive(Debug)]
struct Seen {
    bytes: u64,
    mismatch: Option<u64>,
    recv_calls: u64,
    suite: String,
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn with_timeouts(sock: TcpStream, timeout: Duration) -> TcpStream {
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.set_write_timeout(Some(timeout)).unwrap();
    sock
}

/// A sink for one connection: handshake, read plaintext to close_notify checking it against the pattern, then
/// the plaintext report line straight on the socket.
fn sink(listener: TcpListener, config: Arc<ServerConfig>) -> JoinHandle<anyhow::Result<Seen>> {
    std::thread::spawn(move || {
        let (sock, _) = listener.accept()?;
        let mut sock = with_timeouts(sock, TIMEOUT);
        let mut opener = Opener::new(accept(&sock, config)?);
        let pattern = Pattern::new(SEED);
        let mut buf = vec![0u8; 256 << 10];
        let mut bytes = 0u64;
        let mut mismatch = None;
        loop {
            let n = opener.read(&sock, &mut buf)?;
            if n == 0 {
                break;
            }
            if mismatch.is_none() {
                mismatch = pattern.first_mismatch(bytes, &buf[..n]);
            }
            bytes += n as u64;
        }
        sock.write_all(b"report\n")?;
        Ok(Seen {
            bytes,
            mismatch,
            recv_calls: opener.recv_calls(),
            suite: opener.cipher_suite(),
        })
    })
}

fn dial(listener: &TcpListener) -> TcpStream {
    with_timeouts(TcpStream::connect(listener.local_addr().unwrap()).unwrap(), TIMEOUT)
}

/// Sends `total` pattern bytes `chunk` at a time through `sealer`, then close_notify and SHUT_WR, and returns the
/// sink's plaintext report. Only this function writes to the socket: the sealer just fills `out`.
fn send(sealer: &mut Sealer, mut sock: &TcpStream, total: u64, chunk: usize) -> String {
    let pattern = Pattern::new(SEED);
    let mut plain = vec![0u8; chunk];
    let mut out = Vec::with_capacity(chunk + chunk / 16 + 64);
    let mut at = 0u64;
    while at < total {
        let n = chunk.min((total - at) as usize);
        pattern.fill(at, &mut plain[..n]);
        out.clear();
        sealer.seal(&plain[..n], &mut out).unwrap();
        sock.write_all(&out).unwrap();
        at += n as u64;
    }
    out.clear();
    sealer.close(&mut out).unwrap();
    sock.write_all(&out).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let mut report = String::new();
    sock.read_to_string(&mut report).unwrap();
    report
}

#[test]
fn round_trip_64_mib_through_sealer_and_opener() {
    let identity = SinkIdentity::generate().unwrap();
    let l = listener();
    let sock = dial(&l);
    let sink = sink(l, identity.server_config());
    let conn = connect(&sock, client_config(&identity.fingerprint()).unwrap()).unwrap();
    let mut sealer = Sealer::new(conn);
    let suite = sealer.cipher_suite();
    assert!(
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&suite.as_str()),
        "{suite}"
    );
    let total = 64u64 << 20;
    // Kafka's shape: 32 KiB reads, two 16 KiB records each; the report comes back in plaintext, so the server
    // sent nothing through TLS after the handshake.
    assert_eq!(send(&mut sealer, &sock, total, 32 << 10), "report\n");
    let seen = sink.join().unwrap().unwrap();
    assert_eq!(seen.bytes, total);
    assert_eq!(seen.mismatch, None);
    assert_eq!(seen.suite, suite);
    // 64 KiB of ciphertext at most per recv.
    assert!(seen.recv_calls >= total / OPENER_RECV_SIZE as u64, "{seen:?}");
}

#[test]
fn odd_chunk_sizes_round_trip() {
    let identity = SinkIdentity::generate().unwrap();
    for chunk in [1usize, 1000, 16 * 1024 + 1, 1 << 20] {
        let l = listener();
        let sock = dial(&l);
        let sink = sink(l, identity.server_config());
        let mut sealer = Sealer::new(connect(&sock, client_config(&identity.fingerprint()).unwrap()).unwrap());
        let total = if chunk == 1 { 5000 } else { 3 << 20 };
        assert_eq!(send(&mut sealer, &sock, total, chunk), "report\n");
        let seen = sink.join().unwrap().unwrap();
        assert_eq!((seen.bytes, seen.mismatch), (total, None), "chunk {chunk}");
    }
}

#[test]
fn records_hold_16_kib_of_plaintext() {
    let identity = SinkIdentity::generate().unwrap();
    let l = listener();
    let sock = dial(&l);
    let sink = sink(l, identity.server_config());
    let mut sealer = Sealer::new(connect(&sock, client_config(&identity.fingerprint()).unwrap()).unwrap());
    let mut out = Vec::new();
    sealer.seal(&vec![0u8; 32 << 10], &mut out).unwrap();
    // Two records: 5-byte header, 16 KiB, content type byte, 16-byte tag.
    assert_eq!(out.len(), 2 * (5 + (16 << 10) + 1 + 16));
    assert_eq!(&out[..5], &[23, 3, 3, 0x40, 0x11]);
    drop(sock);
    let _ = sink.join();
}

#[test]
fn wrong_fingerprint_is_refused_with_one_line() {
    let identity = SinkIdentity::generate().unwrap();
    let other = SinkIdentity::generate().unwrap();
    assert_ne!(identity.fingerprint(), other.fingerprint());
    let l = listener();
    let sock = dial(&l);
    let config = identity.server_config();
    let sink = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        accept(&with_timeouts(sock, TIMEOUT), config).map(|_| ())
    });
    let err = connect(&sock, client_config(&other.fingerprint()).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "the sink's certificate has fingerprint {} but its ack announced {}",
            identity.fingerprint(),
            other.fingerprint()
        )
    );
    let sink_err = sink.join().unwrap().unwrap_err().to_string();
    eprintln!("{sink_err}");
    assert!(
        sink_err.starts_with("TLS handshake (sink) failed: received fatal alert"),
        "{sink_err}"
    );
}

#[test]
fn fingerprints_parse_in_the_usual_spellings() {
    let identity = SinkIdentity::generate().unwrap();
    let fp = identity.fingerprint();
    assert_eq!(fp.len(), 64);
    assert!(fp.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let upper_colons = fp
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(
        parse_fingerprint(&upper_colons).unwrap(),
        parse_fingerprint(&fp).unwrap()
    );
    assert!(client_config(&fp[..62]).is_err());
    assert!(client_config(&format!("{}zz", &fp[..62])).is_err());
}

/// Runs `accept` on a connection whose peer wrote `bytes` and then stayed silent (socket still open).
fn accept_after(bytes: &[u8], timeout: Duration) -> (anyhow::Result<ServerConnection>, Duration) {
    let l = listener();
    let mut peer = dial(&l);
    let (sock, _) = l.accept().unwrap();
    let sock = with_timeouts(sock, timeout);
    peer.write_all(bytes).unwrap();
    let t = Instant::now();
    let result = accept(&sock, SinkIdentity::generate().unwrap().server_config());
    drop(peer);
    (result, t.elapsed())
}

#[test]
fn garbage_into_accept_fails_at_once() {
    let (result, took) = accept_after(b"GET / HTTP/1.1\r\nHost: sink\r\n\r\n", Duration::from_secs(30));
    let err = result.unwrap_err().to_string();
    eprintln!("{err}");
    assert!(err.starts_with("TLS handshake (sink) failed:"), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_stalled_handshake_ends_at_the_socket_timeout() {
    // A plausible record header that promises bytes that never come.
    let (result, took) = accept_after(&[22, 3, 1, 0x10, 0x00], Duration::from_millis(300));
    let err = result.unwrap_err().to_string();
    assert_eq!(err, "TLS handshake (sink) timed out (the socket's timeout)");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_peer_that_leaves_mid_handshake_is_an_error() {
    let l = listener();
    let peer = dial(&l);
    let (sock, _) = l.accept().unwrap();
    drop(peer);
    let err = accept(
        &with_timeouts(sock, TIMEOUT),
        SinkIdentity::generate().unwrap().server_config(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("closed the connection mid-handshake"), "{err}");
}

/// A handshaken pair: the sender's socket and connection, the sink's socket and Opener.
fn pair(identity: &SinkIdentity) -> (TcpStream, ClientConnection, TcpStream, Opener) {
    let l = listener();
    let sock = dial(&l);
    let config = identity.server_config();
    let sink = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        let sock = with_timeouts(sock, TIMEOUT);
        let conn = accept(&sock, config).unwrap();
        (sock, Opener::new(conn))
    });
    let conn = connect(&sock, client_config(&identity.fingerprint()).unwrap()).unwrap();
    let (sink_sock, opener) = sink.join().unwrap();
    (sock, conn, sink_sock, opener)
}

#[test]
fn a_corrupted_record_is_invalid_data() {
    let identity = SinkIdentity::generate().unwrap();
    let (mut sock, conn, sink_sock, mut opener) = pair(&identity);
    let mut out = Vec::new();
    Sealer::new(conn).seal(b"hello", &mut out).unwrap();
    out[7] ^= 1;
    sock.write_all(&out).unwrap();
    let err = opener.read(&sink_sock, &mut [0u8; 100]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    eprintln!("{err}");
    assert!(err.to_string().starts_with("TLS: "), "{err}");
}

#[test]
fn plain_bytes_after_the_handshake_are_invalid_data() {
    let identity = SinkIdentity::generate().unwrap();
    let (mut sock, _conn, sink_sock, mut opener) = pair(&identity);
    sock.write_all(b"this is not TLS at all\n").unwrap();
    let err = opener.read(&sink_sock, &mut [0u8; 100]).unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[test]
fn an_end_without_close_notify_is_an_error() {
    let identity = SinkIdentity::generate().unwrap();
    let (mut sock, conn, sink_sock, mut opener) = pair(&identity);
    let mut out = Vec::new();
    Sealer::new(conn).seal(b"hello", &mut out).unwrap();
    sock.write_all(&out).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(opener.read(&sink_sock, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    let err = opener.read(&sink_sock, &mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn the_opener_times_out_on_a_silent_sender() {
    let identity = SinkIdentity::generate().unwrap();
    let (_sock, _conn, sink_sock, mut opener) = pair(&identity);
    sink_sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let err = opener.read(&sink_sock, &mut [0u8; 100]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

/// The bytes `ktls_tx` hands the kernel, sealed in user space the way the kernel seals with them, open in rustls
/// byte-exact for each of the three suites: the packing is checked end to end without a kernel that has kTLS.
#[test]
fn crypto_info_seals_records_rustls_opens_for_each_suite() {
    use rustls::crypto::ring::cipher_suite as cs;
    let identity = SinkIdentity::generate().unwrap();
    for (suite, name) in [
        (cs::TLS13_AES_128_GCM_SHA256, "TLS13_AES_128_GCM_SHA256"),
        (cs::TLS13_AES_256_GCM_SHA384, "TLS13_AES_256_GCM_SHA384"),
        (cs::TLS13_CHACHA20_POLY1305_SHA256, "TLS13_CHACHA20_POLY1305_SHA256"),
    ] {
        let l = listener();
        let sock = dial(&l);
        let sink = sink(l, identity.server_config());
        let provider = CryptoProvider {
            cipher_suites: vec![suite],
            ..provider()
        };
        let conn = connect(&sock, client_config_with(&identity.fingerprint(), provider).unwrap()).unwrap();
        let (seq, secrets) = conn.dangerous_extract_secrets().unwrap().tx;
        assert_eq!(seq, 0);
        let info = ktls::CryptoInfo::from_secrets(seq, &secrets).unwrap();
        let mut sealer = Sealer::from_records(ktls::RecordSealer::new(&info));
        assert_eq!(sealer.cipher_suite(), name);
        let total = 4u64 << 20;
        assert_eq!(send(&mut sealer, &sock, total, 100_000), "report\n");
        let seen = sink.join().unwrap().unwrap();
        assert_eq!((seen.bytes, seen.mismatch, seen.suite.as_str()), (total, None, name));
    }
}

/// Here (no tls ULP) the kernel refuses and the connection comes back as a working sealer. Where the kernel has
/// kTLS (the QEMU guest), the same test sends through the kernel, by write and by sendfile, and the sink checks.
#[test]
fn ktls_tx_refuses_without_the_ulp_or_sends_through_the_kernel() {
    let identity = SinkIdentity::generate().unwrap();
    let l = listener();
    let sock = dial(&l);
    let sink = sink(l, identity.server_config());
    let conn = connect(&sock, client_config(&identity.fingerprint()).unwrap()).unwrap();
    let total = 8u64 << 20;
    match ktls_tx(&sock, conn).unwrap() {
        Err(refused) => {
            if !ulp_available() {
                assert!(refused.reason.contains("no tls ULP"), "{}", refused.reason);
            }
            eprintln!("{}", refused.reason);
            let mut sealer = refused.fallback;
            assert_eq!(send(&mut sealer, &sock, total, 32 << 10), "report\n");
        }
        Ok(ktls) => {
            eprintln!("kTLS took {}", ktls.cipher_suite());
            let half = total / 2;
            // The first half by write, the second by sendfile from a file: both leave sealed by the kernel.
            let pattern = Pattern::new(SEED);
            let mut plain = vec![0u8; half as usize];
            pattern.fill(0, &mut plain);
            (&sock).write_all(&plain).unwrap();
            let mut file = tempfile::tempfile().unwrap();
            pattern.fill(half, &mut plain);
            file.write_all(&plain).unwrap();
            let mut offset: libc::off_t = 0;
            while (offset as u64) < half {
                let left = (half - offset as u64) as usize;
                // SAFETY: two valid fds and a valid offset pointer.
                let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut offset, left) };
                assert!(n > 0, "sendfile: {}", io::Error::last_os_error());
            }
            ktls.close_notify(&sock).unwrap();
            sock.shutdown(Shutdown::Write).unwrap();
            let mut report = String::new();
            (&sock).read_to_string(&mut report).unwrap();
            assert_eq!(report, "report\n");
        }
    }
    let seen = sink.join().unwrap().unwrap();
    assert_eq!((seen.bytes, seen.mismatch), (total, None));
}

#[test]
fn the_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<SinkIdentity>();
    send::<Sealer>();
    send::<Opener>();
    send::<Ktls>();
    send::<KtlsRefused>();
}
