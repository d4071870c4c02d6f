//! A sink that strangers cannot block: thousands of connections that send one byte and then nothing, or one byte
//! a second, held open against a sink (each one the sink closes is opened again at once), while verified runs,
//! serial and parallel, go to the same sink. Measured as it goes: how long a real stream waits for its ack, how
//! long each run takes, and the sink's threads, memory and open files, which must stay bounded.
//!
//! `XFERBENCH_STRANGERS` sets how many connections each load holds (default 3000) and
//! `XFERBENCH_STRANGER_SECS` how long each load runs before the runs (default 2; the trickle load runs past the
//! header deadline whatever it says). Run with `--nocapture` to see the numbers.

mod common;

use common::{LIMIT, Sink, rows, run_to_end, stream_header, text};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xferbench::wire::{self, StreamHeader};

/// Raises this process's open-file limit to at least `want` where it may (root may raise the hard limit too),
/// else the soft limit to the hard one: the loads hold thousands of sockets. Returns the limit now.
fn raise_open_files(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How strangers behave.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stranger {
    /// The first byte of the magic, then nothing.
    Idle,
    /// The header's first bytes, one a second: it looks like a slow sender until its deadline.
    Trickle,
}

/// What a load did.
#[derive(Debug, Default)]
struct LoadStats {
    connects: u64,
    failed_connects: u64,
    closed_by_sink: u64,
}

/// Connections held open against `addr` by one thread, until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    held: Arc<AtomicU64>,
    thread: Option<JoinHandle<LoadStats>>,
}

/// The opening of a well-formed header, to trickle: magic, version, and a claimed length the trickle never
/// reaches.
fn trickled_bytes() -> Vec<u8> {
    let mut v = wire::MAGIC.to_vec();
    v.extend_from_slice(&wire::PROTOCOL_VERSION.to_be_bytes());
    v.extend_from_slice(&200u16.to_be_bytes());
    v.extend(std::iter::repeat_n(b' ', 200));
    v
}

impl Load {
    fn start(addr: SocketAddr, count: usize, kind: Stranger) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicU64::new(0));
        let (stop2, held2) = (Arc::clone(&stop), Arc::clone(&held));
        let thread = std::thread::spawn(move || {
            let bytes = trickled_bytes();
            let mut stats = LoadStats::default();
            // Each connection and how many bytes it has sent.
            let mut conns: Vec<Option<(TcpStream, usize)>> = (0..count).map(|_| None).collect();
            let mut last_tick = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let tick = last_tick.elapsed() >= Duration::from_secs(1);
                if tick {
                    last_tick = Instant::now();
                }
                let mut open = 0;
                for slot in conns.iter_mut() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some((sock, sent)) = slot {
                        let mut b = [0u8; 256];
                        let closed = match sock.read(&mut b) {
                            Ok(n) => n == 0,
                            Err(e) => e.kind() != ErrorKind::WouldBlock,
                        };
                        if closed {
                            stats.closed_by_sink += 1;
                            *slot = None;
                        } else if kind == Stranger::Trickle
                            && tick
                            && *sent < bytes.len()
                            && sock.write_all(&bytes[*sent..*sent + 1]).is_ok()
                        {
                            *sent += 1;
                        }
                    }
                    if slot.is_none() {
                        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                            Ok(mut sock) => {
                                stats.connects += 1;
                                let _ = sock.write_all(&bytes[..1]);
                                let _ = sock.set_nonblocking(true);
                                *slot = Some((sock, 1));
                            }
                            Err(_) => stats.failed_connects += 1,
                        }
                    }
                    open += usize::from(slot.is_some());
                }
                held2.store(open as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            stats
        });
        Load {
            stop,
            held,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> LoadStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("the load ran")
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The sink's threads, resident memory (KiB) and open files.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    threads: u64,
    rss_kib: u64,
    files: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        threads: field("Threads:"),
        rss_kib: field("VmRSS:"),
        files: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
    }
}

/// Samples the sink every 50 ms and keeps the highest of each measure, until dropped.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<Usage>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new(Usage::default()));
        let (stop2, peak2) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let u = usage(pid);
                let mut p = peak2.lock().unwrap();
                p.threads = p.threads.max(u.threads);
                p.rss_kib = p.rss_kib.max(u.rss_kib);
                p.files = p.files.max(u.files);
                drop(p);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().unwrap().join();
        *self.peak.lock().unwrap()
    }
}

