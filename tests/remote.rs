//! `run --connect` and `xferbench sink` on this host's loopback: addresses by name and IPv6, a refused address,
//! and what the sink does with headers it must not trust.

mod common;

use common::{LIMIT, Sink, assert_ran, rows, run_limited, run_to_end, text, verified_run_to};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use xferbench::wire::{self, Ack};

#[test]
fn host_names_and_ipv6_loopback_resolve() {
    let sink = Sink::start(&[], &["--listen", "[::1]:0"]);
    assert!(sink.addr.starts_with("[::1]:"), "{}", sink.addr);
    let tmp = verified_run_to(&sink, "sendfile");
    assert!(rows(tmp.path())[0].verified);

    // A name, resolved by the sink to listen and by the sender to connect (to each address in turn).
    let named = Sink::start(&[], &["--listen", "localhost:0"]);
    let port_named = named.addr.rsplit_once(':').unwrap().1;
    let tmp = tempfile::tempdir().unwrap();
    let target = format!("localhost:{port_named}");
    let out = run_to_end(&[], tmp.path(), &["--connect", &target, "--strategies", "sendfile"]);
    assert_ran(&out, &named);
    let row = &rows(tmp.path())[0];
    assert_eq!(
        (row.transport.to_string().as_str(), row.sink_addr.as_str()),
        ("remote", target.as_str())
    );
}

#[test]
fn a_refused_address_fails_fast_and_names_it() {
    // A port that was free a moment ago and has nobody listening now.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = run_to_end(&[], tmp.path(), &["--connect", &target, "--strategies", "sendfile"]);
    let took = start.elapsed();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot connect to {target}")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    // The message is one line, not a table of failed cases.
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");
    // A bound, not a speed: fixture and connection together are far below this unless the connect hangs.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// Sends `bytes` as a stream's opening and returns the sink's answer.
fn answer_to(addr: &str, bytes: &[u8]) -> Ack {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    sock.write_all(bytes).expect("write");
    wire::read_line(&mut BufReader::new(&sock)).expect("an ack")
}

fn opening(version: u16, claimed_len: u16, json: &[u8]) -> Vec<u8> {
    let mut v = wire::MAGIC.to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&claimed_len.to_be_bytes());
    v.extend_from_slice(json);
    v
}

#[test]
fn the_sink_refuses_what_it_must_not_trust_and_keeps_serving() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--idle-timeout", "5s"]);
    let startup = sink.wait_for_log("limits:", 1, Duration::from_secs(5));
    assert!(
        startup.contains(&format!(
            "limits: header {} bytes, {} streams per run",
            wire::MAX_HEADER_BYTES,
            wire::MAX_STREAMS
        )),
        "{startup}"
    );

    // Another protocol version: the reason names both versions.
    let other = answer_to(&sink.addr, &opening(wire::PROTOCOL_VERSION + 1, 2, b"{}"));
    assert!(!other.ok);
    assert_eq!(other.version, wire::PROTOCOL_VERSION);
    let why = other.error.unwrap_or_default();
    assert!(
        why.contains(&format!("protocol version {}", wire::PROTOCOL_VERSION + 1)),
        "{why}"
    );

    // The version before passes: refused the same way, both versions named.
    let old = answer_to(&sink.addr, &opening(1, 2, b"{}"));
    let why = old.error.unwrap_or_default();
    assert!(
        why.contains("protocol version 1") && why.contains(&format!("version {}", wire::PROTOCOL_VERSION)),
        "{why}"
    );

    // A header longer than the limit: refused on the length alone, before any of it is read.
    let long = answer_to(&sink.addr, &opening(wire::PROTOCOL_VERSION, u16::MAX, b""));
    assert!(long.error.unwrap_or_default().contains("exceeds the limit"));

    // More streams than a run may have.
    let plan = format!(
        r#"{{"run_id":"r","case_id":"c","plan":{{"file_bytes":1,"chunk_bytes":1,"layout":"striped","streams":{},"index":0}},"seed":null,"verify":false,"token":null,"passes":1}}"#,
        wire::MAX_STREAMS + 1
    );
    let many = answer_to(
        &sink.addr,
        &opening(wire::PROTOCOL_VERSION, plan.len() as u16, plan.as_bytes()),
    );
    assert!(
        many.error
            .unwrap_or_default()
            .contains(&format!("at most {} streams", wire::MAX_STREAMS))
    );

    let log = sink.wait_for_log("rejected:", 4, Duration::from_secs(10));
    assert_eq!(log.lines().filter(|l| l.contains("rejected:")).count(), 4, "{log}");
    assert!(log.contains("run the same xferbench release on both hosts"), "{log}");

    // And a real run still gets through.
    verified_run_to(&sink, "sendfile");
}

#[test]
fn a_peer_that_is_not_a_sink_is_named_and_raw_is_suggested() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        let _ = sock.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = run_to_end(&[], tmp.path(), &["--connect", &target, "--strategies", "sendfile"]);
    server.join().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("sink at {target}")), "{err}");
    assert!(
        err.contains("not as an xferbench sink") && err.contains("--raw"),
        "{err}"
    );
}

/// A receiver that takes one connection and no more (as `nc -l` or socat without `fork`): the listener is closed
/// once the first connection is in, and what that connection brought is returned.
fn one_shot_receiver() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        drop(listener);
        sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut sock, &mut got).expect("read to EOF");
        got
    });
    (addr, handle)
}

/// `run --raw` as docs/remote.md writes it (a serial strategy, `--repeat 1 --warmup 0`), at a small size, then
/// `extra`.
fn raw_run(dir: &std::path::Path, addr: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["run", "--size", "4MiB", "--timeout", "60s", "--fixture-dir"])
        .arg(dir.join("fixtures"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--connect", addr, "--raw", "--strategies", "sendfile"])
        .args(common::ONCE)
        .args(extra);
    cmd
}

/// docs/remote.md's raw example as written (no `--passes`), against a one-shot receiver: one connection, one
/// copy of the file, byte for byte. (With `--passes auto`, a calibration repetition took the receiver's only
/// connection and the counted one failed with connect-failed.)
#[test]
fn raw_mode_sends_a_one_shot_receiver_one_copy_of_the_file() {
    let (addr, receiver) = one_shot_receiver();
    let tmp = tempfile::tempdir().unwrap();
    let out = run_limited(raw_run(tmp.path(), &addr, &[]), LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = receiver.join().expect("the receiver ran");
    let fixture = common::fixture_bytes(tmp.path());
    assert_eq!(got.len(), fixture.len(), "one copy of the file, no more");
    assert!(got == fixture, "what arrived differs from the fixture");
    let rows = rows(tmp.path());
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].passes, rows[0].status.to_string().as_str()), (1, "ok"));

    // With --passes given, raw mode sends what was asked: here the file twice over the one connection.
    let (addr, receiver) = one_shot_receiver();
    let tmp = tempfile::tempdir().unwrap();
    let out = run_limited(raw_run(tmp.path(), &addr, &["--passes", "2"]), LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = receiver.join().expect("the receiver ran");
    let fixture = common::fixture_bytes(tmp.path());
    assert_eq!(got.len(), 2 * fixture.len());
    assert!(got[..fixture.len()] == fixture[..] && got[fixture.len()..] == fixture[..]);
}
