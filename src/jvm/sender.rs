//! A case's connections sent from the JVM, span by span, shaped as the native senders' (`strategy::streams`): the
//! same `Span` (start, last return, notices, errors, the sender's CPU, the scheduler's noise, TCP_INFO) and the
//! same `CallStats`, so that the runner records a JVM repetition as any other.
//!
//! A span: the JVM starts one thread per connection, each waiting (`arm`, outside the timed section); the counters
//! are read; `go` releases them, and each thread times its first call and last return with System.nanoTime
//! (CLOCK_MONOTONIC, checked when the JVM started); meanwhile this process waits for the sink's pass notices on
//! its copies of the sockets, as a native sender's threads do; the counters are read again while the threads
//! still live, and `release` lets them end.

use super::cpu;
use super::process::{CallError, Jvm};
use super::sockets;
use crate::base::model::Method;
use crate::experiment::probe::{Counters, Noise, Snapshot};
use crate::experiment::strategy::streams::{Limits, Span, read_notice};
use crate::experiment::strategy::{CallStats, Control, SendError};
use crate::experiment::wire::{PassNotice, StreamPlan};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long set-up commands may take (connecting, opening files, starting threads).
const SETUP_LIMIT: Duration = Duration::from_secs(30);
use crate::experiment::config::JVM_MAX_CHUNK;

/// The JVM's connections to the sink, and their descriptor numbers inside the JVM.
pub struct Connected {
    pub socks: Vec<TcpStream>,
    pub fds_in_jvm: Vec<i32>,
}

#[derive(Deserialize)]
struct Ports {
    ports: Vec<u16>,
}