/// One real stream of an empty file: connect, header, ack (timed), shutdown, report. Returns the wait for the
/// ack, from the start of the connect.
fn probe(addr: SocketAddr, token: &str) -> Duration {
    let start = Instant::now();
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("the probe connects");
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let header = StreamHeader {
        run_id: "probe".into(),
        case_id: "probe".into(),
        token: Some(token.into()),
        ..stream_header(0, 1)
    };
    wire::write_header(&mut &sock, &header).expect("the probe's header goes");
    let mut reader = std::io::BufReader::new(&sock);
    let ack: wire::Ack = wire::read_line(&mut reader).expect("an ack");
    let waited = start.elapsed();
    assert!(ack.ok, "the probe was refused: {:?}", ack.error);
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let report: wire::StreamReport = wire::read_line(&mut reader).expect("a report");
    assert_eq!(report.bytes, 0);
    waited
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Probes `n` times; returns the median and the longest wait.
fn probes(addr: SocketAddr, token: &str, n: usize) -> (Duration, Duration) {
    let mut waits: Vec<Duration> = (0..n)
        .map(|_| {
            let w = probe(addr, token);
            std::thread::sleep(Duration::from_millis(20));
            w
        })
        .collect();
    waits.sort();
    (waits[n / 2], waits[n - 1])
}

/// A verified run against the sink; returns how long the whole command took.
fn verified_run(addr: &str, token: Option<&str>, strategy: &[&str]) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["--connect", addr, "--verify"];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    args.extend_from_slice(strategy);
    let start = Instant::now();
    let out = run_to_end(&[], tmp.path(), &args);
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{strategy:?} failed under load: {}",
        text(&out.stderr)
    );
    let rows = rows(tmp.path());
    assert!(rows.iter().all(|r| r.is_ok() && r.verified), "{rows:?}");
    took
}

#[test]
fn strangers_holding_connections_do_not_block_verified_runs() {
    let count = env_or("XFERBENCH_STRANGERS", 3000) as usize;
    let files = raise_open_files(count as u64 + 1024);
    let build_up = Duration::from_secs(env_or("XFERBENCH_STRANGER_SECS", 2));
    assert!(
        files > count as u64 + 200,
        "this test holds {count} connections: raise the hard open-file limit (it is {files})"
    );
    let token = "admission";
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--token", token]);
    let startup = sink.wait_for_log("limits:", 1, Duration::from_secs(5));
    assert!(
        startup.contains("1024 connections in their header phase for at most 5s each"),
        "{startup}"
    );
    let addr: SocketAddr = sink.addr.parse().unwrap();
    let pid = sink.pid();

    let calm = usage(pid);
    let (calm_median, calm_max) = probes(addr, token, 10);
    let calm_serial = verified_run(&sink.addr, Some(token), &["--strategies", "sendfile"]);
    eprintln!(
        "admission: no load: ack after {:.2} ms (median of 10, longest {:.2} ms); verified serial run {:.2} s; \
         sink {} thread(s), {} KiB resident, {} open files",
        ms(calm_median),
        ms(calm_max),
        calm_serial.as_secs_f64(),
        calm.threads,
        calm.rss_kib,
        calm.files
    );

    for kind in [Stranger::Idle, Stranger::Trickle] {
        let sampler = Sampler::start(pid);
        let load = Load::start(addr, count, kind);
        // The trickle runs past the 5 s header deadline, so that deadlines as well as pushing out make room.
        let settle = match kind {
            Stranger::Idle => build_up,
            Stranger::Trickle => build_up.max(Duration::from_secs(6)),
        };
        std::thread::sleep(settle);
        let held = load.held.load(Ordering::Relaxed);
        let (median, longest) = probes(addr, token, 20);
        let serial = verified_run(&sink.addr, Some(token), &["--strategies", "sendfile"]);
        let parallel = verified_run(
            &sink.addr,
            Some(token),
            &["--strategies", "parallel-sendfile", "--threads", "4"],
        );
        let stats = load.finish();
        let peak = sampler.finish();
        eprintln!(
            "admission: {kind:?} strangers, {count} held ({held} open at the probes): ack after {:.2} ms (median of \
             20, longest {:.2} ms); verified runs: serial {:.2} s, parallel x4 {:.2} s; sink at most {} thread(s), {} \
             KiB resident, {} open files; the strangers connected {} times, {} connects failed, the sink closed {} \
             of theirs",
            ms(median),
            ms(longest),
            serial.as_secs_f64(),
            parallel.as_secs_f64(),
            peak.threads,
            peak.rss_kib,
            peak.files,
            stats.connects,
            stats.failed_connects,
            stats.closed_by_sink
        );
        // Bounds, not speeds: each is far above what the sink needs unless strangers can hold it.
        assert!(
            longest < Duration::from_secs(2),
            "a real stream waited {longest:?} for its ack"
        );
        // The event loop and at most the parallel run's four streams (each with a checking thread).
        assert!(peak.threads <= 1 + 2 * 4, "{} threads", peak.threads);
        // The header phase's 1024 places, the streams' sockets and what any process has open.
        assert!(peak.files <= 1024 + 64, "{} open files", peak.files);
        assert!(peak.rss_kib < 64 * 1024, "{} KiB resident", peak.rss_kib);
        // The strangers did press: far more connections than the sink keeps, or past their deadline.
        assert!(stats.closed_by_sink > 1000, "{stats:?}");
    }
    let log = sink.log();
    assert!(
        log.contains("more connections rejected in the last second without a line each"),
        "a flood is counted, not logged line by line:\n{}",
        &log[..log.len().min(4000)]
    );
}

