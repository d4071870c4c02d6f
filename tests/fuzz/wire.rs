//! The wire: the stream header as the sink reads it (whole, in pieces as a non-blocking socket delivers them, and
//! over TCP against a real sink), and the ack, report and pass notice as the sender reads them (in memory, and
//! from a fake sink answering a real `run`).

use super::common::{self, LIMIT, Sink, text};
use super::{bounded, cases, check, json_mutated, mutated, wild_json, wild_value};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use xferbench::model::Layout;
use xferbench::wire::{self, Ack, HeaderError, HeaderReader, PassNotice, StreamHeader, StreamPlan, StreamReport};

/// Largest single allocation allowed while reading one header or line: the 16 KiB line limit, with room for
/// serde's copies of what it holds.
const WIRE_BOUND: usize = 64 * 1024;

fn valid_header() -> StreamHeader {
    StreamHeader {
        run_id: "2026-12-01T000000.000Z-host-1".into(),
        case_id: "warm/sendfile/t1/single/c10485760".into(),
        plan: StreamPlan {
            file_bytes: 1 << 20,
            chunk_bytes: 64 << 10,
            layout: Layout::Striped,
            streams: 4,
            index: 1,
        },
        seed: Some(1),
        verify: true,
        token: Some("secret".into()),
        rx_mode: None,
        verify_on: None,
        passes: 3,
        pass_notices: true,
        tls: false,
        interval_ms: None,
        stall: None,
    }
}

/// Magic, version and length around `json` (the length as the JSON's, or as claimed).
fn framed(json: &[u8], claimed: Option<u16>) -> Vec<u8> {
    let mut v = wire::MAGIC.to_vec();
    v.extend_from_slice(&wire::PROTOCOL_VERSION.to_be_bytes());
    v.extend_from_slice(
        &claimed
            .unwrap_or(json.len().min(u16::MAX as usize) as u16)
            .to_be_bytes(),
    );
    v.extend_from_slice(json);
    v
}

fn header_inputs() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let valid = {
        let mut v = Vec::new();
        wire::write_header(&mut v, &valid_header()).unwrap();
        v
    };
    let layout = prop_oneof![Just("single"), Just("striped"), Just("contiguous"), Just("diagonal")];
    let bytes = prop_oneof![
        // Anything at all, up to past the longest header.
        proptest::collection::vec(any::<u8>(), 0..6000),
        // The right magic, any version and claimed length, anything after.
        (
            any::<u16>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..5000)
        )
            .prop_map(|(v, len, rest)| {
                let mut b = wire::MAGIC.to_vec();
                b.extend_from_slice(&v.to_be_bytes());
                b.extend_from_slice(&len.to_be_bytes());
                b.extend(rest);
                b
            }),
        // A valid header cut short, with bytes changed or bytes inserted.
        mutated(valid),
        // Valid framing around a header whose fields are wild, missing or unknown.
        json_mutated(serde_json::to_value(valid_header()).unwrap())
            .prop_map(|v| framed(&serde_json::to_vec(&v).unwrap(), None)),
        // A plan at the extremes: the sink computes ranges and totals from it.
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            layout,
            any::<bool>()
        )
            .prop_map(|(file, chunk, streams, index, passes, layout, small)| {
                // Half the time within the limits, so that accepted headers are computed with.
                let (streams, index) = if small {
                    (streams % 1025, index % 1025)
                } else {
                    (streams, index)
                };
                let file = if small { file % (wire::MAX_FILE_BYTES + 2) } else { file };
                let passes = if small { passes % (wire::MAX_PASSES + 2) } else { passes };
                let mut v = serde_json::to_value(valid_header()).unwrap();
                v["plan"] = json!({"file_bytes": file, "chunk_bytes": chunk, "layout": layout, "streams": streams,
                                  "index": index});
                v["passes"] = json!(passes);
                framed(&serde_json::to_vec(&v).unwrap(), None)
            }),
    ];
    // How a non-blocking socket hands the bytes over: pieces of these sizes, in turn.
    (bytes, proptest::collection::vec(1usize..300, 1..8))
}

/// What the sink's event loop makes of `bytes` delivered in `pieces`: the header, None while it would wait for
/// more, or the refusal.
fn in_pieces(bytes: &[u8], pieces: &[usize]) -> Result<Option<StreamHeader>, HeaderError> {
    let mut reader = HeaderReader::default();
    let mut at = 0;
    for piece in pieces.iter().cycle() {
        let space = reader.space();
        let n = space.len().min(*piece).min(bytes.len() - at);
        if n == 0 {
            return Ok(None);
        }
        space[..n].copy_from_slice(&bytes[at..at + n]);
        at += n;
        if let Some(h) = reader.advance(n)? {
            return Ok(Some(h));
        }
    }
    unreachable!("cycle never ends")
}