/// Opens `n` connections from the JVM to the first of `addrs` that answers, and reaches each from here. A
/// connection the JVM could not open is a `CallError::Refused` (the JVM's death an `Exited`); anything else failed
/// here.
pub fn connect(
    jvm: &mut Jvm,
    method: Method,
    addrs: &[SocketAddr],
    n: u32,
    stop: &AtomicBool,
) -> anyhow::Result<Connected> {
    let mut last = None;
    for addr in addrs {
        let command = format!("connect {method} {} {} {n}", addr.ip(), addr.port());
        match jvm.call::<Ports>(&command, SETUP_LIMIT, stop) {
            Ok(p) => {
                let found = sockets::find(jvm.pid, &p.ports, *addr)?;
                return Ok(Connected {
                    fds_in_jvm: found.iter().map(|s| s.fd_in_jvm).collect(),
                    socks: found.into_iter().map(|s| s.sock).collect(),
                });
            }
            Err(CallError::Refused(why)) => {
                last = Some(CallError::Refused(format!(
                    "cannot connect to {addr} from the JVM: {why}"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or_else(|| CallError::Refused("no address to connect to".into()))
        .into())
}

/// What the JVM spent over the spans, beside the rows' common columns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Milliseconds of JIT compilation and of garbage collection while the threads sent.
    pub jit_ms: f64,
    pub gc_ms: f64,
    /// CPU seconds of the sending threads (None where /proc lacked them).
    pub send_cpu_s: Option<f64>,
}

/// A broker's shape in the JVM (broker-jvm-transferto): its network threads, each a `Selector` over the
/// connections k mod N, and the most one visit sends to one consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub network_threads: u32,
    pub fetch_bytes: u64,
}

/// A case's connections, set up in the JVM.
pub struct Streams<'a> {
    jvm: &'a mut Jvm,
    socks: &'a [TcpStream],
    /// A broker's network threads send, instead of one thread per connection.
    served: Option<Served>,
    stats: Vec<CallStats>,
    /// The network threads' selects (epoll_wait underneath): counted as calls, not timed as sends.
    selects: u64,
    /// Bytes copied between kernel and user space per byte sent, as the check pass saw.
    copies: u64,
    pub totals: Totals,
    /// The JVM's descriptors of the file, once opened.
    pub file_fds: Vec<i32>,
}

/// The file ranges of a plan as groups of equal ranges at an equal stride: `[start, len, stride, count]`.
pub fn groups(plan: &StreamPlan) -> Vec<[u64; 4]> {
    let mut out: Vec<[u64; 4]> = Vec::new();
    for r in plan.ranges() {
        let len = r.end - r.start;
        match out.last_mut() {
            Some([start, l, stride, count]) if *l == len && (*count == 1 || r.start == *start + *count * *stride) => {
                if *count == 1 {
                    *stride = r.start - *start;
                }
                *count += 1;
            }
            _ => out.push([r.start, len, 0, 1]),
        }
    }
    out
}

/// The JVM's answer to `tls`: what its handshake negotiated.
#[derive(Deserialize)]
struct Shook {
    cipher: String,
    protocol: String,
}

/// A suite as rustls names it (and the native TLS rows record it): Java writes TLS 1.3's suites without the 13.
fn suite_name(shook: &Shook) -> String {
    match (shook.protocol.as_str(), shook.cipher.strip_prefix("TLS_")) {
        ("TLSv1.3", Some(rest)) => format!("TLS13_{rest}"),
        _ => shook.cipher.clone(),
    }
}

#[derive(Deserialize)]
struct Armed {
    tids: Vec<i32>,
}

#[derive(Deserialize)]
struct Went {
    jit_ms: f64,
    gc_ms: f64,
    #[serde(default)]
    selects: u64,
    streams: Vec<Sent>,
}

/// One thread's report of a span.
#[derive(Deserialize)]
struct Sent {
    bytes: u64,
    calls: u64,
    first_ns: u64,
    last_ns: u64,
    /// Histogram buckets of call times: (bucket, count), 32 buckets per power of two of nanoseconds.
    hist: Vec<(u64, u64)>,
    error: Option<String>,
    error_call: Option<String>,
    ended_at: Option<u64>,
}

impl<'a> Streams<'a> {
    /// Opens the file for every connection in the JVM, with its buffer and ranges (outside the timed section);
    /// with `served`, a broker's network threads will send them. A TLS method's connections shake hands in the
    /// JVM's own engine, each pinned to the certificate fingerprint in `pins` (one per connection).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        jvm: &'a mut Jvm,
        method: Method,
        path: &Path,
        plans: &[StreamPlan],
        socks: &'a [TcpStream],
        copies: u64,
        served: Option<Served>,
        pins: &[String],
        stop: &AtomicBool,
    ) -> anyhow::Result<Streams<'a>> {
        anyhow::ensure!(
            !method.tls() || pins.len() == plans.len(),
            "{method}: {} certificate pins for {} connections",
            pins.len(),
            plans.len()
        );
        anyhow::ensure!(
            served.is_none() || method.serves_consumers(),
            "a broker's network threads do not serve {method}"
        );
        let chunk = plans.first().map_or(1, |p| p.chunk_bytes);
        anyhow::ensure!(
            chunk <= JVM_MAX_CHUNK,
            "a chunk of {chunk} bytes is more than a Java array holds"
        );
        let text = path
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("the JVM sender takes UTF-8 paths only"))?;
        jvm.call::<IgnoredAny>(&format!("file {text}"), SETUP_LIMIT, stop)?;
        for (i, plan) in plans.iter().enumerate() {
            let groups: Vec<String> = groups(plan).iter().flatten().map(u64::to_string).collect();
            let command = format!("stream {i} {method} {chunk} {}", groups.join(" "));
            jvm.call::<IgnoredAny>(command.trim_end(), SETUP_LIMIT, stop)?;
        }
        let mut stats: Vec<CallStats> = plans.iter().map(|_| CallStats::default()).collect();
        if method.tls() {
            for (i, (pin, stats)) in pins.iter().zip(stats.iter_mut()).enumerate() {
                let shook = jvm.call::<Shook>(&format!("tls {i} {pin}"), SETUP_LIMIT, stop)?;
                stats.tls_cipher = Some(suite_name(&shook));
            }
        }
        let file_fds = sockets::files(jvm.pid, path)?;
        Ok(Streams {
            jvm,
            socks,
            served,
            stats,
            selects: 0,
            copies,
            totals: Totals::default(),
            file_fds,
        })
    }

    /// Closes the JVM's connections and files (the copies held here stay open until they are dropped).
    pub fn close(self, stop: &AtomicBool) {
        let _ = self.jvm.call::<IgnoredAny>("close", SETUP_LIMIT, stop);
    }

    /// The JVM's process id.
    pub fn pid(&self) -> i32 {
        self.jvm.pid
    }

    /// Every stream's counts merged.
    pub fn stats(&self) -> CallStats {
        let mut all = CallStats::default();
        self.stats.iter().for_each(|s| all.merge(s));
        all.syscalls += self.selects;
        all
    }

    /// Sends `passes` passes of every stream; with `notices`, waits for the sink's word that the pass arrived; with
    /// `last`, each stream ends (a TLS session's close_notify).
    pub fn run(&mut self, passes: u32, notices: bool, last: bool, limits: Limits) -> anyhow::Result<Span> {
        let stop = limits.stop;
        let end = u8::from(last);
        let arm = match self.served {
            None => format!("arm {passes} {end}"),
            Some(b) => format!("arm {passes} {end} {} {}", b.network_threads, b.fetch_bytes),
        };
        // A broker's channels are non-blocking while its network threads send, and the copies here share that
        // flag: the notices are read once they are blocking again, as a native broker reads them after its loop.
        let early = notices && self.served.is_none();
        let armed = match self.jvm.call::<Armed>(&arm, SETUP_LIMIT, stop) {
            Ok(a) => a,
            Err(e) => return Ok(self.failed(Snapshot::take()?, e)),
        };
        let pid = self.jvm.pid;
        let before = Snapshot::take()?;
        let jvm_before = cpu::Snapshot::take(pid, &armed.tids);
        let abort = AtomicBool::new(false);
        let (socks, jvm) = (self.socks, &mut *self.jvm);
        let ctl = Control {
            deadline: limits.deadline,
            stop,
            abort: &abort,
            sent: None,
        };
        let (went, jvm_after, notes) = std::thread::scope(|scope| {
            let ctl = &ctl;
            let spawn_readers = || -> Vec<_> {
                socks
                    .iter()
                    .map(|s| scope.spawn(move || read_notice(s, ctl).map(|n| (n, Instant::now()))))
                    .collect()
            };
            let mut readers = if early { spawn_readers() } else { Vec::new() };
            let within = limits.deadline.saturating_duration_since(Instant::now());
            let went = jvm.call::<Went>("go", within, stop);
            let jvm_after = cpu::Snapshot::take(pid, &armed.tids);
            if !went.as_ref().is_ok_and(|w| w.streams.iter().all(|s| s.error.is_none())) {
                abort.store(true, Ordering::Relaxed);
            }
            if notices && !early {
                readers = spawn_readers();
            }
            let notes: Vec<_> = readers
                .into_iter()
                .map(|h| h.join().expect("notice readers do not panic"))
                .collect();
            (went, jvm_after, notes)
        });
        let went = match went {
            Ok(w) => w,
            Err(e) => return Ok(self.failed(before, e)),
        };
        if let Err(e) = self.jvm.call::<IgnoredAny>("release", SETUP_LIMIT, stop) {
            return Ok(self.failed(before, e));
        }
        let (sender, send_cpu_s, noise) = jvm_after.since(&jvm_before);
        self.totals.jit_ms += went.jit_ms;
        self.totals.gc_ms += went.gc_ms;
        self.selects += went.selects;
        self.totals.send_cpu_s = match (self.totals.send_cpu_s, send_cpu_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let after = if notices { Some(Snapshot::take()?) } else { None };
        Ok(self.gather(before, sender, after, noise, &went.streams, notes))
    }

    /// The span from the threads' reports and the notices.
    fn gather(
        &mut self,
        before: Snapshot,
        sender: Counters,
        after: Option<Snapshot>,
        noise: Noise,
        sent: &[Sent],
        notes: Vec<Result<(PassNotice, Instant), SendError>>,
    ) -> Span {
        let now = Instant::now();
        let went: Vec<&Sent> = sent.iter().filter(|s| s.calls > 0).collect();
        let mut span = Span {
            before,
            sender,
            started: went.iter().map(|s| instant(s.first_ns)).min().unwrap_or(now),
            last_sent: went.iter().map(|s| instant(s.last_ns)).max().unwrap_or(now),
            after,
            notices: Vec::with_capacity(sent.len()),
            errors: Vec::new(),
            noise,
            tcp: self
                .socks
                .iter()
                .map(|s| crate::experiment::tcp::tcp_info(s).ok())
                .collect(),
        };
        let mut notes = notes.into_iter();
        for (i, (s, stats)) in sent.iter().zip(self.stats.iter_mut()).enumerate() {
            add(stats, s, self.copies);
            let note = if span.after.is_some() { notes.next() } else { None };
            match (send_error(s), note) {
                (Some(e), _) | (None, Some(Err(e))) => {
                    span.notices.push(None);
                    span.errors.push((i as u32, e));
                }
                (None, note) => span.notices.push(note.and_then(Result::ok)),
            }
        }
        span.errors.sort_by_key(|(_, e)| matches!(e, SendError::Interrupted));
        span
    }

    /// A span in which the JVM did not answer: every stream fails with why. A JVM past its deadline, or still
    /// sending when the run was stopped, is killed (its sockets then close, but for the copies held here).
    fn failed(&mut self, before: Snapshot, e: CallError) -> Span {
        let error = match &e {
            CallError::TimedOut(_) => {
                self.jvm.kill("past the case's --timeout");
                SendError::TimedOut
            }
            CallError::Stopped => {
                self.jvm.kill("the run was stopped");
                SendError::Interrupted
            }
            CallError::Exited(how) => SendError::SenderExited(how.clone()),
            CallError::Refused(why) => SendError::Sender(why.clone()),
        };
        let now = Instant::now();
        Span {
            before,
            sender: Counters::default(),
            started: now,
            last_sent: now,
            after: None,
            notices: self.socks.iter().map(|_| None).collect(),
            errors: (0..self.socks.len() as u32).map(|i| (i, error.clone())).collect(),
            noise: Noise::default(),
            tcp: self
                .socks
                .iter()
                .map(|s| crate::experiment::tcp::tcp_info(s).ok())
                .collect(),
        }
    }
}