/// A connection to `to` from the local address `from` (any of 127/8 reaches loopback).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(to) = to else { panic!("an IPv4 sink") };
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
    let local = std::net::SocketAddrV4::new(from.parse().unwrap(), 0);
    bind(fd.as_raw_fd(), &SockaddrIn::from(local)).expect("bind");
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    TcpStream::from(fd)
}

/// Whether the sink has closed `sock` (EOF or a reset), looking without waiting.
fn closed_by_peer(sock: &TcpStream) -> bool {
    sock.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    match (&*sock).read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

#[test]
fn a_full_header_phase_pushes_out_the_oldest_of_the_busiest_source() {
    let sink = Sink::start(
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--max-pending",
            "16",
            "--header-timeout",
            "60s",
        ],
    );
    let addr: SocketAddr = sink.addr.parse().unwrap();
    let opened = |from: &str| {
        let mut s = connect_from(from, addr);
        s.write_all(&wire::MAGIC[..1]).unwrap();
        // Accepted and read in order: each newcomer finds the ones before it in place.
        std::thread::sleep(Duration::from_millis(5));
        s
    };
    // One slow sender on its own host, then a flood of 36 from another host into 16 places.
    let lone = opened("127.0.0.3");
    let flood: Vec<TcpStream> = (0..36).map(|_| opened("127.0.0.2")).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !closed_by_peer(&lone),
        "the lone sender was pushed out by another host's flood"
    );
    let closed: Vec<bool> = flood.iter().map(closed_by_peer).collect();
    // The flood keeps 15 places (the lone sender has the 16th): its oldest 21 went, its newest 15 stay.
    assert_eq!(closed, [vec![true; 21], vec![false; 15]].concat());
    let log = sink.wait_for_log("pushed out of the header phase", 21, Duration::from_secs(5));
    assert!(
        log.lines()
            .filter(|l| l.contains("pushed out of the header phase"))
            .all(|l| l.contains("127.0.0.2:")),
        "{log}"
    );
    // A real stream still gets in while the table is full (from a third address: the flood's share is the largest).
    let run = verified_run(&sink.addr, None, &["--strategies", "sendfile"]);
    assert!(run < LIMIT);
}

#[test]
fn a_header_that_does_not_come_in_time_is_closed_at_its_deadline() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--header-timeout", "1s"]);
    let mut sock = TcpStream::connect(&sink.addr).unwrap();
    // A trickle: the deadline counts from the accept, not from the last byte.
    let bytes = trickled_bytes();
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut sent = 0;
    let closed_after = loop {
        let _ = sock.write_all(&bytes[sent..sent + 1]);
        sent += 1;
        let mut b = [0u8; 64];
        match sock.read(&mut b) {
            Ok(0) => break start.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never closed");
    };
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    let log = sink.wait_for_log("no complete header within 1s", 1, Duration::from_secs(5));
    assert!(log.contains("rejected: no complete header within 1s"), "{log}");
}

#[test]
fn refusals_come_at_once_and_hold_no_thread() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--token", "right"]);
    let addr: SocketAddr = sink.addr.parse().unwrap();
    let pid = sink.pid();
    let header = |token: &str, file_bytes: u64| {
        let mut v = Vec::new();
        let h = StreamHeader {
            token: Some(token.into()),
            ..stream_header(file_bytes, 1)
        };
        wire::write_header(&mut v, &h).unwrap();
        v
    };
    // 200 wrong tokens, and 50 headers claiming more than a file may hold, each connection kept open after.
    let mut kept = Vec::new();
    let mut longest = Duration::ZERO;
    let mut most_threads = 0;
    for i in 0..250 {
        let (bytes, why) = match i < 200 {
            true => (header("wrong", 10), "wrong or missing token"),
            false => (header("right", u64::MAX), "at most"),
        };
        let start = Instant::now();
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        sock.write_all(&bytes).unwrap();
        let ack: wire::Ack = wire::read_line(&mut std::io::BufReader::new(&sock)).expect("a refusal");
        longest = longest.max(start.elapsed());
        assert!(
            !ack.ok && ack.error.as_deref().unwrap_or_default().contains(why),
            "{ack:?}"
        );
        most_threads = most_threads.max(usage(pid).threads);
        kept.push(sock);
    }
    eprintln!(
        "admission: 250 refusals, the longest {:.2} ms; the sink had at most {most_threads} thread(s)",
        ms(longest)
    );
    assert_eq!(most_threads, 1, "a refusal held a thread");
    assert!(longest < Duration::from_secs(1), "a refusal took {longest:?}");
}