/// Bytes that no JSON can take in: a header that reads into them fails.
const TAIL: &[u8] = b"\x00stream bytes";

#[test]
fn stream_headers() {
    check(
        "stream header (sink)",
        cases(2500),
        LIMIT,
        header_inputs,
        |(bytes, pieces)| {
            let mut input = bytes.clone();
            input.extend_from_slice(TAIL);
            let mut rest = input.as_slice();
            let whole = bounded("read_header", WIRE_BOUND, || wire::read_header(&mut rest));
            let piecewise = bounded("HeaderReader", WIRE_BOUND, || in_pieces(&bytes, &pieces));
            match (&whole, &piecewise) {
                (Ok(a), Ok(Some(b))) => {
                    prop_assert_eq!(a, b);
                    // Nothing past the header was taken: the stream's bytes are the stream's.
                    prop_assert!(rest.ends_with(TAIL));
                    let plan = &a.plan;
                    prop_assert!(plan.streams >= 1 && plan.streams <= wire::MAX_STREAMS && plan.index < plan.streams);
                    prop_assert!(plan.file_bytes <= wire::MAX_FILE_BYTES && a.passes <= wire::MAX_PASSES);
                    // What the sink computes from an accepted header, without overflow.
                    let total = a.total_bytes();
                    prop_assert!(total <= plan.file_bytes.saturating_mul(u64::from(a.passes)));
                    for r in plan.ranges().take(64) {
                        prop_assert!(r.start < r.end && r.end <= plan.file_bytes);
                    }
                }
                // Cut short: the event loop waits for more, and the blocking reader reads on into the tail, which no
                // header can take in.
                (Err(_), Ok(None)) => {}
                (Err(a), Err(b)) => prop_assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b)),
                (a, b) => prop_assert!(false, "whole {a:?} but in pieces {b:?}"),
            }
            Ok(())
        },
    );
}

/// Where the sink of `bytes_to_a_sink` listens: its cases are plain functions, so the address is shared through a
/// static while the sink itself belongs to the test, which stops it when done (a static sink would outlive the test
/// binary's threads and never be killed).
static FUZZED_SINK: OnceLock<String> = OnceLock::new();

#[test]
fn bytes_to_a_sink() {
    let sink = Sink::start(
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--header-timeout",
            "2s",
            "--idle-timeout",
            "5s",
        ],
    );
    FUZZED_SINK.set(sink.addr.clone()).expect("one test sets it");
    check(
        "stream header (a sink over TCP)",
        cases(64),
        LIMIT,
        header_inputs,
        |(bytes, _)| {
            let addr = FUZZED_SINK.get().expect("the sink started");
            let start = Instant::now();
            let mut sock = TcpStream::connect(addr).expect("the sink accepts");
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // The sink may refuse and close before all of it is written.
            let _ = sock.write_all(&bytes);
            let _ = sock.shutdown(Shutdown::Write);
            let mut answer = Vec::new();
            let _ = sock.read_to_end(&mut answer);
            // A refusal, an ack and a report, or a close: at once, or at the 2 s header deadline.
            prop_assert!(
                start.elapsed() < Duration::from_secs(5),
                "answered after {:?}",
                start.elapsed()
            );
            let first = answer.split(|&b| b == b'\n').next().unwrap_or_default();
            if !first.is_empty() {
                let ack: Ack = serde_json::from_slice(first).expect("the sink's first line is an ack");
                prop_assert_eq!(ack.version, wire::PROTOCOL_VERSION);
            }
            Ok(())
        },
    );
    // Still serving, and nothing in its log but rejections.
    common::verified_run_to(&sink, "sendfile");
    assert!(!sink.log().contains("panicked"), "{}", sink.log());
}

fn valid_ack() -> Ack {
    Ack {
        ok: true,
        version: wire::PROTOCOL_VERSION,
        boot_id: xferbench::env::boot_id(),
        rx_mode: xferbench::model::RxMode::Copy,
        rx_buffer_bytes: 256 << 10,
        rcvbuf_bytes: None,
        cpus: None,
        tls_fingerprint: None,
        error: None,
        stalls: true,
    }
}

fn valid_report(bytes: u64, first: u64, last: u64) -> StreamReport {
    StreamReport {
        stream: 0,
        bytes,
        verified: true,
        first_byte_ns: Some(first),
        last_byte_ns: Some(last),
        report_ns: xferbench::env::monotonic_ns(),
        user_s: 0.001,
        sys_s: 0.002,
        recv_calls: 3,
        ..StreamReport::default()
    }
}

