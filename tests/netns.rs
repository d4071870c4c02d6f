//! Real sockets between two hosts, simulated by two network namespaces joined by a veth pair: a sink in one,
//! the sender in the other. Needs root and iproute2 (CI has both); without them these tests fail and say so.

mod common;

use common::{FAR_IP, FAR_IP6, NetPair, Sink, assert_fails, assert_ran, fixture_bytes, rows, run_to_end, text};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// A sink in the far namespace on FAR_IP (any port), with `extra` options.
fn far_sink(net: &NetPair, extra: &[&str]) -> Sink {
    let listen = format!("{FAR_IP}:0");
    Sink::start(&NetPair::exec(&net.far), &[&["--listen", &listen], extra].concat())
}

/// `run` from the near namespace, with a fixture and results in `dir`, then `args`.
fn run_near(net: &NetPair, dir: &Path, args: &[&str]) -> Output {
    run_to_end(&NetPair::exec(&net.near), dir, args)
}

/// A verified run of `strategies` on `threads` threads from the near namespace to `sink`, then `extra`, from a new
/// temporary folder, which it returns once the run has succeeded.
fn verified_run(net: &NetPair, sink: &Sink, strategies: &str, threads: &str, extra: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        &[
            "--connect",
            &sink.addr,
            "--strategies",
            strategies,
            "--threads",
            threads,
            "--verify",
        ],
        extra,
    ]
    .concat();
    assert_ran(&run_near(net, tmp.path(), &args), sink);
    tmp
}

#[test]
fn verified_transfers_to_a_sink_in_another_namespace() {
    let net = NetPair::new();
    let sink = far_sink(&net, &["--rx-buffer", "64KiB", "--rcvbuf", "1MiB", "--cpus", "0"]);
    let extra = ["--sndbuf", "512KiB", "--nodelay", "--sender-cpus", "0"];
    let tmp = verified_run(&net, &sink, "sendfile,parallel-sendfile", "4", &extra);
    let rows = rows(tmp.path());
    let strategies: Vec<String> = rows.iter().map(|r| r.strategy.to_string()).collect();
    assert_eq!(strategies, ["sendfile", "parallel-sendfile"]);
    for r in &rows {
        assert_eq!(
            (
                r.transport.to_string().as_str(),
                r.status.to_string().as_str(),
                r.verified
            ),
            ("remote", "ok", true),
            "{r:?}"
        );
        assert_eq!(r.sink_addr, sink.addr);
        assert_eq!(r.bytes_sent, 4 << 20);
        assert_eq!(r.bytes_received, Some(4 << 20));
        assert!(
            r.sink_user_s.is_some() && r.sink_sys_s.is_some() && r.recv_s.is_some(),
            "{r:?}"
        );
        assert!(
            r.sink_voluntary_ctxsw.is_some() && r.sink_involuntary_ctxsw.is_some(),
            "{r:?}"
        );
        // What the remote sink uses comes back in its ack, not from the sender's own defaults.
        assert_eq!(r.rx_buffer_bytes, Some(64 << 10));
        assert_eq!(r.rx_mode.map(|m| m.to_string()).as_deref(), Some("copy"));
        assert_eq!(r.rcvbuf_bytes, Some(1 << 20));
        assert_eq!(r.sink_cpus, "0");
        assert_eq!(r.sender_cpus, "0");
        assert_eq!(r.sndbuf_bytes, Some(512 << 10));
        assert!(r.nodelay);
    }
    assert_eq!(rows[1].threads, 4);
}

#[test]
fn ipv6_addresses_reach_the_sink() {
    let net = NetPair::new();
    let sink = Sink::start(&NetPair::exec(&net.far), &["--listen", &format!("[{FAR_IP6}]:0")]);
    assert!(sink.addr.starts_with(&format!("[{FAR_IP6}]:")), "{}", sink.addr);
    let tmp = verified_run(&net, &sink, "parallel-sendfile", "3", &[]);
    let rows = rows(tmp.path());
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_ok() && rows[0].verified, "{:?}", rows[0]);
}