/// A thread's report added to its stream's counts: calls, bytes, copies, call times, first call and last return.
fn add(stats: &mut CallStats, s: &Sent, copies: u64) {
    stats.syscalls += s.calls;
    stats.bytes += s.bytes;
    stats.user_copy_bytes += s.bytes * copies;
    for &(bucket, count) in &s.hist {
        let _ = stats.latency_ns.record_n(bucket_value(bucket), count);
    }
    if s.calls > 0 {
        let (first, last) = (instant(s.first_ns), instant(s.last_ns));
        stats.first_call = Some(stats.first_call.map_or(first, |f| f.min(first)));
        stats.last_return = Some(stats.last_return.map_or(last, |l| l.max(last)));
    }
}

/// The middle of a bucket of the JVM's histogram (`Stream.bucket`: exact under 32 ns, then 32 per power of two).
fn bucket_value(bucket: u64) -> u64 {
    if bucket < 32 {
        return bucket.max(1);
    }
    let (e, m) = (bucket / 32 + 4, bucket % 32);
    let width = 1u64 << (e - 5);
    (32 + m) * width + width / 2
}

/// A CLOCK_MONOTONIC time (the JVM's System.nanoTime, checked to be the same clock) as an `Instant`.
fn instant(ns: u64) -> Instant {
    let (now, now_ns) = (Instant::now(), crate::base::env::monotonic_ns());
    now.checked_sub(Duration::from_nanos(now_ns.saturating_sub(ns)))
        .unwrap_or(now)
}