fn line(v: &impl serde::Serialize) -> Vec<u8> {
    let mut l = serde_json::to_vec(v).unwrap();
    l.push(b'\n');
    l
}

fn line_inputs() -> impl Strategy<Value = Vec<u8>> {
    let now = xferbench::env::monotonic_ns();
    let report = serde_json::to_value(valid_report(1 << 20, now - 1000, now - 10)).unwrap();
    let notice = json!({"pass": 1, "first_byte_ns": now - 1000, "last_byte_ns": now - 10, "notice_ns": now});
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4000),
        json_mutated(serde_json::to_value(valid_ack()).unwrap()).prop_map(|v| line(&v)),
        json_mutated(report.clone()).prop_map(|v| line(&v)),
        json_mutated(notice).prop_map(|v| line(&v)),
        mutated(line(&report)),
        // Past the longest line either side reads.
        (wild_json(), 16_000usize..40_000).prop_map(|(v, pad)| {
            let mut l = b"{\"error\":\"".to_vec();
            l.extend(std::iter::repeat_n(b'x', pad));
            l.extend_from_slice(b"\",\"x\":");
            l.extend(serde_json::to_vec(&v).unwrap());
            l.extend_from_slice(b"}\n");
            l
        }),
    ]
}

#[test]
fn acks_reports_and_notices() {
    check(
        "ack, report and pass notice (sender)",
        cases(2000),
        LIMIT,
        line_inputs,
        |bytes| {
            let read = |f: &dyn Fn(&mut BufReader<&[u8]>)| {
                bounded("read_line", WIRE_BOUND, || f(&mut BufReader::new(bytes.as_slice())));
            };
            read(&|r| {
                let _ = wire::read_line::<Ack>(r);
            });
            read(&|r| {
                if let Ok(report) = wire::read_line::<StreamReport>(r) {
                    let _ = report.check();
                }
            });
            read(&|r| {
                if let Ok(notice) = wire::read_line::<PassNotice>(r) {
                    let _ = notice.check();
                }
            });
            Ok(())
        },
    );
}