/// A receiver that knows nothing of xferbench: it takes `count` connections one after another, keeps what each
/// brought, and closes each at EOF.
fn plain_receiver(ns: &str, count: usize) -> (String, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = NetPair::inside(ns, move || {
        let listener = TcpListener::bind(format!("{FAR_IP}:0")).expect("bind in the namespace");
        tx.send(listener.local_addr().unwrap().to_string()).unwrap();
        (0..count)
            .map(|_| {
                let (mut sock, _) = listener.accept().expect("accept");
                sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut got = Vec::new();
                sock.read_to_end(&mut got).expect("read to EOF");
                got
            })
            .collect()
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("the receiver listens");
    (addr, handle)
}

#[test]
fn raw_mode_delivers_the_bare_file_to_any_receiver() {
    let net = NetPair::new();
    let (addr, receiver) = plain_receiver(&net.far, 2);
    let tmp = tempfile::tempdir().unwrap();
    let out = run_near(
        &net,
        tmp.path(),
        &["--connect", &addr, "--raw", "--strategies", "sendfile,read-send"],
    );
    assert!(out.status.success(), "run failed: {}", text(&out.stderr));
    let received = receiver.join().expect("the receiver ran");
    let fixture = fixture_bytes(tmp.path());
    assert_eq!(fixture.len(), 4 << 20);
    for got in &received {
        assert_eq!(got.len(), fixture.len());
        assert_eq!(
            checksum(got),
            checksum(&fixture),
            "what arrived differs from the fixture"
        );
    }
    for r in rows(tmp.path()) {
        assert_eq!(
            (r.transport.to_string().as_str(), r.status.to_string().as_str()),
            ("raw", "ok"),
            "{r:?}"
        );
        // Nothing comes back from a raw receiver: no verification and no receiver metrics.
        assert!(!r.verified);
        assert_eq!(r.bytes_received, None);
        assert_eq!((r.recv_s, r.sink_user_s, r.sink_sys_s), (None, None, None));
        assert_eq!((r.sink_voluntary_ctxsw, r.sink_involuntary_ctxsw), (None, None));
        assert_eq!((r.rx_mode, r.rx_buffer_bytes), (None, None));
        assert!(
            !r.flags.to_string().contains("raw-receiver-did-not-close"),
            "{}",
            r.flags
        );
        assert!(r.wall_s >= r.send_s && r.throughput_mb_s > 0.0, "{r:?}");
    }
}

/// FNV-1a, enough to tell two files apart.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn strangers_are_rejected_and_the_next_run_succeeds() {
    let net = NetPair::new();
    let sink = far_sink(&net, &["--token", "s3cret", "--idle-timeout", "2s"]);
    let addr = sink.addr.clone();

    // Random bytes: refused with a reason, and closed.
    let garbage = NetPair::inside(&net.near, {
        let addr = addr.clone();
        move || {
            let mut sock = TcpStream::connect(&addr).expect("connect");
            sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let junk: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            sock.write_all(&junk).expect("write");
            let mut answer = Vec::new();
            // The sink may reset rather than close, with our junk unread: what arrived before counts.
            let _ = sock.read_to_end(&mut answer);
            text(&answer)
        }
    });
    let answer = garbage.join().unwrap();
    assert!(
        answer.contains("\"ok\":false") && answer.contains("bad magic"),
        "{answer}"
    );

    // Nothing at all: closed once the header does not come within the idle timeout.
    let silent = NetPair::inside(&net.near, {
        let addr = addr.clone();
        move || {
            let mut sock = TcpStream::connect(&addr).expect("connect");
            sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = [0u8; 64];
            sock.read(&mut buf).map_err(|e| e.kind())
        }
    });
    assert!(
        matches!(silent.join().unwrap(), Ok(0)),
        "the sink did not close a silent connection"
    );

    // A run with the wrong token: one clear line, a non-zero exit.
    let tmp = tempfile::tempdir().unwrap();
    let wrong = run_near(
        &net,
        tmp.path(),
        &["--connect", &addr, "--token", "guess", "--strategies", "sendfile"],
    );
    assert_fails(&wrong, 1, "wrong or missing token");

    let log = sink.wait_for_log("rejected:", 3, Duration::from_secs(10));
    let rejections: Vec<&str> = log.lines().filter(|l| l.contains("rejected:")).collect();
    assert_eq!(rejections.len(), 3, "one line per rejection:\n{log}");
    assert!(rejections[0].contains("bad magic"), "{log}");
    assert!(rejections[1].contains("no complete header within 2s"), "{log}");
    assert!(rejections[2].contains("wrong or missing token"), "{log}");

    // The real run after all that.
    let tmp = verified_run(&net, &sink, "sendfile,parallel-sendfile", "2", &["--token", "s3cret"]);
    let rows = rows(tmp.path());
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.is_ok() && r.verified), "{rows:?}");
}