/// Why a thread stopped, in the native senders' terms: the errno a Java exception's message names (the JDK puts
/// strerror's text there), or its own words.
fn send_error(s: &Sent) -> Option<SendError> {
    let message = s.error.as_ref()?;
    let call: &'static str = match s.error_call.as_deref() {
        Some("eof") => return Some(SendError::FileShrank(s.ended_at.unwrap_or(0))),
        Some("transferTo") => "transferTo",
        Some("read") => "read",
        Some("write") => "write",
        Some("wrap") => "SSLEngine.wrap",
        _ => "send",
    };
    Some(match errno_of(message) {
        Some(errno) => SendError::Io { call, errno },
        None => SendError::Sender(format!("{call}: {message}")),
    })
}

/// The errno whose strerror text is `message` (NioSocketImpl says "Connection reset" for ECONNRESET).
fn errno_of(message: &str) -> Option<nix::errno::Errno> {
    if message == "Connection reset" {
        return Some(nix::errno::Errno::ECONNRESET);
    }
    (1..134).find_map(|raw| {
        let text = std::io::Error::from_raw_os_error(raw).to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        (text == message).then(|| nix::errno::Errno::from_raw(raw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::Layout;

    #[test]
    fn ranges_travel_as_groups() {
        let plan = |layout, streams, index| StreamPlan {
            file_bytes: 100,
            chunk_bytes: 10,
            layout,
            streams,
            index,
        };
        assert_eq!(groups(&plan(Layout::Single, 1, 0)), vec![[0, 100, 0, 1]]);
        // Stream 1 of 3, chunks of 10: 10, 40, 70 (and no short last one).
        assert_eq!(groups(&plan(Layout::Striped, 3, 1)), vec![[10, 10, 30, 3]]);
        let p = StreamPlan {
            file_bytes: 95,
            ..plan(Layout::Striped, 3, 0)
        };
        assert_eq!(groups(&p), vec![[0, 10, 30, 3], [90, 5, 0, 1]]);
        for layout in [Layout::Striped, Layout::Contiguous] {
            for i in 0..3 {
                let p = plan(layout, 3, i);
                let expanded: Vec<_> = groups(&p)
                    .iter()
                    .flat_map(|&[s, l, st, c]| (0..c).map(move |k| s + k * st..s + k * st + l))
                    .collect();
                assert_eq!(expanded, p.ranges().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn buckets_decode_within_their_width() {
        // Stream.bucket in Java: 1_000_000 ns -> e = 19, m = (1e6 >> 14) & 31 = 29 -> (19 - 4) * 32 + 29 = 509.
        let v = bucket_value(509);
        assert!((1_000_000f64 / v as f64 - 1.0).abs() < 0.04, "{v}");
        assert_eq!(bucket_value(7), 7);
    }

    /// The JVM's TLS engine shakes hands with a sink's TLS server only when the certificate is the pinned one; a
    /// wrong pin is refused with the line that says so. Needs a JDK (CI installs one).
    #[test]
    fn the_jvm_s_engine_trusts_only_the_pinned_certificate() {
        let jdk = super::super::jdk::locate(None, "jvm-tls").expect("a JDK on PATH");
        let cache = tempfile::tempdir().unwrap();
        let compiled = super::super::jdk::compile(&jdk, cache.path()).unwrap();
        let stop = AtomicBool::new(false);
        let mut jvm = Jvm::start(&jdk, &compiled, None, &stop).unwrap();
        let identity = crate::experiment::tls::SinkIdentity::generate().unwrap();
        for (pin, right) in [("ab".repeat(32), false), (identity.fingerprint(), true)] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let config = identity.server_config();
            let server = std::thread::spawn(move || {
                let (sock, _) = listener.accept().unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                crate::experiment::tls::accept(&sock, config).map(|c| suite_name_of(&c))
            });
            jvm.call::<Ports>(&format!("connect jvm-tls 127.0.0.1 {port} 1"), SETUP_LIMIT, &stop)
                .unwrap();
            let shook = jvm.call::<Shook>(&format!("tls 0 {pin}"), SETUP_LIMIT, &stop);
            let _ = jvm.call::<IgnoredAny>("close", SETUP_LIMIT, &stop);
            let served = server.join().unwrap();
            match (right, shook) {
                (true, Ok(shook)) => {
                    assert_eq!(suite_name(&shook), served.unwrap());
                    assert_eq!(shook.protocol, "TLSv1.3");
                }
                (false, Err(CallError::Refused(why))) => {
                    assert!(
                        why.contains("TLS handshake (the JVM) failed")
                            && why.contains(&format!("but its ack announced {pin}")),
                        "{why}"
                    );
                    assert!(served.is_err(), "the sink's side of a refused handshake fails too");
                }
                (right, other) => panic!("pin right: {right}, the JVM said {:?}", other.map(|s| s.cipher)),
            }
        }
    }

    fn suite_name_of(c: &rustls::ServerConnection) -> String {
        c.negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn java_messages_name_their_errno() {
        assert_eq!(errno_of("Broken pipe"), Some(nix::errno::Errno::EPIPE));
        assert_eq!(
            errno_of("Connection reset by peer"),
            Some(nix::errno::Errno::ECONNRESET)
        );
        assert_eq!(errno_of("Connection reset"), Some(nix::errno::Errno::ECONNRESET));
        assert_eq!(errno_of("Stream closed"), None);
    }
}
