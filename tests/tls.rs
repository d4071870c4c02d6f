//! The TLS paths end to end: user-space TLS (`tls-read-send`) and kernel TLS (`ktls-sendfile`, which falls back,
//! recorded, where the kernel has no TLS ULP), serial and parallel, byte-exact at the sink; the pin on the sink's
//! certificate; and a sink that is handed TLS garbage serves the next run.

mod common;

use common::{Sink, rows, run_to_end, stream_header, text, verified_run_to};
use std::io::{BufReader, Write};
use std::net::TcpListener;
use xferbench::model::Status;
use xferbench::wire::{self, Ack, StreamHeader};

#[test]
fn tls_strategies_are_byte_exact_serial_and_parallel() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_to_end(
        &[],
        tmp.path(),
        &[
            "--strategies",
            "tls-read-send,parallel-tls-read-send,ktls-sendfile,parallel-ktls-sendfile",
            "--threads",
            "3",
            "--cache",
            "warm,cold",
            "--verify",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = rows(tmp.path());
    assert_eq!(rows.len(), 8);
    let ktls_here = xferbench::tls::ulp_available();
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert!(r.verified && r.bytes_received == Some(r.file_bytes), "{r:?}");
        assert!(r.tls_cipher.starts_with("TLS13_"), "{r:?}");
        let method = r.strategy.method.to_string();
        let read_send = r.path.method.to_string() == "tls-read-send";
        if method == "ktls-sendfile" && !ktls_here {
            // The fallback is recorded with the kernel's reason, and the bytes went the user-space way.
            assert_eq!(r.path.method.to_string(), "tls-read-send", "{r:?}");
            assert!(r.fallback_reason.starts_with("kTLS: "), "{}", r.fallback_reason);
        }
        assert_eq!(r.user_copy_bytes, if read_send { 2 * r.file_bytes } else { 0 }, "{r:?}");
    }
    if !ktls_here {
        let stdout = text(&out.stdout);
        assert!(stdout.contains("fallback"), "the table flags the fallback:\n{stdout}");
    }
}

/// A fake sink: acks a TLS stream with `announced` as its certificate's fingerprint, then handshakes with
/// `identity`'s certificate.
fn lying_sink(identity: xferbench::tls::SinkIdentity, announced: String) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let header: StreamHeader = wire::read_header(&mut &sock).unwrap();
        assert!(header.tls);
        let ack = Ack {
            ok: true,
            version: wire::PROTOCOL_VERSION,
            boot_id: String::new(),
            rx_mode: xferbench::model::RxMode::Copy,
            rx_buffer_bytes: 1 << 18,
            rcvbuf_bytes: None,
            cpus: None,
            tls_fingerprint: Some(announced),
            error: None,
            stalls: true,
        };
        wire::write_line(&mut &sock, &ack).unwrap();
        match xferbench::tls::accept(&sock, identity.server_config()) {
            Ok(_) => "handshake completed".to_string(),
            Err(e) => format!("{e:#}"),
        }
    });
    (addr, handle)
}

#[test]
fn a_certificate_other_than_the_announced_one_is_refused_in_one_line() {
    let real = xferbench::tls::SinkIdentity::generate().unwrap();
    let other = xferbench::tls::SinkIdentity::generate().unwrap();
    let announced = other.fingerprint();
    let (addr, sink) = lying_sink(real, announced.clone());
    let tmp = tempfile::tempdir().unwrap();
    let out = run_to_end(&[], tmp.path(), &["--connect", &addr, "--strategies", "tls-read-send"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Besides the run's opening line, one line: the error.
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("xferbench 0.")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("xferbench: error: "), "{stderr}");
    assert!(
        lines[0].contains("certificate has fingerprint") && lines[0].contains(&format!("ack announced {announced}")),
        "{stderr}"
    );
    let seen = sink.join().unwrap();
    assert!(seen.contains("TLS handshake (sink) failed"), "{seen}");
}

#[test]
fn a_sink_handed_tls_garbage_serves_the_next_run() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--idle-timeout", "5s"]);
    // A stream that asks for TLS, takes the ack, then sends something that is not TLS.
    let sock = std::net::TcpStream::connect(&sink.addr).unwrap();
    let header = StreamHeader {
        tls: true,
        ..stream_header(4096, 4096)
    };
    wire::write_header(&mut &sock, &header).unwrap();
    let ack: Ack = wire::read_line(&mut BufReader::new(&sock)).unwrap();
    assert!(
        ack.ok && ack.tls_fingerprint.as_ref().is_some_and(|f| f.len() == 64),
        "{ack:?}"
    );
    (&sock).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let log = sink.wait_for_log("rejected", 1, std::time::Duration::from_secs(10));
    assert!(log.contains("TLS handshake (sink) failed"), "{log}");
    drop(sock);

    let tmp = verified_run_to(&sink, "tls-read-send");
    let r = &rows(tmp.path())[0];
    assert!(r.is_ok() && r.verified && r.tls_cipher.starts_with("TLS13_"), "{r:?}");
}