#[test]
fn a_line_that_never_ends_is_refused_at_its_limit() {
    for byte in [b' ', b'{', b'"', b'x'] {
        let start = Instant::now();
        let r = bounded("read_line", WIRE_BOUND, || {
            wire::read_line::<StreamReport>(&mut BufReader::new(std::io::repeat(byte)))
        });
        assert!(r.is_err(), "{byte}: {r:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

/// How the fake sink changes what a real sink would send.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    /// These fields set to these values (unknown ones added).
    Fields(Vec<(String, Value)>),
    /// The line cut after this many bytes (no newline).
    Cut(usize),
    /// Other bytes altogether.
    Bytes(Vec<u8>),
}

const FIELDS: [&str; 16] = [
    "ok",
    "version",
    "boot_id",
    "rx_mode",
    "bytes",
    "first_byte_ns",
    "last_byte_ns",
    "report_ns",
    "user_s",
    "sys_s",
    "voluntary_ctxsw",
    "error",
    "pass",
    "notice_ns",
    "checker_cpu_s",
    "stream",
];

/// An edit, leaving the line as it was `keep` times in 6 (an ack must mostly pass for the rest to be reached).
fn edit(keep: u32) -> impl Strategy<Value = Edit> {
    prop_oneof![
        keep => Just(Edit::Keep),
        4 => proptest::collection::vec((0..FIELDS.len(), wild_value()), 1..4)
            .prop_map(|f| Edit::Fields(f.into_iter().map(|(k, v)| (FIELDS[k].to_string(), v)).collect())),
        1 => (0usize..200).prop_map(Edit::Cut),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Edit::Bytes),
    ]
}

fn apply(edit: &Edit, valid: Value) -> Vec<u8> {
    match edit {
        Edit::Keep => line(&valid),
        Edit::Fields(fields) => {
            let mut v = valid;
            for (k, x) in fields {
                v[k.as_str()] = x.clone();
            }
            line(&v)
        }
        Edit::Cut(n) => {
            let l = line(&valid);
            l[..(*n).min(l.len() - 1)].to_vec()
        }
        Edit::Bytes(b) => b.clone(),
    }
}

impl Edit {
    /// Whether what is sent may lack its newline: the fake sink then closes its side, as a broken sink would,
    /// rather than leave the sender waiting for the rest (a stall is a test of its own).
    fn unfinished(&self) -> bool {
        matches!(self, Edit::Cut(_) | Edit::Bytes(_))
    }
}

/// A run's shape for the fake sink: serial or two streams, warm or cold (cold: two passes, each with a notice).
#[derive(Debug, Clone)]
struct Exchange {
    ack: Edit,
    notice: Edit,
    report: Edit,
    parallel: bool,
    cold: bool,
}

/// An `xferbench sink` that answers as told: reads the header, acks, takes the stream (noticing each pass if asked),
/// reports. Serves connections until `stop`.
fn fake_sink(listener: TcpListener, ex: Exchange, stop: &AtomicBool) {
    listener.set_nonblocking(true).unwrap();
    std::thread::scope(|s| {
        while !stop.load(Ordering::Relaxed) {
            let Ok((sock, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let ex = ex.clone();
            s.spawn(move || {
                sock.set_nonblocking(false).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let Ok(header) = wire::read_header(&mut &sock) else {
                    return;
                };
                let ack = apply(&ex.ack, serde_json::to_value(valid_ack()).unwrap());
                if (&sock).write_all(&ack).is_err() {
                    return;
                }
                if ex.ack.unfinished() {
                    let _ = sock.shutdown(Shutdown::Write);
                }
                let per_pass = header.plan.total_bytes();
                let (mut got, mut first) = (0u64, None);
                let mut buf = vec![0u8; 64 << 10];
                let passes = if header.pass_notices { header.passes } else { 0 };
                for pass in 1..=passes {
                    while got < per_pass * u64::from(pass) {
                        let want = (per_pass * u64::from(pass) - got).min(buf.len() as u64) as usize;
                        match (&sock).read(&mut buf[..want]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got += n as u64,
                        }
                        first.get_or_insert(xferbench::env::monotonic_ns());
                    }
                    let now = xferbench::env::monotonic_ns();
                    let notice = json!({"pass": pass, "first_byte_ns": first.take().unwrap_or(now),
                                        "last_byte_ns": now, "notice_ns": now});
                    if (&sock).write_all(&apply(&ex.notice, notice)).is_err() {
                        return;
                    }
                    if ex.notice.unfinished() {
                        let _ = sock.shutdown(Shutdown::Write);
                    }
                }
                loop {
                    match (&sock).read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n as u64,
                    }
                    first.get_or_insert(xferbench::env::monotonic_ns());
                }
                let now = xferbench::env::monotonic_ns();
                let mut report = valid_report(got, first.unwrap_or(now), now);
                report.stream = header.plan.index;
                report.report_ns = now;
                let _ = (&sock).write_all(&apply(&ex.report, serde_json::to_value(report).unwrap()));
            });
        }
    });
}

fn exchanges() -> impl Strategy<Value = Exchange> {
    (edit(6), edit(2), edit(2), any::<bool>(), any::<bool>()).prop_map(|(ack, notice, report, parallel, cold)| {
        Exchange {
            ack,
            notice,
            report,
            parallel,
            cold,
        }
    })
}

/// The fixture every fake-sink run sends.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

#[test]
fn a_real_run_against_a_sink_that_answers_nonsense() {
    check(
        "ack, pass notice and report (a real run)",
        cases(40),
        LIMIT * 4,
        exchanges,
        |ex| {
            let t0 = Instant::now();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let stop = AtomicBool::new(false);
            let out = std::thread::scope(|s| {
                s.spawn(|| fake_sink(listener, ex.clone(), &stop));
                let tmp = tempfile::tempdir().unwrap();
                let mut cmd = std::process::Command::new(common::BIN);
                cmd.args([
                    "run", "--quiet", "--size", "256KiB", "--chunk", "64KiB", "--repeat", "1", "--warmup", "0",
                ])
                .args(["--timeout", "20s", "--connect", &addr, "--fixture-dir"])
                .arg(fixtures())
                .arg("--out")
                .arg(tmp.path().join("out"))
                .args(match ex.parallel {
                    true => ["--strategies", "parallel-sendfile", "--threads", "2"],
                    false => ["--strategies", "sendfile", "--threads", "1"],
                })
                .args(match ex.cold {
                    true => ["--cache", "cold", "--passes", "2"],
                    false => ["--cache", "warm", "--passes", "1"],
                });
                let out = common::run_limited(cmd, LIMIT);
                stop.store(true, Ordering::Relaxed);
                out
            });
            let err = text(&out.stderr);
            prop_assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}: {err}", out.status);
            prop_assert!(!err.contains("panicked"), "{err}");
            // The fake sink closes whatever it leaves unfinished: the run sees that at once, not at its --timeout.
            prop_assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}: {err}", t0.elapsed());
            Ok(())
        },
    );
}
